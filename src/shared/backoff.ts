/** Exponential backoff with jitter (pure; pass the random source for deterministic tests). */
export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

/**
 * Delay before retry number `attempt` (1 = first retry): base·2^(attempt-1), capped at max, with "equal jitter"
 * (half fixed, half random) so that many workers failing together do not retry in lockstep.
 */
export function backoffDelayMs(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const exp = policy.baseMs * 2 ** Math.max(0, attempt - 1);
  const capped = Math.min(policy.maxMs, exp);
  return Math.round(capped / 2 + (capped / 2) * random());
}

/** A server-advised delay wins over our own backoff, plus a little jitter so clients do not stampede. */
export function retryDelayMs(attempt: number, policy: BackoffPolicy, retryAfterMs: number | undefined, random: () => number = Math.random): number {
  if (retryAfterMs !== undefined && Number.isFinite(retryAfterMs) && retryAfterMs >= 0) {
    return Math.round(retryAfterMs + Math.min(1000, retryAfterMs * 0.1 + 20) * random());
  }
  return backoffDelayMs(attempt, policy, random);
}
