/**
 * Scenario h's sides, one process per run (scenario-queue-overhead.ts spawns them):
 *   node bench/queue-systems.ts '{"system":"graphile"|"pgboss"|"pgboss-defaults"|"rag-worker", ...}'
 * The child enqueues N jobs (untimed), starts the system at the given concurrency and records when each job
 * completes. jobs/s = completions skip+1…N ÷ their span, the end confirmed in the database (every job done
 * there, not only handled in memory); CPU of this process (process.cpuUsage, all threads) and of its
 * PostgreSQL backends (/proc) over the same span. Prints one {"result": ...} line.
 *
 * graphile-worker: run() in its default mode (no localQueue, no batched completion), a task that does nothing,
 *   logger limited to errors (its default logs one line per job; rag-worker runs at warn here).
 * pg-boss: one worker (localConcurrency 1) fetching batches of `concurrency` jobs, burstWhenBatchFull (it
 *   fetches again at once while batches come back full); a handler that does nothing.
 * pgboss-defaults: work() at its defaults but localConcurrency = concurrency (batchSize 1, 2 s polling),
 *   measured over a fixed window instead (it cannot drain N jobs in reasonable time).
 * rag-worker: the real worker in this process, RAG_MAX_CONCURRENT_JOBS = concurrency, one tiny segment per job,
 *   the offline embedder (cheaper than a loopback endpoint: no HTTP, no JSON of 1536 floats), jobs inserted by
 *   one INSERT … generate_series.
 * vector-insert: no queue at all, the floor under any worker that stores what a job yields: `concurrency`
 *   connections each inserting one chunk row (the same text and lexical 1536-dimension vector a rag-worker job
 *   stores) into the migrated rag_chunks with its HNSW and full-text indexes, one row per statement.
 */
import pg from 'pg';
import { lexicalEmbedding } from '../src/shared/lexical-embedding.ts';
import { toVectorLiteral } from '../src/shared/vector-literal.ts';
import { childResult } from './child-process.ts';
import { openWorker, sleep, workerEnv } from './harness.ts';
import { backendCpu, backendCpuDelta, functionTimes, trackFunctions, type BackendCpu, type FunctionTime } from './pg-cpu.ts';

export type QueueSystem = 'graphile' | 'pgboss' | 'pgboss-defaults' | 'rag-worker' | 'vector-insert';

export interface QueueParams {
  system: QueueSystem;
  databaseUrl: string;
  jobs: number;
  concurrency: number;
  /** Completions left out at the start (connection and thread warm-up). */
  skip: number;
  /** pgboss-defaults: measure completions over this window instead of draining. */
  windowMs?: number;
  timeoutMs: number;
}

export interface QueueResult {
  system: QueueSystem;
  ok: boolean;
  error?: string;
  completed: number;
  measuredJobs: number;
  spanMs: number;
  jobsPerS: number;
  cpuMs: number;
  pgCpuMs: number | null;
  enqueueMs: number;
  /** rag-worker: SQL functions by self time over the whole run (track_functions = all). */
  topFunctions?: FunctionTime[];
}

class Meter {
  count = 0;
  private startAt = NaN;
  private cpu0: NodeJS.CpuUsage | undefined;
  private pg0: Promise<BackendCpu> | undefined;
  private readonly probe: pg.Client;
  private readonly skip: number;
  private readonly target: number;
  private done!: () => void;
  readonly reached: Promise<void>;

  constructor(probe: pg.Client, skip: number, target: number) {
    this.probe = probe;
    this.skip = skip;
    this.target = target;
    this.reached = new Promise((resolve) => (this.done = resolve));
  }

  /** One job handled (n of them for a batch). */
  tick(n = 1): void {
    const before = this.count;
    this.count += n;
    if (before < this.skip && this.count >= this.skip) this.begin();
    if (this.count >= this.target) this.done();
  }

  begin(): void {
    this.startAt = performance.now();
    this.cpu0 = process.cpuUsage();
    this.pg0 = backendCpu(this.probe);
  }

  async finish(measured: number): Promise<{ spanMs: number; cpuMs: number; pgCpuMs: number | null; measuredJobs: number }> {
    const spanMs = performance.now() - this.startAt;
    const d = process.cpuUsage(this.cpu0);
    const pgCpuMs = backendCpuDelta((await this.pg0) ?? null, await backendCpu(this.probe));
    return { spanMs, cpuMs: (d.user + d.system) / 1000, pgCpuMs, measuredJobs: measured };
  }
}

