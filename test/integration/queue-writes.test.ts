/**
 * The queue's SQL functions that write results: save batches, complete, fail, cancel, retry, and the read side
 * (embedding reuse lookup, similarity search). Runs against PostgreSQL and in-memory PGlite alike.
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { reuseKey, toVectorLiteral } from '../../src/main/stores/queue-store.ts';
import { LeaseLostError } from '../../src/main/stores/sql-client.ts';
import {
  type Backend,
  BACKENDS,
  DEFAULT_MAX_ATTEMPTS,
  MODEL,
  chunkRows,
  claimExactly,
  createJobsInEveryState,
  docId,
  embeddingsFor,
  enqueueAndClaim,
  ingest,
  leaseOf,
  makeChunks,
  makeDue,
  openBackend,
  parkOtherJobs,
  saveChunks,
  secondsFromNow,
  stagingCount,
} from '../support/queue-fixtures.ts';

/** The content hash of a lookupEmbeddings key. */
const hashOf = (key: string) => key.split('\u0000')[0];

const parseVector = (literal: string) => JSON.parse(literal) as number[];
const historyOf = (job: { attempt_history: unknown[] } | undefined) =>
  (job?.attempt_history ?? []) as { attempt: number; worker_id: string | null; outcome: string; detail: string | null }[];

