/**
 * Speech-to-text JSON, word lists, Zoom's speaker-on-cue-id layout and metadata.speaker_names
 * (src/shared/formats/stt, json-formats.ts, speaker-names.ts). Pure: no threads, no database.
 * - own fixtures (test/fixtures/stt/*): exact Segment[] expectations;
 * - real files written by real services and tools (../shared/fixtures-stt, third-party, read in
 *   place, never copied): speakers found, times monotonic, no markup, and every word of the
 *   source once, checked against the text each service writes beside its words; skipped loudly
 *   when the folder is absent;
 * - bad input: one precise BadInputError line.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, test, type TestContext } from 'node:test';
import { BadInputError } from '../../src/shared/errors.ts';
import { cleanSegmentText } from '../../src/shared/formats/clean-text.ts';
import { detectFormat, parseTranscript } from '../../src/shared/formats/parse-transcript.ts';
import { isoDurationMs, protoDurationMs, secondsMs, ticksMs } from '../../src/shared/formats/stt/times.ts';
import { MAX_SEGMENT_MS, PAUSE_BREAK_MS, SENTENCE_BREAK_MS, wordsToSegments, type Word } from '../../src/shared/formats/stt/words.ts';
import type { Segment, TranscriptFormat } from '../../src/shared/types.ts';
import { realFixtures } from '../support/real-fixtures.ts';

const OWN = new URL('../fixtures/stt/', import.meta.url);
const REAL_FILES = realFixtures('fixtures-stt', 'real speech-to-text file tests');

const own = (name: string): string => readFileSync(new URL(name, OWN), 'utf8');

const real = (t: TestContext, name: string): string | null => REAL_FILES.read(t, name);

type Row = [speaker: string | null, startMs: number | null, endMs: number | null, text: string];
const rows = (segments: Segment[]): Row[] => segments.map((s) => [s.speaker, s.startMs, s.endMs, s.text]);

/** Invariants: seq 1..n, clean non-empty text, end ≥ start, starts never go back, no markup. */
function assertWellFormed(segments: Segment[], where: string): void {
  assert.ok(segments.length > 0, where);
  let lastStart = -1;
  segments.forEach((s, i) => {
    assert.equal(s.seq, i + 1, where);
    assert.equal(s.text, cleanSegmentText(s.text), `${where}: segment ${s.seq} text not clean`);
    assert.ok(!/[<>{}]|-->|"(?:word|start|end)"/.test(s.text), `${where}: segment ${s.seq} has markup: ${s.text.slice(0, 80)}`);
    if (s.startMs !== null && s.endMs !== null) assert.ok(s.endMs >= s.startMs, `${where}: segment ${s.seq} ends before it starts`);
    if (s.startMs !== null) {
      assert.ok(s.startMs >= lastStart, `${where}: segment ${s.seq} starts at ${s.startMs}, before ${lastStart}`);
      lastStart = s.startMs;
    }
  });
}

/** Words for comparing texts: whitespace collapsed, no space before punctuation (Amazon writes "help ?"). */
const words = (text: string): string[] => text.replace(/\s+([,.?!;:])/g, '$1').split(/\s+/).filter(Boolean);