/** Waits until `sql` returns 0 (every job done in the database). */
async function untilZero(probe: pg.Client, sql: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const n = Number((await probe.query<{ n: string }>(sql)).rows[0].n);
    if (n === 0) return;
    if (Date.now() > deadline) throw new Error(`${n} jobs still not done in the database after ${timeoutMs} ms`);
    await sleep(5);
  }
}

async function graphile(p: QueueParams, probe: pg.Client): Promise<QueueResult> {
  const { run, runMigrations, makeWorkerUtils, Logger } = await import('graphile-worker');
  const logger = new Logger(() => (level: string, message: string) => {
    if (level === 'error') process.stderr.write(`graphile-worker: ${message}\n`);
  });
  await runMigrations({ connectionString: p.databaseUrl, logger });
  const t = performance.now();
  const utils = await makeWorkerUtils({ connectionString: p.databaseUrl, logger });
  for (let from = 0; from < p.jobs; from += 1000) {
    await utils.addJobs(Array.from({ length: Math.min(1000, p.jobs - from) }, (_, i) => ({ identifier: 'noop', payload: { i: from + i } })));
  }
  await utils.release();
  const enqueueMs = performance.now() - t;
  const meter = new Meter(probe, p.skip, p.jobs);
  const runner = await run({
    connectionString: p.databaseUrl,
    concurrency: p.concurrency,
    noHandleSignals: true,
    logger,
    taskList: { noop: async () => {} },
  });
  runner.events.on('job:success', () => meter.tick());
  await meter.reached;
  await untilZero(probe, 'select count(*) as n from graphile_worker._private_jobs', p.timeoutMs);
  const m = await meter.finish(p.jobs - p.skip);
  await runner.stop();
  return { system: p.system, ok: true, completed: meter.count, jobsPerS: m.measuredJobs / (m.spanMs / 1000), enqueueMs, ...m };
}

async function pgboss(p: QueueParams, probe: pg.Client, defaults: boolean): Promise<QueueResult> {
  const { PgBoss } = (await import('pg-boss')) as unknown as { PgBoss: new (url: string) => PgBossLike };
  const boss = new PgBoss(p.databaseUrl);
  boss.on('error', (e: unknown) => process.stderr.write(`pg-boss: ${e instanceof Error ? e.message : String(e)}\n`));
  await boss.start();
  await boss.createQueue('noop');
  const t = performance.now();
  for (let from = 0; from < p.jobs; from += 1000) {
    await boss.insert('noop', Array.from({ length: Math.min(1000, p.jobs - from) }, (_, i) => ({ data: { i: from + i } })));
  }
  const enqueueMs = performance.now() - t;
  const meter = new Meter(probe, p.skip, p.jobs);
  const options = defaults ? { localConcurrency: p.concurrency } : { localConcurrency: 1, batchSize: p.concurrency, burstWhenBatchFull: true };
  await boss.work('noop', options, async (jobs: unknown[]) => {
    meter.tick(jobs.length);
  });
  let result: QueueResult;
  if (defaults) {
    // Fixed window: completions counted in the database over windowMs, once the first `skip` were handled.
    const waitFrom = performance.now();
    while (meter.count < p.skip && performance.now() - waitFrom < p.timeoutMs) await sleep(20);
    if (meter.count < p.skip) throw new Error(`pg-boss (defaults) handled only ${meter.count} jobs in ${p.timeoutMs} ms`);
    const doneSql = `select count(*) as n from pgboss.job where name = 'noop' and state = 'completed'`;
    const t0 = performance.now();
    const d0 = Number((await probe.query<{ n: string }>(doneSql)).rows[0].n);
    await sleep(p.windowMs ?? 10_000);
    const d1 = Number((await probe.query<{ n: string }>(doneSql)).rows[0].n);
    const windowMs = performance.now() - t0;
    const m = await meter.finish(d1 - d0);
    result = { system: p.system, ok: true, completed: d1, jobsPerS: (d1 - d0) / (windowMs / 1000), enqueueMs, ...m };
  } else {
    await meter.reached;
    await untilZero(probe, `select count(*) as n from pgboss.job where name = 'noop' and state <> 'completed'`, p.timeoutMs);
    const m = await meter.finish(p.jobs - p.skip);
    result = { system: p.system, ok: true, completed: meter.count, jobsPerS: m.measuredJobs / (m.spanMs / 1000), enqueueMs, ...m };
  }
  await boss.stop({ graceful: false, wait: true, timeout: 2000 }).catch(() => {});
  return result;
}

