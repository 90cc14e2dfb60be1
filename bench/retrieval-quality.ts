/**
 * Retrieval quality of the offline embedders, side by side (issue 13, items 1 and 3; item 2 measured only).
 *
 *   node bench/retrieval-quality.ts [--only lexical,use-lite,glove-sif] [--quick] [--verbose] [--json <file>]
 *   npm run bench -- --only l                                  # the same, as scenario l of bench/run.ts
 *
 * Corpus: the meeting transcripts of bench/retrieval/*.txt (written for this bench: each fact is one sentence of
 * one speaker turn among filler turns) plus the bundled examples/ as distractor documents, parsed with the
 * worker's parser and chunked with its chunker at the default settings (RAG_CHUNK_MAX_TOKENS,
 * RAG_EMBEDDING_CHAR_LIMIT, the default model's tokenizer), all documents in one index, as a search sees them.
 * Questions: bench/retrieval/questions.json, each a paraphrase of one fact sentence sharing few content words
 * with it (the notes give the share). The right answer is the chunk containing the sentence.
 *
 * Per candidate, each in its own process (fresh heap, its own peak RSS and CPU):
 * - recall@1 / recall@3: the right chunk ranked first / in the top 3 by cosine, and MRR;
 *   "chunk": one vector per chunk (what the worker stores today);
 *   "best segment": one vector per line of the chunk (a segment, or part of a split one), the chunk scored by
 *   its best line (multi-vector retrieval, issue item 2: measured here, not implemented);
 * - chunks per CPU-second (process CPU, all threads, embedding every chunk in batches of RAG_EMBEDDING_BATCH's
 *   default, median of the passes), segments per CPU-second, time to the first vector (load), peak RSS (VmHWM);
 * and, in another fresh process, one Piscina thread with the chunk pool's resource limits: time from the pool's
 * creation to the first vector, and the process's RSS growth once the thread has embedded every chunk.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { chunkSegments, createTokenCounter } from '../src/shared/chunking.ts';
import { resolveConfig } from '../src/shared/config.ts';
import { encodingForModel } from '../src/shared/encoding-for-model.ts';
import { parseTranscript } from '../src/shared/formats/parse-transcript.ts';
import type { Chunk, ChunkingOptions } from '../src/shared/types.ts';
import { THREAD_YOUNG_GENERATION_MB } from '../src/main/coordinator/chunk-pool.ts';
import { childResult, cpuMsSince, runChild } from './child-process.ts';
import type { BenchContext } from './harness.ts';
import { metric, type Metric, type ScenarioResult } from './report.ts';
import { CANDIDATES, candidate } from './retrieval/candidates.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SELF = fileURLToPath(import.meta.url);
const RETRIEVAL_DIR = `${ROOT}bench/retrieval/`;
/** The bundled example transcripts, as distractor documents (examples/transcripts/, formerly examples/). */
const DISTRACTOR_NAMES = ['lecture-notes.txt', 'customer-interview.srt', 'product-meeting.vtt', 'support-call.json'];
const DISTRACTORS = DISTRACTOR_NAMES.map((name) => (existsSync(`${ROOT}examples/transcripts/${name}`) ? `examples/transcripts/${name}` : `examples/${name}`));
const DEFAULTS = resolveConfig({});
const BATCH = DEFAULTS.embeddingBatch;
/** The recall@3 the issue asks of a default offline embedder. */
const TARGET_RECALL_AT_3 = 0.85;

interface Question {
  transcript: string;
  question: string;
  fact: string;
}

interface IndexedChunk {
  doc: string;
  chunk: Chunk;
  lines: string[];
}

interface Corpus {
  options: ChunkingOptions;
  chunks: IndexedChunk[];
  questions: Question[];
  /** Index in `chunks` of each question's right chunk. */
  gold: number[];
}

