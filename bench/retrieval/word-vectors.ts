/**
 * Static word vectors as a sentence embedder (the retrieval bench's candidate c), from the int8 table written
 * by reduce-word-vectors.ts. A text's vector is the weighted mean of its known words' vectors, L2-normalised:
 * - `mean`: every known word except stopwords weighs 1;
 * - `sif`: smooth inverse frequency (Arora et al. 2017), weight a / (a + p(w)) with a = 1e-3 and p(w) from the
 *   table's frequency rank (Zipf: p ≈ 1 / (rank × H), H = ln 400,000 + γ), stopwords kept (SIF down-weights them);
 * - `sif-cc`: sif, then the projection on the common direction removed (here: the frequency-weighted mean of the
 *   whole table, a corpus-independent stand-in for SIF's first principal component).
 * Tokens: NFKC, lowercased, runs of letters and digits (so "doctor's" → doctor, s).
 */
import { readFileSync } from 'node:fs';

export type WordVectorMode = 'mean' | 'sif' | 'sif-cc';

const TOKEN = /[\p{L}\p{N}]+/gu;
const SIF_A = 1e-3;
const ZIPF_H = Math.log(400_000) + 0.5772;

const STOPWORDS = new Set(
  (
    'a about above after again against all am an and any are as at be because been before being below between both but by can ' +
    'could did do does doing down during each few for from further had has have having he her here hers herself him himself his ' +
    'how i if in into is it its itself just let me more most my myself no nor not now of off on once only or other our ours ' +
    'ourselves out over own same she should so some such than that the their theirs them themselves then there these they this ' +
    'those through to too under until up very was we were what when where which while who whom why will with would you your ' +
    'yours yourself yourselves s t d ll m re ve don okay yes yeah oh um uh sure well also get got one'
  ).split(' '),
);

export interface WordTable {
  words: Map<string, number>;
  dims: number;
  /** Dequantised rows, count × dims. */
  vectors: Float32Array;
  count: number;
}

export function loadWordTable(path: string): WordTable {
  const buf = readFileSync(path);
  if (buf.toString('latin1', 0, 4) !== 'RWV1') throw new Error(`${path}: not an RWV1 word-vector table`);
  const count = buf.readUInt32LE(4);
  const dims = buf.readUInt32LE(8);
  const scalesAt = 12;
  const dataAt = scalesAt + 4 * count;
  const wordsAt = dataAt + count * dims;
  const vectors = new Float32Array(count * dims);
  for (let r = 0; r < count; r++) {
    const scale = buf.readFloatLE(scalesAt + 4 * r);
    for (let d = 0; d < dims; d++) vectors[r * dims + d] = buf.readInt8(dataAt + r * dims + d) * scale;
  }
  const list = buf.toString('utf8', wordsAt).split('\n');
  const words = new Map<string, number>();
  list.forEach((w, i) => words.set(w, i));
  return { words, dims, vectors, count };
}

export function createWordVectorEmbedder(table: WordTable, mode: WordVectorMode): (text: string) => Float32Array {
  const { dims, vectors, words } = table;
  const sifWeight = (rank: number) => SIF_A / (SIF_A + 1 / ((rank + 1) * ZIPF_H));
  let common: Float32Array | undefined;
  if (mode === 'sif-cc') {
    common = new Float32Array(dims);
    for (let r = 0; r < table.count; r++) {
      const p = 1 / ((r + 1) * ZIPF_H);
      for (let d = 0; d < dims; d++) common[d] += p * sifWeight(r) * vectors[r * dims + d];
    }
    normalise(common);
  }
  return (text: string) => {
    const sum = new Float32Array(dims);
    let any = false;
    for (const match of text.normalize('NFKC').toLowerCase().matchAll(TOKEN)) {
      const token = match[0];
      const rank = words.get(token);
      if (rank === undefined) continue;
      if (mode === 'mean' && STOPWORDS.has(token)) continue;
      const weight = mode === 'mean' ? 1 : sifWeight(rank);
      for (let d = 0; d < dims; d++) sum[d] += weight * vectors[rank * dims + d];
      any = true;
    }
    if (!any) {
      sum[0] = 1e-6;
      return sum;
    }
    if (common) {
      let dot = 0;
      for (let d = 0; d < dims; d++) dot += sum[d] * common[d];
      for (let d = 0; d < dims; d++) sum[d] -= dot * common[d];
    }
    normalise(sum);
    return sum;
  };
}

function normalise(v: Float32Array): void {
  let n = 0;
  for (const x of v) n += x * x;
  if (n === 0) return;
  const s = 1 / Math.sqrt(n);
  for (let i = 0; i < v.length; i++) v[i] *= s;
}
