/**
 * The opt-in supabase/opt-in/app-read-policies.sql: the app's signed-in users read their own jobs' progress and
 * their own chunks, and nothing else. A database set up as a Supabase project is (test/support/supabase-roles.ts:
 * roles, default privileges, auth.uid()), migrated by the real `migrate`, holds the jobs of two users (A: one
 * complete, one in flight with a saved chunk; B: one complete, one queued) and a document of nobody; then the file
 * is applied. For each role × table, view, column and function: anon gets nothing; authenticated with A's JWT sees
 * exactly A's rows and the granted columns, never payload, lease tokens or worker ids, changes nothing, calls only
 * the search functions (which return only A's chunks); service_role still does everything. Also: applying the file
 * again (with and without a supabase_realtime publication), `migrate` keeping the grants, the worker's access check,
 * and Supabase's database-linter rules after the opt-in.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import pg from 'pg';
import type { Chunk } from '../../src/shared/types.ts';
import { checkAccess, migrate } from '../../src/main/stores/migrate.ts';
import { createPgClient } from '../../src/main/stores/pg-client.ts';
import { QueueStore } from '../../src/main/stores/queue-store.ts';
import type { SqlClient } from '../../src/main/stores/sql-client.ts';
import { claimExactly, DIMS, docId, leaseOf, makeChunks, saveChunks } from '../support/queue-fixtures.ts';
import { asRole, setUpSupabaseRoles } from '../support/supabase-roles.ts';
import { ADMIN_URL, createEmptyDatabase, type TestDatabase } from '../support/test-db.ts';

const OPT_IN = fs.readFileSync(new URL('../../supabase/opt-in/app-read-policies.sql', import.meta.url), 'utf8');
const TABLES = ['rag_ingestion_queue', 'rag_documents', 'rag_chunks', 'rag_chunk_staging', 'rag_schema_migrations', 'rag_rate_shares'];
const VIEWS = ['rag_unpublished_chunks'];
/** What authenticated may select, table by table (the opt-in's grants). */
const READABLE: Record<string, string[]> = {
  rag_ingestion_queue: [
    'id', 'document_id', 'version', 'title', 'format', 'status', 'submitted_at', 'updated_at', 'started_at', 'completed_at', 'run_at',
    'attempts', 'max_attempts', 'segments_total', 'segments_done', 'chunks_total', 'chunks_done', 'chunks_reused', 'tokens_embedded',
    'error_detail', 'last_error_category',
  ],
  rag_documents: ['document_id', 'version', 'title', 'chunk_count', 'job_id', 'ingested_at'],
  rag_chunks: [
    'id', 'document_id', 'version', 'chunk_index', 'content', 'token_count', 'segment_seq_start', 'segment_seq_end', 'start_ms', 'end_ms',
    'speakers', 'embedding', 'embedding_model', 'job_id', 'created_at', 'context', 'search_tsv',
  ],
};
const SEARCH_FUNCTIONS = ['rag_match_chunks', 'rag_hybrid_chunks'];
const QUERY = '[1,1,0]';
const A = randomUUID();
const B = randomUUID();
const probeRole = `rw_app_probe_${process.pid}`;

let db: TestDatabase;
let owner: pg.Client;
let sql: SqlClient;
let store: QueueStore;
let functions: string[];
const jobs = {} as Record<'aDone' | 'aRunning' | 'bDone' | 'bQueued' | 'nobody', { id: string; documentId: string; chunks: Chunk[] }>;

