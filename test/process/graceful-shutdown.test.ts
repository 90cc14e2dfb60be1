/**
 * SIGTERM: stop claiming, let the job in flight finish within RAG_SHUTDOWN_GRACE_MS, else release it to
 * `queued` without using an attempt (saved chunks stay for the next worker); exit 0. A second signal exits
 * at once.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.ts';
import {
  assertChunksMatch,
  closeScenarios,
  DIMS,
  hangWhen,
  killAllWorkers,
  openScenario,
  referenceChunks,
  segmentsPayload,
  spawnWorker,
  waitFor,
  workerEnv,
} from '../support/process-helpers.ts';

/** Time allowed on top of the grace period to release, close threads and connections, and exit. */
const EXIT_MARGIN_MS = 3000;
/** How long the provider holds the later requests in the rolling-restart test: longer than lease + heartbeat + poll. */
const HOLD_MS = 3500;

let openai: FakeOpenAI;

before(async () => {
  openai = await startFakeOpenAI({ dimensions: DIMS });
});

afterEach(async () => {
  await killAllWorkers();
  openai.onRequest = undefined;
});

after(async () => {
  await closeScenarios();
  await openai?.close();
});

test('SIGTERM while the provider holds the job: released to queued within the grace period, attempts unchanged, exit 0', async () => {
  const graceMs = 1000;
  const { db, probe } = await openScenario();
  const env = workerEnv(db, openai, { RAG_SHUTDOWN_GRACE_MS: String(graceMs), RAG_EMBEDDING_CONCURRENCY: '64' });
  const payload = segmentsPayload('drain', 100);
  const expected = referenceChunks(payload);
  const firstBatch = new Set(expected.slice(0, 64).map((c) => c.content));
  openai.onRequest = hangWhen((inputs) => inputs.some((x) => !firstBatch.has(x)));
  const id = await probe.enqueue('drain-doc', payload);
  const queuedRow = await probe.job(id);

  const worker = spawnWorker('drain', env);
  const saved = await waitFor(async () => (await probe.job(id)).chunks_done, 'the first batch to be saved', { intervalMs: 25 });
  const sentAt = Date.now();
  worker.signal('SIGTERM');
  const exit = await worker.waitForExit(graceMs + EXIT_MARGIN_MS);
  const tookMs = Date.now() - sentAt;
  assert.ok(exit, `the worker exits within grace ${graceMs} ms + ${EXIT_MARGIN_MS} ms although a provider request hangs; still running after ${tookMs} ms. Log tail:\n${worker.tail()}`);
  assert.equal(exit.code, 0, worker.tail());

  const job = await probe.job(id);
  assert.equal(job.status, 'queued', 'released to the queue');
  assert.equal(job.attempts, queuedRow.attempts, 'no attempt used (as before the claim)');
  assert.equal(job.worker_id, null);
  assert.equal(job.chunks_done, saved, 'saved chunks are kept for the next worker');
  assert.equal(job.attempt_history.at(-1)?.outcome, 'released');
  assert.equal((await probe.statusCounts()).processing ?? 0, 0, 'nothing left processing');
  assert.ok(worker.findEvent('job_released', { jobId: id }), `the release is logged; events: ${worker.eventNames.join(' ')}`);

  // The next worker picks it up where the first stopped.
  openai.onRequest = undefined;
  const next = spawnWorker('drain-next', env, ['start', '--once']);
  const result = await next.waitForExit(20_000);
  assert.equal(result?.code, 0, next.tail());
  assert.ok(next.findEvent('job_resumed', { jobId: id, resumeFrom: saved }), next.tail());
  const done = await probe.job(id);
  assert.equal(done.status, 'complete');
  assert.equal(done.attempts, 1, 'the released run did not count');
  assertChunksMatch(await probe.chunks('drain-doc'), expected, 'drained job');
});

test('SIGTERM during a rolling restart: the draining worker keeps its lease and finishes the job within grace', async () => {
  const graceMs = 15_000;
  const { db, probe } = await openScenario();
  // Lease 2 s. The provider answers the first save batch at once and everything else only after HOLD_MS,
  // so the job is still in flight well past the lease after SIGTERM, while the grace period covers it.
  const env = workerEnv(db, openai, { RAG_SHUTDOWN_GRACE_MS: String(graceMs), RAG_LEASE_SECONDS: '2', RAG_EMBEDDING_CONCURRENCY: '64' });
  const payload = segmentsPayload('finish', 100);
  const expected = referenceChunks(payload);
  const firstBatch = new Set(expected.slice(0, 64).map((c) => c.content));
  openai.onRequest = (req) => (req.inputs.some((x) => typeof x === 'string' && !firstBatch.has(x)) ? { kind: 'delay', ms: HOLD_MS } : undefined);
  const id = await probe.enqueue('finish-doc', payload);

  const old = spawnWorker('old', env);
  await waitFor(async () => (await probe.job(id)).chunks_done, 'the first batch to be saved', { intervalMs: 25 });
  const mid = await probe.job(id);
  assert.ok(mid.chunks_done < expected.length, `SIGTERM arrives while the job is in flight (${mid.chunks_done}/${expected.length} saved)`);
  old.signal('SIGTERM');
  const replacement = spawnWorker('new', env);

  const exit = await old.waitForExit(graceMs + EXIT_MARGIN_MS);
  assert.equal(exit?.code, 0, old.tail());
  const job = await probe.waitForStatus(id, ['complete', 'failed', 'cancelled']);
  assert.equal(job.status, 'complete');
  assertChunksMatch(await probe.chunks('finish-doc'), expected, 'finished job');
  assert.deepEqual(
    job.attempt_history.map((h) => [h.attempt, h.worker_id, h.outcome]),
    [[1, 'rag-test-old', 'complete']],
    'the draining worker kept renewing its lease during the grace period, so the new worker never took the job over',
  );
  assert.ok(old.findEvent('job_complete', { jobId: id }), old.tail());
  assert.equal(replacement.find((l) => l.jobId === id), undefined, 'the new worker never touched the job');
  assert.equal((await probe.statusCounts()).processing ?? 0, 0, 'nothing left processing');
});

test('a second SIGTERM exits at once', async () => {
  const { db, probe } = await openScenario();
  const env = workerEnv(db, openai, { RAG_SHUTDOWN_GRACE_MS: '20000' });
  const payload = segmentsPayload('stuck', 10);
  const stuck = new Set(referenceChunks(payload).map((c) => c.content));
  openai.onRequest = hangWhen((inputs) => inputs.some((x) => stuck.has(x)));
  const id = await probe.enqueue('stuck-doc', payload);

  const worker = spawnWorker('stuck', env);
  await worker.waitForEvent('job_started', { jobId: id });
  await openai.waitForRequests(1);
  worker.signal('SIGTERM');
  await worker.waitForEvent('signal', { signal: 'SIGTERM' });
  const sentAt = Date.now();
  worker.signal('SIGTERM');
  const exit = await worker.waitForExit(2000);
  assert.ok(exit, `exited within 2 s of the second SIGTERM (${Date.now() - sentAt} ms so far)`);
  assert.notEqual(exit.code, 0, 'a forced exit is not reported as a clean one');
  assert.equal(worker.findEvent('worker_stopped'), undefined, `it exited without the clean stop:\n${worker.tail()}`);
});
