/**
 * A deep queue on PostgreSQL: 20,000 jobs enqueued by one INSERT (the dedupe trigger's locks must fit the
 * shared lock table), 60,000 finished rows beside them, and the claim's own statements — read with
 * auto_explain from inside rag_claim_jobs — use the partial indexes: no sequential scan of the queue, no JIT.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import type { NoticeMessage } from 'pg-protocol/dist/messages.js';
import { createTestDatabase, type TestDatabase } from '../support/test-db.ts';

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

describe('deep queue (postgres)', () => {
  let db: TestDatabase;
  let client: pg.Client;
  before(async () => {
    db = await createTestDatabase(3);
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
  });
  after(async () => {
    await client.end();
    await db.drop();
  });

  test('one INSERT of 20,000 jobs succeeds (the dedupe trigger does not take a lock per row)', async () => {
    const result = await client.query(
      `insert into rag_ingestion_queue (document_id, payload)
       select 'deep-' || g, jsonb_build_object('text', 'hello ' || g) from generate_series(1, 20000) g`,
    );
    assert.equal(result.rowCount, 20_000);
    // Finished history beside the live queue, as a long-lived table has.
    await client.query(
      `insert into rag_ingestion_queue (document_id, version, payload, status, completed_at)
       select 'done-' || g, '1', '{"text":"x"}'::jsonb, 'complete', now() from generate_series(1, 60000) g`,
    );
    await client.query(
      `insert into rag_ingestion_queue (document_id, payload, status, worker_id, lease_token, lease_expires_at, attempts)
       select 'busy-' || g, '{"text":"x"}'::jsonb, 'processing', 'w-other', gen_random_uuid(), now() + interval '1 hour', 1
         from generate_series(1, 200) g`,
    );
    await client.query('analyze rag_ingestion_queue');
    const { rows } = await client.query(`select count(*)::int as n from rag_ingestion_queue where status = 'queued'`);
    assert.equal(rows[0].n, 20_000);
  });

  test('rag_claim_jobs at 20k queued + 60k done uses the indexes: no Seq Scan of the queue, no JIT', async () => {
    const plans: PlanNode[] = [];
    const onNotice = (msg: NoticeMessage) => {
      const text = msg.message ?? '';
      const start = text.indexOf('{');
      if (!text.startsWith('duration:') || start < 0) return;
      const parsed = JSON.parse(text.slice(start)) as { 'Query Text': string; Plan: PlanNode; JIT?: unknown };
      if (parsed.JIT) plans.push({ 'Node Type': 'JIT' });
      plans.push(parsed.Plan);
    };
    client.on('notice', onNotice);
    try {
      await client.query('begin');
      await client.query(`load 'auto_explain'`);
      await client.query(`set local auto_explain.log_min_duration = 0`);
      await client.query(`set local auto_explain.log_nested_statements = on`);
      await client.query(`set local auto_explain.log_format = 'json'`);
      await client.query(`set local client_min_messages = log`);
      const claimed = await client.query(`select id from rag_claim_jobs('w-test', 4, 30, 5)`);
      assert.equal(claimed.rowCount, 4);
      await client.query('rollback');
    } finally {
      client.off('notice', onNotice);
    }
    assert.ok(plans.length >= 2, `auto_explain reported ${plans.length} plans`);
    const all = plans.flatMap(nodes);
    assert.ok(!all.some((n) => n['Node Type'] === 'JIT'), 'no JIT compilation');
    const seqScans = all.filter((n) => n['Node Type'] === 'Seq Scan' && n['Relation Name'] === 'rag_ingestion_queue');
    assert.deepEqual(seqScans, [], 'no sequential scan of rag_ingestion_queue');
    const indexes = new Set(all.map((n) => n['Index Name']).filter(Boolean));
    assert.ok(indexes.has('rag_ingestion_queue_runnable_idx'), `indexes used: ${[...indexes].join(', ')}`);
  });
});
