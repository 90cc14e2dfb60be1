/**
 * Applies the schema and checks that the database matches the configuration.
 *
 * The schema is numbered migration files (supabase/migrations/*.sql, in file-name order; the n-th file is schema
 * version n). Each is applied once — and is safe to apply again — and records itself in rag_schema_migrations;
 * `migrate` applies the ones a database has not had, then re-applies the privileges to every rag_* table, view,
 * sequence and function (rag_apply_privileges). The same files work unchanged as Supabase migrations. The embedding
 * dimension is a parameter of the migrations: the setting rag.embedding_dimensions, set here for the transaction.
 */
import fs from 'node:fs';
import { SchemaError, WorkerFatalError } from '../../shared/errors.ts';
import type { SqlClient } from './sql-client.ts';

const MIGRATIONS_DIR = new URL('../../../supabase/migrations/', import.meta.url);
/** Serialises concurrent `migrate` runs (several workers starting at once). */
const MIGRATE_LOCK_KEY = 7_261_128;

export interface MigrationFile {
  /** Schema version the file brings the database to (its position in file-name order, from 1). */
  version: number;
  /** File name without `.sql`. */
  name: string;
  sql: string;
}

export function migrationFiles(): MigrationFile[] {
  return fs
    .readdirSync(MIGRATIONS_DIR)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((f, i) => ({ version: i + 1, name: f.replace(/\.sql$/, ''), sql: fs.readFileSync(new URL(f, MIGRATIONS_DIR), 'utf8') }));
}

function dimensionSetting(dimensions: number, local: boolean): string {
  if (!Number.isInteger(dimensions) || dimensions < 1) throw new Error(`embedding dimensions must be a positive integer, got ${dimensions}`);
  return `set ${local ? 'local ' : ''}rag.embedding_dimensions = '${dimensions}';`;
}

/** Every migration in order, for a fresh database (`migrate --print`, test templates). */
export function migrationSql(dimensions: number): string {
  return [dimensionSetting(dimensions, false), ...migrationFiles().map((f) => `-- ${f.name}.sql\n${f.sql}`)].join('\n');
}

export interface MigrateResult {
  /** Schema version before (0: none, or one from before versions were recorded). */
  from: number;
  to: number;
  /** The files applied, in order. */
  applied: string[];
}

/** The migration versions this database has recorded; undefined when it has no record (new, or older than records). */
async function recordedVersions(sql: SqlClient): Promise<Set<number> | undefined> {
  const [r] = await sql.query<{ t: string | null }>("select to_regclass('rag_schema_migrations')::text as t");
  if (!r.t) return undefined;
  const rows = await sql.query<{ version: number }>('select version from rag_schema_migrations');
  return new Set(rows.map((row) => Number(row.version)));
}

export async function migrate(sql: SqlClient, dimensions: number): Promise<MigrateResult> {
  const before = await inspectSchema(sql);
  const recorded = await recordedVersions(sql);
  // A database without records (new, or from before the records) gets every file: each is safe to apply again.
  // So does one whose schema reports an older version than its records (a function dropped by hand).
  const current = before.version ?? 0;
  const pending = migrationFiles().filter((f) => !recorded?.has(f.version) || f.version > current);
  await sql.exec(
    [
      'set client_min_messages = warning;',
      'begin;',
      `select pg_advisory_xact_lock(${MIGRATE_LOCK_KEY});`,
      dimensionSetting(dimensions, true),
      ...pending.map((f) => f.sql),
      'select rag_apply_privileges();',
      'commit;',
    ].join('\n'),
  );
  await checkSchema(sql, dimensions);
  const after = await inspectSchema(sql);
  return { from: before.version ?? 0, to: after.version ?? 0, applied: pending.map((f) => f.name) };
}

/** The schema version this worker needs (rag_schema_version() in the migration). */
export const SCHEMA_VERSION = 6;

/** What the database has, as readiness checks, `doctor` and start-up see it. */
export interface SchemaFacts {
  /** pgvector's installed version, null when the extension is missing. */
  pgvector: string | null;
  /** The queue, its claim function and rag_chunks.embedding all exist. */
  applied: boolean;
  /** rag_schema_version(), 0 for a schema from before versions were recorded, null when not applied. */
  version: number | null;
  /** rag_chunks.embedding's dimension, null when not applied. */
  dimensions: number | null;
}

export async function inspectSchema(sql: SqlClient): Promise<SchemaFacts> {
  // The version is read from the function's source (`select <n>`), not by calling it: a role without EXECUTE on
  // the rag_* functions still learns the version, and then gets checkAccess's message about its grants.
  const [r] = await sql.query<{ pgvector: string | null; has_queue: boolean; has_fn: boolean; version_src: string | null; dims: number | null }>(`
    select (select extversion from pg_extension where extname = 'vector') as pgvector,
           to_regclass('rag_ingestion_queue') is not null as has_queue,
           exists (select 1 from pg_proc where proname = 'rag_claim_jobs') as has_fn,
           (select prosrc from pg_proc where proname = 'rag_schema_version' limit 1) as version_src,
           (select a.atttypmod from pg_attribute a
             where a.attrelid = to_regclass('rag_chunks') and a.attname = 'embedding' and not a.attisdropped) as dims`);
  const applied = r.has_queue && r.has_fn && r.dims !== null;
  const declared = r.version_src === null ? null : /select\s+(\d+)/i.exec(r.version_src);
  const version = !applied ? null : declared ? Number(declared[1]) : 0;
  return { pgvector: r.pgvector, applied, version, dimensions: r.dims === null ? null : Number(r.dims) };
}

