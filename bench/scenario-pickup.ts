/**
 * e. Pickup latency: enqueue → claimed, i.e. started_at − submitted_at of each queue row (both stamped by the
 * database clock), for tiny jobs enqueued one at a time at random spacing by a separate connection (the "web
 * app"). Two modes, same run: LISTEN/NOTIFY (as `rag-worker start`, default poll interval) and polling only
 * (RAG_POLL_INTERVAL_MS=1000, no LISTEN). The CLI has no setting that turns LISTEN off; polling-only is
 * measured by opening the worker in this process without listenForJobs().
 */
import pg from 'pg';
import { listenForJobs } from '../src/main/runtime.ts';
import { createTestDatabase } from '../test/support/test-db.ts';
import { DIMENSIONS, openWorker, percentile, round, sleep, withCleanup, workerEnv, type BenchContext } from './harness.ts';
import { metric, type ScenarioResult } from './report.ts';
import { mulberry32 } from './synthetic-transcripts.ts';

interface ModeResult {
  pickupsMs: number[];
  notComplete: number;
}

async function measure(mode: 'notify' | 'poll', enqueues: number, ctx: BenchContext): Promise<ModeResult> {
  return withCleanup(async (defer) => {
    const db = await createTestDatabase(DIMENSIONS);
    defer(() => db.drop());
    // Offline embedder: jobs finish in a few ms, so pickup is all that is measured.
    const env = workerEnv(db.url, { RAG_POLL_INTERVAL_MS: mode === 'poll' ? '1000' : undefined });
    const worker = await openWorker(env, `e-${mode}`);
    defer(() => worker.close());
    const unlisten = mode === 'notify' ? await listenForJobs(worker.rt, worker.coordinator) : null;
    if (unlisten) defer(() => unlisten());
    const running = worker.coordinator.run();
    defer(async () => {
      await worker.coordinator.stop(2000);
      await running;
    });
    const app = new pg.Client({ connectionString: db.url });
    await app.connect();
    defer(() => app.end());
    await sleep(1500); // LISTEN connected, first claim round done, threads warm
    ctx.log(`e: ${enqueues} enqueues, ${mode === 'notify' ? 'LISTEN/NOTIFY' : 'polling every 1000 ms, no LISTEN'}…`);
    const rng = mulberry32(mode === 'notify' ? 7 : 8);
    for (let i = 0; i < enqueues; i++) {
      await app.query('select rag_enqueue($1, $2, $3, $4, $5::jsonb)', [`e-${i}`, '1', null, 'segments', JSON.stringify({ segments: [{ seq: 1, text: `Ping ${i}: is anyone there?`, speaker: 'Ann' }] })]);
      await sleep(250 + Math.floor(rng() * 500));
    }
    const deadline = Date.now() + 15_000;
    let pending = enqueues;
    while (pending > 0 && Date.now() < deadline) {
      pending = Number((await app.query(`select count(*) as n from rag_ingestion_queue where status <> 'complete'`)).rows[0].n);
      if (pending > 0) await sleep(100);
    }
    const rows = await app.query<{ ms: number }>(
      `select extract(epoch from started_at - submitted_at)::float8 * 1000 as ms from rag_ingestion_queue where started_at is not null`,
    );
    return { pickupsMs: rows.rows.map((r) => r.ms), notComplete: pending };
  });
}

export async function scenarioPickup(ctx: BenchContext): Promise<ScenarioResult> {
  const enqueues = ctx.quick ? 6 : 20;
  const started = performance.now();
  const notify = await measure('notify', enqueues, ctx);
  const poll = await measure('poll', enqueues, ctx);
  const stats = (r: ModeResult) => ({ median: percentile(r.pickupsMs, 50), p95: percentile(r.pickupsMs, 95), max: Math.max(...r.pickupsMs) });
  const n = stats(notify);
  const p = stats(poll);
  return {
    id: 'e',
    title: 'Pickup latency (enqueue → claimed)',
    status: 'ok',
    params: { enqueues, spacingMs: '250–750 (seeded)' },
    elapsedMs: performance.now() - started,
    metrics: [
      metric('LISTEN/NOTIFY median', round(n.median, 1), 'ms', { op: '<=', value: 100 }),
      metric('LISTEN/NOTIFY p95', round(n.p95, 1), 'ms', undefined, `max ${round(n.max, 1)} ms`),
      metric('polling 1000 ms median', round(p.median, 1), 'ms'),
      metric('polling 1000 ms p95', round(p.p95, 1), 'ms', undefined, `max ${round(p.max, 1)} ms`),
      metric('notify median ÷ polling median', round(n.median / p.median, 3), ''),
      metric('jobs not complete', notify.notComplete + poll.notComplete, '', { op: '==', value: 0 }),
    ],
    notes: [
      `${enqueues} single-segment jobs per mode, one at a time, 250–750 ms apart; pickup = started_at − submitted_at (database clock); direct connection to local PostgreSQL.`,
      'polling-only is the in-process worker without listenForJobs(), as `RAG_LISTEN=false` runs it.',
    ],
  };
}
