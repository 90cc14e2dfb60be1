/**
 * The transport every store uses: PostgreSQL over `pg`, or the embedded PGlite. Stores only call the SQL
 * functions of the migration (and read-only selects); this file also turns driver errors into categories.
 */
import { DatabaseConnectionError, LeaseLostError, SchemaError } from '../../shared/errors.ts';

export interface QueryOptions {
  lane?: 'jobs' | 'control';
}

export interface SqlClient {
  readonly kind: 'postgres' | 'embedded';
  /** Whether LISTEN/NOTIFY wakes workers on other connections (false for PGlite: one process only). */
  readonly crossProcessNotify: boolean;
  /**
   * Runs one statement. lane 'control' is for lease upkeep (heartbeats, releases): on PostgreSQL it has a
   * connection of its own, so it never waits behind job queries for a pool slot.
   */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[], options?: QueryOptions): Promise<T[]>;
  /** Runs a script of several statements (migrations). */
  exec(sql: string): Promise<void>;
  /** Subscribe to a NOTIFY channel; returns an unsubscribe function. Reconnects on its own. */
  listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export { LeaseLostError } from '../../shared/errors.ts';

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH']);

/**
 * Map a driver error to the worker's error types (src/shared/errors.ts). Classification is by SQLSTATE and
 * driver error code; node-postgres raises a few connection failures as plain Errors with no code, which are
 * recognised here, at the edge, so that nothing later reads message text. Unknown errors pass through
 * unchanged (the outcome policy treats them as bugs).
 */
export function classifyDbError(error: unknown): unknown {
  const e = error as { code?: string; message?: string };
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = e?.message ?? String(error);
  if (code === 'RW001') return new LeaseLostError(message, { cause: error });
  if (CONNECTION_CODES.has(code) || code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300') {
    return new DatabaseConnectionError(`database connection problem (${code}): ${message}`, { cause: error, code });
  }
  if (code === '' && PG_CONNECTION_MESSAGES.test(message)) {
    return new DatabaseConnectionError(`database connection problem: ${message}`, { cause: error });
  }
  if (code === '42P01' || code === '42883') {
    return new SchemaError(`the rag-worker schema is missing or outdated (${message}): run \`rag-worker migrate\``, { cause: error });
  }
  if (code === '58P01' || (code === '42704' && /"vector"/.test(message))) {
    return new SchemaError(`pgvector is not available in this database (${message}): install the vector extension`, { cause: error });
  }
  return error;
}

/** node-postgres's own connection errors, which carry no code. */
const PG_CONNECTION_MESSAGES = /Connection terminated|connection (is )?(closed|lost)|Client has encountered a connection error|timeout exceeded when trying to connect|Client was closed and is not queryable/i;
