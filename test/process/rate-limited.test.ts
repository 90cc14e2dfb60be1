/**
 * Rate limiting is backpressure, never a used-up attempt: a provider that answers nothing but 429s for longer
 * than the lease, and for more tries than RAG_PROVIDER_RETRIES allows, delays the jobs; they keep their
 * leases through heartbeats and complete on their first attempt once the provider lets them through.
 */
import assert from 'node:assert/strict';
import { after, afterEach, test } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.ts';
import {
  assertChunksMatch,
  closeScenarios,
  DIMS,
  killAllWorkers,
  openScenario,
  referenceChunks,
  segmentsPayload,
  spawnWorker,
  TEST_KEY,
  workerEnv,
} from '../support/process-helpers.ts';

const servers: FakeOpenAI[] = [];
afterEach(killAllWorkers);
after(async () => {
  await closeScenarios();
  for (const s of servers) await s.close();
});

test('429s for longer than the lease and more often than RAG_PROVIDER_RETRIES: every job completes on attempt 1', async () => {
  const { db, probe } = await openScenario();
  const openai = await startFakeOpenAI({ dimensions: DIMS, apiKey: TEST_KEY });
  servers.push(openai);
  const docs = Array.from({ length: 3 }, (_, i) => {
    const payload = segmentsPayload(`throttled${i}`, 8);
    return { documentId: `throttled-doc-${i}`, payload, expected: referenceChunks(payload) };
  });
  const ids = await probe.enqueueMany(docs);

  // Throttle from the first request until 4.5 s later: longer than the 3 s lease (heartbeats must keep it).
  let throttleUntil = Infinity;
  openai.onRequest = () => {
    if (throttleUntil === Infinity) throttleUntil = performance.now() + 4_500;
    return performance.now() < throttleUntil ? { status: 429, retryAfterMs: 150 } : null;
  };

  const worker = spawnWorker('throttled', workerEnv(db, openai, { RAG_PROVIDER_RETRIES: '1', RAG_MAX_ATTEMPTS: '2', RAG_LEASE_SECONDS: '3' }), ['start', '--once']);
  const exit = await worker.waitForExit(60_000);
  assert.equal(exit?.code, 0, worker.tail());

  assert.ok(openai.stats().rateLimited >= 10, `the provider throttled (${openai.stats().rateLimited} 429s)`);
  for (const job of await probe.jobs(ids)) {
    assert.equal(job.status, 'complete', `${job.id}: ${job.error_detail}`);
    assert.equal(job.attempts, 1, `${job.id} used ${job.attempts} attempts: ${JSON.stringify(job.attempt_history)}`);
  }
  for (const doc of docs) assertChunksMatch(await probe.chunks(doc.documentId), doc.expected, doc.documentId);
});
