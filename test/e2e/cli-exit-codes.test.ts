/**
 * The CLI's exit code and the job outcome for transcripts that cannot be ingested, on both backends:
 * the embedded database (PGlite in a temp RAG_DATA_DIR) and real PostgreSQL (TEST_DATABASE_URL), offline embedder.
 * - ingest / enqueue --wait exit 1 when any job did not complete (the embedded backend used to exit 0);
 * - a file with NUL bytes enqueues and completes (jsonb cannot hold \u0000: it is stripped before the payload);
 * - a segment time the bigint columns cannot hold fails the job at once as bad input (attempt 1), not retried;
 * - a transcript of zero-width characters only is empty: the job fails, no invisible chunks.
 * Waiting is on process exit, or on queue rows (never on log wording). The PostgreSQL tests share one database and
 * run one after another (a worker claims any runnable job).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { cliEnv, startCli, type CliResult } from '../support/cli.ts';
import { waitFor } from '../support/process-helpers.ts';
import { createTestDatabase, type TestDatabase } from '../support/test-db.ts';

interface JobSummary {
  id: string;
  document_id: string;
  status: string;
  chunks: number;
  segments: number | null;
  error_detail: string | null;
}

const GOOD_VTT = 'WEBVTT\n\n00:00:01.000 --> 00:00:04.000\nAnn: The quarterly numbers look good.\n\n00:00:04.500 --> 00:00:08.000\nBob: Then we ship on Friday.\n';

let dir: string;
const file = (name: string) => path.join(dir, name);

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rw-exit-'));
  fs.writeFileSync(file('empty.vtt'), 'WEBVTT\n\n');
  fs.writeFileSync(file('good.vtt'), GOOD_VTT);
  fs.writeFileSync(file('nul.vtt'), 'WEBVTT\n\n00:00:01.000 --> 00:00:04.000\nAnn: nul\u0000 bytes\u0000 in\u0000side\n');
  fs.writeFileSync(file('huge-time.json'), '[{"seq": 1, "text": "fine", "start_ms": 0, "end_ms": 1000}, {"seq": 2, "text": "far future", "start_ms": 1e20, "end_ms": 2e20}]');
  fs.writeFileSync(file('invisible.txt'), '\u200B\u200C\u200D\u2060\uFEFF \u00AD\n'.repeat(3000));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function byDocument(stdout: string): Map<string, JobSummary> {
  const jobs = JSON.parse(stdout) as JobSummary[];
  return new Map(jobs.map((j) => [j.document_id, j]));
}

function assertComplete(job: JobSummary | undefined): void {
  assert.equal(job?.status, 'complete', `${job?.document_id}: ${job?.status}: ${job?.error_detail}`);
}

/** Runs the CLI to its exit; a run that has not exited after `deadlineMs` is killed, so a hang fails the test. */
function run(args: string[], env: NodeJS.ProcessEnv, deadlineMs = 60_000): Promise<CliResult> {
  return exited(startCli(args, env), args, deadlineMs);
}

async function exited(child: ReturnType<typeof startCli>, args: string[], deadlineMs = 60_000): Promise<CliResult> {
  const deadline = setTimeout(() => child.kill('SIGKILL'), deadlineMs);
  const result = await child.result;
  clearTimeout(deadline);
  assert.equal(result.signal, null, `rag-worker ${args[0]} did not exit within ${deadlineMs} ms; stderr:\n${result.stderr.slice(-1500)}`);
  return result;
}

describe('embedded database', () => {
  let dataDir: string;
  const embeddedEnv = () => cliEnv({ RAG_DATA_DIR: dataDir, RAG_THREADS: '1' });
  before(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rw-exit-data-'));
  });
  after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  test('ingest exits 1 when a job failed', async () => {
    const done = await run(['ingest', file('empty.vtt'), file('good.vtt'), '--version', 'ingest', '--json'], embeddedEnv());
    assert.equal(done.code, 1, done.stderr);
    const jobs = byDocument(done.stdout);
    assert.equal(jobs.get('empty.vtt')?.status, 'failed');
    assertComplete(jobs.get('good.vtt'));
  });

  test('enqueue --wait runs the jobs in this process and exits 1 when one failed', async () => {
    const done = await run(['enqueue', file('empty.vtt'), file('good.vtt'), '--version', 'wait', '--wait', '--json'], embeddedEnv(), 30_000);
    assert.equal(done.code, 1, done.stderr);
    const jobs = byDocument(done.stdout);
    assert.equal(jobs.get('empty.vtt')?.status, 'failed');
    assertComplete(jobs.get('good.vtt'));
  });

  test('cancel and retry of an unknown job on a fresh data directory exit 1 saying so (closing PGlite keeps the code)', async () => {
    const fresh = fs.mkdtempSync(path.join(os.tmpdir(), 'rw-exit-fresh-'));
    try {
      const env = cliEnv({ RAG_DATA_DIR: fresh, RAG_THREADS: '1' });
      const cancel = await run(['cancel', '00000000-0000-0000-0000-000000000000'], env);
      assert.equal(cancel.code, 1, cancel.stderr);
      assert.match(cancel.stderr, /00000000-0000-0000-0000-000000000000/);
      const retry = await run(['retry', '00000000-0000-0000-0000-000000000000'], env);
      assert.equal(retry.code, 1, retry.stderr);
    } finally {
      fs.rmSync(fresh, { recursive: true, force: true });
    }
  });

  test('NUL bytes are stripped; a zero-width-only transcript fails as empty', async () => {
    const done = await run(['ingest', file('nul.vtt'), file('invisible.txt'), '--json'], embeddedEnv());
    assert.equal(done.code, 1, done.stderr);
    const jobs = byDocument(done.stdout);
    const nul = jobs.get('nul.vtt')!;
    assertComplete(nul);
    assert.equal(nul.chunks, 1);
    const invisible = jobs.get('invisible.txt')!;
    assert.equal(invisible.status, 'failed');
    assert.equal(invisible.chunks, 0);
    assert.match(invisible.error_detail ?? '', /^transcript is empty/);
  });
});

