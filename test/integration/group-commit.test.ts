/**
 * rag_start_jobs and rag_complete_jobs (several jobs' transitions in one statement) and the GroupCommit on top of
 * them, on PostgreSQL and PGlite: each job fenced on its own, all or nothing per call, and through GroupCommit a
 * job whose lease was lost fails alone while the others of its call go through.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { GroupCommit } from '../../src/main/coordinator/group-commit.ts';
import type { JobCompletion, JobStart, StartedJob } from '../../src/main/stores/queue-store.ts';
import { LeaseLostError } from '../../src/shared/errors.ts';
import { type Backend, BACKENDS, docId, enqueueAndClaim, ingest, makeChunks, noProgress, openBackend, parkOtherJobs, embeddingsFor, MODEL } from '../support/queue-fixtures.ts';

for (const kind of BACKENDS) {
  describe(`grouped starts and completions (${kind})`, () => {
    let b: Backend;
    before(async () => {
      b = await openBackend(kind);
    });
    after(() => b.close());
    beforeEach(() => parkOtherJobs(b.sql));

    const start = (lease: JobStart['lease'], signature = 'sig'): JobStart => ({ lease, segmentsTotal: 4, chunksTotal: null, chunkingSignature: signature });
    const queueRow = (id: string) =>
      b.sql.query<{ status: string; publish_mode: string | null; segments_total: number; chunking_signature: string | null }>(
        'select status, publish_mode, segments_total, chunking_signature from rag_ingestion_queue where id = $1',
        [id],
      );

    it('starts several jobs in one call; reusable only for a document with a published version', async () => {
      const tag = docId('published');
      await ingest(b.store, { documentId: tag, version: 'v1', chunks: makeChunks(1, { tag: 'pub' }) });
      const fresh = await enqueueAndClaim(b.store, 'w-group', { documentId: docId('fresh') });
      const again = await enqueueAndClaim(b.store, 'w-group', { documentId: tag, version: 'v2' });
      const started = await b.store.startJobs('w-group', [start(fresh.lease), start(again.lease)]);
      assert.deepEqual(started.get(fresh.job.id), { resumeFrom: 0, reusable: false });
      assert.deepEqual(started.get(again.job.id), { resumeFrom: 0, reusable: true });
      const [f] = await queueRow(fresh.job.id);
      assert.equal(f.publish_mode, 'direct');
      assert.equal(f.segments_total, 4);
      assert.equal(f.chunking_signature, 'sig');
    });

    it('a restarted job resumes after what it saved under the same signature, and discards it under another', async () => {
      const { job, lease } = await enqueueAndClaim(b.store, 'w-group', { documentId: docId('resume') });
      await b.store.startJobs('w-group', [start(lease)]);
      const chunks = makeChunks(2, { tag: 'resume' });
      await b.store.saveChunks(lease, MODEL, chunks, embeddingsFor(chunks), noProgress);
      assert.deepEqual((await b.store.startJobs('w-group', [start(lease)])).get(job.id), { resumeFrom: 2, reusable: false });
      assert.deepEqual((await b.store.startJobs('w-group', [start(lease, 'other')])).get(job.id), { resumeFrom: 0, reusable: false });
      const [{ n }] = await b.sql.query<{ n: number }>('select count(*)::int as n from rag_chunks where job_id = $1', [job.id]);
      assert.equal(n, 0);
    });

    it('completes several jobs in one call, each with its own count', async () => {
      const docs1 = [docId('c-one'), docId('c-two')];
      const one = await enqueueAndClaim(b.store, 'w-group', { documentId: docs1[0] });
      const two = await enqueueAndClaim(b.store, 'w-group', { documentId: docs1[1] });
      await b.store.startJobs('w-group', [start(one.lease), start(two.lease)]);
      const c1 = makeChunks(3, { tag: 'c-one' });
      const c2 = makeChunks(1, { tag: 'c-two' });
      await b.store.saveChunks(one.lease, MODEL, c1, embeddingsFor(c1), noProgress);
      await b.store.saveChunks(two.lease, MODEL, c2, embeddingsFor(c2), noProgress);
      const done = await b.store.completeJobs('w-group', [
        { lease: one.lease, chunksTotal: 3 },
        { lease: two.lease, chunksTotal: 1 },
      ]);
      assert.equal(done.get(one.job.id), 3);
      assert.equal(done.get(two.job.id), 1);
      assert.equal((await queueRow(one.job.id))[0].status, 'complete');
      const docs = await b.sql.query<{ document_id: string; chunk_count: number }>(
        'select document_id, chunk_count from rag_documents where document_id = any($1::text[]) order by chunk_count',
        [docs1],
      );
      assert.deepEqual(docs.map((d) => d.chunk_count), [1, 3]);
    });

    it('one lost lease fails the whole call and keeps nothing of it; through GroupCommit only that job fails', async () => {
      const ok = await enqueueAndClaim(b.store, 'w-group', { documentId: docId('g-ok') });
      const lost = await enqueueAndClaim(b.store, 'w-group', { documentId: docId('g-lost') });
      const other = await enqueueAndClaim(b.store, 'w-group', { documentId: docId('g-other') });
      await b.sql.query('update rag_ingestion_queue set lease_token = gen_random_uuid() where id = $1', [lost.job.id]);
      await assert.rejects(b.store.startJobs('w-group', [start(ok.lease), start(lost.lease), start(other.lease)]), LeaseLostError);
      assert.equal((await queueRow(ok.job.id))[0].publish_mode, null, 'nothing of the failed call is kept');

      const manyCalls: number[] = [];
      const starts = new GroupCommit<JobStart, StartedJob>({
        what: 'rag_start_jobs',
        many: (items) => {
          manyCalls.push(items.length);
          return b.store.startJobs('w-group', items);
        },
        one: async (s) => ({ resumeFrom: await b.store.startJob(s.lease, s.segmentsTotal, s.chunksTotal, s.chunkingSignature), reusable: true }),
        key: (s) => s.lease.jobId,
      });
      // Submitted together: the first goes out alone, the other two wait for it and go out in one call.
      const results = await Promise.allSettled([starts.submit(start(ok.lease)), starts.submit(start(lost.lease)), starts.submit(start(other.lease))]);
      assert.deepEqual(manyCalls, [1, 2]);
      assert.equal(results[0].status, 'fulfilled');
      assert.equal(results[1].status, 'rejected');
      assert.ok((results[1] as PromiseRejectedResult).reason instanceof LeaseLostError);
      assert.deepEqual((results[2] as PromiseFulfilledResult<StartedJob>).value, { resumeFrom: 0, reusable: true });
      assert.equal(starts.stats.retriedAlone, 2);
      assert.equal((await queueRow(other.job.id))[0].publish_mode, 'direct');

      const completions = new GroupCommit<JobCompletion, number>({
        what: 'rag_complete_jobs',
        many: (items) => b.store.completeJobs('w-group', items),
        one: (c) => b.store.completeJob(c.lease, c.chunksTotal),
        key: (c) => c.lease.jobId,
      });
      // A count that does not match what was saved fails that job only.
      const [a, bad] = await Promise.allSettled([completions.submit({ lease: ok.lease, chunksTotal: 0 }), completions.submit({ lease: other.lease, chunksTotal: 5 })]);
      assert.equal(a.status, 'fulfilled');
      assert.equal(bad.status, 'rejected');
      assert.match(String((bad as PromiseRejectedResult).reason), /has 0 of 5 chunks saved/);
      assert.equal((await queueRow(ok.job.id))[0].status, 'complete');
      assert.equal((await queueRow(other.job.id))[0].status, 'processing');
    });
  });
}
