/**
 * createOpenAIProvider + mapOpenAIError against the loopback fake (test/support/fake-openai.ts), with the real
 * openai SDK on the wire; then the scheduler over provider over fake server, end to end with scripted faults.
 * No sleeps: every wait is a server event, an SDK timeout, or a promise.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { createOpenAIProvider, mapOpenAIError, type OpenAIProviderOptions } from '../../src/main/providers/openai-provider.ts';
import { EmbeddingScheduler } from '../../src/main/scheduler/embedding-scheduler.ts';
import { toVectorLiteral } from '../../src/main/stores/queue-store.ts';
import { BadInputError, ProviderResponseError, RateLimitError, RetryableError, WorkerFatalError } from '../../src/shared/errors.ts';
import type { RateLimitSnapshot } from '../../src/shared/rate-limit-headers.ts';
import { redact } from '../../src/shared/redact.ts';
import { fakeEmbedding, failInputContaining, quoteApiKey, startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.ts';

const MODEL = 'text-embedding-3-small';
const DIMS = 8;
const KEY = 'sk-test-ABCDEFGHIJKLMNOPQRSTUVWX1234';

function provider(server: FakeOpenAI, overrides: Partial<OpenAIProviderOptions> = {}) {
  return createOpenAIProvider({ apiKey: KEY, baseURL: server.url, model: MODEL, dimensions: DIMS, timeoutMs: 5_000, ...overrides });
}

function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => assert.fail('expected a rejection'),
    (err: unknown) => err,
  );
}

type Carrier = RetryableError & { status?: number; rateLimit?: RateLimitSnapshot };

describe('openai provider over the fake server', () => {
  let server: FakeOpenAI;
  before(async () => {
    server = await startFakeOpenAI({ apiKey: KEY, dimensions: 1536, rateLimit: { rpm: 10_000, tpm: 10_000_000 } });
  });
  after(() => server.close());

  test('returns one pgvector literal per input, in input order, and the rate-limit snapshot', async () => {
    server.reset();
    const p = provider(server);
    assert.equal(p.remote, true);
    assert.equal(p.dimensions, DIMS);
    const inputs = ['alpha beta', 'gamma', 'delta epsilon zeta', 'alpha beta'];
    const result = await p.embed(inputs);
    assert.deepEqual(result.vectors, inputs.map((t) => toVectorLiteral(fakeEmbedding(t, DIMS))));
    assert.match(result.vectors[0], /^\[-?[\d.e-]+(,-?[\d.e-]+){7}\]$/);
    assert.equal(result.rateLimit?.limitRequests, 10_000);
    assert.equal(result.rateLimit?.limitTokens, 10_000_000);
    assert.equal(typeof result.rateLimit?.remainingTokens, 'number');
    const [req] = server.requests;
    assert.equal(req.model, MODEL);
    assert.equal(req.dimensions, DIMS, 'text-embedding-3-* get a dimensions parameter');
    assert.deepEqual(req.inputs, inputs);
    assert.equal(req.headers.authorization, `Bearer ${KEY}`);
  });

  test('the message does not repeat the HTTP status', async () => {
    server.reset();
    server.pushFaults({ status: 401 }, { status: 500 });
    for (let i = 0; i < 2; i++) {
      const err = (await rejection(provider(server).embed(['x']))) as Error;
      assert.doesNotMatch(err.message, /\b(\d{3}) \1\b/);
    }
  });

  test('a model without a dimensions parameter (ada-002, compatible servers) is not sent one', async () => {
    server.reset();
    const vectors = (await provider(server, { model: 'text-embedding-ada-002', dimensions: 1536 }).embed(['x'])).vectors;
    assert.equal(vectors.length, 1);
    assert.equal(server.requests[0].dimensions, undefined);
  });

  test('vectors of the wrong size → WorkerFatalError naming RAG_EMBEDDING_DIMENSIONS', async () => {
    server.reset();
    server.pushFaults({ kind: 'wrong-dimensions', dims: 5 });
    const err = await rejection(provider(server).embed(['x', 'y']));
    assert.ok(err instanceof WorkerFatalError, String(err));
    assert.match(err.message, /returned 5-dimensional embeddings but RAG_EMBEDDING_DIMENSIONS=8/);
    assert.match(err.message, /set RAG_EMBEDDING_DIMENSIONS=5/);
  });

  test('401 → WorkerFatalError naming OPENAI_API_KEY; once redacted, no form of the key is left', async () => {
    server.reset();
    server.pushFaults({ status: 401 });
    const err = await rejection(provider(server).embed(['x']));
    assert.ok(err instanceof WorkerFatalError, String(err));
    assert.match(err.message, /check OPENAI_API_KEY/);
    assert.ok(err.message.includes(quoteApiKey(KEY)), 'the server quoted part of the key (as the real API does)');
    const cause = (err as Error & { cause?: Error }).cause;
    assert.match(redact(err.message, [KEY]), /^embedding provider rejected the credentials \(401 .*Incorrect API key provided: \[redacted\].*\): check OPENAI_API_KEY$/);
    for (const text of [err.message, String(err), err.stack ?? '', String(cause?.message), JSON.stringify({ error: err.message })]) {
      const clean = redact(text, [KEY]);
      assert.ok(!clean.includes(KEY) && !clean.includes(quoteApiKey(KEY)), clean);
      assert.ok(!clean.includes('sk-test') && !/\*+1234/.test(clean) && !clean.includes('1234'), clean);
    }
  });

  test('a wrong key (the server checks it) → WorkerFatalError, key absent after redaction', async () => {
    server.reset();
    const wrong = 'sk-test-WRONGWRONGWRONGWRONG9999';
    const err = await rejection(provider(server, { apiKey: wrong }).embed(['x']));
    assert.ok(err instanceof WorkerFatalError);
    const clean = redact(err.message, [wrong]);
    assert.ok(!clean.includes('WRONG') && !clean.includes('9999'), clean);
  });

  test('404 unknown model → WorkerFatalError naming RAG_EMBEDDING_MODEL (and OPENAI_BASE_URL)', async () => {
    server.reset();
    const err = await rejection(provider(server, { model: 'nomic-embed-nope' }).embed(['x']));
    assert.ok(err instanceof WorkerFatalError, String(err));
    assert.match(err.message, /^embedding model not found \(404 .*\): check RAG_EMBEDDING_MODEL=nomic-embed-nope and OPENAI_BASE_URL$/);
    assert.match(err.message, /OPENAI_BASE_URL/);
    assert.equal(server.requests[0].status, 404);
  });

  test('429 with retry-after-ms → RetryableError with retryAfterMs, status and the parsed rate limits', async () => {
    server.reset();
    server.pushFaults({ status: 429, retryAfterMs: 1234 });
    const err = (await rejection(provider(server).embed(['x']))) as RateLimitError;
    assert.ok(err instanceof RateLimitError, String(err));
    assert.equal(err.requestTooLarge, false);
    assert.equal(err.scope, 'requests');
    assert.equal(err.retryAfterMs, 1234);
    assert.equal(err.status, 429);
    assert.equal(err.rateLimit?.retryAfterMs, 1234);
    assert.equal(err.rateLimit?.limitRequests, 10_000);
    assert.equal(err.rateLimit?.limitTokens, 10_000_000);
    assert.equal(typeof err.rateLimit?.resetRequestsMs, 'number');
    assert.match(err.message, /429/);
  });

  for (const how of ['duplicate-index', 'missing-index', 'out-of-range-index', 'zero-vector', 'one-too-few'] as const) {
    test(`a 200 with ${how} → ProviderResponseError (the provider is blamed, nothing reaches the database)`, async () => {
      server.reset();
      server.pushFaults({ kind: 'broken-data', how });
      const err = await rejection(provider(server).embed(['alpha', 'beta', 'gamma']));
      assert.ok(err instanceof ProviderResponseError, String(err));
      assert.match((err as Error).message, /malformed/);
    });
  }

  test('429 for a request larger than the TPM limit → RateLimitError marked requestTooLarge, scope tokens', async () => {
    const small = await startFakeOpenAI({ apiKey: KEY, rateLimit: { tpm: 10 } });
    try {
      const err = await rejection(provider(small).embed(['one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty']));
      assert.ok(err instanceof RateLimitError, String(err));
      assert.equal(err.requestTooLarge, true);
      assert.equal(err.scope, 'tokens');
      assert.equal(err.category, 'rate_limited');
    } finally {
      await small.close();
    }
  });

  test('429 insufficient_quota → WorkerFatalError (retrying cannot help)', async () => {
    server.reset();
    server.pushFaults({ status: 429, body: { error: { message: 'You exceeded your current quota', type: 'insufficient_quota', param: null, code: 'insufficient_quota' } } });
    const err = await rejection(provider(server).embed(['x']));
    assert.ok(err instanceof WorkerFatalError, String(err));
    assert.match(err.message, /out of quota/);
  });

  for (const status of [500, 502, 503] as const) {
    test(`${status} → RetryableError with status`, async () => {
      server.reset();
      server.pushFaults({ status });
      const err = (await rejection(provider(server).embed(['x']))) as Carrier;
      assert.ok(err instanceof RetryableError, String(err));
      assert.equal(err.status, status);
      assert.equal(err.retryAfterMs, undefined);
    });
  }

  test('400 for one input → BadInputError quoting the provider', async () => {
    server.reset();
    server.onRequest = failInputContaining('POISON');
    try {
      const err = await rejection(provider(server).embed(['fine', 'xx POISON xx']));
      assert.ok(err instanceof BadInputError, String(err));
      assert.match(err.message, /input\[1\]/);
      assert.deepEqual((await provider(server).embed(['fine'])).vectors.length, 1);
    } finally {
      server.onRequest = undefined;
    }
  });

  test('a hang with a short timeoutMs → RetryableError (timed out)', async () => {
    server.reset();
    server.pushFaults({ kind: 'hang' });
    const err = await rejection(provider(server, { timeoutMs: 150 }).embed(['x']));
    assert.ok(err instanceof RetryableError, String(err));
    assert.match(err.message, /timed out/);
    assert.equal(server.requests[0].outcome, 'hung');
  });

  test('a malformed 200 body → RetryableError', async () => {
    server.reset();
    server.pushFaults({ kind: 'malformed' });
    const err = await rejection(provider(server).embed(['x']));
    assert.ok(err instanceof RetryableError, String(err));
    assert.match(err.message, /not valid JSON/);
  });

  test('a TCP reset → RetryableError naming the endpoint', async () => {
    server.reset();
    server.pushFaults({ kind: 'reset' });
    const err = await rejection(provider(server).embed(['x']));
    assert.ok(err instanceof RetryableError, String(err));
    assert.match(err.message, /cannot reach the embedding endpoint/);
    assert.ok(err.message.includes(server.url));
  });

  test('an aborted request stays an abort (not categorised as a provider fault)', async () => {
    server.reset();
    server.pushFaults({ kind: 'hang' });
    const ac = new AbortController();
    const pending = rejection(provider(server).embed(['x'], ac.signal));
    await server.waitForRequests(1);
    ac.abort();
    const err = await pending;
    assert.ok(!(err instanceof RetryableError || err instanceof WorkerFatalError || err instanceof BadInputError));
    assert.ok(err instanceof OpenAI.APIUserAbortError, String(err));
  });
});

describe('mapOpenAIError without a server', () => {
  test('unknown errors pass through; SyntaxError is retryable', () => {
    const opts = { model: MODEL, dimensions: DIMS };
    const plain = new Error('boom');
    assert.equal(mapOpenAIError(plain, opts), plain);
    assert.ok(mapOpenAIError(new SyntaxError('Unexpected end of JSON input'), opts) instanceof RetryableError);
  });
});

describe('end to end: scheduler → provider → fake server', () => {
  test('scripted 500 then 429 (retry-after-ms 50): every item is embedded, and the server saw the retries', async () => {
    const server = await startFakeOpenAI({ apiKey: KEY, faults: [{ status: 500 }, { status: 429, retryAfterMs: 50 }] });
    const arrivals: Array<{ n: number; at: number }> = [];
    let rateLimitedAt = Infinity;
    let rateLimitedN = 0;
    server.events.on('request', (r: { n: number }) => arrivals.push({ n: r.n, at: performance.now() }));
    server.events.on('response', (r: { n: number; status: number | null }) => {
      if (r.status === 429) [rateLimitedAt, rateLimitedN] = [performance.now(), r.n];
    });
    try {
      const scheduler = new EmbeddingScheduler({
        provider: provider(server),
        batchSize: 8,
        concurrency: 1,
        maxRetries: 4,
        backoff: { baseMs: 10, maxMs: 100 },
      });
      const jobs = ['a', 'b', 'c'].map((j) => Array.from({ length: 10 }, (_, i) => ({ text: `job ${j} chunk ${i} about topic ${i % 3}`, tokens: 8 })));
      const results = await Promise.all(jobs.map((items, k) => scheduler.embed(`job-${k}`, 0, items)));
      results.forEach((vectors, k) => assert.deepEqual(vectors, jobs[k].map((it) => toVectorLiteral(fakeEmbedding(it.text, DIMS)))));

      const stats = server.stats();
      assert.equal(stats.errors, 1, 'the 500');
      assert.equal(stats.rateLimited, 1, 'the 429');
      assert.equal(stats.inputs, 30, 'each item embedded exactly once');
      assert.equal(stats.requests, stats.ok + 2);
      assert.deepEqual(server.requests.slice(0, 2).map((r) => r.status), [500, 429]);
      assert.equal(scheduler.stats.requests, stats.requests);
      assert.equal(scheduler.stats.retries, 1, 'the 500 is a failed try; the 429 is backpressure');
      assert.equal(scheduler.stats.rateLimited, 1);
      assert.equal(scheduler.stats.inputs, 30);
      assert.equal(scheduler.stats.failedRequests, 2);
      // retry-after-ms honoured: nothing reached the server in the 50 ms after the 429 was answered.
      const later = arrivals.filter((a) => a.n > rateLimitedN);
      assert.ok(later.length > 0);
      for (const a of later) assert.ok(a.at - rateLimitedAt >= 48, `request ${a.n} came ${(a.at - rateLimitedAt).toFixed(1)} ms after the 429`);
      scheduler.close();
    } finally {
      await server.close();
    }
  });

  test('a 400 for one chunk fails only that job; a 401 stops the scheduler', async () => {
    const server = await startFakeOpenAI({ apiKey: KEY, onRequest: failInputContaining('POISON') });
    try {
      const scheduler = new EmbeddingScheduler({ provider: provider(server), batchSize: 16, concurrency: 1, maxRetries: 2, backoff: { baseMs: 10, maxMs: 50 } });
      const good = scheduler.embed('good', 0, [{ text: 'fine one', tokens: 2 }, { text: 'fine two', tokens: 2 }]);
      const bad = scheduler.embed('bad', 0, [{ text: 'ok', tokens: 1 }, { text: 'a POISON chunk', tokens: 3 }]);
      const [g, b] = await Promise.allSettled([good, bad]);
      assert.equal(g.status, 'fulfilled');
      assert.equal(b.status, 'rejected');
      assert.ok((b as PromiseRejectedResult).reason instanceof BadInputError);

      server.onRequest = undefined;
      server.pushFaults({ status: 401 });
      const fatal = await rejection(scheduler.embed('next', 0, [{ text: 'x', tokens: 1 }]));
      assert.ok(fatal instanceof WorkerFatalError);
      assert.equal(scheduler.isFatal, true);
      assert.ok(!redact((fatal as Error).message, [KEY]).includes('1234'));
      scheduler.close();
    } finally {
      await server.close();
    }
  });
});
