/**
 * Transcript formats -> Segment[] (src/shared/formats). Pure: no threads, no database.
 * - own fixtures (test/fixtures/*): exact Segment[] expectations;
 * - real files written by real tools (../shared/fixtures, third-party, read in place, never
 *   copied): properties computed from the files themselves; skipped loudly when absent;
 * - bad input: every problem is a BadInputError with one precise line.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test, type TestContext } from 'node:test';
import { BadInputError } from '../../src/shared/errors.ts';
import { cleanSegmentText } from '../../src/shared/formats/clean-text.ts';
import { detectFormat, parseTranscript } from '../../src/shared/formats/parse-transcript.ts';
import { parseClock } from '../../src/shared/formats/timestamps.ts';
import type { Segment, TranscriptFormat } from '../../src/shared/types.ts';
import { realFixtures } from '../support/real-fixtures.ts';

const OWN = new URL('../fixtures/', import.meta.url);
const REAL_FILES = realFixtures('fixtures', 'real-file format tests');

function own(name: string): string {
  return readFileSync(new URL(name, OWN), 'utf8');
}

const real = (t: TestContext, name: string): string | null => REAL_FILES.read(t, name);

function seg(seq: number, text: string, speaker: string | null, startMs: number | null, endMs: number | null): Segment {
  return { seq, text, speaker, startMs, endMs };
}

/** Invariants every parse result must hold. */
function assertWellFormed(segments: Segment[]): void {
  assert.ok(segments.length > 0);
  segments.forEach((s, i) => {
    assert.equal(s.seq, i + 1);
    assert.equal(s.text, cleanSegmentText(s.text), `segment ${s.seq} text not clean`);
    assert.notEqual(s.text, '');
    assert.ok(!/[\u0000-\u0008\u000B\u000C\u000E-\u001F\u00A0\uFEFF]/.test(s.text), `segment ${s.seq} has control/NBSP/BOM`);
    if (s.startMs !== null && s.endMs !== null) assert.ok(s.endMs >= s.startMs, `segment ${s.seq} ends before it starts`);
  });
}

const TEAMS_A = '0f1e2d3c-aaaa-4bbb-8ccc-123456789abc@9a8b7c6d-1111-4222-8333-444455556666';
const TEAMS_B = '5e6f7a8b-bbbb-4ccc-9ddd-abcdefabcdef@9a8b7c6d-1111-4222-8333-444455556666';

describe('own fixtures: exact segments', () => {
  const cases: Array<{ file: string; format: string; segments: Segment[]; warnings?: RegExp[] }> = [
    {
      file: 'zoom-style.vtt', // BOM, NOTE block, cue ids, cue settings, NBSP, "(SL)" name, continuation cues
      format: 'vtt',
      segments: [
        seg(1, 'Morning all, shall we start with the agenda?', 'Priya Raman (SL)', 1200, 4800),
        seg(2, 'Sure. First item is the venue. We booked the hall until six.', 'Tom Okafor', 5100, 10400),
        seg(3, 'Great: that works for me.', 'Priya Raman (SL)', 11000, 12500),
        seg(4, 'Then catering. So the plan: sandwiches & soup. and coffee, of course', 'Tom Okafor', 13000, 16000),
      ],
    },
    {
      file: 'teams-style.vtt', // CRLF, non-padded stamps with short ms ("0:0:2.10" = 2.010 s), GUID voices, overlap
      format: 'vtt',
      segments: [
        seg(1, 'Can everyone hear me?', TEAMS_A, 0, 2480),
        seg(2, 'Yes, loud and clear.', TEAMS_B, 2010, 4730),
        seg(3, "OK, let's begin. First the budget.", TEAMS_A, 4500, 9400),
        seg(4, "Sorry I'm late <3", 'Dana Whitfield', 65300, 67020),
      ],
    },
    {
      file: 'youtube-style.vtt', // header lines, rolling 2-line captions, inline word stamps, 10 ms snapshots
      format: 'vtt',
      segments: [
        seg(1, '[Music]', null, 0, 2990),
        seg(2, 'Tide pools are tiny oceans', null, 3000, 5430),
        seg(3, 'left behind by the tide.', null, 5440, 7870),
        seg(4, 'Anemones', null, 7880, 8600),
        seg(5, 'close when the water drops.', null, 8610, 10990),
      ],
      warnings: [/^vtt: rolling captions \(YouTube style\): removed 6 repeated caption lines$/],
    },
    {
      file: 'italics.srt', // {\an8}, <i> <b> <font>, [Name] tags, tag alone on a line, dialogue dashes, dot ms
      format: 'srt',
      segments: [
        seg(1, '[waves crashing]', null, 1000, 3200),
        seg(2, 'Where is the lighthouse? It should be right here.', 'Hélène', 3500, 6900),
        seg(3, '-Turn left at the pier. -[Jérôme] Left? Are you sure?', null, 7000, 9400),
        seg(4, '[fisherman] Always left.', null, 9500, 11000),
        seg(5, "It's the old keeper's house.", null, 11200, 13000),
      ],
    },
    {
      file: 'whisper.json', // CRLF, no trailing newline, Cyrillic, leading spaces, seconds -> ms, blank segment
      format: 'whisper',
      segments: [seg(1, 'Привет, это тест.', null, 0, 2340), seg(2, 'Второй сегмент.', null, 2340, 5002)],
    },
    {
      file: 'speakers.txt', // untitled paragraph, [hh:mm:ss] / (hh:mm:ss) stamps before/after names, SPEAKER_ blocks
      format: 'text',
      segments: [
        seg(1, 'Garden club meeting, spring planning. Notes taken by the secretary.', null, null, null),
        seg(2, "Welcome back everyone. Let's keep it short today. First, the seed swap.", 'Marta Silva', 5000, 70000),
        seg(3, 'I can bring tomato seedlings.', 'Ken', 70000, 120000),
        seg(4, 'Lovely, thank you Ken.', 'Marta Silva', 120000, null),
        seg(5, 'One more thing. The shed key is under the blue pot.', 'SPEAKER_02', null, null),
        seg(6, 'Noted.', 'SPEAKER_01', null, null),
        seg(7, 'Meeting closed at [00:03:20] then.', 'Ken', 195000, null),
      ],
    },
    {
      file: 'segments.json', // out of order, duplicate seq 3 (time, then untimed), blank text, "" speaker
      format: 'segments',
      segments: [
        seg(1, 'First line.', 'Ann', 0, 4000),
        seg(2, 'Third, earlier in time.', 'Bo', 7000, 8000),
        seg(3, 'Third, later in time.', 'Bo', 9000, 9500),
        seg(4, 'Third, no time given.', null, null, null),
        seg(5, 'Untimed closing remark.', null, null, null),
      ],
      warnings: [/not in seq order/, /^segments: 1 duplicate seq values \(3\) kept, ordered by seq, start_ms, then input position$/],
    },
  ];
  for (const c of cases) {
    test(`${c.file}: explicit format and auto give the exact segments`, () => {
      const text = own(c.file);
      const explicit = parseTranscript(c.format as TranscriptFormat, { text });
      assert.deepEqual(explicit.segments, c.segments);
      const auto = parseTranscript('auto', { text });
      assert.equal(auto.format, c.format);
      assert.deepEqual(auto.segments, c.segments);
      assert.equal(detectFormat(text), c.format);
      assert.equal(detectFormat(text, c.file), c.format);
      const warnings = c.warnings ?? [];
      assert.equal(explicit.warnings.length, warnings.length, explicit.warnings.join(' | '));
      warnings.forEach((re, i) => assert.match(explicit.warnings[i], re));
    });
  }
});

