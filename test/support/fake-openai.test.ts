import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import OpenAI, {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIUserAbortError,
  AuthenticationError,
  BadRequestError,
  InternalServerError,
  NotFoundError,
  RateLimitError,
} from 'openai';
import {
  type FakeOpenAI,
  fakeEmbedding,
  failInputContaining,
  formatGoDuration,
  quoteApiKey,
  startFakeOpenAI,
} from './fake-openai.ts';

const MODEL = 'text-embedding-3-small';
const KEY = 'sk-test-right-key-0000';

function client(server: FakeOpenAI, apiKey = KEY, timeout?: number): OpenAI {
  return new OpenAI({ apiKey, baseURL: server.url, maxRetries: 0, timeout });
}

function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(() => assert.fail('expected a rejection'), (err: unknown) => err);
}

describe('fake-openai: wire format', () => {
  let server: FakeOpenAI;
  before(async () => { server = await startFakeOpenAI({ apiKey: KEY, dimensions: 64 }); });
  after(() => server.close());

  it('SDK default (base64 on the wire), explicit float and explicit base64 all decode to fakeEmbedding', async () => {
    const openai = client(server);
    const text = 'The quick brown fox';
    const expected = fakeEmbedding(text, 64);
    server.reset();

    const byDefault = await openai.embeddings.create({ model: MODEL, input: text });
    const asFloat = await openai.embeddings.create({ model: MODEL, input: text, encoding_format: 'float' });
    const asBase64 = await openai.embeddings.create({ model: MODEL, input: text, encoding_format: 'base64' });

    assert.deepEqual(server.requests.map((r) => r.encodingFormat), ['base64', 'float', 'base64']);
    assert.deepEqual(byDefault.data[0].embedding, expected);
    assert.deepEqual(asFloat.data[0].embedding, expected);
    const raw = asBase64.data[0].embedding as unknown as string;
    assert.equal(typeof raw, 'string');
    const buf = Buffer.from(raw, 'base64');
    assert.deepEqual(Array.from({ length: buf.length / 4 }, (_, i) => buf.readFloatLE(i * 4)), expected);
    assert.equal(byDefault.usage.prompt_tokens, Math.ceil(text.length / 4));
    assert.equal(byDefault.object, 'list');
    assert.equal(byDefault.model, MODEL);
  });

  it('keeps batch order by index, honours dimensions, accepts token arrays and /embeddings', async () => {
    const inputs = ['alpha beta', 'gamma', 'delta epsilon zeta'];
    const res = await client(server).embeddings.create({ model: MODEL, input: inputs, dimensions: 16 });
    assert.deepEqual(res.data.map((d) => d.index), [0, 1, 2]);
    assert.deepEqual(res.data.map((d) => d.embedding), inputs.map((t) => fakeEmbedding(t, 16)));
    const tokens = await client(server).embeddings.create({ model: MODEL, input: [[1, 2, 3], [4]], encoding_format: 'float' });
    assert.equal(tokens.usage.total_tokens, 4);
    assert.deepEqual(tokens.data[1].embedding, fakeEmbedding('4', 64));
    const noV1 = new OpenAI({ apiKey: KEY, baseURL: server.url.replace(/\/v1$/, ''), maxRetries: 0 });
    assert.equal((await noV1.embeddings.create({ model: MODEL, input: 'x' })).data.length, 1);
  });

  it('texts sharing words are closer', () => {
    const dot = (a: number[], b: number[]): number => a.reduce((s, x, i) => s + x * b[i], 0);
    const q = fakeEmbedding('refund policy for orders', 256);
    assert.ok(dot(q, fakeEmbedding('What is the refund policy?', 256)) > dot(q, fakeEmbedding('weather in Paris today', 256)));
    assert.ok(Math.abs(dot(q, q) - 1) < 1e-6);
  });

  it('401 quotes part of the wrong key; headers readable from err.headers (a Headers object)', async () => {
    const wrong = 'sk-fake-abcdefghijklmnop1234';
    const err = await rejection(client(server, wrong).embeddings.create({ model: MODEL, input: 'x' }));
    assert.ok(err instanceof AuthenticationError);
    assert.equal(err.status, 401);
    assert.equal(err.code, 'invalid_api_key');
    assert.match(err.message, /Incorrect API key provided: sk-fake-\*+1234\./);
    assert.ok(!err.message.includes(wrong));
    assert.equal(err.message.includes(quoteApiKey(wrong)), true);
    assert.match(err.headers.get('x-request-id') ?? '', /^req_[0-9a-f]{32}$/);
    assert.equal(err.requestID, err.headers.get('x-request-id'));
  });

  it('validates like the real API', async () => {
    const openai = client(server);
    const noModel = await rejection(openai.embeddings.create({ input: 'x' } as unknown as OpenAI.EmbeddingCreateParams));
    assert.ok(noModel instanceof BadRequestError);
    const tooMany = await rejection(openai.embeddings.create({ model: MODEL, input: Array.from({ length: 2049 }, () => 'a') }));
    assert.ok(tooMany instanceof BadRequestError);
    assert.equal(tooMany.param, 'input');
    assert.equal(tooMany.type, 'invalid_request_error');
    assert.equal(tooMany.code, null);
    const empty = await rejection(openai.embeddings.create({ model: MODEL, input: ['ok', ''] }));
    assert.ok(empty instanceof BadRequestError);
    const tooLong = await rejection(openai.embeddings.create({ model: MODEL, input: 'x'.repeat(8193 * 4) }));
    assert.ok(tooLong instanceof BadRequestError);
    assert.match(tooLong.message, /maximum context length is 8192 tokens/);
    const unknown = await rejection(openai.embeddings.create({ model: 'gpt-nope', input: 'x' }));
    assert.ok(unknown instanceof NotFoundError);
    assert.equal(unknown.code, 'model_not_found');
  });
});

