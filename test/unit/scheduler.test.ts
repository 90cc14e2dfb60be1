/**
 * EmbeddingScheduler (src/main/scheduler/embedding-scheduler.ts) with a FakeClock and an in-test provider.
 * Time moves only through clock.advance(); the provider records every call and either answers at once
 * (vectors derived from the text, or a categorised error) or is held until the test settles the call.
 * Each bug found while writing these tests has a test that now guards its fix.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { EmbeddingProvider, EmbedResult } from '../../src/main/providers/embedding-provider.ts';
import { FakeClock } from '../support/fake-clock.ts';
import { EmbeddingScheduler, type EmbedItem, type SchedulerOptions } from '../../src/main/scheduler/embedding-scheduler.ts';
import { BadInputError, JobAbortedError, ProviderUnavailableError, RateLimitError, RetryableError, WorkerFatalError, type RateLimitScope } from '../../src/shared/errors.ts';
import type { RateLimitSnapshot } from '../../src/shared/rate-limit-headers.ts';

// ---------- helpers ----------

/** A pgvector literal unique to the text, so tests can check each item got its own vector, in order. */
function vec(text: string): string {
  return `[${[...text].map((c) => c.codePointAt(0)).join(',')}]`;
}

function items(prefix: string, n: number, tokens = 10): EmbedItem[] {
  return Array.from({ length: n }, (_, i) => ({ text: `${prefix}${i}`, tokens }));
}

/** What the provider does with call number n (1-based): answer now (default: vectors), throw, or hold. */
type Reply = EmbedResult | Error | 'hold' | undefined;

interface Call {
  n: number;
  inputs: string[];
  at: number;
  settled: boolean;
  /** Answer a held call: no argument = vectors for its inputs. */
  settle(reply?: EmbedResult | Error): void;
}

interface FakeProvider extends EmbeddingProvider {
  readonly calls: Call[];
}

function fakeProvider(clock: FakeClock, reply: (inputs: string[], n: number) => Reply = () => undefined, remote = true): FakeProvider {
  const calls: Call[] = [];
  return {
    name: 'fake',
    model: 'fake-model',
    dimensions: 3,
    remote,
    calls,
    embed(inputs: string[]): Promise<EmbedResult> {
      const call: Call = { n: calls.length + 1, inputs: [...inputs], at: clock.now(), settled: false, settle: () => {} };
      const promise = new Promise<EmbedResult>((resolve, reject) => {
        call.settle = (r) => {
          assert.equal(call.settled, false, `call ${call.n} settled twice`);
          call.settled = true;
          if (r instanceof Error) reject(r);
          else resolve(r ?? { vectors: inputs.map(vec) });
        };
      });
      calls.push(call);
      const r = reply(inputs, call.n);
      if (r !== 'hold') call.settle(r);
      return promise;
    },
  };
}

/** A 429 the way openai-provider builds it. */
function http429(retryAfterMs?: number, rateLimit: RateLimitSnapshot = {}, scope: RateLimitScope = 'requests', requestTooLarge = false): RateLimitError {
  return new RateLimitError(`embedding provider answered 429 Rate limit reached on ${scope} per min`, {
    retryAfterMs,
    scope,
    requestTooLarge,
    rateLimit: { ...rateLimit, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) },
  });
}

function http500(): ProviderUnavailableError {
  return new ProviderUnavailableError('embedding provider answered 500 The server had an error', { status: 500 });
}

/** Watches a promise without awaiting it. */
function watch<T>(promise: Promise<T>): { state: 'pending' | 'fulfilled' | 'rejected'; value?: T; error?: unknown } {
  const w: { state: 'pending' | 'fulfilled' | 'rejected'; value?: T; error?: unknown } = { state: 'pending' };
  promise.then(
    (value) => Object.assign(w, { state: 'fulfilled', value }),
    (error: unknown) => Object.assign(w, { state: 'rejected', error }),
  );
  return w;
}

function setup(options: Partial<SchedulerOptions> = {}, reply?: (inputs: string[], n: number) => Reply, remote = true) {
  const clock = new FakeClock(0);
  const provider = fakeProvider(clock, reply, remote);
  const scheduler = new EmbeddingScheduler({
    provider,
    batchSize: 4,
    concurrency: 1,
    maxRetries: 3,
    backoff: { baseMs: 100, maxMs: 10_000 },
    clock,
    random: () => 0, // no jitter: backoff = half the exponential step, retry-after exactly as asked
    burstMs: 60_000, // per-minute buckets, unless a test asks for the default one-second burst
    ...options,
  });
  return { clock, provider, scheduler };
}

const holdFirst = (inputs: string[], n: number): Reply => (n === 1 ? 'hold' : undefined);