describe('real files (../shared/fixtures)', () => {
  test('zoom: 2 speakers, prefixes removed, continuation cues attached to the previous speaker', (t) => {
    const text = real(t, 'zoom-meeting-1.vtt');
    if (text === null) return;
    const { format, segments } = parseTranscript('auto', { text });
    assert.equal(format, 'vtt');
    assertWellFormed(segments);
    const cueTexts = text.split(/\n\n+/).map((b) => b.split('\n').slice(2).join(' ')).filter((s) => s !== '');
    const prefix = /^([^:]{1,40}): /;
    const names = new Set(cueTexts.flatMap((c) => prefix.exec(c)?.[1] ?? []));
    assert.deepEqual(new Set(segments.map((s) => s.speaker)), names);
    assert.equal(names.size, 2);
    assert.ok(names.has('Ashlee Kupor (SL)'));
    for (const s of segments) for (const name of names) assert.ok(!s.text.startsWith(`${name}:`), s.text);
    // Walk the cues: each unprefixed cue belongs to the segment of the last prefixed speaker.
    let speaker = '';
    let continuations = 0;
    let cursor = 0;
    for (const cue of cueTexts) {
      const m = prefix.exec(cue);
      if (m) speaker = m[1];
      else continuations += 1;
      const body = cleanSegmentText(m ? cue.slice(m[0].length) : cue);
      while (cursor < segments.length && !segments[cursor].text.includes(body)) cursor += 1;
      assert.ok(cursor < segments.length, `cue text not found in order: ${body}`);
      assert.equal(segments[cursor].speaker, speaker, body);
    }
    assert.equal(continuations, 9);
    const changes = segments.filter((s, i) => i === 0 || s.speaker !== segments[i - 1].speaker).length;
    assert.equal(changes, segments.length, 'consecutive segments of one speaker should have been joined');
  });

  test('teams: 3 GUID speakers, CRLF, non-padded stamps parsed', (t) => {
    const text = real(t, 'teams-1.vtt');
    if (text === null) return;
    assert.ok(text.includes('\r\n'));
    const { segments } = parseTranscript('auto', { text });
    assertWellFormed(segments);
    const voices = new Set([...text.matchAll(/<v ([^>]+)>/g)].map((m) => m[1]));
    assert.equal(voices.size, 3);
    assert.deepEqual(new Set(segments.map((s) => s.speaker)), voices);
    // The "Stop." cue starts a segment; its stamps are written "0:4:6.80 --> 0:4:6.530" (ms unpadded).
    const lines = text.split('\r\n');
    const stopLine = lines.findIndex((l) => l.endsWith('>Stop.</v>'));
    const [start, end] = lines[stopLine - 1].split(' --> ');
    const unpaddedMs = (stamp: string): number => {
      const [h, m, s] = stamp.split(':');
      const [sec, ms] = s.split('.');
      return ((Number(h) * 60 + Number(m)) * 60 + Number(sec)) * 1000 + Number(ms);
    };
    assert.equal(start, '0:4:6.80');
    const stop = segments.find((s) => s.text.startsWith('Stop.'));
    assert.equal(stop?.startMs, unpaddedMs(start));
    assert.ok((stop?.endMs ?? 0) >= unpaddedMs(end));
    assert.equal(segments[0].startMs, 0);
    assert.equal(segments[0].endMs, 3490);
    const lastEnd = Math.max(...[...text.matchAll(/--> (\S+)/g)].map((m) => unpaddedMs(m[1])));
    assert.equal(Math.max(...segments.map((s) => s.endMs ?? 0)), lastEnd);
    // The cue "0:8:44.690 --> 0:8:46.140" lies inside the segment that holds its text.
    const late = lines.indexOf('0:8:44.690 --> 0:8:46.140');
    const lateText = cleanSegmentText(lines[late + 1].replace(/<[^>]+>/g, ''));
    const holder = segments.find((s) => s.text.includes(lateText));
    assert.ok(holder && holder.startMs !== null && holder.endMs !== null, lateText);
    assert.ok(holder.startMs <= 524_690 && holder.endMs >= 526_140, JSON.stringify(holder));
  });

  test('youtube: rolling captions de-duplicated, every word once, no tags', (t) => {
    const text = real(t, 'youtube-autocaption-1.vtt');
    if (text === null) return;
    const { segments, warnings } = parseTranscript('auto', { text });
    assertWellFormed(segments);
    assert.match(warnings[0] ?? '', /rolling captions/);
    assert.ok(segments.every((s) => s.speaker === null));
    assert.ok(!segments.some((s) => /[<>]|align:|-->/.test(s.text)));
    assert.equal(segments[0].text, '[Music]');
    const words = segments.flatMap((s) => s.text.split(' '));
    for (let i = 0; i + 12 <= words.length; i += 1) {
      const a = words.slice(i, i + 6).join(' ');
      assert.notEqual(a, words.slice(i + 6, i + 12).join(' '), `"${a}" repeated at word ${i}`);
    }
    // Each new caption line carries one <c> tag per word after its first word.
    const tagLines = text.split('\n').filter((l) => l.includes('<c>'));
    const taggedWords = tagLines.length + (text.match(/<c>/g) ?? []).length;
    assert.ok(Math.abs(words.length - taggedWords) / taggedWords < 0.02, `${words.length} words vs ${taggedWords} tagged`);
  });

  test('srt: tags stripped, accented speaker names intact, dialogue kept readable', (t) => {
    const text = real(t, 'srt-netflix-italics-1.srt');
    if (text === null) return;
    const { segments } = parseTranscript('auto', { text });
    assertWellFormed(segments);
    assert.ok(!segments.some((s) => /<\/?[ibu]>|<font|\{\\/.test(s.text)));
    const cues = (text.match(/-->/g) ?? []).length;
    assert.ok(segments.length <= cues && segments.length > cues * 0.9, `${segments.length} segments from ${cues} cues`);
    const speakers = new Set(segments.flatMap((s) => s.speaker ?? []));
    for (const name of ['Léonard', 'Guédira', 'Claire', 'Belkacem']) assert.ok(speakers.has(name), name);
    assert.ok(segments.some((s) => s.speaker === 'Léonard' && s.text === 'Gentlemen…'));
    assert.ok(segments.some((s) => s.speaker === null && s.text === '-Brown skin? -[Claire] Yeah.'));
    assert.ok(segments.some((s) => s.speaker === null && s.text === '[Guédira sighs]'));
    assert.ok(!speakers.has('inspector'), 'lowercase descriptions are not names');
  });

  test('whisper: Cyrillic, seconds -> ms, CRLF and no trailing newline', (t) => {
    const text = real(t, 'whisper-russian-call-1.json');
    if (text === null) return;
    assert.ok(text.includes('\r\n') && !text.endsWith('\n'));
    const source = JSON.parse(text) as { segments: Array<{ start: number; end: number; text: string }> };
    const { format, segments } = parseTranscript('auto', { text });
    assert.equal(format, 'whisper');
    assertWellFormed(segments);
    assert.equal(segments.length, source.segments.length);
    segments.forEach((s, i) => {
      assert.equal(s.startMs, Math.round(source.segments[i].start * 1000));
      assert.equal(s.endMs, Math.round(source.segments[i].end * 1000));
      assert.equal(s.text, source.segments[i].text.trim());
      assert.match(s.text, /[А-яЁё]/);
    });
  });

  test('whisperx text: SPEAKER_00/01 blocks with their lines', (t) => {
    const text = real(t, 'podcast-whisperx-speaker-blocks-1.txt');
    if (text === null) return;
    const { format, segments } = parseTranscript('auto', { text });
    assert.equal(format, 'text');
    assertWellFormed(segments);
    const blocks = text.trim().split(/\n\n+/).map((b) => b.split('\n'));
    assert.ok(blocks.every((b) => /^SPEAKER_\d\d:$/.test(b[0])));
    assert.deepEqual(new Set(segments.map((s) => s.speaker)), new Set(['SPEAKER_00', 'SPEAKER_01']));
    assert.equal(segments.length, blocks.length); // turns alternate in this file
    segments.forEach((s, i) => {
      assert.equal(s.speaker, blocks[i][0].slice(0, -1));
      assert.equal(s.text, cleanSegmentText(blocks[i].slice(1).join(' ')));
      assert.equal(s.startMs, null);
    });
  });

  test('format detection on every real file, by content and by name', (t) => {
    const expected: Record<string, string> = {
      'zoom-meeting-1.vtt': 'vtt',
      'teams-1.vtt': 'vtt',
      'youtube-autocaption-1.vtt': 'vtt',
      'srt-netflix-italics-1.srt': 'srt',
      'whisper-russian-call-1.json': 'whisper',
      'podcast-whisperx-speaker-blocks-1.txt': 'text',
    };
    for (const [file, format] of Object.entries(expected)) {
      const text = real(t, file);
      if (text === null) return;
      assert.equal(detectFormat(text), format, file);
      assert.equal(detectFormat(text, file), format, file);
      assert.equal(parseTranscript('auto', { text }).format, format, file);
    }
  });
});

describe('bad input: BadInputError with one precise line', () => {
  const vttTwoCues = (second: string): string =>
    `WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.000\nok\n\n2\n${second}\nbad cue\n`;
  const table: Array<[string, TranscriptFormat, unknown, RegExp]> = [
    ['payload is a number', 'auto', 42, /^payload: expected \{"text": string\} or \{"segments": \[\.\.\.\]\}, got a number \(42\)$/],
    ['payload is null', 'vtt', null, /^payload: expected .+, got null$/],
    ['payload is an array', 'auto', [1], /^payload: expected .+, got an array$/],
    ['payload has neither key', 'auto', {}, /^payload: expected .+, got an empty object$/],
    ['payload has other keys', 'auto', { content: 'x' }, /^payload: expected .+, got an object with keys "content"$/],
    ['text and segments null', 'auto', { text: null, segments: null }, /^payload: expected .+, got "text": null, "segments": null$/],
    ['text is a number', 'auto', { text: 5 }, /^payload\.text: expected a string, got a number \(5\)$/],
    ['segments is an object', 'auto', { segments: { a: 1 } }, /^payload\.segments: expected an array, got an object$/],
    ['unknown format', 'docx' as TranscriptFormat, { text: 'hi' }, /^unknown format "docx" \(expected one of auto, segments, vtt, srt, whisper, text, words, deepgram, assemblyai, aws-transcribe, revai, google-speech, azure-speech\)$/],
    ['empty text', 'auto', { text: '' }, /^transcript is empty \(payload\.text is blank\)$/],
    ['blank text', 'text', { text: ' \n\t\u00a0\u0000 \r\n\uFEFF' }, /^transcript is empty \(payload\.text is blank\)$/],
    ['vtt with blank cues only', 'auto', { text: 'WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n \n<i> </i>\n' }, /^transcript is empty \(no spoken text after parsing vtt\)$/],
    ['vtt without cues', 'vtt', { text: 'WEBVTT\n\nhello there\n' }, /^vtt: no cues found \(expected lines like "00:00:01\.000 --> 00:00:04\.000"\)$/],
    ['no segments', 'auto', { segments: [] }, /^transcript is empty \(no spoken text after parsing segments\)$/],
    ['blank segments', 'segments', { segments: [{ seq: 1, text: ' \u0000 ' }] }, /^transcript is empty \(no spoken text after parsing segments\)$/],
    ['segment text null', 'auto', { segments: [{ seq: 1, text: 'a' }, { seq: 2, text: null }] }, /^segments\[1\]\.text: expected a string, got null$/],
    ['segment seq string', 'segments', { segments: [{ seq: '1', text: 'a' }] }, /^segments\[0\]\.seq: expected a number, got a string \("1"\)$/],
    ['segment seq missing', 'segments', { segments: [{ text: 'a' }] }, /^segments\[0\]\.seq: expected a number, got nothing \(undefined\)$/],
    ['segment speaker number', 'segments', { segments: [{ seq: 1, text: 'a', speaker: 5 }] }, /^segments\[0\]\.speaker: expected a string or null, got a number \(5\)$/],
    ['segment negative start', 'segments', { segments: [{ seq: 1, text: 'a', start_ms: -1 }] }, /^segments\[0\]\.start_ms: expected a non-negative number of milliseconds or null, got a number \(-1\)$/],
    ['segment end before start', 'segments', { segments: [{ seq: 1, text: 'a' }, { seq: 2, text: 'b' }, { seq: 3, text: 'c', start_ms: 200, end_ms: 100 }] }, /^segments\[2\]: end_ms 100 is before start_ms 200$/],
    ['segment not an object', 'segments', { segments: ['hi'] }, /^segments\[0\]: expected an object, got a string \("hi"\)$/],
    ['segments text not JSON', 'segments', { text: 'Ann: hello' }, /^segments: text is not JSON: /],
    ['segments text JSON of wrong shape', 'segments', { text: '{"items": []}' }, /^segments: expected payload\.text to be an array or \{"segments": \[\.\.\.\]\}, got an object$/],
    ['vtt minutes 61', 'vtt', { text: vttTwoCues('00:61:00.000 --> 01:02:00.000') }, /^vtt: cue 2 \(line 8\): bad timestamp "00:61:00\.000"$/],
    ['vtt 12:xx', 'auto', { text: 'WEBVTT\n\n12:xx --> 00:13.000\nhi\n' }, /^vtt: cue 1 \(line 3\): bad timestamp "12:xx"$/],
    ['vtt end before start', 'vtt', { text: vttTwoCues('00:00:05.000 --> 00:00:04.000') }, /^vtt: cue 2 \(line 8\): end 00:00:04\.000 is before start 00:00:05\.000$/],
    ['vtt missing end', 'vtt', { text: 'WEBVTT\n\n00:00:01.000 -->\nhi\n' }, /^vtt: cue 1 \(line 3\): missing end timestamp after "-->"$/],
    ['srt bad timestamp', 'auto', { text: '1\n00:00:01,000 --> 00:00:02,000\nhi\n\n2\n00:00:03,000 --> 00:00:0x,000\nyo\n' }, /^srt: cue 2 \(line 6\): bad timestamp "00:00:0x,000"$/],
    ['srt end before start', 'srt', { text: '7\r\n00:01:00,000 --> 00:00:59,000\r\nhi\r\n' }, /^srt: cue 7 \(line 2\): end 00:00:59\.000 is before start 00:01:00\.000$/],
    ['srt number without timing', 'srt', { text: '1\n00:00:01,000 --> 00:00:02,000\nhi\n\n2\nno timing here\n' }, /^srt: cue 2 \(line 5\): expected a timing line "00:00:01,000 --> 00:00:02,500" after the cue number, got "no timing here"$/],
    ['srt that is not srt', 'srt', { text: 'Just some notes.\nNothing else.' }, /^srt: line 1: expected a cue number then "00:00:01,000 --> 00:00:02,500", got "Just some notes\."$/],
    ['whisper text not JSON', 'whisper', { text: '{"segments": [ {"start": 0, oops } ]}' }, /^whisper: text is not JSON: \S.{5,}$/],
    ['auto: broken JSON is reported as JSON', 'auto', { text: '{"segments": [\n{"start": 0,, }]}' }, /^json: text is not JSON: /],
    ['whisper of wrong shape', 'whisper', { text: '3' }, /^whisper: expected \{"segments": \[\{"start", "end", "text"\}, \.\.\.\]\}, got a number \(3\)$/],
    ['whisper segment without end', 'whisper', { text: '{"segments":[{"start":1.5,"text":"hi"}]}' }, /^whisper: segments\[0\]\.end: expected a non-negative number of seconds, got nothing \(undefined\)$/],
    ['whisper end before start', 'auto', { text: '[{"start":2,"end":1,"text":"x"}]' }, /^whisper: segments\[0\]: end 1 is before start 2 \(seconds\)$/],
    ['whisper given segments', 'whisper', { segments: [{ seq: 1, text: 'a' }] }, /^whisper: expected payload\.text \(the file content as a string\), got only payload\.segments \(use format "segments" or "auto"\)$/],
    ['text stamp 00:61:00', 'text', { text: 'Intro\n[00:61:00] Ann: hi' }, /^text: line 2: bad timestamp "\[00:61:00\]"$/],
    ['binary garbage', 'auto', { text: '\u0000\u0001\u0002PK\u0003\u0004\uFFFD\uFFFD\u0010abc\u0007\u0008' }, /^payload\.text looks binary \(\d+% of \d+ characters are control or replacement characters\); send UTF-8 text$/],
    // Times the database cannot store (bigint ms, and exact in JavaScript: 0 .. 2^53-1) are bad input, not retryable.
    ['segment start_ms 1e20', 'segments', { segments: [{ seq: 1, text: 'a', start_ms: 0 }, { seq: 2, text: 'b', start_ms: 1e20 }] }, /^segments\[1\]\.start_ms: 100000000000000000000 is out of range \(expected 0 to 9007199254740991 milliseconds\)$/],
    ['segment end_ms 1e300', 'auto', { segments: [{ seq: 1, text: 'a', start_ms: 5, end_ms: 1e300 }] }, /^segments\[0\]\.end_ms: 1e\+300 is out of range \(expected 0 to 9007199254740991 milliseconds\)$/],
    ['segment start_ms just past 2^53', 'segments', { text: '[{"seq": 1, "text": "a", "start_ms": 9007199254740993}]' }, /^segments\[0\]\.start_ms: 9007199254740992 is out of range/],
    ['segment start_ms Infinity', 'segments', { segments: [{ seq: 1, text: 'a', start_ms: Infinity }] }, /^segments\[0\]\.start_ms: expected a non-negative number of milliseconds or null, got a number \(Infinity\)$/],
    ['segment end_ms NaN', 'segments', { segments: [{ seq: 1, text: 'a', end_ms: NaN }] }, /^segments\[0\]\.end_ms: expected a non-negative number of milliseconds or null, got a number \(NaN\)$/],
    ['whisper start 1e17 seconds', 'whisper', { text: '{"segments":[{"start":0,"end":1,"text":"a"},{"start":1e17,"end":1e17,"text":"b"}]}' }, /^whisper: segments\[1\]\.start: 100000000000000000 is out of range \(expected 0 to 9007199254740\.991 seconds\)$/],
    ['whisper negative end', 'whisper', { text: '[{"start":0,"end":-1,"text":"a"}]' }, /^whisper: segments\[0\]\.end: expected a non-negative number of seconds, got a number \(-1\)$/],
    ['vtt absurd hours', 'vtt', { text: vttTwoCues('99999999999999999999:00:00.000 --> 99999999999999999999:00:01.000') }, /^vtt: cue 2 \(line 8\): timestamp "99999999999999999999:00:00\.000" is out of range \(expected at most 2501999792:59:00\.991\)$/],
    ['srt absurd end', 'srt', { text: '1\n00:00:01,000 --> 3000000000:00:00,000\nhi\n' }, /^srt: cue 1 \(line 2\): timestamp "3000000000:00:00,000" is out of range/],
    // Text of only zero-width / format characters is empty, like blank text.
    ['only zero-width and format characters', 'text', { text: '\u200B\u200C\u200D\u2060\uFEFF \n\u00AD\u2062\u200E\n\n\u200B' }, /^transcript is empty \(payload\.text is blank\)$/],
    ['auto: thousands of zero-width spaces', 'auto', { text: '\u200B'.repeat(5000) }, /^transcript is empty \(payload\.text is blank\)$/],
    ['vtt cues of only zero-width characters', 'vtt', { text: 'WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n\u200B\u200D\n\n00:00:03.000 --> 00:00:04.000\n\u2060 \uFEFF\n' }, /^transcript is empty \(no spoken text after parsing vtt\)$/],
    ['srt cues of only zero-width characters', 'srt', { text: '1\n00:00:01,000 --> 00:00:02,000\n\u200B\n\n2\n00:00:03,000 --> 00:00:04,000\n<i>\u2060</i>\n' }, /^transcript is empty \(no spoken text after parsing srt\)$/],
    ['whisper segments of only zero-width characters', 'whisper', { text: '[{"start":0,"end":1,"text":"\\u200b"},{"start":1,"end":2,"text":" \\u2060\\ufeff"}]' }, /^transcript is empty \(no spoken text after parsing whisper\)$/],
    ['segments of only format characters', 'segments', { segments: [{ seq: 1, text: '\u200B' }, { seq: 2, text: '\u200E\u202A \u2063\u00AD' }] }, /^transcript is empty \(no spoken text after parsing segments\)$/],
    ['UTF-16 read as UTF-8', 'auto', { text: 'W\u0000E\u0000B\u0000V\u0000T\u0000T\u0000\n\u0000\n\u0000a\u0000b\u0000' }, /^payload\.text looks binary \(50% of 20 characters/],
  ];
  for (const [name, format, payload, re] of table) {
    test(name, () => {
      assert.throws(
        () => parseTranscript(format, payload),
        (error: unknown) => {
          assert.ok(error instanceof BadInputError, `not a BadInputError: ${String(error)}`);
          assert.equal(error.category, 'bad_input');
          assert.match(error.message, re);
          assert.ok(!error.message.includes('\n'), 'message must be one line');
          return true;
        },
      );
    });
  }

  test('messages quote at most ~80 chars of the user text', () => {
    const long = 'x'.repeat(500);
    const cases: Array<[TranscriptFormat, unknown]> = [
      ['vtt', { text: `WEBVTT\n\n${long} --> 00:00:01.000\nhi\n` }],
      ['whisper', { text: `{"a": ${long}}` }],
      ['srt', { text: long }],
      ['segments', { segments: [{ seq: long, text: 'a' }] }],
      ['auto', { [long]: 1 }],
      [long as TranscriptFormat, { text: 'a' }],
    ];
    for (const [format, payload] of cases) {
      assert.throws(
        () => parseTranscript(format, payload),
        (error: unknown) => error instanceof BadInputError && (error.message.match(/x/g) ?? []).length <= 80,
      );
    }
  });
});

describe('input that succeeds after cleaning and ordering', () => {
  test('NUL and other control chars, lone surrogates, BOM, NBSP removed or normalised', () => {
    const text = '\uFEFFAnn: hel\u0000lo\u0007 w\uD800orld\u00a0\u00a0 ok \uDC00😀\r\nAnn: second\tline\r';
    const { segments } = parseTranscript('text', { text });
    assert.deepEqual(segments, [seg(1, 'hello world ok 😀 second line', 'Ann', null, null)]);
    const viaSegments = parseTranscript('auto', {
      segments: [{ seq: 1, text: 'a\u0000b \uDFFF c', speaker: 'B\u0000o\uD83D', start_ms: 0, end_ms: 1 }],
    });
    assert.deepEqual(viaSegments.segments, [seg(1, 'ab c', 'Bo', 0, 1)]);
  });

  test('zero-width-only segments, cues and speaker names are dropped; invisible characters inside text are kept', () => {
    const viaSegments = parseTranscript('segments', {
      segments: [
        { seq: 1, text: '\u200B\u200B', speaker: 'Ann', start_ms: 0, end_ms: 10 },
        { seq: 2, text: 'Family: 👨\u200D👩\u200D👧 ok', speaker: '\u200B\u2060', start_ms: 10, end_ms: 20 },
        { seq: 3, text: ' \uFEFF\u200C ' },
        { seq: 4, text: 'last', speaker: 'Bo', start_ms: 9_007_199_254_740_991 },
      ],
    });
    assert.deepEqual(viaSegments.segments, [seg(1, 'Family: 👨\u200D👩\u200D👧 ok', null, 10, 20), seg(2, 'last', 'Bo', 9_007_199_254_740_991, null)]);
    const vtt = parseTranscript('vtt', {
      text: 'WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nAnn: hello\n\n00:00:02.000 --> 00:00:03.000\n\u200B\n\n00:00:03.000 --> 00:00:04.000\n<v \u200B>\u2060</v>\n\n00:00:04.000 --> 00:00:05.000\nBob: bye\n',
    });
    assert.deepEqual(vtt.segments, [seg(1, 'hello', 'Ann', 1000, 2000), seg(2, 'bye', 'Bob', 4000, 5000)]);
    const text = parseTranscript('text', { text: 'First paragraph.\n\u200B\u200D\nSecond paragraph.\n' });
    assert.deepEqual(text.segments, [seg(1, 'First paragraph.', null, null, null), seg(2, 'Second paragraph.', null, null, null)]);
  });

  test('segments: out-of-order and duplicate seq ordered by seq, then start_ms, then position', () => {
    const { segments, warnings } = parseTranscript('segments', {
      segments: [
        { seq: 2, text: 'two-late', start_ms: 5000, end_ms: 6000 },
        { seq: 1, text: 'one', speaker: 'Ann', start_ms: 0, end_ms: 1000 },
        { seq: 2, text: 'two-untimed' },
        { seq: 2, text: 'two-early', start_ms: 2000, end_ms: null },
        { seq: 2, text: 'two-untimed-second', start_ms: null },
        { seq: 10, text: 'ten', speaker: 'Ann' },
        { seq: 10, text: 'ten-again', speaker: 'Ann' },
      ],
    });
    assert.deepEqual(
      segments.map((s) => [s.seq, s.text]),
      [[1, 'one'], [2, 'two-early'], [3, 'two-late'], [4, 'two-untimed'], [5, 'two-untimed-second'], [6, 'ten'], [7, 'ten-again']],
    );
    assert.equal(segments[1].endMs, null);
    assert.match(warnings.join('\n'), /2 duplicate seq values \(2, 10\) kept/);
  });

  test('null text or segments count as absent', () => {
    const parsed = parseTranscript('auto', { text: null, segments: [{ seq: 1, text: 'a' }] });
    assert.deepEqual(parsed.segments, [seg(1, 'a', null, null, null)]);
    assert.equal(parseTranscript('auto', { text: 'Ann: hi', segments: null }).format, 'text');
  });

  test('segments given as JSON in payload.text (array or {segments}), auto-detected', () => {
    const rows = [{ seq: 1, text: 'hi', speaker: 'A', start_ms: 0, end_ms: 10 }];
    for (const text of [JSON.stringify(rows), JSON.stringify({ segments: rows })]) {
      const parsed = parseTranscript('auto', { text });
      assert.equal(parsed.format, 'segments');
      assert.deepEqual(parsed.segments, [seg(1, 'hi', 'A', 0, 10)]);
    }
  });

  test('whisperx JSON with speakers: turns joined, unlabelled segment continues the speaker', () => {
    const text = JSON.stringify({
      segments: [
        { start: 0, end: 1.2, text: ' Hi.', speaker: 'SPEAKER_00' },
        { start: 1.2, end: 2.5, text: ' How are you?', speaker: 'SPEAKER_00' },
        { start: 2.6, end: 3.1, text: ' Fine.', speaker: 'SPEAKER_01' },
        { start: 3.1, end: 4.0, text: ' Thanks.' },
      ],
    });
    assert.deepEqual(parseTranscript('auto', { text }).segments, [
      seg(1, 'Hi. How are you?', 'SPEAKER_00', 0, 2500),
      seg(2, 'Fine. Thanks.', 'SPEAKER_01', 2600, 4000),
    ]);
  });

  test('whisper {text} without segments: one untimed segment and a warning', () => {
    const parsed = parseTranscript('whisper', { text: '{"text": " Hello there."}' });
    assert.deepEqual(parsed.segments, [seg(1, 'Hello there.', null, null, null)]);
    assert.match(parsed.warnings[0], /no "segments" array/);
  });

  test('speakerless SRT and plain paragraphs stay one segment per cue / paragraph', () => {
    const srt = '1\n00:00:01,000 --> 00:00:02,000\nOne.\n\n2\n00:00:02,000 --> 00:00:03,000\nTwo\nlines.\n';
    assert.deepEqual(parseTranscript('auto', { text: srt }).segments, [seg(1, 'One.', null, 1000, 2000), seg(2, 'Two lines.', null, 2000, 3000)]);
    const text = 'First paragraph\nwraps here.\n\nStep two: not a speaker name.\n\nThird.';
    assert.deepEqual(parseTranscript('auto', { text }).segments, [
      seg(1, 'First paragraph wraps here.', null, null, null),
      seg(2, 'Step two: not a speaker name.', null, null, null),
      seg(3, 'Third.', null, null, null),
    ]);
  });

  test('text: Otter-style "Name  0:05" headers; an unnamed stamped turn continues the speaker', () => {
    const text = 'Ann Lee  0:05\nHello there.\nSecond line.\n\nBob  1:10\nHi Ann.\n\n[02:00]\nStill Bob.\n\nAnn Lee  2:30\nBye.';
    assert.deepEqual(parseTranscript('auto', { text }).segments, [
      seg(1, 'Hello there. Second line.', 'Ann Lee', 5000, 70000),
      seg(2, 'Hi Ann. Still Bob.', 'Bob', 70000, 150000),
      seg(3, 'Bye.', 'Ann Lee', 150000, null),
    ]);
  });

  test('speaker prefixes: lowercase display names need two uses; a one-off "So the plan:" is text', () => {
    const vtt = [
      'WEBVTT',
      '',
      '00:00.000 --> 00:01.000',
      "john's iphone: hello",
      '',
      '00:01.000 --> 00:02.000',
      'Mia: hi john',
      '',
      '00:02.000 --> 00:03.000',
      "john's iphone: so the plan: we ship friday",
      '',
      '00:03.000 --> 00:04.000',
      'so the plan: nobody asked',
    ].join('\n');
    assert.deepEqual(parseTranscript('vtt', { text: vtt }).segments, [
      seg(1, 'hello', "john's iphone", 0, 1000),
      seg(2, 'hi john', 'Mia', 1000, 2000),
      seg(3, 'so the plan: we ship friday so the plan: nobody asked', "john's iphone", 2000, 4000),
    ]);
  });

  test('vtt: STYLE/REGION skipped, entities decoded, <c.color>/<lang> stripped, missing blank line tolerated', () => {
    const vtt = [
      'WEBVTT - a title',
      '',
      'STYLE',
      '::cue { color: yellow }',
      '',
      'REGION',
      'id:left width:40%',
      '',
      'intro',
      '00:00:01.000 --> 00:00:02.000 region:left',
      '<c.yellow>Fish</c> &amp; <lang fr>chips</lang>&nbsp;&lrm;&#233;&#x2014;',
      '00:00:02.500 --> 00:00:03.000',
      '<v.loud Ann Lee>Done &lt;b&gt;</v>',
    ].join('\n');
    assert.deepEqual(parseTranscript('auto', { text: vtt }).segments, [
      seg(1, 'Fish & chips é—', null, 1000, 2000),
      seg(2, 'Done <b>', 'Ann Lee', 2500, 3000),
    ]);
  });
});

describe('bundled examples (examples/transcripts/)', () => {
  const EXAMPLES = new URL('../../examples/transcripts/', import.meta.url);
  const cases: Array<[string, string, string[], RegExp]> = [
    ['product-meeting.vtt', 'vtt', ['Luis Ortega', 'Maya Chen', 'Priya Nair (PM)'], /migrating the billing database to a read replica before the holiday freeze/],
    ['customer-interview.srt', 'srt', ['Dana', 'Interviewer'], /forty croissants every Sunday/],
    ['lecture-notes.txt', 'text', ['Professor Lind', 'Student'], /only one G3P leaves the cycle as profit/],
    ['support-call.json', 'deepgram', ['Speaker 0', 'Speaker 1'], /A replacement router will ship overnight to the Denver office/],
  ];
  for (const [file, format, speakers, passage] of cases) {
    test(`${file} parses as ${format} with its speakers and distinctive passage`, () => {
      const text = readFileSync(new URL(file, EXAMPLES), 'utf8');
      const parsed = parseTranscript('auto', { text });
      assert.equal(parsed.format, format);
      assert.equal(detectFormat(text, file), format);
      assertWellFormed(parsed.segments);
      assert.deepEqual([...new Set(parsed.segments.flatMap((s) => s.speaker ?? []))].sort(), speakers);
      assert.ok(parsed.segments.some((s) => passage.test(s.text)), String(passage));
    });
  }
});

describe('timestamps and detection', () => {
  test('parseClock', () => {
    const cases: Array<[string, number | null]> = [
      ['00:00:01.000', 1000],
      ['01:02:03.004', 3_723_004],
      ['02:03.500', 123_500],
      ['00:00:01,250', 1250],
      ['0:0:3.490', 3490],
      ['0:8:44.690', 524_690],
      ['0:4:6.80', 246_080], // Teams: unpadded, short fraction = milliseconds
      ['0:0:0.0', 0],
      ['00:00:01.5', 1500], // padded: decimal fraction
      ['100:00:00.000', 360_000_000],
      ['00:61:00.000', null],
      ['00:00:60.000', null],
      ['12:xx', null],
      ['', null],
    ];
    for (const [raw, ms] of cases) assert.equal(parseClock(raw), ms, raw);
  });

  test('detectFormat: extension first, then content', () => {
    assert.equal(detectFormat('Ann: hi', 'notes.VTT'), 'vtt');
    assert.equal(detectFormat('WEBVTT\n', 'notes.txt'), 'text');
    assert.equal(detectFormat('[{"seq":1,"text":"a"}]', 'x.json'), 'segments');
    assert.equal(detectFormat('not json', 'x.json'), 'auto');
    assert.equal(detectFormat('\uFEFF  \nWEBVTT\n'), 'vtt');
    assert.equal(detectFormat('{"segments":[{"start":0,"end":1,"text":"a"}]}'), 'whisper');
    assert.equal(detectFormat('{"segments":[{"seq":1,"text":"a"}]}'), 'segments');
    assert.equal(detectFormat('1\r\n00:00:01,000 --> 00:00:02,000\r\nhi'), 'srt');
    assert.equal(detectFormat('[00:00:05] Ann: hi'), 'text');
    assert.equal(detectFormat('[1, 2] is a list'), 'text');
    assert.equal(detectFormat('Just words.', 'README'), 'text');
  });
});
