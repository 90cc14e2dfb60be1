/**
 * `rag-worker cancel <id>` on a job in flight: the worker stops it within a heartbeat (its job_lost event); the job
 * stays cancelled, nothing of it is published and its staged chunks are gone.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { runCli } from '../support/cli.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.ts';
import {
  closeScenarios,
  DIMS,
  hangWhen,
  openScenario,
  referenceChunks,
  segmentsPayload,
  spawnWorker,
  waitFor,
  workerEnv,
} from '../support/process-helpers.ts';

const LEASE_SECONDS = 3; // heartbeat every second
/** A heartbeat interval, plus time to log and to settle, on a busy machine. */
const STOP_WITHIN_MS = (LEASE_SECONDS * 1000) / 3 + 2000;

let openai: FakeOpenAI;

before(async () => {
  openai = await startFakeOpenAI({ dimensions: DIMS });
});

after(async () => {
  await closeScenarios();
  await openai?.close();
});

test('cancel a job in flight: the worker stops it within a heartbeat, it stays cancelled, nothing published, staging cleared', async () => {
  const { db, probe } = await openScenario();
  const env = workerEnv(db, openai, { RAG_LEASE_SECONDS: String(LEASE_SECONDS), RAG_EMBEDDING_CONCURRENCY: '64' });
  const payload = segmentsPayload('cancel', 100);
  const expected = referenceChunks(payload);
  const firstBatch = new Set(expected.slice(0, 64).map((c) => c.content));
  // The provider answers the first save batch and holds the rest: the job is mid-way when cancelled.
  openai.onRequest = hangWhen((inputs) => inputs.some((x) => !firstBatch.has(x)));
  const id = await probe.enqueue('cancel-doc', payload);
  const worker = spawnWorker('cancel', env);
  const saved = await waitFor(async () => (await probe.job(id)).chunks_done, 'the first batch to be saved', { intervalMs: 25 });
  assert.equal(await probe.stagingCount(id), saved, 'chunks staged before the cancel');

  const cancelled = await runCli(['cancel', id], env);
  const sentAt = Date.now();
  assert.equal(cancelled.code, 0, cancelled.stderr);
  assert.match(cancelled.stdout, new RegExp(`Job ${id} cancelled`));

  try {
    // The job's row is cancelled (not ours any more): the heartbeat notices and the worker stops the job.
    const stopped = await worker.waitForEvent('job_lost', { jobId: id }, STOP_WITHIN_MS);
    assert.equal(stopped.level, 'warn');
  } catch (error) {
    assert.fail(`the worker did not stop the cancelled job within ${STOP_WITHIN_MS} ms (${Date.now() - sentAt} ms since the cancel): ${(error as Error).message}`);
  } finally {
    openai.onRequest = undefined;
  }

  // It stays cancelled: run the worker until it has exited, then look.
  worker.signal('SIGTERM');
  assert.equal((await worker.waitForExit(10_000))?.code, 0, worker.tail());
  const job = await probe.job(id);
  assert.equal(job.status, 'cancelled');
  assert.equal(job.attempts, 1);
  assert.equal(await probe.stagingCount(id), 0, 'staging cleared');
  assert.deepEqual(await probe.chunks('cancel-doc'), [], 'nothing published for the cancelled job');
  const { rows } = await probe.pool.query('select 1 from rag_documents where document_id = $1', ['cancel-doc']);
  assert.equal(rows.length, 0, 'no rag_documents row');
  for (const event of ['job_complete', 'job_released', 'job_requeued', 'job_failed']) {
    assert.equal(worker.findEvent(event, { jobId: id }), undefined, `no ${event} for the cancelled job:\n${worker.tail()}`);
  }
});
