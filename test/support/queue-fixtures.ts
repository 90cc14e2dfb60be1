/**
 * Shared set-up for the queue-function integration tests: one backend per suite (a fresh PostgreSQL
 * database, or an in-memory PGlite), job and chunk factories, and jobs in every state whose rows must be
 * left untouched by the operation under test.
 *
 * Tests in one suite share a database, so they isolate themselves by document id, and `parkOtherJobs`
 * (run before each test) moves every queued or processing job left by earlier tests out of reach of
 * rag_claim_jobs (run_at / lease_expires_at far in the future). That is moving time, not changing state.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Chunk } from '../../src/shared/types.ts';
import { migrate } from '../../src/main/stores/migrate.ts';
import { createPgClient } from '../../src/main/stores/pg-client.ts';
import { createPgliteClient } from '../../src/main/stores/pglite-client.ts';
import type { SqlClient } from '../../src/main/stores/sql-client.ts';
import { type JobRow, type Lease, QueueStore, type VectorLiteral, toVectorLiteral } from '../../src/main/stores/queue-store.ts';
import { createTestDatabase } from './test-db.ts';

export const DIMS = 3;
export const MODEL = 'test-model';
export const LEASE_SECONDS = 60;
export const DEFAULT_MAX_ATTEMPTS = 5;
export const BACKENDS = ['postgres', 'pglite'] as const;

export type BackendKind = (typeof BACKENDS)[number];

export interface Backend {
  kind: BackendKind;
  sql: SqlClient;
  store: QueueStore;
  /** PostgreSQL only: the test database's URL, for extra connections. */
  url: string | undefined;
  close(): Promise<void>;
}

export async function openBackend(kind: BackendKind): Promise<Backend> {
  if (kind === 'postgres') {
    const db = await createTestDatabase(DIMS);
    const sql = createPgClient({ connectionString: db.url, maxConnections: 6, applicationName: 'queue-functions-test' });
    return {
      kind,
      sql,
      store: new QueueStore(sql),
      url: db.url,
      async close() {
        await sql.close();
        await db.drop();
      },
    };
  }
  const sql = await createPgliteClient(undefined);
  await migrate(sql, DIMS);
  return { kind, sql, store: new QueueStore(sql), url: undefined, close: () => sql.close() };
}

/** Puts every job left runnable by earlier tests out of rag_claim_jobs' reach. */
export async function parkOtherJobs(sql: SqlClient): Promise<void> {
  await sql.query(`update rag_ingestion_queue set run_at = now() + interval '100 years' where status = 'queued'`);
  await sql.query(`update rag_ingestion_queue set lease_expires_at = now() + interval '100 years' where status = 'processing'`);
}

let docSeq = 0;
/** A document id no other test uses. */
export function docId(tag: string): string {
  return `${tag}-${++docSeq}-${randomUUID().slice(0, 8)}`;
}

export function leaseOf(job: JobRow): Lease {
  assert.ok(job.worker_id && job.lease_token, `job ${job.id} has no lease`);
  return { jobId: job.id, workerId: job.worker_id, leaseToken: job.lease_token };
}

/**
 * A deterministic embedding for a chunk's content: a unit vector in the x-y plane's positive quadrant (z = 0),
 * spread by a hash of the content. The match tests query away from that quadrant, so their own chunks rank first.
 */
export function planeVector(content: string): VectorLiteral {
  let h = 2166136261;
  for (let i = 0; i < content.length; i++) h = Math.imul(h ^ content.charCodeAt(i), 16777619) >>> 0;
  const angle = 0.05 + (h / 2 ** 32) * 1.47;
  return toVectorLiteral([Math.cos(angle), Math.sin(angle), 0]);
}

export function makeChunks(count: number, options: { from?: number; tag?: string } = {}): Chunk[] {
  const from = options.from ?? 0;
  const tag = options.tag ?? 'c';
  return Array.from({ length: count }, (_, k) => {
    const index = from + k;
    return {
      index,
      content: `${tag} chunk ${index}`,
      tokenCount: 3 + index,
      segmentSeqStart: index * 2 + 1,
      segmentSeqEnd: index * 2 + 2,
      startMs: index * 1000,
      endMs: index * 1000 + 999,
      speakers: index % 2 === 0 ? ['Ana'] : ['Ana', 'Bo'],
      contentHash: `${tag}-hash-${index}`,
    };
  });
}

export function embeddingsFor(chunks: readonly Chunk[]): VectorLiteral[] {
  return chunks.map((c) => planeVector(c.content));
}

export const noProgress = { segmentsDone: 0, tokensEmbedded: 0, chunksReused: 0 };

