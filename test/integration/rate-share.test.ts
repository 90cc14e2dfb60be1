/**
 * Workers on one provider account split its rate limit through rag_rate_shares (real PostgreSQL): each active
 * worker draws 1/N; one whose demand ends withdraws and the other takes the whole limit back; a row nobody
 * refreshes (a worker that died) stops counting after the TTL; other accounts do not count; idle workers make no
 * calls.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { silentLogger } from '../../src/main/logging/logger.ts';
import { RateShare, type RateSharer } from '../../src/main/scheduler/rate-share.ts';
import { createPgClient } from '../../src/main/stores/pg-client.ts';
import { QueueStore } from '../../src/main/stores/queue-store.ts';
import type { SqlClient } from '../../src/main/stores/sql-client.ts';
import { accountFingerprint } from '../../src/shared/account-fingerprint.ts';
import { createTestDatabase, type TestDatabase } from '../support/test-db.ts';

/** A scheduler stand-in whose demand the test sets, recording the shares it is given. */
class Target implements RateSharer {
  hasDemand = false;
  share = 1;
  private waiters: { want: number; resolve: () => void }[] = [];
  setShare(share: number): void {
    this.share = share;
    this.waiters = this.waiters.filter((w) => (Math.abs(w.want - share) < 1e-9 ? (w.resolve(), false) : true));
  }
  /** Resolves once the share is `want`. */
  until(want: number): Promise<void> {
    if (Math.abs(this.share - want) < 1e-9) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ want, resolve }));
  }
}

/** Counts calls to the store. */
function countingStore(store: QueueStore): { calls: number; rateShare: QueueStore['rateShare'] } {
  const counted = {
    calls: 0,
    rateShare: (account: string, workerId: string, active: boolean, ttl: number) => {
      counted.calls++;
      return store.rateShare(account, workerId, active, ttl);
    },
  };
  return counted;
}

let db: TestDatabase;
let sql: SqlClient;
let admin: pg.Client;
const account = accountFingerprint('openai', 'http://127.0.0.1:1/v1', 'sk-test-shared');
const options = { checkMs: 10, refreshMs: 50, ttlSeconds: 1, idleAfterMs: 100, logger: silentLogger };

before(async () => {
  db = await createTestDatabase(3);
  sql = await createPgClient({ connectionString: db.url });
  admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
});
after(async () => {
  await admin?.end();
  await sql?.close();
  await db?.drop();
});

test('the fingerprint is stable, differs per key and endpoint, and does not contain the key', () => {
  assert.equal(account, accountFingerprint('openai', 'http://127.0.0.1:1/v1/', 'sk-test-shared'));
  assert.notEqual(account, accountFingerprint('openai', 'http://127.0.0.1:1/v1', 'sk-test-other'));
  assert.notEqual(account, accountFingerprint('anthropic', 'http://127.0.0.1:1/v1', 'sk-test-shared'));
  assert.match(account, /^[0-9a-f]{16}$/);
  assert.ok(!account.includes('sk-test'));
});

test('two workers on one account draw half each; when one has no more work the other takes all of it', async () => {
  const store = new QueueStore(sql);
  const a = new Target();
  const b = new Target();
  const shareA = new RateShare({ ...options, store, workerId: 'worker-a', accounts: [{ name: 'embeddings', account, target: a }] });
  const shareB = new RateShare({ ...options, store, workerId: 'worker-b', accounts: [{ name: 'embeddings', account, target: b }] });
  shareA.start();
  shareB.start();
  try {
    a.hasDemand = true;
    await a.until(1);
    b.hasDemand = true;
    await Promise.all([a.until(0.5), b.until(0.5)]);
    const rows = await admin.query('select worker_id from rag_rate_shares where account = $1 order by 1', [account]);
    assert.deepEqual(rows.rows.map((r) => r.worker_id), ['worker-a', 'worker-b']);
    b.hasDemand = false;
    await a.until(1);
    const left = await admin.query('select worker_id from rag_rate_shares where account = $1', [account]);
    assert.deepEqual(left.rows.map((r) => r.worker_id), ['worker-a']);
    assert.deepEqual(shareB.snapshot(), [{ name: 'embeddings', active: false, workers: 1 }]);
  } finally {
    await shareA.stop();
    await shareB.stop();
  }
  const none = await admin.query('select count(*)::int as n from rag_rate_shares where account = $1', [account]);
  assert.equal(none.rows[0].n, 0, 'stop() withdraws');
});

test('a worker that died stops counting after the TTL; another account never counts', async () => {
  const store = new QueueStore(sql);
  await admin.query(`insert into rag_rate_shares (account, worker_id, seen_at) values ($1, 'dead-worker', clock_timestamp()), ($2, 'elsewhere', clock_timestamp())`, [
    account,
    accountFingerprint('openai', 'http://127.0.0.1:1/v1', 'sk-test-other'),
  ]);
  const a = new Target();
  a.hasDemand = true;
  const shareA = new RateShare({ ...options, store, workerId: 'worker-a', accounts: [{ name: 'embeddings', account, target: a }] });
  shareA.start();
  try {
    await a.until(0.5);
    // Nobody refreshes dead-worker's row: after ttlSeconds it is forgotten and worker-a draws all of the limit.
    await a.until(1);
    const rows = await admin.query('select worker_id from rag_rate_shares order by 1');
    assert.deepEqual(rows.rows.map((r) => r.worker_id), ['elsewhere', 'worker-a']);
  } finally {
    await shareA.stop();
    await admin.query('delete from rag_rate_shares');
  }
});

test('an idle worker makes no database calls', async () => {
  const counted = countingStore(new QueueStore(sql));
  const idle = new Target();
  const busy = new Target();
  const shareIdle = new RateShare({ ...options, store: counted, workerId: 'idle', accounts: [{ name: 'embeddings', account, target: idle }] });
  const shareBusy = new RateShare({ ...options, store: new QueueStore(sql), workerId: 'busy', accounts: [{ name: 'embeddings', account, target: busy }] });
  shareIdle.start();
  shareBusy.start();
  try {
    busy.hasDemand = true;
    // Several refreshes of the busy worker go by (its share is set on each); the idle one stays silent.
    for (let i = 0; i < 3; i++) {
      busy.share = 0;
      await busy.until(1);
    }
    assert.equal(counted.calls, 0);
    assert.equal(idle.share, 1);
  } finally {
    await shareIdle.stop();
    await shareBusy.stop();
  }
});
