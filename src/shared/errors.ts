/**
 * Every error the outcome policy distinguishes, as a class. Stores, providers and the scheduler classify what
 * they see (driver codes, HTTP statuses, response bodies) once, at the edge, into one of these; everything
 * after that decides by `instanceof`, never by reading `message`.
 *
 * Categories:
 * - bad_input: the job's own input is wrong (unparseable transcript, a 400 about one of its chunks): fail the
 *   job at once, no retry.
 * - retryable: transient (network, timeouts, 5xx, lost database connection, a provider answer that made no
 *   sense): retry the job later with backoff, using an attempt.
 * - rate_limited: the provider asks us to slow down. Backpressure, not failure: never uses an attempt.
 * - worker_fatal: the worker's configuration or environment is wrong (credentials, unknown model, dimension
 *   mismatch, schema missing, damaged storage): stop claiming, hand jobs back untouched, re-check.
 * - lease_lost: another worker (or a cancel) owns the job now; nothing is ours to write.
 * - aborted: this worker stopped the job itself (shutdown, fault elsewhere); hand it back untouched.
 * - bug: anything not of these classes. A programming error is not transient: the job fails with a message
 *   saying so, and the stack goes to the log.
 */
import type { RateLimitSnapshot } from './rate-limit-headers.ts';

export type ErrorCategory = 'bad_input' | 'retryable' | 'rate_limited' | 'worker_fatal' | 'lease_lost' | 'aborted' | 'bug';

export abstract class CategorizedError extends Error {
  abstract readonly category: ErrorCategory;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The job's input is wrong; retrying cannot help. */
export class BadInputError extends CategorizedError {
  readonly category = 'bad_input' as const;
}

/** Transient: worth another try later. */
export class RetryableError extends CategorizedError {
  readonly category: ErrorCategory = 'retryable';
  /** Server-advised delay before the next attempt, when known. */
  readonly retryAfterMs: number | undefined;
  constructor(message: string, options?: { cause?: unknown; retryAfterMs?: number }) {
    super(message, options);
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/** The database could not be reached or dropped the connection (restart, failover, slots exhausted). */
export class DatabaseConnectionError extends RetryableError {
  /** The driver's or server's code (ECONNREFUSED, 57P01, 53300, …), when there was one. */
  readonly code: string | undefined;
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(message, options);
    this.code = options?.code;
  }
}

/** A provider answered with a transient failure (5xx, 408, 409, timeout, unreachable). */
export class ProviderUnavailableError extends RetryableError {
  readonly status: number | undefined;
  constructor(message: string, options?: { cause?: unknown; retryAfterMs?: number; status?: number }) {
    super(message, options);
    this.status = options?.status;
  }
}

/** A provider's answer broke its contract (wrong count, duplicate or missing indexes, zero vectors, bad JSON). */
export class ProviderResponseError extends RetryableError {}

/** Which budget a rate limit is about. */
export type RateLimitScope = 'requests' | 'tokens' | 'unknown';

/**
 * The provider is throttling (429, or headers saying nothing is left). The scheduler waits it out; it reaches
 * the job only when the worker is shutting down.
 */
export class RateLimitError extends RetryableError {
  override readonly category = 'rate_limited' as const;
  readonly status: number;
  readonly scope: RateLimitScope;
  readonly rateLimit: RateLimitSnapshot;
  /** The request alone is larger than the limit allows: send it in smaller pieces, not again unchanged. */
  readonly requestTooLarge: boolean;
  constructor(
    message: string,
    options: { cause?: unknown; retryAfterMs?: number; status?: number; scope?: RateLimitScope; rateLimit?: RateLimitSnapshot; requestTooLarge?: boolean },
  ) {
    super(message, options);
    this.status = options.status ?? 429;
    this.scope = options.scope ?? 'unknown';
    this.rateLimit = options.rateLimit ?? {};
    this.requestTooLarge = options.requestTooLarge ?? false;
  }
}

/** The worker's own configuration or environment is wrong; no job can succeed until it is fixed. */
export class WorkerFatalError extends CategorizedError {
  readonly category = 'worker_fatal' as const;
  /** The setting to fix (OPENAI_API_KEY, DATABASE_URL, RAG_DATA_DIR, …), when one is to blame. */
  readonly setting: string | undefined;
  constructor(message: string, options?: { cause?: unknown; setting?: string }) {
    super(message, options);
    this.setting = options?.setting;
  }
}

/** Another live process holds the embedded database (RAG_DATA_DIR); it may serve a control socket. */
export class EmbeddedInUseError extends WorkerFatalError {
  readonly ownerPid: number;
  readonly dataDir: string;
  constructor(message: string, options: { ownerPid: number; dataDir: string }) {
    super(message, { setting: 'RAG_DATA_DIR' });
    this.ownerPid = options.ownerPid;
    this.dataDir = options.dataDir;
  }
}

/** The database refused our credentials (wrong password, unknown role, no access to the database). */
export class DatabaseAuthError extends WorkerFatalError {}

/** The schema is missing, outdated, or lacks pgvector. */
export class SchemaError extends WorkerFatalError {}

/** Stored data is damaged (embedded data directory: missing WAL, bad control file, corrupted pages). */
export class StorageCorruptionError extends WorkerFatalError {}

/** A fenced write found that this worker no longer holds the job's lease (SQLSTATE RW001). */
export class LeaseLostError extends CategorizedError {
  readonly category = 'lease_lost' as const;
}

/** Why this worker stopped a job itself. */
export type AbortKind = 'lease_lost' | 'cancelled' | 'shutdown' | 'fault' | 'finished';

/** The abort reason of a job's AbortSignal. */
export class JobAbortedError extends CategorizedError {
  readonly category: ErrorCategory;
  readonly kind: AbortKind;
  constructor(kind: AbortKind, message: string) {
    super(message);
    this.kind = kind;
    this.category = kind === 'lease_lost' || kind === 'cancelled' ? 'lease_lost' : 'aborted';
  }
}

export function categoryOf(error: unknown): ErrorCategory {
  if (error instanceof CategorizedError) return error.category;
  return 'bug';
}

export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** The text a job's error_detail gets for an error of unknown type (a bug in rag-worker, not a transient fault). */
export function describeBug(error: unknown): string {
  const name = error instanceof Error ? error.name : typeof error;
  return `internal error in rag-worker (${name}: ${messageOf(error)}); this is a bug, not retried — the stack is in the worker's log`;
}
