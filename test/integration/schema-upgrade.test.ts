/**
 * Versioned migrations: a database on the single-file schema of version 1 (test/fixtures/schema, as `migrate`
 * applied it before migrations were numbered), with jobs and chunks in it, is upgraded by `migrate` without losing
 * any; the numbered files applied in file-name order without `migrate` (as the Supabase CLI does) give the same
 * schema; `migrate` applies only what is missing and reports the versions. PostgreSQL and PGlite.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, describe, test } from 'node:test';
import { createPgClient } from '../../src/main/stores/pg-client.ts';
import { createPgliteClient } from '../../src/main/stores/pglite-client.ts';
import { inspectSchema, migrate, migrationFiles, SCHEMA_VERSION } from '../../src/main/stores/migrate.ts';
import { QueueStore, toVectorLiteral } from '../../src/main/stores/queue-store.ts';
import type { SqlClient } from '../../src/main/stores/sql-client.ts';
import { createEmptyDatabase, type TestDatabase } from '../support/test-db.ts';

const V1 = fs.readFileSync(new URL('../fixtures/schema/v1-single-file.sql', import.meta.url), 'utf8');
const DIMS = 3;

async function open(kind: 'postgres' | 'pglite'): Promise<{ sql: SqlClient; close(): Promise<void> }> {
  if (kind === 'pglite') {
    const sql = await createPgliteClient(undefined);
    return { sql, close: () => sql.close() };
  }
  const db: TestDatabase = await createEmptyDatabase();
  const sql = createPgClient({ connectionString: db.url, maxConnections: 2, applicationName: 'schema-upgrade-test' });
  return {
    sql,
    async close() {
      await sql.close();
      await db.drop();
    },
  };
}

/** The version-1 schema as the old `migrate` applied it: one file, the dimension substituted into its text. */
async function applyV1(sql: SqlClient): Promise<void> {
  await sql.exec(`set client_min_messages = warning;\n${V1.replaceAll('vector(1536)', `vector(${DIMS})`)}`);
}

/** A complete ingestion and a queued job, through version 1's own functions. */
async function seedV1(sql: SqlClient): Promise<{ queuedId: string }> {
  const [done] = await sql.query<{ id: string }>(`select rag_enqueue('old-doc', '1', 'Old', 'text', '{"text": "hello"}'::jsonb, '{}'::jsonb, 0, null) as id`);
  const [claimed] = await sql.query<{ id: string; lease_token: string }>(`select id, lease_token from rag_claim_jobs('w1', 1, 60, 5)`);
  assert.equal(claimed.id, done.id);
  await sql.query('select rag_start_job($1, $2, $3, 1, 2, $4)', [claimed.id, 'w1', claimed.lease_token, 'sig']);
  const chunks = [0, 1].map((i) => ({ chunk_index: i, content: `old chunk ${i} about budgets`, token_count: 4, segment_seq_start: 1, segment_seq_end: 1, start_ms: i * 1000, end_ms: i * 1000 + 900, speakers: ['Ann'], content_hash: `h${i}` }));
  await sql.query('select rag_save_chunks($1, $2, $3, $4, $5::jsonb, $6::text[], 1, 8, 0)', [
    claimed.id,
    'w1',
    claimed.lease_token,
    'test-model',
    JSON.stringify(chunks),
    [toVectorLiteral([1, 0, 0]), toVectorLiteral([0, 1, 0])],
  ]);
  await sql.query('select rag_complete_job($1, $2, $3, 2)', [claimed.id, 'w1', claimed.lease_token]);
  const [queued] = await sql.query<{ id: string }>(`select rag_enqueue('waiting-doc', '1', null, 'text', '{"text": "later"}'::jsonb, '{}'::jsonb, 0, null) as id`);
  return { queuedId: queued.id };
}

for (const kind of ['postgres', 'pglite'] as const) {
  describe(`versioned migrations (${kind})`, () => {
    const opened: { close(): Promise<void> }[] = [];
    after(async () => {
      for (const o of opened) await o.close();
    });

    test('an upgrade from the single-file schema of version 1 keeps its jobs, chunks and documents', async () => {
      const db = await open(kind);
      opened.push(db);
      await applyV1(db.sql);
      const { queuedId } = await seedV1(db.sql);
      assert.equal((await inspectSchema(db.sql)).version, 1);

      const result = await migrate(db.sql, DIMS);
      assert.deepEqual({ from: result.from, to: result.to }, { from: 1, to: SCHEMA_VERSION });
      const facts = await inspectSchema(db.sql);
      assert.equal(facts.version, SCHEMA_VERSION);
      assert.equal(facts.dimensions, DIMS);

      const store = new QueueStore(db.sql);
      const rows = await db.sql.query<{ content: string; context: string | null }>(`select content, context from rag_chunks where document_id = 'old-doc' order by chunk_index`);
      assert.deepEqual(rows.map((r) => r.content), ['old chunk 0 about budgets', 'old chunk 1 about budgets']);
      assert.ok(rows.every((r) => r.context === null));
      const doc = await store.getDocument('old-doc');
      assert.equal(doc?.chunk_count, 2);
      assert.deepEqual(doc?.usage, {});
      // The old chunks are searchable both ways, their keyword column computed for rows written before it existed.
      assert.equal((await store.matchChunks(toVectorLiteral([1, 0, 0]), 1))[0].content, 'old chunk 0 about budgets');
      assert.equal((await store.hybridChunks('budgets', toVectorLiteral([0, 1, 0]), 2)).length, 2);
      // The queued job survives and is claimed with today's functions.
      const [job] = await store.claimJobs('w2', 5, 60, 5);
      assert.equal(job.id, queuedId);
      assert.deepEqual(job.usage, {});
      const recorded = await db.sql.query<{ version: number }>('select version from rag_schema_migrations order by version');
      assert.deepEqual(recorded.map((r) => Number(r.version)), migrationFiles().map((f) => f.version));
    });

    test('the numbered files applied in file-name order (as the Supabase CLI does) give the same schema; migrate then has nothing to do', async () => {
      const db = await open(kind);
      opened.push(db);
      // The dimension is a parameter (rag.embedding_dimensions), not text to rewrite: unset, it is 1536.
      for (const f of migrationFiles()) await db.sql.exec(`set client_min_messages = warning;\n${f.sql}`);
      const facts = await inspectSchema(db.sql);
      assert.equal(facts.version, SCHEMA_VERSION);
      assert.equal(facts.dimensions, 1536);
      const result = await migrate(db.sql, 1536);
      assert.deepEqual(result, { from: SCHEMA_VERSION, to: SCHEMA_VERSION, applied: [] });
    });

    test('migrate on a new database applies every file once, records each, and names them', async () => {
      const db = await open(kind);
      opened.push(db);
      const result = await migrate(db.sql, DIMS);
      assert.deepEqual(result, { from: 0, to: SCHEMA_VERSION, applied: migrationFiles().map((f) => f.name) });
      assert.equal((await inspectSchema(db.sql)).dimensions, DIMS);
      // A database whose record says version 1 only gets the later files.
      await db.sql.exec('delete from rag_schema_migrations where version > 1');
      const again = await migrate(db.sql, DIMS);
      assert.deepEqual(again.applied, migrationFiles().slice(1).map((f) => f.name));
    });
  });
}
