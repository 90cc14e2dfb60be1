/**
 * Three worker processes on one queue: every job is processed by exactly one of them, once, and ends with
 * exactly the chunks a single worker alone produces.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.ts';
import { createTestDatabase, type TestDatabase } from '../support/test-db.ts';
import {
  assertChunksMatch,
  DIMS,
  killAllWorkers,
  QueueProbe,
  referenceChunks,
  requestsByText,
  segmentsPayload,
  spawnWorker,
  waitFor,
  workerEnv,
  type WorkerProcess,
} from '../support/process-helpers.ts';

const JOBS = 30;
let db: TestDatabase;
let openai: FakeOpenAI;
let probe: QueueProbe;

before(async () => {
  db = await createTestDatabase(DIMS);
  // A little latency so jobs overlap in time and the workers compete for the queue.
  openai = await startFakeOpenAI({ dimensions: DIMS, latency: { baseMs: 15 } });
  probe = new QueueProbe(db);
});

after(async () => {
  await killAllWorkers();
  await probe?.close();
  await openai?.close();
  await db?.drop();
});

test('3 workers, 30 jobs: each job processed once, by one worker, with the chunks of a single-worker run', async () => {
  const env = workerEnv(db, openai, { RAG_EMBEDDING_BATCH: '4', RAG_MAX_CONCURRENT_JOBS: '3' });
  const workers: WorkerProcess[] = ['a', 'b', 'c'].map((name) => spawnWorker(name, env));
  await Promise.all(workers.map((w) => w.waitForEvent('worker_ready')));

  const docs = Array.from({ length: JOBS }, (_, i) => {
    const documentId = `excl-doc-${String(i).padStart(2, '0')}`;
    const payload = segmentsPayload(`d${i}`, 10 + (i % 7) * 2);
    return { documentId, payload, expected: referenceChunks(payload) };
  });
  const totalChunks = docs.reduce((n, d) => n + d.expected.length, 0);
  assert.ok(totalChunks >= 300, `several hundred chunks (${totalChunks})`);
  const ids = await probe.enqueueMany(docs);

  await waitFor(async () => {
    const counts = await probe.statusCounts();
    return (counts.complete ?? 0) === JOBS ? counts : undefined;
  }, `all ${JOBS} jobs complete`, { timeoutMs: 45_000, intervalMs: 100 });

  for (const w of workers) assert.ok(w.running, `${w.name} is still running:\n${w.tail()}`);
  workers.forEach((w) => w.signal('SIGTERM'));
  const exits = await Promise.all(workers.map((w) => w.waitForExit(10_000)));
  exits.forEach((e, i) => assert.equal(e?.code, 0, `${workers[i].name} exits 0 on SIGTERM:\n${workers[i].tail()}`));

  const rows = await probe.jobs(ids);
  const byText = requestsByText(openai.requests);
  const workersUsed = new Set<string>();
  for (const [i, doc] of docs.entries()) {
    const job = rows.find((r) => r.id === ids[i])!;
    const what = `${doc.documentId} (job ${job.id})`;
    assert.equal(job.status, 'complete', what);
    assert.equal(job.attempts, 1, `${what}: claimed once (history ${JSON.stringify(job.attempt_history)})`);
    const completes = job.attempt_history.filter((h) => h.outcome === 'complete');
    assert.equal(completes.length, 1, `${what}: exactly one 'complete' in the attempt history`);
    assert.equal(job.attempt_history.length, 1, `${what}: no other outcome recorded (${JSON.stringify(job.attempt_history)})`);
    workersUsed.add(completes[0].worker_id!);
    assert.equal(job.chunks_total, doc.expected.length, `${what}: chunks_total`);
    assert.equal(job.chunks_done, doc.expected.length, `${what}: chunks_done`);

    assertChunksMatch(await probe.chunks(doc.documentId), doc.expected, what);
    assert.equal(await probe.stagingCount(job.id), 0, `${what}: staging cleared`);

    // One attempt, no retries: each chunk text was sent to the provider exactly once.
    for (const chunk of doc.expected) {
      const seen = byText.get(chunk.content) ?? [];
      assert.equal(seen.length, 1, `${what}: chunk ${chunk.index} embedded ${seen.length} times (requests ${seen.map((r) => `${r.n}:${r.outcome}`)})`);
    }
  }
  assert.equal(openai.stats().errors + openai.stats().rateLimited, 0, 'the provider answered every request');
  assert.equal(openai.stats().inputs, totalChunks, 'the provider embedded each chunk once in total');
  assert.ok(workersUsed.size >= 2, `the jobs were spread over several workers (${[...workersUsed]})`);
  const logged = workers.map((w) => w.events('job_complete').map((l) => l.jobId));
  assert.deepEqual(logged.flat().sort(), [...ids].sort(), `each completion logged once by one worker (${logged.map((l) => l.length)})`);
});