describe('own fixtures (test/fixtures/stt): exact segments', () => {
  const cases: { file: string; format: TranscriptFormat; rows: Row[] }[] = [
    {
      file: 'deepgram.json',
      format: 'deepgram',
      rows: [
        ['Speaker 0', 480, 2560, 'So, the espresso machine leaks again.'],
        ['Speaker 0', 5120, 6540, 'A plumber is coming Thursday.'], // a 2.56 s pause starts a segment
        ['Speaker 1', 6900, 7700, 'Great, thanks.'],
      ],
    },
    {
      file: 'deepgram-channels.json',
      format: 'deepgram',
      rows: [
        ['Channel 0', 200, 1400, 'Hello, this is support.'],
        ['Channel 1', 1600, 2900, 'Hi, my router is down.'],
        ['Channel 0', 3900, 4300, 'Sure.'],
      ],
    },
    {
      file: 'assemblyai.json',
      format: 'assemblyai',
      rows: [
        ['A', 250, 1180, 'Deploy is green.'],
        ['B', 1500, 2800, 'Did the migration finish?'],
        ['A', 3100, 3900, 'Yes, at nine.'],
      ],
    },
    {
      file: 'aws-transcribe-2018.json',
      format: 'aws-transcribe',
      rows: [
        ['spk_0', 0, 2100, 'Thanks for calling. How can I help?'],
        ['spk_1', 2500, 4200, 'My order is late.'],
      ],
    },
    {
      file: 'aws-transcribe.json',
      format: 'aws-transcribe',
      rows: [
        ['spk_0', 290, 2100, 'The *** build broke, again.'],
        ['spk_1', 2600, 3900, 'Rolling back now.'],
      ],
    },
    {
      file: 'revai.json',
      format: 'revai',
      rows: [
        ['Host', 300, 2000, 'Welcome to the co-founder show.'],
        ['Host', 2400, 3400, 'Today New York!'], // a new monologue of the same speaker
        ['Speaker 1', 3900, 4800, 'Thanks, hi.'], // the "unknown" element is not text
      ],
    },
    {
      file: 'google-speech.json',
      format: 'google-speech',
      rows: [
        ['Speaker 1', 0, 2000, 'our budget review is on Monday'], // the final result's words, each once
        ['Speaker 2', 2600, 3300, 'can we move it'],
      ],
    },
    {
      file: 'azure-speech.json',
      format: 'azure-speech',
      rows: [
        ['Speaker 1', 40, 1940, 'When did you join?'], // ordered by offset; the NoMatch phrase skipped
        ['Speaker 2', 3100, 5300, 'We joined in 2019.'],
      ],
    },
    {
      file: 'whisperx.json',
      format: 'whisper',
      rows: [
        ['SPEAKER_00', 31, 700, 'We ship on the 3rd.'], // the untimed, unlabelled word keeps its segment's speaker
        ['SPEAKER_01', 2100, 3400, 'Really? That soon?'], // a speaker change inside one segment
      ],
    },
    {
      file: 'words.json',
      format: 'words',
      rows: [
        [null, 500, 1600, 'Okay, recording now.'],
        [null, 4200, 4900, 'First item.'],
      ],
    },
    {
      file: 'zoom-speaker-id.vtt',
      format: 'vtt',
      rows: [
        ['Jane Doe', 500, 5000, 'The new dashboard ships Friday. QA signs off Thursday.'],
        ['Raj Patel', 5400, 8000, 'And the release notes? I will draft them.'], // cue "4" is a number, not a name
        ['Jane Doe', 8200, 9000, 'Thanks, Raj.'], // a quoted name without a participant id
      ],
    },
  ];
  for (const c of cases) {
    test(`${c.file}: detected as ${c.format}, named or auto, exact segments`, () => {
      const text = own(c.file);
      assert.equal(detectFormat(text), c.format);
      assert.equal(detectFormat(text, c.file), c.format);
      const auto = parseTranscript('auto', { text });
      assert.equal(auto.format, c.format);
      assert.deepEqual(rows(auto.segments), c.rows);
      assert.deepEqual(parseTranscript(c.format, { text }).segments, auto.segments);
      assertWellFormed(auto.segments, c.file);
    });
  }

  test('Google: an operation response is unwrapped; without diarization results are read in order, a result without words is one turn', () => {
    const response = {
      name: 'op-1',
      done: true,
      response: {
        '@type': 'type.googleapis.com/google.cloud.speech.v1.LongRunningRecognizeResponse',
        results: [
          { alternatives: [{ transcript: 'first part', words: [{ word: 'first', startTime: '0.100s', endTime: { seconds: 0, nanos: 500000000 } }, { word: 'part', startTime: { seconds: '1' }, endTime: '1.4s' }] }], resultEndTime: '1.500s' },
          { alternatives: [{ transcript: 'no word times here' }], resultEndTime: '4.250s' },
        ],
      },
    };
    const parsed = parseTranscript('auto', { text: JSON.stringify(response) });
    assert.equal(parsed.format, 'google-speech');
    assert.deepEqual(rows(parsed.segments), [
      [null, 100, 1400, 'first part'],
      [null, 1500, 4250, 'no word times here'],
    ]);
  });

  test('Amazon Transcribe with channel identification and no diarization: channels are the speakers', () => {
    const item = (content: string, start: string, end: string) => ({ start_time: start, end_time: end, alternatives: [{ content }], type: 'pronunciation' });
    const output = {
      jobName: 'call',
      results: {
        transcripts: [{ transcript: 'hello there hi' }],
        channel_labels: {
          number_of_channels: 2,
          channels: [
            { channel_label: 'ch_0', items: [item('hello', '0.1', '0.4'), item('there', '0.4', '0.8')] },
            { channel_label: 'ch_1', items: [item('hi', '1.0', '1.2')] },
          ],
        },
        items: [item('hello', '0.1', '0.4'), item('there', '0.4', '0.8'), item('hi', '1.0', '1.2')],
      },
    };
    assert.deepEqual(rows(parseTranscript('auto', { text: JSON.stringify(output) }).segments), [
      ['ch_0', 100, 800, 'hello there'],
      ['ch_1', 1000, 1200, 'hi'],
    ]);
    delete (output.results as { items?: unknown }).items; // only the per-channel lists
    assert.deepEqual(rows(parseTranscript('aws-transcribe', { text: JSON.stringify(output) }).segments), [
      ['ch_0', 100, 800, 'hello there'],
      ['ch_1', 1000, 1200, 'hi'],
    ]);
  });

  test('word lists: integer times with long median words are milliseconds; {word_segments} and {text, words} are word lists', () => {
    const ms = [{ text: 'Hello', start: 120, end: 480 }, { text: 'world.', start: 480, end: 900 }, ...Array.from({ length: 20 }, (_, i) => ({ text: i === 19 ? 'bye.' : 'and', start: 4000 + i * 300, end: 4250 + i * 300 }))];
    const parsed = parseTranscript('auto', { text: JSON.stringify(ms) });
    assert.equal(parsed.format, 'words');
    assert.deepEqual(rows(parsed.segments), [
      [null, 120, 900, 'Hello world.'],
      [null, 4000, 9950, `${'and '.repeat(19)}bye.`],
    ]);
    assert.match(parsed.warnings.join('\n'), /read as milliseconds/);
    const whisperx = { word_segments: [{ word: 'One', start: 0.5, end: 0.9, speaker: 'SPEAKER_01' }, { word: 'two.', start: 0.9, end: 1.2, speaker: 'SPEAKER_01' }] };
    assert.deepEqual(rows(parseTranscript('auto', { text: JSON.stringify(whisperx) }).segments), [['SPEAKER_01', 500, 1200, 'One two.']]);
    const openai = { task: 'transcribe', language: 'english', duration: 2, text: 'Hi all.', words: [{ word: 'Hi', start: 0, end: 0.4 }, { word: 'all.', start: 0.4, end: 0.9 }] };
    assert.equal(detectFormat(JSON.stringify(openai)), 'words');
    // Fewer than twenty {text, start} items stay Whisper segments (a short clip of one-word answers).
    assert.equal(detectFormat('[{"start":0,"end":1,"text":"Hello."},{"start":1,"end":2,"text":"Yes."},{"start":2,"end":3,"text":"Okay."}]'), 'whisper');
  });

  test('a recognised shape with no words is an empty transcript', () => {
    for (const [format, value] of [
      ['deepgram', { results: { channels: [{ alternatives: [{ transcript: '', words: [] }] }] } }],
      ['assemblyai', { status: 'completed', audio_url: 'https://example.com/a.mp3', words: [], utterances: [], text: '' }],
      ['aws-transcribe', { results: { transcripts: [{ transcript: '' }], items: [] } }],
      ['revai', { monologues: [] }],
      ['google-speech', { results: [] , totalBilledTime: '0s' }],
      ['azure-speech', { recognizedPhrases: [{ recognitionStatus: 'NoMatch', channel: 0, offsetInTicks: 0, durationInTicks: 10 }] }],
    ] as const) {
      const text = JSON.stringify(value);
      assert.equal(detectFormat(text), format);
      assert.throws(() => parseTranscript('auto', { text }), (e: unknown) => e instanceof BadInputError && e.message === `transcript is empty (no spoken text after parsing ${format})`, format);
    }
  });
});

