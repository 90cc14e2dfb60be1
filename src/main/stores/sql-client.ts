/**
 * The transport every store uses: PostgreSQL over `pg`, or the embedded PGlite. Stores only call the SQL
 * functions of the migration (and read-only selects); this file also turns driver errors into categories.
 */
import {
  DatabaseAuthError,
  DatabaseConnectionError,
  LeaseLostError,
  SchemaError,
  StorageCorruptionError,
} from '../../shared/errors.ts';

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

/**
 * What the transport knows about a failure, structurally. Only the transport can tell a server's error
 * (which carries a SQLSTATE) from a socket's or the driver's, or whether the statement's connection died:
 * it says so here, and classifyDbError decides from these facts and the codes, never from message text.
 */
export interface DbErrorContext {
  /**
   * 'connect': the error came from getting a connection (socket, TLS, start-up packet, authentication, a
   * free pool slot) — a connection problem by construction, unless the server's SQLSTATE says otherwise.
   * 'query': from a statement on an established connection.
   */
  phase: 'connect' | 'query';
  /** The SQLSTATE of the server's (or embedded engine's) error response; undefined for any other error. */
  sqlstate?: string;
  /**
   * The statement's connection failed or ended by the time its error arrived, or the server's answer was FATAL
   * (it ends the session): the error is about the connection.
   */
  connectionLost?: boolean;
  /** Which database, for messages: host:port, database and user — never a password. */
  target?: string;
  /** The setting that points at this database (DATABASE_URL, RAG_DATA_DIR), named in messages and in `setting`. */
  setting?: string;
  /** 'embedded': an in-process engine whose files are RAG_DATA_DIR; storage errors are about those files. */
  storage?: 'server' | 'embedded';
}

/** Node socket / DNS errors (a string `code` on an error that is not the server's). */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED', 'EHOSTDOWN', 'ENETDOWN']);

/** SQLSTATEs that mean "the connection (or the server) is not available now": worth waiting for. */
function isConnectionSqlstate(code: string): boolean {
  return (
    code.startsWith('08') || // connection exception
    code === '57P01' || // admin_shutdown (pg_terminate_backend, fast shutdown)
    code === '57P02' || // crash_shutdown
    code === '57P03' || // cannot_connect_now (starting up, recovery)
    code === '57P05' || // idle_session_timeout
    code === '53300' || // too_many_connections (server, database or role slots exhausted)
    code === '53000' // insufficient_resources
  );
}

/** SQLSTATEs that mean the credentials or the database named in the connection settings are wrong. */
const AUTH_SQLSTATES = new Set(['28P01', '28000', '3D000']);

/** SQLSTATEs the server raises when it finds stored data damaged (or cannot read its files). */
const SERVER_STORAGE_SQLSTATES = new Set(['XX001', 'XX002']);
/** The embedded engine's files are ours (RAG_DATA_DIR): a missing or unreadable relation file is damage too. */
const EMBEDDED_STORAGE_SQLSTATES = new Set(['XX001', 'XX002', '58P01', '58P02', '58030']);

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

/**
 * A short reason for a driver/socket error. Node reports a failed connect to a name with several
 * addresses as an AggregateError whose own message is empty: use its first error's.
 */
