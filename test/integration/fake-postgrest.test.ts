/**
 * The fake PostgREST (test/support/fake-postgrest.ts) driven by the real `@supabase/supabase-js` client against a
 * migrated database: a job goes through enqueue, claim, start, analysis, save and completion over RPC, is found by
 * rag_match_chunks, and every answer has the shape supabase-js turns into `{ data, error, status, statusText }`:
 * set-returning, scalar and void functions; jsonb, text[], uuid[] and vector arguments; a raised SQLSTATE; the
 * gateway's and PostgREST's auth errors; PGRST202; 413; an unreachable database; scripted faults.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createClient, type SupabaseClient } from '@supabase/supabase-js';
import pg from 'pg';
import { startFakePostgrest, type FakePostgrest } from '../support/fake-postgrest.ts';
import { createTestDatabase, type TestDatabase } from '../support/test-db.ts';

const SERVICE_KEY = 'test-service-key.payload.signature';
const MAX_BODY = 64 * 1024;

let db: TestDatabase;
let fake: FakePostgrest;
let owner: pg.Client;
let supabase: SupabaseClient;
/** rag_schema_version() as PostgreSQL answers it directly. */
let schemaVersion: number;

function clientFor(url: string, key: string, headers: Record<string, string> = {}): SupabaseClient {
  return createClient(url, key, { auth: { persistSession: false, autoRefreshToken: false }, global: { headers } });
}

before(async () => {
  db = await createTestDatabase(3);
  owner = new pg.Client({ connectionString: db.url });
  await owner.connect();
  fake = await startFakePostgrest({ databaseUrl: db.url, serviceKey: SERVICE_KEY, maxBodyBytes: MAX_BODY });
  supabase = clientFor(fake.url, SERVICE_KEY);
  schemaVersion = (await owner.query<{ v: number }>('select rag_schema_version() as v')).rows[0].v;
});

after(async () => {
  await fake?.close();
  await owner?.end();
  await db?.drop();
});

