/**
 * Reading the provider's rate-limit headers (OpenAI style):
 * x-ratelimit-limit-requests / -tokens, x-ratelimit-remaining-requests / -tokens,
 * x-ratelimit-reset-requests / -tokens (Go durations such as "6m0s", "1s", "12ms", "1h2m3.5s"),
 * retry-after (seconds or an HTTP date) and retry-after-ms.
 */
export interface RateLimitSnapshot {
  limitRequests?: number;
  limitTokens?: number;
  remainingRequests?: number;
  remainingTokens?: number;
  resetRequestsMs?: number;
  resetTokensMs?: number;
  retryAfterMs?: number;
}

export type HeaderGetter = (name: string) => string | null | undefined;

const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, 'µs': 0.001, ns: 0.000001 };

/** Parses a Go-style duration ("6m0s", "12ms", "1.5s", "2h3m") to milliseconds; a bare number is seconds. */
export function parseGoDuration(value: string | null | undefined): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (text === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)/g;
  let total = 0;
  let consumed = 0;
  for (const match of text.matchAll(re)) {
    total += Number(match[1]) * UNIT_MS[match[2]];
    consumed += match[0].length;
  }
  return consumed === text.length ? total : undefined;
}

function numberHeader(get: HeaderGetter, name: string): number | undefined {
  const raw = get(name);
  if (raw === null || raw === undefined || raw.trim() === '') return undefined;
  const n = Number(raw);
  return Number.isFinite(n) ? n : undefined;
}

/** The retry delay a response asks for, in ms (retry-after-ms wins over retry-after). */
export function parseRetryAfterMs(get: HeaderGetter, nowMs: number = Date.now()): number | undefined {
  const ms = numberHeader(get, 'retry-after-ms');
  if (ms !== undefined && ms >= 0) return ms;
  const raw = get('retry-after');
  if (raw === null || raw === undefined || raw.trim() === '') return undefined;
  const seconds = Number(raw);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  // Only an HTTP-date (IMF-fixdate, e.g. "Wed, 21 Oct 2015 07:28:00 GMT"): Date.parse accepts far too much.
  if (!/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(raw.trim())) return undefined;
  const date = Date.parse(raw);
  return Number.isFinite(date) ? Math.max(0, date - nowMs) : undefined;
}

export function parseRateLimitHeaders(get: HeaderGetter, nowMs?: number): RateLimitSnapshot {
  const snapshot: RateLimitSnapshot = {
    limitRequests: numberHeader(get, 'x-ratelimit-limit-requests'),
    limitTokens: numberHeader(get, 'x-ratelimit-limit-tokens'),
    remainingRequests: numberHeader(get, 'x-ratelimit-remaining-requests'),
    remainingTokens: numberHeader(get, 'x-ratelimit-remaining-tokens'),
    resetRequestsMs: parseGoDuration(get('x-ratelimit-reset-requests')),
    resetTokensMs: parseGoDuration(get('x-ratelimit-reset-tokens')),
    retryAfterMs: parseRetryAfterMs(get, nowMs),
  };
  for (const key of Object.keys(snapshot) as (keyof RateLimitSnapshot)[]) {
    if (snapshot[key] === undefined) delete snapshot[key];
  }
  return snapshot;
}

/** A HeaderGetter over a fetch Headers object, a plain record, or nothing. */
export function headerGetter(headers: unknown): HeaderGetter {
  if (headers && typeof (headers as Headers).get === 'function') {
    return (name) => (headers as Headers).get(name);
  }
  if (headers && typeof headers === 'object') {
    const lower = new Map(Object.entries(headers as Record<string, unknown>).map(([k, v]) => [k.toLowerCase(), v]));
    return (name) => {
      const v = lower.get(name.toLowerCase());
      return Array.isArray(v) ? String(v[0]) : v === undefined || v === null ? undefined : String(v);
    };
  }
  return () => undefined;
}