/**
 * The problem with these facts for a worker configured with `dimensions`, or null: SchemaError when pgvector or
 * the schema is missing or older than SCHEMA_VERSION (`rag-worker migrate` fixes it), WorkerFatalError naming
 * the setting for a dimension mismatch.
 */
export function schemaProblem(facts: SchemaFacts, dimensions: number): WorkerFatalError | null {
  if (facts.pgvector === null) {
    return new SchemaError('pgvector is not installed in this database: run `rag-worker migrate` (needs the vector extension available on the server)');
  }
  if (!facts.applied) return new SchemaError('the rag-worker schema is missing: run `rag-worker migrate` (or apply supabase/migrations/*.sql)');
  if ((facts.version ?? 0) < SCHEMA_VERSION) {
    return new SchemaError(`the rag-worker schema is version ${facts.version ?? 0}, older than this worker's ${SCHEMA_VERSION}: run \`rag-worker migrate\` (idempotent; keeps your data)`);
  }
  if (facts.dimensions !== dimensions) {
    return new WorkerFatalError(
      `RAG_EMBEDDING_DIMENSIONS=${dimensions} but rag_chunks.embedding is vector(${facts.dimensions}): set RAG_EMBEDDING_DIMENSIONS=${facts.dimensions}, ` +
        'or use a model of that size (changing the table\'s dimension means re-creating rag_chunks)',
      { setting: 'RAG_EMBEDDING_DIMENSIONS' },
    );
  }
  return null;
}

/**
 * Worker-level check at start-up (and after a worker-level fault): pgvector present, schema applied and current,
 * and rag_chunks.embedding has the configured dimension (schemaProblem). On the embedded database it also reads
 * every page of the queue table, so that a damaged data directory is reported (StorageCorruptionError) before any
 * job is claimed, and a re-check after such a fault keeps failing. On PostgreSQL it checks the role's access.
 */
export async function checkSchema(sql: SqlClient, dimensions: number): Promise<void> {
  const problem = schemaProblem(await inspectSchema(sql), dimensions);
  if (problem) throw problem;
  // ctid forces a heap scan (an index-only count would skip the table's pages).
  if (sql.kind === 'embedded') await sql.query('select count(ctid) from rag_ingestion_queue');
  if (sql.kind === 'postgres') await checkAccess(sql);
}

/**
 * The connecting role must be able to see and change the queue's rows and call the functions. The tables have
 * row-level security on and no policies (see the migration's privileges section): a role that is neither their
 * owner nor BYPASSRLS (nor a superuser) sees no row at all — it would report an empty queue and idle forever
 * beside queued jobs — unless someone added policies for it (policies for other roles, such as the opt-in
 * read policies for `authenticated`, do not count). Reported as a worker-level fault naming the setting.
 */
export async function checkAccess(sql: SqlClient): Promise<void> {
  const [r] = await sql.query<{ role: string; sees_rows: boolean; has_policies: boolean; can_write: boolean; can_call: boolean }>(`
    select current_user as role,
           (select rolsuper or rolbypassrls from pg_roles where rolname = current_user)
             or pg_has_role(current_user, c.relowner, 'USAGE') as sees_rows,
           exists (select 1 from pg_policy p where p.polrelid = c.oid
                      and (p.polroles = '{0}' or exists (select 1 from unnest(p.polroles) r where pg_has_role(current_user, r, 'USAGE')))) as has_policies,
           has_table_privilege(c.oid, 'SELECT') and has_table_privilege(c.oid, 'UPDATE') as can_write,
           has_function_privilege('rag_claim_jobs(text, integer, integer, integer)', 'EXECUTE') as can_call
      from pg_class c where c.oid = to_regclass('rag_ingestion_queue')`);
  if (!r) return;
  const setting = 'DATABASE_URL';
  if (!r.can_write || !r.can_call) {
    throw new WorkerFatalError(
      `the role ${r.role} (${setting}) may not ${!r.can_write ? 'read and update rag_ingestion_queue' : 'call the rag_* functions'}: connect as the schema's owner ` +
        '(on Supabase: the postgres user or the service role), or grant a role of its own what the README\'s "Privileges" section lists',
      { setting },
    );
  }
  if (!r.sees_rows && !r.has_policies) {
    throw new WorkerFatalError(
      `the role ${r.role} (${setting}) cannot see any row of rag_ingestion_queue: row-level security is on and it is neither the tables' owner ` +
        `nor BYPASSRLS, so it would find no job. Connect as the owner (on Supabase: the postgres user), or \`alter role ${r.role} bypassrls\`, ` +
        'or add row-level security policies for it',
      { setting },
    );
  }
}