// ---------- packing ----------

describe('packing', () => {
  test('items of several jobs share one request, up to batchSize, and each job gets its own vectors in order', async () => {
    const { clock, provider, scheduler } = setup({ batchSize: 8 }, holdFirst);
    const blocker = scheduler.embed('blocker', 0, items('z', 1));
    const a = scheduler.embed('A', 0, items('a', 3));
    const b = scheduler.embed('B', 0, items('b', 3));
    const c = scheduler.embed('C', 0, items('c', 3));
    assert.equal(provider.calls.length, 1, 'concurrency 1: the others wait for the blocker');
    provider.calls[0].settle();
    await clock.advance(0);

    assert.deepEqual(provider.calls.map((c) => c.inputs.length), [1, 8, 1]);
    const second = provider.calls[1].inputs;
    for (const job of ['a', 'b', 'c']) assert.ok(second.some((t) => t.startsWith(job)), `request 2 carries job ${job}: ${second}`);
    assert.deepEqual(await a, ['a0', 'a1', 'a2'].map(vec));
    assert.deepEqual(await b, ['b0', 'b1', 'b2'].map(vec));
    assert.deepEqual(await c, ['c0', 'c1', 'c2'].map(vec));
    assert.deepEqual(await blocker, [vec('z0')]);
    assert.deepEqual(scheduler.stats, { requests: 3, inputs: 10, tokens: 100, rateLimited: 0, retries: 0, failedRequests: 0 });
  });

  test('never exceeds batchSize, and batchSize is capped at the API maximum of 2048', async () => {
    const { clock, provider, scheduler } = setup({ batchSize: 5000, concurrency: 1 });
    const done = scheduler.embed('A', 0, items('a', 4100, 1));
    await clock.advance(0);
    assert.equal((await done).length, 4100);
    assert.deepEqual(provider.calls.map((c) => c.inputs.length), [2048, 2048, 4]);
  });

  test('maxRequestTokens bounds the tokens of one request; an item bigger than the bound goes alone', async () => {
    const { clock, provider, scheduler } = setup({ batchSize: 10, maxRequestTokens: 250 });
    const a = scheduler.embed('A', 0, [...items('a', 5, 100), { text: 'big', tokens: 300 }, ...items('t', 2, 100)]);
    await clock.advance(0);
    assert.equal((await a).length, 8);
    assert.deepEqual(provider.calls.map((c) => c.inputs), [['a0', 'a1'], ['a2', 'a3'], ['a4'], ['big'], ['t0', 't1']]);
  });

  test('an empty list resolves at once without a request', async () => {
    const { provider, scheduler } = setup();
    assert.deepEqual(await scheduler.embed('A', 0, []), []);
    assert.equal(provider.calls.length, 0);
  });

  test('concurrency limits the requests in flight', async () => {
    // A configured limit (far away): no slow start, so the fan-out is the concurrency's.
    const { clock, provider, scheduler } = setup({ batchSize: 1, concurrency: 3, rpm: 1_000_000 }, () => 'hold');
    const a = watch(scheduler.embed('A', 0, items('a', 5)));
    await clock.advance(0);
    assert.equal(provider.calls.length, 3);
    assert.equal(scheduler.requestsInFlight, 3);
    assert.equal(scheduler.queuedItems, 2);
    provider.calls[1].settle();
    await clock.advance(0);
    assert.equal(provider.calls.length, 4);
    for (const c of provider.calls) if (!c.settled) c.settle();
    await clock.advance(0);
    provider.calls[4].settle();
    await clock.advance(0);
    assert.equal(a.state, 'fulfilled');
    assert.equal(provider.calls.length, 5);
  });
});

// ---------- pacing ----------