describe('edge cases found in review', () => {
  const parse = (value: unknown, format: TranscriptFormat = 'auto') => rows(parseTranscript(format, { text: typeof value === 'string' ? value : JSON.stringify(value) }).segments);
  test('Google: a final result with speakers that does not repeat the others leaves every result read', () => {
    const value = { results: [
      { alternatives: [{ transcript: 'Hello there.', words: [{ word: 'Hello', startOffset: '0s', endOffset: '0.5s', speakerLabel: '1' }, { word: 'there.', startOffset: '0.5s', endOffset: '1s', speakerLabel: '1' }] }] },
      { alternatives: [{ transcript: 'How are you?', words: [{ word: 'How', startOffset: '2s', endOffset: '3s', speakerLabel: '2' }] }] },
    ] };
    assert.deepEqual(parse(value), [['1', 0, 1000, 'Hello there.'], ['2', 2000, 3000, 'How']]);
  });
  test('Google: words with no times at all are untimed, not at 0 s', () => {
    assert.deepEqual(parse({ results: [{ alternatives: [{ words: [{ word: 'Hi', speakerTag: 1 }, { word: 'Yes.', speakerTag: 2 }] }] }] }), [['Speaker 1', null, null, 'Hi'], ['Speaker 2', null, null, 'Yes.']]);
  });
  test('Deepgram: diarized utterances on several channels keep their speakers; paragraphs merge by time', () => {
    const utterances = { results: { channels: [{ alternatives: [{ transcript: '' }] }, { alternatives: [{ transcript: '' }] }], utterances: [{ start: 0, end: 1, transcript: 'Hi.', speaker: 0, channel: 0 }, { start: 1, end: 2, transcript: 'Who?', speaker: 1, channel: 1 }] } };
    assert.deepEqual(parse(utterances), [['Speaker 0 (channel 0)', 0, 1000, 'Hi.'], ['Speaker 1 (channel 1)', 1000, 2000, 'Who?']]);
    const paragraph = (start: number, text: string) => ({ speaker: 0, sentences: [{ text, start, end: start + 1 }] });
    const paragraphs = { results: { channels: [
      { alternatives: [{ transcript: '', paragraphs: { paragraphs: [paragraph(0, 'One.'), paragraph(10, 'Three.')] } }] },
      { alternatives: [{ transcript: '', paragraphs: { paragraphs: [paragraph(5, 'Two.')] } }] },
    ] } };
    assert.deepEqual(parse(paragraphs).map((r) => r[1]), [0, 5000, 10_000]);
  });
  test('Amazon Transcribe: two channels with words starting at the same time keep their own channel', () => {
    const item = (content: string, start: string, end: string) => ({ start_time: start, end_time: end, alternatives: [{ content }], type: 'pronunciation' });
    const punct = { alternatives: [{ content: '.' }], type: 'punctuation' };
    const value = { results: { transcripts: [{ transcript: 'Hello. Hi.' }], items: [item('Hello', '0.0', '0.5'), punct, item('Hi', '0.0', '0.9'), punct],
      channel_labels: { number_of_channels: 2, channels: [{ channel_label: 'ch_0', items: [item('Hello', '0.0', '0.5'), punct] }, { channel_label: 'ch_1', items: [item('Hi', '0.0', '0.9'), punct] }] } } };
    assert.deepEqual(parse(value), [['ch_0', 0, 500, 'Hello.'], ['ch_1', 0, 900, 'Hi.']]);
  });
  test('a word that ends before it starts is bad input in every word-level format', () => {
    for (const value of [
      { results: { channels: [{ alternatives: [{ words: [{ word: 'a', start: 2, end: 1 }] }] }] } },
      { status: 'completed', audio_url: 'x', words: [{ text: 'a', start: 2000, end: 1000, speaker: 'A' }] },
      { results: { items: [{ type: 'pronunciation', start_time: '2', end_time: '1', alternatives: [{ content: 'a' }] }] } },
      { monologues: [{ speaker: 0, elements: [{ type: 'text', value: 'a', ts: 2, end_ts: 1 }] }] },
      { results: [{ alternatives: [{ words: [{ word: 'a', startTime: '2s', endTime: '1s' }] }] }] },
    ]) {
      assert.throws(() => parse(value), (e: unknown) => e instanceof BadInputError && /ends \(1000 ms\) before it starts \(2000 ms\)$/.test(e.message), JSON.stringify(value));
    }
  });
  test('WhisperX: an unaligned word (no times, no speaker) stays in its turn', () => {
    assert.deepEqual(parse({ word_segments: [{ word: 'I', start: 0, end: 0.2, speaker: 'S0' }, { word: '100' }, { word: 'x', start: 0.3, end: 0.5, speaker: 'S0' }] }), [['S0', 0, 500, 'I 100 x']]);
  });
  test('Zoom cue ids: a name with quotes inside; a quoted text line before a timing line stays text', () => {
    assert.deepEqual(parse('WEBVTT\n\n1 "Jane Doe" (1)\n00:00:00.000 --> 00:00:02.000\nHello there.\n\n2 "Robert "Bob" Smith" (2)\n00:00:02.000 --> 00:00:04.000\nHi Jane.\n'), [
      ['Jane Doe', 0, 2000, 'Hello there.'],
      ['Robert "Bob" Smith', 2000, 4000, 'Hi Jane.'],
    ]);
    const quoted = parse('WEBVTT\n\n1\n00:00:00.000 --> 00:00:02.000\nJane: She told me\n"stop right there"\n00:00:02.000 --> 00:00:04.000\nJane: and I stopped.\n');
    assert.deepEqual(quoted, [['Jane', 0, 4000, 'She told me "stop right there" and I stopped.']]);
  });
});

