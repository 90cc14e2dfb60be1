/**
 * Nothing of the schema is exposed to Supabase's browser-facing roles. A database is set up the way a Supabase
 * project is (roles anon, authenticated and service_role; default privileges granting every new table, sequence
 * and function in `public` to all three), then migrated by the real `migrate`, and given a job in flight with
 * saved chunks. Then, for each role × each table, view and function: what it may do. anon and authenticated:
 * nothing (no privilege, and trying fails with 42501); service_role (the worker's role on Supabase): everything.
 * Also the checks of Supabase's database linter that concern these objects: RLS enabled on every table, no view
 * running with its owner's rights, no function with a mutable search_path, none executable by anon. And
 * rag_apply_privileges() finds what it covers in the catalog: a rag_* table, view, sequence and function added later
 * get the same treatment. The roles and the auth schema come from test/support/supabase-roles.ts.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { createPgClient } from '../../src/main/stores/pg-client.ts';
import { migrate } from '../../src/main/stores/migrate.ts';
import { QueueStore } from '../../src/main/stores/queue-store.ts';
import type { SqlClient } from '../../src/main/stores/sql-client.ts';
import { docId, embeddingsFor, enqueueAndClaim, makeChunks, saveChunks } from '../support/queue-fixtures.ts';
import { asRole, setUpSupabaseRoles } from '../support/supabase-roles.ts';
import { createEmptyDatabase, type TestDatabase } from '../support/test-db.ts';

const DIMS = 3;
const BROWSER_ROLES = ['anon', 'authenticated'] as const;
const TABLES = ['rag_ingestion_queue', 'rag_documents', 'rag_chunks', 'rag_chunk_staging', 'rag_schema_migrations', 'rag_rate_shares'];
const VIEWS = ['rag_unpublished_chunks'];

let db: TestDatabase;
let owner: pg.Client;
let sql: SqlClient;
let functions: string[];

before(async () => {
  db = await createEmptyDatabase();
  owner = new pg.Client({ connectionString: db.url });
  await owner.connect();
  await setUpSupabaseRoles(owner);
  sql = createPgClient({ connectionString: db.url, maxConnections: 2 });
  await migrate(sql, DIMS);
  // Something to leak: a job in flight with saved, unpublished chunks, and a published document.
  const store = new QueueStore(sql);
  const { lease } = await enqueueAndClaim(store, 'w-exposure', { documentId: docId('exposed') });
  await store.startJob(lease, 2, null, 'sig');
  const chunks = makeChunks(2, { tag: 'exposed' });
  await saveChunks(store, lease, chunks, embeddingsFor(chunks));
  functions = (
    await owner.query<{ f: string }>(`select p.oid::regprocedure::text as f from pg_proc p
      where p.pronamespace = 'public'::regnamespace and p.proname like 'rag\\_%' and p.prokind = 'f' order by 1`)
  ).rows.map((r) => r.f);
});

after(async () => {
  await sql?.close();
  await owner?.end();
  await db?.drop();
});

/** Runs `statement` as `role` in a rolled-back transaction; resolves with the rows, or the SQLSTATE it failed with. */
const as = (role: string, statement: string) => asRole(owner, role, statement);

test('the schema has the objects this test covers', () => {
  assert.ok(functions.length >= 20, functions.join(', '));
  assert.ok(functions.includes('rag_match_chunks(vector,integer,text,text)'), functions.join(', '));
});

for (const role of BROWSER_ROLES) {
  test(`${role}: no privilege on any table or view, and reading fails (42501) even where rows exist`, async () => {
    for (const rel of [...TABLES, ...VIEWS]) {
      for (const privilege of ['select', 'insert', 'update', 'delete']) {
        const r = await owner.query<{ ok: boolean }>('select has_table_privilege($1, $2, $3) as ok', [role, rel, privilege]);
        assert.equal(r.rows[0].ok, false, `${role} may ${privilege} on ${rel}`);
      }
      assert.deepEqual(await as(role, `select count(*) from ${rel}`), { code: '42501' }, `${role} reading ${rel}`);
    }
  });

  test(`${role}: no privilege on any rag_* sequence (Supabase's default privileges grant them all)`, async () => {
    const sequences = await owner.query<{ s: string }>(`select oid::regclass::text as s from pg_class
        where relnamespace = 'public'::regnamespace and relkind = 'S' and relname like 'rag\\_%'`);
    assert.ok(sequences.rows.some((r) => r.s === 'rag_chunks_id_seq'), JSON.stringify(sequences.rows));
    for (const { s: seq } of sequences.rows) {
      const r = await owner.query<{ ok: boolean }>(`select has_sequence_privilege($1, $2, 'usage, select, update') as ok`, [role, seq]);
      assert.equal(r.rows[0].ok, false, `${role} may use ${seq}`);
    }
    assert.deepEqual(await as(role, `select nextval('rag_chunks_id_seq')`), { code: '42501' });
  });

  test(`${role}: executes no rag_* function`, async () => {
    for (const f of functions) {
      const r = await owner.query<{ ok: boolean }>('select has_function_privilege($1, $2, $3) as ok', [role, f, 'execute']);
      assert.equal(r.rows[0].ok, false, `${role} may execute ${f}`);
    }
    assert.deepEqual(await as(role, `select * from rag_match_chunks('[1,0,0]'::vector, 5)`), { code: '42501' });
    assert.deepEqual(await as(role, `select rag_enqueue('x', '1', null, 'text', '{"text": "hi"}'::jsonb)`), { code: '42501' });
  });
}

