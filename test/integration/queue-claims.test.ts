/**
 * The queue's SQL functions around ownership of a job: enqueue (and the dedupe trigger), claim, leases and
 * fencing, start, release and NOTIFY. Runs against PostgreSQL and in-memory PGlite alike.
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createPgClient } from '../../src/main/stores/pg-client.ts';
import { LeaseLostError } from '../../src/main/stores/sql-client.ts';
import { QueueStore } from '../../src/main/stores/queue-store.ts';
import {
  type Backend,
  BACKENDS,
  DEFAULT_MAX_ATTEMPTS,
  chunkRows,
  claimExactly,
  collector,
  createJobsInEveryState,
  docId,
  enqueueAndClaim,
  expireLease,
  leaseOf,
  makeChunks,
  makeDue,
  openBackend,
  parkOtherJobs,
  saveChunks,
  secondsFromNow,
  stagingCount,
} from '../support/queue-fixtures.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

for (const kind of BACKENDS) {
  describe(`queue functions: enqueue, claim, leases, release, notify (${kind})`, () => {
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

    const jobsOf = (documentId: string) =>
      b.sql.query<{ id: string; status: string; payload: { text: string } }>(
        'select id, status, payload from rag_ingestion_queue where document_id = $1 order by submitted_at, id',
        [documentId],
      );

    describe('rag_enqueue and the dedupe trigger', () => {
      it('returns the id of a new queued job holding the request', async () => {
        const fx = await createJobsInEveryState(b.store, 'enq-new');
        const documentId = docId('enq-new');
        const id = await b.store.enqueue({
          documentId, version: '2', title: 'T', format: 'vtt', payload: { text: 'a' }, metadata: { k: 1 }, priority: 3, maxAttempts: 7,
        });
        assert.match(id, UUID);
        const job = await b.store.getJob(id);
        assert.ok(job);
        assert.equal(job.status, 'queued');
        assert.deepEqual(
          [job.document_id, job.version, job.title, job.format, job.payload, job.metadata, job.priority, job.max_attempts, job.attempts],
          [documentId, '2', 'T', 'vtt', { text: 'a' }, { k: 1 }, 3, 7, 0],
        );
        assert.ok((await secondsFromNow(b.sql, job.run_at)) <= 0, 'due at once');
        await fx.assertUntouched();
      });

      it('a second enqueue of a queued document version updates that job (latest wins) instead of adding one', async () => {
        const fx = await createJobsInEveryState(b.store, 'enq-twice');
        const documentId = docId('enq-twice');
        const first = await b.store.enqueue({ documentId, title: 'old', payload: { text: 'old' }, priority: 1 });
        const second = await b.store.enqueue({ documentId, title: 'new', format: 'srt', payload: { text: 'new' }, metadata: { m: 2 }, priority: 9 });
        assert.equal(second, first);
        const rows = await jobsOf(documentId);
        assert.equal(rows.length, 1);
        const job = await b.store.getJob(first);
        assert.deepEqual([job?.title, job?.format, job?.payload, job?.metadata, job?.priority], ['new', 'srt', { text: 'new' }, { m: 2 }, 9]);
        // Another version of the same document is a job of its own.
        const otherVersion = await b.store.enqueue({ documentId, version: '2', payload: { text: 'v2' } });
        assert.notEqual(otherVersion, first);
        await fx.assertUntouched();
      });

      it('a plain INSERT of a queued document version is folded into the queued job', async () => {
        const fx = await createJobsInEveryState(b.store, 'enq-insert');
        const documentId = docId('enq-insert');
        const id = await b.store.enqueue({ documentId, payload: { text: 'first' } });
        const inserted = await b.sql.query(
          `insert into rag_ingestion_queue (document_id, version, title, payload) values ($1, '1', 'by sql', '{"text":"second"}') returning id`,
          [documentId],
        );
        assert.equal(inserted.length, 0, 'the insert is skipped');
        const rows = await jobsOf(documentId);
        assert.deepEqual(rows.map((r) => [r.id, r.status, r.payload.text]), [[id, 'queued', 'second']]);
        assert.equal((await b.store.getJob(id))?.title, 'by sql');
        await fx.assertUntouched();
      });

      it('once the queued job is processing, enqueueing the version again creates a new queued job', async () => {
        const fx = await createJobsInEveryState(b.store, 'enq-busy');
        const documentId = docId('enq-busy');
        const { job } = await enqueueAndClaim(b.store, 'w1', { documentId });
        const again = await b.store.enqueue({ documentId, payload: { text: 'newer' } });
        assert.notEqual(again, job.id);
        const rows = await jobsOf(documentId);
        assert.deepEqual(rows.map((r) => [r.id, r.status, r.payload.text]), [[job.id, 'processing', 'hello'], [again, 'queued', 'newer']]);
        // And the new queued job dedupes further enqueues in its turn.
        assert.equal(await b.store.enqueue({ documentId, payload: { text: 'newest' } }), again);
        assert.equal((await jobsOf(documentId)).length, 2);
        await fx.assertUntouched();
      });

      if (kind === 'postgres') {
        it('concurrent enqueues of one new document version all return the one job', async () => {
          const other = createPgClient({ connectionString: b.url as string, maxConnections: 6 });
          try {
            const stores = [b.store, new QueueStore(other)];
            await Promise.all(Array.from({ length: 12 }, (_, i) => stores[i % 2].counts())); // open the connections
            for (let round = 0; round < 5; round++) {
              const documentId = docId('enq-race');
              const results = await Promise.allSettled(
                Array.from({ length: 12 }, (_, i) => stores[i % 2].enqueue({ documentId, payload: { text: `p${i}` } })),
              );
              const errors = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
              assert.deepEqual(errors, [], `round ${round}: every enqueue succeeds`);
              assert.equal(new Set(results.map((r) => (r as PromiseFulfilledResult<string>).value)).size, 1);
              assert.equal((await jobsOf(documentId)).length, 1);
            }
          } finally {
            await other.close();
          }
        });
      }
    });

    describe('rag_claim_jobs', () => {
      it('claims up to the limit: processing, worker, a fresh lease token and expiry, one attempt counted', async () => {
        const fx = await createJobsInEveryState(b.store, 'claim');
        const ids = [];
        for (let i = 0; i < 3; i++) ids.push(await b.store.enqueue({ documentId: docId('claim'), payload: { text: `${i}` } }));
        const claimed = await b.store.claimJobs('worker-a', 2, 30, DEFAULT_MAX_ATTEMPTS);
        assert.equal(claimed.length, 2);
        const tokens = new Set<string>();
        for (const job of claimed) {
          assert.ok(ids.includes(job.id));
          assert.equal(job.status, 'processing');
          assert.equal(job.worker_id, 'worker-a');
          assert.match(job.lease_token ?? '', UUID);
          tokens.add(job.lease_token as string);
          assert.equal(job.attempts, 1);
          assert.ok(job.started_at);
          const expiresIn = await secondsFromNow(b.sql, job.lease_expires_at);
          assert.ok(expiresIn > 25 && expiresIn <= 30, `lease expires in ${expiresIn}s, expected ~30s`);
          // The returned row is the stored row; its payload comes back as JSON text (parsed in the chunking thread).
          const stored = (await b.store.getJob(job.id)) as unknown as Record<string, unknown>;
          const { payload, ...columns } = job;
          assert.deepEqual(JSON.parse(payload as string), stored.payload);
          for (const [column, value] of Object.entries(columns)) assert.deepEqual(stored[column], value, column);
        }
        assert.equal(tokens.size, 2, 'each claim gets its own token');
        const rest = await b.store.claimJobs('worker-b', 5, 30, DEFAULT_MAX_ATTEMPTS);
        assert.deepEqual(rest.map((j) => j.id), ids.filter((id) => !claimed.some((c) => c.id === id)));
        assert.deepEqual(await b.store.claimJobs('worker-b', 5, 30, DEFAULT_MAX_ATTEMPTS), []);
        await fx.assertUntouched();
      });

      it('claims higher priority first, then the earliest run_at', async () => {
        const fx = await createJobsInEveryState(b.store, 'prio');
        const low = await b.store.enqueue({ documentId: docId('prio-low'), payload: {}, priority: 0 });
        const high = await b.store.enqueue({ documentId: docId('prio-high'), payload: {}, priority: 10 });
        const midLate = await b.store.enqueue({ documentId: docId('prio-mid-late'), payload: {}, priority: 5 });
        const midEarly = await b.store.enqueue({ documentId: docId('prio-mid-early'), payload: {}, priority: 5 });
        await b.sql.query(`update rag_ingestion_queue set run_at = now() - interval '1 minute' where id = $1`, [midEarly]);
        const order: string[] = [];
        for (let i = 0; i < 4; i++) order.push(...(await b.store.claimJobs('w', 1, 30, DEFAULT_MAX_ATTEMPTS)).map((j) => j.id));
        assert.deepEqual(order, [high, midEarly, midLate, low]);
        await fx.assertUntouched();
      });

      it('does not claim a job whose run_at is in the future, until that time comes', async () => {
        const fx = await createJobsInEveryState(b.store, 'later');
        const id = await b.store.enqueue({ documentId: docId('later'), payload: {} });
        await b.sql.query(`update rag_ingestion_queue set run_at = now() + interval '10 minutes' where id = $1`, [id]);
        assert.deepEqual(await b.store.claimJobs('w', 10, 30, DEFAULT_MAX_ATTEMPTS), []);
        assert.equal((await b.store.getJob(id))?.attempts, 0);
        await makeDue(b.sql, id);
        await claimExactly(b.store, 'w', [id]);
        await fx.assertUntouched();
      });

      it('never claims a second job of a document version while one is processing', async () => {
        const fx = await createJobsInEveryState(b.store, 'one-version');
        const documentId = docId('one-version');
        const { lease } = await enqueueAndClaim(b.store, 'w1', { documentId });
        const newer = await b.store.enqueue({ documentId, payload: { text: 'newer' } });
        const otherVersion = await b.store.enqueue({ documentId, version: '2', payload: {} });
        const claimed = await b.store.claimJobs('w2', 10, 30, DEFAULT_MAX_ATTEMPTS);
        assert.deepEqual(claimed.map((j) => j.id), [otherVersion], 'only the other version is claimable');
        await b.store.startJob(lease, 1, 0, 'sig');
        await b.store.completeJob(lease);
        await claimExactly(b.store, 'w2', [newer]);
        await fx.assertUntouched();
      });

      it('never claims two jobs of a document version at once when one of them has an expired lease', async () => {
        const documentId = docId('one-version-expired');
        const { job: stale } = await enqueueAndClaim(b.store, 'dead-worker', { documentId });
        const newer = await b.store.enqueue({ documentId, payload: { text: 'newer' } });
        await expireLease(b.sql, stale.id);
        const claimed = await b.store.claimJobs('w2', 10, 30, DEFAULT_MAX_ATTEMPTS);
        const processing = (await jobsOf(documentId)).filter((j) => j.status === 'processing');
        // Clean up for the next tests whatever the outcome.
        for (const j of claimed) await b.store.cancelJob(j.id);
        await b.store.cancelJob(newer);
        assert.equal(claimed.length, 1, `claimed ${claimed.length} jobs of one document version`);
        assert.equal(processing.length, 1);
      });

      if (kind === 'postgres') {
        it('two connection pools claiming concurrently never get the same job, and together claim all', async () => {
          const other = createPgClient({ connectionString: b.url as string, maxConnections: 6 });
          try {
            const stores = [b.store, new QueueStore(other)];
            for (let round = 0; round < 3; round++) {
              const ids = new Set<string>();
              for (let i = 0; i < 50; i++) ids.add(await b.store.enqueue({ documentId: docId(`race-${round}`), payload: {} }));
              const claimedIds: string[] = [];
              for (let wave = 0; wave < 20 && claimedIds.length < ids.size; wave++) {
                const batches = await Promise.all(
                  Array.from({ length: 10 }, (_, i) => stores[i % 2].claimJobs(`racer-${i}`, 3, 30, DEFAULT_MAX_ATTEMPTS)),
                );
                for (const batch of batches) claimedIds.push(...batch.map((j) => j.id));
              }
              assert.equal(new Set(claimedIds).size, claimedIds.length, `round ${round}: a job was claimed twice`);
              assert.deepEqual([...claimedIds].sort(), [...ids].sort(), `round ${round}: every job claimed once`);
            }
          } finally {
            await other.close();
          }
        });
      }
    });

    describe('expired leases and fencing', () => {
      it('an expired job is claimable by another worker with a new token; the old worker is fenced off', async () => {
        const fx = await createJobsInEveryState(b.store, 'expired');
        const documentId = docId('expired');
        const { lease: old } = await enqueueAndClaim(b.store, 'dead-worker', { documentId });
        await b.store.startJob(old, 4, 3, 'sig');
        await saveChunks(b.store, old, makeChunks(1));
        // Not yet expired: nobody else can take it.
        assert.deepEqual(await b.store.claimJobs('w2', 5, 30, DEFAULT_MAX_ATTEMPTS), []);
        await expireLease(b.sql, old.jobId);
        const [taken] = await claimExactly(b.store, 'w2', [old.jobId]);
        assert.equal(taken.worker_id, 'w2');
        assert.notEqual(taken.lease_token, old.leaseToken);
        assert.equal(taken.attempts, 2);
        assert.ok((await secondsFromNow(b.sql, taken.lease_expires_at)) > 25);
        assert.deepEqual(
          (taken.attempt_history as { outcome: string; worker_id: string; attempt: number }[]).map((h) => [h.outcome, h.worker_id, h.attempt]),
          [['lease_expired', 'dead-worker', 1]],
        );
        const after = await b.store.getJob(old.jobId);

        await assert.rejects(saveChunks(b.store, old, makeChunks(1, { from: 1 })), LeaseLostError);
        await assert.rejects(b.store.completeJob(old), LeaseLostError);
        await assert.rejects(b.store.startJob(old, 4, 3, 'sig'), LeaseLostError);
        await assert.rejects(b.store.failJob(old, 'x', 'retryable', 1000, DEFAULT_MAX_ATTEMPTS), LeaseLostError);
        assert.deepEqual(await b.store.extendLeases('dead-worker', [old], 30), [{ jobId: old.jobId, held: false, status: 'processing' }]);
        assert.equal(await b.store.releaseJobs('dead-worker', [old], 'shutdown'), 0);
        assert.deepEqual(await b.store.getJob(old.jobId), after, 'the fenced writes changed nothing');
        assert.equal(await stagingCount(b.sql, old.jobId), 1);

        // The new holder resumes after the chunk the dead worker saved, and finishes.
        const lease = leaseOf(taken);
        assert.equal(await b.store.startJob(lease, 4, 3, 'sig'), 1);
        await saveChunks(b.store, lease, makeChunks(2, { from: 1 }));
        assert.equal(await b.store.completeJob(lease), 3);
        assert.equal((await chunkRows(b.sql, documentId)).length, 3);
        await fx.assertUntouched();
      });

      it('an expired job that has used all its attempts ends failed when someone claims', async () => {
        const fx = await createJobsInEveryState(b.store, 'exhausted');
        // max_attempts on the job wins over the worker's default.
        const { lease: one } = await enqueueAndClaim(b.store, 'dead-1', { documentId: docId('exhausted-col'), maxAttempts: 1 });
        await b.store.startJob(one, 2, 2, 'sig');
        await saveChunks(b.store, one, makeChunks(1));
        await expireLease(b.sql, one.jobId);
        assert.deepEqual(await b.store.claimJobs('w2', 5, 30, DEFAULT_MAX_ATTEMPTS), []);
        const failed = await b.store.getJob(one.jobId);
        assert.equal(failed?.status, 'failed');
        assert.equal(failed?.last_error_category, 'worker_lost');
        assert.match(failed?.error_detail ?? '', /dead-1/);
        assert.match(failed?.error_detail ?? '', /after 1 attempts/);
        assert.equal(failed?.lease_token, null);
        assert.ok(failed?.completed_at);

        // Without max_attempts on the job, the claimer's default applies: 2 attempts here.
        const { lease: first } = await enqueueAndClaim(b.store, 'dead-a', { documentId: docId('exhausted-default') });
        await expireLease(b.sql, first.jobId);
        const [second] = await b.store.claimJobs('dead-b', 5, 30, 2);
        assert.equal(second?.id, first.jobId);
        assert.equal(second.attempts, 2);
        await expireLease(b.sql, first.jobId);
        assert.deepEqual(await b.store.claimJobs('w3', 5, 30, 2), []);
        const gaveUp = await b.store.getJob(first.jobId);
        assert.equal(gaveUp?.status, 'failed');
        assert.match(gaveUp?.error_detail ?? '', /attempt 2 of 2; giving up after 2 attempts/);
        assert.deepEqual(
          (gaveUp?.attempt_history as { outcome: string; worker_id: string }[]).map((h) => [h.outcome, h.worker_id]),
          [['lease_expired', 'dead-a'], ['lease_expired', 'dead-b']],
        );
        await fx.assertUntouched();
      });

      it('extendLeases extends the leases this worker holds and reports the others as not held', async () => {
        const fx = await createJobsInEveryState(b.store, 'extend');
        const { job, lease } = await enqueueAndClaim(b.store, 'w1', { documentId: docId('extend') });
        await b.sql.query(`update rag_ingestion_queue set lease_expires_at = now() + interval '5 seconds' where id = $1`, [job.id]);
        const forged = { ...lease, leaseToken: '00000000-0000-4000-8000-000000000000' };
        const missing = { ...lease, jobId: '00000000-0000-4000-8000-000000000001' };
        const result = await b.store.extendLeases('w1', [lease, fx.processingLease, missing], 120);
        const byId = (x: { jobId: string }, y: { jobId: string }) => x.jobId.localeCompare(y.jobId);
        assert.deepEqual(result.sort(byId), [
          { jobId: lease.jobId, held: true, status: 'processing' },
          { jobId: fx.processing, held: false, status: 'processing' },
          { jobId: missing.jobId, held: false, status: 'missing' },
        ].sort(byId));
        assert.ok((await secondsFromNow(b.sql, (await b.store.getJob(job.id))?.lease_expires_at ?? null)) > 115);
        assert.deepEqual(await b.store.extendLeases('w1', [forged], 120), [{ jobId: job.id, held: false, status: 'processing' }]);
        await fx.assertUntouched();
      });
    });

    describe('rag_start_job', () => {
      it('resumes after the saved chunks when the signature is unchanged; a new signature starts over', async () => {
        const fx = await createJobsInEveryState(b.store, 'start');
        const { lease } = await enqueueAndClaim(b.store, 'w1', { documentId: docId('start') });
        assert.equal(await b.store.startJob(lease, 10, 4, 'sig-a'), 0);
        await saveChunks(b.store, lease, makeChunks(2));
        assert.equal(await b.store.startJob(lease, 11, 4, 'sig-a'), 2);
        let job = await b.store.getJob(lease.jobId);
        assert.deepEqual([job?.segments_total, job?.chunks_total, job?.chunks_done, job?.segments_done], [11, 4, 2, 4]);
        assert.equal(await stagingCount(b.sql, lease.jobId), 2);

        assert.equal(await b.store.startJob(lease, 12, 5, 'sig-b'), 0);
        job = await b.store.getJob(lease.jobId);
        assert.deepEqual(
          [job?.segments_total, job?.chunks_total, job?.chunks_done, job?.segments_done, job?.tokens_embedded],
          [12, 5, 0, 0, 0],
        );
        assert.equal(await stagingCount(b.sql, lease.jobId), 0);
        await saveChunks(b.store, lease, makeChunks(5, { tag: 'b' }));
        assert.equal(await b.store.completeJob(lease), 5);
        await fx.assertUntouched();
      });
    });

    describe('rag_release_jobs', () => {
      it('puts the job back to queued without using an attempt, keeping the saved chunks', async () => {
        const fx = await createJobsInEveryState(b.store, 'release');
        const { lease } = await enqueueAndClaim(b.store, 'w1', { documentId: docId('release') });
        await b.store.startJob(lease, 6, 3, 'sig');
        await saveChunks(b.store, lease, makeChunks(2));
        assert.equal(await b.store.releaseJobs('w1', [{ ...lease, leaseToken: '00000000-0000-4000-8000-000000000000' }], 'x'), 0);
        assert.equal(await b.store.releaseJobs('w2', [lease], 'x'), 0, 'another worker cannot release it');
        assert.equal(await b.store.releaseJobs('w1', [lease, fx.processingLease], 'shutdown'), 1, 'only its own lease');
        const job = await b.store.getJob(lease.jobId);
        assert.deepEqual(
          [job?.status, job?.attempts, job?.worker_id, job?.lease_token, job?.lease_expires_at, job?.chunks_done],
          ['queued', 0, null, null, null, 2],
        );
        assert.ok((await secondsFromNow(b.sql, job?.run_at ?? null)) <= 0, 'due at once');
        const history = job?.attempt_history as { outcome: string; detail: string }[];
        assert.deepEqual(history.map((h) => [h.outcome, h.detail]), [['released', 'shutdown']]);
        assert.equal(await stagingCount(b.sql, lease.jobId), 2);

        const [again] = await claimExactly(b.store, 'w2', [lease.jobId]);
        assert.equal(again.attempts, 1);
        assert.equal(await b.store.startJob(leaseOf(again), 6, 3, 'sig'), 2);
        await fx.assertUntouched();
      });

      it('releases a job whose document version was enqueued again meanwhile', async () => {
        const documentId = docId('release-requeued');
        const { lease } = await enqueueAndClaim(b.store, 'w1', { documentId });
        const newer = await b.store.enqueue({ documentId, payload: { text: 'newer' } });
        try {
          await b.store.releaseJobs('w1', [lease], 'shutdown');
          const queued = (await jobsOf(documentId)).filter((j) => j.status === 'queued');
          assert.equal(queued.length, 1);
          assert.equal(queued[0].payload.text, 'newer', 'the newer payload wins');
        } finally {
          await b.store.cancelJob(lease.jobId);
          await b.store.cancelJob(newer);
        }
      });
    });

    describe('NOTIFY on rag_ingestion_queue', () => {
      it(`wakes a listener when a job is enqueued${kind === 'pglite' ? ' (in-process)' : ' (another connection)'}`, async () => {
        const events = collector<string>();
        const listener = kind === 'postgres' ? createPgClient({ connectionString: b.url as string, maxConnections: 1 }) : b.sql;
        const stop = await listener.listen('rag_ingestion_queue', (payload) => events.push(payload));
        try {
          // The pg listener reports '' once its LISTEN is in place; PGlite listens once listen() resolves.
          if (kind === 'postgres') await events.next((p) => p === '');
          const id = await b.store.enqueue({ documentId: docId('notify'), payload: {} });
          assert.equal(await events.next((p) => p === id), id);
          // A retry that puts the job back in the queue wakes listeners too.
          const [job] = await claimExactly(b.store, 'w', [id]);
          assert.equal(await b.store.failJob(leaseOf(job), 'x', 'retryable', 1, DEFAULT_MAX_ATTEMPTS), 'queued');
          await events.next((p) => p === id && events.items.filter((x) => x === id).length === 2);
        } finally {
          await stop();
          if (listener !== b.sql) await listener.close();
        }
      });
    });
  });
}
