/**
 * The PostgreSQL transport (src/main/stores/pg-client.ts) against a real server:
 * - lease upkeep runs on a reserved control connection, so a heartbeat completes while every job
 *   connection is busy, and while the server has no free connection slot for anything new;
 * - driver errors are classified from structure (where they arose, the server's SQLSTATE, whether the
 *   connection died), with messages naming DATABASE_URL and host:port and never the password.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { DatabaseAuthError, DatabaseConnectionError, LeaseLostError, SchemaError } from '../../src/shared/errors.ts';
import { createPgClient } from '../../src/main/stores/pg-client.ts';
import { QueueStore, type Lease } from '../../src/main/stores/queue-store.ts';
import type { SqlClient } from '../../src/main/stores/sql-client.ts';
import { freePort, startFakeAuthServer, startTcpProxy } from '../support/pg-fakes.ts';
import { ADMIN_URL, createTestDatabase, type TestDatabase } from '../support/test-db.ts';

const DIMS = 3;
const PASSWORD = 'Pw-never-shown-4711';
let db: TestDatabase;
let admin: pg.Pool;
const clients: SqlClient[] = [];
const roles: string[] = [];

function track(sql: SqlClient): SqlClient {
  clients.push(sql);
  return sql;
}

function urlWith(changes: { user?: string; password?: string; host?: string; port?: number; database?: string }): string {
  const u = new URL(db.url);
  if (changes.user !== undefined) u.username = changes.user;
  if (changes.password !== undefined) u.password = changes.password;
  if (changes.host !== undefined) u.hostname = changes.host;
  if (changes.port !== undefined) u.port = String(changes.port);
  if (changes.database !== undefined) u.pathname = `/${changes.database}`;
  return u.toString();
}

/** A login role (not a superuser: connection limits apply to it) with the privileges a worker needs. */
async function createRole(): Promise<string> {
  const role = `rw_role_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  await admin.query(`create role ${role} login bypassrls`); // the tables have row-level security (Supabase)
  roles.push(role);
  const owner = new pg.Client({ connectionString: db.url });
  await owner.connect();
  try {
    await owner.query(`grant all on all tables in schema public to ${role}; grant all on all sequences in schema public to ${role}; grant execute on all functions in schema public to ${role}`);
  } finally {
    await owner.end();
  }
  return role;
}

async function backendsOf(role: string): Promise<number> {
  const { rows } = await admin.query<{ n: number }>('select count(*)::int as n from pg_stat_activity where usename = $1', [role]);
  return rows[0].n;
}

async function waitForActive(queryText: string): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const { rows } = await admin.query<{ pid: number }>(`select pid from pg_stat_activity where datname = $1 and state = 'active' and query = $2`, [db.name, queryText]);
    if (rows[0]) return rows[0].pid;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`"${queryText}" never became active`);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail('expected the promise to reject');
}

/** Enqueues and claims a job with a separate (superuser) client; returns its lease. */
async function claimedLease(documentId: string, workerId: string): Promise<Lease> {
  const sql = track(createPgClient({ connectionString: db.url, maxConnections: 2 }));
  const store = new QueueStore(sql);
  await store.enqueue({ documentId, format: 'segments', payload: { segments: [{ seq: 1, text: 'hello' }] } });
  const jobs = await store.claimJobs(workerId, 10, 60, 5);
  const job = jobs.find((j) => j.document_id === documentId);
  assert.ok(job, 'the job was claimed');
  return { jobId: job.id, workerId, leaseToken: job.lease_token! };
}

before(async () => {
  db = await createTestDatabase(DIMS);
  admin = new pg.Pool({ connectionString: ADMIN_URL, max: 2 });
  admin.on('error', () => {});
});

after(async () => {
  for (const sql of clients.splice(0)) await sql.close().catch(() => {});
  await db?.drop();
  for (const role of roles) await admin.query(`drop role if exists ${role}`).catch(() => {});
  await admin?.end();
});

describe('control lane: lease upkeep never waits behind job queries', () => {
  test('a heartbeat and a release complete promptly while the only job connection is busy', async () => {
    const lease = await claimedLease('control-busy', 'w-busy');
    const sql = track(createPgClient({ connectionString: db.url, maxConnections: 1 }));
    const store = new QueueStore(sql);
    const busy = sql.query('select pg_sleep(3)');
    await waitForActive('select pg_sleep(3)');

    // The job lane is saturated: a job query waits for the sleeping one.
    const jobQuery = sql.query('select 1 as one');
    const raced = await Promise.race([jobQuery.then(() => 'done'), new Promise((r) => setTimeout(() => r('waiting'), 400))]);
    assert.equal(raced, 'waiting', 'precondition: the job lane has no free connection');

    let started = performance.now();
    const extended = await store.extendLeases('w-busy', [lease], 60);
    const heartbeatMs = performance.now() - started;
    assert.deepEqual(extended, [{ jobId: lease.jobId, held: true, status: 'processing' }]);
    assert.ok(heartbeatMs < 1500, `the heartbeat took ${Math.round(heartbeatMs)} ms (it must not wait for the 3 s job query)`);

    started = performance.now();
    assert.equal(await store.releaseJobs('w-busy', [lease], 'test release'), 1);
    assert.ok(performance.now() - started < 1500, 'the release did not wait for the job lane either');
    await busy;
    await jobQuery;
  });

  test('a heartbeat still works when the server has no connection slot left for job queries (53300)', async () => {
    const role = await createRole();
    const lease = await claimedLease('control-slots', 'w-slots');
    const sql = track(createPgClient({ connectionString: urlWith({ user: role, password: PASSWORD }), maxConnections: 4 }));
    const store = new QueueStore(sql);
    // What openRuntime does at start-up: the control connection is opened before job queries compete for slots.
    await sql.query('select 1', [], { lane: 'control' });
    const busy = sql.query('select pg_sleep(2)');
    await waitForActive('select pg_sleep(2)');
    // Every further connection of this role is refused, as on a server whose max_connections other workers used up.
    await admin.query(`alter role ${role} connection limit ${await backendsOf(role)}`);
    try {
      const refused = await rejection(sql.query('select 1 as one'));
      assert.ok(refused instanceof DatabaseConnectionError, `job lane: ${String(refused)}`);
      assert.equal(refused.code, '53300');

      const extended = await store.extendLeases('w-slots', [lease], 60);
      assert.deepEqual(extended, [{ jobId: lease.jobId, held: true, status: 'processing' }], 'the heartbeat ran on the reserved connection');
    } finally {
      await admin.query(`alter role ${role} connection limit -1`);
    }
    await busy;
  });
});

describe('backend heap warm-up (RAG_PG_HEAP_WARMUP_MB)', () => {
  const warmup = (sql: SqlClient) => sql.query<{ v: string | null }>("select current_setting('rag_worker.heap_warmup', true) as v");

  test('every new job connection runs it once, before its first statement; the control lane does not', async () => {
    const sql = track(createPgClient({ connectionString: db.url, maxConnections: 2, backendWarmupBytes: 8 * 1024 * 1024 }));
    // Two connections at once: both were warmed before answering.
    const [a, b] = await Promise.all([
      sql.query<{ v: string; pid: number }>("select current_setting('rag_worker.heap_warmup', true) as v, pg_backend_pid() as pid, pg_sleep(0.2)"),
      sql.query<{ v: string; pid: number }>("select current_setting('rag_worker.heap_warmup', true) as v, pg_backend_pid() as pid, pg_sleep(0.2)"),
    ]);
    assert.notEqual(a[0].pid, b[0].pid);
    assert.equal(a[0].v, String(8 * 1024 * 1024));
    assert.equal(b[0].v, String(8 * 1024 * 1024));
    const control = await sql.query<{ v: string | null }>("select current_setting('rag_worker.heap_warmup', true) as v", [], { lane: 'control' });
    assert.equal(control[0].v, null);
  });

  test('0 (off): nothing runs', async () => {
    const sql = track(createPgClient({ connectionString: db.url, maxConnections: 1, backendWarmupBytes: 0 }));
    assert.equal((await warmup(sql))[0].v, null);
  });
});

describe('error classification by structure', () => {
  test('nothing listens: DatabaseConnectionError (ECONNREFUSED) naming DATABASE_URL and host:port, password hidden', async () => {
    const port = await freePort();
    const sql = track(createPgClient({ connectionString: urlWith({ port, password: PASSWORD }) }));
    const error = await rejection(sql.query('select 1'));
    assert.ok(error instanceof DatabaseConnectionError, String(error));
    assert.equal(error.code, 'ECONNREFUSED');
    assert.match(error.message, /DATABASE_URL/);
    assert.ok(error.message.includes(`127.0.0.1:${port}`), error.message);
    assert.ok(!error.message.includes(PASSWORD), error.message);
  });

  test('unknown host: DatabaseConnectionError naming the host', async () => {
    const sql = track(createPgClient({ connectionString: urlWith({ host: 'no-such-host.invalid', password: PASSWORD }) }));
    const error = await rejection(sql.query('select 1'));
    assert.ok(error instanceof DatabaseConnectionError, String(error));
    assert.match(error.message, /no-such-host\.invalid:5432/);
    assert.match(error.message, /DATABASE_URL/);
  });

  test('wrong password (28P01, from a server that asks for one): DatabaseAuthError, setting DATABASE_URL, password hidden', async () => {
    const fake = await startFakeAuthServer('28P01', 'password authentication failed for user "rw_app"');
    try {
      const sql = track(createPgClient({ connectionString: `postgres://rw_app:${PASSWORD}@127.0.0.1:${fake.port}/app` }));
      const error = await rejection(sql.query('select 1'));
      assert.ok(error instanceof DatabaseAuthError, String(error));
      assert.equal(error.setting, 'DATABASE_URL');
      assert.equal(error.category, 'worker_fatal');
      assert.match(error.message, /28P01/);
      assert.match(error.message, /password/);
      assert.ok(error.message.includes(`127.0.0.1:${fake.port}`), error.message);
      assert.deepEqual(fake.passwords, [PASSWORD], 'the driver really sent the password');
      assert.ok(!error.message.includes(PASSWORD), error.message);
    } finally {
      await fake.close();
    }
  });

  test('unknown role (28000) and unknown database (3D000): DatabaseAuthError naming DATABASE_URL', async () => {
    for (const [url, code] of [
      [urlWith({ user: 'rw_no_such_role', password: PASSWORD }), '28000'],
      [urlWith({ database: 'rw_no_such_database', password: PASSWORD }), '3D000'],
    ] as const) {
      const sql = track(createPgClient({ connectionString: url }));
      const error = await rejection(sql.query('select 1'));
      assert.ok(error instanceof DatabaseAuthError, `${code}: ${String(error)}`);
      assert.equal(error.setting, 'DATABASE_URL');
      assert.ok(error.message.includes(code), error.message);
      assert.ok(!error.message.includes(PASSWORD), error.message);
    }
  });

  test('no free connection slot (53300): DatabaseConnectionError with the code', async () => {
    const role = await createRole();
    await admin.query(`alter role ${role} connection limit 0`);
    const sql = track(createPgClient({ connectionString: urlWith({ user: role }) }));
    const error = await rejection(sql.query('select 1'));
    assert.ok(error instanceof DatabaseConnectionError, String(error));
    assert.equal(error.code, '53300');
    assert.match(error.message, /no free connection slots/);
  });

  test('network cut mid-query (an error with no SQLSTATE on a connection that ended): DatabaseConnectionError; the next query reconnects', async () => {
    const proxy = await startTcpProxy(await freePort());
    try {
      const sql = track(createPgClient({ connectionString: urlWith({ port: proxy.port }), applicationName: 'pg-client-test-cut' }));
      assert.deepEqual(await sql.query('select 1 as one'), [{ one: 1 }]);
      const sleeping = rejection(sql.query('select pg_sleep(4.5)'));
      await waitForActive('select pg_sleep(4.5)');
      proxy.cut();
      const error = await sleeping;
      assert.ok(error instanceof DatabaseConnectionError, String(error));
      assert.equal(error.code, undefined, 'no SQLSTATE, no socket code: recognised by the connection ending');
      assert.deepEqual(await sql.query('select 2 as two'), [{ two: 2 }], 'a new connection replaces the dead one');
    } finally {
      await proxy.close();
    }
  });

  test('backend terminated mid-query (57P01): DatabaseConnectionError', async () => {
    const sql = track(createPgClient({ connectionString: db.url }));
    const sleeping = rejection(sql.query('select pg_sleep(4.6)'));
    const pid = await waitForActive('select pg_sleep(4.6)');
    await admin.query('select pg_terminate_backend($1)', [pid]);
    const error = await sleeping;
    assert.ok(error instanceof DatabaseConnectionError, String(error));
    assert.equal(error.code, '57P01');
    assert.deepEqual(await sql.query('select 1 as one'), [{ one: 1 }]);
  });

  test('a client-side error on a live connection is not a connection error, and the connection stays usable', async () => {
    const sql = track(createPgClient({ connectionString: db.url, maxConnections: 1 }));
    const bad = { toPostgres: () => { throw new RangeError('cannot serialise this value'); } };
    const error = await rejection(sql.query('select $1::text as t', [bad]));
    assert.ok(!(error instanceof DatabaseConnectionError), `not a connection problem: ${String(error)}`);
    assert.ok(error instanceof RangeError, String(error));
    assert.deepEqual(await sql.query('select 1 as one'), [{ one: 1 }]);
  });

  test('fencing (RW001) and a missing table (42P01) keep their classes', async () => {
    const lease = await claimedLease('fenced', 'w-fence');
    const sql = track(createPgClient({ connectionString: db.url }));
    const store = new QueueStore(sql);
    const fenced = await rejection(store.startJob({ ...lease, leaseToken: '00000000-0000-0000-0000-000000000000' }, 1, 1, 'sig'));
    assert.ok(fenced instanceof LeaseLostError, String(fenced));
    const missing = await rejection(sql.query('select * from rag_no_such_table'));
    assert.ok(missing instanceof SchemaError, String(missing));
  });
});