describe('rate limits', () => {
  test('RPM bucket: 2 requests at once, then one every 30 s', async () => {
    const { clock, provider, scheduler } = setup({ batchSize: 1, concurrency: 4, rpm: 2 });
    const a = watch(scheduler.embed('A', 0, items('a', 5)));
    await clock.advance(0);
    assert.equal(provider.calls.length, 2);
    await clock.advance(29_999);
    assert.equal(provider.calls.length, 2);
    await clock.advance(1);
    assert.equal(provider.calls.length, 3);
    await clock.advance(29_999);
    assert.equal(provider.calls.length, 3);
    await clock.advance(1);
    assert.equal(provider.calls.length, 4);
    await clock.advance(30_000);
    assert.equal(provider.calls.length, 5);
    assert.deepEqual(provider.calls.map((c) => c.at), [0, 0, 30_000, 60_000, 90_000]);
    assert.equal(a.state, 'fulfilled');
  });

  test('TPM bucket: requests are packed under the TPM limit and wait for the tokens to refill', async () => {
    const { clock, provider, scheduler } = setup({ batchSize: 10, concurrency: 4, tpm: 1000 });
    const a = watch(scheduler.embed('A', 0, items('a', 4, 400)));
    await clock.advance(0);
    assert.deepEqual(provider.calls.map((c) => c.inputs.length), [2], 'at most 1000 tokens per request');
    // 200 tokens left; 800 needed, plus a margin of 25 ms of the limit kept in hand: 600.42 more at 1000/min = 36.025 s.
    await clock.advance(36_024);
    assert.equal(provider.calls.length, 1);
    await clock.advance(1);
    assert.equal(provider.calls.length, 2);
    assert.equal(a.state, 'fulfilled');
    assert.equal(scheduler.stats.tokens, 1600);
  });

  test('a provider that is not remote (local embedder) is not paced', async () => {
    const { clock, provider, scheduler } = setup({ batchSize: 1, rpm: 1, tpm: 1 }, undefined, false);
    const a = await Promise.all([scheduler.embed('A', 0, items('a', 5)), clock.advance(0)]);
    assert.equal(a[0].length, 5);
    assert.equal(provider.calls.length, 5);
    assert.ok(provider.calls.every((c) => c.at === 0));
  });

  test('slow start: with no limits configured the first request goes alone; its headers pace the fan-out after it', async () => {
    // A bucket of 1,000 tokens shown by the first answer: 4 requests of 400 tokens at once would overrun it.
    const snapshot: RateLimitSnapshot = { limitTokens: 60_000, remainingTokens: 600 };
    const { clock, provider, scheduler } = setup({ batchSize: 1, concurrency: 4, burstMs: 1_000 }, (inputs, n) => (n === 1 ? 'hold' : { vectors: inputs.map(vec), rateLimit: snapshot }));
    const a = watch(scheduler.embed('A', 0, items('a', 5, 400)));
    await clock.advance(0);
    assert.equal(provider.calls.length, 1, 'nothing known yet: one request');
    await clock.advance(5_000);
    assert.equal(provider.calls.length, 1, 'still waiting for the first answer');
    provider.calls[0].settle({ vectors: provider.calls[0].inputs.map(vec), rateLimit: { limitTokens: 60_000, remainingTokens: 600 } });
    await clock.advance(0);
    assert.deepEqual(scheduler.limits(), { rpm: undefined, tpm: 60_000 });
    assert.equal(provider.calls.length, 2, '600 tokens left in the bucket: one more 400-token request now, not four');
    await clock.advance(60_000);
    assert.equal(a.state, 'fulfilled');
    assert.equal(scheduler.stats.rateLimited, 0);
  });

  test('slow start ends with any answer: without rate-limit headers the full concurrency applies', async () => {
    const { clock, provider, scheduler } = setup({ batchSize: 1, concurrency: 3 }, (inputs, n) => (n === 1 ? undefined : 'hold'));
    watch(scheduler.embed('A', 0, items('a', 6)));
    await clock.advance(0);
    assert.equal(provider.calls.length, 4, 'the first answered at once; then three in flight');
    assert.equal(scheduler.requestsInFlight, 3);
  });

  test('limits are learned from the rate-limit snapshot of a successful answer', async () => {
    const snapshot: RateLimitSnapshot = { limitRequests: 2, remainingRequests: 0, limitTokens: 1_000_000, remainingTokens: 999_990 };
    const { clock, provider, scheduler } = setup({ batchSize: 1 }, (inputs) => ({ vectors: inputs.map(vec), rateLimit: snapshot }));
    assert.deepEqual(scheduler.limits(), { rpm: undefined, tpm: undefined });
    const a = watch(scheduler.embed('A', 0, items('a', 3)));
    await clock.advance(0);
    assert.equal(provider.calls.length, 1, 'remaining 0 of 2/min: the next request waits 30 s');
    assert.deepEqual(scheduler.limits(), { rpm: 2, tpm: 1_000_000 });
    await clock.advance(29_999);
    assert.equal(provider.calls.length, 1);
    await clock.advance(1);
    assert.equal(provider.calls.length, 2);
    await clock.advance(30_000);
    assert.equal(provider.calls.length, 3);
    assert.equal(a.state, 'fulfilled');
  });

  test('a configured limit is replaced by the provider\'s (headers win)', async () => {
    const { clock, provider, scheduler } = setup({ batchSize: 1, rpm: 1000 }, (inputs) => ({
      vectors: inputs.map(vec),
      rateLimit: { limitRequests: 60, remainingRequests: 0 },
    }));
    const a = watch(scheduler.embed('A', 0, items('a', 3)));
    await clock.advance(0);
    assert.equal(scheduler.limits().rpm, 60);
    assert.equal(provider.calls.length, 1, 'configured 1000/min would allow more; the provider says 0 left of 60/min');
    await clock.advance(999);
    assert.equal(provider.calls.length, 1);
    await clock.advance(1);
    assert.equal(provider.calls.length, 2);
    await clock.advance(1000);
    assert.equal(provider.calls.length, 3);
    assert.equal(a.state, 'fulfilled');
  });

  test('a 429 carrying a snapshot adapts the limits too', async () => {
    const { clock, scheduler } = setup({}, (inputs, n) =>
      n === 1 ? http429(1000, { limitRequests: 500, remainingRequests: 0, limitTokens: 40_000, remainingTokens: 0 }, 'tokens') : undefined);
    const a = watch(scheduler.embed('A', 0, items('a', 1)));
    await clock.advance(0);
    assert.deepEqual(scheduler.limits(), { rpm: 500, tpm: 40_000 });
    await clock.advance(2_000);
    assert.equal(a.state, 'fulfilled');
  });
});

