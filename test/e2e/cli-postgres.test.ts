/**
 * End to end on real PostgreSQL with the OpenAI SDK talking to a loopback server:
 * migrate → enqueue → start --once → search finds the expected chunk; status and bad input.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { migrationFiles, SCHEMA_VERSION } from '../../src/main/stores/migrate.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.ts';
import { cliEnv, eventNames, findEvent, runCli } from '../support/cli.ts';
import { createEmptyDatabase, type TestDatabase } from '../support/test-db.ts';

const KEY = 'sk-test-e2eKEYabcdefghijklmnop9876';
let db: TestDatabase;
let openai: FakeOpenAI;
let dir: string;
let env: NodeJS.ProcessEnv;

before(async () => {
  db = await createEmptyDatabase();
  openai = await startFakeOpenAI({ apiKey: KEY, dimensions: 64 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rw-e2e-'));
  env = cliEnv({
    DATABASE_URL: db.url,
    OPENAI_API_KEY: KEY,
    OPENAI_BASE_URL: openai.url,
    RAG_EMBEDDING_DIMENSIONS: '64',
    RAG_POLL_INTERVAL_MS: '200',
    RAG_THREADS: '1',
    RAG_RETRY_BASE_MS: '50',
  });
  fs.writeFileSync(
    path.join(dir, 'standup.vtt'),
    [
      'WEBVTT',
      '',
      '1',
      '00:00:01.000 --> 00:00:04.000',
      'Ann: Good morning everyone, quick standup today.',
      '',
      '2',
      '00:00:04.500 --> 00:00:09.000',
      'Bob: I finished migrating the billing database to a read replica.',
      '',
      '3',
      '00:00:09.500 --> 00:00:12.000',
      'Ann: Great, what about the holiday freeze?',
      '',
    ].join('\n'),
  );
  fs.writeFileSync(path.join(dir, 'empty.srt'), '\n\n');
});

after(async () => {
  await openai?.close();
  await db?.drop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('migrate → enqueue → start --once → search finds the expected chunk', async () => {
  const migrated = await runCli(['migrate'], env);
  assert.equal(migrated.code, 0, migrated.stderr);
  assert.match(migrated.stdout, new RegExp(`schema version 0 → ${SCHEMA_VERSION}\\b`));
  const again = await runCli(['migrate'], env);
  assert.equal(again.code, 0, `migrate is idempotent: ${again.stderr}`);
  assert.match(again.stdout, new RegExp(`schema version ${SCHEMA_VERSION}, up to date`));
  const printed = await runCli(['migrate', '--print'], env);
  assert.match(printed.stdout, /^set rag\.embedding_dimensions = '\d+';/);
  for (const f of migrationFiles()) assert.ok(printed.stdout.includes(`-- ${f.name}.sql`), f.name);

  const enq = await runCli(['enqueue', path.join(dir, 'standup.vtt'), '--version', 'v1', '--json'], env);
  assert.equal(enq.code, 0, enq.stderr);
  const [job] = JSON.parse(enq.stdout) as { id: string; document_id: string; format: string }[];
  assert.equal(job.document_id, 'standup.vtt');
  assert.equal(job.format, 'vtt');

  const run = await runCli(['start', '--once'], env);
  assert.equal(run.code, 0, run.stderr);
  assert.ok(findEvent(run, 'worker_ready'), `the worker started; events: ${eventNames(run).join(' ')}`);
  assert.ok(findEvent(run, 'job_complete', { jobId: job.id }), `job ${job.id} completed; events: ${eventNames(run).join(' ')}`);
  assert.ok(findEvent(run, 'worker_stopped'), 'the worker stopped cleanly');
  assert.ok(openai.stats().ok >= 1, 'the embeddings endpoint was called');
  assert.ok(!run.stderr.includes(KEY), 'the API key never appears in logs');

  const status = await runCli(['status', job.id, '--json'], env);
  const view = JSON.parse(status.stdout);
  assert.equal(view.status, 'complete');
  assert.equal(view.segments_total, 3);
  assert.ok(view.chunks_done >= 1);

  const search = await runCli(['search', 'billing database read replica', '-k', '2', '--json'], env);
  assert.equal(search.code, 0, search.stderr);
  const hits = JSON.parse(search.stdout) as { document_id: string; version: string; content: string; speakers: string[]; start_ms: number; end_ms: number; score: number }[];
  assert.ok(hits.length >= 1);
  assert.equal(hits[0].document_id, 'standup.vtt');
  assert.equal(hits[0].version, 'v1');
  assert.match(hits[0].content, /billing database to a read replica/);
  assert.ok(hits[0].speakers.includes('Bob'));
  assert.ok(hits[0].start_ms <= 4500 && hits[0].end_ms >= 9000);
  for (const key of ['document_id', 'version', 'chunk_index', 'content', 'start_ms', 'end_ms', 'speakers', 'score']) assert.ok(key in hits[0], key);
});

test('a bad job fails alone with a precise error; start --once exits non-zero', async () => {
  const enq = await runCli(['enqueue', path.join(dir, 'empty.srt'), '--json'], env);
  const [bad] = JSON.parse(enq.stdout) as { id: string }[];
  const enqGood = await runCli(['enqueue', path.join(dir, 'standup.vtt'), '--version', 'v2', '--json'], env);
  const [good] = JSON.parse(enqGood.stdout) as { id: string }[];
  const run = await runCli(['start', '--once'], env);
  assert.equal(run.code, 1, 'not every job completed');
  const badView = JSON.parse((await runCli(['status', bad.id, '--json'], env)).stdout);
  assert.equal(badView.status, 'failed');
  assert.equal(badView.attempts, 1, 'bad input is not retried');
  assert.match(badView.error_detail, /empty/i);
  assert.doesNotMatch(badView.error_detail, /\n/);
  const goodView = JSON.parse((await runCli(['status', good.id, '--json'], env)).stdout);
  assert.equal(goodView.status, 'complete');
});

test('a bad setting stops start-up with a message naming it', async () => {
  const run = await runCli(['start', '--once'], { ...env, RAG_LEASE_SECONDS: 'soon', RAG_EMBEDDING_BATCH: '5000' });
  assert.equal(run.code, 2);
  assert.match(run.stderr, /RAG_LEASE_SECONDS="soon"/);
  assert.match(run.stderr, /RAG_EMBEDDING_BATCH="5000"/);
});