/** Enqueues a document of `ownerId` (none: no owner_id) and takes it as far as `until`, saving `chunks`. */
async function job(tag: string, ownerId: string | null, until: 'queued' | 'processing' | 'complete', chunkCount: number) {
  const documentId = docId(tag);
  const chunks = makeChunks(chunkCount, { tag });
  const id = await store.enqueue({
    documentId,
    title: `${tag} title`,
    payload: { text: `secret transcript of ${tag}` },
    metadata: ownerId === null ? { source_file: `${tag}.vtt` } : { owner_id: ownerId, source_file: `${tag}.vtt` },
  });
  if (until !== 'queued') {
    const [row] = await claimExactly(store, `w-app-${tag}`, [id]);
    const lease = leaseOf(row);
    await store.startJob(lease, chunkCount * 2 + 2, until === 'complete' ? chunkCount : null, 'sig-app');
    await saveChunks(store, lease, chunks);
    if (until === 'complete') await store.completeJob(lease);
  }
  return { id, documentId, chunks };
}

const jwt = (sub: string) => ({ claims: { sub, role: 'authenticated' } });
const asA = (statement: string, params?: unknown[]) => asRole(owner, 'authenticated', statement, { ...jwt(A), params });
const asB = (statement: string, params?: unknown[]) => asRole(owner, 'authenticated', statement, { ...jwt(B), params });

function rowsOf(result: Awaited<ReturnType<typeof asRole>>): Record<string, unknown>[] {
  assert.ok('rows' in result, `failed with ${JSON.stringify(result)}`);
  return result.rows;
}

async function columnsWith(role: string, table: string, privilege: string): Promise<string[]> {
  const r = await owner.query<{ a: string }>(
    `select attname as a from pg_attribute where attrelid = $2::regclass and attnum > 0 and not attisdropped
        and has_column_privilege($1, attrelid, attnum, $3) order by attname`,
    [role, table, privilege],
  );
  return r.rows.map((row) => row.a);
}

before(async () => {
  db = await createEmptyDatabase();
  owner = new pg.Client({ connectionString: db.url });
  await owner.connect();
  await setUpSupabaseRoles(owner);
  sql = createPgClient({ connectionString: db.url, maxConnections: 2 });
  await migrate(sql, DIMS);
  store = new QueueStore(sql);
  jobs.aDone = await job('alpha', A, 'complete', 3);
  jobs.aRunning = await job('alpha-wip', A, 'processing', 1);
  jobs.bDone = await job('bravo', B, 'complete', 2);
  jobs.nobody = await job('nobody', null, 'complete', 1);
  jobs.bQueued = await job('bravo-next', B, 'queued', 0);
  functions = (
    await owner.query<{ f: string }>(`select p.oid::regprocedure::text as f from pg_proc p
      where p.pronamespace = 'public'::regnamespace and p.proname like 'rag\\_%' and p.prokind = 'f' order by 1`)
  ).rows.map((r) => r.f);
  await owner.query(OPT_IN);
});

after(async () => {
  await sql?.close();
  await owner?.end();
  await db?.drop();
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`drop role if exists ${probeRole}`).finally(() => admin.end());
});

test('applying the file again works, and adds the queue to supabase_realtime once there is one (a plain PostgreSQL has none)', async () => {
  const member = async () =>
    (await owner.query(`select 1 from pg_publication_tables where pubname = 'supabase_realtime' and tablename = 'rag_ingestion_queue'`)).rowCount;
  const publications = await owner.query(`select 1 from pg_publication where pubname = 'supabase_realtime'`);
  assert.equal(publications.rowCount, 0, 'the opt-in created a publication');
  await owner.query(OPT_IN);
  assert.equal(await member(), 0);
  await owner.query('create publication supabase_realtime'); // as every Supabase project has it
  await owner.query(OPT_IN);
  assert.equal(await member(), 1);
  await owner.query(OPT_IN);
  assert.equal(await member(), 1);
  const policies = await owner.query<{ n: number }>(`select count(*)::int as n from pg_policy where polname like 'rag\\_app\\_%'`);
  assert.equal(policies.rows[0].n, 3);
  assert.deepEqual(await columnsWith('authenticated', 'rag_ingestion_queue', 'SELECT'), [...READABLE.rag_ingestion_queue].sort());
});

