/**
 * h. Queue overhead vs graphile-worker and pg-boss: N no-op jobs at concurrency 4 and 16, each system in its
 * own process (bench/queue-systems.ts) and a fresh database, interleaved repeats (the order rotates), medians.
 * jobs/s over completions skip+1…N (end confirmed in the database); CPU-ms per job of the process and of its
 * PostgreSQL backends. Target: rag-worker ÷ graphile-worker jobs/s ≥ 0.5.
 */
import { fileURLToPath } from 'node:url';
import { createEmptyDatabase, createTestDatabase } from '../test/support/test-db.ts';
import { runChild } from './child-process.ts';
import { formatFunctionTimes } from './pg-cpu.ts';
import { DIMENSIONS, percentile, round, withCleanup, type BenchContext } from './harness.ts';
import type { QueueParams, QueueResult, QueueSystem } from './queue-systems.ts';
import { metric, type Metric, type ScenarioResult } from './report.ts';

const SCRIPT = fileURLToPath(new URL('./queue-systems.ts', import.meta.url));
const NAMES: Record<QueueSystem, string> = {
  graphile: 'graphile-worker',
  pgboss: 'pg-boss (batch = conc., burst)',
  'pgboss-defaults': 'pg-boss defaults (window)',
  'rag-worker': 'rag-worker',
  'vector-insert': 'vector inserts alone (no queue)',
};

async function runOne(system: QueueSystem, jobs: number, concurrency: number, ctx: BenchContext, windowMs: number): Promise<QueueResult> {
  return withCleanup(async (defer) => {
    const db = system === 'rag-worker' || system === 'vector-insert' ? await createTestDatabase(DIMENSIONS) : await createEmptyDatabase();
    defer(() => db.drop());
    const timeoutMs = 180_000;
    const params: QueueParams = { system, databaseUrl: db.url, jobs, concurrency, skip: Math.max(5, Math.round(jobs * 0.05)), windowMs, timeoutMs };
    const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', TEST_DATABASE_URL: process.env.TEST_DATABASE_URL ?? '' };
    const out = await runChild<QueueResult>(SCRIPT, params, { timeoutMs: timeoutMs + 30_000, tag: `h-${system}-${concurrency}`, env });
    const r: QueueResult = out.result ?? {
      system,
      ok: false,
      error: out.timedOut ? 'timed out (killed)' : `exited ${out.exitCode ?? out.signal}: ${out.stderrTail}`,
      completed: 0,
      measuredJobs: 0,
      spanMs: NaN,
      jobsPerS: NaN,
      cpuMs: NaN,
      pgCpuMs: null,
      enqueueMs: NaN,
    };
    ctx.log(`h: ${NAMES[system]} c=${concurrency}: ${r.ok ? `${round(r.jobsPerS, 1)} jobs/s, ${round(r.cpuMs / r.measuredJobs, 3)} CPU-ms/job (+ PG ${round((r.pgCpuMs ?? NaN) / r.measuredJobs, 3)})` : r.error}`);
    return r;
  });
}