// ---------- retries ----------

describe('retries', () => {
  test('a 429 with retryAfterMs pauses every request until then, then retries', async () => {
    const { clock, provider, scheduler } = setup({ batchSize: 2, concurrency: 3, rpm: 1_000_000 }, (inputs, n) => (n <= 3 ? 'hold' : undefined));
    const a = watch(scheduler.embed('A', 0, items('a', 8)));
    const b = watch(scheduler.embed('B', 0, items('b', 2)));
    await clock.advance(0);
    assert.equal(provider.calls.length, 3);
    provider.calls[0].settle(http429(5_000));
    await clock.advance(0);
    provider.calls[1].settle();
    provider.calls[2].settle();
    await clock.advance(0);
    assert.equal(provider.calls.length, 3, 'free slots, but paused by the 429');
    await clock.advance(4_999);
    assert.equal(provider.calls.length, 3);
    // A refusal on requests per minute also empties the request bucket for the pause: the next request goes as
    // soon as one request's worth has refilled after it (at 1,000,000 RPM, within a millisecond).
    await clock.advance(2);
    assert.ok(provider.calls.length > 3);
    assert.ok(provider.calls[3].at >= 5_000 && provider.calls[3].at <= 5_001, String(provider.calls[3].at));
    assert.ok(provider.calls.slice(3).some((c) => c.inputs.includes(provider.calls[0].inputs[0])), 'the rejected inputs were sent again');
    assert.equal(a.state, 'fulfilled');
    assert.equal(b.state, 'fulfilled');
    assert.deepEqual(a.value, items('a', 8).map((i) => vec(i.text)));
    assert.equal(scheduler.stats.rateLimited, 1);
    assert.equal(scheduler.stats.retries, 0, 'a 429 is not a failed try');
  });

  test('a 429 without retry-after pauses for the backoff delay', async () => {
    const { clock, provider, scheduler } = setup({ batchSize: 4 }, (inputs, n) => (n === 1 ? http429(undefined) : undefined));
    const a = watch(scheduler.embed('A', 0, items('a', 2)));
    await clock.advance(49);
    assert.equal(provider.calls.length, 1);
    await clock.advance(1); // backoff attempt 1, no jitter: 100/2 = 50 ms
    assert.equal(provider.calls.length, 2);
    assert.equal(a.state, 'fulfilled');
  });

  test('5xx is retried with exponential backoff up to maxRetries, then rejects with RetryableError', async () => {
    const { clock, provider, scheduler } = setup({ maxRetries: 3 }, () => http500());
    const a = watch(scheduler.embed('A', 0, items('a', 2)));
    await clock.advance(49);
    assert.equal(provider.calls.length, 1);
    await clock.advance(1);
    assert.equal(provider.calls.length, 2);
    await clock.advance(10_000);
    // delays (random = 0): 50, 100, 200 ms
    assert.deepEqual(provider.calls.map((c) => c.at), [0, 50, 150, 350]);
    assert.equal(a.state, 'rejected');
    assert.ok(a.error instanceof RetryableError, String(a.error));
    assert.match((a.error as Error).message, /500 .*after 4 tries/);
    assert.equal(scheduler.stats.retries, 3);
    assert.equal(scheduler.stats.failedRequests, 4);
    assert.equal(scheduler.queuedItems, 0);
  });

  test('backoff jitter stays within [half, full] of the exponential step', async () => {
    const { clock, provider, scheduler } = setup({ maxRetries: 2, random: () => 0.999 }, () => http500());
    const a = watch(scheduler.embed('A', 0, items('a', 1)));
    await clock.advance(10_000);
    assert.deepEqual(provider.calls.map((c) => c.at), [0, 100, 300]);
    assert.equal(a.state, 'rejected');
  });

  test('a 5xx followed by success resolves normally', async () => {
    const { clock, scheduler } = setup({}, (inputs, n) => (n === 1 ? http500() : undefined));
    const a = watch(scheduler.embed('A', 0, items('a', 3)));
    await clock.advance(50);
    assert.deepEqual(a.value, ['a0', 'a1', 'a2'].map(vec));
  });
});