describe('fake-openai: rate limits', () => {
  it('rejects the request exceeding RPM with 429, retry-after(-ms) and x-ratelimit-* headers', async () => {
    const server = await startFakeOpenAI({ rateLimit: { rpm: 2, tpm: 1_000_000 } });
    try {
      const openai = client(server);
      const first = await openai.embeddings.create({ model: MODEL, input: 'one' }).withResponse();
      assert.equal(first.response.headers.get('x-ratelimit-limit-requests'), '2');
      assert.equal(first.response.headers.get('x-ratelimit-remaining-requests'), '1');
      assert.equal(first.response.headers.get('x-ratelimit-reset-requests'), '30s');
      assert.equal(first.response.headers.get('x-ratelimit-limit-tokens'), '1000000');
      assert.match(first.response.headers.get('x-ratelimit-reset-tokens') ?? '', /^\d+ms$/);
      assert.equal(first.request_id, first.response.headers.get('x-request-id'));
      await openai.embeddings.create({ model: MODEL, input: 'two' });
      const err = await rejection(openai.embeddings.create({ model: MODEL, input: 'three' }));
      assert.ok(err instanceof RateLimitError);
      assert.equal(err.status, 429);
      assert.equal(err.code, 'rate_limit_exceeded');
      assert.equal(err.type, 'requests');
      assert.match(err.message, /on requests per min \(RPM\): Limit 2, Used 2, Requested 1\. Please try again in/);
      assert.equal(err.headers.get('x-ratelimit-remaining-requests'), '0');
      const ms = Number(err.headers.get('retry-after-ms'));
      assert.ok(ms > 29_000 && ms <= 30_000, `retry-after-ms ${ms}`);
      assert.equal(err.headers.get('retry-after'), '30');
      assert.deepEqual(
        { ...server.stats(), tokens: 0 },
        { requests: 3, ok: 2, rateLimited: 1, errors: 0, inputs: 2, tokens: 0, hung: 0, aborted: 0 },
      );
    } finally {
      await server.close();
    }
  });

  it('refills TPM continuously (fake clock) and reports Used/Requested/try again', async () => {
    let now = 0;
    const server = await startFakeOpenAI({ rateLimit: { tpm: 100 }, countTokens: (s) => s.length, clock: () => now });
    try {
      const openai = client(server);
      await openai.embeddings.create({ model: MODEL, input: 'a'.repeat(80) });
      const err = await rejection(openai.embeddings.create({ model: MODEL, input: 'b'.repeat(40) }));
      assert.ok(err instanceof RateLimitError);
      assert.equal(err.type, 'tokens');
      assert.match(err.message, /tokens per min \(TPM\): Limit 100, Used 80, Requested 40\. Please try again in 12s\./);
      assert.equal(err.headers.get('retry-after-ms'), '12000');
      assert.equal(err.headers.get('x-ratelimit-reset-tokens'), '48s');
      now += 12_000;
      await openai.embeddings.create({ model: MODEL, input: 'b'.repeat(40) });
      const tooLarge = await rejection(openai.embeddings.create({ model: MODEL, input: 'c'.repeat(101) }));
      assert.ok(tooLarge instanceof RateLimitError);
      assert.match(tooLarge.message, /^429 Request too large/);
      assert.equal(tooLarge.headers.get('retry-after-ms'), null);
    } finally {
      await server.close();
    }
  });

  it('formats durations like Go', () => {
    assert.deepEqual([0, 12, 999.2, 1000, 1200, 60_000, 360_000, 3_600_000, 86_400].map(formatGoDuration),
      ['0s', '12ms', '1s', '1s', '1.2s', '1m0s', '6m0s', '1h0m0s', '1m26.4s']);
  });
});

