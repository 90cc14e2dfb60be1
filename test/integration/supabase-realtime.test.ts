/**
 * The Supabase mode's wake-up through Supabase Realtime, end to end: real `rag-worker start` processes with only
 * SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY, whose supabase-js client subscribes over a real WebSocket to the
 * loopback Realtime (test/support/fake-realtime.ts) and calls the loopback PostgREST
 * (test/support/fake-postgrest.ts) behind the same URL, both on a real PostgreSQL with the schema. The fake turns
 * the queue's real NOTIFYs into postgres_changes events.
 *
 * The workers poll every 60 s, so a job claimed within a few seconds was found through Realtime, not by a poll;
 * the fallback tests poll every 300 ms and prove polling alone still completes the work.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ConfigError, resolveConfig } from '../../src/shared/config.ts';
import { cliEnv, runCli } from '../support/cli.ts';
import { startFakePostgrest, type FakePostgrest } from '../support/fake-postgrest.ts';
import { startFakeRealtime, type FakeRealtime } from '../support/fake-realtime.ts';
import { killAllWorkers, QueueProbe, segmentsPayload, spawnWorker, waitFor, type WorkerProcess } from '../support/process-helpers.ts';
import { createTestDatabase, type TestDatabase } from '../support/test-db.ts';

const KEY = 'service-role-key-for-realtime-tests-0123456789';
const DIMS = 32;
/** The idle poll of the Realtime tests: far longer than any pickup they accept. */
const LONG_POLL_MS = 60_000;
/** A pickup slower than this did not come from a Realtime event. */
const PROMPT_MS = 3_000;

