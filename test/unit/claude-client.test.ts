/**
 * The Claude client (src/main/analysis/claude-client.ts) run end to end — the official SDK against the loopback
 * fake of test/support/fake-anthropic.ts — and the pure parser of Anthropic's rate-limit headers
 * (src/shared/anthropic-rate-limit.ts). Every test awaits results or server events; none sleeps or measures time.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { z } from 'zod';
import { ClaudeRateLimitError, countClaudeTokens, createClaudeClient, mapAnthropicError, type ClaudeRequest } from '../../src/main/analysis/claude-client.ts';
import { parseAnthropicRateLimit, parseRfc3339 } from '../../src/shared/anthropic-rate-limit.ts';
import { BadInputError, CategorizedError, ProviderResponseError, ProviderUnavailableError, RetryableError, WorkerFatalError } from '../../src/shared/errors.ts';
import { headerGetter } from '../../src/shared/rate-limit-headers.ts';
import { FAKE_ANTHROPIC_KEY, fakeTokens, startFakeAnthropic, type FakeAnswer, type FakeAnthropic, type FakeAnthropicOptions } from '../support/fake-anthropic.ts';

const KEY = FAKE_ANTHROPIC_KEY;
const MODEL = 'claude-test-1';
/** 1250 fake tokens: above the default 1024-token cache minimum. */
const LONG_SYSTEM = 'The transcript window. '.repeat(218).slice(0, 5000);

function request(overrides: Partial<ClaudeRequest> = {}): ClaudeRequest {
  return { model: MODEL, system: [{ text: 'You situate chunks.' }, { text: LONG_SYSTEM, cache: true }], user: 'Situate this chunk about quarterly revenue targets.', maxTokens: 200, ...overrides };
}

function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => assert.fail('expected a rejection'),
    (err: unknown) => err,
  );
}

/** The error, checked to be of `type` and never to mention the API key (message, String(), stack). */
async function failure<T>(p: Promise<unknown>, type: abstract new (...args: never[]) => T): Promise<T> {
  const err = await rejection(p);
  assert.ok(err instanceof type, `expected ${type.name}, got ${String(err)}`);
  const e = err as Error;
  for (const text of [e.message, String(e), e.stack ?? '']) assert.ok(!text.includes(KEY), `the API key leaked: ${text}`);
  return err;
}

