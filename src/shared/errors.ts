/**
 * Error categories (ARCHITECTURE principle 6).
 * - BadInputError: the job's own input is wrong; fail that job at once, no retry.
 * - RetryableError: transient (network, timeout, 429, 5xx, lost DB connection); retry with backoff.
 * - WorkerFatalError: the worker's configuration/environment is wrong (401/403, unknown model,
 *   dimension mismatch, schema missing); stop claiming, release jobs untouched.
 */
export type ErrorCategory = 'bad_input' | 'retryable' | 'worker_fatal';

export class CategorizedError extends Error {
  readonly category: ErrorCategory;
  constructor(category: ErrorCategory, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.category = category;
    this.name = new.target.name;
  }
}

export class BadInputError extends CategorizedError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('bad_input', message, options);
  }
}

export class RetryableError extends CategorizedError {
  /** Server-advised delay before the next attempt, when known. */
  readonly retryAfterMs: number | undefined;
  constructor(message: string, options?: { cause?: unknown; retryAfterMs?: number }) {
    super('retryable', message, options);
    this.retryAfterMs = options?.retryAfterMs;
  }
}

export class WorkerFatalError extends CategorizedError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('worker_fatal', message, options);
  }
}

export function categoryOf(error: unknown): ErrorCategory {
  if (error instanceof CategorizedError) return error.category;
  return 'retryable';
}

export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
