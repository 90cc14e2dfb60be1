/**
 * A fresh PostgreSQL database per test file, cloned from a migrated template (fast, isolated, parallel-safe).
 * The template is rebuilt when the migration SQL changes. Needs TEST_DATABASE_URL (default: local postgres).
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { migrationSql } from '../../src/main/stores/migrate.ts';

export const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const TEMPLATE_LOCK = 7_261_129;

function urlFor(database: string): string {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${database}`;
  return u.toString();
}

async function withAdmin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function ensureTemplate(dimensions: number): Promise<string> {
  const sql = migrationSql(dimensions);
  const hash = createHash('sha256').update(sql).digest('hex').slice(0, 12);
  const name = `rw_template_${dimensions}_${hash}`;
  await withAdmin(async (admin) => {
    await admin.query('select pg_advisory_lock($1)', [TEMPLATE_LOCK]);
    try {
      const exists = await admin.query('select 1 from pg_database where datname = $1', [name]);
      if (exists.rowCount) return;
      await admin.query(`create database ${name}`);
      const c = new pg.Client({ connectionString: urlFor(name) });
      await c.connect();
      try {
        await c.query(`set client_min_messages = warning; ${sql}`);
      } finally {
        await c.end();
      }
      // Drop templates of older migrations.
      const old = await admin.query(`select datname from pg_database where datname like $2 and datname <> $1`, [name, `rw\\_template\\_${dimensions}\\_%`]);
      for (const row of old.rows) await admin.query(`drop database if exists ${row.datname}`).catch(() => {});
    } finally {
      await admin.query('select pg_advisory_unlock($1)', [TEMPLATE_LOCK]);
    }
  });
  return name;
}

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

/** A new migrated database for one test file; drop() it in an `after` hook. */
export async function createTestDatabase(dimensions = 1536): Promise<TestDatabase> {
  const template = await ensureTemplate(dimensions);
  const name = `rw_test_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  await withAdmin((admin) => admin.query(`create database ${name} template ${template}`));
  return {
    url: urlFor(name),
    name,
    async drop() {
      await withAdmin((admin) => admin.query(`drop database if exists ${name} with (force)`));
    },
  };
}

/** A new empty database (not migrated), e.g. for testing `rag-worker migrate` itself. */
export async function createEmptyDatabase(): Promise<TestDatabase> {
  const name = `rw_empty_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  await withAdmin((admin) => admin.query(`create database ${name}`));
  return {
    url: urlFor(name),
    name,
    async drop() {
      await withAdmin((admin) => admin.query(`drop database if exists ${name} with (force)`));
    },
  };
}
