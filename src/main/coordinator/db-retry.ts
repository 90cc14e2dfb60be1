/** Retry a database call through connection problems (PostgreSQL restart, dropped connections) with backoff. */
import { backoffDelayMs } from '../../shared/backoff.ts';
import { categoryOf, messageOf } from '../../shared/errors.ts';
import type { Logger } from '../logging/logger.ts';
import { LeaseLostError } from '../stores/sql-client.ts';

export interface DbRetryOptions {
  logger: Logger;
  what: string;
  /** Give up (rethrow) once this many ms have passed. */
  deadlineMs?: number;
  signal?: AbortSignal;
}

export async function withDbRetry<T>(fn: () => Promise<T>, options: DbRetryOptions): Promise<T> {
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      const retryable = !(error instanceof LeaseLostError) && categoryOf(error) === 'retryable' && isConnectionProblem(error);
      const elapsed = Date.now() - started;
      if (!retryable || options.signal?.aborted || elapsed >= (options.deadlineMs ?? 120_000)) throw error;
      const delay = backoffDelayMs(attempt, { baseMs: 250, maxMs: 5000 });
      options.logger.warn(`🔌 Database unavailable during ${options.what}; retrying in ${delay} ms`, { error: messageOf(error), attempt });
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

function isConnectionProblem(error: unknown): boolean {
  return /database connection problem/.test(messageOf(error));
}
