/**
 * The one decision of what a job's failure means: pure, from (error, abort reason, attempts, limits, now) to
 * an outcome. The coordinator only carries the outcome out (SQL, logs, events).
 *
 * Order of precedence:
 * 1. The lease is gone (a heartbeat found the job taken over or cancelled, or a fenced write was refused):
 *    `lost`, whatever else failed: the row is no longer ours to write.
 * 2. This worker stopped the job itself (shutdown, a worker-level fault noticed elsewhere): `release`, the
 *    attempt is given back — even when the job was failing, since the failure may be the abort's echo.
 * 3. A worker-level fault of this job's own (credentials, schema, storage): `release` and enter the fault.
 * 4. Rate limiting that reached the job (only when the scheduler was shut down mid-wait): `release`, no attempt.
 * 5. Bad input: `fail` now. A bug (an error of no known type): `fail` now, saying it is a bug.
 * 6. Transient: `retry` at now + backoff (server-advised delay wins), or `fail` on the last attempt.
 */
import { retryDelayMs, type BackoffPolicy } from './backoff.ts';
import {
  BadInputError,
  describeBug,
  JobAbortedError,
  LeaseLostError,
  messageOf,
  RateLimitError,
  RetryableError,
  WorkerFatalError,
} from './errors.ts';
import { oneLine } from './redact.ts';

export interface OutcomeLimits {
  /** Attempts the job may use (its own max_attempts, or the worker's RAG_MAX_ATTEMPTS). */
  maxAttempts: number;
  backoff: BackoffPolicy;
  /** Values to redact from every detail (API keys, passwords). */
  secrets: readonly string[];
}

export interface OutcomeInput {
  error: unknown;
  /** The job's AbortSignal reason, when it was aborted. */
  abortReason?: unknown;
  /** Attempts used so far, counting the current one (claims count attempts). */
  attempts: number;
  limits: OutcomeLimits;
  now: number;
  random?: () => number;
}

export type Outcome =
  | { kind: 'lost'; reason: string }
  | { kind: 'release'; reason: string; fault?: WorkerFatalError }
  | { kind: 'retry'; delayMs: number; runAt: number; detail: string; category: 'retryable' }
  | { kind: 'fail'; detail: string; category: 'bad_input' | 'retryable' | 'bug'; logStack: boolean };

export function decideOutcome(input: OutcomeInput): Outcome {
  const { error, abortReason, attempts, limits, now } = input;
  const secrets = limits.secrets;
  const abort = abortReason instanceof JobAbortedError ? abortReason : error instanceof JobAbortedError ? error : undefined;

  if (abort && abort.category === 'lease_lost') return { kind: 'lost', reason: abort.message };
  if (error instanceof LeaseLostError) return { kind: 'lost', reason: oneLine(error.message, secrets, 300) };
  if (abort) return { kind: 'release', reason: abort.message };

  if (error instanceof WorkerFatalError) {
    return { kind: 'release', reason: oneLine(`worker-level fault: ${error.message}`, secrets, 300), fault: error };
  }
  if (error instanceof RateLimitError) {
    return { kind: 'release', reason: oneLine(`rate limited while stopping: ${error.message}`, secrets, 300) };
  }
  if (error instanceof BadInputError) {
    return { kind: 'fail', detail: oneLine(error.message, secrets), category: 'bad_input', logStack: false };
  }
  if (!(error instanceof RetryableError)) {
    return { kind: 'fail', detail: oneLine(describeBug(error), secrets), category: 'bug', logStack: true };
  }
  const detail = oneLine(messageOf(error), secrets);
  if (attempts >= limits.maxAttempts) return { kind: 'fail', detail, category: 'retryable', logStack: false };
  const delayMs = retryDelayMs(attempts, limits.backoff, error.retryAfterMs, input.random);
  return { kind: 'retry', delayMs, runAt: now + delayMs, detail, category: 'retryable' };
}
