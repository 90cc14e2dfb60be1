/**
 * `doctor`, `jobs list` and `prune` end to end on real PostgreSQL, a loopback OpenAI and loopback webhooks:
 * doctor passes on a good setup and, on a broken one, names each problem with its fix (exit 1, no secret shown);
 * jobs list shows the queue as a table and JSON; prune deletes finished jobs in batches and keeps their chunks.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.ts';
import { cliEnv, runCli } from '../support/cli.ts';
import { createEmptyDatabase, type TestDatabase } from '../support/test-db.ts';
import { startReceiver, type Receiver } from '../support/webhook-receivers.ts';

const KEY = 'sk-doctor-KEY-abcdefghijklmnop1234';
let db: TestDatabase;
let openai: FakeOpenAI;
let slack: Receiver;
let discord: Receiver;
let dir: string;
let env: NodeJS.ProcessEnv;

before(async () => {
  db = await createEmptyDatabase();
  openai = await startFakeOpenAI({ apiKey: KEY, dimensions: 64 });
  slack = await startReceiver('slack');
  discord = await startReceiver('discord');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rw-doctor-'));
  env = cliEnv({
    DATABASE_URL: db.url,
    OPENAI_API_KEY: KEY,
    OPENAI_BASE_URL: openai.url,
    RAG_EMBEDDING_DIMENSIONS: '64',
    RAG_THREADS: '1',
    RAG_ALERT_WEBHOOK_URL: `${slack.url},${discord.url}`,
    RAG_HTTP_PORT: '0',
  });
  for (let i = 0; i < 3; i++) fs.writeFileSync(path.join(dir, `talk-${i}.txt`), `Ann: talk ${i} about the billing replica.\nBob: and the freeze ${i}.\n`);
  fs.writeFileSync(path.join(dir, 'broken.vtt'), 'WEBVTT\n\nno cues\n');
});

after(async () => {
  for (const s of [openai, slack, discord]) await s?.close();
  await db?.drop();
  fs.rmSync(dir, { recursive: true, force: true });
});

type Check = { check: string; status: 'ok' | 'fail' | 'skip'; detail: string; fix?: string };

async function doctor(extra: Record<string, string> = {}): Promise<{ code: number | null; checks: Check[]; text: string }> {
  const json = await runCli(['doctor', '--json'], { ...env, ...extra });
  const text = await runCli(['doctor'], { ...env, ...extra });
  const parsed = JSON.parse(json.stdout) as { ok: boolean; checks: Check[] };
  assert.equal(parsed.ok, json.code === 0);
  assert.equal(text.code, json.code);
  return { code: json.code, checks: parsed.checks, text: text.stdout + text.stderr + json.stdout + json.stderr };
}

const status = (checks: Check[]) => Object.fromEntries(checks.map((c) => [c.check, c.status]));

test('doctor: an unmigrated database, a wrong key, a revoked webhook and a taken port are each named with the fix', async () => {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '0.0.0.0', r));
  const port = (blocker.address() as net.AddressInfo).port;
  try {
    const dead = 'http://127.0.0.1:9/services/T/B/dead-secret-XYZ';
    const result = await doctor({ OPENAI_API_KEY: 'sk-wrong-KEY-zzzzzzzzzzzzzzzzzz', RAG_HTTP_PORT: String(port), RAG_ALERT_WEBHOOK_URL: `${slack.url},${dead}` });
    assert.equal(result.code, 1);
    const s = status(result.checks);
    assert.equal(s.database, 'ok');
    assert.equal(s.schema, 'fail');
    assert.equal(s.provider, 'fail');
    assert.equal(s['webhook 1'], 'ok');
    assert.equal(s['webhook 2'], 'fail');
    assert.equal(s['http port'], 'fail');
    const fix = (name: string) => result.checks.find((c) => c.check === name)!.fix ?? '';
    assert.match(fix('schema'), /rag-worker migrate/);
    assert.match(fix('provider'), /OPENAI_API_KEY/);
    assert.match(fix('http port'), /RAG_HTTP_PORT/);
    assert.match(result.text, /❌ schema/);
    for (const secret of ['sk-wrong-KEY', 'dead-secret-XYZ', 'slack-secret-XYZ']) assert.ok(!result.text.includes(secret), `${secret} is not shown`);
  } finally {
    blocker.close();
  }
});

test('doctor passes once migrated, without posting a visible message', async () => {
  const migrate = await runCli(['migrate'], env);
  assert.equal(migrate.code, 0, migrate.stderr);
  const result = await doctor();
  assert.equal(result.code, 0, result.text);
  assert.deepEqual(status(result.checks), {
    settings: 'ok', database: 'ok', access: 'ok', pgvector: 'ok', schema: 'ok', dimensions: 'ok', provider: 'ok', claude: 'skip', 'webhook 1': 'ok', 'webhook 2': 'ok', 'http port': 'ok',
  });
  assert.match(result.checks.find((c) => c.check === 'provider')!.detail, /one embedding of 64 dimensions/);
  assert.ok(slack.messages.every((m) => m.problems.length > 0), 'Slack got only the empty probe it refuses (nothing posted to the channel)');
  assert.equal(discord.messages.length, 0, 'Discord was only asked with GET');
});

test('jobs list and prune: a table, JSON, filters; finished jobs deleted in batches, chunks kept', async () => {
  const files = fs.readdirSync(dir).map((f) => path.join(dir, f));
  const ingest = await runCli(['ingest', ...files, '--json'], env);
  assert.equal(ingest.code, 1, 'one file is broken');
  const table = await runCli(['jobs', 'list'], env);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^id +status +document \(version\)/);
  assert.match(table.stdout, /failed +broken\.vtt \(1\)/);
  const failed = JSON.parse((await runCli(['jobs', 'list', '--status', 'failed', '--json'], env)).stdout) as { document_id: string; error_detail: string }[];
  assert.deepEqual(failed.map((j) => j.document_id), ['broken.vtt']);
  assert.match(failed[0].error_detail, /vtt: no cues found/);
  const one = JSON.parse((await runCli(['jobs', 'list', '--document-id', 'talk-1.txt', '--json'], env)).stdout) as unknown[];
  assert.equal(one.length, 1);
  assert.equal((await runCli(['jobs', 'list', '--status', 'done'], env)).code, 2, 'a bad status is a usage error');

  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    const chunks = async () => Number((await client.query('select count(*)::int as n from rag_chunks')).rows[0].n);
    const before = await chunks();
    assert.ok(before > 0);
    const none = JSON.parse((await runCli(['prune', '--older-than', '30d', '--json'], env)).stdout) as { deleted: number };
    assert.equal(none.deleted, 0, 'nothing is 30 days old');
    const failedOnly = JSON.parse((await runCli(['prune', '--older-than', '0s', '--status', 'failed', '--json'], env)).stdout) as { deleted: number };
    assert.equal(failedOnly.deleted, 1);
    const rest = JSON.parse((await runCli(['prune', '--older-than', '0s', '--batch', '2', '--json'], env)).stdout) as { deleted: number; batches: number };
    assert.deepEqual([rest.deleted, rest.batches], [3, 2]);
    assert.equal(Number((await client.query('select count(*)::int as n from rag_ingestion_queue')).rows[0].n), 0);
    assert.equal(await chunks(), before, 'chunks are never pruned');
    assert.equal((await runCli(['prune', '--older-than', '1d', '--status', 'queued'], env)).code, 2, 'only finished jobs can be pruned');
    await assert.rejects(client.query(`select rag_prune_jobs(interval '1 day', array['processing'])`), /only finished jobs can be pruned/);
  } finally {
    await client.end();
  }
});