test('the file refuses a database that is not Supabase-like or whose schema is older than version 5', async () => {
  await owner.query('begin');
  try {
    await owner.query(`create or replace function rag_schema_version() returns integer language sql immutable as $$ select 4 $$`);
    await assert.rejects(owner.query(OPT_IN), /needs rag-worker schema version 5 or later, this database has 4/);
  } finally {
    await owner.query('rollback');
  }
  await owner.query('begin');
  try {
    await owner.query('drop function auth.uid() cascade'); // (with the policies, in this rolled-back transaction)
    await assert.rejects(owner.query(OPT_IN), /is for Supabase: it needs the role authenticated and the function auth\.uid\(\)/);
  } finally {
    await owner.query('rollback');
  }
});

test('anon: no privilege on any table, view, column or rag_* function, even with a JWT subject', async () => {
  for (const rel of [...TABLES, ...VIEWS]) {
    const r = await owner.query<{ table: boolean; column: boolean }>(
      `select has_table_privilege('anon', $1, 'select, insert, update, delete, truncate, references, trigger') as table,
              has_any_column_privilege('anon', $1, 'select, insert, update, references') as column`,
      [rel],
    );
    assert.deepEqual(r.rows[0], { table: false, column: false }, `anon on ${rel}`);
    assert.deepEqual(await asRole(owner, 'anon', `select count(*) from ${rel}`, { claims: { sub: A, role: 'anon' } }), { code: '42501' }, `anon reading ${rel}`);
  }
  for (const f of functions) {
    const r = await owner.query<{ ok: boolean }>(`select has_function_privilege('anon', $1, 'execute') as ok`, [f]);
    assert.equal(r.rows[0].ok, false, `anon may execute ${f}`);
  }
  assert.deepEqual(await asRole(owner, 'anon', `select * from rag_match_chunks('${QUERY}'::vector, 5)`, { claims: { sub: A } }), { code: '42501' });
  assert.deepEqual(await asRole(owner, 'anon', `select * from rag_hybrid_chunks('chunk', '${QUERY}'::vector, 5)`), { code: '42501' });
});

test("authenticated with A's JWT: exactly A's jobs (with their progress), A's published documents and chunks; B the same for B", async () => {
  const progress = `select id, document_id, status, chunks_done, chunks_total, segments_done, segments_total, error_detail
                      from rag_ingestion_queue order by document_id`;
  const aJobs = rowsOf(await asA(progress));
  assert.deepEqual(
    aJobs.map((r) => [r.id, r.status, r.chunks_done]),
    [[jobs.aDone.id, 'complete', 3], [jobs.aRunning.id, 'processing', 1]], // alpha-<n>-… sorts before alpha-wip-…
  );
  assert.deepEqual(rowsOf(await asB(progress)).map((r) => r.id).sort(), [jobs.bDone.id, jobs.bQueued.id].sort());

  const documents = 'select document_id, version, title, chunk_count from rag_documents order by document_id';
  assert.deepEqual(rowsOf(await asA(documents)), [{ document_id: jobs.aDone.documentId, version: '1', title: 'alpha title', chunk_count: 3 }]);
  assert.deepEqual(rowsOf(await asB(documents)).map((r) => r.document_id), [jobs.bDone.documentId]);

  // A's job in flight has a saved chunk: it is not published, so A does not see it (nor does the search).
  const chunks = 'select document_id, chunk_index, content from rag_chunks order by document_id, chunk_index';
  assert.deepEqual(
    rowsOf(await asA(chunks)),
    jobs.aDone.chunks.map((c) => ({ document_id: jobs.aDone.documentId, chunk_index: c.index, content: c.content })),
  );
  assert.deepEqual(rowsOf(await asB(chunks)).map((r) => r.content), jobs.bDone.chunks.map((c) => c.content));
  const all = await owner.query<{ n: number }>('select count(*)::int as n from rag_chunks');
  assert.equal(all.rows[0].n, 3 + 1 + 2 + 1, 'the rows the policies hide are there');

  // The older PostgREST setting (request.jwt.claim.sub) names A too; no subject: nothing.
  assert.deepEqual(rowsOf(await asRole(owner, 'authenticated', progress, { sub: A })).map((r) => r.id).sort(), [jobs.aDone.id, jobs.aRunning.id].sort());
  for (const statement of [progress, documents, chunks]) assert.deepEqual(rowsOf(await asRole(owner, 'authenticated', statement)), []);
  // A user with no jobs at all.
  assert.deepEqual(rowsOf(await asRole(owner, 'authenticated', progress, jwt(randomUUID()))), []);
});