interface PgBossLike {
  on(event: 'error', f: (e: unknown) => void): void;
  start(): Promise<unknown>;
  createQueue(name: string): Promise<void>;
  insert(name: string, jobs: { data: unknown }[]): Promise<unknown>;
  work(name: string, options: Record<string, unknown>, handler: (jobs: unknown[]) => Promise<void>): Promise<string>;
  stop(options?: Record<string, unknown>): Promise<void>;
}

async function ragWorker(p: QueueParams, probe: pg.Client): Promise<QueueResult> {
  await trackFunctions(p.databaseUrl);
  const worker = await openWorker(workerEnv(p.databaseUrl, { RAG_MAX_CONCURRENT_JOBS: String(p.concurrency) }), 'h-rag-worker');
  const t = performance.now();
  await probe.query(
    `insert into rag_ingestion_queue (document_id, version, format, payload)
     select 'h-' || g, '1', 'segments', jsonb_build_object('segments', jsonb_build_array(jsonb_build_object('seq', 1, 'speaker', 'Ann', 'text', 'ok ' || g)))
       from generate_series(1, $1::int) g`,
    [p.jobs],
  );
  const enqueueMs = performance.now() - t;
  const meter = new Meter(probe, p.skip, p.jobs);
  let failed = 0;
  let failure: string | undefined;
  worker.coordinator.on('job', (e: { status: string; error?: string }) => {
    if (e.status === 'complete') meter.tick();
    else if (e.status === 'failed' || e.status === 'requeued') {
      failed++;
      failure ??= `${e.status}: ${e.error ?? ''}`;
      if (failed >= 5) meter.tick(p.jobs); // give up early: the worker is failing jobs
    }
  });
  const running = worker.coordinator.run();
  await meter.reached;
  if (failed >= 5) {
    await worker.coordinator.stop(2000);
    await running;
    await worker.close();
    return { system: p.system, ok: false, error: `the worker failed jobs (${failure})`, completed: meter.count - p.jobs, measuredJobs: 0, spanMs: NaN, jobsPerS: NaN, cpuMs: NaN, pgCpuMs: null, enqueueMs };
  }
  await untilZero(probe, `select count(*) as n from rag_ingestion_queue where status <> 'complete'`, p.timeoutMs);
  const m = await meter.finish(p.jobs - p.skip);
  await worker.coordinator.stop(2000);
  await running;
  await worker.close();
  const topFunctions = await functionTimes(p.databaseUrl);
  return { system: p.system, ok: true, completed: meter.count, jobsPerS: m.measuredJobs / (m.spanMs / 1000), enqueueMs, ...m, topFunctions };
}

async function vectorInsert(p: QueueParams, probe: pg.Client): Promise<QueueResult> {
  const clients = await Promise.all(
    Array.from({ length: p.concurrency }, async () => {
      const c = new pg.Client({ connectionString: p.databaseUrl });
      await c.connect();
      return c;
    }),
  );
  const meter = new Meter(probe, p.skip, p.jobs);
  let next = 0;
  try {
    await Promise.all(
      clients.map(async (c) => {
        for (let g = ++next; g <= p.jobs; g = ++next) {
          const text = `Ann: ok ${g}`;
          await c.query(
            `insert into rag_chunks (document_id, version, chunk_index, content, token_count, segment_seq_start, segment_seq_end, speakers, embedding, embedding_model, content_hash, metadata)
             values ($1, '1', 0, $2, 4, 1, 1, '{Ann}', $3::vector, 'local-lexical-hash-v1', md5($2), '{}')`,
            [`h-${g}`, text, toVectorLiteral(lexicalEmbedding(text, 1536))],
          );
          meter.tick();
        }
      }),
    );
    const m = await meter.finish(p.jobs - p.skip);
    return { system: p.system, ok: true, completed: meter.count, jobsPerS: m.measuredJobs / (m.spanMs / 1000), enqueueMs: 0, ...m };
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => {})));
  }
}

async function main(): Promise<void> {
  const p = JSON.parse(process.argv[2] ?? '{}') as QueueParams;
  const probe = new pg.Client({ connectionString: p.databaseUrl });
  await probe.connect();
  let result: QueueResult;
  try {
    result =
      p.system === 'graphile'
        ? await graphile(p, probe)
        : p.system === 'rag-worker'
          ? await ragWorker(p, probe)
          : p.system === 'vector-insert'
            ? await vectorInsert(p, probe)
            : await pgboss(p, probe, p.system === 'pgboss-defaults');
  } finally {
    await probe.end().catch(() => {});
  }
  childResult(result);
}

main().catch((error: unknown) => {
  process.stderr.write(`queue-systems: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(2);
});