export async function scenarioQueueOverhead(ctx: BenchContext): Promise<ScenarioResult> {
  const started = performance.now();
  const jobs = ctx.quick ? 300 : 2000;
  const repeats = ctx.quick ? 1 : 3;
  const concurrencies = [4, 16];
  const systems: QueueSystem[] = ['rag-worker', 'graphile', 'pgboss', 'vector-insert'];
  const windowMs = 8_000;
  const metrics: Metric[] = [];
  const notes: string[] = [];
  const params: Record<string, unknown> = { jobs, repeats, concurrencies };
  const med = (xs: number[]) => percentile(xs.filter(Number.isFinite), 50);
  for (const c of concurrencies) {
    ctx.log(`h: concurrency ${c}: ${jobs} no-op jobs × ${systems.length} systems, ${repeats} interleaved repeat(s)…`);
    const runs: Record<string, QueueResult[]> = {};
    for (let i = 0; i < repeats; i++) {
      const order = systems.map((_, k) => systems[(k + i) % systems.length]);
      for (const s of order) (runs[s] ??= []).push(await runOne(s, jobs, c, ctx, windowMs));
    }
    // pg-boss at its defaults cannot drain N jobs quickly (batchSize 1, a 2 s poll per worker): one window run.
    if (!ctx.quick) runs['pgboss-defaults'] = [await runOne('pgboss-defaults', jobs, c, ctx, windowMs)];
    params[`c${c}`] = runs;
    const top = (runs['rag-worker'] ?? []).find((r) => r.ok && r.topFunctions?.length)?.topFunctions;
    if (top) notes.push(`c=${c}: rag-worker's SQL functions by self time (one run of ${jobs} jobs, track_functions = all): ${formatFunctionTimes(top)}`);
    const rate = (s: string) => med((runs[s] ?? []).filter((r) => r.ok).map((r) => r.jobsPerS));
    const cpu = (s: string) => med((runs[s] ?? []).filter((r) => r.ok).map((r) => r.cpuMs / r.measuredJobs));
    const pgCpu = (s: string) => med((runs[s] ?? []).filter((r) => r.ok && r.pgCpuMs !== null).map((r) => r.pgCpuMs! / r.measuredJobs));
    const ratio = rate('rag-worker') / rate('graphile');
    const errors = Object.values(runs).flat().filter((r) => !r.ok).map((r) => `${NAMES[r.system]}: ${r.error}`);
    const floor = rate('rag-worker') / rate('vector-insert');
    metrics.push(
      metric(`c=${c}: jobs/s rag-worker ÷ graphile-worker`, Number.isFinite(ratio) ? round(ratio, 3) : null, '', { op: '>=', value: 0.5 }, errors.length ? errors.join('; ') : `medians of ${repeats}`),
      metric(
        `c=${c}: jobs/s rag-worker ÷ vector inserts alone`,
        Number.isFinite(floor) ? round(floor, 3) : null,
        '',
        undefined,
        'the same chunk rows inserted one per statement with no queue: the ceiling for one stored vector per job on this machine',
      ),
    );
    for (const s of [...systems, ...(runs['pgboss-defaults'] ? ['pgboss-defaults' as const] : [])]) {
      const all = (runs[s] ?? []).map((r) => (r.ok ? round(r.jobsPerS, 1) : 'failed')).join(', ');
      metrics.push(
        metric(
          `c=${c}: ${NAMES[s]}`,
          Number.isFinite(rate(s)) ? round(rate(s), 1) : null,
          'jobs/s',
          undefined,
          `runs ${all}; CPU ${round(cpu(s), 3)} ms/job in the process + ${round(pgCpu(s), 3)} ms/job in PostgreSQL`,
        ),
      );
    }
  }
  return {
    id: 'h',
    title: 'Queue overhead vs graphile-worker, pg-boss',
    status: 'ok',
    params,
    elapsedMs: performance.now() - started,
    metrics,
    notes: [
      ...notes,
      `${jobs} jobs enqueued before the start (untimed; graphile addJobs, pg-boss insert, rag-worker one INSERT … generate_series); jobs/s over completions ${Math.max(5, Math.round(jobs * 0.05)) + 1}…${jobs}, each system in its own process and a fresh database; CPU = process.cpuUsage (all threads) and the database's backends from /proc, over the same span.`,
      'graphile-worker: run() default mode (no localQueue, no batched completion), no-op task, error-only logger. pg-boss: one worker fetching batches of `concurrency` with burstWhenBatchFull; its defaults (batchSize 1, 2 s poll per worker, localConcurrency = concurrency) measured over an 8 s window (full run only).',
      'vector inserts alone: `concurrency` connections inserting the chunk row each rag-worker job stores (same text, same 1536-dimension lexical vector) into rag_chunks with its HNSW and full-text indexes, one row per statement, no queue.',
      'rag-worker: RAG_MAX_CONCURRENT_JOBS = concurrency, one ~3-token segment per job, offline embedder (cheaper than a zero-latency endpoint: no HTTP round trip, no 1536-float JSON). Per job it does what the others do not: parse the payload and chunk it in a worker thread (tiktoken), embed (lexical hashing, 1536 dims), save the chunk row with its HNSW index entry and a content hash (rag_save_chunks), publish the document (rag_documents) and complete through fenced transitions (worker id + lease token checked on every write), with leases and heartbeats.',
    ],
  };
}
