/**
 * The app-side examples (examples/nextjs, examples/supabase-edge-function), run for real:
 *
 * - The Next.js route handlers are imported and called with real Request objects (as Next.js calls them); their
 *   supabase-js client reaches the loopback PostgREST (test/support/fake-postgrest.ts) over a real PostgreSQL with
 *   the schema, and the search route embeds with the real openai SDK against the loopback OpenAI.
 * - followJobProgress (what useJobProgress wraps) follows jobs over a real WebSocket to the loopback Realtime
 *   (test/support/fake-realtime.ts) while a real `rag-worker start --once` processes them in Supabase mode.
 * - The Edge Function runs under the real Deno (node_modules/.bin/deno) as a child process, `deno check`ed first.
 *
 * Two stand-ins, both on the real database: the fakes serve RPC only, so a small loopback server below answers
 * the one table read the browser side makes (`GET /rest/v1/rag_ingestion_queue?select=...&id=eq.<id>`, as
 * PostgREST answers it) and passes everything else on; and the fake Realtime learns of changes from NOTIFYs (the
 * queue's own trigger reports queued rows only), so the test database gets a trigger that notifies every update
 * of a job that is not queued, standing in for the WAL that the real Realtime reads.
 *
 * Deno downloads npm:@supabase/supabase-js into DENO_DIR on its first run: os.tmpdir()/rag-worker-deno-cache,
 * kept across runs. Without the npm registry the Deno tests fail, naming it.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createClient, type SupabaseClient } from '@supabase/supabase-js';
import pg from 'pg';
import { POST as searchPost, GET as searchGet } from '../../examples/nextjs/app/api/search/route.ts';
import { POST as transcriptsPost } from '../../examples/nextjs/app/api/transcripts/route.ts';
import { followJobProgress, type JobProgress } from '../../examples/nextjs/lib/job-progress.ts';
import { MAX_TRANSCRIPT_BYTES, TRANSCRIPT_FORMATS } from '../../examples/nextjs/lib/transcript-upload.ts';
import { TRANSCRIPT_FORMATS as WORKER_FORMATS } from '../../src/shared/types.ts';
import { cliEnv, runCli } from '../support/cli.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.ts';
import { startFakePostgrest, type FakePostgrest } from '../support/fake-postgrest.ts';
import { startFakeRealtime, type FakeRealtime } from '../support/fake-realtime.ts';
import { listenOn } from '../support/listen.ts';
import { waitFor } from '../support/process-helpers.ts';
import { createTestDatabase, type TestDatabase } from '../support/test-db.ts';

const KEY = 'service-role-key-for-app-examples-0123456789';
const DIMS = 64;
const ROOT = new URL('../../', import.meta.url);
const file = (rel: string) => fileURLToPath(new URL(rel, ROOT));
const MEETING = fs.readFileSync(file('examples/transcripts/product-meeting.vtt'));
const SUPPORT_CALL = JSON.parse(fs.readFileSync(file('examples/transcripts/support-call.json'), 'utf8')) as object;
const FUNCTION_DIR = file('examples/supabase-edge-function/enqueue-transcript/');
/**
 * The Deno executable itself. The npm package's bin entry may be its Node wrapper (when install scripts did not
 * run), which starts the executable as a child of its own: a signal to the wrapper would orphan the function
 * server, whose open pipes then keep this test file alive. Its installer links the executable in place.
 */
const DENO = denoExecutable();

function denoExecutable(): string {
  const exe = file('node_modules/deno/deno');
  if (!fs.existsSync(exe)) execFileSync(process.execPath, [file('node_modules/deno/install.cjs')], { stdio: 'ignore' });
  return exe;
}
const DENO_DIR = path.join(os.tmpdir(), 'rag-worker-deno-cache');