function buildCorpus(): Corpus {
  const options: ChunkingOptions = { maxTokens: DEFAULTS.chunkMaxTokens, charLimit: DEFAULTS.embeddingCharLimit, encoding: encodingForModel(DEFAULTS.embeddingModel) };
  const counter = createTokenCounter(options.encoding);
  const files = [...readdirSync(RETRIEVAL_DIR).filter((f) => f.endsWith('.txt')).sort().map((f) => `bench/retrieval/${f}`), ...DISTRACTORS];
  const chunks: IndexedChunk[] = [];
  for (const file of files) {
    const parsed = parseTranscript('auto', { text: readFileSync(`${ROOT}${file}`, 'utf8') });
    const doc = file.split('/').pop()!;
    for (const chunk of chunkSegments(parsed.segments, options, counter)) chunks.push({ doc, chunk, lines: chunk.content.split('\n') });
  }
  const { questions } = JSON.parse(readFileSync(`${RETRIEVAL_DIR}questions.json`, 'utf8')) as { questions: Question[] };
  const gold = questions.map((q) => {
    const hits = chunks.flatMap((c, i) => (c.doc === q.transcript && c.chunk.content.includes(q.fact) ? [i] : []));
    if (hits.length !== 1) throw new Error(`question ${JSON.stringify(q.question)}: its fact is in ${hits.length} chunks of ${q.transcript}, expected 1`);
    return hits[0];
  });
  return { options, chunks, questions, gold };
}

// ---------------------------------------------------------------------------------------------- child: measure

interface Ranking {
  recallAt1: number;
  recallAt3: number;
  mrr: number;
  /** 1-based rank of the right chunk, per question. */
  ranks: number[];
}

export interface CandidateMeasure {
  candidate: string;
  label: string;
  dimensions: number;
  chunks: number;
  segments: number;
  questions: number;
  loadMs: number;
  chunk: Ranking;
  bestSegment: Ranking;
  /** One vector per chunk again, but the normalised mean of its lines' vectors instead of the whole chunk's. */
  segmentMean: Ranking;
  chunksPerCpuSecond: number;
  msPerChunkWall: number;
  segmentsPerCpuSecond: number;
  rssBeforeLoadMb: number;
  peakRssMb: number;
}

export interface ThreadProbe {
  candidate: string;
  /** Pool created → first vector back (thread start, imports, model load, first call). */
  firstVectorMs: number;
  /** Process RSS after the thread embedded every chunk, minus before the pool existed. */
  rssGrowthMb: number;
  peakRssMb: number;
}

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

function rank(scores: number[][], gold: number[]): Ranking {
  const ranks = scores.map((row, q) => 1 + row.filter((s, i) => i !== gold[q] && s >= row[gold[q]]).length);
  const share = (k: number) => ranks.filter((r) => r <= k).length / ranks.length;
  return { recallAt1: share(1), recallAt3: share(3), mrr: ranks.reduce((n, r) => n + 1 / r, 0) / ranks.length, ranks };
}

function vmHwmMb(): number {
  const m = /VmHWM:\s+(\d+)\s+kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : process.memoryUsage().rss / 1048576;
}

async function inBatches(embed: (texts: string[]) => Promise<Float32Array[]>, texts: string[]): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (let i = 0; i < texts.length; i += BATCH) out.push(...(await embed(texts.slice(i, i + BATCH))));
  return out;
}