// ---------- error categories ----------

describe('bad input and worker-fatal errors', () => {
  test('a 400 on a multi-input request is isolated: only the job with the culprit rejects, with BadInputError', async () => {
    const { clock, provider, scheduler } = setup({ batchSize: 8 }, (inputs, n) => {
      if (n === 1) return 'hold';
      const i = inputs.findIndex((t) => t.includes('POISON'));
      return i < 0 ? undefined : new BadInputError(`embedding provider rejected the input (400 Invalid 'input[${i}]')`);
    });
    const blocker = scheduler.embed('blocker', 0, items('z', 1));
    const a = watch(scheduler.embed('A', 0, items('a', 2)));
    const b = watch(scheduler.embed('B', 0, [{ text: 'b0' }, { text: 'POISON chunk' }].map((x) => ({ ...x, tokens: 10 }))));
    const c = watch(scheduler.embed('C', 0, items('c', 2)));
    provider.calls[0].settle();
    await clock.advance(0);
    await blocker;

    assert.equal(provider.calls[1].inputs.length, 6, 'all six shared one request first');
    assert.ok(provider.calls.slice(2).every((c) => c.inputs.length === 1), 'then each input alone');
    assert.equal(provider.calls.length, 2 + 6);
    assert.equal(a.state, 'fulfilled');
    assert.deepEqual(a.value, ['a0', 'a1'].map(vec));
    assert.equal(c.state, 'fulfilled');
    assert.deepEqual(c.value, ['c0', 'c1'].map(vec));
    assert.equal(b.state, 'rejected');
    assert.ok(b.error instanceof BadInputError);
    assert.match((b.error as Error).message, /chunk text starts "POISON chunk"/);
    assert.equal(scheduler.stats.retries, 0, 'isolation is not a retry');
  });

  test('a 400 on a single-input request rejects at once, no retry', async () => {
    const { clock, provider, scheduler } = setup({}, () => new BadInputError('400 bad'));
    const a = watch(scheduler.embed('A', 0, items('a', 1)));
    await clock.advance(60_000);
    assert.equal(provider.calls.length, 1);
    assert.ok(a.error instanceof BadInputError);
  });

  test('a worker-fatal error rejects everything queued and every embed() until resume()', async () => {
    const fatal = new WorkerFatalError('embedding provider rejected the credentials (401): check OPENAI_API_KEY');
    let broken = true;
    const { clock, provider, scheduler } = setup({ batchSize: 2 }, () => (broken ? fatal : undefined));
    const a = watch(scheduler.embed('A', 0, items('a', 4)));
    const b = watch(scheduler.embed('B', 5, items('b', 2)));
    await clock.advance(0);
    assert.equal(provider.calls.length, 1);
    assert.equal(a.error, fatal);
    assert.equal(b.error, fatal);
    assert.equal(scheduler.isFatal, true);
    assert.equal(scheduler.queuedItems, 0);
    await assert.rejects(scheduler.embed('C', 0, items('c', 1)), (e) => e === fatal);
    await clock.advance(600_000);
    assert.equal(provider.calls.length, 1, 'no request while fatal');

    broken = false;
    scheduler.resume();
    assert.equal(scheduler.isFatal, false);
    const d = watch(scheduler.embed('D', 0, items('d', 2)));
    await clock.advance(0);
    assert.deepEqual(d.value, ['d0', 'd1'].map(vec));
    assert.equal(provider.calls.length, 2);
  });
  test('after a worker-fatal error, a request still in flight that fails settles its items too', async () => {
    const fatal = new WorkerFatalError('embedding model not found (404): check RAG_EMBEDDING_MODEL');
    const { clock, provider, scheduler } = setup({ batchSize: 2, concurrency: 2, rpm: 1_000_000 }, () => 'hold');
    const a = watch(scheduler.embed('A', 0, items('a', 2)));
    const b = watch(scheduler.embed('B', 0, items('b', 2)));
    assert.equal(provider.calls.length, 2);
    provider.calls[0].settle(fatal);
    await clock.advance(0);
    assert.equal(a.error, fatal);
    provider.calls[1].settle(http500());
    await clock.advance(60_000);
    assert.equal(b.state, 'rejected', 'job B would wait for resume() that may never come');
    assert.equal(scheduler.queuedItems, 0);
  });
});

// ---------- fairness, priority, cancel ----------

