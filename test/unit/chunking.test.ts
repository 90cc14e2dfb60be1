import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  chunkSegments,
  chunkSegmentsIter,
  createTokenCounter,
  encodingForModel,
  validateChunkingOptions,
} from '../../src/shared/chunking.ts';
import { sentenceSpans } from '../../src/shared/sentence-split.ts';
import type { Chunk, ChunkingOptions, Segment } from '../../src/shared/types.ts';
import { mulberry32 } from '../support/prng.ts';

const counter = createTokenCounter('cl100k_base');
const countTokens = (text: string) => counter.encode(text).length;

function options(maxTokens: number, charLimit: number): ChunkingOptions {
  return { maxTokens, charLimit, encoding: 'cl100k_base' };
}

// ---------- seeded generators ----------


const ENGLISH = ['the', 'meeting', 'budget', 'we', 'should', 'ship', 'it', 'quarterly', 'roadmap', 'okay', 'I', 'think', 'customers', 'naïve', 'café', "don't", '3.14', '2024', 'e-mail'];
const CYRILLIC = ['привет', 'бюджет', 'встреча', 'сегодня', 'хорошо', 'Москва', 'ёлка'];
const CJK = ['会议', '预算', '我们', '今天', '東京', 'こんにちは', 'ありがとう', '안녕하세요', '𠀀𠀁', '龘'];
const EMOJI = ['🎉', '👍🏽', '👩‍💻', '🇺🇸', '❤️', '🤔', '👨‍👩‍👧‍👦'];
const COMBINING = ['e\u0301', 'n\u0303o', 'a\u0308\u0304', 'Z\u0351\u0352\u0353'];
const SPEAKERS = [null, 'Alice', 'Bob', 'Мария', '张伟', 'José', 'Dr. Smith'];
const ENDS = ['.', '?', '!', '…', '。', '！', '？', ''];

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)];
}

function word(random: () => number): string {
  const r = random();
  if (r < 0.6) return pick(random, ENGLISH);
  if (r < 0.72) return pick(random, CYRILLIC);
  if (r < 0.84) return pick(random, CJK);
  if (r < 0.92) return pick(random, EMOJI);
  if (r < 0.97) return pick(random, COMBINING);
  if (r < 0.985) return 'x'.repeat(50 + Math.floor(random() * 400)); // unbreakable run
  return Array.from({ length: 100 + Math.floor(random() * 600) }, () => pick(random, ['龘', '𠀀', '會', '🎉', 'ж'])).join('');
}

function segmentText(random: () => number, words: number): string {
  const parts: string[] = [];
  for (let i = 0; i < words; i++) {
    let w = word(random);
    if (random() < 0.12) w += pick(random, ENDS);
    parts.push(w);
    const gap = random();
    parts.push(gap < 0.85 ? ' ' : gap < 0.9 ? '  ' : gap < 0.95 ? '\n' : gap < 0.97 ? '\u3000' : '');
  }
  return parts.join('').trim() || 'x';
}

function transcript(random: () => number): Segment[] {
  const count = 1 + Math.floor(random() * 40);
  const segments: Segment[] = [];
  let clock = 0;
  for (let seq = 1; seq <= count; seq++) {
    const size = random();
    const words = size < 0.75 ? 1 + Math.floor(random() * 25) : size < 0.95 ? 30 + Math.floor(random() * 200) : 300 + Math.floor(random() * 1500);
    const duration = Math.floor(random() * 20_000);
    const timed = random() < 0.8;
    segments.push({
      seq,
      text: segmentText(random, words),
      speaker: pick(random, SPEAKERS),
      startMs: timed ? clock : null,
      endMs: timed ? clock + duration : null,
    });
    clock += duration + Math.floor(random() * 1000);
  }
  return segments;
}

// ---------- invariant checks ----------

const stripWhitespace = (s: string) => s.replace(/\s+/g, '');

