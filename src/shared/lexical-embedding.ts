/**
 * The built-in offline embedder: a LEXICAL vector, not a semantic one. Two texts are close when
 * they share words and word pairs; synonyms, paraphrases and translations are not close. It needs
 * no network, no model and no key, so the worker, tests and benchmarks run anywhere, and search
 * over it behaves like a keyword search ranked by cosine similarity.
 *
 * Method (feature hashing):
 * - text is NFKC-normalised and lowercased; tokens are runs of Unicode letters, marks and digits;
 *   Han, Hiragana and Katakana characters are one token each (those scripts put no spaces
 *   between words, and the bigrams below recover short words);
 * - features are every token and every pair of adjacent tokens (bigram weight 0.5);
 * - each feature is hashed with FNV-1a 32-bit over its UTF-16 code units and a murmur3 finaliser;
 *   the bucket is hash mod `dimensions`, the sign comes from a second mix of the same hash;
 * - a feature seen n times weighs 1 + ln(n) (sublinear tf); the vector is L2-normalised.
 * Text with no letters or digits (empty, punctuation, emoji only) would give a zero vector, which
 * cosine distance cannot handle: it gets ZERO_TEXT_VALUE in bucket 0 and zeros elsewhere (the
 * only output that is not unit length).
 *
 * Deterministic across processes and platforms: integer hashing only, no seeds, no Math.random.
 */

/** Value placed in bucket 0 for text without any token. */
export const ZERO_TEXT_VALUE = 1e-6;
export const BIGRAM_WEIGHT = 0.5;
/** pgvector's limit for the vector type. */
export const MAX_LEXICAL_DIMENSIONS = 16_000;

const TOKEN = /[\p{L}\p{N}][\p{L}\p{M}\p{N}]*/gu;
const IDEOGRAPHIC = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]/u;
const IDEOGRAPHIC_OR_OTHER = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]|[^\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]+/gu;

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
/** Separates the two words of a bigram inside its hash (cannot occur in a token). */
const BIGRAM_SEPARATOR = 0x20;

export function lexicalEmbedding(text: string, dimensions: number): Float32Array {
  if (!Number.isInteger(dimensions) || dimensions < 1 || dimensions > MAX_LEXICAL_DIMENSIONS) {
    throw new Error(`dimensions must be an integer from 1 to ${MAX_LEXICAL_DIMENSIONS}, got ${String(dimensions)}`);
  }
  const counts = countFeatures(text);
  const vector = new Float32Array(dimensions);
  if (counts.size === 0) {
    vector[0] = ZERO_TEXT_VALUE;
    return vector;
  }
  const sums = new Float64Array(dimensions);
  for (const [hash, count] of counts) {
    const weight = (hash & 1 ? BIGRAM_WEIGHT : 1) * (1 + Math.log(count));
    const mixed = fmix32(hash);
    const sign = fmix32(mixed ^ 0x9e3779b9) & 1 ? -1 : 1;
    sums[mixed % dimensions] += sign * weight;
  }
  let norm = 0;
  for (let i = 0; i < dimensions; i++) norm += sums[i] * sums[i];
  if (norm === 0) {
    // Every feature cancelled out in its bucket (possible only with very few dimensions).
    vector[0] = ZERO_TEXT_VALUE;
    return vector;
  }
  const scale = 1 / Math.sqrt(norm);
  for (let i = 0; i < dimensions; i++) vector[i] = sums[i] * scale;
  return vector;
}

/**
 * Feature hash → occurrences. The low bit of the key marks the kind (0 unigram, 1 bigram), so a
 * unigram and a bigram never share a key; the other 31 bits are the FNV-1a hash.
 */
function countFeatures(text: string): Map<number, number> {
  const counts = new Map<number, number>();
  let previous = -1;
  for (const token of tokens(text)) {
    const hash = fnv1a(FNV_OFFSET, token);
    const unigram = ((hash << 1) | 0) >>> 0;
    counts.set(unigram, (counts.get(unigram) ?? 0) + 1);
    if (previous !== -1) {
      const pair = fnv1a(Math.imul(previous ^ BIGRAM_SEPARATOR, FNV_PRIME) >>> 0, token);
      const bigram = ((pair << 1) | 1) >>> 0;
      counts.set(bigram, (counts.get(bigram) ?? 0) + 1);
    }
    previous = hash;
  }
  return counts;
}

function* tokens(text: string): Generator<string> {
  const normalised = text.normalize('NFKC').toLowerCase();
  for (const match of normalised.matchAll(TOKEN)) {
    const word = match[0];
    if (!IDEOGRAPHIC.test(word)) {
      yield word;
      continue;
    }
    for (const part of word.matchAll(IDEOGRAPHIC_OR_OTHER)) yield part[0];
  }
}

function fnv1a(seed: number, value: string): number {
  let hash = seed;
  for (let i = 0; i < value.length; i++) {
    hash ^= value.charCodeAt(i);
    hash = Math.imul(hash, FNV_PRIME);
  }
  return hash >>> 0;
}

/** murmur3's 32-bit finaliser: spreads FNV's weak low bits before the modulo. */
function fmix32(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