describe('how words become segments', () => {
  const w = (text: string, startMs: number, endMs: number, speaker: string | null = 'A', extra: Partial<Word> = {}): Word => ({ text, startMs, endMs, speaker, ...extra });
  test('a pause of PAUSE_BREAK_MS starts a segment; a shorter one does not', () => {
    const segments = wordsToSegments([w('one', 0, 100), w('two', 100 + PAUSE_BREAK_MS - 1, 2200), w('three', 2200 + PAUSE_BREAK_MS, 4500)]);
    assert.deepEqual(segments.map((s) => s.text), ['one two', 'three']);
  });
  test('a sentence end starts a segment only once the segment spans SENTENCE_BREAK_MS; MAX_SEGMENT_MS splits unpunctuated speech', () => {
    const early = wordsToSegments([w('Short.', 0, 500), w('Next', 600, 900)]);
    assert.deepEqual(early.map((s) => s.text), ['Short. Next']);
    const talk: Word[] = [];
    for (let t = 0; t < SENTENCE_BREAK_MS; t += 1000) talk.push(w(t === 5000 ? 'early.' : t === SENTENCE_BREAK_MS - 1000 ? 'end.' : 'word', t, t + 900));
    talk.push(w('Next', SENTENCE_BREAK_MS, SENTENCE_BREAK_MS + 300));
    const late = wordsToSegments(talk);
    assert.deepEqual(late.map((s) => s.startMs), [0, SENTENCE_BREAK_MS]); // not after "early." (6 s in)
    assert.match(late[0].text, /early\. .* end\.$/);
    const stream: Word[] = [];
    for (let t = 0; t <= MAX_SEGMENT_MS + 1000; t += 1000) stream.push(w('word', t, t + 900));
    const split = wordsToSegments(stream);
    assert.equal(split.length, 2);
    assert.equal(split[1].startMs, MAX_SEGMENT_MS);
  });
  test('no space before a word that joins the previous one, and never a break there', () => {
    const segments = wordsToSegments([w('co', 0, 100), { text: '-', startMs: null, endMs: null, speaker: 'A', spaceBefore: false }, w('founder', 50_000, 50_500, 'A', { spaceBefore: false })]);
    assert.deepEqual(segments.map((s) => s.text), ['co-founder']);
  });
});