/** Every limit, dense indexes, exact counts and hashes, and all text present in order. */
function assertChunkInvariants(segments: Segment[], chunks: Chunk[], opts: ChunkingOptions, label: string): void {
  chunks.forEach((chunk, i) => {
    assert.equal(chunk.index, i, `${label}: dense index`);
    const exact = countTokens(chunk.content);
    assert.equal(chunk.tokenCount, exact, `${label}: tokenCount exact for chunk ${i}`);
    assert.ok(exact <= opts.maxTokens, `${label}: chunk ${i} has ${exact} tokens > ${opts.maxTokens}`);
    assert.ok(chunk.content.length <= opts.charLimit, `${label}: chunk ${i} has ${chunk.content.length} chars`);
    assert.equal(chunk.contentHash, createHash('sha256').update(chunk.content).digest('hex'));
    assert.ok(!chunk.content.includes('\uFFFD'), `${label}: chunk ${i} contains U+FFFD`);
    assert.ok(!/\p{Cs}/u.test(chunk.content), `${label}: chunk ${i} has a lone surrogate`);
    assert.equal(chunk.content, chunk.content.trim(), `${label}: chunk ${i} has outer whitespace`);
    assert.ok(chunk.segmentSeqStart <= chunk.segmentSeqEnd);
    if (i > 0) assert.ok(chunk.segmentSeqStart >= chunks[i - 1].segmentSeqEnd, `${label}: seq ranges monotone`);
  });
  assertCoverage(segments, chunks, label);
}

/**
 * Walks the chunks against the segments with whitespace removed: each line is an optional
 * `Speaker:` prefix and then the next characters of the current segment. Checks that every
 * character of every segment appears once, in order, and that seq ranges name the segments used.
 */
function assertCoverage(segments: Segment[], chunks: Chunk[], label: string): void {
  const texts = segments.map((s) => stripWhitespace(s.text));
  let segment = 0;
  let offset = 0;
  for (const chunk of chunks) {
    const content = stripWhitespace(chunk.content);
    const seen: number[] = [];
    let pos = 0;
    while (pos < content.length) {
      if (offset === texts[segment].length) {
        segment++;
        offset = 0;
      }
      assert.ok(segment < segments.length, `${label}: chunk ${chunk.index} has text beyond the last segment`);
      const speaker = segments[segment].speaker;
      const prefix = speaker === null ? '' : stripWhitespace(`${speaker}:`);
      if (prefix !== '' && content.startsWith(prefix, pos)) pos += prefix.length;
      let matched = 0;
      while (pos < content.length && offset < texts[segment].length && content[pos] === texts[segment][offset]) {
        pos++;
        offset++;
        matched++;
      }
      assert.ok(matched > 0, `${label}: chunk ${chunk.index} diverges from segment ${segments[segment].seq} at ${offset}`);
      assert.ok(offset === texts[segment].length || pos === content.length, `${label}: chunk ${chunk.index} skips text`);
      seen.push(segments[segment].seq);
    }
    assert.equal(chunk.segmentSeqStart, seen[0], `${label}: chunk ${chunk.index} seq start`);
    assert.equal(chunk.segmentSeqEnd, seen.at(-1), `${label}: chunk ${chunk.index} seq end`);
  }
  assert.equal(segment, segments.length - 1, `${label}: every segment reached`);
  assert.equal(offset, texts[segment].length, `${label}: last segment complete`);
}

// ---------- tests ----------

test('generated transcripts: limits hold, indexes dense, seq ranges monotone, all text in order', () => {
  const random = mulberry32(20240611);
  const settings = [options(512, 1200), options(64, 200), options(32, 80), options(128, 50), options(8191, 100_000), options(16, 1200)];
  for (let run = 0; run < 60; run++) {
    const segments = transcript(random);
    const opts = settings[run % settings.length];
    const chunks = chunkSegments(segments, opts, counter);
    assertChunkInvariants(segments, chunks, opts, `run ${run} (${opts.maxTokens}/${opts.charLimit})`);
  }
});

