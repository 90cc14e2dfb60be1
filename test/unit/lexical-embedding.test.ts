import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lexicalEmbedding, ZERO_TEXT_VALUE } from '../../src/shared/lexical-embedding.ts';

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / Math.sqrt(na * nb);
}

const norm = (v: Float32Array) => Math.sqrt(v.reduce((sum, x) => sum + x * x, 0));

test('similar texts are closer than unrelated ones', () => {
  const query = lexicalEmbedding('What did we decide about the quarterly budget?', 1536);
  const related = lexicalEmbedding('We decided to cut the quarterly budget by ten percent.', 1536);
  const unrelated = lexicalEmbedding('The cat slept on the warm windowsill all afternoon.', 1536);
  assert.ok(cosine(query, related) > cosine(query, unrelated) + 0.2, `${cosine(query, related)} vs ${cosine(query, unrelated)}`);

  // Normalisation: case, NFKC (fullwidth letters, ligatures) and punctuation do not matter.
  const a = lexicalEmbedding('Ｂudget ﬁnal REVIEW!', 256);
  const b = lexicalEmbedding('budget, final review', 256);
  assert.ok(cosine(a, b) > 0.999);

  // Word order matters a little (bigrams), word choice a lot.
  const swapped = cosine(lexicalEmbedding('ship the roadmap', 1536), lexicalEmbedding('the roadmap ship', 1536));
  assert.ok(swapped > 0.6 && swapped < 0.999, String(swapped));

  // CJK without spaces still matches on shared characters.
  const zh = cosine(lexicalEmbedding('我们讨论了预算问题', 1536), lexicalEmbedding('预算问题很重要', 1536));
  const zhOther = cosine(lexicalEmbedding('我们讨论了预算问题', 1536), lexicalEmbedding('天气很好', 1536));
  assert.ok(zh > zhOther + 0.2, `${zh} vs ${zhOther}`);
});

test('unit norm, dimensions respected, empty text gets the documented constant', () => {
  for (const dimensions of [1, 2, 7, 384, 1536, 3072]) {
    const v = lexicalEmbedding('Привет, мир! Hello world 123 café', dimensions);
    assert.ok(v instanceof Float32Array);
    assert.equal(v.length, dimensions);
    assert.ok(Math.abs(norm(v) - 1) < 1e-5 || (v[0] === Math.fround(ZERO_TEXT_VALUE) && norm(v) < 1e-5));
    assert.ok(v.every(Number.isFinite));
  }
  for (const text of ['', '   ', '?!… — 🎉👍']) {
    const v = lexicalEmbedding(text, 64);
    assert.equal(v[0], Math.fround(ZERO_TEXT_VALUE));
    assert.ok(v.subarray(1).every((x) => x === 0));
  }
  assert.throws(() => lexicalEmbedding('x', 0), /dimensions/);
  assert.throws(() => lexicalEmbedding('x', 1.5), /dimensions/);
  assert.throws(() => lexicalEmbedding('x', 20_000), /dimensions/);
});

test('deterministic within and across processes', () => {
  const text = 'Alice: the roadmap ships in Q3; Мария: хорошо. 会议结束。';
  const here = lexicalEmbedding(text, 1536);
  assert.deepEqual(lexicalEmbedding(text, 1536), here);
  const script = `import { lexicalEmbedding } from ${JSON.stringify(new URL('../../src/shared/lexical-embedding.ts', import.meta.url).href)};
process.stdout.write(JSON.stringify(Array.from(lexicalEmbedding(${JSON.stringify(text)}, 1536))));`;
  const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.deepEqual(Float32Array.from(JSON.parse(output) as number[]), here);
});

test('fast: about a microsecond per word at 1536 dimensions', (t) => {
  const words = ['budget', 'meeting', 'roadmap', 'customer', 'quarter', 'ship', 'review', 'team'];
  const text = Array.from({ length: 200_000 }, (_, i) => words[(i * 7 + (i >> 3)) % words.length] + (i % 11)).join(' ');
  const started = performance.now();
  lexicalEmbedding(text, 1536);
  const elapsed = performance.now() - started;
  t.diagnostic(`${((elapsed * 1000) / 200_000).toFixed(2)} µs per word`);
  assert.ok(elapsed < 2_000, `${elapsed} ms for 200k words`);
  const chunks = Array.from({ length: 1000 }, (_, i) => text.slice(i * 1200, i * 1200 + 1200));
  const chunkStarted = performance.now();
  for (const chunk of chunks) lexicalEmbedding(chunk, 1536);
  t.diagnostic(`${((performance.now() - chunkStarted) / 1000).toFixed(3)} ms per 1200-char chunk`);
});
