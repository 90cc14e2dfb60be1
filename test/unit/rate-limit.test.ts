/**
 * Pacing primitives, all pure: backoff (src/shared/backoff.ts), the per-minute token bucket
 * (src/shared/token-bucket.ts) and rate-limit header parsing (src/shared/rate-limit-headers.ts).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backoffDelayMs, retryDelayMs, type BackoffPolicy } from '../../src/shared/backoff.ts';
import { headerGetter, parseGoDuration, parseRateLimitHeaders, parseRetryAfterMs } from '../../src/shared/rate-limit-headers.ts';
import { TokenBucket } from '../../src/shared/token-bucket.ts';

const POLICY: BackoffPolicy = { baseMs: 100, maxMs: 1000 };
const zero = (): number => 0;
const one = (): number => 1;
const half = (): number => 0.5;

describe('backoff', () => {
  test('grows by doubling from baseMs (no jitter at the top of the range)', () => {
    assert.deepEqual([1, 2, 3, 4].map((a) => backoffDelayMs(a, POLICY, one)), [100, 200, 400, 800]);
  });

  test('is capped at maxMs', () => {
    assert.deepEqual([5, 6, 20, 1000].map((a) => backoffDelayMs(a, POLICY, one)), [1000, 1000, 1000, 1000]);
  });

  test('equal jitter: always within [step/2, step], the random source decides where', () => {
    assert.deepEqual([1, 2, 3, 4, 5].map((a) => backoffDelayMs(a, POLICY, zero)), [50, 100, 200, 400, 500]);
    assert.deepEqual([1, 2, 3].map((a) => backoffDelayMs(a, POLICY, half)), [75, 150, 300]);
    let seed = 7;
    const lcg = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let attempt = 1; attempt <= 12; attempt++) {
      const step = Math.min(POLICY.maxMs, POLICY.baseMs * 2 ** (attempt - 1));
      for (let i = 0; i < 50; i++) {
        const d = backoffDelayMs(attempt, POLICY, lcg);
        assert.ok(d >= step / 2 && d <= step, `attempt ${attempt}: ${d} not in [${step / 2}, ${step}]`);
      }
    }
  });

  test('attempt 0 or below counts as the first retry', () => {
    assert.equal(backoffDelayMs(0, POLICY, one), 100);
    assert.equal(backoffDelayMs(-3, POLICY, one), 100);
  });

  test('a zero policy gives zero delays', () => {
    assert.equal(backoffDelayMs(5, { baseMs: 0, maxMs: 0 }, one), 0);
  });

  test('uses Math.random by default, staying within bounds', () => {
    for (let i = 0; i < 100; i++) {
      const d = backoffDelayMs(3, POLICY);
      assert.ok(d >= 200 && d <= 400, String(d));
    }
  });
});

describe('retryDelayMs', () => {
  test('honours retry-after, plus up to 10% + 20 ms of jitter', () => {
    assert.equal(retryDelayMs(1, POLICY, 2000, zero), 2000);
    assert.equal(retryDelayMs(1, POLICY, 2000, one), 2220);
    assert.equal(retryDelayMs(9, POLICY, 0, one), 20, 'retry-after 0 still spreads clients a little');
  });

  test('the jitter on top of retry-after is capped at 1 s', () => {
    assert.equal(retryDelayMs(1, POLICY, 60_000, one), 61_000);
  });

  test('retry-after wins even above backoff\'s maxMs (the server knows best)', () => {
    assert.equal(retryDelayMs(1, POLICY, 30_000, zero), 30_000);
  });

  test('without a usable retry-after, falls back to backoff', () => {
    for (const bad of [undefined, Number.NaN, -1, Number.POSITIVE_INFINITY]) {
      assert.equal(retryDelayMs(3, POLICY, bad, one), 400, String(bad));
    }
  });
});

describe('TokenBucket (burstMs 60,000: a per-minute bucket)', () => {
  const MINUTE = 60_000;
  test('starts full: the whole per-minute limit is available at once', () => {
    const b = new TokenBucket(60, 0, MINUTE);
    assert.equal(b.limitPerMinute, 60);
    assert.equal(b.waitMs(60, 0), 0);
  });

  test('wait = missing amount at limit/60,000 per ms, rounded up', () => {
    const b = new TokenBucket(60, 0, MINUTE); // 1 per second
    b.take(60, 0);
    assert.equal(b.waitMs(1, 0), 1000);
    assert.equal(b.waitMs(3, 0), 3000);
    const t = new TokenBucket(7, 0, MINUTE);
    t.take(7, 0);
    assert.equal(t.waitMs(1, 0), Math.ceil(60_000 / 7));
  });

  test('refills continuously and never above the limit', () => {
    const b = new TokenBucket(60, 0, MINUTE);
    b.take(60, 0);
    assert.equal(b.waitMs(1, 500), 500);
    assert.equal(b.waitMs(1, 1000), 0);
    assert.equal(b.waitMs(60, 60_000), 0);
    assert.equal(b.waitMs(60, 10 * 60_000), 0);
    b.take(60, 10 * 60_000);
    assert.equal(b.waitMs(1, 10 * 60_000), 1000, 'idle time does not bank more than a full bucket');
  });

  test('time going backwards does not add tokens', () => {
    const b = new TokenBucket(60, 10_000, MINUTE);
    b.take(60, 10_000);
    assert.equal(b.waitMs(1, 5_000), 1000);
  });

  test('an amount above the capacity waits for a full bucket, then borrows ahead (the provider counts it all)', () => {
    const b = new TokenBucket(1000, 0, MINUTE);
    b.take(100, 0);
    assert.equal(b.waitMs(5000, 0), 6000);
    assert.equal(b.waitMs(5000, 6000), 0);
    b.take(5000, 6000);
    assert.equal(b.waitMs(1000, 6000), 5 * 60_000, 'the 4,000 borrowed are paid back before a full bucket again');
  });

  test('refund gives back what was taken, never above the limit', () => {
    const b = new TokenBucket(60, 0, MINUTE);
    b.take(10, 0);
    b.refund(10, 0);
    assert.equal(b.waitMs(60, 0), 0);
    b.refund(100, 0);
    b.take(60, 0);
    assert.equal(b.waitMs(1, 0), 1000);
  });

  test('sync adopts the provider\'s limit (scaling the level) and its remaining count', () => {
    const b = new TokenBucket(100, 0, MINUTE);
    b.take(50, 0); // half full
    b.sync(200, undefined, 0);
    assert.equal(b.limitPerMinute, 200);
    assert.equal(b.waitMs(100, 0), 0);
    assert.equal(b.waitMs(101, 0), Math.ceil(60_000 / 200));
    b.sync(undefined, 10, 0);
    assert.equal(b.waitMs(10, 0), 0);
    assert.equal(b.waitMs(11, 0), 300);
  });

  test('sync never raises the level above what the provider says is left, nor believes a bigger remaining', () => {
    const b = new TokenBucket(100, 0, MINUTE);
    b.take(90, 0);
    b.sync(100, 80, 0);
    assert.equal(b.waitMs(11, 0), 600, 'still 10 left, not 80');
    b.sync(0, -5, 0);
    assert.equal(b.limitPerMinute, 100, 'a zero limit is ignored');
    assert.equal(b.waitMs(10, 0), 0, 'a negative remaining is ignored');
  });

  test('drain: nothing is available until forMs has passed', () => {
    const b = new TokenBucket(60_000, 0, MINUTE); // 1 per ms
    b.drain(0, 5000);
    assert.equal(b.waitMs(1, 0), 5001);
    assert.equal(b.waitMs(1, 4999), 2);
    assert.equal(b.waitMs(1, 5001), 0);
  });

  test('drain does not raise an already lower level', () => {
    const b = new TokenBucket(60, 0, MINUTE);
    b.take(60, 0);
    b.take(60, 0); // level -60
    b.drain(0, 1000); // would be -1
    assert.equal(b.waitMs(1, 0), 61_000);
  });
});

describe('Go durations (x-ratelimit-reset-*)', () => {
  const cases: Array<[string | null | undefined, number | undefined]> = [
    ['6m0s', 360_000],
    ['1h2m3.5s', 3_723_500],
    ['12ms', 12],
    ['0s', 0],
    ['1.5s', 1500],
    ['1s', 1000],
    ['1m30s', 90_000],
    ['1h0m0s', 3_600_000],
    ['2m5ms', 120_005],
    ['500us', 0.5],
    ['500µs', 0.5],
    ['250ns', 0.00025],
    ['2', 2000],
    ['0.5', 500],
    [' 6m0s ', 360_000],
    ['junk', undefined],
    ['', undefined],
    ['   ', undefined],
    [null, undefined],
    [undefined, undefined],
    ['5x', undefined],
    ['1s junk', undefined],
    ['1h 2m', undefined],
    ['-1s', undefined],
    ['s', undefined],
    ['1.2.3s', undefined],
  ];
  for (const [input, want] of cases) {
    test(`${JSON.stringify(input)} → ${want}`, () => {
      const got = parseGoDuration(input);
      if (want === undefined || got === undefined) assert.equal(got, want);
      else assert.ok(Math.abs(got - want) < 1e-9, `${got} ≠ ${want}`);
    });
  }
});

describe('retry-after headers', () => {
  const get = (h: Record<string, string>) => headerGetter(h);
  const NOW = Date.parse('2025-01-01T00:00:00Z');

  test('retry-after-ms', () => {
    assert.equal(parseRetryAfterMs(get({ 'retry-after-ms': '250' }), NOW), 250);
    assert.equal(parseRetryAfterMs(get({ 'retry-after-ms': '0' }), NOW), 0);
    assert.equal(parseRetryAfterMs(get({ 'retry-after-ms': '12.5' }), NOW), 12.5);
  });

  test('retry-after in seconds', () => {
    assert.equal(parseRetryAfterMs(get({ 'retry-after': '3' }), NOW), 3000);
    assert.equal(parseRetryAfterMs(get({ 'retry-after': '1.5' }), NOW), 1500);
  });

  test('retry-after-ms wins over retry-after', () => {
    assert.equal(parseRetryAfterMs(get({ 'retry-after': '2', 'retry-after-ms': '1500' }), NOW), 1500);
  });

  test('a bad retry-after-ms falls back to retry-after', () => {
    assert.equal(parseRetryAfterMs(get({ 'retry-after-ms': 'soon', 'retry-after': '2' }), NOW), 2000);
    assert.equal(parseRetryAfterMs(get({ 'retry-after-ms': '-5', 'retry-after': '2' }), NOW), 2000);
  });

  test('retry-after as an HTTP date, relative to now; a past date means now', () => {
    assert.equal(parseRetryAfterMs(get({ 'retry-after': 'Wed, 01 Jan 2025 00:00:10 GMT' }), NOW), 10_000);
    assert.equal(parseRetryAfterMs(get({ 'retry-after': 'Tue, 31 Dec 2024 23:59:00 GMT' }), NOW), 0);
  });

  test('absent, empty or junk: undefined', () => {
    assert.equal(parseRetryAfterMs(get({}), NOW), undefined);
    assert.equal(parseRetryAfterMs(get({ 'retry-after': '' }), NOW), undefined);
    assert.equal(parseRetryAfterMs(get({ 'retry-after': 'later please' }), NOW), undefined);
  });

  test('junk that V8\'s lenient Date.parse accepts is not a date either', () => {
    for (const junk of ['-3', 'Retry in 5', 'abc 1', '1 2']) {
      assert.equal(parseRetryAfterMs(get({ 'retry-after': junk }), NOW), undefined, JSON.stringify(junk));
    }
  });
});

describe('parseRateLimitHeaders and headerGetter', () => {
  const OPENAI = {
    'x-ratelimit-limit-requests': '3000',
    'x-ratelimit-limit-tokens': '1000000',
    'x-ratelimit-remaining-requests': '2999',
    'x-ratelimit-remaining-tokens': '999850',
    'x-ratelimit-reset-requests': '20ms',
    'x-ratelimit-reset-tokens': '6m0s',
    'retry-after-ms': '40',
  };

  test('reads every OpenAI header', () => {
    assert.deepEqual(parseRateLimitHeaders(headerGetter(OPENAI)), {
      limitRequests: 3000,
      limitTokens: 1_000_000,
      remainingRequests: 2999,
      remainingTokens: 999_850,
      resetRequestsMs: 20,
      resetTokensMs: 360_000,
      retryAfterMs: 40,
    });
  });

  test('absent or junk headers are omitted, not undefined-valued keys', () => {
    const s = parseRateLimitHeaders(headerGetter({ 'x-ratelimit-limit-requests': 'many', 'x-ratelimit-remaining-tokens': '5' }));
    assert.deepEqual(s, { remainingTokens: 5 });
    assert.deepEqual(Object.keys(parseRateLimitHeaders(headerGetter(undefined))), []);
  });

  test('headerGetter reads a fetch Headers object', () => {
    const h = new Headers(OPENAI);
    assert.equal(parseRateLimitHeaders(headerGetter(h)).limitTokens, 1_000_000);
  });

  test('headerGetter reads a plain record case-insensitively, arrays by their first value', () => {
    const g = headerGetter({ 'Retry-After': '7', 'X-Multi': ['a', 'b'], 'x-null': null });
    assert.equal(g('retry-after'), '7');
    assert.equal(g('x-multi'), 'a');
    assert.equal(g('x-null'), undefined);
    assert.equal(g('missing'), undefined);
    assert.equal(headerGetter(null)('x'), undefined);
  });
});

describe('TokenBucket (default: a one-second burst)', () => {
  test('holds one second of the per-minute limit and refills at limit/minute', () => {
    const b = new TokenBucket(900_000, 0);
    assert.equal(b.capacity, 15_000);
    assert.equal(b.waitMs(15_000, 0), 0);
    b.take(15_000, 0);
    assert.equal(b.waitMs(15_000, 0), 1000);
    assert.equal(b.waitMs(1_500, 0), 100);
    assert.equal(b.waitMs(15_000, 60_000), 0);
    b.take(15_000, 60_000);
    assert.equal(b.waitMs(1, 60_000), 1, 'idle time banks one second, not a minute');
  });

  test('a steady sender is held to the limit: 60 s of sends take at most limit + one burst', () => {
    const b = new TokenBucket(150_000, 0);
    let sent = 0;
    for (let t = 0; t <= 60_000; t += 10) {
      if (b.waitMs(1_000, t) === 0) {
        b.take(1_000, t);
        sent += 1_000;
      }
    }
    assert.ok(sent <= 150_000 + 2_500, `sent ${sent}`);
    assert.ok(sent >= 150_000 * 0.98, `sent ${sent}`);
  });
});

describe('TokenBucket burst learned from headers', () => {
  test('a remaining count above our one-second burst reveals a larger provider bucket, which becomes ours', () => {
    const b = new TokenBucket(900_000, 0);
    assert.equal(b.capacity, 15_000);
    b.sync(900_000, 600_000, 0);
    assert.equal(b.capacity, 600_000);
    assert.equal(b.waitMs(600_000, 0), 0);
  });

  test('a provider with a one-second burst never shows more than it: the bucket stays one second', () => {
    const b = new TokenBucket(900_000, 0);
    b.take(10_000, 0);
    b.sync(900_000, 12_000, 100);
    assert.equal(b.capacity, 15_000);
    assert.ok(b.waitMs(6_500, 100) === 0 && b.waitMs(6_600, 100) > 0, 'and a larger remaining than our level is not believed');
  });
});

describe('TokenBucket shares', () => {
  test('a share scales refill and capacity; sync keeps the account\'s limit and does not mistake it for a larger burst', () => {
    const b = new TokenBucket(60_000, 0); // 1,000 per second, burst one second
    b.setShare(0.25, 0);
    assert.equal(b.capacity, 250);
    b.take(250, 0);
    assert.equal(b.waitMs(250, 0), 1_000); // refills at 250/s
    // The account's bucket shows 900 left: more than our share's capacity but not more than the account's burst.
    b.sync(60_000, 900, 1_000);
    assert.equal(b.capacity, 250);
    assert.equal(b.limitPerMinute, 60_000);
    // An account bucket larger than a second's burst is still recognised.
    b.sync(60_000, 4_000, 1_000);
    assert.equal(b.capacity, 1_000);
    b.setShare(1, 1_000);
    assert.equal(b.capacity, 4_000);
  });
});