test('a 100,000-token segment chunks quickly into about tokens/maxTokens chunks', () => {
  const random = mulberry32(7);
  const sentences: string[] = [];
  let approxTokens = 0;
  while (approxTokens < 106_000) {
    const words = 5 + Math.floor(random() * 25);
    const sentence = Array.from({ length: words }, () => pick(random, ENGLISH)).join(' ') + pick(random, ['.', '?', '!']);
    sentences.push(sentence);
    approxTokens += countTokens(sentence);
  }
  const text = sentences.join(' ');
  const total = countTokens(text);
  assert.ok(total >= 100_000);
  const segments: Segment[] = [{ seq: 1, text, speaker: 'Alice', startMs: 0, endMs: 3_600_000 }];

  const opts = options(512, 100_000); // tokens bind
  const started = performance.now();
  const chunks = chunkSegments(segments, opts, counter);
  const elapsed = performance.now() - started;
  assert.ok(elapsed < 5_000, `took ${elapsed} ms`);
  const lower = Math.ceil(total / opts.maxTokens);
  assert.ok(chunks.length >= lower && chunks.length <= Math.ceil(lower * 1.15), `${chunks.length} chunks for ${total} tokens`);
  assertChunkInvariants(segments, chunks, opts, '100k tokens');
  for (const chunk of chunks) {
    assert.equal(chunk.segmentSeqStart, 1);
    assert.equal(chunk.segmentSeqEnd, 1);
    assert.ok(chunk.content.startsWith('Alice: '), 'each part carries the speaker');
  }
  for (let i = 1; i < chunks.length; i++) assert.ok((chunks[i].startMs ?? 0) >= (chunks[i - 1].endMs ?? 0));
  assert.equal(chunks[0].startMs, 0);
  assert.equal(chunks.at(-1)?.endMs, 3_600_000);

  const byChars = chunkSegments(segments, options(512, 1200), counter); // characters bind
  assertChunkInvariants(segments, byChars, options(512, 1200), '100k tokens, 1200 chars');
});

test('60k tokens without punctuation or spaces split at clean token boundaries', () => {
  const random = mulberry32(99);
  const pool = ['龘', '𠀀', '會', '議', '🎉', '👩‍💻', 'é', 'ж', '中'];
  const cjk = Array.from({ length: 30_000 }, () => pick(random, pool)).join('');
  const runs = [cjk, 'a'.repeat(480_000)];
  for (const text of runs) {
    const segments: Segment[] = [{ seq: 1, text, speaker: null, startMs: null, endMs: null }];
    const started = performance.now();
    const chunks = chunkSegments(segments, options(512, 1200), counter);
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 10_000, `took ${elapsed} ms`);
    assert.equal(chunks.map((c) => c.content).join(''), text, 'no text lost or changed');
    assert.ok(chunks.reduce((sum, c) => sum + c.tokenCount, 0) >= 55_000);
    assertChunkInvariants(segments, chunks, options(512, 1200), `run of ${text.length}`);
  }
});

test('hand-written transcript: exact packing, speakers and times', () => {
  const segments: Segment[] = [
    { seq: 1, text: 'Hello everyone.', speaker: 'Alice', startMs: 0, endMs: 1000 },
    { seq: 2, text: '  Hi Alice. ', speaker: 'Bob', startMs: 1000, endMs: 2500 },
    { seq: 3, text: '(music)', speaker: null, startMs: null, endMs: null },
    { seq: 4, text: "Let's begin.", speaker: 'Alice', startMs: 3000, endMs: 4000 },
  ];
  const chunk = (index: number, content: string, rest: Omit<Chunk, 'index' | 'content' | 'tokenCount' | 'contentHash'>): Chunk => ({
    index,
    content,
    tokenCount: countTokens(content),
    ...rest,
    contentHash: createHash('sha256').update(content).digest('hex'),
  });

  assert.deepEqual(chunkSegments(segments, options(512, 1200), counter), [
    chunk(0, "Alice: Hello everyone.\nBob: Hi Alice.\n(music)\nAlice: Let's begin.", {
      segmentSeqStart: 1, segmentSeqEnd: 4, startMs: 0, endMs: 4000, speakers: ['Alice', 'Bob'],
    }),
  ]);
  assert.deepEqual(chunkSegments(segments, options(512, 50), counter), [
    chunk(0, 'Alice: Hello everyone.\nBob: Hi Alice.\n(music)', {
      segmentSeqStart: 1, segmentSeqEnd: 3, startMs: 0, endMs: 2500, speakers: ['Alice', 'Bob'],
    }),
    chunk(1, "Alice: Let's begin.", { segmentSeqStart: 4, segmentSeqEnd: 4, startMs: 3000, endMs: 4000, speakers: ['Alice'] }),
  ]);
});