export function reasonOf(error: unknown): string {
  if (error instanceof AggregateError && !error.message && error.errors.length > 0) return reasonOf(error.errors[0]);
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

function settingOf(context: DbErrorContext): string {
  return context.setting ?? (context.storage === 'embedded' ? 'RAG_DATA_DIR' : 'DATABASE_URL');
}

/** "postgres@db.example.com:5432/app (DATABASE_URL)": which database, and the setting that names it. */
function where(context: DbErrorContext): string {
  return context.target ? `${context.target} (${settingOf(context)})` : settingOf(context);
}

/**
 * Map a driver error to the worker's error types (src/shared/errors.ts), from the facts the transport
 * establishes (DbErrorContext) and the SQLSTATE / socket code. Errors it has no rule for pass through
 * unchanged (the outcome policy treats them as bugs).
 */
export function classifyDbError(error: unknown, context: DbErrorContext = { phase: 'query' }): unknown {
  const sqlstate = context.sqlstate;
  const message = reasonOf(error);
  const setting = settingOf(context);
  if (sqlstate !== undefined) {
    if (sqlstate === 'RW001') return new LeaseLostError(message, { cause: error });
    if (AUTH_SQLSTATES.has(sqlstate)) {
      const fix =
        sqlstate === '3D000'
          ? `fix the database name in ${setting} (or create that database)`
          : sqlstate === '28P01'
            ? `fix the password (or user name) in ${setting}`
            : `fix the user name in ${setting}, or let that role log in (LOGIN, pg_hba.conf)`;
      return new DatabaseAuthError(`the database server at ${where(context)} refused the connection: ${message} (${sqlstate}); ${fix}`, { cause: error, setting });
    }
    if (isConnectionSqlstate(sqlstate)) {
      const problem =
        sqlstate === '53300' || sqlstate === '53000'
          ? `the database at ${where(context)} has no free connection slots`
          : context.phase === 'connect'
            ? `cannot connect to the database at ${where(context)}`
            : `lost the connection to the database at ${where(context)}`;
      return new DatabaseConnectionError(`${problem}: ${message} (${sqlstate})`, { cause: error, code: sqlstate });
    }
    if (sqlstate === '42P01' || sqlstate === '42883' || sqlstate === '42704') {
      // Our statements are fixed: an undefined table, function or type means the schema (or pgvector) is missing.
      return new SchemaError(`the rag-worker schema (or the pgvector extension) is missing or outdated (${message}; ${sqlstate}): run \`rag-worker migrate\``, {
        cause: error,
      });
    }
    if (context.storage === 'embedded' ? EMBEDDED_STORAGE_SQLSTATES.has(sqlstate) : SERVER_STORAGE_SQLSTATES.has(sqlstate)) {
      return new StorageCorruptionError(
        context.storage === 'embedded'
          ? `${damagedDataDirAdvice(context.target)} (the embedded database reported: ${message}; ${sqlstate})`
          : `the PostgreSQL server at ${where(context)} reports damaged data: ${message} (${sqlstate}); its administrator must repair it (reindex, or restore a backup)`,
        { cause: error, setting: context.storage === 'embedded' ? 'RAG_DATA_DIR' : setting },
      );
    }
    if (sqlstate === '58P01') {
      return new SchemaError(`pgvector is not available in this database (${message}; ${sqlstate}): install the vector extension on the server`, { cause: error });
    }
    if (context.connectionLost) {
      // A FATAL answer (e.g. 25P03 idle-in-transaction timeout) ends the session: whatever its code, the connection is gone.
      return new DatabaseConnectionError(`lost the connection to the database at ${where(context)}: ${message} (${sqlstate})`, { cause: error, code: sqlstate });
    }
    return error;
  }
  // Not the server's answer: a socket, TLS or driver error.
  const code = codeOf(error);
  if (context.phase === 'connect' || context.connectionLost || SOCKET_CODES.has(code)) {
    const problem = context.phase === 'connect' ? `cannot connect to the database at ${where(context)}` : `lost the connection to the database at ${where(context)}`;
    return new DatabaseConnectionError(`${problem}: ${message}${code ? ` (${code})` : ''}`, { cause: error, code: code || undefined });
  }
  return error;
}

/** What an operator reads when the embedded data directory is damaged. */
export function damagedDataDirAdvice(dataDir: string | undefined): string {
  const dir = dataDir ? `RAG_DATA_DIR (${dataDir})` : 'RAG_DATA_DIR';
  return (
    `the embedded database in ${dir} is damaged (missing or corrupted files) and cannot be used; the queue's jobs live there too. ` +
    'Stop every rag-worker using it, move the directory aside (keep it for diagnosis) and re-ingest, or restore it from a backup'
  );
}