export async function saveChunks(store: QueueStore, lease: Lease, chunks: readonly Chunk[], embeddings = embeddingsFor(chunks)): Promise<number> {
  const last = chunks[chunks.length - 1];
  return store.saveChunks(lease, MODEL, chunks, embeddings, {
    segmentsDone: last ? last.segmentSeqEnd : 0,
    tokensEmbedded: chunks.reduce((n, c) => n + c.tokenCount, 0),
    chunksReused: 0,
  });
}

/** Claims exactly the given jobs (asserting nothing else was claimed) and returns their rows by id. */
export async function claimExactly(store: QueueStore, workerId: string, ids: string[], leaseSeconds = LEASE_SECONDS): Promise<JobRow[]> {
  const claimed = await store.claimJobs(workerId, ids.length, leaseSeconds, DEFAULT_MAX_ATTEMPTS);
  assert.deepEqual(claimed.map((j) => j.id).sort(), [...ids].sort(), 'claimed other jobs than expected: a test left a runnable job behind');
  return ids.map((id) => claimed.find((j) => j.id === id) as JobRow);
}

export async function enqueueAndClaim(
  store: QueueStore,
  workerId: string,
  request: { documentId: string; version?: string; maxAttempts?: number | null; title?: string },
): Promise<{ job: JobRow; lease: Lease }> {
  const id = await store.enqueue({ payload: { text: 'hello' }, ...request });
  const [job] = await claimExactly(store, workerId, [id]);
  return { job, lease: leaseOf(job) };
}

/** Runs one job through start, save and complete: the document version ends with these chunks published. */
export async function ingest(
  store: QueueStore,
  request: { documentId: string; version?: string; title?: string; chunks: Chunk[]; embeddings?: VectorLiteral[]; model?: string },
): Promise<JobRow> {
  const { job, lease } = await enqueueAndClaim(store, 'ingester', request);
  await store.startJob(lease, request.chunks.length, request.chunks.length, 'sig-ingest');
  if (request.chunks.length > 0) {
    await store.saveChunks(lease, request.model ?? MODEL, request.chunks, request.embeddings ?? embeddingsFor(request.chunks), noProgress);
  }
  await store.completeJob(lease);
  return job;
}

export async function stagingCount(sql: SqlClient, jobId: string): Promise<number> {
  const rows = await sql.query<{ n: number }>('select count(*)::int as n from rag_unpublished_chunks where job_id = $1', [jobId]);
  return Number(rows[0].n);
}

/** The published chunks of a document (those of the job recorded in rag_documents). */
export async function chunkRows(sql: SqlClient, documentId: string, version?: string) {
  return sql.query<{ version: string; chunk_index: number; content: string; job_id: string; embedding_model: string }>(
    `select c.version, c.chunk_index, c.content, c.job_id, c.embedding_model from rag_chunks c
       join rag_documents d on d.document_id = c.document_id and d.version = c.version and d.job_id = c.job_id
      where c.document_id = $1 and ($2::text is null or c.version = $2) order by c.version, c.chunk_index`,
    [documentId, version ?? null],
  );
}

/** Seconds from the database's now() to a timestamp (positive: in the future). */
export async function secondsFromNow(sql: SqlClient, at: Date | null): Promise<number> {
  assert.ok(at, 'timestamp is null');
  const rows = await sql.query<{ s: number }>('select extract(epoch from ($1::timestamptz - now()))::float8 as s', [at.toISOString()]);
  return Number(rows[0].s);
}

export async function expireLease(sql: SqlClient, jobId: string): Promise<void> {
  await sql.query(`update rag_ingestion_queue set lease_expires_at = now() - interval '1 second' where id = $1`, [jobId]);
}

export async function makeDue(sql: SqlClient, jobId: string): Promise<void> {
  await sql.query(`update rag_ingestion_queue set run_at = now() - interval '1 second' where id = $1`, [jobId]);
}

export interface JobsInEveryState {
  queued: string;
  processing: string;
  processingLease: Lease;
  complete: string;
  failed: string;
  cancelled: string;
  ids: string[];
  documentIds: string[];
  /** Asserts that no job (or its staged and published chunks) changed since creation, except those listed. */
  assertUntouched(except?: string[]): Promise<void>;
}

const FIXTURE_PRIORITY = 1_000_000;

/**
 * One job in each state, each of its own document: queued (due in an hour), processing (live lease of
 * another worker, one chunk staged), complete (two chunks published), failed (final) and cancelled.
 * Call it before the test enqueues anything due: it claims its own jobs.
 */