test('a long segment splits at sentence ends, each part prefixed, times interpolated', () => {
  const text = 'One two three. Four five six? Seven eight nine! Ten eleven twelve… 十三十四。Fifteen sixteen.';
  const segments: Segment[] = [{ seq: 5, text, speaker: 'Bob', startMs: 10_000, endMs: 20_000 }];
  const chunks = chunkSegments(segments, options(512, 50), counter);
  assert.deepEqual(
    chunks.map((c) => c.content),
    ['Bob: One two three. Four five six?', 'Bob: Seven eight nine! Ten eleven twelve… 十三十四。', 'Bob: Fifteen sixteen.'],
  );
  // 88 characters over 10 s: offsets 0–29, 30–69 and 69–88 of the segment text.
  assert.deepEqual(chunks.map((c) => [c.startMs, c.endMs]), [
    [10_000, 13_295],
    [13_409, 18_182],
    [18_182, 20_000],
  ]);
  for (const c of chunks) assert.deepEqual([c.segmentSeqStart, c.segmentSeqEnd, c.speakers], [5, 5, ['Bob']]);
});

test('many short segments pack together', () => {
  const segments: Segment[] = Array.from({ length: 2000 }, (_, i) => ({
    seq: i + 1,
    text: `Point ${i} noted.`,
    speaker: i % 3 === 0 ? 'Alice' : 'Bob',
    startMs: i * 1000,
    endMs: i * 1000 + 900,
  }));
  const opts = options(256, 1200);
  const chunks = chunkSegments(segments, opts, counter);
  assert.ok(chunks.length < segments.length / 20, `${chunks.length} chunks`);
  assertChunkInvariants(segments, chunks, opts, 'short segments');
  for (const c of chunks) {
    assert.equal(c.startMs, (c.segmentSeqStart - 1) * 1000);
    assert.equal(c.endMs, (c.segmentSeqEnd - 1) * 1000 + 900);
    assert.deepEqual(c.speakers, c.segmentSeqStart % 3 === 1 ? ['Alice', 'Bob'] : ['Bob', 'Alice']);
  }
});

test('deterministic: same input twice, and with a fresh counter, gives identical chunks', () => {
  const segments = transcript(mulberry32(42));
  const other = createTokenCounter('cl100k_base');
  try {
    const first = chunkSegments(segments, options(128, 400), counter);
    assert.deepEqual(chunkSegments(segments, options(128, 400), counter), first);
    assert.deepEqual(chunkSegments(segments, options(128, 400), other), first);
  } finally {
    other.free();
  }
});

test('chunkSegmentsIter streams from a generator and matches chunkSegments', () => {
  const segments = transcript(mulberry32(3));
  function* lazy() {
    yield* segments;
  }
  const streamed = [...chunkSegmentsIter(lazy(), options(64, 300), counter)];
  assert.deepEqual(streamed, chunkSegments(segments, options(64, 300), counter));
});

test('edge cases: empty segments, special-token text, lone surrogates, long speaker names', () => {
  const segments: Segment[] = [
    { seq: 1, text: '   ', speaker: 'Alice', startMs: 0, endMs: 1 },
    { seq: 2, text: 'say <|endoftext|> now', speaker: 'A\n  B', startMs: null, endMs: 5 },
    { seq: 3, text: 'broken \ud800 pair', speaker: 'N'.repeat(400), startMs: 7, endMs: null },
  ];
  const chunks = chunkSegments(segments, options(512, 1200), counter);
  assert.equal(chunks.length, 1);
  assert.equal(chunks[0].content, 'A B: say <|endoftext|> now\nbroken \uFFFD pair');
  assert.deepEqual(chunks[0].speakers, ['A B', 'N'.repeat(400)]);
  assert.deepEqual([chunks[0].segmentSeqStart, chunks[0].segmentSeqEnd, chunks[0].startMs, chunks[0].endMs], [2, 3, 7, 5]);
  assert.deepEqual(chunkSegments([], options(512, 1200), counter), []);
});

test('tiny maxTokens still works, and a character that cannot fit throws naming maxTokens', () => {
  const segments: Segment[] = [{ seq: 1, text: 'hello big world, hello again', speaker: 'Alice', startMs: null, endMs: null }];
  const chunks = chunkSegments(segments, options(1, 50), counter);
  assert.deepEqual(chunks.map((c) => c.content), ['hello', 'big', 'world', ',', 'hello', 'again']);
  assert.throws(
    () => chunkSegments([{ seq: 1, text: '🎉', speaker: null, startMs: null, endMs: null }], options(1, 50), counter),
    /maxTokens/,
  );
});