let db: TestDatabase;
let sql: pg.Pool;
let rest: FakePostgrest;
let tableReads: { url: string; close(): Promise<void> };
let realtime: FakeRealtime;
let openai: FakeOpenAI;
const savedEnv: Record<string, string | undefined> = {};
const APP_ENV = (): Record<string, string> => ({
  SUPABASE_URL: realtime.url,
  SUPABASE_SERVICE_ROLE_KEY: KEY,
  OPENAI_API_KEY: 'sk-app-examples-test-key',
  OPENAI_BASE_URL: openai.url,
  RAG_EMBEDDING_DIMENSIONS: String(DIMS),
});

before(async () => {
  db = await createTestDatabase(DIMS);
  sql = new pg.Pool({ connectionString: db.url, max: 3 });
  // The WAL stand-in: the fake Realtime hears of every change of a job that is not queued (the queue's own trigger
  // already notifies queued rows).
  await sql.query(`
    create function test_notify_progress() returns trigger language plpgsql as $$
    begin
      if new.status <> 'queued' then perform pg_notify('rag_ingestion_queue', new.id::text); end if;
      return null;
    end $$;
    create trigger test_notify_progress after update on rag_ingestion_queue for each row execute function test_notify_progress();`);
  rest = await startFakePostgrest({ databaseUrl: db.url, serviceKey: KEY });
  tableReads = await startTableReads(db.url, rest.url);
  realtime = await startFakeRealtime({ databaseUrl: db.url, serviceKey: KEY, restUrl: tableReads.url });
  openai = await startFakeOpenAI();
  for (const [k, v] of Object.entries(APP_ENV())) {
    savedEnv[k] = process.env[k];
    process.env[k] = v;
  }
});

after(async () => {
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await openai?.close();
  await realtime?.close();
  await tableReads?.close();
  await rest?.close();
  await sql?.end();
  await db?.drop();
});

// ───────────────────────────── helpers ─────────────────────────────

const APP = 'http://app.test';

