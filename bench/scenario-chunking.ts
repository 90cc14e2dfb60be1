/**
 * c. Chunking throughput: MB/s of real transcript files (../shared/fixtures, else examples/transcripts/) through the
 * Piscina pool (parse + segment + token-accurate chunking) at 1…N threads, ÷ one thread running raw tiktoken
 * encode_ordinary on the same texts. Files are replicated to a few MB and run as one task per file.
 * Each figure is the best of a few rounds (noise only ever slows a round down); raw rounds are interleaved.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { ChunkPool } from '../src/main/coordinator/chunk-pool.ts';
import { createTokenCounter, encodingForModel } from '../src/shared/chunking.ts';
import { detectFormat, parseTranscript } from '../src/shared/formats/parse-transcript.ts';
import type { ChunkingOptions, TranscriptFormat } from '../src/shared/types.ts';
import { MODEL, round, type BenchContext } from './harness.ts';
import { metric, type Metric, type ScenarioResult } from './report.ts';

/** The transcript file extensions this scenario reads; the format of each file is detected as the CLI does. */
const TRANSCRIPT_EXTENSIONS = new Set(['vtt', 'srt', 'json', 'txt']);

interface Corpus {
  source: string;
  files: { name: string; format: string; text: string; bytes: number; spoken: string }[];
}

function loadCorpus(): Corpus | null {
  const fixtures = fileURLToPath(new URL('../../shared/fixtures/', import.meta.url));
  const examples = fileURLToPath(new URL('../examples/transcripts/', import.meta.url));
  for (const dir of [fixtures, examples]) {
    if (!existsSync(dir)) continue;
    const files = readdirSync(dir)
      .filter((f) => TRANSCRIPT_EXTENSIONS.has(f.split('.').pop() ?? ''))
      .sort()
      .map((name) => {
        const text = readFileSync(`${dir}${name}`, 'utf8');
        const format = detectFormat(text, name);
        // The spoken text alone: what chunking must tokenize at the very least.
        const spoken = parseTranscript(format as TranscriptFormat, { text }).segments.map((seg) => seg.text).join('\n');
        return { name, format, text, bytes: Buffer.byteLength(text), spoken };
      });
    if (files.length > 0) return { source: dir, files };
  }
  return null;
}

function replicate<T extends { bytes: number }>(files: T[], targetBytes: number): T[] {
  const out: T[] = [];
  let total = 0;
  while (total < targetBytes) {
    for (const f of files) {
      out.push(f);
      total += f.bytes;
    }
  }
  return out;
}

function rawEncodeMs(texts: string[], encoding: string): number {
  const counter = createTokenCounter(encoding);
  try {
    counter.encode(texts[0]); // warm
    const t = performance.now();
    for (const text of texts) counter.encode(text);
    return performance.now() - t;
  } finally {
    counter.free();
  }
}

/** Wall ms, and CPU ms of the whole process (every thread) over the same interval. */
async function poolMs(pool: ChunkPool, work: Corpus['files'], options: ChunkingOptions): Promise<{ wall: number; cpu: number }> {
  const cpu0 = process.cpuUsage();
  const t = performance.now();
  const results = await Promise.all(work.map((f) => pool.chunk({ format: f.format, payload: { text: f.text }, options })));
  const wall = performance.now() - t;
  const cpu = process.cpuUsage(cpu0);
  const bad = results.find((r) => !r.ok);
  if (bad && !bad.ok) throw new Error(`chunk task failed: ${bad.message}`);
  return { wall, cpu: (cpu.user + cpu.system) / 1000 };
}

