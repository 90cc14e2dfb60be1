import { readdirSync, readFileSync } from 'node:fs';
import { Piscina } from 'piscina';
import { ChunkPool } from '../../src/main/coordinator/chunk-pool.ts';
import { decodeResult } from '../../src/shared/thread-messages.ts';
import { createTokenCounter } from '../../src/shared/chunking.ts';
import { parseTranscript } from '../../src/shared/formats/parse-transcript.ts';
const dir = '/work/shared/fixtures/';
const ext: Record<string,string> = { vtt: 'vtt', srt: 'srt', json: 'whisper', txt: 'text' };
const files = readdirSync(dir).filter(f => ext[f.split('.').pop()!]).map(f => ({ f, format: ext[f.split('.').pop()!], text: readFileSync(dir + f, 'utf8') }));
const work: typeof files = []; let bytes = 0;
while (bytes < 4e6) for (const f of files) { work.push(f); bytes += Buffer.byteLength(f.text); }
const options = { maxTokens: 512, charLimit: 1200, encoding: 'cl100k_base' };
const tc = createTokenCounter('cl100k_base');
// per-file: raw encode time vs parsed text encode time
for (const f of files) {
  const t0 = performance.now(); for (let i=0;i<5;i++) tc.encode(f.text); const raw = (performance.now()-t0)/5;
  const p = parseTranscript(f.format as any, { text: f.text });
  const spoken = p.segments.map(s => s.text).join('\n');
  const t1 = performance.now(); for (let i=0;i<5;i++) tc.encode(spoken); const sp = (performance.now()-t1)/5;
  console.log(f.f, f.text.length, spoken.length, 'raw ms', raw.toFixed(1), 'spoken ms', sp.toFixed(1));
}
for (const n of [1, 2, 1, 2]) {
  const pool = new ChunkPool(n);
  await Promise.all(Array.from({ length: 4 }, () => pool.chunk({ format: 'vtt', payload: { text: files[0].text }, options })));
  const t = performance.now();
  const res = await Promise.all(work.map(w => pool.chunk({ format: w.format, payload: { text: w.text }, options })));
  const wall = performance.now() - t;
  const inThread = res.reduce((s, r) => s + (r.ok ? r.elapsedMs : 0), 0);
  console.log(`threads ${n}: wall ${wall.toFixed(0)} ms, MB/s ${(bytes/1e6/(wall/1000)).toFixed(2)}, sum in-thread ${inThread.toFixed(0)} ms, busy ${(inThread/wall/n).toFixed(2)}`);
  await pool.close();
}
