/**
 * rag_save_chunk_batches and the SaveBatcher on top of it: several jobs' batches in one call, each fenced and
 * checked on its own; on PostgreSQL and PGlite.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { SaveBatcher } from '../../src/main/coordinator/save-batcher.ts';
import { LeaseLostError } from '../../src/shared/errors.ts';
import {
  type Backend,
  BACKENDS,
  chunkRows,
  docId,
  embeddingsFor,
  enqueueAndClaim,
  ingest,
  makeChunks,
  MODEL,
  openBackend,
  parkOtherJobs,
  stagingCount,
} from '../support/queue-fixtures.ts';

const progress = (n: number) => ({ segmentsDone: n * 2, tokensEmbedded: n * 10, chunksReused: 1 });

for (const kind of BACKENDS) {
  describe(`rag_save_chunk_batches (${kind})`, () => {
    let b: Backend;
    before(async () => {
      b = await openBackend(kind);
    });
    after(() => b.close());
    beforeEach(() => parkOtherJobs(b.sql));

    async function started(tag: string, worker = 'w-batch') {
      const { job, lease } = await enqueueAndClaim(b.store, worker, { documentId: docId(tag) });
      await b.store.startJob(lease, 10, null, 'sig');
      return { job, lease };
    }

    it('saves the batches of several jobs in one call, each job its own progress; a lost lease fails only its batch', async () => {
      const one = await started('one');
      const two = await started('two');
      const lost = await started('lost');
      await b.sql.query(`update rag_ingestion_queue set lease_token = gen_random_uuid() where id = $1`, [lost.job.id]);
      const c1 = makeChunks(3, { tag: 'one' });
      const c2 = makeChunks(2, { tag: 'two' });
      const c3 = makeChunks(2, { tag: 'lost' });
      const results = await b.store.saveChunkBatches('w-batch', MODEL, [
        { lease: one.lease, chunks: c1, embeddings: embeddingsFor(c1), progress: progress(3) },
        { lease: lost.lease, chunks: c3, embeddings: embeddingsFor(c3), progress: progress(2) },
        { lease: two.lease, chunks: c2, embeddings: embeddingsFor(c2), progress: progress(2) },
      ]);
      assert.deepEqual(results.get(one.job.id), { chunksDone: 3 });
      assert.deepEqual(results.get(two.job.id), { chunksDone: 2 });
      const l = results.get(lost.job.id);
      assert.ok(l && 'errorCode' in l && l.errorCode === 'RW001', JSON.stringify(l));
      const rows = await b.sql.query<{ id: string; chunks_done: number; segments_done: number; tokens_embedded: string; chunks_reused: number }>(
        'select id, chunks_done, segments_done, tokens_embedded, chunks_reused from rag_ingestion_queue where id = any($1::uuid[]) order by id',
        [[one.job.id, two.job.id, lost.job.id]],
      );
      const by = new Map(rows.map((r) => [r.id, r]));
      assert.equal(Number(by.get(one.job.id)!.chunks_done), 3);
      assert.equal(Number(by.get(one.job.id)!.segments_done), 6);
      assert.equal(Number(by.get(one.job.id)!.tokens_embedded), 30);
      assert.equal(Number(by.get(one.job.id)!.chunks_reused), 1);
      assert.equal(Number(by.get(lost.job.id)!.chunks_done), 0);
      // Embeddings land on the right rows across batches (each content's own vector).
      const stored = await b.sql.query<{ content: string; embedding: string }>(
        'select content, embedding::text from rag_chunks where job_id = any($1::uuid[])',
        [[one.job.id, two.job.id]],
      );
      assert.equal(stored.length, 5);
      for (const r of stored) {
        const [expected] = embeddingsFor([{ content: r.content } as never]);
        assert.deepEqual(JSON.parse(r.embedding).map((x: number) => x.toFixed(5)), JSON.parse(expected).map((x: number) => x.toFixed(5)), r.content);
      }
      assert.equal(await stagingCount(b.sql, lost.job.id), 0);
    });

    it('a resent batch is ignored (chunks_done unchanged); a batch out of order or a job twice is refused alone', async () => {
      const a = await started('resend');
      const c = makeChunks(2, { tag: 'resend' });
      await b.store.saveChunkBatches('w-batch', MODEL, [{ lease: a.lease, chunks: c, embeddings: embeddingsFor(c), progress: progress(2) }]);
      const again = await b.store.saveChunkBatches('w-batch', MODEL, [{ lease: a.lease, chunks: c, embeddings: embeddingsFor(c), progress: progress(2) }]);
      assert.deepEqual(again.get(a.job.id), { chunksDone: 2 });
      const gap = makeChunks(1, { from: 5, tag: 'resend' });
      const other = await started('other');
      const oc = makeChunks(1, { tag: 'other' });
      const r = await b.store.saveChunkBatches('w-batch', MODEL, [
        { lease: a.lease, chunks: gap, embeddings: embeddingsFor(gap), progress: progress(1) },
        { lease: other.lease, chunks: oc, embeddings: embeddingsFor(oc), progress: progress(1) },
      ]);
      const refused = r.get(a.job.id);
      assert.ok(refused && 'errorCode' in refused && refused.errorCode === 'RW002', JSON.stringify(refused));
      assert.deepEqual(r.get(other.job.id), { chunksDone: 1 });
      const twice = await b.store.saveChunkBatches('w-batch', MODEL, [
        { lease: other.lease, chunks: makeChunks(1, { from: 1, tag: 'other' }), embeddings: embeddingsFor(makeChunks(1, { from: 1, tag: 'other' })), progress: progress(1) },
        { lease: other.lease, chunks: makeChunks(1, { from: 2, tag: 'other' }), embeddings: embeddingsFor(makeChunks(1, { from: 2, tag: 'other' })), progress: progress(1) },
      ]);
      assert.ok(twice.get(other.job.id), 'a result for the job');
      assert.equal((await b.store.getJob(other.job.id))!.chunks_done, 2, 'only the first of the two batches was saved');
    });

    it('embeddings that do not line up with the batches refuse the whole call (no chunk gets another chunk\'s vector)', async () => {
      const x = await started('short-a');
      const y = await started('short-b');
      const cx = makeChunks(2, { tag: 'short-a' });
      const cy = makeChunks(2, { tag: 'short-b' });
      await assert.rejects(
        b.store.saveChunkBatches('w-batch', MODEL, [
          { lease: x.lease, chunks: cx, embeddings: embeddingsFor(cx).slice(0, 1), progress: progress(2) },
          { lease: y.lease, chunks: cy, embeddings: embeddingsFor(cy), progress: progress(2) },
        ]),
        /4 chunks but 3 embeddings/,
      );
      assert.equal((await b.store.getJob(x.job.id))!.chunks_done, 0);
      assert.equal((await b.store.getJob(y.job.id))!.chunks_done, 0);
    });

    it('a re-ingestion goes to staging and publishes on completion; a first ingestion writes in place', async () => {
      const doc = docId('reingest');
      await ingest(b.store, { documentId: doc, chunks: makeChunks(2, { tag: 'v1' }) });
      const { job, lease } = await enqueueAndClaim(b.store, 'w-batch', { documentId: doc });
      await b.store.startJob(lease, 10, null, 'sig-2');
      const c = makeChunks(3, { tag: 'v2' });
      const r = await b.store.saveChunkBatches('w-batch', MODEL, [{ lease, chunks: c, embeddings: embeddingsFor(c), progress: progress(3) }]);
      assert.deepEqual(r.get(job.id), { chunksDone: 3 });
      assert.equal((await chunkRows(b.sql, doc)).length, 2, 'the published version is untouched until completion');
      assert.equal(await b.store.completeJob(lease, 3), 3);
      assert.deepEqual((await chunkRows(b.sql, doc)).map((x) => x.content), c.map((x) => x.content));
      assert.equal((await b.store.getJob(job.id))!.chunks_total, 3);
    });

    it('SaveBatcher: saves arriving while a call runs go out together in the next call; a lost lease rejects only its own', async () => {
      const jobs = [];
      for (const t of ['s1', 's2', 's3', 's4']) jobs.push(await started(t));
      await b.sql.query(`update rag_ingestion_queue set lease_token = gen_random_uuid() where id = $1`, [jobs[3].job.id]);
      const saver = new SaveBatcher(b.store, { workerId: 'w-batch', model: MODEL, maxRows: 100 });
      const saves = jobs.map((j, k) => {
        const c = makeChunks(2, { tag: `s${k}` });
        return saver.save(j.lease, c, embeddingsFor(c), progress(2)).then(
          (n) => ({ ok: n }),
          (e: unknown) => ({ error: e }),
        );
      });
      const results = await Promise.all(saves);
      assert.deepEqual(results.slice(0, 3), [{ ok: 2 }, { ok: 2 }, { ok: 2 }]);
      assert.ok((results[3] as { error: unknown }).error instanceof LeaseLostError);
      assert.equal(saver.stats.calls, 2, 'the first save alone, then the three that waited, in one call');
    });
  });
}