describe('fairness and priority', () => {
  for (const concurrency of [1, 4]) {
    test(`a small job submitted after a 1000-item job is sent within the first requests (concurrency ${concurrency})`, async () => {
      const { clock, provider, scheduler } = setup({ batchSize: 10, concurrency });
      const order: string[] = [];
      const huge = scheduler.embed('huge', 0, items('h', 1000)).then((v) => (order.push('huge'), v));
      const small = scheduler.embed('small', 0, items('s', 5)).then((v) => (order.push('small'), v));
      await clock.advance(0);
      assert.equal((await huge).length, 1000);
      assert.deepEqual(await small, items('s', 5).map((i) => vec(i.text)));
      const lastSmall = provider.calls.findLastIndex((c) => c.inputs.some((t) => t.startsWith('s')));
      assert.ok(lastSmall <= concurrency, `small job's last item went in request ${lastSmall + 1} of ${provider.calls.length}`);
      assert.deepEqual(order, ['small', 'huge']);
      assert.equal(provider.calls.length, 101);
    });
  }

  test('round-robin: two big jobs alternate inside each request', async () => {
    const { clock, provider, scheduler } = setup({ batchSize: 4 }, holdFirst);
    void scheduler.embed('blocker', 0, items('z', 1));
    const a = scheduler.embed('A', 0, items('a', 8));
    const b = scheduler.embed('B', 0, items('b', 8));
    provider.calls[0].settle();
    await clock.advance(0);
    await Promise.all([a, b]);
    for (const c of provider.calls.slice(1)) {
      assert.equal(c.inputs.filter((t) => t.startsWith('a')).length, 2, c.inputs.join());
      assert.equal(c.inputs.filter((t) => t.startsWith('b')).length, 2, c.inputs.join());
    }
  });

  test('higher priority goes first; lower priority fills what is left of the batch', async () => {
    const { clock, provider, scheduler } = setup({ batchSize: 4 }, holdFirst);
    void scheduler.embed('blocker', 0, items('z', 1));
    const low = scheduler.embed('low', 0, items('l', 6));
    const high = scheduler.embed('high', 5, items('h', 6));
    provider.calls[0].settle();
    await clock.advance(0);
    await Promise.all([low, high]);
    assert.deepEqual(provider.calls.slice(1).map((c) => c.inputs), [
      ['h0', 'h1', 'h2', 'h3'],
      ['h4', 'h5', 'l0', 'l1'],
      ['l2', 'l3', 'l4', 'l5'],
    ]);
  });

  test('priority survives a retry: a high-priority job\'s retried items go before a lower-priority job', async () => {
    const { clock, provider, scheduler } = setup({ batchSize: 2 }, () => 'hold');
    const high = watch(scheduler.embed('high', 5, items('h', 2)));
    const low = watch(scheduler.embed('low', 1, items('l', 10)));
    assert.deepEqual(provider.calls[0].inputs, ['h0', 'h1']);
    provider.calls[0].settle(http500()); // retry after 50 ms
    await clock.advance(0);
    assert.deepEqual(provider.calls[1].inputs, ['l0', 'l1'], 'low runs while high backs off');
    await clock.advance(50);
    provider.calls[1].settle();
    await clock.advance(0);
    assert.deepEqual(provider.calls[2].inputs, ['h0', 'h1'], 'high is ready again and must go first');
    provider.calls[2].settle();
    await clock.advance(0);
    assert.equal(high.state, 'fulfilled');
    scheduler.close();
    await clock.advance(0);
    assert.equal(low.state, 'rejected');
  });
});

