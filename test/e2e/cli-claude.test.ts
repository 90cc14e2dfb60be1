/**
 * Claude through the CLI on the embedded default, as a user runs it: `ingest` with RAG_ENABLE_CLAUDE_ANALYSIS
 * against the loopback Anthropic server, then `show` prints the analysis and the cost, `status --json` sums the
 * usage, `search --hybrid` finds a chunk by a word of its context, and a bad RAG_PRICES stops start-up naming it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { cliEnv, runCli } from '../support/cli.ts';
import { FAKE_ANTHROPIC_KEY, startFakeAnthropic, type FakeAnthropic } from '../support/fake-anthropic.ts';

const EXAMPLE = fileURLToPath(new URL('../../examples/transcripts/product-meeting.vtt', import.meta.url));
let cwd: string;
let fake: FakeAnthropic;
let env: NodeJS.ProcessEnv;

before(async () => {
  cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'rw-claude-'));
  // Every context names a word found nowhere in the transcript, so keyword search can only find it through the context.
  fake = await startFakeAnthropic({
    minCacheTokens: 200,
    respond: (body) => ((body as { output_config?: { format?: unknown } }).output_config?.format ? undefined : { text: 'Context: the zebracorn budget discussion between the product leads.' }),
  });
  env = cliEnv({ RAG_THREADS: '1', RAG_ENABLE_CLAUDE_ANALYSIS: 'true', ANTHROPIC_API_KEY: FAKE_ANTHROPIC_KEY, ANTHROPIC_BASE_URL: fake.url });
});
after(async () => {
  await fake.close();
  fs.rmSync(cwd, { recursive: true, force: true });
});

test('ingest with Claude stores contexts and the analysis; show, status --json and search --hybrid report them', async () => {
  const ingest = await runCli(['ingest', EXAMPLE, '--document-id', 'meeting', '--json'], env, cwd);
  assert.equal(ingest.code, 0, ingest.stderr);
  const [job] = JSON.parse(ingest.stdout) as { status: string; chunks: number }[];
  assert.equal(job.status, 'complete');
  assert.ok(fake.counters.cacheReads > 0, 'contexts read the cached transcript');
  assert.equal(fake.counters.cacheWrites, 1);

  const show = await runCli(['show', 'meeting', '--json'], env, cwd);
  assert.equal(show.code, 0, show.stderr);
  const doc = JSON.parse(show.stdout) as { analysis: { status: string; summary: string; model: string }; usage: Record<string, number> };
  assert.equal(doc.analysis.status, 'complete');
  assert.equal(doc.analysis.model, 'claude-haiku-5-5');
  assert.ok(doc.usage.claude_requests >= job.chunks + 1, 'one request per chunk and the analysis');
  assert.ok(doc.usage.cost_usd > 0);
  const text = await runCli(['show', 'meeting'], env, cwd);
  assert.match(text.stdout, /Summary\n {2}\S/);
  assert.match(text.stdout, /cost {6}\$0\.\d{4}; .*Claude \d+ requests/);

  const status = await runCli(['status', '--json'], env, cwd);
  const counts = JSON.parse(status.stdout) as { complete: number; usage: Record<string, number> };
  assert.equal(counts.usage.claude_requests, doc.usage.claude_requests);
  assert.ok(Math.abs(counts.usage.cost_usd - doc.usage.cost_usd) < 1e-9);

  const search = await runCli(['search', 'zebracorn', '--hybrid', '--json'], env, cwd);
  assert.equal(search.code, 0, search.stderr);
  const rows = JSON.parse(search.stdout) as { context: string | null; text_rank: number | null }[];
  assert.ok(rows.length > 0 && rows.every((r) => r.context?.includes('zebracorn')), JSON.stringify(rows.map((r) => [r.context, r.text_rank])));
  assert.ok(rows.some((r) => r.text_rank === 1), 'found by the word only its context has');
  assert.ok(!`${ingest.stderr}${show.stdout}${status.stdout}`.includes(FAKE_ANTHROPIC_KEY), 'the key is never printed');
});

test('a bad RAG_PRICES stops start-up naming it; a model without a price is counted, not priced', async () => {
  const bad = await runCli(['ingest', EXAMPLE, '--document-id', 'priced'], { ...env, RAG_PRICES: '{"claude":{"m":{"input":-1,"output":1}}}' }, cwd);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /RAG_PRICES: claude\.m\.input/);

  const unpriced = await runCli(['ingest', EXAMPLE, '--document-id', 'unpriced', '--json'], { ...env, RAG_CLAUDE_MODEL: 'claude-new-model' }, cwd);
  assert.equal(unpriced.code, 0, unpriced.stderr);
  assert.match(unpriced.stderr, /price_unknown/);
  const show = JSON.parse((await runCli(['show', 'unpriced', '--json'], env, cwd)).stdout) as { usage: Record<string, unknown> };
  assert.equal(show.usage.unpriced_models, 'claude-new-model');
  assert.equal(show.usage.claude_usd, undefined);
  assert.ok((show.usage.claude_requests as number) > 0);
});
