/**
 * Database connections dropped under a running worker (pg_terminate_backend on its pool and LISTEN
 * connections, only in this test's database): it logs the loss (db_retry and similar events), does not crash,
 * and every job completes.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.ts';
import {
  assertChunksMatch,
  closeScenarios,
  DIMS,
  openScenario,
  referenceChunks,
  segmentsPayload,
  spawnWorker,
  waitFor,
  workerEnv,
} from '../support/process-helpers.ts';

/** Events a worker logs when a database call met a lost connection and is retried. */
const CONNECTION_EVENTS = ['db_retry', 'claim_retry', 'heartbeat_failed'];

let openai: FakeOpenAI;

before(async () => {
  // Slow enough that the jobs are still running while connections are dropped.
  openai = await startFakeOpenAI({ dimensions: DIMS, latency: { baseMs: 40 } });
});

after(async () => {
  await closeScenarios();
  await openai?.close();
});

test('connections terminated 4 times mid-run: the worker logs it, keeps running, and every job completes', async (t) => {
  const { db, probe } = await openScenario();
  const env = workerEnv(db, openai, { RAG_EMBEDDING_BATCH: '4', RAG_EMBEDDING_CONCURRENCY: '2', RAG_MAX_CONCURRENT_JOBS: '2' });
  const docs = Array.from({ length: 6 }, (_, i) => {
    const payload = segmentsPayload(`net${i}`, 70);
    return { documentId: `drops-doc-${i}`, payload, expected: referenceChunks(payload) };
  });
  const total = docs.reduce((n, d) => n + d.expected.length, 0);
  const ids = await probe.enqueueMany(docs);
  const worker = spawnWorker('drops', env);

  const progress = async () => (await probe.jobs(ids)).reduce((n, j) => n + j.chunks_done, 0);
  let terminated = 0;
  for (let round = 1; round <= 4; round++) {
    // Each round waits for fresh progress, so the drops are spread over the run.
    const before = await progress();
    await waitFor(async () => (await progress()) > before, `progress before drop ${round}`, { timeoutMs: 20_000, intervalMs: 25 });
    terminated += await probe.terminateWorkerConnections();
  }
  const mid = await progress();
  assert.ok(mid < total, `connections were dropped while the jobs were running (${mid}/${total} chunks saved)`);
  assert.ok(terminated >= 4, `worker connections were terminated (${terminated})`);

  await waitFor(async () => {
    const counts = await probe.statusCounts();
    return (counts.complete ?? 0) === docs.length ? counts : undefined;
  }, 'every job complete', { timeoutMs: 40_000, intervalMs: 100 });
  assert.ok(worker.running, `the worker did not crash:\n${worker.tail()}`);
  const losses = CONNECTION_EVENTS.flatMap((event) => worker.events(event));
  assert.ok(losses.length > 0, `the connection loss is logged (${CONNECTION_EVENTS.join(', ')}); events: ${worker.eventNames.join(' ')}`);
  t.diagnostic(`terminated ${terminated} connections; logged: ${[...new Set(losses.map((l) => `${l.event}${l.what ? ` (${l.what})` : ''}`))].join(' | ')}`);

  for (const [i, doc] of docs.entries()) {
    const job = await probe.job(ids[i]);
    assert.equal(job.status, 'complete', doc.documentId);
    assertChunksMatch(await probe.chunks(doc.documentId), doc.expected, doc.documentId);
    assert.equal(await probe.stagingCount(job.id), 0);
  }
  const counts = await probe.statusCounts();
  assert.deepEqual(counts, { complete: docs.length }, 'nothing left processing, queued or failed');
  const errors = worker.lines.filter((l) => l.level === 'error');
  assert.deepEqual(errors, [], 'no error-level log lines');

  // It still works afterwards: a new job is picked up (LISTEN reconnected or polling) and completes.
  const late = segmentsPayload('late', 5);
  const lateId = await probe.enqueue('drops-late', late);
  await probe.waitForStatus(lateId, ['complete']);
  assertChunksMatch(await probe.chunks('drops-late'), referenceChunks(late), 'job enqueued after the drops');

  worker.signal('SIGTERM');
  assert.equal((await worker.waitForExit(10_000))?.code, 0, worker.tail());
});