describe('claude client over the fake Messages API', () => {
  let server: FakeAnthropic;
  let answer: FakeAnswer | undefined;
  const client = (overrides: { apiKey?: string; timeoutMs?: number; baseURL?: string } = {}) =>
    createClaudeClient({ apiKey: KEY, baseURL: server.url, timeoutMs: 5_000, ...overrides });

  before(async () => {
    server = await startFakeAnthropic({ respond: () => answer, models: (m) => m.startsWith('claude-test') });
  });
  after(() => server.close());
  const fresh = (): void => {
    server.reset();
    answer = undefined;
  };

  test('text, usage, stop reason and model of a plain answer; the request as the API receives it', async () => {
    fresh();
    const r = request({ system: [{ text: 'Short instructions.' }] });
    const response = await client().send(r);
    assert.equal(response.text, 'Context: Situate this chunk about quarterly revenue targets.');
    assert.equal(response.stopReason, 'end_turn');
    assert.equal(response.model, MODEL);
    assert.deepEqual(response.usage, { inputTokens: fakeTokens('Short instructions.') + fakeTokens(r.user), cacheWriteTokens: 0, cacheReadTokens: 0, outputTokens: fakeTokens(response.text) });
    assert.deepEqual(response.rateLimit, {}, 'no limits configured, no headers');
    const [seen] = server.requests;
    assert.equal(seen.status, 200);
    assert.equal(seen.body?.model, MODEL);
    assert.equal(seen.body?.max_tokens, 200);
    assert.deepEqual(seen.body?.system, [{ type: 'text', text: 'Short instructions.' }]);
    assert.deepEqual(seen.body?.messages, [{ role: 'user', content: r.user }]);
    assert.equal(seen.body?.output_config, undefined, 'neither effort nor a schema: no output_config');
  });

  test('only text blocks make the text, selected by type: an answer that opens with thinking', async () => {
    fresh();
    answer = {
      content: [
        { type: 'thinking', thinking: 'The chunk is about revenue; the window says Q3.', signature: 'sig-abc' },
        { type: 'text', text: 'Q3 planning: ', citations: null },
        { type: 'redacted_thinking', data: 'opaque' },
        { type: 'text', text: 'revenue targets.', citations: null },
      ],
    };
    const response = await client().send(request());
    assert.equal(response.text, 'Q3 planning: revenue targets.');
    assert.equal(response.stopReason, 'end_turn');
  });

  test('null cache counts in the usage become 0', async () => {
    fresh();
    answer = { text: 'ok', usage: { cache_creation_input_tokens: null, cache_read_input_tokens: null, cache_creation: null } };
    const response = await client().send(request());
    assert.equal(response.usage.cacheWriteTokens, 0);
    assert.equal(response.usage.cacheReadTokens, 0);
    assert.equal(response.usage.outputTokens, 1);
  });

  test('a cached system block: the first request writes the cache, an identical second one reads it', async () => {
    fresh();
    const r = request();
    const first = await client().send(r);
    const second = await client().send(r);
    const prefix = fakeTokens('You situate chunks.') + fakeTokens(LONG_SYSTEM);
    const rest = fakeTokens(r.user);
    assert.deepEqual(first.usage, { inputTokens: rest, cacheWriteTokens: prefix, cacheReadTokens: 0, outputTokens: first.usage.outputTokens });
    assert.deepEqual(second.usage, { inputTokens: rest, cacheWriteTokens: 0, cacheReadTokens: prefix, outputTokens: second.usage.outputTokens });
    assert.deepEqual(server.requests[0].body?.system, [
      { type: 'text', text: 'You situate chunks.' },
      { type: 'text', text: LONG_SYSTEM, cache_control: { type: 'ephemeral' } },
    ]);
    assert.deepEqual(server.requests.map((q) => q.cache), ['write', 'read']);
    // Another user turn after the same prefix still reads it; another model does not.
    assert.equal((await client().send({ ...r, user: 'A different chunk.' })).usage.cacheReadTokens, prefix);
    assert.equal((await client().send({ ...r, model: 'claude-test-2' })).usage.cacheWriteTokens, prefix);
  });

  test('a prefix under the cache minimum is not cached: all of it is input', async () => {
    fresh();
    const r = request({ system: [{ text: 'Too short to cache.', cache: true }] });
    for (let i = 0; i < 2; i++) {
      const { usage } = await client().send(r);
      assert.deepEqual([usage.cacheWriteTokens, usage.cacheReadTokens, usage.inputTokens], [0, 0, fakeTokens('Too short to cache.') + fakeTokens(r.user)]);
    }
  });

  test('parallel requests that arrive before the writing answer is sent all miss and all pay the write', async () => {
    fresh();
    server.hold();
    const pending = Promise.all([client().send(request()), client().send(request()), client().send(request())]);
    await server.waitForRequests(3);
    server.release();
    const responses = await pending;
    assert.ok(responses.every((r) => r.usage.cacheWriteTokens > 0 && r.usage.cacheReadTokens === 0));
    assert.equal((await client().send(request())).usage.cacheReadTokens, responses[0].usage.cacheWriteTokens);
    assert.equal(server.counters.cacheWrites, 3);
    assert.equal(server.counters.cacheReads, 1);
  });

  test('effort and a JSON schema are sent as output_config; the default answer validates against the schema', async () => {
    fresh();
    const shape = z.object({
      summary: z.string(),
      topics: z.array(z.string()),
      action_items: z.array(z.object({ task: z.string(), owner: z.string().nullable(), priority: z.number().int().min(1) })),
      sentiment: z.enum(['positive', 'neutral', 'negative']),
      confidence: z.number().min(0.5),
    });
    const schema = z.toJSONSchema(shape, { target: 'draft-7' }) as Record<string, unknown>;
    const response = await client().send(request({ effort: 'low', jsonSchema: schema }));
    assert.deepEqual(server.requests[0].body?.output_config, { effort: 'low', format: { type: 'json_schema', schema } });
    const parsed = shape.parse(JSON.parse(response.text));
    assert.equal(parsed.sentiment, 'positive');
    assert.equal(parsed.action_items[0].priority, 1);
    assert.equal(parsed.confidence, 0.5);
    assert.ok(parsed.topics.length >= 1 && parsed.topics.length <= 2);
    assert.match(parsed.summary, /Situate this chunk/, 'strings are phrases of the request');
    const again = await client().send(request({ effort: 'low', jsonSchema: schema }));
    assert.equal(again.text, response.text, 'deterministic');

    fresh();
    await client().send(request({ effort: 'high' }));
    assert.deepEqual(server.requests[0].body?.output_config, { effort: 'high' });
  });

  test('malformed and refusal answers come back as they are (the caller judges them)', async () => {
    fresh();
    server.enqueue({ malformed: true }, { refusal: true });
    const malformed = await client().send(request({ jsonSchema: { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] } }));
    assert.throws(() => JSON.parse(malformed.text), SyntaxError);
    const refusal = await client().send(request());
    assert.equal(refusal.stopReason, 'refusal');
    assert.equal(refusal.text, '');
  });

  test('a wrong key (checked by the server) → WorkerFatalError naming ANTHROPIC_API_KEY', async () => {
    fresh();
    const wrong = 'sk-ant-wrong-WRONGWRONGWRONG9999';
    const err = await failure(client({ apiKey: wrong }).send(request()), WorkerFatalError);
    assert.equal(err.setting, 'ANTHROPIC_API_KEY');
    assert.match(err.message, /^Claude API rejected the API key \(401 invalid x-api-key\): check ANTHROPIC_API_KEY$/);
    assert.equal(server.requests[0].status, 401);
  });

  test('a message that quotes the key is cleaned of it', async () => {
    fresh();
    server.enqueue({ status: 401, message: `invalid x-api-key: ${KEY}` }, { status: 400, message: `messages: bad content near ${KEY}` });
    const fatal = await failure(client().send(request()), WorkerFatalError);
    assert.match(fatal.message, /\[redacted\]/);
    await failure(client().send(request()), BadInputError);
  });

  test('404 for an unknown model → WorkerFatalError naming RAG_CLAUDE_MODEL, the model and ANTHROPIC_BASE_URL', async () => {
    fresh();
    const err = await failure(client().send(request({ model: 'claude-nope' })), WorkerFatalError);
    assert.equal(err.setting, 'RAG_CLAUDE_MODEL');
    assert.match(err.message, /^Claude model not found \(404 model: claude-nope\): check RAG_CLAUDE_MODEL=claude-nope and ANTHROPIC_BASE_URL$/);
  });

  test('429 from the requests bucket → ClaudeRateLimitError, scope requests, retry-after and the parsed limits', async () => {
    const limited = await startFakeAnthropic({ rpm: 1, itpm: 1_000_000, otpm: 100_000, clock: () => 0 });
    try {
      const c = createClaudeClient({ apiKey: KEY, baseURL: limited.url, timeoutMs: 5_000 });
      const ok = await c.send(request());
      assert.equal(ok.rateLimit.requests?.remaining, 0);
      const err = await failure(c.send(request()), ClaudeRateLimitError);
      assert.equal(err.category, 'rate_limited');
      assert.equal(err.status, 429);
      assert.equal(err.scope, 'requests');
      assert.ok(err.retryAfterMs !== undefined && err.retryAfterMs >= 1000 && err.retryAfterMs % 1000 === 0, String(err.retryAfterMs));
      assert.equal(err.limits.retryAfterMs, err.retryAfterMs);
      assert.deepEqual([err.limits.requests?.limit, err.limits.requests?.remaining], [1, 0]);
      assert.equal(err.limits.inputTokens?.limit, 1_000_000);
      assert.equal(err.limits.outputTokens?.limit, 100_000);
      assert.equal(err.rateLimit.limitRequests, 1, 'the neutral snapshot is filled too');
      assert.equal(err.rateLimit.remainingRequests, 0);
      assert.equal(limited.requests[1].status, 429);
    } finally {
      await limited.close();
    }
  });

  test('429 from the input-token bucket → scope tokens; cache reads do not count against it', async () => {
    const prefix = fakeTokens('You situate chunks.') + fakeTokens(LONG_SYSTEM);
    // A stopped clock: the buckets do not refill, so the counts are exact.
    // Room for one cache write plus a little: the second request reads the cache and fits, a third write does not.
    const limited = await startFakeAnthropic({ itpm: prefix + 100, clock: () => 0 });
    try {
      const c = createClaudeClient({ apiKey: KEY, baseURL: limited.url, timeoutMs: 5_000 });
      const first = await c.send(request());
      assert.equal(first.usage.cacheWriteTokens, prefix);
      const second = await c.send(request());
      assert.equal(second.usage.cacheReadTokens, prefix);
      assert.equal(second.rateLimit.inputTokens?.remaining, prefix + 100 - 2 * (first.usage.inputTokens) - prefix);
      const err = await failure(c.send(request({ model: 'claude-test-2' })), ClaudeRateLimitError);
      assert.equal(err.scope, 'unknown', 'remaining is above 0: the request is just too big for what is left');
      assert.ok(err.limits.inputTokens !== undefined && err.limits.requests === undefined);
      assert.ok((err.retryAfterMs ?? 0) >= 1000);
    } finally {
      await limited.close();
    }
  });

  test('429 with an exhausted token window → scope tokens', async () => {
    const limited = await startFakeAnthropic({ otpm: 20, clock: () => 0 });
    try {
      const c = createClaudeClient({ apiKey: KEY, baseURL: limited.url, timeoutMs: 5_000 });
      const ok = await c.send(request({ system: [], user: 'x '.repeat(60) }));
      assert.equal(ok.rateLimit.outputTokens?.limit, 20);
      assert.equal(ok.rateLimit.outputTokens?.remaining, 20 - ok.usage.outputTokens);
      limited.enqueue({ status: 429, retryAfterSec: 3, headers: { 'anthropic-ratelimit-output-tokens-remaining': '0' } });
      const err = await failure(c.send(request()), ClaudeRateLimitError);
      assert.equal(err.scope, 'tokens');
      assert.equal(err.retryAfterMs, 3000);
      assert.equal(err.rateLimit.remainingTokens, 0);
    } finally {
      await limited.close();
    }
  });

  test('the rate-limit headers of a real answer are parsed', async () => {
    const limited = await startFakeAnthropic({ rpm: 50, itpm: 40_000, otpm: 8_000, clock: () => 0 });
    try {
      const c = createClaudeClient({ apiKey: KEY, baseURL: limited.url, timeoutMs: 5_000 });
      const r = await c.send(request({ system: [{ text: 'No cache here.' }] }));
      const { requests, inputTokens, outputTokens, tokens } = r.rateLimit;
      assert.deepEqual([requests?.limit, requests?.remaining], [50, 49]);
      assert.deepEqual([inputTokens?.limit, inputTokens?.remaining], [40_000, 40_000 - r.usage.inputTokens]);
      assert.deepEqual([outputTokens?.limit, outputTokens?.remaining], [8_000, 8_000 - r.usage.outputTokens]);
      assert.equal(tokens, undefined);
      for (const w of [requests, inputTokens, outputTokens]) assert.ok(w?.resetMs !== undefined && w.resetMs >= 0 && w.resetMs <= 61_000, JSON.stringify(w));
      assert.equal(r.rateLimit.retryAfterMs, undefined);
    } finally {
      await limited.close();
    }
  });

  test('a scripted 429 without limit headers → scope unknown, retry-after kept', async () => {
    fresh();
    server.enqueue({ status: 429, retryAfterSec: 7 });
    const err = await failure(client().send(request()), ClaudeRateLimitError);
    assert.equal(err.scope, 'unknown');
    assert.equal(err.retryAfterMs, 7000);
    assert.deepEqual(err.limits, { retryAfterMs: 7000 });
  });

  const spendCases: Array<[string, Parameters<FakeAnthropic['enqueue']>[0]]> = [
    ['429 spend limit', { status: 429, message: 'You have reached your specified API usage limits. You will regain access on 2027-01-01 at 00:00 UTC.' }],
    ['429 monthly spend limit', { status: 429, message: "This request would exceed your organization's monthly spend limit." }],
    ['400 credit balance', { status: 400, message: 'Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.' }],
    ['403 usage limit', { status: 403, type: 'permission_error', message: 'Your workspace has reached its usage limit.' }],
    ['429 enforced_spend_limit_reached', { status: 429, message: 'Limit reached.', errorCode: 'enforced_spend_limit_reached' }],
    ['402 billing_error', { status: 402, type: 'billing_error', message: 'Billing problem.' }],
  ];
  for (const [name, fault] of spendCases) {
    test(`${name} → WorkerFatalError: check billing/limits for ANTHROPIC_API_KEY`, async () => {
      fresh();
      server.enqueue(fault);
      const err = await failure(client().send(request()), WorkerFatalError);
      assert.equal(err.setting, 'ANTHROPIC_API_KEY');
      assert.match(err.message, /spend or usage limit or is out of credit .*: check the account's billing and limits for ANTHROPIC_API_KEY$/);
    });
  }

  for (const status of [529, 500, 502, 503, 504, 408, 409] as const) {
    test(`${status} → ProviderUnavailableError keeping the status and retry-after`, async () => {
      fresh();
      server.enqueue({ status, retryAfterSec: 2 }, { status });
      const err = await failure(client().send(request()), ProviderUnavailableError);
      assert.equal(err.status, status);
      assert.equal(err.retryAfterMs, 2000);
      assert.equal(err.category, 'retryable');
      assert.match(err.message, new RegExp(`^Claude API answered ${status} `));
      assert.equal((await failure(client().send(request()), ProviderUnavailableError)).retryAfterMs, undefined);
    });
  }

  test('401 and 403 (authentication_error, permission_error) → WorkerFatalError naming ANTHROPIC_API_KEY', async () => {
    fresh();
    server.enqueue({ status: 401 }, { status: 403 });
    const unauthorized = await failure(client().send(request()), WorkerFatalError);
    assert.equal(unauthorized.setting, 'ANTHROPIC_API_KEY');
    const forbidden = await failure(client().send(request()), WorkerFatalError);
    assert.equal(forbidden.setting, 'ANTHROPIC_API_KEY');
    assert.match(forbidden.message, /^Claude API refused the request for this API key \(403 Your API key does not have permission.*\): check ANTHROPIC_API_KEY$/);
  });

  const badRequestCases: Array<[string, Parameters<FakeAnthropic['enqueue']>[0], abstract new (...args: never[]) => CategorizedError, string | undefined]> = [
    ['400 naming the model', { status: 400, message: `\`${MODEL}\` does not support structured outputs.` }, WorkerFatalError, 'RAG_CLAUDE_MODEL'],
    ['400 about the model field', { status: 400, message: 'model: String should have at most 256 characters' }, WorkerFatalError, 'RAG_CLAUDE_MODEL'],
    ['400 about effort (naming the model too)', { status: 400, message: `output_config.effort: effort is not supported by ${MODEL}` }, WorkerFatalError, 'RAG_CLAUDE_EFFORT'],
    ['400 about effort', { status: 400, message: 'effort: unknown value' }, WorkerFatalError, 'RAG_CLAUDE_EFFORT'],
    ['400 prompt is too long', { status: 400, message: 'prompt is too long: 212345 tokens > 200000 maximum' }, BadInputError, undefined],
    ['413 request_too_large', { status: 413 }, BadInputError, undefined],
    ['400 other', { status: 400, message: 'messages.0.content: text content blocks must be non-empty' }, BadInputError, undefined],
    ['422 other', { status: 422, message: 'Unprocessable input.' }, BadInputError, undefined],
  ];
  for (const [name, fault, type, setting] of badRequestCases) {
    test(`${name} → ${type.name}${setting ? ` (${setting})` : ''}`, async () => {
      fresh();
      server.enqueue(fault);
      const err = await failure(client().send(request()), type);
      if (setting) assert.equal((err as WorkerFatalError).setting, setting);
      else assert.equal(err.category, 'bad_input');
      if (name.includes('prompt is too long')) assert.match(err.message, new RegExp(`^the prompt is too long for Claude model ${MODEL}`));
    });
  }

  test('anything else from the API → ProviderUnavailableError with its status', async () => {
    fresh();
    server.enqueue({ status: 418, type: 'api_error', message: 'I am a teapot' });
    const err = await failure(client().send(request()), ProviderUnavailableError);
    assert.equal(err.status, 418);
  });

  test('bodies that are not JSON → ProviderResponseError (a 502 page stays ProviderUnavailableError)', async () => {
    fresh();
    server.enqueue(
      { rawBody: '{"id":"msg_1","type":"message","content":[{"type":"te' },
      { rawBody: '<html><body>maintenance</body></html>', contentType: 'text/html' },
      { rawBody: '<html>bad request</html>', status: 400, contentType: 'text/html' },
      { rawBody: '<html>502 Bad Gateway</html>', status: 502, contentType: 'text/html' },
      { rawBody: '{"type":"message","content":"not an array"}' },
    );
    assert.match((await failure(client().send(request()), ProviderResponseError)).message, /not valid JSON/);
    assert.match((await failure(client().send(request()), ProviderResponseError)).message, /non-JSON body/);
    assert.match((await failure(client().send(request()), ProviderResponseError)).message, /not JSON/);
    assert.equal((await failure(client().send(request()), ProviderUnavailableError)).status, 502);
    assert.match((await failure(client().send(request()), ProviderResponseError)).message, /no "content" array/);
  });

  test('a dropped connection → ProviderUnavailableError naming the base URL', async () => {
    fresh();
    server.enqueue({ dropConnection: true });
    const err = await failure(client().send(request()), ProviderUnavailableError);
    assert.ok(err.message.startsWith(`cannot reach the Claude API at ${server.url}: `), err.message);
    assert.equal(err.status, undefined);
  });

  test('credentials in the base URL are redacted from the message', async () => {
    const baseURL = server.url.replace('http://', 'http://user:hunter2-secret@');
    const err = await failure(client({ baseURL }).send(request()), ProviderUnavailableError);
    assert.ok(!err.message.includes('hunter2-secret'), err.message);
    assert.match(err.message, /^cannot reach the Claude API at http:\/\/\[redacted\]@127\.0\.0\.1:/);
  });

  test('no answer within timeoutMs → ProviderUnavailableError (timed out)', async () => {
    fresh();
    server.enqueue({ hang: true });
    const err = await failure(client({ timeoutMs: 100 }).send(request()), ProviderUnavailableError);
    assert.equal(err.message, 'Claude request timed out');
  });

  test('an abort by the caller comes back unchanged (not a provider fault)', async () => {
    fresh();
    server.enqueue({ hang: true });
    const ac = new AbortController();
    const pending = rejection(client().send(request(), ac.signal));
    await server.waitForRequests(1);
    ac.abort();
    const err = await pending;
    assert.ok(err instanceof Anthropic.APIUserAbortError, String(err));
    assert.ok(!(err instanceof CategorizedError));
  });

  test('countClaudeTokens: the prompt count for a known model; an unknown model is a fault naming RAG_CLAUDE_MODEL', async () => {
    fresh();
    assert.equal(await countClaudeTokens({ apiKey: KEY, baseURL: server.url, timeoutMs: 5_000 }, MODEL), fakeTokens('ping'));
    const err = await failure(countClaudeTokens({ apiKey: KEY, baseURL: server.url, timeoutMs: 5_000 }, 'claude-nope'), WorkerFatalError);
    assert.equal(err.setting, 'RAG_CLAUDE_MODEL');
    const wrongKey = await failure(countClaudeTokens({ apiKey: 'sk-ant-wrong-key-000000000000', baseURL: server.url, timeoutMs: 5_000 }, MODEL), WorkerFatalError);
    assert.equal(wrongKey.setting, 'ANTHROPIC_API_KEY');
  });
});