export async function createJobsInEveryState(store: QueueStore, tag: string): Promise<JobsInEveryState> {
  const doc = (state: string) => docId(`${tag}-fixture-${state}`);
  const fixtureJob = async (state: string) => {
    const id = await store.enqueue({ documentId: doc(state), payload: { text: state }, priority: FIXTURE_PRIORITY });
    const [job] = await claimExactly(store, `fixture-${state}-worker`, [id]);
    return leaseOf(job);
  };

  const processingLease = await fixtureJob('processing');
  await store.startJob(processingLease, 4, 2, 'sig-fixture');
  await saveChunks(store, processingLease, makeChunks(1, { tag: 'fixture' }));

  const completeLease = await fixtureJob('complete');
  await store.startJob(completeLease, 4, 2, 'sig-fixture');
  await saveChunks(store, completeLease, makeChunks(2, { tag: 'fixture' }));
  await store.completeJob(completeLease);

  const failedLease = await fixtureJob('failed');
  await store.failJob(failedLease, 'fixture: bad input', 'bad_input', null, DEFAULT_MAX_ATTEMPTS);

  const cancelled = await store.enqueue({ documentId: doc('cancelled'), payload: { text: 'cancelled' } });
  await store.cancelJob(cancelled);

  const queued = await store.enqueue({ documentId: doc('queued'), payload: { text: 'queued' }, priority: FIXTURE_PRIORITY });
  await store.sql.query(`update rag_ingestion_queue set run_at = now() + interval '1 hour' where id = $1`, [queued]);

  const ids = [queued, processingLease.jobId, completeLease.jobId, failedLease.jobId, cancelled];
  const jobs = await store.getJobs(ids);
  const documentIds = jobs.map((j) => j.document_id);
  const snapshot = async (except: string[]) => {
    const keep = ids.filter((id) => !except.includes(id));
    const keepDocs = jobs.filter((j) => keep.includes(j.id)).map((j) => j.document_id);
    const rows = (await store.getJobs(keep)).sort((a, b) => a.id.localeCompare(b.id));
    const staged = await store.sql.query(
      'select job_id, chunk_index, content from rag_unpublished_chunks where job_id = any($1::uuid[]) order by job_id, chunk_index',
      [keep],
    );
    const published = await store.sql.query(
      'select c.document_id, c.chunk_index, c.content, c.job_id from rag_chunks c join rag_documents d on d.job_id = c.job_id where c.document_id = any($1::text[]) order by c.document_id, c.chunk_index',
      [keepDocs],
    );
    const documents = await store.sql.query(
      'select document_id, version, chunk_count, job_id from rag_documents where document_id = any($1::text[]) order by document_id',
      [keepDocs],
    );
    return { rows, staged, published, documents };
  };
  const before = await snapshot([]);
  assert.equal(before.staged.length, 1, 'fixture: the processing job has one staged chunk');
  assert.equal(before.published.length, 2, 'fixture: the complete job has two published chunks');

  return {
    queued,
    processing: processingLease.jobId,
    processingLease,
    complete: completeLease.jobId,
    failed: failedLease.jobId,
    cancelled,
    ids,
    documentIds,
    async assertUntouched(except = []) {
      assert.ok(except.every((id) => ids.includes(id)), 'assertUntouched: unknown fixture id');
      const now = await snapshot(except);
      const expected = filterSnapshot(before, except, jobs);
      assert.deepEqual(now, expected, 'a job in another state (or its chunks) was changed');
    },
  };
}

function filterSnapshot(
  snap: { rows: JobRow[]; staged: Record<string, unknown>[]; published: Record<string, unknown>[]; documents: Record<string, unknown>[] },
  except: string[],
  jobs: JobRow[],
) {
  const exceptDocs = jobs.filter((j) => except.includes(j.id)).map((j) => j.document_id);
  return {
    rows: snap.rows.filter((r) => !except.includes(r.id)),
    staged: snap.staged.filter((r) => !except.includes(r.job_id as string)),
    published: snap.published.filter((r) => !exceptDocs.includes(r.document_id as string)),
    documents: snap.documents.filter((r) => !exceptDocs.includes(r.document_id as string)),
  };
}

/** Collects pushed values; `next` resolves with the first (past or future) value accepted, or rejects after `ms`. */
export function collector<T>() {
  const items: T[] = [];
  const waiters: { accept: (v: T) => boolean; resolve: (v: T) => void }[] = [];
  return {
    items,
    push(value: T) {
      items.push(value);
      for (const w of waiters.splice(0)) {
        if (w.accept(value)) w.resolve(value);
        else waiters.push(w);
      }
    },
    next(accept: (v: T) => boolean, ms = 5000): Promise<T> {
      const seen = items.find(accept);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching event within ${ms} ms (got ${JSON.stringify(items)})`)), ms);
        waiters.push({ accept, resolve: (v) => { clearTimeout(timer); resolve(v); } });
      });
    },
  };
}
