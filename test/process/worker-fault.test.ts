/**
 * A worker-level fault (the provider rejects the API key): no job is failed or charged an attempt, the
 * message names OPENAI_API_KEY and never shows the key. `start --once` exits 3; `start` keeps running,
 * re-checks, and processes the jobs once the key works.
 */
import assert from 'node:assert/strict';
import { after, afterEach, test } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.ts';
import {
  closeScenarios,
  DIMS,
  killAllWorkers,
  openScenario,
  type QueueProbe,
  referenceChunks,
  assertChunksMatch,
  segmentsPayload,
  spawnWorker,
  waitFor,
  workerEnv,
} from '../support/process-helpers.ts';

const SERVER_KEY = 'sk-server-side-KEY-aaaaaaaaaaaaaaaa1111';
const WRONG_KEY = 'sk-wrong-worker-KEY-bbbbbbbbbbbbbbbb2222';

const servers: FakeOpenAI[] = [];

afterEach(killAllWorkers);

after(async () => {
  await closeScenarios();
  for (const s of servers) await s.close();
});

async function enqueueJobs(probe: QueueProbe, tag: string, n: number) {
  const docs = Array.from({ length: n }, (_, i) => {
    const payload = segmentsPayload(`${tag}${i}`, 6);
    return { documentId: `${tag}-doc-${i}`, payload, expected: referenceChunks(payload) };
  });
  return { docs, ids: await probe.enqueueMany(docs) };
}

async function assertKeyNeverStored(probe: QueueProbe): Promise<void> {
  const { rows } = await probe.pool.query<{ dump: string }>('select coalesce(string_agg(q::text, E\'\\n\'), \'\') as dump from rag_ingestion_queue q');
  assert.ok(!rows[0].dump.includes(WRONG_KEY), 'the key appears in no queue row (error_detail, attempt_history)');
}

test('start --once with a rejected API key: exit 3, jobs released untouched, OPENAI_API_KEY named, key never shown', async () => {
  const { db, probe } = await openScenario();
  const openai = await startFakeOpenAI({ dimensions: DIMS, apiKey: SERVER_KEY });
  servers.push(openai);
  const { ids } = await enqueueJobs(probe, 'once', 3);

  const worker = spawnWorker('once', workerEnv(db, openai, { OPENAI_API_KEY: WRONG_KEY }), ['start', '--once']);
  const exit = await worker.waitForExit(20_000);
  assert.equal(exit?.code, 3, worker.tail());
  assert.ok(openai.stats().requests >= 1, 'the provider was asked (and said 401)');

  const output = worker.stderrText + worker.stdoutText;
  assert.match(output, /OPENAI_API_KEY/, 'the message names the setting to fix');
  assert.ok(!output.includes(WRONG_KEY), 'the key never appears in stdout or stderr');
  const fault = worker.findEvent('fault');
  assert.ok(fault, `a worker-level fault is logged; events: ${worker.eventNames.join(' ')}`);
  assert.equal(fault.level, 'error');
  assert.equal(fault.setting, 'OPENAI_API_KEY', 'the fault names the setting to fix');
  assert.match(fault.msg, /OPENAI_API_KEY/, 'its message names the setting too');

  for (const job of await probe.jobs(ids)) {
    assert.equal(job.status, 'queued', `job ${job.id} released`);
    assert.equal(job.attempts, 0, `job ${job.id}: no attempt used`);
    assert.equal(job.worker_id, null);
    assert.ok(job.attempt_history.every((h) => h.outcome === 'released'), JSON.stringify(job.attempt_history));
  }
  assert.equal((await probe.statusCounts()).queued, 3);
  await assertKeyNeverStored(probe);
});

test('start with a rejected API key keeps running without failing jobs, and processes them once the key works', async () => {
  const { db, probe } = await openScenario();
  let openai = await startFakeOpenAI({ dimensions: DIMS, apiKey: SERVER_KEY });
  servers.push(openai);
  const { docs, ids } = await enqueueJobs(probe, 'live', 3);

  // RAG_POLL_INTERVAL_MS 200 → the fault is re-checked every second (the minimum).
  const worker = spawnWorker('live', workerEnv(db, openai, { OPENAI_API_KEY: WRONG_KEY }));
  const fault = await worker.waitForEvent('fault');
  assert.equal(fault.setting, 'OPENAI_API_KEY');
  await worker.waitForEvent('fault_persists');
  await waitFor(async () => !(await probe.jobs(ids)).some((j) => j.status === 'processing'), 'the jobs in flight to be released');
  for (const job of await probe.jobs(ids)) {
    assert.equal(job.status, 'queued', `job ${job.id} is not failed while the key is wrong:\n${worker.tail(40)}`);
    assert.equal(job.attempts, 0, `job ${job.id}: no attempt used`);
  }
  assert.ok(worker.running);

  // Fix the provider side: same port, no key required.
  const port = openai.port;
  await openai.close();
  openai = await startFakeOpenAI({ dimensions: DIMS, port });
  servers.push(openai);
  await worker.waitForEvent('fault_cleared', {}, 10_000);
  await waitFor(async () => {
    const counts = await probe.statusCounts();
    return (counts.complete ?? 0) === ids.length ? counts : undefined;
  }, 'every job complete after the fix', { timeoutMs: 20_000, intervalMs: 100 });

  for (const [i, doc] of docs.entries()) {
    const job = await probe.job(ids[i]);
    assert.equal(job.attempts, 1, `job ${job.id}: only the successful run counts`);
    assertChunksMatch(await probe.chunks(doc.documentId), doc.expected, doc.documentId);
  }
  worker.signal('SIGTERM');
  assert.equal((await worker.waitForExit(10_000))?.code, 0, worker.tail());
  assert.ok(!(worker.stderrText + worker.stdoutText).includes(WRONG_KEY), 'the key never appears in the logs');
  await assertKeyNeverStored(probe);
});

test('while faulty, the worker re-checks the provider once a second, however often NOTIFY wakes it', async () => {
  const { db, probe } = await openScenario();
  const openai = await startFakeOpenAI({ dimensions: DIMS, apiKey: SERVER_KEY });
  servers.push(openai);
  const { ids } = await enqueueJobs(probe, 'cadence', 1);
  const worker = spawnWorker('cadence', workerEnv(db, openai, { OPENAI_API_KEY: WRONG_KEY }));
  await worker.waitForEvent('fault_persists');
  await waitFor(async () => !(await probe.jobs(ids)).some((j) => j.status === 'processing'), 'the job in flight to be released');

  // Each enqueue NOTIFYs the worker, which must still re-check only every faultRecheckMs (1 s here).
  const checks: number[] = [];
  const onRequest = (r: { inputs: unknown[] }) => {
    if (r.inputs.length === 1 && r.inputs[0] === 'rag-worker health check') checks.push(Date.now());
  };
  openai.events.on('request', onRequest);
  for (let i = 0; i < 3; i++) {
    const seen = checks.length;
    ids.push(...(await enqueueJobs(probe, `wake${i}-`, 1)).ids);
    await waitFor(() => checks.length > seen, `a health check after enqueue ${i + 1}`, { timeoutMs: 5000, intervalMs: 10 });
  }
  openai.events.off('request', onRequest);
  const gaps = checks.slice(1).map((t, i) => t - checks[i]);
  assert.ok(gaps.every((g) => g >= 900), `health checks at least ~1 s apart (RAG_POLL_INTERVAL_MS → 1 s minimum); gaps were ${gaps.join(', ')} ms`);
  assert.equal((await probe.statusCounts()).failed ?? 0, 0, 'no job failed');
  assert.ok(worker.running);
});