describe('Supabase mode: Supabase Realtime wakes the worker', () => {
  let db: TestDatabase;
  let rest: FakePostgrest;
  let realtime: FakeRealtime;
  let probe: QueueProbe;
  let docs = 0;
  const latencies: Record<string, number[]> = { realtime: [], resubscribed: [], polling: [] };

  before(async () => {
    db = await createTestDatabase(DIMS);
    rest = await startFakePostgrest({ databaseUrl: db.url, serviceKey: KEY });
    realtime = await startFakeRealtime({ databaseUrl: db.url, serviceKey: KEY, restUrl: rest.url });
    probe = new QueueProbe(db);
  });
  after(async () => {
    await killAllWorkers();
    await probe?.close();
    await realtime?.close();
    await rest?.close();
    await db?.drop();
    if (process.env.RAG_REPORT_LATENCY) console.log('pickup latency (ms)', JSON.stringify(latencies));
  });

  const env = (extra: Record<string, string> = {}) =>
    cliEnv({
      SUPABASE_URL: realtime.url,
      SUPABASE_SERVICE_ROLE_KEY: KEY,
      RAG_EMBEDDING_DIMENSIONS: String(DIMS),
      RAG_THREADS: '1',
      RAG_POLL_INTERVAL_MS: String(LONG_POLL_MS),
      RAG_SHUTDOWN_GRACE_MS: '2000',
      RAG_LOG_LEVEL: 'debug',
      ...extra,
    });
  const enqueue = () => {
    docs++;
    return probe.enqueue(`rt-doc-${docs}`, segmentsPayload(`rt${docs}`, 3));
  };
  const claimsSince = (t: number) => rest.requests.filter((r) => r.fn === 'rag_claim_jobs' && r.at >= t && r.status === 200).length;
  /** Resolves once the worker has answered a claim that started after `t`: it found nothing and went back to sleep. */
  const idleSince = (t: number, what: string) => waitFor(() => claimsSince(t) > 0, `${what}: a claim after ${t}`, { timeoutMs: 5_000, intervalMs: 10 });
  /** Resolves once the worker, after completing its last job, has answered the claim that followed: it idles. */
  const idleAfterCompletion = (what: string) => {
    const completed = rest.requests.filter((r) => r.fn === 'rag_complete_jobs' || r.fn === 'rag_complete_job').map((r) => r.at);
    assert.ok(completed.length > 0, 'a job was completed');
    return idleSince(Math.max(...completed), what);
  };
  /** ms from `t0` until the job is claimed (or further along). */
  const pickedUp = async (id: string, t0: number, timeoutMs = PROMPT_MS) => {
    await waitFor(async () => ['processing', 'complete'].includes((await probe.job(id)).status), `job ${id} to be claimed`, { timeoutMs, intervalMs: 10 });
    return Date.now() - t0;
  };
  const stop = async (worker: WorkerProcess) => {
    worker.signal('SIGTERM');
    const exit = await worker.waitForExit(10_000);
    assert.ok(exit, `${worker.name} stops on SIGTERM`);
    assert.ok(!worker.stderrText.includes(KEY), 'the service-role key is never logged');
  };

  test('a job enqueued while the worker idles is claimed at once through Realtime, and so is one put back in the queue (UPDATE)', async () => {
    const worker = spawnWorker('realtime-insert', env());
    try {
      await worker.waitForEvent('realtime_starting');
      const subscribed = await worker.waitForEvent('realtime_subscribed', { resubscribed: false });
      assert.equal(realtime.activeSubscriptions, 1);
      await idleSince(Date.parse(String(subscribed.time)), 'idle after subscribing');

      const t0 = Date.now();
      const id = await enqueue();
      const ms = await pickedUp(id, t0);
      latencies.realtime.push(ms);
      assert.ok(realtime.changes.some((c) => c.id === id && c.type === 'INSERT'), 'the fake sent an INSERT for the job');
      assert.ok(ms < PROMPT_MS, `claimed after ${ms} ms, long before the ${LONG_POLL_MS} ms poll`);
      await probe.waitForStatus(id, ['complete'], 10_000);
      await worker.waitForEvent('realtime_change', { type: 'INSERT', jobId: id });

      // A cancelled job retried by request goes back to 'queued' by an UPDATE: that wakes the worker too.
      await idleAfterCompletion('idle after the first job');
      // Enqueued and cancelled in one transaction: its NOTIFY finds a cancelled row, which no subscription matches.
      const client = await probe.pool.connect();
      let retried: string;
      try {
        await client.query('begin');
        const { rows } = await client.query<{ id: string }>(`select rag_enqueue('rt-retried', '1', 'rt-retried', 'segments', $1::jsonb) as id`, [
          JSON.stringify(segmentsPayload('retried', 2)),
        ]);
        retried = rows[0].id;
        await client.query('select rag_cancel_job($1)', [retried]);
        await client.query('commit');
      } finally {
        client.release();
      }
      assert.equal((await probe.job(retried)).status, 'cancelled');
      const t1 = Date.now();
      await probe.pool.query('select rag_retry_jobs(array[$1]::uuid[])', [retried]);
      const ms2 = await pickedUp(retried, t1);
      latencies.realtime.push(ms2);
      assert.ok(realtime.changes.some((c) => c.id === retried && c.type === 'UPDATE'), 'the fake sent an UPDATE for the retried job');
      await worker.waitForEvent('realtime_change', { type: 'UPDATE', jobId: retried });
      await probe.waitForStatus(retried, ['complete'], 10_000);
    } finally {
      await stop(worker);
    }
  });

  test('after the Realtime connections drop, the worker re-subscribes, claims what was enqueued meanwhile, and the next job is claimed at once again', async () => {
    const worker = spawnWorker('realtime-reconnect', env());
    try {
      const first = await worker.waitForEvent('realtime_subscribed', { resubscribed: false });
      await idleSince(Date.parse(String(first.time)), 'idle after subscribing');
      const before = realtime.subscriptions;

      realtime.dropConnections();
      const lost = await worker.waitForEvent('realtime_unsubscribed', { status: 'CHANNEL_ERROR', wasSubscribed: true });
      assert.equal(lost.level, 'warn');
      // Enqueued while the worker has no subscription: the re-subscription's own wake-up claims it.
      const tGap = Date.now();
      const gap = await enqueue();

      await worker.waitForEvent('realtime_subscribed', { resubscribed: true });
      assert.equal(realtime.subscriptions, before + 1, 'one fresh subscription');
      assert.equal(realtime.activeSubscriptions, 1, 'and only one live');
      const gapMs = await pickedUp(gap, tGap, 5_000);
      latencies.resubscribed.push(gapMs);
      await probe.waitForStatus(gap, ['complete'], 10_000);

      await idleAfterCompletion('idle after the gap job');
      const t0 = Date.now();
      const next = await enqueue();
      const ms = await pickedUp(next, t0);
      latencies.realtime.push(ms);
      assert.ok(realtime.changes.some((c) => c.id === next), 'the job came as a Realtime change on the new subscription');
      assert.ok(ms < PROMPT_MS, `claimed after ${ms} ms`);
      await probe.waitForStatus(next, ['complete'], 10_000);
    } finally {
      await stop(worker);
    }
  });

  test('with every join refused, the worker keeps retrying with backoff and polling completes the job', async () => {
    realtime.refuseJoins('RealtimeDisabledForConfiguration: Realtime is not enabled for this table');
    const worker = spawnWorker('realtime-refused', env({ RAG_POLL_INTERVAL_MS: '300' }));
    try {
      const subscriptions = realtime.subscriptions;
      const failed = await worker.waitForEvent('realtime_unsubscribed', { status: 'CHANNEL_ERROR', attempt: 1, wasSubscribed: false });
      assert.equal(failed.level, 'warn');
      assert.match(String(failed.error), /RealtimeDisabledForConfiguration/);

      const t0 = Date.now();
      const id = await enqueue();
      latencies.polling.push(await pickedUp(id, t0, 5_000));
      await probe.waitForStatus(id, ['complete'], 10_000);
      assert.ok(!realtime.changes.some((c) => c.id === id), 'nothing was subscribed to send it');
      // The retries go on (0.5–1 s, then 1–2 s), each refused.
      await realtime.until((f) => f.refusedJoins >= 2, 'a second refused join', 5_000);
      assert.equal(realtime.subscriptions, subscriptions);
      assert.equal(worker.events('realtime_subscribed').length, 0);
    } finally {
      realtime.refuseJoins(false);
      await stop(worker);
    }
  });

  test('RAG_SUPABASE_REALTIME=false never connects to Realtime and polls', async () => {
    const connections = realtime.connections + realtime.rejectedConnections;
    const worker = spawnWorker('realtime-off', env({ RAG_SUPABASE_REALTIME: 'false', RAG_POLL_INTERVAL_MS: '300' }));
    try {
      const line = await worker.waitForEvent('polling_only', { mode: 'supabase', realtime: false });
      assert.equal(line.level, 'info');
      const id = await enqueue();
      await probe.waitForStatus(id, ['complete'], 10_000);
      assert.equal(realtime.connections + realtime.rejectedConnections, connections, 'no WebSocket was opened');
      assert.equal(worker.events('realtime_starting').length, 0);
    } finally {
      await stop(worker);
    }
  });

  test('a bad RAG_SUPABASE_REALTIME stops start-up naming the setting', async () => {
    assert.throws(
      () => resolveConfig({ SUPABASE_URL: 'http://127.0.0.1:1', SUPABASE_SERVICE_ROLE_KEY: KEY, RAG_SUPABASE_REALTIME: 'sometimes' }),
      (e: unknown) => e instanceof ConfigError && e.problems.some((p) => p.startsWith('RAG_SUPABASE_REALTIME="sometimes"')),
    );
    const result = await runCli(['start'], env({ RAG_SUPABASE_REALTIME: 'sometimes' }));
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /RAG_SUPABASE_REALTIME/);
  });
});
