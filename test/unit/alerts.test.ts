/**
 * The alerter against loopback Slack and Discord receivers that check each wire format: one alert per event,
 * a flood of 1,000 failures summarised into a handful of messages, faults announced once and their recovery once,
 * a slow or failing webhook never holding up the caller, 429s retried after retry-after, secrets never sent.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Alerter } from '../../src/main/alerts/alerter.ts';
import { formatOf } from '../../src/main/alerts/alert.ts';
import { silentLogger } from '../../src/main/logging/logger.ts';
import { startReceiver, type Receiver } from '../support/webhook-receivers.ts';

const SECRET = 'sk-alert-test-SECRET-0123456789';
const receivers: Receiver[] = [];
after(async () => {
  for (const r of receivers) await r.close();
});

async function both(behaviour: Receiver['behaviour'] = {}): Promise<[Receiver, Receiver]> {
  const slack = await startReceiver('slack', behaviour);
  const discord = await startReceiver('discord', behaviour);
  receivers.push(slack, discord);
  return [slack, discord];
}

function alerter(urls: string[], extra: Partial<ConstructorParameters<typeof Alerter>[0]> = {}): Alerter {
  return new Alerter({ urls, format: 'auto', worker: 'worker-a', secrets: [SECRET, ...urls], logger: silentLogger, windowMs: 3_600_000, ...extra });
}

test('format by URL: Discord hosts and /api/webhooks/<id>/<token> paths are Discord, anything else Slack', () => {
  assert.equal(formatOf('https://discord.com/api/webhooks/1/abc', 'auto'), 'discord');
  assert.equal(formatOf('https://ptb.discordapp.com/api/webhooks/1/abc', 'auto'), 'discord');
  assert.equal(formatOf('https://proxy.example/api/webhooks/12/tok', 'auto'), 'discord');
  assert.equal(formatOf('https://hooks.slack.com/services/T/B/X', 'auto'), 'slack');
  assert.equal(formatOf('https://hooks.slack.com/services/T/B/X', 'discord'), 'discord');
});

test('a failure, a fault and its recovery reach both formats, valid, with what to fix and no secret', async () => {
  const [slack, discord] = await both();
  const a = alerter([slack.url, discord.url]);
  a.jobFailed({ jobId: 'j-1', documentId: 'interview-42', version: 'H-1', error: `provider said 400 for key ${SECRET}`, category: 'bad_input' });
  a.fault('embedding provider rejected the credentials (401): check OPENAI_API_KEY', 'OPENAI_API_KEY');
  a.fault('embedding provider rejected the credentials (401): check OPENAI_API_KEY', 'OPENAI_API_KEY'); // the same fault again
  a.faultCleared();
  a.faultCleared(); // nothing to clear any more
  await a.idle();
  for (const r of [slack, discord]) {
    assert.equal(r.messages.length, 3, `${r.kind}: failure, fault, recovery`);
    for (const m of r.messages) assert.deepEqual(m.problems, [], `${r.kind} accepts the message`);
    const [failure, fault, cleared] = r.messages.map((m) => m.text);
    assert.match(failure, /interview-42/);
    assert.match(failure, /H-1/);
    assert.match(failure, /bad_input/);
    assert.match(fault, /OPENAI_API_KEY/);
    assert.match(cleared, /cleared/);
    assert.ok(!r.messages.some((m) => JSON.stringify(m.body).includes(SECRET)), `${r.kind}: the secret is redacted`);
  }
  assert.ok('embeds' in discord.messages[0].body && 'blocks' in slack.messages[0].body);
  await a.close();
});

test('1,000 failures in one window: three alerts as they happen, then one summary', async () => {
  const [slack, discord] = await both();
  const a = alerter([slack.url, discord.url]);
  for (let i = 0; i < 1000; i++) {
    a.jobFailed({ jobId: `j-${i}`, documentId: `doc-${i}`, version: '1', error: i % 2 ? 'transcript is empty' : 'vtt: no cues found', category: 'bad_input' });
  }
  await a.idle();
  assert.equal(slack.messages.length, 3);
  a.endWindow();
  await a.idle();
  for (const r of [slack, discord]) {
    assert.equal(r.messages.length, 4, `${r.kind}: a handful, not a thousand`);
    const summary = r.messages[3];
    assert.deepEqual(summary.problems, []);
    assert.match(summary.text, /997 more jobs failed in the last/);
    assert.match(summary.text, /doc-3 \(version 1\)/);
    assert.match(summary.text, /and 992 more/);
    assert.match(summary.text, /bad_input\W+997/);
  }
  a.endWindow(); // nothing held: no empty summary
  await a.idle();
  assert.equal(slack.messages.length, 4);
  await a.close();
});

test('a slow webhook never holds up the caller; a failing one is logged, not retried forever; 429 waits for retry-after', async () => {
  const slow = await startReceiver('slack', { delayMs: 2_000 });
  const failing = await startReceiver('discord', { status: 500 });
  const limited = await startReceiver('slack', { refuseFirst: 1 });
  receivers.push(slow, failing, limited);
  const a = alerter([slow.url, failing.url, limited.url], { timeoutMs: 500 });
  const t0 = performance.now();
  for (let i = 0; i < 3; i++) a.jobFailed({ jobId: `s-${i}`, documentId: `slow-${i}`, version: '1', error: 'x' });
  assert.ok(performance.now() - t0 < 50, 'queuing an alert is immediate');
  await a.idle();
  assert.equal(slow.requests, 6, 'each message timed out (500 ms) twice, then was given up');
  assert.equal(failing.requests, 6, 'one retry per message on a 5xx');
  assert.equal(limited.messages.length, 3, 'the 429 was waited out and the message delivered');
  assert.equal(a.delivered.ok, 3);
  assert.equal(a.delivered.failed, 6);
  await a.close();
});

test('long jobs: three as they happen, the rest summarised', async () => {
  const [slack] = await both();
  const a = alerter([slack.url]);
  for (let i = 0; i < 5; i++) a.longJob({ jobId: `l-${i}`, documentId: `long-${i}`, version: '1', runningMs: 301_000 + i });
  a.endWindow();
  await a.idle();
  assert.equal(slack.messages.length, 4);
  assert.match(slack.messages[0].text, /Job running for 5 min 1 s: long-0/);
  assert.match(slack.messages[3].text, /2 more jobs running longer than expected/);
  await a.close();
});

test('crash(): the alert is delivered before it resolves', async () => {
  const [slack] = await both();
  const a = alerter([slack.url]);
  await a.crash(new Error(`uncaught TypeError near ${SECRET}`));
  assert.equal(slack.messages.length, 1);
  assert.match(slack.messages[0].text, /rag-worker crashed/);
  assert.ok(!slack.messages[0].text.includes(SECRET));
  await a.close();
});

test('close() gives up on a dead webhook after its deadline, dropping what is left', async () => {
  const dead = await startReceiver('slack', { delayMs: 60_000 });
  receivers.push(dead);
  const a = alerter([dead.url], { timeoutMs: 5_000, closeDeadlineMs: 300 });
  for (let i = 0; i < 20; i++) a.fault(`fault number ${i}`);
  const t0 = performance.now();
  await a.close();
  assert.ok(performance.now() - t0 < 2_000, `close() returned after ${Math.round(performance.now() - t0)} ms`);
});