describe('fake-openai: faults', () => {
  let server: FakeOpenAI;
  before(async () => { server = await startFakeOpenAI({ dimensions: 8 }); });
  after(() => server.close());

  it('scripted 429 exposes retry-after-ms and custom headers on RateLimitError', async () => {
    server.reset();
    server.pushFaults({ status: 429, retryAfterMs: 1500, headers: { 'x-ratelimit-remaining-tokens': '0' } });
    const err = await rejection(client(server).embeddings.create({ model: MODEL, input: 'x' }));
    assert.ok(err instanceof RateLimitError);
    assert.equal(err.headers.get('retry-after-ms'), '1500');
    assert.equal(err.headers.get('retry-after'), '2');
    assert.equal(err.headers.get('x-ratelimit-remaining-tokens'), '0');
  });

  it('scripted queue in order: 500, 502 (html), 503, ok, 401, reset, malformed, wrong dimensions', async () => {
    server.reset();
    server.pushFaults({ status: 500 }, { status: 502 }, { status: 503 }, null, { status: 401 }, { kind: 'reset' }, { kind: 'malformed' }, { kind: 'wrong-dimensions', dims: 3 });
    const openai = client(server);
    const call = (): Promise<unknown> => openai.embeddings.create({ model: MODEL, input: 'x' }).then((r) => r, (e: unknown) => e);
    const results = [];
    for (let i = 0; i < 8; i++) results.push(await call());
    const [e500, e502, e503, ok, e401, reset, malformed, wrongDims] = results;
    assert.ok(e500 instanceof InternalServerError && e500.status === 500 && e500.type === 'server_error');
    assert.ok(e502 instanceof InternalServerError && e502.status === 502);
    assert.ok(e503 instanceof InternalServerError && e503.status === 503);
    assert.equal((ok as OpenAI.CreateEmbeddingResponse).data[0].embedding.length, 8);
    assert.ok(e401 instanceof AuthenticationError);
    assert.ok(reset instanceof APIConnectionError && !(reset instanceof APIConnectionTimeoutError));
    assert.ok(malformed instanceof SyntaxError, `malformed -> ${String(malformed)}`);
    assert.equal((wrongDims as OpenAI.CreateEmbeddingResponse).data[0].embedding.length, 3);
    assert.deepEqual(server.requests.map((r) => r.status), [500, 502, 503, 200, 401, null, 200, 200]);
    assert.deepEqual(server.stats(), { requests: 8, ok: 2, rateLimited: 0, errors: 6, inputs: 2, tokens: 2, hung: 0, aborted: 0 });
  });

  it('failInputContaining fails only the requests carrying that input', async () => {
    server.reset();
    server.onRequest = failInputContaining('POISON');
    try {
      const openai = client(server);
      await openai.embeddings.create({ model: MODEL, input: ['fine', 'also fine'] });
      const err = await rejection(openai.embeddings.create({ model: MODEL, input: ['fine', 'xx POISON xx'] }));
      assert.ok(err instanceof BadRequestError);
      assert.match(err.message, /input\[1\]/);
    } finally {
      server.onRequest = undefined;
    }
  });

  it('delay, and hang with a client timeout, do not hang the test', async () => {
    server.reset();
    server.pushFaults({ kind: 'delay', ms: 50 }, { kind: 'hang' });
    const t0 = performance.now();
    await client(server).embeddings.create({ model: MODEL, input: 'x' });
    assert.ok(performance.now() - t0 >= 45);
    const err = await rejection(client(server, KEY, 200).embeddings.create({ model: MODEL, input: 'x' }));
    assert.ok(err instanceof APIConnectionTimeoutError);
    assert.equal(server.requests[1].outcome, 'hung');
  });

  it('an AbortSignal aborts a hanging request with APIUserAbortError', async () => {
    server.reset();
    server.pushFaults({ kind: 'hang' });
    const ac = new AbortController();
    const pending = rejection(client(server).embeddings.create({ model: MODEL, input: 'x' }, { signal: ac.signal }));
    await server.waitForRequests(1);
    ac.abort();
    assert.ok((await pending) instanceof APIUserAbortError);
  });

  it('seeded random faults are reproducible', async () => {
    const run = async (): Promise<Array<number | null>> => {
      const s = await startFakeOpenAI({ faultRate: 0.5, seed: 42, dimensions: 4 });
      try {
        const openai = client(s);
        for (let i = 0; i < 12; i++) await openai.embeddings.create({ model: MODEL, input: 'x' }).catch(() => undefined);
        return s.requests.map((r) => r.status);
      } finally {
        await s.close();
      }
    };
    const a = await run();
    assert.deepEqual(await run(), a);
    assert.ok(a.some((s) => s === 200) && a.some((s) => s !== 200), JSON.stringify(a));
  });
});

