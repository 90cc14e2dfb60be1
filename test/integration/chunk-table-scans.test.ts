/**
 * The per-job SQL never scans all of rag_chunks or rag_documents: a backfill into a table of millions of chunks
 * must cost each job its own document version's rows. Checked on PostgreSQL with sequential scans disabled for
 * the transaction (so any statement that could use an index does) and the transaction's own scan counters
 * (pg_stat_xact_user_tables, across the statement): a statement with no usable index still scans sequentially
 * and is counted.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { docId, embeddingsFor, enqueueAndClaim, makeChunks, MODEL, openBackend, parkOtherJobs, saveChunks, type Backend } from '../support/queue-fixtures.ts';

let b: Backend;
let c: pg.Client;

before(async () => {
  b = await openBackend('postgres');
  c = new pg.Client({ connectionString: b.url });
  await c.connect();
  // Other documents' published chunks (the table a job's statements must not scan).
  await c.query(`insert into rag_chunks (document_id, version, chunk_index, content, token_count, embedding, embedding_model, content_hash, job_id)
                 select 'other-' || (g / 10), '1', g % 10, 'text ' || g, 2, '[1,0,0]', $1, md5(g::text), gen_random_uuid()
                   from generate_series(1, 3000) g`, [MODEL]);
  await c.query(`insert into rag_documents (document_id, version, chunk_count, embedding_model, job_id)
                 select distinct on (document_id) document_id, '1', 10, $1, job_id from rag_chunks where document_id like 'other-%'`, [MODEL]);
  await c.query('analyze rag_chunks; analyze rag_documents');
});

after(async () => {
  await c?.end();
  await b?.close();
});

/** Sequential scans of rag_chunks and rag_documents made by `statement` (in a transaction, seqscan disabled). */
async function seqScansOf(statement: string, params: unknown[]): Promise<Record<string, number>> {
  // The counters include this session's earlier transactions until they are flushed (never inside a
  // transaction block), so the difference across the statement is what it did.
  const counters = async () => {
    const rows = await c.query<{ relname: string; seq_scan: string }>(
      `select relname, seq_scan from pg_stat_xact_user_tables where relname in ('rag_chunks', 'rag_documents') order by relname`,
    );
    return new Map(rows.rows.map((r) => [r.relname, Number(r.seq_scan)]));
  };
  await c.query('begin');
  try {
    // Bitmap heap scans are counted as seq_scan too: plain index scans only, so the counter means what it says.
    await c.query('set local enable_seqscan = off; set local enable_bitmapscan = off');
    const before = await counters();
    await c.query(statement, params);
    const after = await counters();
    return Object.fromEntries([...after].map(([name, n]) => [name, n - (before.get(name) ?? 0)]));
  } finally {
    await c.query('rollback');
  }
}

async function jobWithChunks(tag: string) {
  await parkOtherJobs(b.sql);
  const { job, lease } = await enqueueAndClaim(b.store, 'w-scan', { documentId: docId(tag) });
  await b.store.startJob(lease, 4, null, 'sig');
  const chunks = makeChunks(4, { tag });
  await saveChunks(b.store, lease, chunks, embeddingsFor(chunks));
  return { job, lease };
}

test('rag_complete_job finds the job\'s chunks through the document version, not by scanning rag_chunks', async () => {
  const { job, lease } = await jobWithChunks('complete-scan');
  const scans = await seqScansOf('select rag_complete_job($1, $2, $3, $4)', [job.id, lease.workerId, lease.leaseToken, 4]);
  assert.deepEqual(scans, { rag_chunks: 0, rag_documents: 0 });
});

test('rag_discard_job_chunks (a job that will not complete) deletes through the document version too', async () => {
  const { job } = await jobWithChunks('discard-scan');
  const scans = await seqScansOf('select rag_discard_job_chunks($1)', [job.id]);
  assert.deepEqual(scans, { rag_chunks: 0, rag_documents: 0 });
  // …and it did delete them (and only them).
  await c.query('select rag_discard_job_chunks($1)', [job.id]);
  const left = await c.query<{ mine: string; others: string }>(
    `select count(*) filter (where job_id = $1) as mine, count(*) filter (where document_id like 'other-%') as others from rag_chunks`,
    [job.id],
  );
  assert.deepEqual(left.rows[0], { mine: '0', others: '3000' });
});

test('the rag_unpublished_chunks view looks documents up by their key', async () => {
  const scans = await seqScansOf('select count(*) from rag_unpublished_chunks', []);
  assert.equal(scans.rag_documents, 0);
});