describe('metadata.speaker_names', () => {
  test('labels are renamed as the service gives them, a bare number matches "Speaker N", unused keys are a warning', () => {
    const parsed = parseTranscript('auto', { text: own('aws-transcribe.json') }, { speakerNames: { spk_0: 'Ann', spk_1: 'Bo' } });
    assert.deepEqual(parsed.segments.map((s) => s.speaker), ['Ann', 'Bo']);
    assert.deepEqual(parsed.warnings, []);
    const deepgram = parseTranscript('deepgram', { text: own('deepgram.json') }, { speakerNames: { 0: 'Ann', 'Speaker 1': ' Bo  Li ', spk_9: 'Nobody' } });
    assert.deepEqual(deepgram.segments.map((s) => s.speaker), ['Ann', 'Ann', 'Bo Li']);
    assert.deepEqual(deepgram.warnings, ['metadata.speaker_names: 1 of 3 keys matched no speaker ("spk_9")']);
    const vtt = parseTranscript('auto', { text: own('zoom-speaker-id.vtt') }, { speakerNames: { 'Jane Doe': 'Jane D.' } });
    assert.deepEqual(vtt.segments.map((s) => s.speaker), ['Jane D.', 'Raj Patel', 'Jane D.']);
  });
  test('a bad map fails the job as bad input, naming the entry', () => {
    const text = own('assemblyai.json');
    for (const [names, message] of [
      [['A', 'Ann'], 'metadata.speaker_names: expected an object like {"spk_0": "Ann"}, got an array'],
      ['Ann', 'metadata.speaker_names: expected an object like {"spk_0": "Ann"}, got a string ("Ann")'],
      [{ A: 3 }, 'metadata.speaker_names["A"]: expected a non-empty name, got a number (3)'],
      [{ B: '  ' }, 'metadata.speaker_names["B"]: expected a non-empty name, got a string ("  ")'],
    ] as const) {
      assert.throws(() => parseTranscript('auto', { text }, { speakerNames: names }), (e: unknown) => e instanceof BadInputError && e.message === message, message);
    }
  });
});