test('authenticated: exactly the granted columns; payload, metadata, lease tokens, worker ids and the rest fail with 42501', async () => {
  for (const [table, readable] of Object.entries(READABLE)) {
    assert.deepEqual(await columnsWith('authenticated', table, 'SELECT'), [...readable].sort(), `readable columns of ${table}`);
    for (const privilege of ['INSERT', 'UPDATE', 'REFERENCES']) assert.deepEqual(await columnsWith('authenticated', table, privilege), [], `${privilege} on ${table}`);
    const all = (await owner.query<{ a: string }>(`select attname as a from pg_attribute where attrelid = $1::regclass and attnum > 0 and not attisdropped`, [table])).rows.map((r) => r.a);
    const hidden = all.filter((c) => !readable.includes(c));
    assert.ok(hidden.length > 0, table);
    for (const column of hidden) assert.deepEqual(await asA(`select ${column} from ${table}`), { code: '42501' }, `${table}.${column}`);
    for (const column of readable) assert.ok('rows' in (await asA(`select ${column} from ${table}`)), `${table}.${column}`);
    assert.deepEqual(await asA(`select * from ${table}`), { code: '42501' }, `select * from ${table}`);
  }
  const hiddenQueue = (await owner.query<{ a: string }>(`select attname as a from pg_attribute where attrelid = 'rag_ingestion_queue'::regclass and attnum > 0
      and not attisdropped and not has_column_privilege('authenticated', attrelid, attnum, 'SELECT')`)).rows.map((r) => r.a);
  for (const secret of ['payload', 'metadata', 'worker_id', 'lease_token', 'lease_expires_at', 'attempt_history', 'usage', 'analysis']) {
    assert.ok(hiddenQueue.includes(secret), `authenticated may read rag_ingestion_queue.${secret}`);
  }
  // Not even through a row value or a function of the row.
  assert.deepEqual(await asA(`select to_jsonb(q) from rag_ingestion_queue q`), { code: '42501' });
  for (const rel of ['rag_chunk_staging', 'rag_schema_migrations', 'rag_rate_shares', ...VIEWS]) {
    assert.deepEqual(await asA(`select count(*) from ${rel}`), { code: '42501' }, rel);
  }
});

test('authenticated cannot insert, update, delete or truncate anything, and changes nothing trying', async () => {
  const snapshot = async () =>
    (await owner.query(`select (select jsonb_agg(q order by id) from rag_ingestion_queue q)::text as q,
                               (select jsonb_agg(d order by document_id) from rag_documents d)::text as d,
                               (select count(*) from rag_chunks) as c`)).rows[0];
  const before = await snapshot();
  const someColumn: Record<string, string> = {
    rag_ingestion_queue: 'status', rag_documents: 'title', rag_chunks: 'content', rag_chunk_staging: 'content',
    rag_schema_migrations: 'name', rag_rate_shares: 'worker_id', rag_unpublished_chunks: 'content',
  };
  for (const rel of [...TABLES, ...VIEWS]) {
    const r = await owner.query<{ ok: boolean }>(`select has_table_privilege('authenticated', $1, 'insert, update, delete, truncate, references, trigger') as ok`, [rel]);
    assert.equal(r.rows[0].ok, false, `authenticated has a write privilege on ${rel}`);
    const column = someColumn[rel];
    for (const statement of [
      `insert into ${rel} default values`,
      `update ${rel} set ${column} = ${column}`,
      `delete from ${rel}`,
      `truncate ${rel}`,
    ]) {
      // The view (a union) is not updatable at all: PostgreSQL refuses before it checks privileges.
      const expected = VIEWS.includes(rel) ? (statement.startsWith('truncate') ? '42809' : '55000') : '42501';
      assert.deepEqual(await asA(statement), { code: expected }, `${rel}: ${statement}`);
    }
  }
  assert.deepEqual(await asA(`update rag_ingestion_queue set status = 'cancelled' where id = $1`, [jobs.aRunning.id]), { code: '42501' });
  assert.deepEqual(await asA(`insert into rag_ingestion_queue (document_id, payload, metadata) values ('x', '{}', $1::jsonb)`, [JSON.stringify({ owner_id: A })]), { code: '42501' });
  assert.deepEqual(await snapshot(), before);
});