async function measureCandidate(id: string, passes: number): Promise<CandidateMeasure> {
  const corpus = buildCorpus();
  const c = candidate(id);
  const rssBeforeLoadMb = process.memoryUsage().rss / 1048576;
  const t0 = performance.now();
  const embed = await c.load();
  await embed(['warm-up sentence.']);
  const loadMs = performance.now() - t0;

  const chunkTexts = corpus.chunks.map((x) => x.chunk.content);
  let chunkVectors: Float32Array[] = [];
  const cpu: number[] = [];
  const wall: number[] = [];
  for (let p = 0; p < passes; p++) {
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    chunkVectors = await inBatches(embed, chunkTexts);
    wall.push(performance.now() - w0);
    cpu.push(cpuMsSince(c0).totalMs);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

  const lineOwner: number[] = [];
  const lineTexts: string[] = [];
  corpus.chunks.forEach((x, i) => x.lines.forEach((l) => (lineOwner.push(i), lineTexts.push(l))));
  const s0 = process.cpuUsage();
  const lineVectors = await inBatches(embed, lineTexts);
  const segmentCpuMs = cpuMsSince(s0).totalMs;

  const questionVectors = await inBatches(
    embed,
    corpus.questions.map((q) => q.question),
  );
  const chunkScores = questionVectors.map((q) => chunkVectors.map((v) => cosine(q, v)));
  const means = corpus.chunks.map(() => new Float32Array(lineVectors[0].length));
  lineVectors.forEach((v, i) => v.forEach((x, d) => (means[lineOwner[i]][d] += x)));
  const meanScores = questionVectors.map((q) => means.map((v) => cosine(q, v)));
  const segmentScores = questionVectors.map((q) => {
    const best = new Array<number>(corpus.chunks.length).fill(-Infinity);
    lineVectors.forEach((v, i) => (best[lineOwner[i]] = Math.max(best[lineOwner[i]], cosine(q, v))));
    return best;
  });
  return {
    candidate: c.id,
    label: c.label,
    dimensions: chunkVectors[0].length,
    chunks: chunkTexts.length,
    segments: lineTexts.length,
    questions: corpus.questions.length,
    loadMs,
    chunk: rank(chunkScores, corpus.gold),
    bestSegment: rank(segmentScores, corpus.gold),
    segmentMean: rank(meanScores, corpus.gold),
    chunksPerCpuSecond: chunkTexts.length / (median(cpu) / 1000),
    msPerChunkWall: median(wall) / chunkTexts.length,
    segmentsPerCpuSecond: lineTexts.length / (segmentCpuMs / 1000),
    rssBeforeLoadMb,
    peakRssMb: vmHwmMb(),
  };
}

async function probeThread(id: string): Promise<ThreadProbe> {
  const chunkTexts = buildCorpus().chunks.map((x) => x.chunk.content);
  const { Piscina } = await import('piscina');
  const before = process.memoryUsage().rss;
  const t0 = performance.now();
  const pool = new Piscina({
    filename: new URL('./retrieval/embed-thread.ts', import.meta.url).href,
    minThreads: 0,
    maxThreads: 1,
    idleTimeout: Number.POSITIVE_INFINITY,
    resourceLimits: { maxYoungGenerationSizeMb: THREAD_YOUNG_GENERATION_MB },
  });
  await pool.run({ candidate: id, inputs: [chunkTexts[0]] });
  const firstVectorMs = performance.now() - t0;
  for (let i = 0; i < chunkTexts.length; i += BATCH) await pool.run({ candidate: id, inputs: chunkTexts.slice(i, i + BATCH) });
  const rssGrowthMb = (process.memoryUsage().rss - before) / 1048576;
  const peakRssMb = vmHwmMb();
  await pool.destroy();
  return { candidate: id, firstVectorMs, rssGrowthMb, peakRssMb };
}

// ---------------------------------------------------------------------------------------------- parent

const STOP = new Set(
  'a an the and or but of to in on at for by with from is are was were be been will would can could do does did what when where which who whom why how there their they we our you your i my it its this that these those so if as into about after before up out off than then now new old'.split(
    ' ',
  ),
);

/** Share of a question's content words that also occur in its fact (crude: lowercased, a trailing s dropped). */
function overlap(q: Question): number {
  const words = (t: string) => new Set([...t.toLowerCase().matchAll(/[\p{L}\p{N}]+/gu)].map((m) => m[0].replace(/s$/, '')).filter((w) => w.length > 1 && !STOP.has(w)));
  const qw = words(q.question);
  const fw = words(q.fact);
  return qw.size === 0 ? 0 : [...qw].filter((w) => fw.has(w)).length / qw.size;
}

export interface RetrievalRun {
  measures: CandidateMeasure[];
  threads: ThreadProbe[];
  skipped: { candidate: string; reason: string }[];
  corpus: { documents: number; chunks: number; questions: number; meanOverlap: number; zeroOverlap: number; options: ChunkingOptions };
}

export async function runRetrievalBench(options: { only?: string[]; quick: boolean; log: (line: string) => void }): Promise<RetrievalRun> {
  const corpus = buildCorpus();
  const selected = CANDIDATES.filter((c) => !options.only || options.only.includes(c.id));
  const measures: CandidateMeasure[] = [];
  const threads: ThreadProbe[] = [];
  const skipped: { candidate: string; reason: string }[] = [];
  for (const c of selected) {
    const reason = c.unavailable();
    if (reason) {
      skipped.push({ candidate: c.id, reason });
      options.log(`${c.id}: skipped: ${reason}`);
      continue;
    }
    options.log(`${c.id}: measuring in a fresh process`);
    const m = await runChild<CandidateMeasure>(SELF, { mode: 'measure', candidate: c.id, passes: options.quick ? 1 : 3 }, { timeoutMs: 10 * 60_000, tag: c.id });
    if (!m.result) throw new Error(`${c.id}: measuring process failed (exit ${m.exitCode}${m.timedOut ? ', timed out' : ''}): ${m.stderrTail}`);
    measures.push(m.result);
    options.log(`${c.id}: one Piscina thread, in a fresh process`);
    const t = await runChild<ThreadProbe>(SELF, { mode: 'thread', candidate: c.id }, { timeoutMs: 10 * 60_000, tag: `${c.id} thread` });
    if (!t.result) throw new Error(`${c.id}: thread probe failed (exit ${t.exitCode}${t.timedOut ? ', timed out' : ''}): ${t.stderrTail}`);
    threads.push(t.result);
  }
  const overlaps = corpus.questions.map(overlap);
  return {
    measures,
    threads,
    skipped,
    corpus: {
      documents: new Set(corpus.chunks.map((c) => c.doc)).size,
      chunks: corpus.chunks.length,
      questions: corpus.questions.length,
      meanOverlap: overlaps.reduce((a, b) => a + b, 0) / overlaps.length,
      zeroOverlap: overlaps.filter((o) => o === 0).length,
      options: corpus.options,
    },
  };
}

function fmt(n: number, digits = 2): string {
  return Number.isFinite(n) ? n.toFixed(digits) : String(n);
}

export function formatRetrievalTable(run: RetrievalRun): string {
  const head = ['candidate', 'dims', 'R@1 chunk', 'R@3 chunk', 'MRR chunk', 'R@1 best-seg', 'R@3 best-seg', 'MRR best-seg', 'R@3 seg-mean', 'chunks/CPU-s', 'segments/CPU-s', 'ms/chunk', 'load ms', 'peak RSS MB', 'thread: 1st vector ms', 'thread: RSS +MB'];
  const rows = run.measures.map((m) => {
    const t = run.threads.find((x) => x.candidate === m.candidate);
    return [
      m.candidate,
      String(m.dimensions),
      fmt(m.chunk.recallAt1),
      fmt(m.chunk.recallAt3),
      fmt(m.chunk.mrr),
      fmt(m.bestSegment.recallAt1),
      fmt(m.bestSegment.recallAt3),
      fmt(m.bestSegment.mrr),
      fmt(m.segmentMean.recallAt3),
      fmt(m.chunksPerCpuSecond, 0),
      fmt(m.segmentsPerCpuSecond, 0),
      fmt(m.msPerChunkWall, 2),
      fmt(m.loadMs, 0),
      fmt(m.peakRssMb, 0),
      t ? fmt(t.firstVectorMs, 0) : '—',
      t ? fmt(t.rssGrowthMb, 0) : '—',
    ];
  });
  const all = [head, ...rows];
  const widths = head.map((_, c) => Math.max(...all.map((r) => r[c].length)));
  const line = (r: string[]) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join(' │ ');
  const c = run.corpus;
  return [
    line(head),
    widths.map((w) => '─'.repeat(w)).join('─┼─'),
    ...rows.map(line),
    '',
    `${c.questions} questions over ${c.chunks} chunks of ${c.documents} documents (chunking: ${c.options.maxTokens} tokens, ${c.options.charLimit} characters, ${c.options.encoding}); ` +
      `questions share ${Math.round(c.meanOverlap * 100)} % of their content words with their fact on average, ${c.zeroOverlap} share none.`,
    'R@k: share of questions whose right chunk ranks in the top k by cosine (ties count against it); chunk: one vector of the whole chunk (what the worker stores); ' +
      'best-seg: a chunk scored by its best line (segment) vector (multi-vector); seg-mean: one vector per chunk, the mean of its line vectors.',
    'Speed is process CPU (all threads) to embed every chunk in batches of 16; load = time to the first vector in a process; thread = one Piscina thread with the chunk pool\'s limits, from pool creation.',
    ...run.measures.map((m) => `${m.candidate}: ${m.label}`),
    ...run.skipped.map((s) => `${s.candidate}: skipped, ${s.reason}`),
  ].join('\n');
}

/** Scenario l of bench/run.ts: the same measurement, figures only (no target: none of these is the default yet). */
export async function scenarioRetrievalQuality(ctx: BenchContext): Promise<ScenarioResult> {
  const started = performance.now();
  const run = await runRetrievalBench({ quick: ctx.quick, log: ctx.log });
  const metrics: Metric[] = [];
  const r = (x: number) => Math.round(x * 1000) / 1000;
  for (const m of run.measures) {
    const t = run.threads.find((x) => x.candidate === m.candidate);
    metrics.push(
      metric(`${m.candidate}: recall@1 / @3, chunk`, `${fmt(m.chunk.recallAt1)} / ${fmt(m.chunk.recallAt3)}`),
      metric(`${m.candidate}: recall@1 / @3, best segment`, `${fmt(m.bestSegment.recallAt1)} / ${fmt(m.bestSegment.recallAt3)}`),
      metric(`${m.candidate}: recall@3, mean of segments`, r(m.segmentMean.recallAt3)),
      metric(`${m.candidate}: chunks per CPU-second`, Math.round(m.chunksPerCpuSecond), 'chunks/s'),
      metric(`${m.candidate}: peak RSS, load`, `${fmt(m.peakRssMb, 0)} MB, ${fmt(m.loadMs, 0)} ms`),
      metric(`${m.candidate}: one thread: first vector, RSS growth`, t ? `${fmt(t.firstVectorMs, 0)} ms, +${fmt(t.rssGrowthMb, 0)} MB` : null),
    );
  }
  const c = run.corpus;
  return {
    id: 'l',
    title: 'Retrieval quality of the offline embedders',
    status: 'ok',
    metrics,
    notes: [
      `${c.questions} paraphrased questions over ${c.chunks} chunks of ${c.documents} documents; they share ${Math.round(c.meanOverlap * 100)} % of their content words with their fact (${c.zeroOverlap} none)`,
      `the issue's bar for a default offline embedder: recall@3 ≥ ${TARGET_RECALL_AT_3} (chunk or best segment); \`node bench/retrieval-quality.ts --verbose\` lists the misses`,
      ...run.skipped.map((s) => `${s.candidate} skipped: ${s.reason}`),
    ],
    params: { corpus: run.corpus, measures: run.measures, threads: run.threads, skipped: run.skipped },
    elapsedMs: performance.now() - started,
  };
}

async function main(): Promise<void> {
  const arg = process.argv[2];
  if (arg?.startsWith('{')) {
    const params = JSON.parse(arg) as { mode: 'measure' | 'thread'; candidate: string; passes?: number };
    childResult(params.mode === 'measure' ? await measureCandidate(params.candidate, params.passes ?? 3) : await probeThread(params.candidate));
    return;
  }
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { only: { type: 'string' }, quick: { type: 'boolean', default: false }, verbose: { type: 'boolean', default: false }, json: { type: 'string' } },
  });
  const only = values.only?.split(',').map((s) => s.trim()).filter(Boolean);
  for (const id of only ?? []) candidate(id);
  const t0 = performance.now();
  const run = await runRetrievalBench({ only, quick: values.quick!, log: (l) => process.stderr.write(`[retrieval +${((performance.now() - t0) / 1000).toFixed(1)}s] ${l}\n`) });
  process.stdout.write(`${formatRetrievalTable(run)}\n`);
  if (values.verbose) {
    const corpus = buildCorpus();
    for (const m of run.measures) {
      process.stdout.write(`\n${m.candidate}: questions whose right chunk is not first (chunk rank / best-segment rank):\n`);
      corpus.questions.forEach((q, i) => {
        if (m.chunk.ranks[i] > 1 || m.bestSegment.ranks[i] > 1) process.stdout.write(`  ${m.chunk.ranks[i]} / ${m.bestSegment.ranks[i]}  ${q.question}\n`);
      });
    }
  }
  if (values.json) writeFileSync(values.json, `${JSON.stringify(run, null, 2)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
