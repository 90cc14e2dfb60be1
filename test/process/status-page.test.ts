/**
 * The status page in a real headless Chromium (Debian's, driven by playwright-core): served by a worker process,
 * fed by server-sent events, it shows a job's progress bar moving while the job runs, then the job gone from
 * "in flight" and counted complete; a failed job appears under "Recent failures" with its error_detail.
 * Skipped, saying so, where /usr/bin/chromium is absent (.ci/run installs it).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.ts';
import { closeScenarios, DIMS, killAllWorkers, openScenario, segmentsPayload, spawnWorker, waitFor, workerEnv } from '../support/process-helpers.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const TOKEN = 'status-page-token-0123456789';
const servers: FakeOpenAI[] = [];
let browser: Browser | undefined;

afterEach(killAllWorkers);
after(async () => {
  await browser?.close();
  await closeScenarios();
  for (const s of servers) await s.close();
});

test('the status page shows a job progressing to complete, and a failure with its error_detail', async (t) => {
  if (!fs.existsSync(CHROMIUM)) {
    t.diagnostic(`WARNING: ${CHROMIUM} not found (apt-get install chromium, or set CHROMIUM_PATH)`);
    t.skip('no Chromium: status page browser test skipped');
    return;
  }
  const { db, probe } = await openScenario();
  const openai = await startFakeOpenAI({ dimensions: DIMS, latency: { baseMs: 60 } });
  servers.push(openai);
  const worker = spawnWorker('status-page', workerEnv(db, openai, {
    RAG_HTTP_PORT: '0',
    RAG_HTTP_HOST: '127.0.0.1',
    RAG_HTTP_TOKEN: TOKEN,
    RAG_QUEUE_SAMPLE_MS: '1000',
    RAG_EMBEDDING_BATCH: '4',
    RAG_EMBEDDING_CONCURRENCY: '1',
  }));
  const port = (await worker.waitForEvent('http_listening', undefined, 20_000)).port as number;

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    // Playwright gives every launch a fresh empty profile; these flags keep Chromium off the (closed) network.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`http://127.0.0.1:${port}/?token=${TOKEN}`);
  await page.locator('#connection', { hasText: 'live' }).waitFor({ timeout: 15_000 });
  assert.equal(await page.locator('#state').textContent(), 'running');

  const id = await probe.enqueue('watched-doc', segmentsPayload('watch', 300));
  const bar = page.locator(`#in-flight tr[data-job-id="${id}"] progress`);
  await bar.waitFor({ timeout: 15_000 });
  const seen = new Set<number>();
  let max = 0;
  // Read the bar in one step (null once the row is gone): the row can vanish between two separate reads.
  const readBar = () =>
    page.evaluate((jobId) => {
      // Runs in the page (the test's own typings have no DOM).
      const doc = (globalThis as unknown as { document: { querySelector(s: string): { value: number; max: number } | null } }).document;
      const el = doc.querySelector(`#in-flight tr[data-job-id="${jobId}"] progress`);
      return el === null ? null : { value: el.value, max: el.max };
    }, id);
  await waitFor(async () => {
    const now = await readBar();
    if (now === null) return true; // finished and gone
    max = now.max;
    seen.add(now.value);
    return undefined;
  }, 'the job to leave the in-flight table', { timeoutMs: 60_000, intervalMs: 100 });
  const values = [...seen].sort((a, b) => a - b);
  assert.ok(values.length >= 3, `the bar moved through several values: ${values.join(', ')} of ${max}`);
  assert.equal(max, 300, 'the bar counts the job\'s 300 segments');
  assert.equal((await probe.job(id)).status, 'complete');
  await page.locator('.card[data-status="complete"] b', { hasText: '1' }).waitFor({ timeout: 15_000 });

  const { rows } = await probe.pool.query<{ id: string }>(`select rag_enqueue('broken-page', '1', 'broken', 'srt', '{"text": "not a subtitle"}'::jsonb) as id`);
  await probe.waitForStatus(rows[0].id, ['failed']);
  const failure = page.locator(`#failures tr[data-job-id="${rows[0].id}"]`);
  await failure.waitFor({ timeout: 15_000 });
  assert.match((await failure.locator('.error').textContent()) ?? '', /srt/);
  await page.screenshot({ path: path.join(os.tmpdir(), 'rag-worker-status-page.png'), fullPage: true });
  assert.deepEqual(errors, [], 'no script errors on the page');
  assert.ok(!(await page.content()).includes(TOKEN), 'the token is not written into the page');
});