describe('PostgreSQL', () => {
  let db: TestDatabase;
  let env: NodeJS.ProcessEnv;
  let client: pg.Client;
  before(async () => {
    db = await createTestDatabase();
    env = cliEnv({ DATABASE_URL: db.url, RAG_THREADS: '1', RAG_POLL_INTERVAL_MS: '100', RAG_RETRY_BASE_MS: '20', RAG_RETRY_MAX_MS: '100', RAG_MAX_ATTEMPTS: '3' });
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
  });
  after(async () => {
    await client?.end();
    await db?.drop();
  });

  const job = async (id: string) => {
    const { rows } = await client.query('select status, attempts, last_error_category, error_detail, chunks_done from rag_ingestion_queue where id = $1', [id]);
    return rows[0] as { status: string; attempts: number; last_error_category: string | null; error_detail: string | null; chunks_done: number };
  };

  test('ingest exits 1 when a job failed', async () => {
    const done = await run(['ingest', file('empty.vtt'), file('good.vtt'), '--version', 'ingest', '--json'], env);
    assert.equal(done.code, 1, done.stderr);
    const jobs = byDocument(done.stdout);
    assert.equal(jobs.get('empty.vtt')?.status, 'failed');
    assertComplete(jobs.get('good.vtt'));
  });

  test('enqueue --wait exits 1 when a job another worker ran failed', async () => {
    const args = ['enqueue', file('empty.vtt'), file('good.vtt'), '--version', 'wait', '--wait', '--json'];
    const waiting = startCli(args, env);
    await waitFor(async () => {
      const { rows } = await client.query(`select count(*)::int as n from rag_ingestion_queue where version = 'wait'`);
      return rows[0].n === 2;
    }, 'enqueue --wait to queue both jobs');
    const worker = await run(['start', '--once'], env);
    assert.equal(worker.code, 1, worker.stderr);
    const done = await exited(waiting, args);
    assert.equal(done.code, 1, done.stderr);
    const jobs = byDocument(done.stdout);
    assert.equal(jobs.get('empty.vtt')?.status, 'failed');
    assertComplete(jobs.get('good.vtt'));
  });

  test('a file with NUL bytes enqueues (no "unsupported Unicode escape sequence") and completes', async () => {
    const enq = await run(['enqueue', file('nul.vtt'), '--version', 'nul', '--json'], env);
    assert.equal(enq.code, 0, enq.stderr);
    const [{ id }] = JSON.parse(enq.stdout) as { id: string }[];
    const { rows } = await client.query(`select payload->>'text' as text from rag_ingestion_queue where id = $1`, [id]);
    assert.equal(rows[0].text, 'WEBVTT\n\n00:00:01.000 --> 00:00:04.000\nAnn: nul bytes inside\n');
    await run(['start', '--once'], env);
    assert.equal((await job(id)).status, 'complete');
    const chunks = await client.query('select content from rag_chunks where job_id = $1', [id]);
    assert.deepEqual(chunks.rows.map((r) => r.content), ['Ann: nul bytes inside']);
  });

  test('a segment time the database cannot store fails at once as bad input naming the segment', async () => {
    const enq = await run(['enqueue', file('huge-time.json'), '--version', 'huge', '--json'], env);
    assert.equal(enq.code, 0, enq.stderr);
    const [{ id }] = JSON.parse(enq.stdout) as { id: string }[];
    await run(['start', '--once'], env);
    const row = await job(id);
    assert.equal(row.status, 'failed');
    assert.equal(row.last_error_category, 'bad_input');
    assert.equal(row.attempts, 1, 'bad input uses one attempt, never retried');
    assert.match(row.error_detail ?? '', /^segments\[1\]\.start_ms: 100000000000000000000 is out of range/);
  });
});
