/**
 * Secrets never leave the process, end to end on the embedded backend: an OPENAI_BASE_URL with a password in its
 * userinfo and an API key of no known shape (not `sk-`) go through `search` and `ingest` against a loopback
 * OpenAI-compatible server whose every answer is an error quoting the key (masked, first/last 8 characters,
 * middle elided) and the credential-bearing URL. Then neither stdout, stderr, `config` (text and --json),
 * `status --json` nor the stored error_detail/attempt_history (read straight from the database) contains the
 * password (as written or percent-decoded) or any 6-character piece of the key.
 *
 * Note: Node's fetch refuses a URL with credentials, so with today's provider the first case never reaches the
 * server and the error is "cannot reach the embedding endpoint <URL>"; the test holds either way.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createPgliteClient } from '../../src/main/stores/pglite-client.ts';
import { cliEnv, runCli, type CliResult } from '../support/cli.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.ts';

const KEY = 'gsk_live_Q7rT2vX9mK4pL8sN'; // an API key of no known shape: only the configured value identifies it
const PASSWORD = 'Pr0xy@pa55/w0rd!';
const ENCODED_PASSWORD = encodeURIComponent(PASSWORD); // Pr0xy%40pa55%2Fw0rd!

/** What must never appear: the password in both spellings, and every 6-character piece of the key. */
const FORBIDDEN = [PASSWORD, ENCODED_PASSWORD, ...Array.from({ length: KEY.length - 5 }, (_, i) => KEY.slice(i, i + 6))];

/** Where a secret showed up: "search stderr", "stored error_detail", … (collected, so one run lists them all). */
let leaks: string[] = [];

function checkClean(what: string, text: string): void {
  const found = FORBIDDEN.filter((secret) => text.includes(secret));
  if (found.length > 0) leaks.push(`${what} contains ${found.map((f) => JSON.stringify(f)).join(', ')}`);
}

function checkAllClean(what: string, r: CliResult): void {
  checkClean(`${what} stdout`, r.stdout);
  checkClean(`${what} stderr`, r.stderr);
}

let server: FakeOpenAI;
let dir: string;

/** The error body the fake server answers: the key as providers quote it, plus a URL with credentials. */
function quotingBody(credentialUrl: string, extra = ''): string {
  return (
    `Invalid 'input[0]': this proxy refused key ${KEY.slice(0, 12)}***${KEY.slice(-4)} ` +
    `(starts with ${KEY.slice(0, 8)}, ends with ${KEY.slice(-8)}, a.k.a. ${KEY.slice(0, 6)}…${KEY.slice(-6)}) ` +
    `for upstream ${credentialUrl}${extra}`
  );
}

before(async () => {
  server = await startFakeOpenAI({ dimensions: 64 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rw-secrets-'));
  fs.writeFileSync(path.join(dir, 'standup.txt'), 'Ann: Good morning everyone.\n\nBob: I finished migrating the billing database to a read replica.\n');
});

after(async () => {
  await server?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function envFor(dataDir: string, baseUrl: string): NodeJS.ProcessEnv {
  return cliEnv({
    RAG_DATA_DIR: dataDir,
    OPENAI_API_KEY: KEY,
    OPENAI_BASE_URL: baseUrl,
    RAG_EMBEDDING_DIMENSIONS: '64',
    RAG_THREADS: '1',
    RAG_PROVIDER_RETRIES: '0',
    RAG_MAX_ATTEMPTS: '1',
    RAG_RETRY_BASE_MS: '0',
    RAG_LOG_LEVEL: 'debug',
  });
}

/** Runs search, ingest, config (and status); checks every output and the stored rows. One data directory for all. */
async function exercise(baseUrl: string, endpoint: RegExp, { withStatus }: { withStatus: boolean }): Promise<{ details: string[] }> {
  const dataDir = path.join(dir, 'data');
  const env = envFor(dataDir, baseUrl);

  leaks = [];
  const search = await runCli(['search', 'billing database', '--json'], env, dir);
  checkAllClean('search', search);
  assert.notEqual(search.code, 0, `search should fail: ${search.stdout}`);

  const ingest = await runCli(['ingest', path.join(dir, 'standup.txt'), '--json'], env, dir);
  checkAllClean('ingest', ingest);
  const [job] = JSON.parse(ingest.stdout) as { id: string; status: string; error_detail: string | null }[];
  assert.notEqual(job.status, 'complete', ingest.stderr);
  assert.ok(job.error_detail, `the job records why it did not complete: ${ingest.stdout}`);

  if (withStatus) {
    const status = await runCli(['status', job.id, '--json'], env, dir);
    assert.equal(status.code, 0, status.stderr);
    checkAllClean('status', status);
    assert.equal((JSON.parse(status.stdout) as { error_detail: string }).error_detail, job.error_detail);
  }

  const configJson = await runCli(['config', '--json'], env, dir);
  assert.equal(configJson.code, 0, configJson.stderr);
  checkAllClean('config --json', configJson);
  const shown = (JSON.parse(configJson.stdout) as Record<string, string>).OPENAI_BASE_URL;
  assert.ok(shown.startsWith('http://') && shown.endsWith(`127.0.0.1:${server.port}/v1`), shown);
  const configText = await runCli(['config'], env, dir);
  assert.equal(configText.code, 0, configText.stderr);
  checkAllClean('config', configText);

  // The stored rows themselves, not a (possibly redacting) view of them.
  const sql = await createPgliteClient(dataDir);
  try {
    const rows = await sql.query<{ id: string; error_detail: string | null; history: string }>('select id, error_detail, attempt_history::text as history from rag_ingestion_queue');
    assert.ok(rows.some((r) => r.id === job.id));
    for (const row of rows) {
      checkClean('stored error_detail', row.error_detail ?? '');
      checkClean('stored attempt_history', row.history);
    }
    assert.deepEqual(leaks, [], `secrets leaked:\n${leaks.join('\n')}`);
    assert.match(search.stderr, endpoint, 'the error still names the endpoint (only its credentials are hidden)');
    return { details: rows.filter((r) => r.id === job.id).map((r) => r.error_detail ?? '') };
  } finally {
    await sql.close();
  }
}

describe('secrets in OPENAI_BASE_URL and OPENAI_API_KEY stay out of every output', () => {
  test('a password in OPENAI_BASE_URL userinfo: search, ingest, status, config', async () => {
    const credentialUrl = `http://rwuser:${ENCODED_PASSWORD}@127.0.0.1:${server.port}/v1`;
    server.reset();
    server.onRequest = () => ({ status: 400, message: quotingBody(credentialUrl, ` (password ${PASSWORD})`) });
    const { details } = await exercise(credentialUrl, /http:\/\/(rwuser:)?\[redacted\]@127\.0\.0\.1:\d+\/v1/, { withStatus: true });
    for (const d of details) assert.match(d, /\[redacted\]/, d);
  });

  test('a key of no known shape quoted by the provider (masked, first/last 8, middle elided): search, ingest, status, config', async () => {
    server.reset();
    const quotedUrl = `https://rwuser:${ENCODED_PASSWORD}@upstream.internal/v1`;
    server.onRequest = () => ({ status: 400, message: quotingBody(quotedUrl) });
    const { details } = await exercise(server.url, /https:\/\/rwuser:\[redacted\]@upstream\.internal\/v1/, { withStatus: false });
    assert.ok(server.requests.length >= 2, 'search and ingest reached the server');
    for (const d of details) assert.match(d, /refused key \[redacted\]/, d);
  });
});
