/**
 * ClaudeScheduler (src/main/analysis/claude-scheduler.ts) with a FakeClock and an in-test ClaudeClient.
 * Time moves only through clock.advance(); the client records every call and either answers at once (a reply
 * chosen by the test) or holds the call until the test settles it, so every request's outcome and timing is
 * under the test's control.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ClaudeRateLimitError, type ClaudeClient, type ClaudeRequest, type ClaudeResponse, type ClaudeUsage } from '../../src/main/analysis/claude-client.ts';
import { ClaudeScheduler, type ClaudeEstimate, type ClaudeSchedulerOptions } from '../../src/main/analysis/claude-scheduler.ts';
import type { AnthropicRateLimit } from '../../src/shared/anthropic-rate-limit.ts';
import {
  BadInputError,
  JobAbortedError,
  ProviderResponseError,
  ProviderUnavailableError,
  RateLimitError,
  RetryableError,
  WorkerFatalError,
} from '../../src/shared/errors.ts';
import { FakeClock } from '../support/fake-clock.ts';

// ---------- helpers ----------

/** The fields of an answer a test may set; the rest default to an empty answer with no usage and no limits. */
interface Answer {
  usage?: Partial<ClaudeUsage>;
  rateLimit?: AnthropicRateLimit;
  text?: string;
}

/** What the client does with call number n (1-based): answer now, fail now, or hold until settled. */
type Reply = Answer | Error | 'hold' | undefined;

interface Call {
  n: number;
  request: ClaudeRequest;
  at: number;
  settled: boolean;
  /** Settles a held call: an Error fails it, anything else answers it. */
  settle(reply?: Answer | Error): void;
}

interface FakeClient extends ClaudeClient {
  readonly calls: Call[];
  /** Calls sent and not yet settled. */
  readonly inFlight: number;
  /** The most calls ever unsettled at once. */
  readonly maxInFlight: number;
}

function response(request: ClaudeRequest, answer: Answer = {}): ClaudeResponse {
  return {
    text: answer.text ?? `answer to ${request.user}`,
    stopReason: 'end_turn',
    usage: { inputTokens: 0, cacheWriteTokens: 0, cacheReadTokens: 0, outputTokens: 0, ...answer.usage },
    rateLimit: answer.rateLimit ?? {},
    model: request.model,
  };
}

