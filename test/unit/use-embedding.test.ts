/**
 * The semantic offline embedder (src/shared/use-embedding.ts, Universal Sentence Encoder lite): paraphrases rank
 * above unrelated text, vectors are unit length, ordered and
 * deterministic, and it runs inside a Piscina thread with the chunk pool's limits and no network.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Piscina } from 'piscina';
import { THREAD_YOUNG_GENERATION_MB } from '../../src/main/coordinator/chunk-pool.ts';
import { ZERO_TEXT_VALUE } from '../../src/shared/lexical-embedding.ts';
import { USE_LITE_CALL_SIZE, USE_LITE_DIMENSIONS, useLiteEmbeddings } from '../../src/shared/use-embedding.ts';

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let d = 0;
  for (let i = 0; i < a.length; i++) d += a[i] * b[i];
  return d;
};

const QUESTION = 'coffee maker dripping water, when is the repair visit?';
const FACT = 'The espresso machine on the third floor is leaking again, so a plumber is coming on Thursday morning.';
const UNRELATED = 'The summer block party raised eleven hundred dollars for the food bank.';

test('a paraphrase with no content word in common ranks well above an unrelated sentence', async () => {
  const [q, fact, unrelated] = await useLiteEmbeddings([QUESTION, FACT, UNRELATED]);
  assert.ok(dot(q, fact) > dot(q, unrelated) + 0.3, `paraphrase ${dot(q, fact)} vs unrelated ${dot(q, unrelated)}`);
});

test('unit vectors of 512 dimensions, in input order across model calls, deterministic; blank text gets the zero-text vector', async () => {
  const texts = Array.from({ length: USE_LITE_CALL_SIZE + 2 }, (_, i) => `Item ${i}: we moved the review to ${['Monday', 'Tuesday', 'Friday'][i % 3]}.`);
  texts.splice(2, 0, '   ');
  const together = await useLiteEmbeddings(texts);
  assert.equal(together.length, texts.length);
  for (const [i, v] of together.entries()) {
    assert.equal(v.length, USE_LITE_DIMENSIONS);
    if (i === 2) {
      assert.equal(v[0], Math.fround(ZERO_TEXT_VALUE));
      assert.ok(v.slice(1).every((x) => x === 0));
      continue;
    }
    assert.ok(Math.abs(dot(v, v) - 1) < 1e-5);
    const [alone] = await useLiteEmbeddings([texts[i]]);
    assert.ok(dot(v, alone) > 0.9999, `input ${i} embedded alone and in a batch`);
  }
  assert.deepEqual(await useLiteEmbeddings([]), []);
});

test('runs inside a Piscina thread with the chunk pool limits, without network, with the same vectors', async () => {
  const pool = new Piscina({
    filename: new URL('../support/use-embed-thread.ts', import.meta.url).href,
    maxThreads: 1,
    resourceLimits: { maxYoungGenerationSizeMb: THREAD_YOUNG_GENERATION_MB },
  });
  try {
    const fromThread = (await pool.run([QUESTION, FACT])) as number[][];
    const [q, fact] = await useLiteEmbeddings([QUESTION, FACT]);
    assert.ok(dot(fromThread[0], q) > 0.9999 && dot(fromThread[1], fact) > 0.9999);
  } finally {
    await pool.destroy();
  }
});