describe('bad speech-to-text input: one precise line', () => {
  const cases: [string, TranscriptFormat, unknown, RegExp][] = [
    ['JSON of no known shape names the shapes tried', 'auto', { transcript: 'hi', words: 3 }, /^json: matches no known transcript shape \(got an object with keys "transcript", "words"\); tried deepgram \{"results": \{"channels": \[\.\.\.\]\}\}, aws-transcribe .*azure-speech \{"recognizedPhrases": \[\.\.\.\]\}, words .*, whisper .*, segments \[\{"seq", "text"\}\]$/],
    ['deepgram word with a bad time', 'auto', { results: { channels: [{ alternatives: [{ words: [{ word: 'a', start: 'soon', end: 1 }] }] }] } }, /^deepgram: results\.channels\[0\]\.alternatives\[0\]\.words\[0\]\.start: expected a non-negative number of seconds, got a string \("soon"\)$/],
    ['deepgram named but another shape', 'deepgram', { monologues: [] }, /^deepgram: results: expected an object, got nothing \(undefined\)$/],
    ['assemblyai still processing', 'auto', { status: 'processing', audio_url: 'https://example.com/a.mp3', words: null }, /^assemblyai: transcript status is "processing", not "completed" \(fetch it again once its status is "completed"\)$/],
    ['assemblyai error', 'auto', { status: 'error', error: 'Download error, unable to download https://example.com/a.mp3', audio_url: 'x' }, /^assemblyai: transcript status is "error", not "completed": "Download error, unable to download https:\/\/example\.com\/a\.mp3"$/],
    ['aws item with a bad time', 'auto', { results: { items: [{ type: 'pronunciation', start_time: '1.0.0', end_time: '2', alternatives: [{ content: 'x' }] }] } }, /^aws-transcribe: results\.items\[0\]\.start_time: expected a non-negative number of seconds, got a string \("1\.0\.0"\)$/],
    ['revai element without a value', 'auto', { monologues: [{ speaker: 0, elements: [{ type: 'text', ts: 0, end_ts: 1 }] }] }, /^revai: monologues\[0\]\.elements\[0\]\.value: expected a string, got nothing \(undefined\)$/],
    ['google bad duration', 'auto', { results: [{ alternatives: [{ words: [{ word: 'x', startTime: '1.5 seconds' }] }] }] }, /^google-speech: results\[0\]\.alternatives\[0\]\.words\[0\]\.startTime: expected a duration like "1\.300s" or \{"seconds", "nanos"\}, got a string \("1\.5 seconds"\)$/],
    ['azure bad offset', 'auto', { recognizedPhrases: [{ recognitionStatus: 'Success', offset: 'soon', nBest: [{ display: 'Hi.' }] }] }, /^azure-speech: recognizedPhrases\[0\]\.offset: expected an ISO 8601 duration like "PT1\.5S", got a string \("soon"\)$/],
    ['word list end before start', 'auto', [{ word: 'a', start: 2, end: 1 }], /^words\[0\]: end 1 is before start 2 \(seconds\)$/],
  ];
  for (const [name, format, value, message] of cases) {
    test(name, () => {
      assert.throws(() => parseTranscript(format, { text: JSON.stringify(value) }), (e: unknown) => e instanceof BadInputError && message.test(e.message), name);
    });
  }
  test('time fields', () => {
    assert.equal(secondsMs('10.480000', 'x'), 10_480);
    assert.equal(secondsMs(5.7799997, 'x'), 5780);
    assert.equal(ticksMs(400000.0, 'x'), 40);
    assert.equal(isoDurationMs('PT1M2.5S', 'x'), 62_500);
    assert.equal(isoDurationMs('P1DT1H', 'x'), 90_000_000);
    assert.equal(protoDurationMs('2s', 'x'), 2000);
    assert.equal(protoDurationMs({}, 'x'), 0);
    assert.equal(secondsMs(null, 'x'), null);
    assert.throws(() => isoDurationMs('PT', 'x'), BadInputError);
    assert.throws(() => secondsMs(1e17, 'x'), /out of range/);
  });
});