describe('the fake prompt cache expires entries after cacheTtlMs since their last use', () => {
  test('read while fresh (which extends it), written again once expired', async () => {
    let now = 0;
    const options: FakeAnthropicOptions = { clock: () => now, cacheTtlMs: 1_000 };
    const server = await startFakeAnthropic(options);
    try {
      const c = createClaudeClient({ apiKey: KEY, baseURL: server.url, timeoutMs: 5_000 });
      const kinds: Array<string | undefined> = [];
      for (const step of [0, 900, 900, 1_001]) {
        now += step;
        await c.send(request());
        kinds.push(server.requests.at(-1)?.cache);
      }
      assert.deepEqual(kinds, ['write', 'read', 'read', 'write']);
    } finally {
      await server.close();
    }
  });
});

describe('mapAnthropicError without a server', () => {
  const opts = { model: MODEL };
  const apiError = (status: number, type: string, message: string) => Anthropic.APIError.generate(status, { type: 'error', error: { type, message } }, undefined, new Headers());

  test('a 404 without a configured base URL does not mention ANTHROPIC_BASE_URL', () => {
    const err = mapAnthropicError(apiError(404, 'not_found_error', `model: ${MODEL}`), opts) as WorkerFatalError;
    assert.ok(err instanceof WorkerFatalError);
    assert.equal(err.message, `Claude model not found (404 model: ${MODEL}): check RAG_CLAUDE_MODEL=${MODEL}`);
  });

  test('a connection error without a base URL names the default endpoint', () => {
    const err = mapAnthropicError(new Anthropic.APIConnectionError({ message: 'Connection error.' }), opts) as Error;
    assert.ok(err instanceof ProviderUnavailableError);
    assert.equal(err.message, 'cannot reach the Claude API at https://api.anthropic.com: Connection error.');
  });

  test('a ramp limit (429 with a code that is not about spending) stays a rate limit', () => {
    const ramp = Anthropic.APIError.generate(429, { type: 'error', error: { type: 'rate_limit_error', message: 'Ramp limit.', details: { error_code: 'ramp_limit_exceeded' } } }, undefined, new Headers({ 'retry-after': '4' }));
    const err = mapAnthropicError(ramp, opts) as ClaudeRateLimitError;
    assert.ok(err instanceof ClaudeRateLimitError);
    assert.equal(err.retryAfterMs, 4000);
  });

  test('unknown errors pass through; a SyntaxError is ProviderResponseError', () => {
    const plain = new Error('boom');
    assert.equal(mapAnthropicError(plain, opts), plain);
    const syntax = mapAnthropicError(new SyntaxError('Unexpected end of JSON input'), opts);
    assert.ok(syntax instanceof ProviderResponseError && syntax instanceof RetryableError);
  });

  test('the apiKey option removes the key from every message', () => {
    const key = 'plainsecretvalue-0123456789';
    const err = mapAnthropicError(apiError(400, 'invalid_request_error', `bad header ${key}`), { ...opts, apiKey: key }) as Error;
    assert.ok(err instanceof BadInputError);
    assert.ok(!err.message.includes(key) && !err.message.includes('0123456789'), err.message);
  });
});