test('options are validated and the bad option is named', () => {
  const base = options(512, 1200);
  for (const [patch, name] of [
    [{ maxTokens: 0 }, 'maxTokens'],
    [{ maxTokens: 8192 }, 'maxTokens'],
    [{ maxTokens: 1.5 }, 'maxTokens'],
    [{ maxTokens: Number.NaN }, 'maxTokens'],
    [{ charLimit: 49 }, 'charLimit'],
    [{ charLimit: Infinity }, 'charLimit'],
    [{ encoding: '' }, 'encoding'],
  ] as const) {
    assert.throws(() => validateChunkingOptions({ ...base, ...patch }), new RegExp(name));
    assert.throws(() => chunkSegments([], { ...base, ...patch }, counter), new RegExp(name));
  }
  assert.doesNotThrow(() => validateChunkingOptions(options(8191, 50)));
  assert.throws(() => chunkSegments([], { ...base, encoding: 'o200k_base' }, counter), /encoding/);
});

test('encodingForModel and createTokenCounter', () => {
  assert.equal(encodingForModel('text-embedding-3-small'), 'cl100k_base');
  assert.equal(encodingForModel('text-embedding-3-large'), 'cl100k_base');
  assert.equal(encodingForModel('text-embedding-ada-002'), 'cl100k_base');
  assert.equal(encodingForModel('gpt-4o'), 'o200k_base');
  assert.equal(encodingForModel('nomic-embed-text'), 'cl100k_base');
  assert.throws(() => createTokenCounter('nope'), /encoding/);
  const o200k = createTokenCounter('o200k_base');
  assert.equal(o200k.decode(o200k.encode('héllo 世界 🎉')), 'héllo 世界 🎉');
  assert.equal(o200k.encode('<|endoftext|>').length > 1, true, 'special tokens are plain text');
  o200k.free();
  assert.throws(() => o200k.encode('x'), /free/);
});

test('timing: 1 MB of English text', (t) => {
  const random = mulberry32(1);
  const sentences: string[] = [];
  let length = 0;
  while (length < 1_000_000) {
    const s = Array.from({ length: 4 + Math.floor(random() * 20) }, () => pick(random, ENGLISH)).join(' ') + '.';
    sentences.push(s);
    length += s.length + 1;
  }
  const segments: Segment[] = [];
  for (let i = 0, seq = 1; i < sentences.length; seq++) {
    const n = 1 + Math.floor(random() * 8);
    segments.push({ seq, text: sentences.slice(i, i + n).join(' '), speaker: pick(random, SPEAKERS), startMs: null, endMs: null });
    i += n;
  }
  const text = segments.map((s) => s.text).join('\n');
  const mb = Buffer.byteLength(text) / 1e6;
  let started = performance.now();
  countTokens(text);
  const encodeMs = performance.now() - started;
  started = performance.now();
  const chunks = chunkSegments(segments, options(512, 1200), counter);
  const chunkMs = performance.now() - started;
  t.diagnostic(`raw encode ${(mb / (encodeMs / 1000)).toFixed(2)} MB/s; chunking ${(mb / (chunkMs / 1000)).toFixed(2)} MB/s (${chunks.length} chunks, ${mb.toFixed(2)} MB)`);
  assert.ok(chunkMs < 20_000);
});

test('sentence boundaries: a long run of marks not followed by whitespace is scanned once, not from each mark', () => {
  // Tried from every mark, a run of n marks costs n²/2 steps: a 1,000,000-mark line would hold a chunking thread
  // for hours. From its first mark only, it is one pass.
  const text = `a${'.'.repeat(1_000_000)}x b. c`;
  const spans = sentenceSpans(text);
  assert.deepEqual(spans.map((s) => text.slice(s.start, s.coreEnd).length), [1_000_005, 1]);
  assert.deepEqual(
    sentenceSpans('Hi there... ok."  Next one?! Yes.').map((s) => [s.start, s.coreEnd]),
    [[0, 11], [12, 16], [18, 28], [29, 33]],
  );
});
