/**
 * Reading Anthropic's rate-limit response headers (pure).
 *
 * Every Messages API answer (and every 429) may carry, per window:
 *   anthropic-ratelimit-<window>-limit      the window's allowance per minute
 *   anthropic-ratelimit-<window>-remaining  what is left of it now
 *   anthropic-ratelimit-<window>-reset      when it is fully replenished, as an RFC 3339 timestamp
 * for the windows `requests`, `input-tokens`, `output-tokens` and `tokens` (the last one combines input and
 * output where an account has a single token limit), plus `retry-after` (seconds) on a 429 or 529.
 */
import { parseRetryAfterMs, type HeaderGetter } from './rate-limit-headers.ts';

export type { HeaderGetter } from './rate-limit-headers.ts';

export interface LimitWindow {
  limit?: number;
  remaining?: number;
  /** Milliseconds from now until the window's reset time (never negative). */
  resetMs?: number;
}

export interface AnthropicRateLimit {
  requests?: LimitWindow;
  inputTokens?: LimitWindow;
  outputTokens?: LimitWindow;
  tokens?: LimitWindow;
  retryAfterMs?: number;
}

const WINDOWS = [
  ['requests', 'requests'],
  ['inputTokens', 'input-tokens'],
  ['outputTokens', 'output-tokens'],
  ['tokens', 'tokens'],
] as const;

/** A non-negative decimal count ("50", "4000000", "12.5"); hex, exponents, signs and blanks are refused. */
function countHeader(get: HeaderGetter, name: string): number | undefined {
  const raw = get(name);
  if (raw === null || raw === undefined) return undefined;
  const text = raw.trim();
  if (!/^\d+(?:\.\d+)?$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/**
 * Parses an RFC 3339 date-time ("2026-12-02T05:40:12Z", "2026-12-02T05:40:12.5+01:00") to epoch ms.
 * Anything else (a bare date, a missing offset, an HTTP date, out-of-range fields) gives undefined:
 * Date.parse alone accepts far too much.
 */
export function parseRfc3339(value: string | null | undefined): number | undefined {
  if (value === null || value === undefined) return undefined;
  const m = RFC3339.exec(value.trim());
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number);
  const fraction = m[7] === undefined ? 0 : Math.floor(Number(`0.${m[7]}`) * 1000); // whole ms, as Date keeps them
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 60) return undefined;
  // The day must exist in that month (Date.UTC would roll 2026-02-30 over into March).
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day > daysInMonth) return undefined;
  let offsetMinutes = 0;
  if (m[8] === undefined) {
    const offHours = Number(m[10]);
    const offMinutes = Number(m[11]);
    if (offHours > 23 || offMinutes > 59) return undefined;
    offsetMinutes = (m[9] === '-' ? -1 : 1) * (offHours * 60 + offMinutes);
  }
  // A leap second (:60) counts as the first moment of the next minute.
  const utc = Date.UTC(year, month - 1, day, hour, minute, second) + fraction - offsetMinutes * 60_000;
  return Number.isFinite(utc) ? utc : undefined;
}

function readWindow(get: HeaderGetter, header: string, nowMs: number): LimitWindow | undefined {
  const prefix = `anthropic-ratelimit-${header}`;
  const window: LimitWindow = {};
  const limit = countHeader(get, `${prefix}-limit`);
  const remaining = countHeader(get, `${prefix}-remaining`);
  const resetAt = parseRfc3339(get(`${prefix}-reset`));
  if (limit !== undefined) window.limit = limit;
  if (remaining !== undefined) window.remaining = remaining;
  if (resetAt !== undefined) window.resetMs = Math.max(0, resetAt - nowMs);
  return Object.keys(window).length > 0 ? window : undefined;
}

/**
 * The rate limits a response reports. Windows without a usable header are left out, so `{}` means the
 * response said nothing about limits.
 */
export function parseAnthropicRateLimit(get: HeaderGetter, nowMs: number = Date.now()): AnthropicRateLimit {
  const result: AnthropicRateLimit = {};
  for (const [key, header] of WINDOWS) {
    const window = readWindow(get, header, nowMs);
    if (window) result[key] = window;
  }
  const retryAfterMs = parseRetryAfterMs(get, nowMs);
  if (retryAfterMs !== undefined) result.retryAfterMs = retryAfterMs;
  return result;
}