test('service_role (the worker on Supabase): executes every rag_* function and sees the rows (it bypasses RLS)', async () => {
  for (const f of functions) {
    const r = await owner.query<{ ok: boolean }>('select has_function_privilege($1, $2, $3) as ok', ['service_role', f, 'execute']);
    assert.equal(r.rows[0].ok, true, `service_role may not execute ${f}`);
  }
  const unpublished = await as('service_role', 'select count(*)::int as n from rag_unpublished_chunks');
  assert.deepEqual(unpublished, { rows: [{ n: 2 }] });
  const enqueued = await as('service_role', `select rag_enqueue('svc', '1', null, 'text', '{"text": "hi"}'::jsonb) is not null as ok`);
  assert.deepEqual(enqueued, { rows: [{ ok: true }] });
});

test("Supabase's database linter: RLS on every table, views with their caller's rights, pinned search_path, nothing for anon", async () => {
  const noRls = await owner.query(`select relname from pg_class where relnamespace = 'public'::regnamespace and relkind = 'r'
      and relname like 'rag\\_%' and not relrowsecurity`);
  assert.deepEqual(noRls.rows, [], 'rls_disabled_in_public');
  const definerViews = await owner.query(`select relname from pg_class where relnamespace = 'public'::regnamespace and relkind = 'v'
      and relname like 'rag\\_%' and not coalesce('security_invoker=true' = any (reloptions), false)`);
  assert.deepEqual(definerViews.rows, [], 'security_definer_view');
  const mutablePath = await owner.query(`select proname from pg_proc where pronamespace = 'public'::regnamespace and proname like 'rag\\_%'
      and not exists (select 1 from unnest(coalesce(proconfig, '{}')) c where c like 'search_path=%')`);
  assert.deepEqual(mutablePath.rows, [], 'function_search_path_mutable');
  const tables = await owner.query(`select count(*)::int as n from pg_class where relnamespace = 'public'::regnamespace and relname like 'rag\\_%' and relkind in ('r', 'v')`);
  assert.equal(tables.rows[0].n, TABLES.length + VIEWS.length, 'a new table or view: add it to this test');
  // The opt-in app-read policies (supabase/opt-in/app-read-policies.sql) are not part of `migrate`.
  const policies = await owner.query(`select polname from pg_policy where polrelid::regclass::text like 'rag\\_%'`);
  assert.deepEqual(policies.rows, [], 'migrate created RLS policies');
  assert.equal((await owner.query(`select 1 from pg_proc where proname = 'rag_app_read_privileges'`)).rowCount, 0);
});

test('rag_apply_privileges() covers what the catalog has: a rag_* table, view, sequence and function added later', async () => {
  await owner.query('begin');
  try {
    // Created as the owner, so Supabase's default privileges grant each of them to anon and authenticated.
    await owner.query(`create table rag_probe_added (id bigint generated always as identity primary key, note text);
      create view rag_probe_added_view as select id, note from rag_probe_added;
      create function rag_probe_added_fn() returns integer language sql as $$ select 1 $$`);
    const before = await owner.query<{ ok: boolean }>(`select has_table_privilege('anon', 'rag_probe_added', 'select') as ok`);
    assert.equal(before.rows[0].ok, true, 'the default privileges did not grant the new table: this test proves nothing');
    await owner.query('select rag_apply_privileges()');
    const facts = await owner.query<Record<string, boolean>>(`select
        (select relrowsecurity from pg_class where oid = 'rag_probe_added'::regclass) as rls,
        (select coalesce('security_invoker=true' = any (reloptions), false) from pg_class where oid = 'rag_probe_added_view'::regclass) as invoker,
        (select exists (select 1 from unnest(proconfig) c where c like 'search_path=%') from pg_proc where oid = 'rag_probe_added_fn()'::regprocedure) as pinned,
        has_table_privilege('anon', 'rag_probe_added', 'select') or has_table_privilege('authenticated', 'rag_probe_added', 'select')
          or has_table_privilege('anon', 'rag_probe_added_view', 'select') or has_table_privilege('authenticated', 'rag_probe_added_view', 'select') as browser_reads,
        has_sequence_privilege('anon', 'rag_probe_added_id_seq', 'usage') or has_sequence_privilege('authenticated', 'rag_probe_added_id_seq', 'usage') as browser_sequence,
        has_function_privilege('anon', 'rag_probe_added_fn()', 'execute') or has_function_privilege('authenticated', 'rag_probe_added_fn()', 'execute') as browser_calls,
        has_table_privilege('service_role', 'rag_probe_added', 'select, insert, update, delete') as service_writes,
        has_function_privilege('service_role', 'rag_probe_added_fn()', 'execute') as service_calls`);
    assert.deepEqual(facts.rows[0], {
      rls: true, invoker: true, pinned: true, browser_reads: false, browser_sequence: false, browser_calls: false, service_writes: true, service_calls: true,
    });
  } finally {
    await owner.query('rollback');
  }
});
