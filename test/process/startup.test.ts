/**
 * Start-up against a database that is not there yet, is full, or refuses us (real `rag-worker` processes):
 * - `start` waits for an unreachable database or one without free connection slots, logging each retry
 *   with its reason, and comes up (and processes jobs) when the database does;
 * - `start --once` and one-shot commands fail at once: exit 1, naming DATABASE_URL and host:port;
 * - refused credentials or an unknown database are worker-level faults: exit 3 naming DATABASE_URL;
 * - the password is never shown.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { runCli } from '../support/cli.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.ts';
import { freePort, startFakeAuthServer, startTcpProxy, type TcpProxy } from '../support/pg-fakes.ts';
import { closeScenarios, killAllWorkers, openScenario, segmentsPayload, spawnWorker, workerEnv, type LogLine } from '../support/process-helpers.ts';
import { ADMIN_URL, type TestDatabase } from '../support/test-db.ts';

const PASSWORD = 'Startup-secret-PW-0815';
let openai: FakeOpenAI;
const proxies: TcpProxy[] = [];
const roles: string[] = [];

before(async () => {
  openai = await startFakeOpenAI({ dimensions: 32 });
});
afterEach(killAllWorkers);
after(async () => {
  await closeScenarios();
  for (const p of proxies) await p.close();
  await openai?.close();
  await withAdmin(async (c) => {
    for (const role of roles) await c.query(`drop role if exists ${role}`).catch(() => {});
  });
});

async function withAdmin<T>(fn: (c: pg.Client) => Promise<T>, url = ADMIN_URL): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

function urlWith(db: TestDatabase, changes: { user?: string; password?: string; port?: number; database?: string }): string {
  const u = new URL(db.url);
  if (changes.user !== undefined) u.username = changes.user;
  if (changes.password !== undefined) u.password = changes.password;
  if (changes.port !== undefined) u.port = String(changes.port);
  if (changes.database !== undefined) u.pathname = `/${changes.database}`;
  return u.toString();
}

const isWait = (l: LogLine) => l.event === 'db_wait';

function assertNoPassword(output: string): void {
  assert.ok(!output.includes(PASSWORD), 'the password never appears in the output');
}

test('start before its database is reachable: waits, logging each retry with the reason, and comes up when the database does', async () => {
  const { db, probe } = await openScenario();
  const port = await freePort();
  const worker = spawnWorker('early', workerEnv(db, openai, { DATABASE_URL: urlWith(db, { port, password: PASSWORD }) }));

  const first = await worker.waitForLine(isWait);
  await worker.waitForLine((l) => isWait(l) && Number(l.attempt) >= 2);
  assert.equal(first.level, 'warn');
  assert.equal(first.code, 'ECONNREFUSED', JSON.stringify(first));
  assert.match(first.msg, /DATABASE_URL/);
  assert.ok(first.msg.includes(`127.0.0.1:${port}`), first.msg);
  assert.ok(Number(first.delayMs) > 0);
  assert.ok(worker.running, 'the worker waits instead of exiting');
  assert.ok(!worker.find((l) => l.event === 'worker_ready'), 'not ready without a database');

  // The database "comes up" on that port.
  proxies.push(await startTcpProxy(port));
  const ready = await worker.waitForLine((l) => l.event === 'worker_ready', 20_000);
  assert.match(ready.msg, /Worker ready/);
  const id = await probe.enqueue('early-doc', segmentsPayload('early', 4));
  const job = await probe.waitForStatus(id, ['complete', 'failed']);
  assert.equal(job.status, 'complete', worker.tail());
  assert.equal(job.attempts, 1);

  worker.signal('SIGTERM');
  const exit = await worker.waitForExit(15_000);
  assert.equal(exit?.code, 0, worker.tail());
  const signal = worker.find((l) => l.event === 'signal');
  assert.equal(signal?.signal, 'SIGTERM');
  assert.equal(signal?.msg, 'Received SIGTERM');
  assert.ok(worker.find((l) => l.event === 'worker_stopped'), worker.tail());
  assertNoPassword(worker.stderrText + worker.stdoutText);
});

test('a worker still waiting for its database stops at once on SIGTERM (exit 0)', async () => {
  const { db } = await openScenario();
  const port = await freePort();
  const worker = spawnWorker('stop-waiting', workerEnv(db, openai, { DATABASE_URL: urlWith(db, { port }) }));
  await worker.waitForLine(isWait);
  worker.signal('SIGTERM');
  const exit = await worker.waitForExit(5000);
  assert.equal(exit?.code, 0, worker.tail());
  assert.ok(worker.find((l) => l.event === 'worker_stopped'), worker.tail());
});

test('start --once and one-shot commands against an unreachable database exit 1 at once, naming DATABASE_URL and host:port', async () => {
  const { db } = await openScenario();
  const port = await freePort();
  const env = workerEnv(db, openai, { DATABASE_URL: urlWith(db, { port, password: PASSWORD }) });
  const example = fileURLToPath(new URL('../../examples/transcripts/lecture-notes.txt', import.meta.url));
  for (const args of [['start', '--once'], ['status'], ['enqueue', example], ['search', 'budget']]) {
    const started = Date.now();
    const result = await runCli(args, env);
    const output = result.stderr + result.stdout;
    assert.equal(result.code, 1, `${args.join(' ')}: ${output}`);
    assert.ok(Date.now() - started < 15_000, `${args.join(' ')} did not wait`);
    assert.match(output, /DATABASE_URL/, args.join(' '));
    assert.ok(output.includes(`127.0.0.1:${port}`), `${args.join(' ')}: ${output}`);
    assert.match(output, /ECONNREFUSED/);
    assertNoPassword(output);
  }
});

test('no free connection slot (53300): start waits and comes up when a slot frees; status exits 1', async () => {
  const { db, probe } = await openScenario();
  const role = `rw_startup_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  await withAdmin((c) => c.query(`create role ${role} login bypassrls connection limit 0`));
  roles.push(role);
  await withAdmin((c) => c.query(`grant all on all tables in schema public to ${role}; grant all on all sequences in schema public to ${role}; grant execute on all functions in schema public to ${role}`), db.url);
  const env = workerEnv(db, openai, { DATABASE_URL: urlWith(db, { user: role, password: PASSWORD }) });

  const status = await runCli(['status'], env);
  assert.equal(status.code, 1, status.stderr);
  assert.match(status.stderr, /DATABASE_URL/);
  assert.match(status.stderr, /53300/);
  assertNoPassword(status.stderr + status.stdout);

  const worker = spawnWorker('full', env);
  const wait = await worker.waitForLine(isWait);
  assert.equal(wait.code, '53300', JSON.stringify(wait));
  assert.match(wait.msg, /no free connection slots/);
  await withAdmin((c) => c.query(`alter role ${role} connection limit -1`));
  await worker.waitForLine((l) => l.event === 'worker_ready', 20_000);
  const id = await probe.enqueue('full-doc', segmentsPayload('full', 3));
  assert.equal((await probe.waitForStatus(id, ['complete', 'failed'])).status, 'complete', worker.tail());
  assertNoPassword(worker.stderrText);
});

test('refused credentials or an unknown database: exit 3 naming DATABASE_URL, in start as well, password hidden', async () => {
  const { db } = await openScenario();
  const fake = await startFakeAuthServer('28P01', 'password authentication failed for user "rw_app"');
  try {
    const cases = [
      { what: 'wrong password (28P01)', url: `postgres://rw_app:${PASSWORD}@127.0.0.1:${fake.port}/app`, code: '28P01', where: `127.0.0.1:${fake.port}` },
      { what: 'unknown role (28000)', url: urlWith(db, { user: 'rw_no_such_role', password: PASSWORD }), code: '28000', where: '127.0.0.1:5432' },
      { what: 'unknown database (3D000)', url: urlWith(db, { database: 'rw_no_such_db', password: PASSWORD }), code: '3D000', where: '127.0.0.1:5432' },
    ];
    for (const c of cases) {
      const env = workerEnv(db, openai, { DATABASE_URL: c.url });
      for (const args of c.code === '28P01' ? [['start'], ['start', '--once'], ['status']] : [['start'], ['status']]) {
        const worker = spawnWorker(`auth-${c.code}-${args.join('-')}`, env, args);
        const exit = await worker.waitForExit(15_000);
        const output = worker.stderrText + worker.stdoutText;
        assert.equal(exit?.code, 3, `${c.what}, ${args.join(' ')}: ${output}`);
        assert.match(output, /rag-worker cannot run: .*DATABASE_URL/, `${c.what}, ${args.join(' ')}`);
        assert.ok(output.includes(c.code), `${c.what}: ${output}`);
        assert.ok(output.includes(c.where), `${c.what}: ${output}`);
        assert.ok(!worker.find(isWait), `${c.what}, ${args.join(' ')}: an authentication failure is not waited for`);
        assertNoPassword(output);
      }
    }
    assert.ok(fake.passwords.length >= 3 && fake.passwords.every((p) => p === PASSWORD), 'the fake server was really asked with the password');
  } finally {
    await fake.close();
  }
});

test('DATABASE_URL marked as a transaction-mode pooler (pgbouncer=true): a pooler_detected line, no LISTEN connection, and jobs are found by polling', async () => {
  const { db, probe } = await openScenario();
  const url = new URL(db.url);
  url.searchParams.set('pgbouncer', 'true');
  const env = workerEnv(db, openai, { DATABASE_URL: url.toString(), RAG_POLL_INTERVAL_MS: '200', RAG_WORKER_ID: 'rag-test-pooler' });
  const worker = spawnWorker('pooler', env);
  const detected = await worker.waitForEvent('pooler_detected');
  assert.equal(detected.listen, false);
  await worker.waitForEvent('worker_ready');
  const id = await probe.enqueue('pooler-doc', segmentsPayload('pooler', 3));
  await probe.waitForStatus(id, ['complete']);
  const listeners = await withAdmin((c) =>
    c.query<{ n: string }>(`select count(*) as n from pg_stat_activity where datname = $1 and application_name = 'rag-worker-listen'`, [db.name]),
  );
  assert.equal(listeners.rows[0].n, '0', 'no LISTEN connection through a transaction pooler');
});

test('a role that row-level security hides the queue from (not owner, not BYPASSRLS) or that lacks the grants: exit 3 naming DATABASE_URL and the fix', async () => {
  const { db, probe } = await openScenario();
  await probe.enqueue('hidden-doc', segmentsPayload('hidden', 2));
  const hidden = `rw_hidden_${process.pid}`;
  const ungranted = `rw_ungranted_${process.pid}`;
  roles.push(hidden, ungranted);
  await withAdmin((c) => c.query(`create role ${hidden} login password '${PASSWORD}'; create role ${ungranted} login password '${PASSWORD}' bypassrls`));
  await withAdmin(
    (c) => c.query(`grant all on all tables in schema public to ${hidden}; grant all on all sequences in schema public to ${hidden}; grant execute on all functions in schema public to ${hidden}`),
    db.url,
  );
  for (const [role, expected] of [[hidden, /cannot see any row of rag_ingestion_queue: row-level security.*bypassrls/], [ungranted, /may not read and update rag_ingestion_queue/]] as const) {
    const worker = spawnWorker(`rls-${role}`, workerEnv(db, openai, { DATABASE_URL: urlWith(db, { user: role, password: PASSWORD }) }), ['start']);
    const exit = await worker.waitForExit(15_000);
    const output = worker.stderrText + worker.stdoutText;
    assert.equal(exit?.code, 3, output);
    assert.match(output, /rag-worker cannot run: .*DATABASE_URL/, output);
    assert.match(output, expected, output);
    assertNoPassword(output);
  }
  assert.deepEqual(await probe.statusCounts(), { queued: 1 }, 'the job is untouched');
});
