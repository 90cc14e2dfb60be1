/**
 * The transport every store uses: PostgreSQL over `pg`, or the embedded PGlite. Stores only call the SQL
 * functions of the migration (and read-only selects); this file also turns driver errors into categories.
 */
import { RetryableError, WorkerFatalError } from '../../shared/errors.ts';

export interface SqlClient {
  readonly kind: 'postgres' | 'embedded';
  /** Whether LISTEN/NOTIFY wakes workers on other connections (false for PGlite: one process only). */
  readonly crossProcessNotify: boolean;
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Runs a script of several statements (migrations). */
  exec(sql: string): Promise<void>;
  /** Subscribe to a NOTIFY channel; returns an unsubscribe function. Reconnects on its own. */
  listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/** Thrown when a fenced write finds that this worker no longer holds the job's lease (SQLSTATE RW001). */
export class LeaseLostError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LeaseLostError';
  }
}

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH']);

/** Map a driver error to the worker's categories. Unknown errors pass through unchanged. */
export function classifyDbError(error: unknown): unknown {
  const e = error as { code?: string; message?: string };
  const code = e?.code ?? '';
  const message = e?.message ?? String(error);
  if (code === 'RW001') return new LeaseLostError(message);
  if (CONNECTION_CODES.has(code) || code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300') {
    return new RetryableError(`database connection problem (${code}): ${message}`, { cause: error });
  }
  if (/Connection terminated|connection (is )?(closed|lost)|Client has encountered a connection error|timeout exceeded when trying to connect/i.test(message)) {
    return new RetryableError(`database connection problem: ${message}`, { cause: error });
  }
  if (code === '42P01' || code === '42883') {
    return new WorkerFatalError(`the rag-worker schema is missing or outdated (${message}): run \`rag-worker migrate\``, { cause: error });
  }
  if (code === '58P01' || /extension "vector"|type "vector" does not exist/i.test(message)) {
    return new WorkerFatalError(`pgvector is not available in this database (${message}): install the vector extension`, { cause: error });
  }
  return error;
}
