/**
 * The queue for a CLI command: the database itself, or — when another rag-worker process holds the embedded
 * database (`start`, `ingest`) — that process, over its control socket (src/main/stores/embedded-control.ts).
 */
import type { Config } from '../../shared/config.ts';
import { EmbeddedInUseError } from '../../shared/errors.ts';
import type { Logger } from '../logging/logger.ts';
import { ensureSchema, openDatabase } from '../stores/open-database.ts';
import { connectControl, type RemoteQueue } from '../stores/embedded-control.ts';
import { QueueStore, type QueueApi } from '../stores/queue-store.ts';
import type { SqlClient } from '../stores/sql-client.ts';
import type { SupabaseQueueStore } from '../stores/supabase-queue-store.ts';
import { isProcessAlive } from '../process-alive.ts';

/** How long to wait for a holder that has just started to open its control socket (about 2.5 s after its lock). */
const HOLDER_START_MS = 5_000;


/** The queue served by the process holding the embedded database (waiting briefly while it starts), or undefined. */
export function queueOfHolder(held: EmbeddedInUseError): Promise<RemoteQueue | undefined> {
  return connectControl(held.dataDir, { waitMs: HOLDER_START_MS, holderAlive: () => isProcessAlive(held.ownerPid) });
}

export interface OpenQueue {
  store: QueueApi;
  /** The database, when this process opened it (undefined when another process serves the queue). */
  sql?: SqlClient;
  /** The Supabase mode's store (REST API), when that is the backend. */
  supabase?: SupabaseQueueStore;
  /** The pid of the process serving the queue, when it is not this one. */
  servedBy?: number;
  close(): Promise<void>;
}

export async function openQueue(config: Config, logger: Logger, { schema = true }: { schema?: boolean } = {}): Promise<OpenQueue> {
  if (config.store === 'supabase') {
    // The REST API only: every command is .rpc() calls of the rag_* functions.
    const { openSupabaseStore, checkSupabaseSchema } = await import('../stores/supabase-open.ts');
    const store = openSupabaseStore(config);
    if (schema) await checkSupabaseSchema(store, config.embeddingDimensions);
    return { store, supabase: store, close: async () => {} };
  }
  let sql: SqlClient;
  try {
    sql = await openDatabase(config, logger);
  } catch (error) {
    if (!(error instanceof EmbeddedInUseError)) throw error;
    const remote = await queueOfHolder(error);
    if (!remote) throw error;
    logger.debug(`The embedded database is held by process ${error.ownerPid}: using it through its control socket`, { event: 'control_client', pid: error.ownerPid });
    return { store: remote, servedBy: error.ownerPid, close: async () => {} };
  }
  try {
    if (schema) await ensureSchema(sql, config, logger);
  } catch (error) {
    await sql.close();
    throw error;
  }
  return { store: new QueueStore(sql), sql, close: () => sql.close() };
}