export async function scenarioChunking(ctx: BenchContext): Promise<ScenarioResult> {
  const started = performance.now();
  const corpus = loadCorpus();
  if (!corpus) {
    return { id: 'c', title: 'Chunking throughput', status: 'skipped', metrics: [], notes: ['skipped: no ../shared/fixtures and no examples/transcripts/'], params: {}, elapsedMs: 0 };
  }
  const targetBytes = ctx.quick ? 600_000 : 4_000_000;
  const rounds = ctx.quick ? 1 : 3;
  const work = replicate(corpus.files, targetBytes);
  const bytes = work.reduce((n, f) => n + f.bytes, 0);
  const mb = bytes / 1e6;
  const encoding = encodingForModel(MODEL);
  const options: ChunkingOptions = { maxTokens: 512, charLimit: 1200, encoding };
  const maxThreads = Math.max(1, os.availableParallelism());
  ctx.log(`c: ${work.length} tasks, ${mb.toFixed(2)} MB from ${corpus.source}; threads 1…${maxThreads}, best of ${rounds}…`);

  const texts = work.map((f) => f.text);
  const spoken = work.map((f) => f.spoken);
  let rawBest = Infinity;
  let spokenBest = Infinity;
  const poolBest = new Map<number, { wall: number; cpu: number }>();
  for (let r = 0; r < rounds; r++) {
    rawBest = Math.min(rawBest, rawEncodeMs(texts, encoding));
    spokenBest = Math.min(spokenBest, rawEncodeMs(spoken, encoding));
    for (let n = 1; n <= maxThreads; n++) {
      const pool = new ChunkPool(n);
      try {
        // Warm every thread (tiktoken loads its ranks once per thread), then time the whole set.
        await Promise.all(Array.from({ length: n * 2 }, (_, i) => pool.chunk({ format: corpus.files[i % corpus.files.length].format, payload: { text: corpus.files[i % corpus.files.length].text }, options })));
        const m = await poolMs(pool, work, options);
        if (m.wall < (poolBest.get(n)?.wall ?? Infinity)) poolBest.set(n, m);
      } finally {
        await pool.close();
      }
    }
  }
  const rawMBps = mb / (rawBest / 1000);
  const spokenMBps = mb / (spokenBest / 1000);
  const metrics: Metric[] = [
    metric('raw tiktoken encode of the files, 1 thread', round(rawMBps, 2), 'MB/s', undefined, 'the target baseline'),
    metric('raw tiktoken encode of the spoken text only', round(spokenMBps, 2), 'MB/s', undefined, 'stricter: markup stripped, MB of the files'),
  ];
  const one = poolBest.get(1)!;
  for (let n = 1; n <= maxThreads; n++) {
    const m = poolBest.get(n)!;
    const rate = mb / (m.wall / 1000);
    metrics.push(metric(`pool, ${n} thread${n > 1 ? 's' : ''}`, round(rate, 2), 'MB/s', undefined, `process CPU ${round(m.cpu / m.wall, 2)} cores over the run`));
    metrics.push(
      metric(`pool ${n}t per thread ÷ raw tiktoken`, round(rate / n / rawMBps, 3), '', { op: '>=', value: 0.8 }, `÷ spoken-only encode: ${round(rate / n / spokenMBps, 3)}`),
    );
  }
  if (maxThreads >= 2) {
    const two = poolBest.get(2)!;
    metrics.push(
      metric('pool 2 threads ÷ 1 thread', round(one.wall / two.wall, 2), '×', { op: '>=', value: 1.6 },
        `CPU per MB 2t ÷ 1t: ${round(two.cpu / one.cpu, 2)}; load avg ${os.loadavg()[0].toFixed(2)}`),
    );
  }
  return {
    id: 'c',
    title: 'Chunking throughput',
    status: 'ok',
    params: { source: corpus.source, files: corpus.files.map((f) => f.name), tasks: work.length, megabytes: round(mb, 2), rounds, encoding },
    elapsedMs: performance.now() - started,
    metrics,
    notes: [`${corpus.files.length} files from ${corpus.source} replicated to ${work.length} tasks (${mb.toFixed(2)} MB); availableParallelism ${maxThreads}; best of ${rounds} rounds each.`],
  };
}
