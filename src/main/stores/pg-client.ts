/** SqlClient over a PostgreSQL connection pool (`pg`), with a dedicated, self-reconnecting LISTEN connection. */
import pg from 'pg';
import type { Logger } from '../logging/logger.ts';
import { silentLogger } from '../logging/logger.ts';
import { classifyDbError, type SqlClient } from './sql-client.ts';

export interface PgClientOptions {
  connectionString: string;
  maxConnections?: number;
  logger?: Logger;
  applicationName?: string;
}

export function createPgClient(options: PgClientOptions): SqlClient {
  const logger = options.logger ?? silentLogger;
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.maxConnections ?? 10,
    application_name: options.applicationName ?? 'rag-worker',
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
  });
  // An idle client losing its connection (PostgreSQL restart, pg_terminate_backend) must not crash the process.
  pool.on('error', (err) => logger.warn('🔌 Database connection lost (idle client); it will be replaced', { error: err.message }));
  const listeners: (() => Promise<void>)[] = [];
  let closed = false;

  return {
    kind: 'postgres',
    crossProcessNotify: true,
    async query<T>(sql: string, params: unknown[] = []) {
      try {
        const result = await pool.query(sql, params);
        return result.rows as T[];
      } catch (error) {
        throw classifyDbError(error);
      }
    },
    async exec(sql: string) {
      try {
        await pool.query(sql);
      } catch (error) {
        throw classifyDbError(error);
      }
    },
    async listen(channel, onNotify) {
      const stop = listenWithReconnect(options.connectionString, channel, onNotify, logger, () => closed);
      listeners.push(stop);
      return stop;
    },
    async close() {
      closed = true;
      await Promise.all(listeners.map((stop) => stop()));
      await pool.end();
    },
  };
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
      logger.warn('🔌 LISTEN connection lost; polling covers the gap while it reconnects', { error: err.message });
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
        logger.debug('LISTEN connect failed; retrying', { error: (err as Error).message, delayMs: delay });
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
