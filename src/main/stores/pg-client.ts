/**
 * SqlClient over PostgreSQL (`pg`): a pool for job queries, a reserved connection for lease upkeep (the
 * 'control' lane), and a dedicated, self-reconnecting LISTEN connection.
 *
 * Connection budget of one worker: RAG_MAX_CONCURRENT_JOBS + 3 job connections (opened on demand, closed
 * after 30 s idle) + 1 control connection (opened at start-up, held) + 1 LISTEN connection (held, unless
 * RAG_LISTEN=false) — RAG_MAX_CONCURRENT_JOBS + 5 at most; 9 with the defaults.
 *
 * Errors are classified here from structure, not message text: an error while getting a connection is a
 * connection problem by construction; a `pg.DatabaseError` carries the server's SQLSTATE; any other error
 * from a statement counts as a connection problem only if that statement's connection failed or ended.
 */
import pg from 'pg';
import { DatabaseConnectionError, WorkerFatalError } from '../../shared/errors.ts';
import type { Logger } from '../logging/logger.ts';
import { silentLogger } from '../logging/logger.ts';
import { classifyDbError, reasonOf, type DbErrorContext, type QueryOptions, type SqlClient } from './sql-client.ts';

export interface PgClientOptions {
  connectionString: string;
  /** Job-lane pool size (the control lane and LISTEN have connections of their own). */
  maxConnections?: number;
  logger?: Logger;
  applicationName?: string;
  /** The setting the connection string came from, for messages (default DATABASE_URL). */
  setting?: string;
  /** Bytes each new job connection allocates and frees once in its server backend (0: none). See backendWarmupSql. */
  backendWarmupBytes?: number;
}

/**
 * Run once on every new job connection. PostgreSQL backends on glibc start with malloc's default mmap
 * threshold (128 kB): every larger block is a fresh mmap, page-faulted in on first touch and unmapped on free.
 * pgvector's HNSW insert builds a memory context of several MB per row (the candidate elements it loads), so
 * with the default threshold each inserted row page-faults those megabytes in again — on virtual machines,
 * where a fault is expensive, that doubled the CPU of our saves (bench f: 14 s → 7 s of PostgreSQL CPU for
 * the same 1,400 rows). Allocating and freeing one block of N bytes raises the backend's threshold to N
 * (glibc adjusts it to the largest freed mmapped block, up to 32 MB), so later blocks come from the reused
 * heap. The cost is one transient allocation per connection; a backend may keep up to 2·N of free heap.
 * The session setting rag_worker.heap_warmup records that it ran (and is how tests observe it).
 */
export function backendWarmupSql(bytes: number): string {
  return `select set_config('rag_worker.heap_warmup', length(repeat('x', ${Math.floor(bytes)}))::text, false)`;
}

/** Connections of the control lane: heartbeats and releases are single short statements. */
export const CONTROL_CONNECTIONS = 1;