/** The text each service writes beside its words (or the file's own lines): every word of it must come out once, in order. */
const SOURCE_TEXT: Record<string, (text: string, speakers: Set<string>) => string> = {
  'deepgram-diarized-1.json': (t) => JSON.parse(t).results.channels[0].alternatives[0].transcript,
  'assemblyai-utterances-1.json': (t) => JSON.parse(t).text,
  'aws-transcribe-speakers-1.json': (t) => JSON.parse(t).results.transcripts[0].transcript,
  'aws-transcribe-speakers-2.json': (t) => JSON.parse(t).results.transcripts[0].transcript,
  'revai-1.json': (t) => revText(t),
  'revai-2.json': (t) => revText(t),
  'azure-batch-1.json': (t) => JSON.parse(t).combinedRecognizedPhrases[0].display,
  'azure-batch-2.json': (t) => JSON.parse(t).combinedRecognizedPhrases[0].display,
  'whisper-words-1.json': (t) => JSON.parse(t).text,
  'zoom-name-colon-1.vtt': (t, speakers) => vttText(t, speakers),
  'zoom-name-colon-2.vtt': (t, speakers) => vttText(t, speakers),
  'otter-1.txt': (t) => otterText(t),
};

function revText(text: string): string {
  const value = JSON.parse(text) as { monologues: { elements: { type: string; value: string }[] }[] };
  return value.monologues.map((m) => m.elements.filter((e) => e.type !== 'unknown').map((e) => e.value).join('')).join(' ');
}

/** Cue text lines (not WEBVTT, ids or timings), each without its "Name: " prefix. */
function vttText(text: string, speakers: Set<string>): string {
  return text
    .replace(/\r\n/g, '\n')
    .split('\n')
    .filter((line) => line.trim() !== '' && line !== 'WEBVTT' && !/^\d+$/.test(line) && !line.includes('-->'))
    .map((line) => {
      const m = /^([^:]{1,60}): (.*)$/.exec(line);
      return m && speakers.has(m[1]) ? m[2] : line;
    })
    .join(' ');
}

/** Otter: every line but the "Name  M:SS  " headers and the footer. */
function otterText(text: string): string {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '' && !/^.+ {2}\d+:\d\d {2}$/.test(line) && !/^Transcribed by/.test(line))
    .join(' ');
}

