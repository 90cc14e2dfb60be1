/**
 * g. Deep queue: does a long queue (and a long-lived table) slow the worker down?
 * shallow: 100 small jobs queued. deep: 20,000 small jobs queued plus 60,000 completed rows (a table that has
 * been in use for a while), both inserted with plain SQL. Small job = one short segment; offline embedder
 * (no provider), same worker settings (defaults) in both; `vacuum analyze` after the set-up in both, as
 * autovacuum would have done on a long-lived table. The worker runs in this process until its 100th job
 * completes (coordinator 'job' events); jobs/s = completions 11…100 ÷ their time span (start-up excluded).
 * Interleaved repeats (5 full, 1 quick; the order alternates), medians.
 * Also: the 20,000 queued rows are inserted by one `insert … select from generate_series` (timed: does it
 * succeed?), and the claim `select count(*) from rag_claim_jobs('w', 4, 30, 5)` is timed in a rolled-back
 * transaction at 100 and at 20,000 queued (median of 15), with EXPLAIN (ANALYZE, FORMAT JSON)'s execution time.
 */
import pg from 'pg';
import { createTestDatabase } from '../test/support/test-db.ts';
import { DIMENSIONS, openWorker, percentile, round, withCleanup, workerEnv, type BenchContext } from './harness.ts';
import { metric, type ScenarioResult } from './report.ts';

const SMALL_PAYLOAD = `jsonb_build_object('segments', jsonb_build_array(jsonb_build_object(
  'seq', 1, 'speaker', 'Ann', 'start_ms', 0, 'end_ms', 4000,
  'text', 'Short segment ' || g || ': we shipped the retry logic before the end of the sprint.')))`;

interface Sizes {
  shallow: number;
  deep: number;
  dead: number;
  measured: number;
  skip: number;
  repeats: number;
}

function sizes(quick: boolean): Sizes {
  return quick
    ? { shallow: 100, deep: 20_000, dead: 10_000, measured: 100, skip: 10, repeats: 1 }
    : { shallow: 100, deep: 20_000, dead: 60_000, measured: 100, skip: 10, repeats: 5 };
}

interface Setup {
  insertMs: number;
  insertOk: boolean;
  insertError?: string;
  deadMs?: number;
}

async function setup(url: string, queued: number, dead: number): Promise<Setup> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    let deadMs: number | undefined;
    if (dead > 0) {
      const t = performance.now();
      await c.query(
        `insert into rag_ingestion_queue (status, document_id, version, format, payload, submitted_at, updated_at, started_at, completed_at,
                                          attempts, worker_id, segments_total, segments_done, chunks_total, chunks_done, tokens_embedded)
         select 'complete', 'old-' || g, '1', 'segments', ${SMALL_PAYLOAD},
                now() - interval '30 days' + g * interval '30 seconds', now() - interval '30 days' + g * interval '30 seconds' + interval '2 seconds',
                now() - interval '30 days' + g * interval '30 seconds' + interval '1 second', now() - interval '30 days' + g * interval '30 seconds' + interval '2 seconds',
                1, 'old-worker', 1, 1, 1, 1, 20
           from generate_series(1, $1::int) g`,
        [dead],
      );
      deadMs = performance.now() - t;
    }
    const t = performance.now();
    let insertOk = true;
    let insertError: string | undefined;
    try {
      await c.query(
        `insert into rag_ingestion_queue (document_id, version, format, payload)
         select 'g-' || g, '1', 'segments', ${SMALL_PAYLOAD} from generate_series(1, $1::int) g`,
        [queued],
      );
    } catch (error) {
      insertOk = false;
      insertError = error instanceof Error ? error.message : String(error);
    }
    const insertMs = performance.now() - t;
    if (!insertOk) {
      // Fall back to batches of 1,000 so the throughput part can still run.
      for (let from = 1; from <= queued; from += 1000) {
        await c.query(
          `insert into rag_ingestion_queue (document_id, version, format, payload)
           select 'g-' || g, '1', 'segments', ${SMALL_PAYLOAD} from generate_series($1::int, $2::int) g`,
          [from, Math.min(queued, from + 999)],
        );
      }
    }
    await c.query('vacuum analyze rag_ingestion_queue');
    return { insertMs, insertOk, insertError, deadMs };
  } finally {
    await c.end();
  }
}

/** Median ms of the claim in a rolled-back transaction, and EXPLAIN ANALYZE's execution time. */
async function timeClaim(url: string, n: number): Promise<{ medianMs: number; explainMs: number | null; claimed: number; error?: string }> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const times: number[] = [];
    let claimed = 0;
    for (let i = 0; i < n; i++) {
      await c.query('begin');
      const t = performance.now();
      const r = await c.query<{ n: string }>(`select count(*) as n from rag_claim_jobs('bench-claim', 4, 30, 5)`);
      times.push(performance.now() - t);
      claimed = Number(r.rows[0].n);
      await c.query('rollback');
    }
    await c.query('begin');
    const plan = await c.query<{ 'QUERY PLAN': Array<{ 'Execution Time'?: number }> }>(`explain (analyze, format json) select * from rag_claim_jobs('bench-claim', 4, 30, 5)`);
    await c.query('rollback');
    const explainMs = plan.rows[0]?.['QUERY PLAN']?.[0]?.['Execution Time'] ?? null;
    return { medianMs: percentile(times, 50), explainMs, claimed };
  } catch (error) {
    await c.query('rollback').catch(() => {});
    return { medianMs: NaN, explainMs: null, claimed: 0, error: error instanceof Error ? error.message : String(error) };
  } finally {
    await c.end();
  }
}

interface ModeRun {
  jobsPerS: number;
  completed: number;
  failed: number;
  measureMs: number;
  setup: Setup;
  claim: Awaited<ReturnType<typeof timeClaim>>;
}