for (const kind of BACKENDS) {
  describe(`queue functions: save, complete, fail, cancel, retry, lookup, match (${kind})`, () => {
    let b: Backend;
    before(async () => {
      b = await openBackend(kind);
    });
    after(async () => {
      await b?.close();
    });
    beforeEach(async () => {
      await parkOtherJobs(b.sql);
    });

    const staged = (jobId: string) =>
      b.sql.query<{ chunk_index: number; content: string; embedding: string; token_count: number; speakers: string[]; start_ms: number }>(
        'select chunk_index, content, embedding::text as embedding, token_count, speakers, start_ms from rag_unpublished_chunks where job_id = $1 order by chunk_index',
        [jobId],
      );

    /** A claimed job, started with `total` chunks over 2 segments per chunk. */
    const startedJob = async (tag: string, total: number, request: { documentId?: string; maxAttempts?: number | null } = {}) => {
      const { job, lease } = await enqueueAndClaim(b.store, `${tag}-worker`, { documentId: request.documentId ?? docId(tag), maxAttempts: request.maxAttempts });
      assert.equal(await b.store.startJob(lease, total * 2, total, `sig-${tag}`), 0);
      return { job, lease };
    };

    describe('rag_save_chunks', () => {
      it('saves batches in order into staging with the progress columns, publishing nothing yet', async () => {
        const fx = await createJobsInEveryState(b.store, 'save');
        const { job, lease } = await startedJob('save', 5);
        const chunks = makeChunks(5);
        const save = (batch: typeof chunks, progress: { segmentsDone: number; tokensEmbedded: number; chunksReused: number }) =>
          b.store.saveChunks(lease, MODEL, batch, embeddingsFor(batch), progress);
        assert.equal(await save(chunks.slice(0, 2), { segmentsDone: 4, tokensEmbedded: 7, chunksReused: 0 }), 2);
        let row = await b.store.getJob(job.id);
        assert.deepEqual([row?.chunks_done, row?.segments_done, row?.tokens_embedded, row?.chunks_reused], [2, 4, 7, 0]);
        assert.equal(await save(chunks.slice(2), { segmentsDone: 10, tokensEmbedded: 11, chunksReused: 2 }), 5);
        row = await b.store.getJob(job.id);
        assert.deepEqual([row?.chunks_done, row?.segments_done, row?.tokens_embedded, row?.chunks_reused], [5, 10, 18, 2]);

        const rows = await staged(job.id);
        assert.deepEqual(
          rows.map((r) => [r.chunk_index, r.content, Number(r.token_count), r.speakers, Number(r.start_ms)]),
          chunks.map((c) => [c.index, c.content, c.tokenCount, c.speakers, c.startMs]),
        );
        rows.forEach((r, i) => parseVector(r.embedding).forEach((v, k) => assert.ok(Math.abs(v - parseVector(embeddingsFor(chunks)[i])[k]) < 1e-6)));
        assert.deepEqual(await chunkRows(b.sql, job.document_id), [], 'nothing is published before complete');
        await fx.assertUntouched();
      });

      it('rejects a batch that leaves a gap, saving nothing of it', async () => {
        const fx = await createJobsInEveryState(b.store, 'save-gap');
        const { job, lease } = await startedJob('save-gap', 5);
        await saveChunks(b.store, lease, makeChunks(2));
        await assert.rejects(saveChunks(b.store, lease, makeChunks(2, { from: 3 })), /expects chunk_index 2 next, got 3/);
        const row = await b.store.getJob(job.id);
        assert.equal(row?.chunks_done, 2);
        assert.equal(await stagingCount(b.sql, job.id), 2);
        await fx.assertUntouched();
      });

      it('rejects a batch with a gap inside it', async () => {
        const { job, lease } = await startedJob('save-inner-gap', 4);
        const [c0, , c2] = makeChunks(3);
        try {
          await assert.rejects(saveChunks(b.store, lease, [c0, c2]));
          assert.equal(await stagingCount(b.sql, job.id), 0);
        } finally {
          await b.store.cancelJob(job.id);
        }
      });

      it('ignores chunks already saved when a batch is resent, without duplicates', async () => {
        const fx = await createJobsInEveryState(b.store, 'save-resend');
        const { job, lease } = await startedJob('save-resend', 4);
        const chunks = makeChunks(4);
        await saveChunks(b.store, lease, chunks.slice(0, 2));
        const progress = await b.store.getJob(job.id);
        // The whole batch again (its acknowledgement was lost): nothing changes.
        assert.equal(await saveChunks(b.store, lease, chunks.slice(0, 2)), 2);
        const same = await b.store.getJob(job.id);
        const progressOf = (j: typeof same) => [j?.chunks_done, j?.tokens_embedded, j?.segments_done];
        assert.deepEqual(progressOf(same), progressOf(progress));
        // A batch overlapping the saved ones: only the new chunks are added, the saved one keeps its content.
        const changed = { ...chunks[1], content: 'resent with other content' };
        assert.equal(await saveChunks(b.store, lease, [changed, chunks[2]]), 3);
        assert.deepEqual((await staged(job.id)).map((r) => [r.chunk_index, r.content]), [[0, 'c chunk 0'], [1, 'c chunk 1'], [2, 'c chunk 2']]);
        await saveChunks(b.store, lease, chunks.slice(3));
        assert.equal(await b.store.completeJob(lease), 4);
        assert.deepEqual((await chunkRows(b.sql, job.document_id)).map((r) => r.chunk_index), [0, 1, 2, 3]);
        await fx.assertUntouched();
      });

      it('rejects a batch whose chunks and embeddings differ in number', async () => {
        const fx = await createJobsInEveryState(b.store, 'save-len');
        const { job, lease } = await startedJob('save-len', 3);
        const chunks = makeChunks(2);
        await assert.rejects(saveChunks(b.store, lease, chunks, embeddingsFor(chunks).slice(0, 1)), /2 chunks but 1 embeddings/);
        await assert.rejects(saveChunks(b.store, lease, chunks.slice(0, 1), embeddingsFor(chunks)), /1 chunks but 2 embeddings/);
        assert.equal((await b.store.getJob(job.id))?.chunks_done, 0);
        assert.equal(await stagingCount(b.sql, job.id), 0);
        await fx.assertUntouched();
      });
    });

    describe('rag_complete_job', () => {
      it('publishes the staged chunks at once, upserts rag_documents and marks the job complete', async () => {
        const fx = await createJobsInEveryState(b.store, 'complete');
        const { job, lease } = await enqueueAndClaim(b.store, 'w1', { documentId: docId('complete'), title: 'First title' });
        await b.store.startJob(lease, 10, 5, 'sig');
        await saveChunks(b.store, lease, makeChunks(5));
        assert.equal(await b.store.completeJob(lease), 5);
        const published = await chunkRows(b.sql, job.document_id, '1');
        assert.deepEqual(
          published.map((r) => [r.chunk_index, r.content, r.job_id, r.embedding_model]),
          makeChunks(5).map((c) => [c.index, c.content, job.id, MODEL]),
        );
        assert.equal(await stagingCount(b.sql, job.id), 0);
        const done = await b.store.getJob(job.id);
        assert.deepEqual([done?.status, done?.lease_token, done?.lease_expires_at, done?.error_detail], ['complete', null, null, null]);
        assert.ok(done?.completed_at);
        assert.deepEqual(historyOf(done).map((h) => [h.attempt, h.worker_id, h.outcome]), [[1, 'w1', 'complete']]);
        const docs = await b.sql.query('select title, chunk_count, embedding_model, job_id from rag_documents where document_id = $1', [job.document_id]);
        assert.deepEqual(docs, [{ title: 'First title', chunk_count: 5, embedding_model: MODEL, job_id: job.id }]);
        // The lease is gone: a second complete is fenced off.
        await assert.rejects(b.store.completeJob(lease), LeaseLostError);
        await fx.assertUntouched();
      });

      it('re-ingesting a document version replaces its chunks entirely, and only when the new job completes', async () => {
        const fx = await createJobsInEveryState(b.store, 'reingest');
        const documentId = docId('reingest');
        const first = await ingest(b.store, { documentId, title: 'old', chunks: makeChunks(5, { tag: 'old' }) });
        const otherVersion = await ingest(b.store, { documentId, version: '2', chunks: makeChunks(2, { tag: 'v2' }) });
        const { job: second, lease } = await enqueueAndClaim(b.store, 'w2', { documentId, title: 'new' });
        await b.store.startJob(lease, 6, 3, 'sig');
        await saveChunks(b.store, lease, makeChunks(3, { tag: 'new' }));
        const midway = await chunkRows(b.sql, documentId, '1');
        const oldRows = makeChunks(5, { tag: 'old' }).map((c) => [c.content, first.id]);
        assert.deepEqual(midway.map((r) => [r.content, r.job_id]), oldRows, 'readers see the old ingestion until complete');

        assert.equal(await b.store.completeJob(lease), 3);
        const now = await chunkRows(b.sql, documentId, '1');
        assert.deepEqual(now.map((r) => [r.chunk_index, r.content, r.job_id]), makeChunks(3, { tag: 'new' }).map((c) => [c.index, c.content, second.id]));
        assert.deepEqual((await chunkRows(b.sql, documentId, '2')).map((r) => r.job_id), [otherVersion.id, otherVersion.id], 'other versions stay');
        const docs = await b.sql.query('select version, title, chunk_count, job_id from rag_documents where document_id = $1 order by version', [documentId]);
        assert.deepEqual(docs, [
          { version: '1', title: 'new', chunk_count: 3, job_id: second.id },
          { version: '2', title: null, chunk_count: 2, job_id: otherVersion.id },
        ]);
        await fx.assertUntouched();
      });

      it('refuses to complete with chunks missing, changing nothing', async () => {
        const fx = await createJobsInEveryState(b.store, 'complete-missing');
        const documentId = docId('complete-missing');
        await ingest(b.store, { documentId, chunks: makeChunks(2, { tag: 'old' }) });
        const { job, lease } = await enqueueAndClaim(b.store, 'w1', { documentId });
        await b.store.startJob(lease, 6, 3, 'sig');
        await saveChunks(b.store, lease, makeChunks(2, { tag: 'new' }));
        const before = await b.store.getJob(job.id);
        await assert.rejects(b.store.completeJob(lease), /has 2 of 3 chunks saved/);
        assert.deepEqual(await b.store.getJob(job.id), before);
        assert.equal(await stagingCount(b.sql, job.id), 2);
        assert.deepEqual((await chunkRows(b.sql, documentId)).map((r) => r.content), ['old chunk 0', 'old chunk 1']);
        await fx.assertUntouched();
      });
    });

    describe('rag_fail_job', () => {
      it('with a retry and attempts left: queued again later, staged chunks kept, the error recorded', async () => {
        const fx = await createJobsInEveryState(b.store, 'fail-retry');
        const { job, lease } = await startedJob('fail-retry', 4);
        await saveChunks(b.store, lease, makeChunks(2));
        assert.equal(await b.store.failJob(lease, 'provider timed out', 'retryable', 60_000, DEFAULT_MAX_ATTEMPTS), 'queued');
        const row = await b.store.getJob(job.id);
        assert.deepEqual(
          [row?.status, row?.worker_id, row?.lease_token, row?.lease_expires_at, row?.error_detail, row?.last_error_category, row?.attempts, row?.chunks_done],
          ['queued', null, null, null, 'provider timed out', 'retryable', 1, 2],
        );
        const dueIn = await secondsFromNow(b.sql, row?.run_at ?? null);
        assert.ok(dueIn > 55 && dueIn <= 60, `due in ${dueIn}s, expected ~60s`);
        assert.deepEqual(historyOf(row).map((h) => [h.attempt, h.worker_id, h.outcome, h.detail]), [[1, 'fail-retry-worker', 'retryable', 'provider timed out']]);
        assert.equal(await stagingCount(b.sql, job.id), 2);
        assert.deepEqual(await b.store.claimJobs('w2', 5, 30, DEFAULT_MAX_ATTEMPTS), [], 'not before run_at');
        await makeDue(b.sql, job.id);
        const [again] = await claimExactly(b.store, 'w2', [job.id]);
        assert.equal(again.attempts, 2);
        assert.equal(await b.store.startJob(leaseOf(again), 8, 4, 'sig-fail-retry'), 2, 'resumes after the kept chunks');
        await fx.assertUntouched();
      });

      it('final: failed with the detail, staged chunks dropped', async () => {
        const fx = await createJobsInEveryState(b.store, 'fail-final');
        const { job, lease } = await startedJob('fail-final', 4);
        await saveChunks(b.store, lease, makeChunks(2));
        assert.equal(await b.store.failJob(lease, 'unparseable transcript', 'bad_input', null, DEFAULT_MAX_ATTEMPTS), 'failed');
        const row = await b.store.getJob(job.id);
        assert.deepEqual([row?.status, row?.error_detail, row?.last_error_category, row?.lease_token], ['failed', 'unparseable transcript', 'bad_input', null]);
        assert.ok(row?.completed_at);
        assert.equal(await stagingCount(b.sql, job.id), 0);
        assert.deepEqual(await chunkRows(b.sql, job.document_id), []);
        await assert.rejects(b.store.failJob(lease, 'again', 'bad_input', null, DEFAULT_MAX_ATTEMPTS), LeaseLostError);
        await fx.assertUntouched();
      });

      it("gives up when attempts run out: the job's max_attempts wins over the worker's default", async () => {
        const fx = await createJobsInEveryState(b.store, 'fail-max');
        const failWithRetry = async (maxAttempts: number | null, defaultMax: number) => {
          const { job, lease } = await startedJob('fail-max', 2, { maxAttempts });
          return { status: await b.store.failJob(lease, 'boom', 'retryable', 1000, defaultMax), job: await b.store.getJob(job.id) };
        };
        const columnOne = await failWithRetry(1, 5);
        assert.equal(columnOne.status, 'failed');
        assert.equal(columnOne.job?.error_detail, 'boom (gave up after 1 attempts)');
        assert.equal((await failWithRetry(3, 1)).status, 'queued', 'max_attempts 3 on the job beats a default of 1');
        assert.equal((await failWithRetry(null, 1)).status, 'failed', 'no max_attempts on the job: the default (1) applies');
        assert.equal((await failWithRetry(null, 2)).status, 'queued');
        await fx.assertUntouched();
      });

      it('queues the retry of a job whose document version was enqueued again meanwhile', async () => {
        const documentId = docId('fail-requeued');
        const { lease } = await enqueueAndClaim(b.store, 'w1', { documentId });
        const newer = await b.store.enqueue({ documentId, payload: { text: 'newer' } });
        try {
          await b.store.failJob(lease, 'timeout', 'retryable', 1000, DEFAULT_MAX_ATTEMPTS);
          const queued = await b.sql.query(`select id from rag_ingestion_queue where document_id = $1 and status = 'queued'`, [documentId]);
          assert.equal(queued.length, 1);
        } finally {
          await b.store.cancelJob(lease.jobId);
          await b.store.cancelJob(newer);
        }
      });
    });

    describe('rag_cancel_job', () => {
      it('cancels a queued job, which is then never claimed', async () => {
        const fx = await createJobsInEveryState(b.store, 'cancel-q');
        const id = await b.store.enqueue({ documentId: docId('cancel-q'), payload: {} });
        assert.equal(await b.store.cancelJob(id), 'cancelled');
        const job = await b.store.getJob(id);
        assert.equal(job?.status, 'cancelled');
        assert.ok(job?.completed_at);
        assert.deepEqual(await b.store.claimJobs('w', 5, 30, DEFAULT_MAX_ATTEMPTS), []);
        await fx.assertUntouched();
      });

      it('cancels a processing job: staging dropped, the worker is fenced off, published chunks stay', async () => {
        const fx = await createJobsInEveryState(b.store, 'cancel-p');
        const documentId = docId('cancel-p');
        await ingest(b.store, { documentId, chunks: makeChunks(2, { tag: 'published' }) });
        const { lease } = await enqueueAndClaim(b.store, 'w1', { documentId });
        await b.store.startJob(lease, 4, 3, 'sig');
        await saveChunks(b.store, lease, makeChunks(1, { tag: 'new' }));
        assert.equal(await b.store.cancelJob(lease.jobId), 'cancelled');
        assert.equal(await stagingCount(b.sql, lease.jobId), 0);
        await assert.rejects(saveChunks(b.store, lease, makeChunks(1, { from: 1, tag: 'new' })), LeaseLostError);
        await assert.rejects(b.store.completeJob(lease), LeaseLostError);
        assert.deepEqual(await b.store.extendLeases('w1', [lease], 30), [{ jobId: lease.jobId, held: false, status: 'cancelled' }]);
        assert.deepEqual((await chunkRows(b.sql, documentId)).map((c) => c.content), ['published chunk 0', 'published chunk 1']);
        await fx.assertUntouched();
      });

      it('leaves complete, failed and cancelled jobs as they are and reports their status', async () => {
        const fx = await createJobsInEveryState(b.store, 'cancel-done');
        assert.equal(await b.store.cancelJob(fx.complete), 'complete');
        assert.equal(await b.store.cancelJob(fx.failed), 'failed');
        assert.equal(await b.store.cancelJob(fx.cancelled), 'cancelled');
        assert.equal(await b.store.cancelJob('00000000-0000-4000-8000-000000000002'), 'missing');
        await fx.assertUntouched();
      });
    });

    describe('rag_retry_jobs', () => {
      const failedJob = async (tag: string, documentId = docId(tag)) => {
        const { lease } = await enqueueAndClaim(b.store, `${tag}-worker`, { documentId });
        await b.store.failJob(lease, 'broken', 'bad_input', null, DEFAULT_MAX_ATTEMPTS);
        return lease.jobId;
      };

      it('re-queues the given failed or cancelled jobs with fresh attempts', async () => {
        const fx = await createJobsInEveryState(b.store, 'retry');
        const failed = await failedJob('retry');
        const cancelled = await b.store.enqueue({ documentId: docId('retry-c'), payload: {} });
        await b.store.cancelJob(cancelled);
        const retried = await b.store.retryJobs([failed, cancelled, fx.complete, fx.processing]);
        assert.deepEqual(retried.sort(), [failed, cancelled].sort(), 'complete and processing jobs are not retried');
        const row = await b.store.getJob(failed);
        assert.deepEqual(
          [row?.status, row?.attempts, row?.error_detail, row?.last_error_category, row?.completed_at, row?.worker_id],
          ['queued', 0, null, null, null, null],
        );
        assert.deepEqual(historyOf(row).map((h) => h.outcome), ['bad_input', 'retried']);
        const claimed = await b.store.claimJobs('w2', 5, 30, DEFAULT_MAX_ATTEMPTS);
        assert.deepEqual(claimed.map((j) => j.id).sort(), [failed, cancelled].sort());
        assert.ok(claimed.every((j) => j.attempts === 1));
        await fx.assertUntouched();
      });

      it('with no ids re-queues every failed job (not cancelled ones)', async () => {
        const fx = await createJobsInEveryState(b.store, 'retry-all');
        const failed = [await failedJob('retry-all'), await failedJob('retry-all')];
        const retried = await b.store.retryJobs(null);
        for (const id of [...failed, fx.failed]) assert.ok(retried.includes(id), 'every failed job is retried');
        for (const id of [fx.cancelled, fx.complete, fx.processing, fx.queued]) assert.ok(!retried.includes(id));
        assert.deepEqual((await b.store.getJobs([...failed, fx.failed])).map((j) => j.status), ['queued', 'queued', 'queued']);
        await fx.assertUntouched([fx.failed]);
      });

      it('leaves a failed job alone when its document version is queued again already', async () => {
        const fx = await createJobsInEveryState(b.store, 'retry-queued');
        const documentId = docId('retry-queued');
        const failed = await failedJob('retry-queued', documentId);
        const queued = await b.store.enqueue({ documentId, payload: { text: 'newer' } });
        assert.deepEqual(await b.store.retryJobs([failed]), []);
        assert.ok(!(await b.store.retryJobs(null)).includes(failed));
        assert.equal((await b.store.getJob(failed))?.status, 'failed');
        assert.equal((await b.store.getJob(queued))?.status, 'queued');
        await fx.assertUntouched([fx.failed]);
      });

      it('re-queues one job when a document version has failed twice', async () => {
        const documentId = docId('retry-twice');
        const first = await failedJob('retry-twice', documentId);
        const second = await failedJob('retry-twice', documentId);
        try {
          const retried = await b.store.retryJobs([first, second]);
          assert.equal(retried.length, 1);
        } finally {
          // Leave at most one failed job of this version, so later retries of every failed job are not affected.
          await b.store.retryJobs([first]).then(() => b.store.cancelJob(first)).catch(() => {});
        }
      });
    });

    describe('rag_lookup_embeddings', () => {
      it('finds stored embeddings by content hash and model for the same document, across versions', async () => {
        const documentId = docId('lookup');
        const v = (x: number, y: number) => toVectorLiteral([x, y, 0]);
        await ingest(b.store, { documentId, chunks: makeChunks(3, { tag: 'a' }), embeddings: [v(1, 0.1), v(1, 0.2), v(1, 0.3)] });
        await ingest(b.store, { documentId, version: '2', chunks: makeChunks(1, { tag: 'b' }), embeddings: [v(1, 0.4)] });
        await ingest(b.store, { documentId, version: '3', chunks: makeChunks(1, { tag: 'm' }), embeddings: [v(1, 0.5)], model: 'other-model' });
        await ingest(b.store, { documentId: docId('lookup-other'), chunks: makeChunks(1, { tag: 'b' }), embeddings: [v(1, 0.9)] });
        const { lease } = await enqueueAndClaim(b.store, 'w1', { documentId, version: '4' });
        await b.store.startJob(lease, 2, 1, 'sig');
        await saveChunks(b.store, lease, makeChunks(1, { tag: 's' }));

        const found = await b.store.lookupEmbeddings(documentId, MODEL, ['a-hash-0', 'a-hash-2', 'b-hash-0', 'm-hash-0', 's-hash-0', 'nope']);
        // keyed by content hash and context key (none: embedded without context)
        assert.deepEqual([...found.keys()].map(hashOf).sort(), ['a-hash-0', 'a-hash-2', 'b-hash-0']);
        const close = (literal: string | undefined, expected: number[]) =>
          assert.ok(parseVector(literal ?? '[]').every((x, i) => Math.abs(x - expected[i]) < 1e-6) && expected.length === 3, `${literal} vs ${expected}`);
        close(found.get(reuseKey('a-hash-2', null))?.embedding, [1, 0.3, 0]);
        close(found.get(reuseKey('b-hash-0', null))?.embedding, [1, 0.4, 0]);
        assert.deepEqual([...(await b.store.lookupEmbeddings(documentId, 'other-model', ['a-hash-0', 'm-hash-0'])).keys()].map(hashOf), ['m-hash-0']);
        const otherDoc = await b.store.lookupEmbeddings(docId('lookup-none'), MODEL, ['a-hash-0', 'b-hash-0']);
        assert.equal(otherDoc.size, 0);
        await b.store.cancelJob(lease.jobId);
      });
    });

    describe('rag_match_chunks', () => {
      it('ranks by cosine similarity, filters by document and version, and returns at most k', async () => {
        // Every other test's embeddings lie in the positive x-y quadrant: for this query they score below zero.
        const m1 = docId('match');
        const m2 = docId('match');
        const vectors = { m1: [[-1, -1, 2], [-1, -1, 4], [0, -1, 2]], m1v2: [[-1, -1, 1.8]], m2: [[-1, -1.2, 2]] };
        const literals = (vs: number[][]) => vs.map((v) => toVectorLiteral(v));
        await ingest(b.store, { documentId: m1, title: 'Match title', chunks: makeChunks(3, { tag: 'm1' }), embeddings: literals(vectors.m1) });
        await ingest(b.store, { documentId: m1, version: '2', chunks: makeChunks(1, { tag: 'm1v2' }), embeddings: literals(vectors.m1v2) });
        await ingest(b.store, { documentId: m2, chunks: makeChunks(1, { tag: 'm2' }), embeddings: literals(vectors.m2) });
        const q = [-1, -1, 2];
        const query = toVectorLiteral(q);
        const cosine = (a: number[], c: number[]) => a.reduce((n, x, i) => n + x * c[i], 0) / (Math.hypot(...a) * Math.hypot(...c));
        const key = (r: { document_id: string; version: string; chunk_index: number }) =>
          `${r.document_id === m1 ? 'm1' : r.document_id === m2 ? 'm2' : r.document_id}/${r.version}/${r.chunk_index}`;

        const top = await b.store.matchChunks(query, 3);
        assert.deepEqual(top.map(key), ['m1/1/0', 'm1/2/0', 'm2/1/0']);
        assert.deepEqual(
          top.map((r) => r.score.toFixed(6)),
          [vectors.m1[0], vectors.m1v2[0], vectors.m2[0]].map((v) => cosine(q, v).toFixed(6)),
        );
        assert.deepEqual(
          [top[0].title, top[0].content, top[0].start_ms, top[0].end_ms, top[0].speakers, top[0].segment_seq_start, top[0].segment_seq_end, top[2].title],
          ['Match title', 'm1 chunk 0', 0, 999, ['Ana'], 1, 2, null],
        );
        assert.deepEqual((await b.store.matchChunks(query, 10, m1)).map(key), ['m1/1/0', 'm1/2/0', 'm1/1/1', 'm1/1/2']);
        assert.deepEqual((await b.store.matchChunks(query, 10, m1, '1')).map(key), ['m1/1/0', 'm1/1/1', 'm1/1/2']);
        assert.deepEqual((await b.store.matchChunks(query, 2, m1, '1')).map(key), ['m1/1/0', 'm1/1/1']);
        assert.deepEqual((await b.store.matchChunks(query, 5, m2, '2')).map(key), []);
        assert.deepEqual((await b.store.matchChunks(toVectorLiteral([0, -1, 2]), 1, m1)).map(key), ['m1/1/2'], 'another query, another best match');
      });

      it('publish modes: a first ingestion writes in place but stays invisible until complete; a re-ingestion is staged', async () => {
        const documentId = docId('modes');
        const query = toVectorLiteral([-3, -3, 1]);
        const mode = async (jobId: string) =>
          (await b.sql.query<{ publish_mode: string }>('select publish_mode from rag_ingestion_queue where id = $1', [jobId]))[0].publish_mode;

        const first = await enqueueAndClaim(b.store, 'w1', { documentId });
        await b.store.startJob(first.lease, 2, 2, 'sig');
        assert.equal(await mode(first.lease.jobId), 'direct');
        await saveChunks(b.store, first.lease, makeChunks(2, { tag: 'v1' }), [toVectorLiteral([-3, -3, 1]), toVectorLiteral([-3, -3, 2])]);
        assert.deepEqual(await b.store.matchChunks(query, 5, documentId), [], 'saved but unpublished: not searchable');
        assert.equal(await stagingCount(b.sql, first.lease.jobId), 2, 'counted as unpublished');
        await b.store.completeJob(first.lease);
        assert.deepEqual((await b.store.matchChunks(query, 5, documentId)).map((r) => r.content), ['v1 chunk 0', 'v1 chunk 1']);

        const again = await enqueueAndClaim(b.store, 'w1', { documentId });
        await b.store.startJob(again.lease, 2, 1, 'sig2');
        assert.equal(await mode(again.lease.jobId), 'staged');
        await saveChunks(b.store, again.lease, makeChunks(1, { tag: 'v1b' }), [toVectorLiteral([-3, -3, 1])]);
        assert.deepEqual((await b.store.matchChunks(query, 5, documentId)).map((r) => r.content), ['v1 chunk 0', 'v1 chunk 1'], 'old chunks until the swap');
        await b.store.completeJob(again.lease);
        assert.deepEqual((await b.store.matchChunks(query, 5, documentId)).map((r) => r.content), ['v1b chunk 0']);

        const cancelled = await enqueueAndClaim(b.store, 'w1', { documentId: docId('modes-cancel') });
        await b.store.startJob(cancelled.lease, 2, 2, 'sig');
        await saveChunks(b.store, cancelled.lease, makeChunks(1, { tag: 'c' }));
        assert.equal(await b.store.cancelJob(cancelled.lease.jobId), 'cancelled');
        assert.equal(await stagingCount(b.sql, cancelled.lease.jobId), 0, 'direct-mode chunks of a cancelled job are removed');
        const left = await b.sql.query('select 1 from rag_chunks where job_id = $1', [cancelled.lease.jobId]);
        assert.equal(left.length, 0);
      });
    });
  });
}