function jsonRequest(body: unknown, url = `${APP}/api/transcripts`): Request {
  return new Request(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

function formRequest(fields: Record<string, string | File>, url = `${APP}/api/transcripts`): Request {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  return new Request(url, { method: 'POST', body: form });
}

async function jobCount(): Promise<number> {
  return Number((await sql.query<{ n: number }>('select count(*)::int as n from rag_ingestion_queue')).rows[0].n);
}

interface QueueRow {
  id: string;
  status: string;
  document_id: string;
  version: string;
  title: string | null;
  format: string;
  payload: { text: string };
  metadata: Record<string, unknown>;
}

async function jobRow(id: string): Promise<QueueRow> {
  const { rows } = await sql.query<QueueRow>('select id, status, document_id, version, title, format, payload, metadata from rag_ingestion_queue where id = $1', [id]);
  assert.equal(rows.length, 1, `job ${id} is in the queue`);
  return rows[0];
}

async function accepted(res: Response): Promise<{ job_id: string; document_id: string; version: string; status: string }> {
  const text = await res.text();
  assert.equal(res.status, 202, text);
  const body = JSON.parse(text) as { job_id: string; document_id: string; version: string; status: string };
  assert.match(body.job_id, /^[0-9a-f-]{36}$/);
  assert.equal(body.status, 'queued');
  return body;
}

/** Bad uploads: the same cases go to the Next.js route and the Edge Function, which must answer them alike. */
interface BadCase {
  name: string;
  request: (url: string) => Request;
  status: number;
  /** The field named in the answer (checked when given). */
  field?: string;
}

const owner = { owner_id: 'user-1' };
const utf16 = (text: string) => new Uint8Array([0xff, 0xfe, ...Buffer.from(text, 'utf16le')]);
const BAD_CASES: BadCase[] = [
  { name: 'a body that is not JSON', request: (u) => jsonRequest('{"document_id": "x",', u), status: 400 },
  { name: 'a JSON array', request: (u) => jsonRequest([{ document_id: 'x' }], u), status: 400 },
  { name: 'no content', request: (u) => jsonRequest({ document_id: 'x', ...owner }, u), status: 400, field: 'content' },
  { name: 'content that is a number', request: (u) => jsonRequest({ document_id: 'x', content: 42, ...owner }, u), status: 400, field: 'content' },
  { name: 'only whitespace and zero-width characters', request: (u) => jsonRequest({ document_id: 'x', content: ' \u200b\n\u2060 ', ...owner }, u), status: 400, field: 'content' },
  { name: 'an unknown format', request: (u) => jsonRequest({ document_id: 'x', content: 'Ann: hi', format: 'docx', ...owner }, u), status: 400, field: 'format' },
  { name: 'no document id', request: (u) => jsonRequest({ content: 'Ann: hi', ...owner }, u), status: 400, field: 'document_id' },
  { name: 'a document id with a newline', request: (u) => jsonRequest({ document_id: 'a\nb', content: 'Ann: hi', ...owner }, u), status: 400, field: 'document_id' },
  { name: 'no owner', request: (u) => jsonRequest({ document_id: 'x', content: 'Ann: hi' }, u), status: 400, field: 'owner_id' },
  { name: 'two different owners', request: (u) => jsonRequest({ document_id: 'x', content: 'Ann: hi', owner_id: 'a', metadata: { owner_id: 'b' } }, u), status: 400, field: 'owner_id' },
  { name: 'metadata that is an array', request: (u) => jsonRequest({ document_id: 'x', content: 'Ann: hi', metadata: [1], ...owner }, u), status: 400, field: 'metadata' },
  {
    name: 'speaker names that are not names',
    request: (u) => jsonRequest({ document_id: 'x', content: 'Ann: hi', metadata: { ...owner, speaker_names: { spk_0: 7 } } }, u),
    status: 400,
    field: 'metadata.speaker_names',
  },
  { name: 'a binary file', request: (u) => formRequest({ file: new File([new Uint8Array(4096).map((_, i) => (i * 7) % 256)], 'audio.mp3'), ...owner }, u), status: 400, field: 'file' },
  { name: 'a UTF-16 file', request: (u) => formRequest({ file: new File([utf16('WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nAnn: hello there\n')], 'utf16.vtt'), ...owner }, u), status: 400, field: 'file' },
  { name: 'an empty file', request: (u) => formRequest({ file: new File([], 'empty.vtt'), ...owner }, u), status: 400, field: 'file' },
  { name: 'a form without a file', request: (u) => formRequest({ document_id: 'x', ...owner }, u), status: 400, field: 'file' },
  { name: 'the file as a text field', request: (u) => formRequest({ file: 'WEBVTT', ...owner }, u), status: 400, field: 'file' },
  { name: 'metadata that is not JSON', request: (u) => formRequest({ file: new File([MEETING], 'm.vtt'), metadata: '{owner', ...owner }, u), status: 400, field: 'metadata' },
  { name: 'a text/plain body', request: (u) => new Request(u, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: 'WEBVTT' }), status: 415 },
  {
    name: 'a transcript over the size limit',
    request: (u) => jsonRequest({ document_id: 'x', content: 'a'.repeat(MAX_TRANSCRIPT_BYTES + 1), ...owner }, u),
    status: 413,
  },
];

async function assertRefused(res: Response, c: BadCase): Promise<void> {
  const text = await res.text();
  assert.equal(res.status, c.status, `${c.name}: ${text}`);
  const body = JSON.parse(text) as { error: string; field?: string };
  assert.equal(typeof body.error, 'string', c.name);
  assert.ok(body.error.length > 0, c.name);
  if (c.field !== undefined) assert.equal(body.field, c.field, `${c.name}: ${text}`);
}

// ───────────────────────────── Next.js ─────────────────────────────

describe('examples/nextjs: POST /api/transcripts', () => {
  test('a JSON upload is queued with its fields; NUL characters are removed', async () => {
    const body = await accepted(
      await transcriptsPost(
        jsonRequest({ document_id: 'call-7', version: 2, title: 'Call 7', format: 'deepgram', content: SUPPORT_CALL, metadata: { owner_id: 'user-1', speaker_names: { 0: 'Sam', 1: 'Caller' }, team: 'support' } }),
      ),
    );
    assert.deepEqual({ document_id: body.document_id, version: body.version }, { document_id: 'call-7', version: '2' });
    const row = await jobRow(body.job_id);
    assert.equal(row.status, 'queued');
    assert.equal(row.document_id, 'call-7');
    assert.equal(row.version, '2');
    assert.equal(row.title, 'Call 7');
    assert.equal(row.format, 'deepgram');
    assert.equal(row.payload.text, JSON.stringify(SUPPORT_CALL));
    assert.deepEqual(row.metadata, { owner_id: 'user-1', speaker_names: { 0: 'Sam', 1: 'Caller' }, team: 'support' });

    const nul = await accepted(await transcriptsPost(jsonRequest({ document_id: 'nul-doc', content: 'Ann: hello\u0000 there', format: 'text', owner_id: 'user-1' })));
    const nulRow = await jobRow(nul.job_id);
    assert.equal(nulRow.payload.text, 'Ann: hello there');
    assert.equal(nulRow.version, '1');
    assert.equal(nulRow.title, null);
    assert.deepEqual(nulRow.metadata, { owner_id: 'user-1' });
  });

  test('a multipart upload is queued under the file name; the same document version again keeps the job id', async () => {
    const first = await accepted(await transcriptsPost(formRequest({ file: new File([MEETING], 'product-meeting.vtt', { type: 'text/vtt' }), owner_id: 'user-2' })));
    const row = await jobRow(first.job_id);
    assert.equal(row.document_id, 'product-meeting.vtt');
    assert.equal(row.title, 'product-meeting');
    assert.equal(row.format, 'auto');
    assert.equal(row.payload.text, MEETING.toString('utf8'));
    assert.deepEqual(row.metadata, { owner_id: 'user-2', source_file: 'product-meeting.vtt' });

    const before = await jobCount();
    const again = await accepted(
      await transcriptsPost(formRequest({ file: new File(['WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nAnn: changed\n'], 'product-meeting.vtt'), format: 'vtt', owner_id: 'user-2' })),
    );
    assert.equal(again.job_id, first.job_id, 'the queued job takes the new transcript');
    assert.equal(await jobCount(), before);
    const updated = await jobRow(first.job_id);
    assert.match(updated.payload.text, /Ann: changed/);
    assert.equal(updated.format, 'vtt');
  });

  test('bad uploads get a clear 400 (413, 415) naming the field, and queue nothing', async () => {
    const before = await jobCount();
    for (const c of BAD_CASES) await assertRefused(await transcriptsPost(c.request(`${APP}/api/transcripts`)), c);
    assert.equal(await jobCount(), before, 'no job was created');
  });

  test('without the service-role key the route answers 500 and says nothing about the key', async () => {
    delete process.env.SUPABASE_SERVICE_ROLE_KEY;
    const errors: unknown[][] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => void errors.push(args);
    try {
      const res = await transcriptsPost(jsonRequest({ document_id: 'x', content: 'Ann: hi', owner_id: 'u' }));
      assert.equal(res.status, 500);
      assert.doesNotMatch(await res.text(), /SUPABASE_SERVICE_ROLE_KEY/);
      assert.match(String(errors[0]?.[0]), /SUPABASE_SERVICE_ROLE_KEY is not set/, 'the server log names the variable');
    } finally {
      console.error = original;
      process.env.SUPABASE_SERVICE_ROLE_KEY = KEY;
    }
  });

  test('the example lists exactly the formats the worker reads', () => {
    assert.deepEqual([...TRANSCRIPT_FORMATS], [...WORKER_FORMATS]);
  });

  test('the Edge Function shares the upload checks: its _shared copy is identical', () => {
    assert.equal(
      fs.readFileSync(file('examples/supabase-edge-function/_shared/transcript-upload.ts'), 'utf8'),
      fs.readFileSync(file('examples/nextjs/lib/transcript-upload.ts'), 'utf8'),
      'copy examples/nextjs/lib/transcript-upload.ts over examples/supabase-edge-function/_shared/transcript-upload.ts',
    );
  });
});

describe('examples/nextjs: upload, follow the job over Realtime while the worker runs, then search', () => {
  let client: SupabaseClient;
  let cwd: string;
  before(() => {
    client = createClient(realtime.url, KEY, { auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false } });
    cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'rw-app-examples-'));
  });
  after(async () => {
    await client.removeAllChannels();
    fs.rmSync(cwd, { recursive: true, force: true });
  });

  function follow(jobId: string) {
    const updates: JobProgress[] = [];
    const errors: string[] = [];
    const stop = followJobProgress(client, jobId, (p) => updates.push(p), { pollIntervalMs: 0, onError: (m) => errors.push(m) });
    return { updates, errors, stop, last: () => updates[updates.length - 1] };
  }

  test('complete with every chunk, failed with its reason, delivered by Realtime; chunks come back with speakers and times', async () => {
    // Only the jobs of this test are left to run.
    await sql.query(`update rag_ingestion_queue set status = 'cancelled', completed_at = now() where status = 'queued'`);
    const meeting = await accepted(await transcriptsPost(formRequest({ file: new File([MEETING], 'meeting.vtt'), document_id: 'meeting-flow', owner_id: 'user-flow' })));
    const broken = await accepted(await transcriptsPost(jsonRequest({ document_id: 'not-a-vtt', format: 'vtt', content: 'just some words, no cues', owner_id: 'user-flow' })));

    const a = follow(meeting.job_id);
    const b = follow(broken.job_id);
    // Reads are the only other way in, and with pollIntervalMs 0 they run only before the worker starts: every
    // later snapshot came over Realtime.
    await waitFor(() => a.last()?.status === 'queued' && b.last()?.status === 'queued', 'the first reads');
    await realtime.until((r) => r.activeSubscriptions >= 2, 'both subscriptions');
    await new Promise((r) => setTimeout(r, 200)); // the reads that follow SUBSCRIBED

    const worker = await runCli(
      ['start', '--once'],
      cliEnv({ ...APP_ENV(), RAG_THREADS: '1', RAG_POLL_INTERVAL_MS: '200', RAG_SUPABASE_REALTIME: 'false' }),
      cwd,
    );
    assert.equal(worker.code, 1, `one job failed, so start --once exits 1:\n${worker.stderr.slice(-3000)}`);

    const done = await waitFor(() => (a.last()?.terminal ? a.last() : undefined), 'the meeting job to end', { timeoutMs: 10_000 });
    assert.equal(done.status, 'complete', JSON.stringify(a.updates));
    assert.ok(done.chunksTotal !== null && done.chunksTotal > 0);
    assert.equal(done.chunksDone, done.chunksTotal);
    assert.equal(done.fraction, 1);
    assert.ok(done.tokensEmbedded > 0);
    assert.equal(done.error, null);
    assert.ok(done.completedAt);

    const failed = await waitFor(() => (b.last()?.terminal ? b.last() : undefined), 'the broken job to end', { timeoutMs: 10_000 });
    assert.equal(failed.status, 'failed');
    assert.match(failed.error ?? '', /vtt: no cues found/);

    for (const id of [meeting.job_id, broken.job_id]) {
      assert.ok(realtime.changes.some((c) => c.id === id && c.type === 'UPDATE' && c.topics.some((t) => t.startsWith('realtime:rag-job:'))), `Realtime delivered ${id}`);
    }
    assert.deepEqual(a.errors, []);
    // Terminal: both channels are gone without anyone calling stop().
    await realtime.until((r) => r.activeSubscriptions === 0, 'the channels to be left');
    const updatesAtEnd = a.updates.length;

    const { rows } = await sql.query<{ metadata: Record<string, unknown> }>(`select metadata from rag_documents where document_id = 'meeting-flow'`);
    assert.equal(rows[0]?.metadata.owner_id, 'user-flow', 'the owner reaches rag_documents.metadata');

    // Search: the question embedded by the openai SDK with the worker's model and dimensions, then rag_match_chunks.
    const embeddingsBefore = openai.requests.length;
    const res = await searchPost(jsonRequest({ query: 'billing database read replica', match_count: 3 }, `${APP}/api/search`));
    const text = await res.text();
    assert.equal(res.status, 200, text);
    const found = JSON.parse(text) as { query: string; chunks: { document_id: string; content: string; speakers: string[]; start_ms: number; end_ms: number; start: string; end: string; score: number; title: string }[] };
    assert.equal(found.chunks.length, 3);
    const top = found.chunks[0];
    assert.equal(top.document_id, 'meeting-flow');
    assert.equal(top.title, 'meeting');
    assert.match(top.content, /read replica/i);
    assert.ok(top.speakers.length > 0 && top.speakers.every((s) => typeof s === 'string' && s.length > 0), JSON.stringify(top.speakers));
    assert.equal(typeof top.start_ms, 'number');
    assert.ok(top.end_ms >= top.start_ms);
    assert.match(top.start, /^\d\d:\d\d:\d\d$/);
    assert.ok(found.chunks[0].score >= found.chunks[1].score);
    const asked = openai.requests[embeddingsBefore];
    assert.equal(asked.model, 'text-embedding-3-small');
    assert.equal(asked.dimensions, DIMS);

    const hybrid = await searchGet(new Request(`${APP}/api/search?q=${encodeURIComponent('rollback plan')}&k=2&document_id=meeting-flow&hybrid=1`));
    const hybridText = await hybrid.text();
    assert.equal(hybrid.status, 200, hybridText);
    const hits = (JSON.parse(hybridText) as { chunks: { document_id: string; vector_rank: number | null; text_rank: number | null }[] }).chunks;
    assert.ok(hits.length > 0 && hits.every((h) => h.document_id === 'meeting-flow' && 'vector_rank' in h && 'text_rank' in h), hybridText);

    assert.equal(a.updates.length, updatesAtEnd, 'nothing arrives after the end');
  });

  test('the search route refuses a missing question or a bad match count with 400', async () => {
    for (const [req, field] of [
      [jsonRequest({}, `${APP}/api/search`), 'query'],
      [jsonRequest({ query: '   ' }, `${APP}/api/search`), 'query'],
      [jsonRequest({ query: 'x', match_count: 0 }, `${APP}/api/search`), 'match_count'],
      [jsonRequest({ query: 'x', match_count: 'lots' }, `${APP}/api/search`), 'match_count'],
      [new Request(`${APP}/api/search?k=3`), 'query'],
    ] as const) {
      const res = req.method === 'GET' ? await searchGet(req) : await searchPost(req);
      const text = await res.text();
      assert.equal(res.status, 400, text);
      assert.equal((JSON.parse(text) as { field?: string }).field, field);
    }
  });

  test('stopping (the hook unmounting) leaves the channel: later changes reach nobody', async () => {
    const job = await accepted(await transcriptsPost(jsonRequest({ document_id: 'unmounted', content: 'Ann: hi', owner_id: 'u' })));
    const f = follow(job.job_id);
    await waitFor(() => f.last()?.status === 'queued', 'the first read');
    await realtime.until((r) => r.activeSubscriptions === 1, 'the subscription');
    f.stop();
    await realtime.until((r) => r.activeSubscriptions === 0, 'the channel to be left');
    const seen = f.updates.length;
    const heard = realtime.notifications;
    await sql.query(`select rag_cancel_job($1)`, [job.job_id]);
    await waitFor(() => realtime.notifications > heard, 'the cancellation to reach the fake Realtime');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(f.updates.length, seen);
    assert.ok(!realtime.changes.some((c) => c.id === job.job_id && c.type === 'UPDATE'), 'no channel got the cancellation');
  });
});

