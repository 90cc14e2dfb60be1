/**
 * The Supabase mode end to end: the real @supabase/supabase-js client against a loopback PostgREST
 * (test/support/fake-postgrest.ts) that runs every call on a real PostgreSQL with the schema. The store does the
 * whole job lifecycle through .rpc(), splits saves to fit the request ceiling, and classifies PostgREST's errors;
 * the CLI ingests, reports and searches with only SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkSupabaseSchema } from '../../src/main/stores/supabase-open.ts';
import { SupabaseQueueStore } from '../../src/main/stores/supabase-queue-store.ts';
import { createSupabaseRpc } from '../../src/main/stores/supabase-rpc.ts';
import { toVectorLiteral, type Lease } from '../../src/main/stores/queue-store.ts';
import { DatabaseAuthError, DatabaseConnectionError, LeaseLostError, SchemaError } from '../../src/shared/errors.ts';
import type { Chunk } from '../../src/shared/types.ts';
import { cliEnv, runCli } from '../support/cli.ts';
import { startFakePostgrest, type FakePostgrest } from '../support/fake-postgrest.ts';
import { createEmptyDatabase, createTestDatabase, type TestDatabase } from '../support/test-db.ts';

const KEY = 'service-role-key-for-tests-0123456789';
const DIMS = 3;

function chunks(n: number, from = 0): Chunk[] {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    return { index: i, content: `chunk ${i} ${'text '.repeat(40)}`, tokenCount: 41, segmentSeqStart: i + 1, segmentSeqEnd: i + 1, startMs: i * 1000, endMs: i * 1000 + 900, speakers: ['Ann'], contentHash: `hash-${i}` };
  });
}
const vectorOf = (i: number) => toVectorLiteral([1, i / 100, 0]);

describe('Supabase mode: the store over supabase-js and PostgREST', () => {
  let db: TestDatabase;
  let rest: FakePostgrest;
  const storeWith = (options: { key?: string; maxRequestBytes?: number } = {}) =>
    new SupabaseQueueStore(createSupabaseRpc({ url: rest.url, serviceRoleKey: options.key ?? KEY, timeoutMs: 10_000 }), { maxRequestBytes: options.maxRequestBytes });

  before(async () => {
    db = await createTestDatabase(DIMS);
    rest = await startFakePostgrest({ databaseUrl: db.url, serviceKey: KEY });
  });
  after(async () => {
    await rest.close();
    await db.drop();
  });

  test('enqueue, claim, start, save (split to fit the ceiling), complete, then status and search — every step an .rpc() call', async () => {
    await checkSupabaseSchema(storeWith(), DIMS);
    // A ceiling of 4 KB: 30 chunks of ~300 bytes with their vectors need several calls.
    const store = storeWith({ maxRequestBytes: 4_000 });
    const id = await store.enqueue({ documentId: 'rest-doc', title: 'Over REST', format: 'text', payload: { text: 'hello' } });
    const [job] = await store.claimJobs('rest-worker', 1, 60, 5);
    assert.equal(job.id, id);
    assert.ok(job.lease_token);
    const lease: Lease = { jobId: id, workerId: 'rest-worker', leaseToken: job.lease_token! };
    assert.equal(await store.startJob(lease, 30, null, 'sig'), 0);
    const batch = chunks(30);
    const results = await store.saveChunkBatches('rest-worker', 'test-model', [
      { lease, chunks: batch, embeddings: batch.map((c) => vectorOf(c.index)), progress: { segmentsDone: 30, tokensEmbedded: 1230, chunksReused: 0, usage: { embedding_tokens: 1230 } } },
    ]);
    assert.deepEqual(results.get(id), { chunksDone: 30 });
    assert.ok(store.saveStats.calls > 1, `${store.saveStats.calls} calls`);
    const held = await store.extendLeases('rest-worker', [lease], 60);
    assert.deepEqual(held, [{ jobId: id, held: true, status: 'processing' }]);
    assert.equal(await store.completeJob(lease, 30), 30);

    const done = (await store.getJob(id))!;
    assert.equal(done.status, 'complete');
    assert.equal(done.tokens_embedded, 1230);
    assert.equal(done.usage.embedding_tokens, 1230);
    assert.ok(done.completed_at instanceof Date);
    assert.equal((await store.counts()).complete, 1);
    const hits = await store.matchChunks(vectorOf(7), 1, 'rest-doc');
    assert.equal(hits[0].chunk_index, 7);
    assert.equal((await store.hybridChunks('chunk', vectorOf(3), 3)).length, 3);
    assert.equal((await store.getDocument('rest-doc'))?.chunk_count, 30);
    assert.deepEqual(await store.storedModels(), [{ model: 'test-model', documents: 1 }]);
    assert.equal((await store.listJobs({ limit: 5 }))[0].id, id);
    assert.equal(await store.hasRunnableJobs(), false);
    assert.equal(await store.msUntilNextDue(), null);
  });

  test('a fenced call by a worker that lost its lease is LeaseLostError (SQLSTATE RW001 through PostgREST)', async () => {
    const store = storeWith();
    const id = await store.enqueue({ documentId: 'fenced-doc', format: 'text', payload: { text: 'x' } });
    const [job] = await store.claimJobs('w-fenced', 1, 60, 5);
    assert.equal(job.id, id);
    await assert.rejects(store.completeJob({ jobId: id, workerId: 'w-fenced', leaseToken: '00000000-0000-0000-0000-000000000000' }), LeaseLostError);
    assert.equal(await store.cancelJob(id), 'cancelled');
  });

  test('a wrong key is a worker-level fault naming SUPABASE_SERVICE_ROLE_KEY, never quoting the key', async () => {
    const error = await storeWith({ key: 'not-the-service-role-key-at-all' }).counts().catch((e: unknown) => e);
    assert.ok(error instanceof DatabaseAuthError, String(error));
    assert.equal(error.setting, 'SUPABASE_SERVICE_ROLE_KEY');
    assert.ok(!error.message.includes('not-the-service-role-key-at-all'));
  });

  test('503 and PostgREST connection errors are transient', async () => {
    rest.fail({ status: 503, code: 'PGRST001', message: 'Database client error. Retrying the connection.' });
    await assert.rejects(storeWith().counts(), DatabaseConnectionError);
    assert.equal(typeof (await storeWith().counts()).queued, 'number', 'the next call goes through');
  });

  test('a call the gateway refuses as too large (413) is halved and sent again', async () => {
    const tight = await startFakePostgrest({ databaseUrl: db.url, serviceKey: KEY, maxBodyBytes: 12_000 });
    try {
      const store = new SupabaseQueueStore(createSupabaseRpc({ url: tight.url, serviceRoleKey: KEY, timeoutMs: 10_000 }), { maxRequestBytes: 10_000_000 });
      const id = await store.enqueue({ documentId: 'split-doc', format: 'text', payload: { text: 'x' } });
      const [job] = await store.claimJobs('w-split', 1, 60, 5);
      const lease: Lease = { jobId: id, workerId: 'w-split', leaseToken: job.lease_token! };
      await store.startJob(lease, 40, null, 'sig');
      const batch = chunks(40);
      const results = await store.saveChunkBatches('w-split', 'test-model', [
        { lease, chunks: batch, embeddings: batch.map((c) => vectorOf(c.index)), progress: { segmentsDone: 40, tokensEmbedded: 400, chunksReused: 0 } },
      ]);
      assert.deepEqual(results.get(id), { chunksDone: 40 });
      assert.ok(store.saveStats.splits > 0);
      assert.ok(tight.requests.some((r) => r.status === 413));
      assert.equal(await store.completeJob(lease, 40), 40);
    } finally {
      await tight.close();
    }
  });

  test('a project without the schema: start-up stops saying how to apply it', async () => {
    const empty = await createEmptyDatabase();
    const bare = await startFakePostgrest({ databaseUrl: empty.url, serviceKey: KEY });
    try {
      const store = new SupabaseQueueStore(createSupabaseRpc({ url: bare.url, serviceRoleKey: KEY, timeoutMs: 10_000 }));
      const error = await checkSupabaseSchema(store, DIMS).catch((e: unknown) => e);
      assert.ok(error instanceof SchemaError, String(error));
      assert.match(error.message, /supabase db push/);
    } finally {
      await bare.close();
      await empty.drop();
    }
  });
});

describe('Supabase mode: the CLI with only SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY', () => {
  let db: TestDatabase;
  let rest: FakePostgrest;
  let cwd: string;
  let env: NodeJS.ProcessEnv;
  const example = fileURLToPath(new URL('../../examples/transcripts/product-meeting.vtt', import.meta.url));

  before(async () => {
    db = await createTestDatabase(1536);
    rest = await startFakePostgrest({ databaseUrl: db.url, serviceKey: KEY });
    cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'rw-supabase-'));
    env = cliEnv({ SUPABASE_URL: rest.url, SUPABASE_SERVICE_ROLE_KEY: KEY, RAG_THREADS: '1', RAG_POLL_INTERVAL_MS: '200' });
  });
  after(async () => {
    await rest.close();
    await db.drop();
    fs.rmSync(cwd, { recursive: true, force: true });
  });

  test('ingest, status, search and migrate work through the REST API; nothing opens a SQL connection', async () => {
    const ingest = await runCli(['ingest', example, '--document-id', 'meeting', '--json'], env, cwd);
    assert.equal(ingest.code, 0, ingest.stderr);
    const [job] = JSON.parse(ingest.stdout) as { status: string; chunks: number }[];
    assert.equal(job.status, 'complete');
    assert.ok(job.chunks > 0);
    const status = JSON.parse((await runCli(['status', '--json'], env, cwd)).stdout) as { complete: number };
    assert.equal(status.complete, 1);
    const search = await runCli(['search', 'rollback plan', '--json'], env, cwd);
    assert.equal(search.code, 0, search.stderr);
    assert.ok((JSON.parse(search.stdout) as unknown[]).length > 0);
    const migrate = await runCli(['migrate'], env, cwd);
    assert.equal(migrate.code, 0, migrate.stderr);
    assert.match(migrate.stdout, /schema version \d+: nothing to do/);
    assert.ok(rest.requests.some((r) => r.fn === 'rag_claim_jobs') && rest.requests.some((r) => r.fn === 'rag_save_chunk_batches'));
    assert.ok(!`${ingest.stderr}${ingest.stdout}`.includes(KEY), 'the key is never printed');
  });
});