describe('cancelJob and close', () => {
  test('cancelJob rejects only that job\'s items, with the given reason, and none of them is sent', async () => {
    const { clock, provider, scheduler } = setup({ batchSize: 4 }, holdFirst);
    void scheduler.embed('blocker', 0, items('z', 1));
    const a = watch(scheduler.embed('A', 0, items('a', 3)));
    const b = watch(scheduler.embed('B', 0, items('b', 3)));
    const reason = new RetryableError('lease lost');
    scheduler.cancelJob('A', reason);
    await clock.advance(0);
    assert.equal(a.state, 'rejected');
    assert.equal(a.error, reason);
    assert.equal(b.state, 'pending');
    provider.calls[0].settle();
    await clock.advance(0);
    assert.deepEqual(b.value, ['b0', 'b1', 'b2'].map(vec));
    assert.ok(provider.calls.every((c) => !c.inputs.some((t) => t.startsWith('a'))));
    scheduler.cancelJob('unknown', reason); // no-op
  });

  test('a cancelled job whose request was in flight is not retried after that request fails', async () => {
    const { clock, provider, scheduler } = setup({ batchSize: 4 }, (inputs, n) => (n === 1 ? 'hold' : undefined));
    const a = watch(scheduler.embed('A', 0, items('a', 2)));
    scheduler.cancelJob('A', new RetryableError('lease lost'));
    provider.calls[0].settle(http500());
    await clock.advance(60_000);
    assert.equal(provider.calls.length, 1, `requests after cancel: ${provider.calls.slice(1).map((c) => c.inputs.join()).join(' | ')}`);
    assert.equal(scheduler.queuedItems, 0);
    assert.equal(a.state, 'rejected');
  });

  test('close() rejects queued items and further embed() calls', async () => {
    const { clock, provider, scheduler } = setup({ batchSize: 1 }, holdFirst);
    const a = watch(scheduler.embed('A', 0, items('a', 3)));
    scheduler.close();
    await clock.advance(0);
    assert.equal(a.state, 'rejected');
    assert.ok(a.error instanceof JobAbortedError && a.error.kind === 'shutdown');
    await assert.rejects(scheduler.embed('B', 0, items('b', 1)), (e) => e instanceof JobAbortedError && e.kind === 'shutdown');
    provider.calls[0].settle();
    await clock.advance(0);
    assert.equal(provider.calls.length, 1);
  });

  test('close(): an in-flight request that then fails settles its items instead of leaving them pending', async () => {
    const { clock, provider, scheduler } = setup({ batchSize: 4 }, () => 'hold');
    const a = watch(scheduler.embed('A', 0, items('a', 2)));
    scheduler.close();
    provider.calls[0].settle(http500());
    await clock.advance(60_000);
    assert.equal(a.state, 'rejected');
  });
});

// ---------- rate limiting is backpressure ----------

describe('rate limiting never uses up tries', () => {
  test('twenty 429s in a row with maxRetries 2: the items wait and are embedded once the provider lets them through', async () => {
    const { clock, provider, scheduler } = setup({ batchSize: 1, maxRetries: 2 }, (inputs, n) => (n <= 20 ? http429(1_000) : undefined));
    const a = watch(scheduler.embed('A', 0, items('a', 1)));
    for (let i = 0; i < 25 && a.state === 'pending'; i++) await clock.advance(1_000);
    assert.equal(a.state, 'fulfilled', String(a.error));
    assert.equal(provider.calls.length, 21);
    assert.equal(scheduler.stats.rateLimited, 20);
    assert.equal(scheduler.stats.retries, 0);
  });

  test('a 429 saying the request is too large splits it instead of resending it unchanged', async () => {
    const { clock, provider, scheduler } = setup({ batchSize: 8 }, (inputs, n) => (n === 1 ? http429(undefined, {}, 'tokens', true) : undefined));
    const a = watch(scheduler.embed('A', 0, items('a', 8, 10)));
    for (let i = 0; i < 20 && a.state === 'pending'; i++) await clock.advance(1_000);
    assert.equal(a.state, 'fulfilled', String(a.error));
    assert.equal(provider.calls[0].inputs.length, 8);
    assert.ok(provider.calls[1].inputs.length <= 4, `second request has ${provider.calls[1].inputs.length} inputs`);
    assert.deepEqual(a.value, items('a', 8, 10).map((i) => vec(i.text)));
  });

  test('a batch refused twice in a row (bucket smaller than the request) shrinks until it fits', async () => {
    // The provider admits at most 25 tokens per request, always answering a plain 429 otherwise.
    const { clock, provider, scheduler } = setup({ batchSize: 8 }, (inputs) => (inputs.length * 10 > 25 ? http429(100, {}, 'tokens') : undefined));
    const a = watch(scheduler.embed('A', 0, items('a', 8, 10)));
    for (let i = 0; i < 50 && a.state === 'pending'; i++) await clock.advance(500);
    assert.equal(a.state, 'fulfilled', String(a.error));
    assert.ok(scheduler.maxRequestTokens <= 40, `cap ${scheduler.maxRequestTokens}`);
    assert.ok(provider.calls.filter((c) => c.inputs.length * 10 > 25).length <= 4, 'a handful of refusals, not a storm');
  });

  test('refusals on requests per minute wait and never shrink the batches (smaller requests would mean more of them)', async () => {
    // Two RPM refusals in a row, then the provider lets requests through.
    const { clock, provider, scheduler } = setup({ batchSize: 8 }, (inputs, n) => (n <= 2 ? http429(100, {}, 'requests') : undefined));
    const a = watch(scheduler.embed('A', 0, items('a', 8, 10)));
    for (let i = 0; i < 10 && a.state === 'pending'; i++) await clock.advance(500);
    assert.equal(a.state, 'fulfilled', String(a.error));
    assert.deepEqual(provider.calls.map((c) => c.inputs.length), [8, 8, 8], 'the same full request, resent after each wait');
    assert.equal(scheduler.maxRequestTokens, 300_000, 'no cap learned');
  });

  test('one chunk alone larger than the limit fails that chunk as bad input (nothing smaller to send)', async () => {
    const { clock, scheduler } = setup({ batchSize: 8 }, () => http429(undefined, {}, 'tokens', true));
    const a = watch(scheduler.embed('A', 0, items('a', 1, 5000)));
    for (let i = 0; i < 10 && a.state === 'pending'; i++) await clock.advance(1_000);
    assert.equal(a.state, 'rejected');
    assert.ok(a.error instanceof BadInputError, String(a.error));
    assert.match((a.error as Error).message, /RAG_CHUNK_MAX_TOKENS/);
  });

  test('an error of no known type (a bug) reaches the job at once and is not retried', async () => {
    const { clock, provider, scheduler } = setup({ maxRetries: 5 }, () => new TypeError('cannot read properties of undefined'));
    const a = watch(scheduler.embed('A', 0, items('a', 2)));
    await clock.advance(60_000);
    assert.equal(a.state, 'rejected');
    assert.ok(a.error instanceof TypeError);
    assert.equal(provider.calls.length, 1);
  });
});