// ───────────────────────────── Supabase Edge Function (Deno) ─────────────────────────────

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function denoEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, DENO_DIR, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1', DENO_NO_PROMPT: '1', ...extra };
  // A CI machine's registry mirror, proxy and extra CA certificates (Deno reads NODE_EXTRA_CA_CERTS too) apply to
  // Deno's npm downloads as well.
  const passed = ['NPM_CONFIG_REGISTRY', 'HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY', 'https_proxy', 'http_proxy', 'no_proxy', 'DENO_CERT', 'DENO_TLS_CA_STORE', 'NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'SSL_CERT_DIR'];
  for (const k of passed) if (process.env[k]) env[k] = process.env[k];
  return env;
}

function runDeno(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(DENO, args, { cwd: FUNCTION_DIR, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: performance.now() - t0 }));
  });
}

const REGISTRY_HINT =
  `Deno downloads npm:@supabase/supabase-js@2.119.0 from the npm registry into DENO_DIR=${DENO_DIR} on its first run ` +
  '(later runs use that cache): is the registry reachable from this machine (NPM_CONFIG_REGISTRY for a mirror)?';

describe('examples/supabase-edge-function: enqueue-transcript under Deno', () => {
  let child: ChildProcess | undefined;
  let fnUrl: string;
  let check: Run;
  let startMs: number;

  before(async () => {
    fs.mkdirSync(DENO_DIR, { recursive: true });
    check = await runDeno(['check', '--no-lock', 'index.ts'], denoEnv({}));
    if (check.code !== 0) {
      const downloading = /registry|download|fetch|network|dns|connect|tarball/i.test(check.stderr);
      const tls = /certificate/i.test(check.stderr) ? ' A TLS certificate was refused: behind an intercepting proxy, point DENO_CERT (or NODE_EXTRA_CA_CERTS) at its CA.' : '';
      throw new Error(`deno check index.ts failed (exit ${check.code}).${downloading ? ` ${REGISTRY_HINT}` : ''}${tls}\n${check.stderr.slice(-3000)}`);
    }
    const t0 = performance.now();
    const env = denoEnv({ DENO_SERVE_ADDRESS: 'tcp:127.0.0.1:0', SUPABASE_URL: rest.url, SUPABASE_SERVICE_ROLE_KEY: KEY });
    const proc = spawn(DENO, ['run', '--allow-net', '--allow-env', '--no-lock', 'index.ts'], { cwd: FUNCTION_DIR, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    let output = '';
    fnUrl = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the function did not start listening within 120 s. ${REGISTRY_HINT}\n${output.slice(-3000)}`)), 120_000);
      const onData = (d: Buffer) => {
        output += d.toString();
        const m = /Listening on (http:\/\/[^\s]+?)\/?(\s|$)/.exec(output);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      };
      proc.stdout!.on('data', onData);
      proc.stderr!.on('data', onData);
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`deno run index.ts exited (${code}) before listening. ${REGISTRY_HINT}\n${output.slice(-3000)}`));
      });
    });
    startMs = performance.now() - t0;
  });

  after(async () => {
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      process.kill(child.pid, 'SIGTERM');
      await exited;
    }
  });

  test('deno check passes; the function starts', (t) => {
    assert.equal(check.code, 0);
    t.diagnostic(`deno check ${Math.round(check.ms)} ms, deno run until listening ${Math.round(startMs)} ms (DENO_DIR ${DENO_DIR})`);
  });

  test('a JSON upload is queued with its fields', async () => {
    const body = await accepted(
      await fetch(jsonRequest({ document_id: 'edge-call', version: '3', title: 'Edge call', format: 'deepgram', content: SUPPORT_CALL, metadata: { owner_id: 'edge-user', speaker_names: { 0: 'Sam' } } }, fnUrl)),
    );
    const row = await jobRow(body.job_id);
    assert.equal(row.status, 'queued');
    assert.deepEqual(
      { document_id: row.document_id, version: row.version, title: row.title, format: row.format, metadata: row.metadata },
      { document_id: 'edge-call', version: '3', title: 'Edge call', format: 'deepgram', metadata: { owner_id: 'edge-user', speaker_names: { 0: 'Sam' } } },
    );
    assert.equal(row.payload.text, JSON.stringify(SUPPORT_CALL));
  });

  test('a multipart upload is queued under the file name', async () => {
    const res = await fetch(formRequest({ file: new File([MEETING], 'edge-meeting.vtt', { type: 'text/vtt' }), owner_id: 'edge-user' }, fnUrl));
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    const row = await jobRow((await accepted(res)).job_id);
    assert.equal(row.document_id, 'edge-meeting.vtt');
    assert.equal(row.title, 'edge-meeting');
    assert.equal(row.payload.text, MEETING.toString('utf8'));
    assert.deepEqual(row.metadata, { owner_id: 'edge-user', source_file: 'edge-meeting.vtt' });
  });

  test('bad uploads get the same answers as from the Next.js route, and queue nothing', async () => {
    const before = await jobCount();
    for (const c of BAD_CASES) await assertRefused(await fetch(c.request(fnUrl)), c);
    assert.equal(await jobCount(), before, 'no job was created');
  });

  test('CORS preflight and other methods', async () => {
    const preflight = await fetch(fnUrl, { method: 'OPTIONS' });
    assert.equal(preflight.status, 204);
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /authorization/);
    const get = await fetch(fnUrl);
    assert.equal(get.status, 405);
    assert.equal((await get.json() as { error: string }).error, 'use POST');
  });
});

// ───────────────────────────── the table-read stand-in ─────────────────────────────

/**
 * `GET /rest/v1/rag_ingestion_queue?select=<columns>&id=eq.<id>` answered from the database as PostgREST answers
 * it (a JSON array built by json_agg, after the gateway's and PostgREST's key checks); everything else is passed
 * on to `restUrl`.
 */
async function startTableReads(databaseUrl: string, restUrl: string): Promise<{ url: string; close(): Promise<void> }> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  pool.on('error', () => {});
  const target = new URL(restUrl);
  const send = (res: import('node:http').ServerResponse, status: number, body: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...headers });
    res.end(body);
  };
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname !== '/rest/v1/rag_ingestion_queue') {
      const upstream = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.on('error', () => (res.headersSent ? res.destroy() : send(res, 502, '{"message":"upstream failed"}')));
      req.pipe(upstream);
      return;
    }
    req.resume();
    if (req.headers.apikey !== KEY) return send(res, 401, '{"message":"Invalid API key"}');
    if (req.headers.authorization !== `Bearer ${KEY}`) return send(res, 401, '{"code":"PGRST301","message":"JWSError JWSInvalidSignature","details":null,"hint":null}');
    if (req.method !== 'GET') return send(res, 405, '{"message":"only GET is served here"}');
    const select = url.searchParams.get('select') ?? '*';
    const id = /^eq\.(.+)$/.exec(url.searchParams.get('id') ?? '')?.[1];
    const others = [...url.searchParams.keys()].filter((k) => k !== 'select' && k !== 'id');
    if (!/^[a-z_]+(,[a-z_]+)*$/.test(select) || id === undefined || others.length > 0) {
      return send(res, 400, JSON.stringify({ code: 'PGRST_FAKE', message: `only select=<columns>&id=eq.<id> is served here, not ${url.search}`, details: null, hint: null }));
    }
    const columns = select.split(',').map((c) => `"${c}"`).join(', ');
    pool
      .query<{ body: string; n: number }>(`select coalesce(json_agg(t), '[]'::json)::text as body, count(*)::int as n from (select ${columns} from rag_ingestion_queue where id::text = $1) t`, [id])
      .then(({ rows }) => send(res, 200, rows[0].body, { 'Content-Range': rows[0].n > 0 ? `0-${rows[0].n - 1}/*` : '*/*' }))
      .catch((e: pg.DatabaseError) => send(res, 400, JSON.stringify({ code: e.code ?? 'XX000', message: e.message, details: null, hint: null })));
  });
  const port = await listenOn(server);
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await pool.end();
    },
  };
}
