/**
 * A worker process with RAG_ALERT_WEBHOOK_URL pointing at loopback Slack and Discord receivers: a job's final
 * failure and a job running past RAG_LONG_JOB_MS reach both, in each format, with the document and no secret;
 * the webhook URLs (secrets themselves) never appear in the log.
 */
import assert from 'node:assert/strict';
import { after, afterEach, test } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.ts';
import { closeScenarios, DIMS, killAllWorkers, openScenario, segmentsPayload, spawnWorker, TEST_KEY, workerEnv } from '../support/process-helpers.ts';
import { startReceiver, type Receiver } from '../support/webhook-receivers.ts';

const servers: { close(): Promise<void> }[] = [];
afterEach(killAllWorkers);
after(async () => {
  await closeScenarios();
  for (const s of servers) await s.close();
});

test('final failure and long job alerts reach Slack and Discord; no secret in them, no webhook URL in the log', async () => {
  const { db, probe } = await openScenario();
  const openai: FakeOpenAI = await startFakeOpenAI({ dimensions: DIMS, latency: { baseMs: 700 } });
  const slack: Receiver = await startReceiver('slack');
  const discord: Receiver = await startReceiver('discord');
  servers.push(openai, slack, discord);
  const worker = spawnWorker('alerts', workerEnv(db, openai, { RAG_ALERT_WEBHOOK_URL: `${slack.url}, ${discord.url}`, RAG_LONG_JOB_MS: '1000', RAG_EMBEDDING_BATCH: '4', RAG_EMBEDDING_CONCURRENCY: '1' }));
  await worker.waitForEvent('worker_ready', undefined, 20_000);

  const { rows } = await probe.pool.query<{ id: string }>(`select rag_enqueue('broken-vtt', '1', 'broken', 'vtt', '{"text": "WEBVTT\\n\\nno cues here"}'::jsonb) as id`);
  await probe.waitForStatus(rows[0].id, ['failed']);
  const slow = await probe.enqueue('slow-doc', segmentsPayload('slow', 16));
  await probe.waitForStatus(slow, ['complete'], 30_000);
  await Promise.all([slack.waitFor(2), discord.waitFor(2)]);

  for (const r of [slack, discord]) {
    assert.deepEqual(r.messages.flatMap((m) => m.problems), [], `${r.kind} accepts every message`);
    const failure = r.messages.find((m) => /Job failed: broken-vtt/.test(m.text));
    assert.ok(failure, `${r.kind}: the failure alert`);
    assert.match(failure.text, /vtt: no cues found/);
    assert.match(failure.text, /bad_input/);
    const long = r.messages.find((m) => /Job running for \d+ s: slow-doc/.test(m.text));
    assert.ok(long, `${r.kind}: the long-job alert`);
    assert.ok(!r.messages.some((m) => JSON.stringify(m.body).includes(TEST_KEY)), `${r.kind}: no API key`);
  }
  assert.ok(worker.findEvent('alerts_enabled', { webhooks: 2 }));
  const log = worker.stderrText;
  assert.ok(!log.includes('slack-secret-XYZ') && !log.includes('discord-secret-XYZ'), 'webhook URLs are not logged');
});