describe('steady pacing (default one-second burst)', () => {
  test('at 150,000 TPM requests are sized to the 2,500-token bucket and sent at the limit, not a minute at once', async () => {
    const { clock, provider, scheduler } = setup({ batchSize: 16, concurrency: 8, tpm: 150_000, burstMs: undefined });
    assert.equal(scheduler.maxRequestTokens, 2_500);
    const a = watch(scheduler.embed('A', 0, items('a', 160, 230)));
    for (let i = 0; i < 200 && a.state === 'pending'; i++) await clock.advance(100);
    assert.equal(a.state, 'fulfilled');
    const tokensOf = (c: { inputs: string[] }) => c.inputs.length * 230;
    assert.ok(provider.calls.every((c) => tokensOf(c) <= 2_500), 'every request fits the bucket');
    // 160 × 230 = 36,800 tokens at 2,500/s after the first burst: about 13.7 s.
    const last = provider.calls[provider.calls.length - 1].at;
    assert.ok(last >= 12_000 && last <= 15_500, `last request at ${last} ms`);
    // No second of sending exceeds the limit's second plus one burst.
    for (let t = 0; t < last; t += 1000) {
      const sent = provider.calls.filter((c) => c.at >= t && c.at < t + 1000).reduce((n, c) => n + tokensOf(c), 0);
      assert.ok(sent <= 5_000, `${sent} tokens in the second from ${t} ms`);
    }
  });
});

describe('a share of the account (several workers on one key)', () => {
  test('at a third of 150,000 TPM requests fit a third of the bucket and go out at a third of the rate', async () => {
    const { clock, provider, scheduler } = setup({ batchSize: 16, concurrency: 8, tpm: 150_000, burstMs: undefined });
    scheduler.setShare(1 / 3);
    assert.equal(scheduler.maxRequestTokens, 833);
    assert.equal(scheduler.state().share, 1 / 3);
    const a = watch(scheduler.embed('A', 0, items('a', 60, 230)));
    for (let i = 0; i < 400 && a.state === 'pending'; i++) await clock.advance(100);
    assert.equal(a.state, 'fulfilled');
    const tokensOf = (c: { inputs: string[] }) => c.inputs.length * 230;
    assert.ok(provider.calls.every((c) => tokensOf(c) <= 833), 'every request fits the share of the bucket');
    // 60 × 230 = 13,800 tokens at 833/s after the first (share of the) burst: about 15.6 s.
    const last = provider.calls[provider.calls.length - 1].at;
    assert.ok(last >= 14_000 && last <= 17_500, `last request at ${last} ms`);
  });

  test('the whole limit comes back when the share does; remaining counts stay the account\'s', async () => {
    const { clock, provider, scheduler } = setup({ batchSize: 16, concurrency: 8, tpm: 150_000, burstMs: undefined });
    scheduler.setShare(0.5);
    assert.equal(scheduler.maxRequestTokens, 1_250);
    scheduler.setShare(1);
    assert.equal(scheduler.maxRequestTokens, 2_500);
    assert.equal(scheduler.hasDemand, false);
    const a = watch(scheduler.embed('A', 0, items('a', 4, 230)));
    assert.equal(scheduler.hasDemand, true);
    for (let i = 0; i < 50 && a.state === 'pending'; i++) await clock.advance(100);
    assert.equal(a.state, 'fulfilled');
    assert.equal(scheduler.hasDemand, false);
    assert.ok(provider.calls.length >= 1);
  });
});
