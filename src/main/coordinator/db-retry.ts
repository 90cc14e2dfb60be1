/** Retry a database call through connection problems (PostgreSQL restart, dropped connections) with backoff. */
import { backoffDelayMs } from '../../shared/backoff.ts';
import { sleepOn, type Clock } from '../../shared/clock.ts';
import { DatabaseConnectionError, messageOf } from '../../shared/errors.ts';
import type { Logger } from '../logging/logger.ts';
import { systemClock } from '../scheduler/clock.ts';

export interface DbRetryOptions {
  logger: Logger;
  what: string;
  /** Give up (rethrow) once this many ms have passed. */
  deadlineMs?: number;
  signal?: AbortSignal;
  clock?: Clock;
}

/** Only DatabaseConnectionError is retried here; every other error (fencing, SQL errors, bugs) is rethrown at once. */
export async function withDbRetry<T>(fn: () => Promise<T>, options: DbRetryOptions): Promise<T> {
  const clock = options.clock ?? systemClock;
  const started = clock.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      const elapsed = clock.now() - started;
      if (!(error instanceof DatabaseConnectionError) || options.signal?.aborted || elapsed >= (options.deadlineMs ?? 120_000)) throw error;
      const delay = backoffDelayMs(attempt, { baseMs: 250, maxMs: 5000 });
      options.logger.warn(`🔌 Database unavailable during ${options.what}; retrying in ${delay} ms`, {
        event: 'db_retry',
        what: options.what,
        error: messageOf(error),
        attempt,
      });
      try {
        await sleepOn(clock, delay, options.signal);
      } catch {
        throw error; // aborted while waiting: the connection error is the answer
      }
    }
  }
}