function fakeClient(clock: FakeClock, reply: (request: ClaudeRequest, n: number) => Reply = () => undefined): FakeClient {
  const calls: Call[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  return {
    calls,
    get inFlight() {
      return inFlight;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    send(request: ClaudeRequest): Promise<ClaudeResponse> {
      const call: Call = { n: calls.length + 1, request, at: clock.now(), settled: false, settle: () => {} };
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const promise = new Promise<ClaudeResponse>((resolve, reject) => {
        call.settle = (r) => {
          assert.equal(call.settled, false, `call ${call.n} settled twice`);
          call.settled = true;
          inFlight--;
          if (r instanceof Error) reject(r);
          else resolve(response(request, r));
        };
      });
      calls.push(call);
      const r = reply(request, call.n);
      if (r !== 'hold') call.settle(r);
      return promise;
    },
  };
}

function req(user: string): ClaudeRequest {
  return { model: 'claude-test-1', system: [{ text: 'window', cache: true }], user, maxTokens: 100 };
}

const NO_TOKENS: ClaudeEstimate = { inputTokens: 0, outputTokens: 0 };

/** Watches a promise without awaiting it (and without leaving a rejection unhandled). */
function watch<T>(promise: Promise<T>): { state: 'pending' | 'fulfilled' | 'rejected'; value?: T; error?: unknown } {
  const w: { state: 'pending' | 'fulfilled' | 'rejected'; value?: T; error?: unknown } = { state: 'pending' };
  promise.then(
    (value) => Object.assign(w, { state: 'fulfilled', value }),
    (error: unknown) => Object.assign(w, { state: 'rejected', error }),
  );
  return w;
}

function setup(options: Partial<ClaudeSchedulerOptions> = {}, reply?: (request: ClaudeRequest, n: number) => Reply) {
  const clock = new FakeClock(0);
  const client = fakeClient(clock, reply);
  const scheduler = new ClaudeScheduler({
    client,
    concurrency: 1,
    maxRetries: 3,
    backoff: { baseMs: 100, maxMs: 10_000 },
    clock,
    random: () => 0, // no jitter: backoff = half the exponential step, retry-after exactly as asked
    ...options,
  });
  /** Sends `user` for `job` and watches the outcome. */
  const send = (job: string, user: string, estimate: ClaudeEstimate = NO_TOKENS, priority = 0) => watch(scheduler.send(job, priority, req(user), estimate));
  return { clock, client, scheduler, send };
}

const users = (client: FakeClient) => client.calls.map((c) => c.request.user);
const times = (client: FakeClient) => client.calls.map((c) => c.at);

function overloaded(retryAfterMs?: number): ProviderUnavailableError {
  return new ProviderUnavailableError('Claude API answered 529 Overloaded', { status: 529, retryAfterMs });
}

function rateLimited(retryAfterMs?: number, limits: AnthropicRateLimit = {}): ClaudeRateLimitError {
  return new ClaudeRateLimitError('Claude API answered 429 rate limited', { status: 429, retryAfterMs, limits });
}

/** A limit far above anything a test sends: it ends the slow start without pacing anything. */
const UNLIMITED = 1_000_000_000;

// ---------- concurrency ----------

describe('concurrency', () => {
  test('never more than `concurrency` requests in flight; a finished one makes room for the next', async () => {
    const { clock, client, scheduler, send } = setup({ concurrency: 3, rpm: UNLIMITED }, () => 'hold');
    const all = Array.from({ length: 7 }, (_, i) => send('A', `a${i}`));
    await clock.advance(0);
    assert.deepEqual(users(client), ['a0', 'a1', 'a2']);
    assert.equal(scheduler.state().requestsInFlight, 3);
    assert.equal(scheduler.state().queued, 4);

    client.calls[1].settle();
    await clock.advance(0);
    assert.deepEqual(users(client), ['a0', 'a1', 'a2', 'a3']);
    assert.equal(scheduler.state().requestsInFlight, 3);

    // Settle whatever is in flight, in a scrambled order, until everything is done.
    for (let round = 0; round < 10 && all.some((w) => w.state === 'pending'); round++) {
      const open = client.calls.filter((c) => !c.settled);
      for (const c of [...open].reverse()) c.settle();
      await clock.advance(0);
    }
    assert.ok(all.every((w) => w.state === 'fulfilled'));
    assert.deepEqual(all.map((w) => w.value?.text), Array.from({ length: 7 }, (_, i) => `answer to a${i}`), 'each caller gets its own answer');
    assert.equal(client.maxInFlight, 3);
    assert.equal(client.calls.length, 7);
    assert.deepEqual(scheduler.state(), { rpm: UNLIMITED, itpm: undefined, otpm: undefined, pausedForMs: 0, requestsInFlight: 0, queued: 0 });
    assert.equal(scheduler.stats.requests, 7);
  });

  test('the cap holds across jobs and with answers arriving at once', async () => {
    const { clock, client, send } = setup({ concurrency: 2, rpm: UNLIMITED }, (_, n) => (n % 3 === 0 ? undefined : 'hold'));
    const all = ['A', 'B', 'C'].flatMap((job) => Array.from({ length: 4 }, (_, i) => send(job, `${job}${i}`)));
    for (let round = 0; round < 20 && all.some((w) => w.state === 'pending'); round++) {
      const open = client.calls.find((c) => !c.settled);
      open?.settle();
      await clock.advance(0);
    }
    assert.ok(all.every((w) => w.state === 'fulfilled'));
    assert.equal(client.calls.length, 12);
    assert.equal(client.maxInFlight, 2);
  });
});

// ---------- slow start ----------

describe('slow start', () => {
  test('with no limits configured the first request goes alone until it is answered, then the full concurrency applies', async () => {
    const { clock, client, scheduler, send } = setup({ concurrency: 3 }, () => 'hold');
    const all = ['a0', 'a1', 'a2', 'a3', 'a4'].map((u) => send('A', u));
    await clock.advance(0);
    assert.equal(client.calls.length, 1, 'nothing known about the limits yet: one request');
    await clock.advance(60_000);
    assert.equal(client.calls.length, 1, 'still alone while the first is unanswered');
    assert.equal(scheduler.state().queued, 4);

    client.calls[0].settle();
    await clock.advance(0);
    assert.deepEqual(users(client), ['a0', 'a1', 'a2', 'a3'], 'answered (with no rate-limit headers): three in flight at once');
    assert.equal(all[0].state, 'fulfilled');
    for (const c of client.calls) if (!c.settled) c.settle();
    await clock.advance(0);
    client.calls[4].settle();
    await clock.advance(0);
    assert.ok(all.every((w) => w.state === 'fulfilled'));
  });

  test('the first answer\'s headers size the fan-out after it', async () => {
    // 120 requests/min, 1 left: with the one-second burst (capacity 2) one more goes now, then one every 500 ms.
    const limits: AnthropicRateLimit = { requests: { limit: 120, remaining: 1 } };
    const { clock, client, scheduler, send } = setup({ concurrency: 4 }, (_, n) => (n === 1 ? 'hold' : { rateLimit: {} }));
    const all = ['a0', 'a1', 'a2', 'a3', 'a4'].map((u) => send('A', u));
    await clock.advance(0);
    assert.equal(client.calls.length, 1);
    client.calls[0].settle({ rateLimit: limits });
    await clock.advance(0);
    assert.equal(scheduler.state().rpm, 120);
    assert.equal(client.calls.length, 2, 'one request left in the bucket, not four');
    await clock.advance(2_000);
    assert.deepEqual(times(client), [0, 0, 500, 1_000, 1_500]);
    assert.ok(all.every((w) => w.state === 'fulfilled'));
  });

  test('any configured limit skips the slow start', async () => {
    for (const limit of [{ rpm: UNLIMITED }, { itpm: UNLIMITED }, { otpm: UNLIMITED }]) {
      const { clock, client, send } = setup({ concurrency: 3, ...limit }, () => 'hold');
      for (const u of ['a0', 'a1', 'a2', 'a3']) send('A', u);
      await clock.advance(0);
      assert.equal(client.calls.length, 3, JSON.stringify(limit));
    }
  });
});

// ---------- pacing ----------

describe('pacing from the answers\' rate limits (one-second burst by default)', () => {
  test('requests: 60/min with none left paces one request a second', async () => {
    const { clock, client, scheduler, send } = setup({ concurrency: 4 }, () => ({ rateLimit: { requests: { limit: 60, remaining: 0 } } }));
    const all = ['a0', 'a1', 'a2', 'a3', 'a4'].map((u) => send('A', u));
    await clock.advance(0);
    assert.equal(client.calls.length, 1);
    assert.deepEqual(scheduler.state().rpm, 60);
    await clock.advance(999);
    assert.equal(client.calls.length, 1);
    await clock.advance(1);
    assert.equal(client.calls.length, 2);
    await clock.advance(3_000);
    assert.deepEqual(times(client), [0, 1_000, 2_000, 3_000, 4_000]);
    assert.ok(all.every((w) => w.state === 'fulfilled'));
  });

  test('input tokens: the estimate is taken from a 60,000/min bucket holding one second (1,000 tokens)', async () => {
    const estimate = { inputTokens: 600, outputTokens: 0 };
    const { clock, client, scheduler, send } = setup({ concurrency: 4 }, () => ({ rateLimit: { inputTokens: { limit: 60_000 } }, usage: { inputTokens: 600 } }));
    const all = ['a0', 'a1', 'a2', 'a3', 'a4'].map((u) => send('A', u, estimate));
    await clock.advance(0);
    assert.equal(scheduler.state().itpm, 60_000);
    // First request alone (slow start); then 1,000 tokens in hand: one of 600 now, each next one when 600 are back.
    await clock.advance(5_000);
    assert.deepEqual(times(client), [0, 0, 200, 800, 1_400]);
    assert.ok(all.every((w) => w.state === 'fulfilled'));
  });

  test('input tokens: a combined `tokens` window paces input when there is no input-tokens window', async () => {
    const estimate = { inputTokens: 1_000, outputTokens: 0 };
    const { clock, client, scheduler, send } = setup({ concurrency: 4 }, () => ({ rateLimit: { tokens: { limit: 60_000, remaining: 0 } }, usage: { inputTokens: 1_000 } }));
    for (const u of ['a0', 'a1', 'a2']) send('A', u, estimate);
    await clock.advance(5_000);
    assert.equal(scheduler.state().itpm, 60_000);
    assert.deepEqual(times(client), [0, 1_000, 2_000]);
  });

  test('output tokens: 6,000/min holds 100 a second; requests estimated at 100 output tokens go one a second', async () => {
    const estimate = { inputTokens: 0, outputTokens: 100 };
    const { clock, client, scheduler, send } = setup({ concurrency: 4 }, () => ({ rateLimit: { outputTokens: { limit: 6_000 } }, usage: { outputTokens: 100 } }));
    for (const u of ['a0', 'a1', 'a2', 'a3']) send('A', u, estimate);
    await clock.advance(5_000);
    assert.equal(scheduler.state().otpm, 6_000);
    assert.deepEqual(times(client), [0, 0, 1_000, 2_000]);
  });

  test('the slowest of the three buckets decides', async () => {
    const estimate = { inputTokens: 500, outputTokens: 50 };
    // Requests allow 10 a second, input 2 a second, output 1 a second: output decides.
    const { clock, client, send } = setup({ concurrency: 4, rpm: 600, itpm: 60_000, otpm: 3_000 }, () => ({ usage: { inputTokens: 500, outputTokens: 50 } }));
    for (const u of ['a0', 'a1', 'a2', 'a3']) send('A', u, estimate);
    await clock.advance(10_000);
    assert.deepEqual(times(client), [0, 1_000, 2_000, 3_000]);
  });

  test('configured limits pace from the start with a one-second burst, not a minute at once', async () => {
    const { clock, client, scheduler, send } = setup({ concurrency: 10, rpm: 120 });
    const all = Array.from({ length: 6 }, (_, i) => send('A', `a${i}`));
    await clock.advance(0);
    assert.deepEqual(scheduler.state().rpm, 120);
    assert.equal(client.calls.length, 2, 'a one-second burst of 120/min is two requests');
    await clock.advance(10_000);
    assert.deepEqual(times(client), [0, 0, 500, 1_000, 1_500, 2_000]);
    assert.ok(all.every((w) => w.state === 'fulfilled'));
  });

  test('a request estimated above the bucket waits for a full bucket and borrows ahead (no deadlock)', async () => {
    const estimate = { inputTokens: 3_000, outputTokens: 0 };
    const { clock, client, send } = setup({ concurrency: 4, itpm: 60_000 }, () => ({ usage: { inputTokens: 3_000 } }));
    const all = ['a0', 'a1', 'a2'].map((u) => send('A', u, estimate));
    await clock.advance(20_000);
    assert.deepEqual(times(client), [0, 3_000, 6_000]);
    assert.ok(all.every((w) => w.state === 'fulfilled'));
  });

  test('a large request held back by the input bucket goes next: smaller requests of other jobs do not pass it', async () => {
    // 60,000/min holds 1,000 tokens; A's 900-token request (a window's first, writing the cache) waits for the
    // bucket to refill while B has many small ones ready.
    const { clock, client, send } = setup({ concurrency: 4, itpm: 60_000 }, (r) => ({ usage: { inputTokens: r.user.startsWith('big') ? 900 : 300 } }));
    send('B', 'b0', { inputTokens: 300, outputTokens: 0 });
    send('B', 'b1', { inputTokens: 300, outputTokens: 0 });
    send('A', 'big', { inputTokens: 900, outputTokens: 0 });
    for (let i = 2; i < 8; i++) send('B', `b${i}`, { inputTokens: 300, outputTokens: 0 });
    await clock.advance(20_000);
    const order = users(client);
    assert.equal(order.indexOf('big'), 2, `sent in the order ${order.join(',')}`);
  });

  test('the provider\'s limit replaces a configured one (headers win)', async () => {
    const { clock, client, scheduler, send } = setup({ rpm: 6_000 }, () => ({ rateLimit: { requests: { limit: 60, remaining: 0 } } }));
    for (const u of ['a0', 'a1', 'a2']) send('A', u);
    await clock.advance(0);
    assert.equal(scheduler.state().rpm, 60);
    assert.equal(client.calls.length, 1, 'configured 6,000/min would allow more; the provider says 0 left of 60/min');
    await clock.advance(5_000);
    assert.deepEqual(times(client), [0, 1_000, 2_000]);
  });

  test('a window with no usable limit is ignored', async () => {
    const { clock, client, scheduler, send } = setup({ concurrency: 3 }, () => ({ rateLimit: { requests: { limit: 0, remaining: 0 }, inputTokens: { remaining: 0 } } }));
    for (const u of ['a0', 'a1', 'a2', 'a3']) send('A', u);
    await clock.advance(0);
    assert.equal(client.calls.length, 4);
    assert.deepEqual(scheduler.state(), { rpm: undefined, itpm: undefined, otpm: undefined, pausedForMs: 0, requestsInFlight: 0, queued: 0 });
  });
});

// ---------- corrections from usage ----------

describe('estimates corrected from the answer\'s usage', () => {
  const estimate = { inputTokens: 1_000, outputTokens: 0 };

  test('input counts uncached input and cache writes; cache reads are not counted', async () => {
    // 60,000/min: 1,000 tokens in a one-second bucket, refilled at one a millisecond. The estimate empties it;
    // the answer says 200 + 300 = 500 counted, so 500 come back and the next request waits 500 ms, not 1,000.
    const { clock, client, send } = setup({ itpm: 60_000 }, () => ({ usage: { inputTokens: 200, cacheWriteTokens: 300, cacheReadTokens: 5_000, outputTokens: 0 } }));
    send('A', 'a0', estimate);
    send('A', 'a1', estimate);
    await clock.advance(499);
    assert.equal(client.calls.length, 1);
    await clock.advance(1);
    assert.deepEqual(times(client), [0, 500]);
  });

  test('an underestimate is taken from the bucket: the next request waits for the difference too', async () => {
    const { clock, client, send } = setup({ itpm: 60_000 }, () => ({ usage: { inputTokens: 1_800, cacheWriteTokens: 700, cacheReadTokens: 0, outputTokens: 0 } }));
    send('A', 'a0', estimate);
    send('A', 'a1', estimate);
    await clock.advance(2_499);
    assert.equal(client.calls.length, 1);
    await clock.advance(1);
    assert.deepEqual(times(client), [0, 2_500]);
  });

  test('an exact estimate leaves the pacing alone', async () => {
    const { clock, client, send } = setup({ itpm: 60_000 }, () => ({ usage: { inputTokens: 400, cacheWriteTokens: 600, cacheReadTokens: 9_000, outputTokens: 0 } }));
    send('A', 'a0', estimate);
    send('A', 'a1', estimate);
    await clock.advance(5_000);
    assert.deepEqual(times(client), [0, 1_000]);
  });

  test('output tokens are corrected from usage.outputTokens', async () => {
    // 6,000/min: 100 tokens a second. 100 estimated, 40 written: 60 come back; the next needs 40 more (400 ms).
    const out = { inputTokens: 0, outputTokens: 100 };
    const { clock, client, send } = setup({ otpm: 6_000 }, () => ({ usage: { outputTokens: 40 } }));
    send('A', 'a0', out);
    send('A', 'a1', out);
    await clock.advance(399);
    assert.equal(client.calls.length, 1);
    await clock.advance(1);
    assert.deepEqual(times(client), [0, 400]);
  });
});

// ---------- 429: backpressure ----------

describe('rate limited (429)', () => {
  test('retry-after pauses every request of every job until then; the refused one is sent again', async () => {
    const { clock, client, scheduler, send } = setup({ concurrency: 3, rpm: UNLIMITED }, (_, n) => (n <= 3 ? 'hold' : undefined));
    const a = ['a0', 'a1', 'a2', 'a3'].map((u) => send('A', u));
    const b = send('B', 'b0');
    await clock.advance(0);
    assert.equal(client.calls.length, 3);
    const refused = client.calls[0].request.user;
    client.calls[0].settle(rateLimited(5_000));
    await clock.advance(0);
    assert.equal(scheduler.state().pausedForMs, 5_000);
    client.calls[1].settle();
    client.calls[2].settle();
    await clock.advance(0);
    assert.equal(client.calls.length, 3, 'free slots, but paused');
    await clock.advance(4_999);
    assert.equal(client.calls.length, 3);
    assert.equal(scheduler.state().pausedForMs, 1);
    await clock.advance(1);
    assert.ok(client.calls.length > 3);
    assert.equal(client.calls[3].at, 5_000);
    const nextOfA = client.calls.slice(3).find((c) => c.request.user.startsWith('a'));
    assert.equal(nextOfA?.request.user, refused, 'the refused request goes first, ahead of the rest of its job');
    await clock.advance(0);
    assert.ok([...a, b].every((w) => w.state === 'fulfilled'));
    assert.equal(users(client).filter((u) => u === refused).length, 2);
    assert.equal(scheduler.stats.rateLimited, 1);
    assert.equal(scheduler.stats.retries, 0, 'a 429 is not a failed try');
  });

  test('however many 429s in a row, the request waits and is answered: no attempt is used (maxRetries 0)', async () => {
    const { clock, client, scheduler, send } = setup({ maxRetries: 0 }, (_, n) => (n <= 25 ? rateLimited(1_000) : undefined));
    const a = send('A', 'a0');
    for (let i = 0; i < 40 && a.state === 'pending'; i++) await clock.advance(1_000);
    assert.equal(a.state, 'fulfilled', String(a.error));
    assert.equal(client.calls.length, 26);
    assert.deepEqual(times(client), Array.from({ length: 26 }, (_, i) => i * 1_000));
    assert.deepEqual(scheduler.stats, { requests: 26, rateLimited: 25, retries: 0, failedRequests: 25 });
  });

  test('429s between 529s do not count as tries: maxRetries 1 still allows one 529 retry', async () => {
    const replies: Reply[] = [overloaded(), rateLimited(100), rateLimited(100), rateLimited(100), undefined];
    const { clock, client, send } = setup({ maxRetries: 1 }, (_, n) => replies[n - 1]);
    const a = send('A', 'a0');
    for (let i = 0; i < 20 && a.state === 'pending'; i++) await clock.advance(100);
    assert.equal(a.state, 'fulfilled', String(a.error));
    assert.equal(client.calls.length, 5);
  });

  test('a second 529 after 429s exhausts maxRetries 1: the tries are the 529s only', async () => {
    const replies: Reply[] = [overloaded(), rateLimited(100), rateLimited(100), overloaded()];
    const { clock, client, send } = setup({ maxRetries: 1 }, (_, n) => replies[n - 1]);
    const a = send('A', 'a0');
    for (let i = 0; i < 20 && a.state === 'pending'; i++) await clock.advance(100);
    assert.equal(a.state, 'rejected');
    assert.match((a.error as Error).message, /\(after 2 tries\)$/);
    assert.equal(client.calls.length, 4);
  });

  test('without retry-after, the latest reset of the exhausted windows sets the pause, and the limits are adopted', async () => {
    const limits: AnthropicRateLimit = {
      requests: { limit: 50, remaining: 10, resetMs: 60_000 },
      inputTokens: { limit: 30_000, remaining: 0, resetMs: 7_000 },
      outputTokens: { limit: 8_000, remaining: 0, resetMs: 4_000 },
    };
    const { clock, client, scheduler, send } = setup({}, (_, n) => (n === 1 ? rateLimited(undefined, limits) : undefined));
    const a = send('A', 'a0');
    await clock.advance(0);
    assert.equal(scheduler.state().pausedForMs, 7_000, 'the requests window is not exhausted: its reset does not count');
    assert.deepEqual([scheduler.state().rpm, scheduler.state().itpm, scheduler.state().otpm], [50, 30_000, 8_000]);
    await clock.advance(6_999);
    assert.equal(client.calls.length, 1);
    await clock.advance(1);
    assert.deepEqual(times(client), [0, 7_000]);
    assert.equal(a.state, 'fulfilled');
  });

  test('without retry-after or an exhausted window, the pause is the backoff, growing with refusals in a row', async () => {
    const { clock, client, send } = setup({}, (_, n) => (n <= 3 ? rateLimited() : undefined));
    const a = send('A', 'a0');
    await clock.advance(2_000);
    // backoff base 100, no jitter: 50, 100, 200 ms
    assert.deepEqual(times(client), [0, 50, 150, 350]);
    assert.equal(a.state, 'fulfilled');
  });

  test('a success resets the refusals in a row: the next 429 pauses for the first backoff step again', async () => {
    const replies: Reply[] = [rateLimited(), rateLimited(), undefined, rateLimited(), undefined];
    const { clock, client, send } = setup({}, (_, n) => replies[n - 1]);
    send('A', 'a0');
    send('A', 'a1');
    await clock.advance(2_000);
    assert.deepEqual(times(client), [0, 50, 150, 150, 200]);
  });

  test('a provider-neutral RateLimitError is backpressure too', async () => {
    const { clock, client, scheduler, send } = setup({ maxRetries: 0 }, (_, n) => (n <= 2 ? new RateLimitError('429', { retryAfterMs: 300 }) : undefined));
    const a = send('A', 'a0');
    await clock.advance(1_000);
    assert.equal(a.state, 'fulfilled');
    assert.deepEqual(times(client), [0, 300, 600]);
    assert.equal(scheduler.stats.retries, 0);
  });

  test('a refused request gives back what it took from the buckets', async () => {
    // 60/min: one request a second. The refused request's token comes back, so the retry goes when the pause
    // ends (100 ms), not a second after the first send.
    const { clock, client, send } = setup({ rpm: 60 }, (_, n) => (n === 1 ? rateLimited(100) : undefined));
    send('A', 'a0');
    await clock.advance(5_000);
    assert.deepEqual(times(client), [0, 100]);
  });

  test('a refusal showing no requests left empties that bucket for the pause', async () => {
    // 60/min, nothing left, retry after 2 s: the bucket refills from empty at the end of the pause, so the retry
    // goes one request's worth (1 s) after it.
    const limits: AnthropicRateLimit = { requests: { limit: 60, remaining: 0, resetMs: 2_000 } };
    const { clock, client, send } = setup({ rpm: 60 }, (_, n) => (n === 1 ? rateLimited(2_000, limits) : undefined));
    send('A', 'a0');
    await clock.advance(10_000);
    assert.deepEqual(times(client), [0, 3_000]);
  });
});

// ---------- transient failures ----------

describe('transient failures (529 and other retryable errors)', () => {
  test('529 is retried with exponential backoff up to maxRetries, then rejects "(after N tries)"', async () => {
    const { clock, client, scheduler, send } = setup({ maxRetries: 3 }, () => overloaded());
    const a = send('A', 'a0');
    await clock.advance(49);
    assert.equal(client.calls.length, 1);
    await clock.advance(1);
    assert.equal(client.calls.length, 2);
    await clock.advance(10_000);
    assert.deepEqual(times(client), [0, 50, 150, 350], 'delays 50, 100, 200 ms (base 100, no jitter)');
    assert.equal(a.state, 'rejected');
    assert.ok(a.error instanceof RetryableError, String(a.error));
    assert.equal((a.error as Error).message, 'Claude API answered 529 Overloaded (after 4 tries)');
    assert.ok((a.error as Error).cause instanceof ProviderUnavailableError, 'the last failure is the cause');
    assert.deepEqual(scheduler.stats, { requests: 4, rateLimited: 0, retries: 3, failedRequests: 4 });
    assert.equal(scheduler.state().queued, 0);
  });

  test('maxRetries 0: the first 529 rejects "(after 1 tries)"', async () => {
    const { clock, client, send } = setup({ maxRetries: 0 }, () => overloaded());
    const a = send('A', 'a0');
    await clock.advance(10_000);
    assert.equal(client.calls.length, 1);
    assert.match((a.error as Error).message, /\(after 1 tries\)$/);
  });

  test('a 529 with retry-after waits that long; the rejection keeps the retry-after', async () => {
    const { clock, client, send } = setup({ maxRetries: 1 }, () => overloaded(3_000));
    const a = send('A', 'a0');
    await clock.advance(2_999);
    assert.equal(client.calls.length, 1);
    await clock.advance(1);
    assert.deepEqual(times(client), [0, 3_000]);
    await clock.advance(0);
    assert.equal(a.state, 'rejected');
    assert.equal((a.error as RetryableError).retryAfterMs, 3_000);
  });

  test('a 529 followed by success resolves with the answer', async () => {
    const { clock, send } = setup({}, (_, n) => (n === 1 ? overloaded() : { text: 'fine' }));
    const a = send('A', 'a0');
    await clock.advance(50);
    assert.equal(a.state, 'fulfilled');
    assert.equal(a.value?.text, 'fine');
  });

  test('a malformed answer (ProviderResponseError) is retried like a 529', async () => {
    const { clock, client, send } = setup({}, (_, n) => (n === 1 ? new ProviderResponseError('Claude response malformed') : undefined));
    const a = send('A', 'a0');
    await clock.advance(50);
    assert.equal(a.state, 'fulfilled');
    assert.equal(client.calls.length, 2);
  });

  test('a retry backs off that request only: other work goes meanwhile', async () => {
    const { clock, client, send } = setup({ backoff: { baseMs: 10_000, maxMs: 10_000 } }, (r, n) => (n === 1 ? overloaded() : undefined));
    const a = send('A', 'a0');
    const b = send('B', 'b0');
    await clock.advance(0);
    assert.deepEqual(users(client), ['a0', 'b0']);
    assert.equal(b.state, 'fulfilled');
    assert.equal(a.state, 'pending');
    await clock.advance(5_000);
    assert.deepEqual(users(client), ['a0', 'b0', 'a0']);
    assert.equal(a.state, 'fulfilled');
  });
});

// ---------- errors that are not retried ----------

describe('bad input and bugs', () => {
  test('BadInputError rejects that request at once, without a retry; other work goes on', async () => {
    const bad = new BadInputError('the prompt is too long');
    const { clock, client, scheduler, send } = setup({ maxRetries: 5 }, (r) => (r.user === 'a0' ? bad : undefined));
    const a0 = send('A', 'a0');
    const a1 = send('A', 'a1');
    await clock.advance(60_000);
    assert.equal(a0.error, bad);
    assert.equal(a1.state, 'fulfilled');
    assert.deepEqual(users(client), ['a0', 'a1']);
    assert.equal(scheduler.stats.retries, 0);
    assert.equal(scheduler.isFatal, false);
  });

  test('an error of no known type (a bug) reaches the caller as it is, not retried', async () => {
    const bug = new TypeError('cannot read properties of undefined');
    const { clock, client, scheduler, send } = setup({ maxRetries: 5 }, () => bug);
    const a = send('A', 'a0');
    await clock.advance(60_000);
    assert.equal(a.error, bug);
    assert.equal(client.calls.length, 1);
    assert.equal(scheduler.stats.retries, 0);
    assert.equal(scheduler.isFatal, false);
  });
});

// ---------- worker-level faults ----------

describe('worker-level faults', () => {
  const fatal = () => new WorkerFatalError('Claude API rejected the API key (401): check ANTHROPIC_API_KEY', { setting: 'ANTHROPIC_API_KEY' });

  test('a WorkerFatalError rejects that request and every queued one, and refuses new work until resume()', async () => {
    const fault = fatal();
    let broken = true;
    const { clock, client, scheduler, send } = setup({}, () => (broken ? fault : undefined));
    const a = ['a0', 'a1'].map((u) => send('A', u));
    const b = send('B', 'b0', NO_TOKENS, 5);
    await clock.advance(0);
    assert.equal(client.calls.length, 1);
    for (const w of [...a, b]) assert.equal(w.error, fault);
    assert.equal(scheduler.isFatal, true);
    assert.equal(scheduler.state().fault, fault.message);
    assert.equal(scheduler.state().queued, 0);
    await assert.rejects(scheduler.send('C', 0, req('c0'), NO_TOKENS), (e) => e === fault);
    await clock.advance(3_600_000);
    assert.equal(client.calls.length, 1, 'no request while the fault stands, however long');
    assert.equal(scheduler.isFatal, true, 'no faultRetryMs: only resume() clears it');

    broken = false;
    scheduler.resume();
    assert.equal(scheduler.isFatal, false);
    assert.equal(scheduler.state().fault, undefined);
    const d = send('D', 'd0');
    await clock.advance(0);
    assert.equal(d.state, 'fulfilled');
    assert.equal(client.calls.length, 2);
    assert.equal(scheduler.stats.retries, 0, 'a fault is not retried');
  });

  test('the fault also rejects the in-flight requests of jobs with queued work', async () => {
    const fault = fatal();
    const { clock, client, send } = setup({ concurrency: 2, rpm: UNLIMITED }, () => 'hold');
    const a0 = send('A', 'a0');
    const b0 = send('B', 'b0');
    const b1 = send('B', 'b1');
    await clock.advance(0);
    assert.deepEqual(users(client).sort(), ['a0', 'b0']);
    client.calls.find((c) => c.request.user === 'a0')!.settle(fault);
    await clock.advance(0);
    assert.equal(a0.error, fault);
    assert.equal(b1.error, fault);
    assert.equal(b0.error, fault, 'b0 was in flight and B had queued work');
    // b0's answer arriving later changes nothing.
    client.calls.find((c) => c.request.user === 'b0')!.settle();
    await clock.advance(0);
    assert.equal(b0.error, fault);
    assert.equal(client.calls.length, 2);
  });

  // Regression: a request of another job in flight when the fault hits must not be requeued (nothing is sent
  // while the fault stands, so its caller would wait for resume()).
  test('a request in flight when the fault hits, that then fails transiently, is settled (not left waiting for resume())', async () => {
    const fault = fatal();
    const { clock, client, scheduler, send } = setup({ concurrency: 2, rpm: UNLIMITED }, () => 'hold');
    const a = send('A', 'a0');
    const b = send('B', 'b0');
    await clock.advance(0);
    assert.equal(client.calls.length, 2);
    client.calls[0].settle(fault);
    await clock.advance(0);
    assert.equal(a.error, fault);
    client.calls[1].settle(overloaded());
    await clock.advance(600_000);
    assert.equal(b.state, 'rejected', 'job B would otherwise wait for a resume() that may never come');
    assert.equal(scheduler.state().queued, 0);
  });

  test('with faultRetryMs the fault clears after that long on the clock; the next request is sent', async () => {
    const fault = fatal();
    let broken = true;
    const { clock, client, scheduler, send } = setup({ faultRetryMs: 60_000 }, () => (broken ? fault : undefined));
    const a = send('A', 'a0');
    await clock.advance(0);
    assert.equal(a.error, fault);
    await clock.advance(59_999);
    assert.equal(scheduler.isFatal, true);
    assert.equal(scheduler.state().fault, fault.message);
    await assert.rejects(scheduler.send('A', 0, req('a1'), NO_TOKENS), (e) => e === fault);
    await clock.advance(1);
    assert.equal(scheduler.isFatal, false);
    broken = false;
    const b = send('B', 'b0');
    await clock.advance(0);
    assert.equal(b.state, 'fulfilled');
    assert.deepEqual(users(client), ['a0', 'b0']);
  });

  // Regression: state() expires a fault whose faultRetryMs has passed, like send(), pump() and isFatal.
  test('state() stops reporting the fault once faultRetryMs has passed', async () => {
    const fault = fatal();
    const { clock, scheduler, send } = setup({ faultRetryMs: 60_000 }, () => fault);
    send('A', 'a0');
    await clock.advance(0);
    assert.equal(scheduler.state().fault, fault.message);
    await clock.advance(60_000);
    assert.equal(scheduler.state().fault, undefined);
  });

  test('with faultRetryMs, a fault that persists is found again by the next request and refuses for another period', async () => {
    const fault = fatal();
    const { clock, client, scheduler, send } = setup({ faultRetryMs: 1_000 }, () => fault);
    send('A', 'a0');
    await clock.advance(1_000);
    const b = send('B', 'b0');
    await clock.advance(0);
    assert.equal(b.error, fault);
    assert.deepEqual(times(client), [0, 1_000]);
    await clock.advance(999);
    assert.equal(scheduler.isFatal, true);
    await clock.advance(1);
    assert.equal(scheduler.isFatal, false);
  });

  test('resume() before faultRetryMs has passed clears the fault at once', async () => {
    const { clock, scheduler, send } = setup({ faultRetryMs: 60_000 }, (_, n) => (n === 1 ? fatal() : undefined));
    send('A', 'a0');
    await clock.advance(0);
    assert.equal(scheduler.isFatal, true);
    scheduler.resume();
    assert.equal(scheduler.isFatal, false);
    const b = send('B', 'b0');
    await clock.advance(0);
    assert.equal(b.state, 'fulfilled');
  });
});

// ---------- priority and fairness ----------

describe('priority and fairness', () => {
  /** A first request held until released, so everything after it is queued before any is picked. */
  const holdFirst = (_: ClaudeRequest, n: number): Reply => (n === 1 ? 'hold' : undefined);

  test('higher priority goes first, whatever the order of sending', async () => {
    const { clock, client, send } = setup({ rpm: UNLIMITED }, holdFirst);
    send('blocker', 'z0');
    for (const u of ['l0', 'l1', 'l2']) send('low', u, NO_TOKENS, 0);
    for (const u of ['m0', 'm1']) send('mid', u, NO_TOKENS, 3);
    for (const u of ['h0', 'h1']) send('high', u, NO_TOKENS, 5);
    client.calls[0].settle();
    await clock.advance(0);
    assert.deepEqual(users(client), ['z0', 'h0', 'h1', 'm0', 'm1', 'l0', 'l1', 'l2']);
  });

  test('round-robin across jobs of the same priority: a small job is not stuck behind a big one', async () => {
    const { clock, client, send } = setup({ rpm: UNLIMITED }, holdFirst);
    send('blocker', 'z0');
    const big = Array.from({ length: 20 }, (_, i) => send('big', `g${i}`));
    const small = ['s0', 's1'].map((u) => send('small', u));
    client.calls[0].settle();
    await clock.advance(0);
    assert.ok(big.every((w) => w.state === 'fulfilled') && small.every((w) => w.state === 'fulfilled'));
    const sent = users(client).slice(1);
    assert.ok(sent.indexOf('s1') <= 3, `the small job's last request went out at position ${sent.indexOf('s1') + 1}: ${sent.join()}`);
  });

  test('three jobs of the same priority take turns; each job\'s own requests stay in order', async () => {
    const { clock, client, send } = setup({ rpm: UNLIMITED }, holdFirst);
    send('blocker', 'z0');
    for (const job of ['a', 'b', 'c']) for (let i = 0; i < 3; i++) send(job, `${job}${i}`);
    client.calls[0].settle();
    await clock.advance(0);
    const sent = users(client).slice(1);
    assert.equal(sent.length, 9);
    for (let round = 0; round < 3; round++) {
      const turn = sent.slice(round * 3, round * 3 + 3);
      assert.deepEqual(turn.map((u) => u[0]).sort(), ['a', 'b', 'c'], `round ${round + 1}: ${sent.join()}`);
      assert.ok(turn.every((u) => u.endsWith(String(round))), `each job sends its own requests in order: ${sent.join()}`);
    }
  });

  // Regression: the round-robin cursor moves once per pick (it used to move once per priority level visited, so
  // with a higher level skipped, two jobs of the lower level never alternated).
  test('two jobs of the same priority take turns while a higher-priority job waits on a backoff', async () => {
    // The high job's only request backs off for 5 s; meanwhile the two low jobs should alternate.
    const { clock, client, send } = setup({ rpm: UNLIMITED, backoff: { baseMs: 10_000, maxMs: 10_000 } }, (r, n) => (n === 1 ? 'hold' : r.user === 'h0' && n === 2 ? overloaded() : undefined));
    send('blocker', 'z0');
    send('high', 'h0', NO_TOKENS, 5);
    for (const job of ['a', 'b']) for (let i = 0; i < 4; i++) send(job, `${job}${i}`);
    client.calls[0].settle();
    await clock.advance(0);
    const low = users(client).filter((u) => u[0] === 'a' || u[0] === 'b');
    assert.equal(low.length, 8);
    for (let i = 1; i < low.length; i++) assert.notEqual(low[i][0], low[i - 1][0], `the low jobs alternate: ${low.join()}`);
  });

  test('priority survives a retry: a high-priority request due again goes before lower-priority work', async () => {
    const { clock, client, send } = setup({}, () => 'hold');
    const high = send('high', 'h0', NO_TOKENS, 5);
    const low = ['l0', 'l1', 'l2'].map((u) => send('low', u, NO_TOKENS, 1));
    await clock.advance(0);
    assert.deepEqual(users(client), ['h0']);
    client.calls[0].settle(overloaded()); // retry after 50 ms
    await clock.advance(0);
    assert.deepEqual(users(client), ['h0', 'l0'], 'low runs while high backs off');
    await clock.advance(50);
    client.calls[1].settle();
    await clock.advance(0);
    assert.deepEqual(users(client), ['h0', 'l0', 'h0'], 'high is due again and goes first');
    client.calls[2].settle();
    await clock.advance(0);
    assert.equal(high.state, 'fulfilled');
    for (const c of client.calls) if (!c.settled) c.settle();
    await clock.advance(0);
    for (const c of client.calls) if (!c.settled) c.settle();
    await clock.advance(0);
    assert.ok(low.every((w) => w.state === 'fulfilled'));
  });
});

// ---------- cancelJob and close ----------

describe('cancelJob', () => {
  test('rejects the queued and in-flight requests of that job only, with the given reason', async () => {
    const { clock, client, scheduler, send } = setup({ concurrency: 2, rpm: UNLIMITED }, () => 'hold');
    // a0 and b0 take the two slots; a1, a2 and b1 queue behind them.
    const a = [send('A', 'a0')];
    const b = [send('B', 'b0')];
    a.push(send('A', 'a1'), send('A', 'a2'));
    b.push(send('B', 'b1'));
    await clock.advance(0);
    assert.deepEqual(users(client), ['a0', 'b0']);
    const reason = new JobAbortedError('lease_lost', 'lease lost');
    scheduler.cancelJob('A', reason);
    await clock.advance(0);
    for (const w of a) assert.equal(w.error, reason);
    assert.ok(b.every((w) => w.state === 'pending'));
    assert.equal(scheduler.state().queued, 1, 'only b1 is left');

    // The cancelled in-flight request's answer arriving changes nothing; its slot goes to job B.
    client.calls.find((c) => c.request.user === 'a0')!.settle();
    await clock.advance(0);
    assert.equal(a[0].error, reason);
    for (const c of client.calls) if (!c.settled) c.settle();
    await clock.advance(0);
    for (const c of client.calls) if (!c.settled) c.settle();
    await clock.advance(0);
    assert.ok(b.every((w) => w.state === 'fulfilled'));
    assert.ok(!users(client).some((u) => u === 'a1' || u === 'a2'), 'no queued request of A was sent');
    scheduler.cancelJob('unknown', reason); // no-op
  });

  test('a cancelled request in flight is not retried after it fails', async () => {
    for (const failure of [overloaded(), rateLimited(100)]) {
      const { clock, client, scheduler, send } = setup({}, (_, n) => (n === 1 ? 'hold' : undefined));
      const a = send('A', 'a0');
      await clock.advance(0);
      scheduler.cancelJob('A', new JobAbortedError('cancelled', 'cancelled'));
      client.calls[0].settle(failure);
      await clock.advance(60_000);
      assert.equal(client.calls.length, 1, failure.message);
      assert.equal(scheduler.state().queued, 0);
      assert.equal(a.state, 'rejected');
    }
  });

  test('a request waiting on a retry backoff is rejected by cancelJob and never sent again', async () => {
    const { clock, client, scheduler, send } = setup({}, () => overloaded());
    const a = send('A', 'a0');
    await clock.advance(0);
    assert.equal(scheduler.state().queued, 1, 'waiting for its retry');
    const reason = new Error('cancelled');
    scheduler.cancelJob('A', reason);
    await clock.advance(0);
    assert.equal(a.error, reason);
    await clock.advance(60_000);
    assert.equal(client.calls.length, 1);
  });

  test('the job may send again after it was cancelled', async () => {
    const { clock, scheduler, send } = setup();
    scheduler.cancelJob('A', new Error('x'));
    const a = send('A', 'a0');
    await clock.advance(0);
    assert.equal(a.state, 'fulfilled');
  });
});

describe('close', () => {
  test('rejects queued work and every later send with a shutdown; nothing more is sent', async () => {
    const { clock, client, scheduler, send } = setup({}, (_, n) => (n === 1 ? 'hold' : undefined));
    const a = ['a0', 'a1', 'a2'].map((u) => send('A', u));
    const b = send('B', 'b0');
    await clock.advance(0);
    scheduler.close();
    await clock.advance(0);
    for (const w of [...a, b]) {
      assert.equal(w.state, 'rejected');
      assert.ok(w.error instanceof JobAbortedError && w.error.kind === 'shutdown', String(w.error));
    }
    await assert.rejects(scheduler.send('C', 0, req('c0'), NO_TOKENS), (e) => e instanceof JobAbortedError && e.kind === 'shutdown');
    client.calls[0].settle();
    await clock.advance(60_000);
    assert.equal(client.calls.length, 1);
    assert.equal(scheduler.state().queued, 0);
  });

  test('close(reason) rejects with that reason', async () => {
    const { clock, scheduler, send } = setup({}, () => 'hold');
    const a = ['a0', 'a1'].map((u) => send('A', u));
    const reason = new JobAbortedError('fault', 'database down');
    scheduler.close(reason);
    await clock.advance(0);
    for (const w of a) assert.equal(w.error, reason);
  });

  test('an in-flight request that fails after close is rejected with a shutdown, not retried', async () => {
    for (const failure of [overloaded(), rateLimited(100)]) {
      const { clock, client, scheduler, send } = setup({}, () => 'hold');
      const a = send('A', 'a0');
      await clock.advance(0);
      scheduler.close();
      client.calls[0].settle(failure);
      await clock.advance(60_000);
      assert.equal(a.state, 'rejected', failure.message);
      assert.ok(a.error instanceof JobAbortedError && a.error.kind === 'shutdown', String(a.error));
      assert.equal(client.calls.length, 1);
    }
  });

  test('close during a 429 pause cancels the wake-up: nothing is sent when the pause ends', async () => {
    const { clock, client, scheduler, send } = setup({}, (_, n) => (n === 1 ? rateLimited(5_000) : undefined));
    const a = send('A', 'a0');
    await clock.advance(0);
    assert.equal(clock.pendingTimers, 1);
    scheduler.close();
    assert.equal(clock.pendingTimers, 0);
    await clock.advance(60_000);
    assert.equal(client.calls.length, 1);
    assert.ok(a.error instanceof JobAbortedError);
  });
});