export function createPgClient(options: PgClientOptions): SqlClient {
  const logger = options.logger ?? silentLogger;
  const setting = options.setting ?? 'DATABASE_URL';
  const target = describeTarget(options.connectionString, setting);
  const appName = options.applicationName ?? 'rag-worker';
  const common = { connectionString: options.connectionString, connectionTimeoutMillis: 10_000, keepAlive: true };
  const jobs = new pg.Pool({ ...common, max: options.maxConnections ?? 10, application_name: appName, idleTimeoutMillis: 30_000 });
  // The control lane keeps its connection (idleTimeoutMillis 0): once opened, a heartbeat never needs a free
  // server slot, so job connections can exhaust max_connections without starving lease upkeep.
  const control = new pg.Pool({ ...common, max: CONTROL_CONNECTIONS, application_name: `${appName} control`, idleTimeoutMillis: 0 });
  const listeners: (() => Promise<void>)[] = [];
  let closed = false;
  const context = (phase: DbErrorContext['phase'], extra: Partial<DbErrorContext> = {}): DbErrorContext => ({ phase, target, setting, storage: 'server', ...extra });

  const warmupBytes = options.backendWarmupBytes ?? 0;
  if (warmupBytes > 0) {
    // Queued on the client before it is handed out, so it runs ahead of the first statement; a failure only
    // costs the speed-up, never the connection's work.
    const warmup = backendWarmupSql(warmupBytes);
    jobs.on('connect', (client) => {
      client.query(warmup).catch((err: unknown) => logger.debug('Backend heap warm-up failed (saves still work, more slowly)', { error: reasonOf(err) }));
    });
  }
  // An idle client losing its connection (PostgreSQL restart, pg_terminate_backend) must not crash the process.
  jobs.on('error', (err) => logger.warn('🔌 Database connection lost (idle client); it will be replaced', { event: 'db_connection_lost', lane: 'jobs', error: reasonOf(err) }));
  let rewarm: NodeJS.Timeout | undefined;
  let rewarmDelay = 250;
  const reopenControl = () => {
    if (closed || rewarm) return;
    rewarm = setTimeout(() => {
      rewarm = undefined;
      if (closed) return;
      run(control, 'select 1', [], false).then(
        () => (rewarmDelay = 250),
        () => {
          rewarmDelay = Math.min(rewarmDelay * 2, 10_000);
          reopenControl();
        },
      );
    }, rewarmDelay);
    rewarm.unref();
  };
  control.on('error', (err) => {
    logger.warn('🔌 Control connection (heartbeats) lost; reopening it', { event: 'db_connection_lost', lane: 'control', error: reasonOf(err) });
    reopenControl();
  });

  async function run(pool: pg.Pool, sql: string, params: unknown[], script: boolean): Promise<pg.QueryResult> {
    if (closed) throw new Error('rag-worker bug: query on a closed database client');
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (error) {
      throw classifyDbError(error, context('connect', { sqlstate: sqlstateOf(error) }));
    }
    // Set when this connection fails or ends while the statement runs: its error is then about the connection.
    let lost: Error | undefined;
    const onError = (err: Error) => (lost ??= err);
    const onEnd = () => (lost ??= new Error('connection ended'));
    client.on('error', onError);
    client.on('end', onEnd);
    let failure: unknown;
    try {
      return await client.query(sql, params);
    } catch (error) {
      const sqlstate = sqlstateOf(error);
      // pg fails the statement first and reports the socket's fate on the following ticks: let it.
      if (sqlstate === undefined && lost === undefined) await new Promise((resolve) => setImmediate(resolve));
      failure = classifyDbError(error, context('query', { sqlstate, connectionLost: lost !== undefined || endsSession(error) }));
      throw failure;
    } finally {
      client.off('error', onError);
      client.off('end', onEnd);
      // Discard the connection when it is broken, or when a failed script may have left a transaction open.
      const broken = lost !== undefined || failure instanceof DatabaseConnectionError || (script && failure !== undefined);
      client.release(broken ? (lost ?? new Error('connection discarded after a failure')) : undefined);
      if (broken && pool === control) reopenControl();
    }
  }

  return {
    kind: 'postgres',
    crossProcessNotify: true,
    async query<T>(sql: string, params: unknown[] = [], queryOptions?: QueryOptions) {
      const result = await run(queryOptions?.lane === 'control' ? control : jobs, sql, params, false);
      return result.rows as T[];
    },
    async exec(sql: string) {
      await run(jobs, sql, [], true);
    },
    async listen(channel, onNotify) {
      const stop = listenWithReconnect(options.connectionString, channel, onNotify, logger, () => closed);
      listeners.push(stop);
      return stop;
    },
    async close() {
      closed = true;
      if (rewarm) clearTimeout(rewarm);
      await Promise.all(listeners.map((stop) => stop()));
      await Promise.all([jobs.end(), control.end()]);
    },
  };
}

/** The server's SQLSTATE, when the error is the server's answer (pg.DatabaseError); undefined otherwise. */
function sqlstateOf(error: unknown): string | undefined {
  return error instanceof pg.DatabaseError && typeof error.code === 'string' ? error.code : undefined;
}

/** A FATAL or PANIC answer: the server ends the session after sending it. */
function endsSession(error: unknown): boolean {
  return error instanceof pg.DatabaseError && (error.severity === 'FATAL' || error.severity === 'PANIC');
}

/**
 * "user@host:port/database" for messages (never the password), parsed the way pg parses it; a connection
 * string pg cannot parse is a configuration fault, reported here rather than as an endless connect retry.
 */
function describeTarget(connectionString: string, setting: string): string {
  let parsed: pg.Client;
  try {
    parsed = new pg.Client({ connectionString });
  } catch {
    throw new WorkerFatalError(`${setting} is not a valid PostgreSQL connection string (postgres://user:password@host:port/database)`, { setting });
  }
  const host = parsed.host?.startsWith('/') ? `socket ${parsed.host}` : parsed.host?.includes(':') ? `[${parsed.host}]` : parsed.host;
  return `${parsed.user ?? ''}${parsed.user ? '@' : ''}${host}:${parsed.port}/${parsed.database ?? ''}`;
}

function listenWithReconnect(
  connectionString: string,
  channel: string,
  onNotify: (payload: string) => void,
  logger: Logger,
  isClosed: () => boolean,
): () => Promise<void> {
  let client: pg.Client | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let delay = 500;

  const connect = async () => {
    if (stopped || isClosed()) return;
    const c = new pg.Client({ connectionString, application_name: 'rag-worker-listen', keepAlive: true });
    client = c;
    c.on('notification', (msg) => {
      if (msg.channel === channel) onNotify(msg.payload ?? '');
    });
    c.on('error', (err) => {
      if (stopped) return;
      logger.warn('🔌 LISTEN connection lost; polling covers the gap while it reconnects', { event: 'db_connection_lost', lane: 'listen', error: reasonOf(err) });
      retry();
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
      delay = 500;
      // Something may have been enqueued while we were disconnected: wake the caller once.
      onNotify('');
    } catch (err) {
      if (!stopped) {
        logger.debug('LISTEN connect failed; retrying', { error: reasonOf(err), delayMs: delay });
        retry();
      }
    }
  };
  const retry = () => {
    const old = client;
    client = undefined;
    old?.end().catch(() => {});
    if (stopped || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      void connect();
    }, delay);
    timer.unref();
    delay = Math.min(delay * 2, 10_000);
  };
  void connect();
  return async () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    await client?.end().catch(() => {});
  };
}
