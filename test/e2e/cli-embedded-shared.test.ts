/**
 * One worker, other shells, on the embedded database: while `rag-worker start` holds it, `status`, `enqueue`,
 * `search`, `jobs list`, `cancel`, `retry`, `migrate` and `ingest` from other processes work through the worker's
 * control socket (mode 0600), and the jobs they queue are processed by that worker. Once it stops, the commands
 * open the database themselves again.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { controlSocketPath } from '../../src/main/stores/embedded-control.ts';
import { cliEnv, runCli, startCli, waitForEvent } from '../support/cli.ts';

const EXAMPLES = fileURLToPath(new URL('../../examples/transcripts/', import.meta.url));
let cwd: string;
let env: NodeJS.ProcessEnv;

before(() => {
  cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'rw-shared-'));
  env = cliEnv({ RAG_THREADS: '1', RAG_POLL_INTERVAL_MS: '200' });
});
after(() => fs.rmSync(cwd, { recursive: true, force: true }));

test('while start holds the embedded database, other commands go through it; afterwards they open it themselves', async () => {
  const worker = startCli(['start'], env, cwd);
  try {
    await waitForEvent(worker, 'worker_ready', undefined, 30_000);
    const socket = controlSocketPath(path.join(cwd, '.rag-worker'));
    assert.equal(fs.statSync(socket).mode & 0o777, 0o600, 'only this user may connect');

    const status = await runCli(['status', '--json'], env, cwd);
    assert.equal(status.code, 0, status.stderr);
    assert.deepEqual(JSON.parse(status.stdout), { queued: 0, processing: 0, complete: 0, failed: 0, cancelled: 0, usage: {} });

    const enqueue = await runCli(['enqueue', path.join(EXAMPLES, 'product-meeting.vtt'), '--wait', '--json'], env, cwd);
    assert.equal(enqueue.code, 0, enqueue.stderr);
    const [job] = JSON.parse(enqueue.stdout) as { id: string; status: string }[];
    assert.equal(job.status, 'complete', 'the running worker processed it');

    const ingest = await runCli(['ingest', path.join(EXAMPLES, 'customer-interview.srt'), '--json'], env, cwd);
    assert.equal(ingest.code, 0, ingest.stderr);
    assert.match(ingest.stderr, /holds the embedded database; it will process these jobs/);
    assert.equal((JSON.parse(ingest.stdout) as { status: string }[])[0].status, 'complete');

    const search = await runCli(['search', 'billing database read replica', '-k', '1', '--json'], env, cwd);
    assert.equal(search.code, 0, search.stderr);
    assert.equal((JSON.parse(search.stdout) as { document_id: string }[])[0].document_id, 'product-meeting.vtt');

    const list = JSON.parse((await runCli(['jobs', 'list', '--json'], env, cwd)).stdout) as { id: string; start_ms?: unknown; completed_at: string }[];
    assert.equal(list.length, 2);
    assert.ok(!Number.isNaN(Date.parse(list[0].completed_at)), 'dates survive the socket');
    const one = await runCli(['status', job.id, '--json'], env, cwd);
    assert.equal(JSON.parse(one.stdout).status, 'complete');
    assert.equal((await runCli(['cancel', job.id], env, cwd)).code, 1, 'a complete job cannot be cancelled');
    const retry = await runCli(['retry', job.id], env, cwd);
    assert.equal(retry.code, 1, 'only failed or cancelled jobs are retried');
    const migrate = await runCli(['migrate'], env, cwd);
    assert.equal(migrate.code, 0, migrate.stderr);
    assert.match(migrate.stdout, /is open in process \d+, which prepared its schema/);
  } finally {
    worker.kill('SIGTERM');
    await worker.result;
  }
  assert.ok(!fs.existsSync(controlSocketPath(path.join(cwd, '.rag-worker'))), 'the socket is removed on exit');
  const status = await runCli(['status', '--json'], env, cwd);
  assert.equal(status.code, 0, status.stderr);
  assert.equal(JSON.parse(status.stdout).complete, 2, 'the same data, opened directly');
});

test('a control socket that another user owns is never used', { skip: process.getuid?.() !== 0 ? 'needs root to make a socket owned by another user' : false }, async () => {
  const net = await import('node:net');
  const { connectControl } = await import('../../src/main/stores/embedded-control.ts');
  const dataDir = path.join(cwd, 'x'.repeat(120)); // too long for a socket inside it: the private temp directory is used
  const socket = controlSocketPath(dataDir);
  assert.ok(!socket.startsWith(dataDir));
  fs.mkdirSync(path.dirname(socket), { recursive: true, mode: 0o700 });
  const body = '{"result":{"queued":0,"processing":0,"complete":0,"failed":0,"cancelled":0}}';
  const server = net.createServer((c) => c.end(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`));
  await new Promise<void>((r) => server.listen(socket, r));
  try {
    assert.ok(await connectControl(dataDir), 'our own socket is used');
    fs.chownSync(socket, 65534, 65534);
    assert.equal(await connectControl(dataDir), undefined, "another user's socket is not");
  } finally {
    server.close();
    fs.rmSync(socket, { force: true });
  }
});