describe('a job end to end over RPC', () => {
  const documentId = `doc-${randomUUID()}`;
  const workerId = 'w-fake-postgrest';
  let jobId: string;
  let leaseToken: string;

  test('scalar: rag_schema_version is the bare number', async () => {
    const res = await supabase.rpc('rag_schema_version');
    assert.equal(res.error, null);
    assert.equal(res.data, schemaVersion);
    assert.equal(res.status, 200);
    assert.equal(res.statusText, 'OK');
    const raw = await fetch(`${fake.url}/rest/v1/rpc/rag_schema_version`, {
      method: 'POST',
      headers: { apikey: SERVICE_KEY, Authorization: `Bearer ${SERVICE_KEY}`, 'Content-Type': 'application/json', 'Content-Profile': 'public' },
      body: '{}',
    });
    assert.equal(raw.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.equal(raw.headers.get('content-range'), '0-0/*');
    assert.equal(raw.headers.get('content-profile'), 'public');
    assert.equal(await raw.text(), String(schemaVersion));
  });

  test('jsonb argument: rag_enqueue returns the job id as a JSON string', async () => {
    const res = await supabase.rpc('rag_enqueue', {
      p_document_id: documentId,
      p_version: '1',
      p_title: 'Fake PostgREST',
      p_format: 'auto',
      p_payload: { text: 'hello there', nested: { a: [1, 2] } },
    });
    assert.equal(res.error, null);
    assert.match(res.data as string, /^[0-9a-f-]{36}$/);
    jobId = res.data as string;
    const stored = await owner.query('select payload, metadata, priority from rag_ingestion_queue where id = $1', [jobId]);
    assert.deepEqual(stored.rows[0], { payload: { text: 'hello there', nested: { a: [1, 2] } }, metadata: {}, priority: 0 });
  });

  test('set-returning: rag_claim_jobs is an array of row objects', async () => {
    const res = await supabase.rpc('rag_claim_jobs', { p_worker_id: workerId, p_limit: 5, p_lease_seconds: 60 });
    assert.equal(res.error, null);
    const rows = res.data as Array<Record<string, unknown>>;
    assert.equal(rows.length, 1);
    assert.equal(rows[0].id, jobId);
    assert.equal(rows[0].status, 'processing');
    assert.equal(rows[0].worker_id, workerId);
    assert.deepEqual(rows[0].payload, { text: 'hello there', nested: { a: [1, 2] } });
    assert.equal(rows[0].attempts, 1);
    leaseToken = rows[0].lease_token as string;
    assert.match(leaseToken, /^[0-9a-f-]{36}$/);

    const none = await supabase.rpc('rag_claim_jobs', { p_worker_id: workerId, p_limit: 5, p_lease_seconds: 60 });
    assert.equal(none.error, null);
    assert.deepEqual(none.data, []);
  });

  test('rag_start_job (integer)', async () => {
    const res = await supabase.rpc('rag_start_job', {
      p_job_id: jobId,
      p_worker_id: workerId,
      p_lease_token: leaseToken,
      p_segments_total: 2,
      p_chunks_total: 2,
      p_chunking_signature: 'sig',
    });
    assert.equal(res.error, null);
    assert.equal(res.data, 0);
  });

  test('void: rag_save_analysis answers 204 with no body, which supabase-js turns into data null', async () => {
    const res = await supabase.rpc('rag_save_analysis', {
      p_job_id: jobId,
      p_worker_id: workerId,
      p_lease_token: leaseToken,
      p_analysis: { status: 'complete', summary: 'a talk' },
      p_analysis_key: 'key-1',
      p_usage: { input_tokens: 10, output_tokens: 4 },
    });
    assert.equal(res.error, null);
    assert.equal(res.data, null);
    assert.equal(res.status, 204);
    assert.equal(res.statusText, 'No Content');
    const stored = await owner.query('select analysis, analysis_key, usage from rag_ingestion_queue where id = $1', [jobId]);
    // On the wire: 204, no body, no Content-Type (another void function, called without the client).
    const raw = await fetch(`${fake.url}/rest/v1/rpc/rag_lock_document_version`, {
      method: 'POST',
      headers: { apikey: SERVICE_KEY, Authorization: `Bearer ${SERVICE_KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ p_document_id: documentId, p_version: '1' }),
    });
    assert.equal(raw.status, 204);
    assert.equal(raw.headers.get('content-type'), null);
    assert.equal(await raw.text(), '');
    assert.deepEqual(stored.rows[0].analysis, { status: 'complete', summary: 'a talk' });
    assert.equal(stored.rows[0].analysis_key, 'key-1');
    assert.equal(stored.rows[0].usage.input_tokens, 10);
  });

  test('jsonb array and text[] arguments: rag_save_chunks', async () => {
    const chunks = [0, 1].map((i) => ({
      chunk_index: i,
      content: `chunk ${i}`,
      token_count: 3 + i,
      segment_seq_start: i + 1,
      segment_seq_end: i + 1,
      start_ms: i * 1000,
      end_ms: i * 1000 + 999,
      speakers: i === 0 ? ['Ana'] : ['Ana', 'Bo'],
      content_hash: `hash-${i}`,
      metadata: {},
    }));
    const res = await supabase.rpc('rag_save_chunks', {
      p_job_id: jobId,
      p_worker_id: workerId,
      p_lease_token: leaseToken,
      p_embedding_model: 'test-model',
      p_chunks: chunks,
      p_embeddings: ['[1,0,0]', '[0,1,0]'],
      p_segments_done: 2,
      p_tokens_embedded: 7,
    });
    assert.equal(res.error, null);
    assert.equal(res.data, 2);
  });

  test('a raised SQLSTATE: rag_complete_job with a wrong lease token is RW001, 400', async () => {
    const res = await supabase.rpc('rag_complete_job', { p_job_id: jobId, p_worker_id: workerId, p_lease_token: randomUUID() });
    assert.equal(res.data, null);
    assert.equal(res.status, 400);
    assert.equal(res.statusText, 'Bad Request');
    assert.equal(res.error?.code, 'RW001');
    assert.match(res.error?.message ?? '', /lease lost on job/);
    assert.equal(res.error?.details, null);
    assert.equal(res.error?.hint, null);
    // The failed call rolled back: the job is still held.
    const job = await owner.query('select status, lease_token from rag_ingestion_queue where id = $1', [jobId]);
    assert.deepEqual(job.rows[0], { status: 'processing', lease_token: leaseToken });
  });

  test('rag_complete_job with the lease (a parameter with a default left out)', async () => {
    const res = await supabase.rpc('rag_complete_job', { p_job_id: jobId, p_worker_id: workerId, p_lease_token: leaseToken });
    assert.equal(res.error, null);
    assert.equal(res.data, 2);
  });

  test('vector argument as a JSON array or as text: rag_match_chunks', async () => {
    const asArray = await supabase.rpc('rag_match_chunks', { p_query_embedding: [1, 0, 0], p_match_count: 2 });
    assert.equal(asArray.error, null);
    const rows = asArray.data as Array<Record<string, unknown>>;
    assert.deepEqual(
      rows.map((r) => [r.document_id, r.chunk_index, r.content, r.speakers, r.title]),
      [
        [documentId, 0, 'chunk 0', ['Ana'], 'Fake PostgREST'],
        [documentId, 1, 'chunk 1', ['Ana', 'Bo'], 'Fake PostgREST'],
      ],
    );
    assert.ok(Math.abs((rows[0].score as number) - 1) < 1e-9);
    const counted = await supabase.rpc('rag_match_chunks', { p_query_embedding: [1, 0, 0], p_match_count: 2 }, { count: 'exact' });
    assert.equal(counted.count, 2);
    assert.equal(rows[0].start_ms, 0);

    const asText = await supabase.rpc('rag_match_chunks', { p_query_embedding: '[0,1,0]', p_match_count: 1, p_document_id: documentId });
    assert.equal(asText.error, null);
    assert.deepEqual(
      (asText.data as Array<Record<string, unknown>>).map((r) => r.chunk_index),
      [1],
    );

    const wrongDims = await supabase.rpc('rag_match_chunks', { p_query_embedding: [1, 0], p_match_count: 1 });
    assert.equal(wrongDims.status, 400);
    assert.equal(wrongDims.error?.code, '22000');
  });

  test('text[] argument: rag_lookup_embeddings', async () => {
    const res = await supabase.rpc('rag_lookup_embeddings', {
      p_document_id: documentId,
      p_embedding_model: 'test-model',
      p_content_hashes: ['hash-1', 'hash-0', 'nope'],
    });
    assert.equal(res.error, null);
    assert.deepEqual(
      (res.data as Array<Record<string, unknown>>).map((r) => [r.content_hash, r.embedding]),
      [
        ['hash-0', '[1,0,0]'],
        ['hash-1', '[0,1,0]'],
      ],
    );
  });

  test('scalar text and a set of scalars: rag_cancel_job, rag_retry_jobs with a uuid[]', async () => {
    const missing = await supabase.rpc('rag_cancel_job', { p_job_id: randomUUID() });
    assert.equal(missing.error, null);
    assert.equal(missing.data, 'missing');

    const other = await supabase.rpc('rag_enqueue', {
      p_document_id: `${documentId}-b`,
      p_version: '1',
      p_title: null,
      p_format: null,
      p_payload: { text: 'b' },
    });
    const cancelled = await supabase.rpc('rag_cancel_job', { p_job_id: other.data });
    assert.equal(cancelled.error, null);
    assert.equal(cancelled.data, 'cancelled');

    const retried = await supabase.rpc('rag_retry_jobs', { p_job_ids: [other.data, randomUUID()] });
    assert.equal(retried.error, null);
    assert.deepEqual(retried.data, [other.data]);
  });
});

describe('errors as supabase-js sees them', () => {
  test('a value the argument type rejects: 22P02, 400', async () => {
    const res = await supabase.rpc('rag_cancel_job', { p_job_id: 'not-a-uuid' });
    assert.equal(res.status, 400);
    assert.equal(res.error?.code, '22P02');
    assert.match(res.error?.message ?? '', /invalid input syntax for type uuid/);
  });

  test('unknown function, and unknown arguments of a known one: PGRST202, 404', async () => {
    const unknown = await supabase.rpc('rag_no_such_function', { p_x: 1 });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.error?.code, 'PGRST202');
    assert.equal(unknown.error?.message, 'Could not find the function public.rag_no_such_function(p_x) in the schema cache');
    assert.equal(
      unknown.error?.details,
      'Searched for the function public.rag_no_such_function with parameter p_x or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache.',
    );

    const wrongArgs = await supabase.rpc('rag_cancel_job', { p_id: randomUUID() });
    assert.equal(wrongArgs.status, 404);
    assert.equal(wrongArgs.error?.code, 'PGRST202');
    assert.equal(wrongArgs.error?.message, 'Could not find the function public.rag_cancel_job(p_id) in the schema cache');
    assert.equal(wrongArgs.error?.hint, 'Perhaps you meant to call the function public.rag_cancel_job(p_job_id)');

    const missingRequired = await supabase.rpc('rag_claim_jobs', { p_worker_id: 'w' });
    assert.equal(missingRequired.error?.code, 'PGRST202');

    const singleObject = await supabase.rpc('rag_schema_version').setHeader('Prefer', 'params=single-object');
    assert.equal(singleObject.error?.code, 'PGRST202');
    assert.equal(singleObject.error?.message, 'Could not find the function public.rag_schema_version in the schema cache');
  });

  test('wrong service key: the gateway answers 401 Invalid API key (no code)', async () => {
    const res = await clientFor(fake.url, 'some-other-key').rpc('rag_schema_version');
    assert.equal(res.status, 401);
    assert.equal(res.statusText, 'Unauthorized');
    assert.deepEqual(res.error, { message: 'Invalid API key', hint: 'Double check your Supabase `anon` or `service_role` API key.' });
  });

  test('right apikey, wrong bearer token: PostgREST answers 401 PGRST301', async () => {
    const badJwt = clientFor(fake.url, SERVICE_KEY, { Authorization: 'Bearer aaa.bbb.ccc' });
    const res = await badJwt.rpc('rag_schema_version');
    assert.equal(res.status, 401);
    assert.deepEqual(res.error, { code: 'PGRST301', details: null, hint: null, message: 'JWSError JWSInvalidSignature' });

    const notJwt = await clientFor(fake.url, SERVICE_KEY, { Authorization: 'Bearer opaque' }).rpc('rag_schema_version');
    assert.equal(notJwt.error?.code, 'PGRST301');
    assert.equal(notJwt.error?.message, 'JWSError (CompactDecodeError Invalid number of parts: Expected 3 parts; got 1)');
  });

  test('no apikey, and no Authorization (the anonymous role)', async () => {
    const noKey = await fetch(`${fake.url}/rest/v1/rpc/rag_schema_version`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    assert.equal(noKey.status, 401);
    assert.deepEqual(await noKey.json(), { message: 'No API key found in request', hint: 'No `apikey` request header or url param was found.' });

    const anon = await fetch(`${fake.url}/rest/v1/rpc/rag_schema_version`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', apikey: SERVICE_KEY },
      body: '{}',
    });
    assert.equal(anon.status, 401);
    assert.equal(anon.headers.get('www-authenticate'), 'Bearer');
    assert.deepEqual(await anon.json(), { code: '42501', details: null, hint: null, message: 'permission denied for function rag_schema_version' });
  });

  test('a body over maxBodyBytes: 413 from the gateway', async () => {
    const res = await supabase.rpc('rag_cancel_job', { p_job_id: randomUUID(), padding: 'x'.repeat(MAX_BODY) });
    assert.equal(res.status, 413);
    assert.deepEqual(res.error, { message: 'Payload too large' });
    const logged = fake.requests.at(-1);
    assert.equal(logged?.status, 413);
    assert.equal(logged?.fn, 'rag_cancel_job');
    assert.ok((logged?.bytes ?? 0) > MAX_BODY);
    // The next request is served normally.
    assert.equal((await supabase.rpc('rag_schema_version')).data, schemaVersion);
  });

  test('invalid JSON: PGRST102', async () => {
    const res = await fetch(`${fake.url}/rest/v1/rpc/rag_schema_version`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', apikey: SERVICE_KEY, Authorization: `Bearer ${SERVICE_KEY}` },
      body: '{"p_x":',
    });
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), { code: 'PGRST102', details: null, hint: null, message: 'Empty or invalid json' });
  });

  test('GET runs read-only: a stable function answers, a volatile one fails 25006 → 405', async () => {
    const version = await supabase.rpc('rag_schema_version', undefined, { get: true });
    assert.equal(version.error, null);
    assert.equal(version.data, schemaVersion);
    const cancel = await supabase.rpc('rag_cancel_job', { p_job_id: randomUUID() }, { get: true });
    assert.equal(cancel.status, 405);
    assert.equal(cancel.error?.code, '25006');
  });

  test('a database that cannot be reached: 503 PGRST000 with Retry-After', async () => {
    const u = new URL(db.url);
    u.pathname = `/rw_missing_${process.pid}`;
    const down = await startFakePostgrest({ databaseUrl: u.toString(), serviceKey: SERVICE_KEY });
    try {
      const res = await clientFor(down.url, SERVICE_KEY).rpc('rag_schema_version');
      assert.equal(res.status, 503);
      assert.equal(res.error?.code, 'PGRST000');
      assert.equal(res.error?.message, 'Database connection error. Retrying the connection.');
      assert.match(res.error?.details ?? '', /does not exist/);
      const raw = await fetch(`${down.url}/rest/v1/rpc/rag_schema_version`, {
        method: 'POST',
        headers: { apikey: SERVICE_KEY, Authorization: `Bearer ${SERVICE_KEY}`, 'Content-Type': 'application/json' },
        body: '{}',
      });
      assert.equal(raw.headers.get('retry-after'), '0');
      await raw.body?.cancel();
    } finally {
      await down.close();
    }
  });

  test('scripted faults answer the next requests, one each, in order', async () => {
    fake.fail({ status: 503 }, { status: 500, code: 'XX000', message: 'boom' }, { dropConnection: true }, { status: 401 });
    const first = await supabase.rpc('rag_schema_version');
    assert.equal(first.status, 503);
    assert.equal(first.error?.code, 'PGRST000');
    assert.equal(first.error?.message, 'Database connection error. Retrying the connection.');

    const second = await supabase.rpc('rag_schema_version');
    assert.equal(second.status, 500);
    assert.deepEqual(second.error, { code: 'XX000', message: 'boom', details: null, hint: null });

    const third = await supabase.rpc('rag_schema_version');
    assert.equal(third.status, 0);
    assert.equal(third.data, null);
    assert.match(third.error?.message ?? '', /fetch failed/);
    assert.equal(third.error?.code, '');

    const fourth = await supabase.rpc('rag_schema_version');
    assert.equal(fourth.status, 401);
    assert.equal(fourth.error?.code, 'PGRST301');

    const fifth = await supabase.rpc('rag_schema_version');
    assert.equal(fifth.error, null);
    assert.equal(fifth.data, schemaVersion);

    assert.deepEqual(
      fake.requests.slice(-5).map((r) => [r.fn, r.status]),
      [
        ['rag_schema_version', 503],
        ['rag_schema_version', 500],
        ['rag_schema_version', 0],
        ['rag_schema_version', 401],
        ['rag_schema_version', 200],
      ],
    );
    for (const r of fake.requests) assert.ok(r.at > 0 && r.bytes >= 0);
  });
});
