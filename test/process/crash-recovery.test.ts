/**
 * kill -9 mid-job: the lease runs out, another worker resumes after the saved batches and the job ends with
 * the chunks of a clean run. A job that kills its worker every time ends failed after its attempts.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.ts';
import { createTestDatabase, type TestDatabase } from '../support/test-db.ts';
import {
  assertChunksMatch,
  DIMS,
  hangWhen,
  killAllWorkers,
  QueueProbe,
  referenceChunks,
  segmentsPayload,
  spawnWorker,
  waitFor,
  workerEnv,
} from '../support/process-helpers.ts';

let db: TestDatabase;
let openai: FakeOpenAI;
let probe: QueueProbe;
let env: NodeJS.ProcessEnv;

before(async () => {
  db = await createTestDatabase(DIMS);
  openai = await startFakeOpenAI({ dimensions: DIMS });
  probe = new QueueProbe(db);
  // A short lease (heartbeat every second; 3 s rather than the minimum 2 leaves room on a loaded 2-core machine); every request of a job in flight at once, so holding back the
  // requests of later batches never starves the first one.
  env = workerEnv(db, openai, { RAG_LEASE_SECONDS: '3', RAG_EMBEDDING_BATCH: '8', RAG_EMBEDDING_CONCURRENCY: '64' });
});

// A failed test must not leave its worker to claim the next test's job.
afterEach(killAllWorkers);

after(async () => {
  await killAllWorkers();
  await probe?.close();
  await openai?.close();
  await db?.drop();
});

test('SIGKILL after the first saved batch: a second worker resumes after it and completes the job', async () => {
  const payload = segmentsPayload('crash', 150);
  const expected = referenceChunks(payload);
  assert.ok(expected.length > 128, `the job spans several save batches of 64 (${expected.length} chunks)`);
  const firstBatch = new Set(expected.slice(0, 64).map((c) => c.content));
  // Phase 1: the provider answers the first save batch's chunks and holds everything else.
  openai.onRequest = hangWhen((inputs) => inputs.some((x) => !firstBatch.has(x)));
  const id = await probe.enqueue('crash-doc', payload);

  const first = spawnWorker('first', env);
  const saved = await waitFor(async () => (await probe.job(id)).chunks_done, 'the first batch to be saved', { intervalMs: 25, timeoutMs: 45_000 });
  assert.ok(saved > 0 && saved < expected.length, `mid-job: ${saved} of ${expected.length} chunks saved`);
  await first.kill();
  const cutoff = openai.requests.length;
  openai.onRequest = undefined;

  const afterKill = await probe.job(id);
  assert.equal(afterKill.status, 'processing', 'the killed worker still holds the lease');
  assert.equal(afterKill.chunks_done, saved, 'nothing was saved after the kill');

  const second = spawnWorker('second', env);
  const resumed = await second.waitForEvent('job_resumed', { jobId: id }, 45_000);
  assert.equal(resumed.resumeFrom, saved, 'resumed after the saved chunks');
  const done = await probe.waitForStatus(id, ['complete', 'failed', 'cancelled']);
  assert.equal(done.status, 'complete', `job completed: ${done.error_detail}`);
  assert.equal(done.attempts, 2);
  assert.equal(done.chunks_total, expected.length);
  assert.deepEqual(
    done.attempt_history.map((h) => [h.attempt, h.worker_id, h.outcome]),
    [[1, 'rag-test-first', 'lease_expired'], [2, 'rag-test-second', 'complete']],
  );
  assertChunksMatch(await probe.chunks('crash-doc'), expected, 'resumed job');
  assert.equal(await probe.stagingCount(id), 0, 'staging cleared');

  // The second worker asked the provider only for chunks after the saved ones, each once.
  const later = openai.requests.slice(cutoff).flatMap((r) => r.inputs as string[]);
  const savedTexts = new Set(expected.slice(0, saved).map((c) => c.content));
  const again = later.filter((x) => savedTexts.has(x));
  assert.deepEqual(again, [], 'no saved chunk was embedded again');
  assert.deepEqual([...later].sort(), expected.slice(saved).map((c) => c.content).sort(), 'every remaining chunk embedded once');

  second.signal('SIGTERM');
  assert.equal((await second.waitForExit(10_000))?.code, 0, second.tail());
});

test('a job that kills its worker every time ends failed after max_attempts, with an error_detail saying so', async () => {
  const payload = segmentsPayload('poison', 8);
  const poison = new Set(referenceChunks(payload).map((c) => c.content));
  // Its requests never return: the worker is "stuck" on it when we kill it.
  openai.onRequest = hangWhen((inputs) => inputs.some((x) => poison.has(x)));
  const id = await probe.enqueue('poison-doc', payload, { maxAttempts: 2 });

  for (const name of ['victim-1', 'victim-2']) {
    const worker = spawnWorker(name, env);
    await worker.waitForEvent('job_started', { jobId: id }, 45_000);
    await worker.kill();
  }
  const held = await probe.job(id);
  assert.equal(held.status, 'processing');
  assert.equal(held.attempts, 2);

  // Once the second lease expires, the next worker's claim fails the job instead of claiming it a third time.
  const survivor = spawnWorker('survivor', env);
  const failed = await probe.waitForStatus(id, ['failed', 'complete', 'queued', 'cancelled']);
  assert.equal(failed.status, 'failed');
  assert.equal(failed.attempts, 2, 'no third attempt');
  assert.equal(failed.last_error_category, 'worker_lost');
  assert.match(failed.error_detail ?? '', /attempt 2 of 2/);
  assert.match(failed.error_detail ?? '', /giving up after 2 attempts/);
  assert.match(failed.error_detail ?? '', /rag-test-victim-2/);
  assert.deepEqual(
    failed.attempt_history.map((h) => [h.attempt, h.worker_id, h.outcome]),
    [[1, 'rag-test-victim-1', 'lease_expired'], [2, 'rag-test-victim-2', 'lease_expired']],
  );
  assert.equal(survivor.findEvent('job_started', { jobId: id }), undefined, 'the survivor never ran it');
  assert.equal(await probe.stagingCount(id), 0);
  openai.onRequest = undefined;
  survivor.signal('SIGTERM');
  assert.equal((await survivor.waitForExit(10_000))?.code, 0, survivor.tail());
});
