/**
 * `start` with RAG_HTTP_PORT: /health (no token), /ready and /metrics (bearer token), over real HTTP from a
 * worker process on a real PostgreSQL with a loopback OpenAI. Metrics count what the worker did; a worker-level
 * fault makes /ready fail naming the setting while /health stays up (restarting would not fix a key); a port in
 * use stops start-up naming the setting; the platform's PORT is used when RAG_HTTP_PORT is empty. Secrets never
 * appear in a response.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, afterEach, test } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.ts';
import { closeScenarios, DIMS, killAllWorkers, openScenario, segmentsPayload, spawnWorker, TEST_KEY, waitFor, workerEnv, type WorkerProcess } from '../support/process-helpers.ts';

const TOKEN = 'http-token-0123456789-abcdef';
const servers: FakeOpenAI[] = [];

afterEach(killAllWorkers);
after(async () => {
  await closeScenarios();
  for (const s of servers) await s.close();
});

async function fakeOpenAI(options: Parameters<typeof startFakeOpenAI>[0] = {}): Promise<FakeOpenAI> {
  const server = await startFakeOpenAI({ dimensions: DIMS, ...options });
  servers.push(server);
  return server;
}

async function listeningPort(worker: WorkerProcess): Promise<number> {
  const line = await worker.waitForEvent('http_listening', undefined, 20_000);
  return line.port as number;
}

async function get(port: number, path: string, token?: string): Promise<{ status: number; body: string; type: string | null }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, body: await res.text(), type: res.headers.get('content-type') };
}

function metric(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

test('health without a token, ready and metrics with it; metrics count the jobs, chunks and requests', async () => {
  const { db, probe } = await openScenario();
  const openai = await fakeOpenAI();
  const worker = spawnWorker('http', workerEnv(db, openai, { RAG_HTTP_PORT: '0', RAG_HTTP_HOST: '127.0.0.1', RAG_HTTP_TOKEN: TOKEN, RAG_QUEUE_SAMPLE_MS: '1000' }));
  const port = await listeningPort(worker);

  const health = await get(port, '/health');
  assert.equal(health.status, 200, health.body);
  assert.equal(JSON.parse(health.body).status, 'ok');
  for (const path of ['/ready', '/metrics', '/', '/status.json']) {
    const denied = await get(port, path);
    assert.equal(denied.status, 401, `${path} without the token`);
    assert.equal((await get(port, path, 'wrong-token-0123456789')).status, 401, `${path} with a wrong token`);
  }
  const ready = await get(port, '/ready', TOKEN);
  assert.equal(ready.status, 200, ready.body);
  assert.deepEqual(JSON.parse(ready.body).checks.map((c: { name: string; ok: boolean }) => [c.name, c.ok]), [['database', true], ['pgvector', true], ['schema', true], ['dimensions', true], ['worker', true]]);
  const viaQuery = await fetch(`http://127.0.0.1:${port}/status.json?token=${TOKEN}`);
  assert.equal(viaQuery.status, 200, 'the token may be a query parameter (for the status page)');

  const ids = await probe.enqueueMany([0, 1, 2].map((i) => ({ documentId: `http-doc-${i}`, payload: segmentsPayload(`http${i}`, 12) })));
  for (const id of ids) await probe.waitForStatus(id, ['complete']);
  const chunks = (await probe.jobs(ids)).reduce((n, j) => n + (j.chunks_total ?? 0), 0);
  const text = await waitFor(async () => {
    const m = await get(port, '/metrics', TOKEN);
    return metric(m.body, 'rag_worker_jobs_total', 'status="complete"') === 3 ? m : undefined;
  }, 'the completions to show in /metrics');
  assert.match(text.type ?? '', /^text\/plain; version=0\.0\.4/);
  assert.equal(metric(text.body, 'rag_worker_chunks_total', 'provider="openai",kind="embedded"'), chunks);
  assert.equal(metric(text.body, 'rag_worker_provider_requests_total', 'provider="openai",status="200"'), openai.stats().requests);
  assert.ok((metric(text.body, 'rag_worker_tokens_total', 'provider="openai",model="text-embedding-3-small",kind="embedding"') ?? 0) > 0);
  assert.equal(metric(text.body, 'rag_worker_job_duration_seconds_count', 'status="complete"'), 3);
  assert.equal(metric(text.body, 'rag_worker_fault'), 0);
  assert.ok(metric(text.body, 'nodejs_eventloop_lag_seconds') !== undefined, 'default process metrics are there');
  for (const body of [health.body, ready.body, text.body]) {
    assert.ok(!body.includes(TEST_KEY) && !body.includes(TOKEN), 'no secret in a response');
  }
  const queued = await waitFor(async () => {
    const m = (await get(port, '/metrics', TOKEN)).body;
    return metric(m, 'rag_worker_queue_jobs', 'status="complete"') === 3 ? m : undefined;
  }, 'the queue sample to count the completed jobs', { timeoutMs: 30_000 });
  assert.equal(metric(queued, 'rag_worker_queue_jobs', 'status="queued"'), 0);
});

test('a worker-level fault: /ready 503 naming the setting, /health still 200, rag_worker_fault 1', async () => {
  const { db, probe } = await openScenario();
  const openai = await fakeOpenAI({ apiKey: 'sk-the-real-one-000000000000000' });
  const worker = spawnWorker('http-fault', workerEnv(db, openai, { RAG_HTTP_PORT: '0', RAG_HTTP_HOST: '127.0.0.1' }));
  const port = await listeningPort(worker);
  {
    await probe.enqueue('fault-doc', segmentsPayload('fault', 4));
    await worker.waitForEvent('fault', undefined, 20_000);
    const ready = await waitFor(async () => {
      const r = await get(port, '/ready');
      return r.status === 503 ? r : undefined;
    }, '/ready to fail');
    const body = JSON.parse(ready.body) as { failing: string; checks: { name: string; detail: string }[] };
    assert.equal(body.failing, 'worker');
    assert.match(body.checks.find((c) => c.name === 'worker')!.detail, /OPENAI_API_KEY/);
    assert.ok(!ready.body.includes(TEST_KEY), 'the key is not shown');
    assert.equal((await get(port, '/health')).status, 200, 'a fault is not a stall: a restart would not fix it');
    assert.equal(metric((await get(port, '/metrics')).body, 'rag_worker_fault'), 1);
  }
});

test('a port in use stops start-up naming RAG_HTTP_PORT; PORT is used when RAG_HTTP_PORT is empty', async () => {
  const { db } = await openScenario();
  const openai = await fakeOpenAI();
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const taken = (blocker.address() as net.AddressInfo).port;
  try {
    const worker = spawnWorker('http-taken', workerEnv(db, openai, { RAG_HTTP_PORT: String(taken), RAG_HTTP_HOST: '127.0.0.1' }));
    const exit = await worker.waitForExit(20_000);
    assert.ok(exit && exit.code !== 0, 'start-up fails');
    assert.match(worker.stderrText, new RegExp(`RAG_HTTP_PORT=${taken}: port ${taken} on 127\\.0\\.0\\.1 is already in use`));
  } finally {
    blocker.close();
  }
  const platform = spawnWorker('http-platform', workerEnv(db, openai, { PORT: '0', RAG_HTTP_HOST: '127.0.0.1' }));
  const port = await listeningPort(platform);
  assert.equal((await get(port, '/health')).status, 200);
  // A request target that is not a URL (no token needed to send one) gets 400; the worker goes on.
  const raw = await new Promise<string>((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write('GET //[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    let text = '';
    socket.on('data', (d) => (text += d));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
  assert.match(raw, /^HTTP\/1\.1 400 /);
  assert.equal((await get(port, '/health')).status, 200, 'still running');
  assert.equal((await get(port, '/ready')).status, 200, 'no token configured: /ready is open');
});