describe('fake-openai: lifecycle', () => {
  it('close() resolves while a request hangs, and the client sees a connection error', async () => {
    const server = await startFakeOpenAI({ faults: [{ kind: 'hang' }] });
    const pending = rejection(client(server).embeddings.create({ model: MODEL, input: 'x' }));
    await server.waitForRequests(1);
    const t0 = performance.now();
    await server.close();
    assert.ok(performance.now() - t0 < 1000);
    assert.ok((await pending) instanceof APIConnectionError);
  });

  it('latency model: a client that times out first is recorded as aborted', async () => {
    const server = await startFakeOpenAI({ latency: { baseMs: 150, perKTokensMs: 0 } });
    try {
      const err = await rejection(client(server, KEY, 50).embeddings.create({ model: MODEL, input: 'x' }));
      assert.ok(err instanceof APIConnectionTimeoutError);
      await server.waitForResponses(1);
      assert.equal(server.requests[0].outcome, 'aborted');
      assert.equal(server.stats().aborted, 1);
    } finally {
      await server.close();
    }
  });

  it('waitForRequests rejects on timeout instead of hanging', async () => {
    const server = await startFakeOpenAI();
    try {
      await assert.rejects(server.waitForRequests(1, 20), /timed out after 20ms/);
    } finally {
      await server.close();
    }
  });

  it('runs as a CLI printing {"url"} first, serving stats, exiting 0 on SIGTERM', async () => {
    const script = fileURLToPath(new URL('./fake-openai.ts', import.meta.url));
    const child = spawn(process.execPath, [script, '--port', '0', '--rpm', '3000', '--tpm', '1000000', '--base-ms', '1', '--per-k-tokens-ms', '1', '--fault-rate', '0', '--dimensions', '8'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
      const { url } = JSON.parse((await lines.next()).value as string) as { url: string };
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
      const res = await new OpenAI({ apiKey: 'any', baseURL: url, maxRetries: 0 }).embeddings.create({ model: MODEL, input: 'hello' }).withResponse();
      assert.equal(res.data.data[0].embedding.length, 8);
      assert.equal(res.response.headers.get('x-ratelimit-limit-requests'), '3000');
      const stats = await (await fetch(url.replace(/\/v1$/, '/__fake/stats'))).json() as { ok: number };
      assert.equal(stats.ok, 1);
      child.kill('SIGTERM');
      const [code] = await once(child, 'exit');
      assert.equal(code, 0);
      assert.match((await lines.next()).value as string, /"stats"/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