describe('real speech-to-text files (../shared/fixtures-stt)', () => {
  const expected: Record<string, { format: TranscriptFormat; speakers: string[] | number }> = {
    'deepgram-diarized-1.json': { format: 'deepgram', speakers: ['Speaker 0', 'Speaker 1', 'Speaker 2'] },
    'assemblyai-utterances-1.json': { format: 'assemblyai', speakers: ['A'] },
    'aws-transcribe-speakers-1.json': { format: 'aws-transcribe', speakers: ['spk_0', 'spk_1', 'spk_2'] },
    'aws-transcribe-speakers-2.json': { format: 'aws-transcribe', speakers: ['spk_0', 'spk_1'] },
    'revai-1.json': { format: 'revai', speakers: ['Speaker 0'] },
    'revai-2.json': { format: 'revai', speakers: ['Speaker 0'] },
    'azure-batch-1.json': { format: 'azure-speech', speakers: ['Speaker 1', 'Speaker 2'] },
    'azure-batch-2.json': { format: 'azure-speech', speakers: ['Speaker 1', 'Speaker 2'] },
    'whisper-words-1.json': { format: 'whisper', speakers: [] },
    'zoom-name-colon-1.vtt': { format: 'vtt', speakers: 20 },
    'zoom-name-colon-2.vtt': { format: 'vtt', speakers: ['Andrew Knight', 'George Harrison', 'John Lennon', 'Paul McCartney', 'Ringo Starr'] },
    'otter-1.txt': { format: 'text', speakers: [...Array.from({ length: 10 }, (_, i) => `Speaker ${i + 1}`), 'Unknown Speaker'] },
  };

  test('every file in the folder has an expectation here', (t) => {
    if (!REAL_FILES.present) return void t.skip('../shared/fixtures-stt absent');
    assert.deepEqual(readdirSync(REAL_FILES.url).filter((f) => !f.endsWith('.tsv')).sort(), Object.keys(expected).sort());
  });

  for (const [file, want] of Object.entries(expected)) {
    test(`${file}: ${want.format}, speakers found, times monotonic, no markup, every word once`, (t) => {
      const text = real(t, file);
      if (text === null) return;
      assert.equal(detectFormat(text), want.format);
      assert.equal(detectFormat(text, file), want.format);
      const parsed = parseTranscript('auto', { text });
      assert.equal(parsed.format, want.format);
      assertWellFormed(parsed.segments, file);
      const speakers = new Set(parsed.segments.flatMap((s) => (s.speaker === null ? [] : [s.speaker])));
      if (typeof want.speakers === 'number') assert.equal(speakers.size, want.speakers, [...speakers].join(', '));
      else assert.deepEqual([...speakers].sort(), [...want.speakers].sort());
      assert.deepEqual(words(parsed.segments.map((s) => s.text).join(' ')), words(SOURCE_TEXT[file](text, speakers)));
    });
  }

  test('Zoom: a device-style name with U+2019, an all-caps name and a non-ASCII name are speakers', (t) => {
    const text = real(t, 'zoom-name-colon-1.vtt');
    if (text === null) return;
    const speakers = new Set(parseTranscript('auto', { text }).segments.map((s) => s.speaker));
    for (const name of ['Saurabh Swaroop’s iPad', 'OSARODION OHENZUWA', 'Dominik Böhler']) assert.ok(speakers.has(name), name);
  });

  test('Amazon Transcribe 2018: speakers joined from speaker_labels by start time; 2025: inline labels', (t) => {
    const old = real(t, 'aws-transcribe-speakers-1.json');
    if (old === null) return;
    const value = JSON.parse(old) as { results: { speaker_labels: { segments: { speaker_label: string; items: { start_time: string }[] }[] } } };
    const firstTurn = value.results.speaker_labels.segments[0];
    const parsed = parseTranscript('aws-transcribe', { text: old });
    assert.equal(parsed.segments[0].speaker, firstTurn.speaker_label);
    assert.equal(parsed.segments[0].startMs, Math.round(Number(firstTurn.items[0].start_time) * 1000));
  });
});