async function runMode(mode: 'shallow' | 'deep', s: Sizes, ctx: BenchContext): Promise<ModeRun> {
  return withCleanup(async (defer) => {
    const db = await createTestDatabase(DIMENSIONS);
    defer(() => db.drop());
    const queued = mode === 'shallow' ? s.shallow : s.deep;
    const st = await setup(db.url, queued, mode === 'deep' ? s.dead : 0);
    const claim = await timeClaim(db.url, 15);
    // Offline embedder (no OPENAI_API_KEY): jobs are as small as they get.
    const worker = await openWorker(workerEnv(db.url), `g-${mode}`);
    defer(() => worker.close());
    const times: number[] = [];
    let failed = 0;
    let reached!: () => void;
    const enough = new Promise<void>((resolve) => (reached = resolve));
    worker.coordinator.on('job', (e: { status: string }) => {
      if (e.status === 'complete') {
        times.push(performance.now());
        if (times.length >= s.measured) reached();
      } else if (e.status === 'failed') {
        failed++;
        if (failed >= 5) reached();
      }
    });
    ctx.log(`g: ${mode}: ${queued.toLocaleString('en-US')} queued${mode === 'deep' ? ` + ${s.dead.toLocaleString('en-US')} completed rows` : ''}; running until ${s.measured} jobs complete…`);
    const running = worker.coordinator.run();
    const watchdog = setTimeout(() => reached(), 120_000);
    await enough;
    clearTimeout(watchdog);
    await worker.coordinator.stop(5_000);
    await running;
    const first = times[s.skip - 1];
    const last = times[Math.min(times.length, s.measured) - 1];
    const counted = Math.min(times.length, s.measured) - s.skip;
    const measureMs = last - first;
    return { jobsPerS: counted > 0 ? counted / (measureMs / 1000) : NaN, completed: times.length, failed, measureMs, setup: st, claim };
  });
}

export async function scenarioDeepQueue(ctx: BenchContext): Promise<ScenarioResult> {
  const s = sizes(ctx.quick);
  const started = performance.now();
  const runs: Record<'shallow' | 'deep', ModeRun[]> = { shallow: [], deep: [] };
  for (let i = 0; i < s.repeats; i++) {
    const order = i % 2 === 0 ? (['shallow', 'deep'] as const) : (['deep', 'shallow'] as const);
    for (const mode of order) runs[mode].push(await runMode(mode, s, ctx));
  }
  const med = (xs: number[]) => percentile(xs.filter(Number.isFinite), 50);
  const sh = med(runs.shallow.map((r) => r.jobsPerS));
  const dp = med(runs.deep.map((r) => r.jobsPerS));
  const deepInsert = runs.deep.map((r) => r.setup);
  const insertOk = deepInsert.every((x) => x.insertOk);
  const claimSh = runs.shallow.map((r) => r.claim);
  const claimDp = runs.deep.map((r) => r.claim);
  const claimErr = [...claimSh, ...claimDp].find((c) => c.error)?.error;
  const all = (rs: ModeRun[]) => rs.map((r) => round(r.jobsPerS, 1)).join(', ');
  const failed = [...runs.shallow, ...runs.deep].reduce((a, r) => a + r.failed, 0);
  return {
    id: 'g',
    title: 'Deep queue',
    status: 'ok',
    params: { ...s, runs },
    elapsedMs: performance.now() - started,
    metrics: [
      metric('jobs/s deep ÷ shallow', round(dp / sh, 3), '', { op: '>=', value: 0.9 }, `medians of ${s.repeats}`),
      metric(`jobs/s, ${s.shallow} queued`, round(sh, 1), 'jobs/s', undefined, `runs: ${all(runs.shallow)}`),
      metric(`jobs/s, ${s.deep.toLocaleString('en-US')} queued + ${s.dead.toLocaleString('en-US')} completed`, round(dp, 1), 'jobs/s', undefined, `runs: ${all(runs.deep)}`),
      metric(
        `one INSERT … generate_series(1,${s.deep.toLocaleString('en-US')})`,
        insertOk ? 'succeeded' : 'FAILED',
        '',
        undefined,
        insertOk ? `${deepInsert.map((x) => round(x.insertMs / 1000, 2)).join(', ')} s (into a table with ${s.dead.toLocaleString('en-US')} completed rows)` : deepInsert.find((x) => !x.insertOk)?.insertError,
      ),
      metric(
        `claim at ${s.shallow} queued`,
        round(med(claimSh.map((c) => c.medianMs)), 2),
        'ms',
        undefined,
        `rag_claim_jobs(…, 4, 30, 5) in a rolled-back tx, median of 15; EXPLAIN ANALYZE ${claimSh.map((c) => round(c.explainMs ?? NaN, 2)).join(', ')} ms`,
      ),
      metric(
        `claim at ${s.deep.toLocaleString('en-US')} queued`,
        round(med(claimDp.map((c) => c.medianMs)), 2),
        'ms',
        undefined,
        claimErr ?? `claimed ${claimDp[0]?.claimed ?? '?'} rows; EXPLAIN ANALYZE ${claimDp.map((c) => round(c.explainMs ?? NaN, 2)).join(', ')} ms`,
      ),
      metric('failed jobs', failed, '', { op: '==', value: 0 }),
    ],
    notes: [
      `small job = one ~15-token segment; offline embedder; default worker settings (4 jobs at once, RAG_THREADS = cores); worker in this process, polling (no LISTEN); jobs/s over completions ${s.skip + 1}…${s.measured}; fresh database per run, \`vacuum analyze\` after set-up in both modes; rag_chunks starts empty in both.`,
    ],
  };
}
