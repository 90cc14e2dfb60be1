/**
 * Nothing of the schema is exposed to Supabase's browser-facing roles. A database is set up the way a Supabase
 * project is (roles anon, authenticated and service_role; default privileges granting every new table, sequence
 * and function in `public` to all three), then migrated by the real `migrate`, and given a job in flight with
 * saved chunks. Then, for each role × each table, view and function: what it may do. anon and authenticated:
 * nothing (no privilege, and trying fails with 42501); service_role (the worker's role on Supabase): everything.
 * Also the checks of Supabase's database linter that concern these objects: RLS enabled on every table, no view
 * running with its owner's rights, no function with a mutable search_path, none executable by anon.
 * The three roles are cluster-wide: created NOLOGIN when missing and left in place (they grant nothing by
 * themselves, and they are what a Supabase database has).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { createPgClient } from '../../src/main/stores/pg-client.ts';
import { migrate } from '../../src/main/stores/migrate.ts';
import { QueueStore } from '../../src/main/stores/queue-store.ts';
import type { SqlClient } from '../../src/main/stores/sql-client.ts';
import { docId, embeddingsFor, enqueueAndClaim, makeChunks, saveChunks } from '../support/queue-fixtures.ts';
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
  await owner.query(`do $$ begin
    if not exists (select 1 from pg_roles where rolname = 'anon') then create role anon nologin noinherit; end if;
    if not exists (select 1 from pg_roles where rolname = 'authenticated') then create role authenticated nologin noinherit; end if;
    if not exists (select 1 from pg_roles where rolname = 'service_role') then create role service_role nologin noinherit bypassrls; end if;
  end $$`);
  await owner.query(`grant usage on schema public to anon, authenticated, service_role;
    alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
    alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
    alter default privileges in schema public grant all on sequences to anon, authenticated, service_role`);
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
async function as(role: string, statement: string): Promise<{ rows: unknown[] } | { code: string }> {
  await owner.query('begin');
  try {
    await owner.query(`set local role ${role}`);
    return { rows: (await owner.query(statement)).rows };
  } catch (error) {
    return { code: (error as { code?: string }).code ?? String(error) };
  } finally {
    await owner.query('rollback');
  }
}

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
});