test("authenticated executes the search functions only: the worker's state-changing rag_* functions fail with 42501", async () => {
  for (const f of functions) {
    const r = await owner.query<{ ok: boolean }>(`select has_function_privilege('authenticated', $1, 'execute') as ok`, [f]);
    assert.equal(r.rows[0].ok, SEARCH_FUNCTIONS.includes(f.replace(/\(.*/, '')), `authenticated ${r.rows[0].ok ? 'may' : 'may not'} execute ${f}`);
  }
  const lease = await owner.query<{ lease_token: string; worker_id: string }>('select lease_token, worker_id from rag_ingestion_queue where id = $1', [jobs.aRunning.id]);
  const { lease_token: token, worker_id: worker } = lease.rows[0];
  const calls: [string, unknown[]][] = [
    [`select rag_enqueue('mine', '1', null, 'text', '{"text": "hi"}'::jsonb, $1::jsonb)`, [JSON.stringify({ owner_id: A })]],
    [`select * from rag_claim_jobs('browser', 10, 60, 5)`, []],
    [`select * from rag_extend_leases($1, array[$2]::uuid[], array[$3]::uuid[], 60)`, [worker, jobs.aRunning.id, token]],
    [`select rag_start_job($1, $2, $3, 1, 1, 'x')`, [jobs.aRunning.id, worker, token]],
    [`select * from rag_save_chunk_batches($1, 'm', '[]'::jsonb, '{}'::text[])`, [worker]],
    [`select rag_complete_job($1, $2, $3)`, [jobs.aRunning.id, worker, token]],
    [`select rag_fail_job($1, $2, $3, 'x', 'bad_input')`, [jobs.aRunning.id, worker, token]],
    [`select rag_release_jobs($1, array[$2]::uuid[], array[$3]::uuid[], 'x')`, [worker, jobs.aRunning.id, token]],
    [`select rag_cancel_job($1)`, [jobs.aRunning.id]],
    [`select * from rag_retry_jobs(null)`, []],
    [`select rag_prune_jobs(interval '0')`, []],
    [`select rag_rate_share('acct', 'browser', true)`, []],
    [`select * from rag_get_jobs(array[$1]::uuid[])`, [jobs.aRunning.id]],
    [`select * from rag_list_jobs()`, []],
    [`select rag_apply_privileges()`, []],
    [`select rag_app_read_privileges()`, []],
  ];
  for (const [statement, params] of calls) assert.deepEqual(await asA(statement, params), { code: '42501' }, statement);
  const status = await owner.query('select status, worker_id, lease_token from rag_ingestion_queue where id = $1', [jobs.aRunning.id]);
  assert.deepEqual(status.rows[0], { status: 'processing', worker_id: worker, lease_token: token });
});

test("the search functions return only the caller's chunks, with the columns the service role gets", async () => {
  const match = (document?: string) => `select * from rag_match_chunks('${QUERY}'::vector, 50${document ? `, '${document}'` : ''}) order by document_id, chunk_index`;
  const hybrid = (document?: string) => `select * from rag_hybrid_chunks('chunk', '${QUERY}'::vector, 50${document ? `, '${document}'` : ''}) order by document_id, chunk_index`;
  const contents = (rows: Record<string, unknown>[]) => rows.map((r) => r.content);
  const aContents = jobs.aDone.chunks.map((c) => c.content);
  const bContents = jobs.bDone.chunks.map((c) => c.content);

  const asService = rowsOf(await asRole(owner, 'service_role', match()));
  assert.equal(asService.length, 3 + 2 + 1, 'service_role: every published chunk');
  const mine = rowsOf(await asA(match()));
  assert.deepEqual(contents(mine), aContents);
  assert.deepEqual(Object.keys(mine[0]), Object.keys(asService[0]));
  assert.deepEqual(contents(rowsOf(await asB(match()))), bContents);
  assert.deepEqual(rowsOf(await asA(match(jobs.bDone.documentId))), [], "A asking for B's document");
  assert.deepEqual(rowsOf(await asA(match(jobs.nobody.documentId))), []);
  assert.deepEqual(contents(rowsOf(await asA(match(jobs.aDone.documentId)))), aContents);

  const hybridService = rowsOf(await asRole(owner, 'service_role', hybrid()));
  assert.equal(hybridService.length, 6);
  const hybridMine = rowsOf(await asA(hybrid()));
  assert.deepEqual(contents(hybridMine), aContents);
  assert.deepEqual(Object.keys(hybridMine[0]), Object.keys(hybridService[0]));
  assert.ok(hybridMine.every((r) => r.text_rank !== null), 'the full-text ranking ran for A');
  assert.deepEqual(contents(rowsOf(await asB(hybrid()))), bContents);
  assert.deepEqual(rowsOf(await asA(hybrid(jobs.bDone.documentId))), []);
  // No subject: no rows (not an error).
  assert.deepEqual(rowsOf(await asRole(owner, 'authenticated', match())), []);
  assert.deepEqual(rowsOf(await asRole(owner, 'authenticated', hybrid())), []);
});

test("Realtime's check of a change (a select by primary key as the subscriber, with its claims) passes for A's jobs only", async () => {
  // What Supabase Realtime runs before sending a change to a subscriber: `select exists (select 1 from <table> where
  // <pk> = ...)` as the subscriber's role with request.jwt.claims set; it sends only the columns that role may select.
  const visible = async (id: string, sub: string) =>
    rowsOf(await asRole(owner, 'authenticated', 'select exists (select 1 from rag_ingestion_queue where id = $1) as ok', { ...jwt(sub), params: [id] }))[0].ok;
  assert.equal(await visible(jobs.aRunning.id, A), true);
  assert.equal(await visible(jobs.aDone.id, A), true);
  assert.equal(await visible(jobs.bQueued.id, A), false);
  assert.equal(await visible(jobs.bQueued.id, B), true);
  assert.equal(await visible(jobs.nobody.id, A), false);
  const sent = await columnsWith('authenticated', 'rag_ingestion_queue', 'SELECT');
  assert.ok(sent.includes('id') && sent.includes('chunks_done') && !sent.includes('payload'), sent.join(', '));
});

test('service_role (the worker on Supabase) still executes every rag_* function and sees and changes every row', async () => {
  const all = (
    await owner.query<{ f: string }>(`select p.oid::regprocedure::text as f from pg_proc p
      where p.pronamespace = 'public'::regnamespace and p.proname like 'rag\\_%' and p.prokind = 'f'`)
  ).rows.map((r) => r.f);
  assert.ok(all.includes('rag_app_read_privileges()'), all.join(', '));
  for (const f of all) {
    const r = await owner.query<{ ok: boolean }>(`select has_function_privilege('service_role', $1, 'execute') as ok`, [f]);
    assert.equal(r.rows[0].ok, true, `service_role may not execute ${f}`);
  }
  assert.deepEqual(rowsOf(await asRole(owner, 'service_role', 'select count(*)::int as n from rag_ingestion_queue')), [{ n: 5 }]);
  assert.deepEqual(
    rowsOf(await asRole(owner, 'service_role', 'select payload ->> $2 as text from rag_ingestion_queue where id = $1', { params: [jobs.bQueued.id, 'text'] })),
    [{ text: 'secret transcript of bravo-next' }],
  );
  assert.deepEqual(rowsOf(await asRole(owner, 'service_role', 'select count(*)::int as n from rag_unpublished_chunks')), [{ n: 1 }]);
  const enqueued = await asRole(owner, 'service_role', `select rag_enqueue('svc', '1', null, 'text', '{"text": "hi"}'::jsonb) is not null as ok`);
  assert.deepEqual(enqueued, { rows: [{ ok: true }] });
  const renamed = await asRole(owner, 'service_role', `update rag_ingestion_queue set title = 'renamed' where id = $1 returning title`, { params: [jobs.bQueued.id] });
  assert.deepEqual(renamed, { rows: [{ title: 'renamed' }] });
});

test('`rag-worker migrate` (which re-applies every privilege) keeps the opt-in grants', async () => {
  const result = await migrate(sql, DIMS);
  assert.deepEqual(result.applied, []);
  await owner.query('select rag_apply_privileges()');
  for (const [table, readable] of Object.entries(READABLE)) {
    assert.deepEqual(await columnsWith('authenticated', table, 'SELECT'), [...readable].sort(), table);
  }
  assert.deepEqual(
    rowsOf(await asA(`select content from rag_match_chunks('${QUERY}'::vector, 50) order by document_id, chunk_index`)).map((r) => r.content),
    jobs.aDone.chunks.map((c) => c.content),
  );
  assert.deepEqual(rowsOf(await asA('select id from rag_ingestion_queue order by id')).map((r) => r.id), [jobs.aDone.id, jobs.aRunning.id].sort());
  // ...and nothing more: the browser roles still execute no other rag_* function.
  for (const f of functions.filter((name) => !SEARCH_FUNCTIONS.includes(name.replace(/\(.*/, '')))) {
    const r = await owner.query<{ ok: boolean }>(`select has_function_privilege('authenticated', $1, 'execute') or has_function_privilege('anon', $1, 'execute') as ok`, [f]);
    assert.equal(r.rows[0].ok, false, f);
  }
});

test("a worker role that only the app's policies apply to is still told that it sees no job (checkAccess)", async () => {
  await owner.query(`create role ${probeRole} nologin`);
  await owner.query(`grant select, update on rag_ingestion_queue to ${probeRole};
    grant execute on function rag_claim_jobs(text, integer, integer, integer) to ${probeRole}`);
  const as = (role: string): SqlClient => ({
    kind: 'postgres',
    crossProcessNotify: false,
    async query<T>(statement: string, params?: unknown[]) {
      const r = await asRole(owner, role, statement, { params });
      if ('code' in r) throw Object.assign(new Error(`failed: ${r.code}`), { code: r.code });
      return r.rows as T[];
    },
    exec: () => Promise.reject(new Error('not used')),
    listen: () => Promise.reject(new Error('not used')),
    close: () => Promise.resolve(),
  });
  await assert.rejects(checkAccess(as(probeRole)), /cannot see any row of rag_ingestion_queue/);
  // A policy that does apply to it counts: the check then trusts it.
  await owner.query(`grant authenticated to ${probeRole}`);
  await checkAccess(as(probeRole));
  await owner.query(`revoke authenticated from ${probeRole}`);
});

test("Supabase's database linter after the opt-in: RLS on, invoker views, pinned search_path, initplan-wrapped auth calls, no definer function for the browser roles, nothing for anon", async () => {
  const noRls = await owner.query(`select relname from pg_class where relnamespace = 'public'::regnamespace and relkind in ('r', 'p')
      and relname like 'rag\\_%' and not relrowsecurity`);
  assert.deepEqual(noRls.rows, [], 'rls_disabled_in_public');
  const definerViews = await owner.query(`select relname from pg_class where relnamespace = 'public'::regnamespace and relkind = 'v'
      and relname like 'rag\\_%' and not coalesce('security_invoker=true' = any (reloptions), false)`);
  assert.deepEqual(definerViews.rows, [], 'security_definer_view');
  const mutablePath = await owner.query(`select proname from pg_proc where pronamespace = 'public'::regnamespace and proname like 'rag\\_%'
      and not exists (select 1 from unnest(coalesce(proconfig, '{}')) c where c like 'search_path=%')`);
  assert.deepEqual(mutablePath.rows, [], 'function_search_path_mutable');
  const definerExecutable = await owner.query(`select p.oid::regprocedure::text from pg_proc p where p.pronamespace = 'public'::regnamespace and p.prosecdef
      and (has_function_privilege('anon', p.oid, 'execute') or has_function_privilege('authenticated', p.oid, 'execute'))`);
  assert.deepEqual(definerExecutable.rows, [], 'anon/authenticated_security_definer_function_executable');

  const policies = await owner.query<{ tablename: string; policyname: string; roles: string[]; cmd: string; permissive: string; qual: string | null; with_check: string | null }>(
    `select tablename, policyname, roles::text[] as roles, cmd, permissive, qual, with_check from pg_policies
      where schemaname = 'public' and tablename like 'rag\\_%' order by tablename`,
  );
  assert.deepEqual(policies.rows.map((p) => [p.tablename, p.roles, p.cmd, p.permissive]), [
    ['rag_chunks', ['authenticated'], 'SELECT', 'PERMISSIVE'],
    ['rag_documents', ['authenticated'], 'SELECT', 'PERMISSIVE'],
    ['rag_ingestion_queue', ['authenticated'], 'SELECT', 'PERMISSIVE'],
  ]);
  const unwrapped = policies.rows.filter((p) =>
    [p.qual, p.with_check].some((e) => e !== null && /(auth)\.(uid|jwt|role|email)\(\)/.test(e) && !/select\s+(auth)\.(uid|jwt|role|email)\(\)/.test(e.toLowerCase())),
  );
  assert.deepEqual(unwrapped.map((p) => p.policyname), [], 'auth_rls_initplan');
  assert.ok(policies.rows.filter((p) => /auth\.uid\(\)/.test(p.qual ?? '')).length === 2, 'the owner policies call auth.uid()');
  assert.deepEqual(policies.rows.filter((p) => /^\(?true\)?$/i.test((p.qual ?? '').trim())).map((p) => p.policyname), [], 'rls_policy_always_true');
  assert.deepEqual(policies.rows.filter((p) => /user_metadata/.test(`${p.qual} ${p.with_check}`)).map((p) => p.policyname), [], 'rls_references_user_metadata');
  // multiple_permissive_policies: one per table, role and command (the listing above); policy_exists_rls_disabled:
  // every table with a policy has RLS on (rls_disabled_in_public above).

  const anonReads = await owner.query(`select relname from pg_class where relnamespace = 'public'::regnamespace and relname like 'rag\\_%'
      and relkind in ('r', 'p', 'v', 'm', 'f', 'S') and (has_any_column_privilege('anon', oid, 'select, insert, update, references')
        or has_table_privilege('anon', oid, 'select, insert, update, delete, truncate, references, trigger'))`);
  assert.deepEqual(anonReads.rows, [], 'anon reaches a rag_* relation');
  const anonCalls = await owner.query(`select proname from pg_proc where pronamespace = 'public'::regnamespace and proname like 'rag\\_%'
      and has_function_privilege('anon', oid, 'execute')`);
  assert.deepEqual(anonCalls.rows, [], 'anon executes a rag_* function');
});