describe('parseAnthropicRateLimit', () => {
  const NOW = Date.UTC(2026, 11, 2, 5, 40, 0);
  const parse = (headers: Record<string, string>, now = NOW) => parseAnthropicRateLimit(headerGetter(headers), now);

  test('every window, with RFC 3339 resets in Z, with a fraction and with an offset, and retry-after', () => {
    assert.deepEqual(
      parse({
        'anthropic-ratelimit-requests-limit': '50',
        'anthropic-ratelimit-requests-remaining': '0',
        'anthropic-ratelimit-requests-reset': '2026-12-02T05:40:12Z',
        'anthropic-ratelimit-input-tokens-limit': '40000',
        'anthropic-ratelimit-input-tokens-remaining': '39000',
        'anthropic-ratelimit-input-tokens-reset': '2026-12-02T05:40:01.5Z',
        'anthropic-ratelimit-output-tokens-limit': '8000',
        'anthropic-ratelimit-output-tokens-remaining': '7999',
        'anthropic-ratelimit-output-tokens-reset': '2026-12-02T06:40:30+01:00',
        'Anthropic-RateLimit-Tokens-Limit': '48000',
        'anthropic-ratelimit-tokens-remaining': '46999',
        'anthropic-ratelimit-tokens-reset': '2026-12-02T00:10:00.250-05:30',
        'retry-after': '12',
      }),
      {
        requests: { limit: 50, remaining: 0, resetMs: 12_000 },
        inputTokens: { limit: 40_000, remaining: 39_000, resetMs: 1_500 },
        outputTokens: { limit: 8_000, remaining: 7_999, resetMs: 30_000 },
        tokens: { limit: 48_000, remaining: 46_999, resetMs: 250 },
        retryAfterMs: 12_000,
      },
    );
  });

  test('a reset in the past is 0 ms away; a lower-case t and z are accepted', () => {
    assert.deepEqual(parse({ 'anthropic-ratelimit-requests-reset': '2026-12-02T05:39:00Z' }), { requests: { resetMs: 0 } });
    assert.deepEqual(parse({ 'anthropic-ratelimit-requests-reset': '2026-12-02t05:40:02z' }), { requests: { resetMs: 2_000 } });
  });

  test('windows without headers are left out; no headers at all give {}', () => {
    assert.deepEqual(parse({}), {});
    assert.deepEqual(parseAnthropicRateLimit(headerGetter(undefined)), {});
    assert.deepEqual(parse({ 'anthropic-ratelimit-output-tokens-remaining': '5' }), { outputTokens: { remaining: 5 } });
  });

  test('non-numeric counts and anything but RFC 3339 resets are ignored', () => {
    for (const bad of ['', ' ', 'abc', '0x10', '-5', '1e3', 'NaN', 'Infinity', '12 tokens']) {
      assert.deepEqual(parse({ 'anthropic-ratelimit-requests-limit': bad, 'anthropic-ratelimit-requests-remaining': bad }), {}, JSON.stringify(bad));
    }
    for (const bad of [
      'soon',
      '12',
      '2026-12-02',
      '2026-12-02T05:40:12',
      '2026-12-02 05:40:12',
      'Wed, 02 Dec 2026 05:40:12 GMT',
      '2026-13-02T05:40:12Z',
      '2026-02-30T05:40:12Z',
      '2026-12-02T24:00:00Z',
      '2026-12-02T05:40:12+25:00',
      '2026-12-02T05:40:12.Z',
      '2026-12-02T05:40:12Z trailing',
    ]) {
      assert.deepEqual(parse({ 'anthropic-ratelimit-input-tokens-reset': bad }), {}, bad);
    }
    assert.deepEqual(parse({ 'anthropic-ratelimit-requests-limit': '50', 'anthropic-ratelimit-requests-reset': 'later' }), { requests: { limit: 50 } });
  });

  test('parseRfc3339 against Date for valid timestamps, including a leap day', () => {
    for (const text of ['2028-02-29T23:59:59Z', '2026-12-02T05:40:12.123456Z', '2026-12-02T05:40:12+14:00', '2026-12-02T05:40:12-00:00']) {
      assert.equal(parseRfc3339(text), Date.parse(text.replace(/(\.\d{3})\d+/, '$1')), text);
    }
    assert.equal(parseRfc3339('2026-02-29T00:00:00Z'), undefined, 'not a leap year');
  });

  test('retry-after: seconds (also 0), an HTTP date; junk ignored', () => {
    assert.deepEqual(parse({ 'retry-after': '30' }), { retryAfterMs: 30_000 });
    assert.deepEqual(parse({ 'retry-after': '0' }), { retryAfterMs: 0 });
    assert.deepEqual(parse({ 'retry-after': 'Wed, 02 Dec 2026 05:40:10 GMT' }), { retryAfterMs: 10_000 });
    assert.deepEqual(parse({ 'retry-after': 'later' }), {});
    assert.deepEqual(parse({ 'retry-after': '-1' }), {});
  });
});
