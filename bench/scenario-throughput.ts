/**
 * b. Unlimited, zero-latency provider: the worker's end-to-end chunks/s (enqueued jobs → chunks published in
 * rag_chunks) ÷ a raw bulk insert of the very same rows (read back, vectors as text) into an empty rag_chunks
 * of the same schema (HNSW index included), measured in the same run. The raw rate is the better of COPY
 * and multi-row INSERT.
 */
import os from 'node:os';
import { createTestDatabase } from '../test/support/test-db.ts';
import { spawnFakeServer } from './fake-server.ts';
import { chunkCount, DIMENSIONS, enqueueAll, openWorker, round, statusCounts, withCleanup, workerEnv, type BenchContext } from './harness.ts';
import { copyRows, insertRows, psqlAvailable, readChunkRows, type ChunkRow } from './raw-insert.ts';
import { metric, type ScenarioResult } from './report.ts';
import { generateTranscripts } from './synthetic-transcripts.ts';

export function throughputParams(quick: boolean) {
  return quick ? { transcripts: 6, segments: 100 } : { transcripts: 40, segments: 250 };
}

interface WorkerRun {
  wallMs: number;
  chunks: number;
  notComplete: number;
  rows: ChunkRow[];
  phases: { publishMs: number };
}

async function runWorker(p: ReturnType<typeof throughputParams>, ctx: BenchContext, threads?: number): Promise<WorkerRun> {
  const transcripts = generateTranscripts(p.transcripts, p.segments, { prefix: 'b' });
  return withCleanup(async (defer) => {
    const db = await createTestDatabase(DIMENSIONS);
    defer(() => db.drop());
    const server = await spawnFakeServer({ dimensions: DIMENSIONS });
    defer(() => server.stop());
    const worker = await openWorker(workerEnv(db.url, { OPENAI_API_KEY: 'bench', OPENAI_BASE_URL: server.url, ...(threads ? { RAG_THREADS: String(threads) } : {}) }), 'b');
    defer(() => worker.close());
    await enqueueAll(worker.rt, transcripts);
    // Time spent publishing (rag_complete_job) vs the rest: wrap the store call, it is the one SQL step per job.
    const store = worker.rt.store;
    const complete = store.completeJob.bind(store);
    let publishMs = 0;
    store.completeJob = async (lease) => {
      const t = performance.now();
      try {
        return await complete(lease);
      } finally {
        publishMs += performance.now() - t;
      }
    };
    ctx.log(`b: worker on ${p.transcripts} × ${p.segments} segments, unlimited zero-latency provider, ${worker.rt.pool.threads} chunking thread(s)…`);
    const started = performance.now();
    await worker.coordinator.run({ once: true });
    const wallMs = performance.now() - started;
    const counts = await statusCounts(worker.rt);
    const chunks = await chunkCount(worker.rt);
    const rows = await readChunkRows(db.url);
    return { wallMs, chunks, notComplete: p.transcripts - (counts.complete ?? 0), rows, phases: { publishMs } };
  });
}

async function timeRaw(rows: ChunkRow[], how: 'copy' | 'insert', parallel = 1): Promise<number> {
  return withCleanup(async (defer) => {
    const db = await createTestDatabase(DIMENSIONS);
    defer(() => db.drop());
    return how === 'copy' ? copyRows(db.url, rows, parallel) : insertRows(db.url, rows);
  });
}

export async function scenarioThroughput(ctx: BenchContext): Promise<ScenarioResult> {
  const p = throughputParams(ctx.quick);
  const started = performance.now();
  const w = await runWorker(p, ctx);
  // The same backfill with one chunking thread: does a second thread help the whole pipeline?
  const one = await runWorker(p, ctx, 1);
  ctx.log(`b: raw bulk insert of the same ${w.rows.length} rows…`);
  const psql = psqlAvailable();
  const copyMs = psql ? await timeRaw(w.rows, 'copy') : NaN;
  const insertMs = await timeRaw(w.rows, 'insert');
  const cores = os.availableParallelism();
  const parallelMs = psql && cores > 1 ? await timeRaw(w.rows, 'copy', cores) : NaN;
  const n = w.rows.length;
  const workerRate = w.chunks / (w.wallMs / 1000);
  const copyRate = n / (copyMs / 1000);
  const insertRate = n / (insertMs / 1000);
  const rawRate = Math.max(Number.isFinite(copyRate) ? copyRate : 0, insertRate);
  const rawHow = rawRate === insertRate ? 'multi-row INSERT' : 'COPY';
  const conc = 4; // default RAG_MAX_CONCURRENT_JOBS; phases overlap across jobs
  return {
    id: 'b',
    title: 'Unlimited provider: end-to-end vs raw insert',
    status: 'ok',
    params: { ...p, dimensions: DIMENSIONS },
    elapsedMs: performance.now() - started,
    metrics: [
      metric('worker end to end ÷ raw bulk insert', round(workerRate / rawRate, 3), '', { op: '>=', value: 0.5 }, `raw = ${rawHow}`),
      metric('worker end to end', round(workerRate, 1), 'chunks/s', undefined, `${w.chunks} chunks in ${round(w.wallMs / 1000, 1)} s`),
      metric('raw COPY (psql \\copy, CSV)', Number.isFinite(copyRate) ? round(copyRate, 1) : 'skipped (no psql)', Number.isFinite(copyRate) ? 'chunks/s' : '', undefined, Number.isFinite(copyMs) ? `${round(copyMs / 1000, 2)} s` : undefined),
      metric('raw multi-row INSERT (unnest, 1 tx)', round(insertRate, 1), 'chunks/s', undefined, `${round(insertMs / 1000, 2)} s`),
      metric(
        `raw COPY split over ${cores} connections`,
        Number.isFinite(parallelMs) ? round(n / (parallelMs / 1000), 1) : 'skipped',
        Number.isFinite(parallelMs) ? 'chunks/s' : '',
        undefined,
        Number.isFinite(parallelMs) ? `info: worker ÷ this = ${round(workerRate / (n / (parallelMs / 1000)), 3)}` : undefined,
      ),
      metric('worker time in rag_complete_job', round(w.phases.publishMs / 1000, 1), 's', undefined, `summed over jobs, up to ${conc} at once`),
      metric(
        `backfill with ${os.availableParallelism()} chunking threads ÷ 1 thread`,
        round(workerRate / (one.chunks / (one.wallMs / 1000)), 2),
        '×',
        undefined,
        `1 thread: ${round(one.chunks / (one.wallMs / 1000), 1)} chunks/s in ${round(one.wallMs / 1000, 1)} s (RAG_THREADS=1); chunking is streamed and paced by embedding and saving`,
      ),
      metric('jobs not complete', w.notComplete, '', { op: '==', value: 0 }),
    ],
    notes: [
      `${p.transcripts} transcripts × ${p.segments} segments, dimensions ${DIMENSIONS}; raw rows = the worker's own output read back (vectors as text), inserted into an empty rag_chunks with its HNSW index, in a fresh database each.`,
    ],
  };
}
