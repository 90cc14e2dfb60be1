/**
 * Wires the edges together from a Config: database transport + store, thread pool, embedding provider,
 * scheduler, and (for workers) the coordinator with LISTEN/NOTIFY. One place owns opening and closing them.
 */
import { transactionPoolerOf } from '../shared/pooler.ts';
import { encodingForModel } from '../shared/encoding-for-model.ts';
import { backoffDelayMs } from '../shared/backoff.ts';
import { sleepOn } from '../shared/clock.ts';
import { DatabaseConnectionError, messageOf, SchemaError, WorkerFatalError } from '../shared/errors.ts';
import type { Config } from '../shared/config.ts';
import { secretsOf } from '../shared/config.ts';
import { ChunkPool } from './coordinator/chunk-pool.ts';
import { Coordinator } from './coordinator/coordinator.ts';
import type { Logger } from './logging/logger.ts';
import type { EmbeddingProvider } from './providers/embedding-provider.ts';
import { createLocalProvider } from './providers/local-provider.ts';
import { createOpenAIProvider } from './providers/openai-provider.ts';
import { EmbeddingScheduler } from './scheduler/embedding-scheduler.ts';
import { checkSchema, migrate } from './stores/migrate.ts';
import { createPgClient } from './stores/pg-client.ts';
import { createPgliteClient } from './stores/pglite-client.ts';
import { QueueStore } from './stores/queue-store.ts';
import { systemClock } from './scheduler/clock.ts';
import type { SqlClient } from './stores/sql-client.ts';

export const QUEUE_CHANNEL = 'rag_ingestion_queue';
export const OFFLINE_EMBEDDER_NOTICE =
  'No OPENAI_API_KEY: using the built-in offline embedder (lexical feature hashing — matches words, not meaning). Set OPENAI_API_KEY for semantic search.';

/** Job-lane connections beyond one per concurrent job (claims, the status reads, a job's overlapping lookups). */
const EXTRA_JOB_CONNECTIONS = 3;

export async function openDatabase(config: Config, logger: Logger): Promise<SqlClient> {
  if (config.store === 'supabase') {
    throw new WorkerFatalError(
      'SUPABASE_URL / SUPABASE_SERVICE_ROLE_KEY alone are not supported yet: set DATABASE_URL to your Supabase database connection string ' +
        '(Project Settings → Database → Connection string; use the session pooler or a direct connection)',
    );
  }
  if (config.store === 'postgres') {
    // Budget: this pool + 1 control connection + 1 LISTEN connection (see pg-client.ts and the README).
    return createPgClient({
      connectionString: config.databaseUrl!,
      maxConnections: config.maxConcurrentJobs + EXTRA_JOB_CONNECTIONS,
      logger,
      applicationName: `rag-worker ${config.workerId}`,
      backendWarmupBytes: config.pgHeapWarmupMb * 1024 * 1024,
    });
  }
  return createPgliteClient(config.dataDir);
}

/** Embedded databases are migrated on first use (zero setup); PostgreSQL needs an explicit `rag-worker migrate`. */
export async function ensureSchema(sql: SqlClient, config: Config, logger: Logger): Promise<void> {
  if (sql.kind === 'embedded') {
    try {
      await checkSchema(sql, config.embeddingDimensions);
      return;
    } catch (error) {
      // Only a missing schema is ours to create; damaged storage or a dimension mismatch is reported as it is.
      if (!(error instanceof SchemaError)) throw error;
      logger.info(`🗄️  Preparing the embedded database in ${config.dataDir}`);
      await migrate(sql, config.embeddingDimensions);
      return;
    }
  }
  await checkSchema(sql, config.embeddingDimensions);
}

export interface OpenRuntimeOptions {
  /**
   * The long-running `start`: while the database is unreachable or has no free connection slots
   * (DatabaseConnectionError), wait and retry with backoff, logging each retry with its reason, instead of
   * failing. Authentication, schema and storage faults are never waited for.
   */
  waitForDatabase?: boolean;
  /** Ends the wait (a signal during start-up): openRuntime then rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Backoff of the start-up wait for the database. */
const DATABASE_WAIT = { baseMs: 500, maxMs: 10_000 };

/** Schema check, and the control lane's connection opened now, so it is held before job queries compete for slots. */
async function prepareDatabase(sql: SqlClient, config: Config, logger: Logger): Promise<void> {
  await ensureSchema(sql, config, logger);
  await sql.query('select 1', [], { lane: 'control' });
}

async function waitForDatabase(sql: SqlClient, config: Config, logger: Logger, signal: AbortSignal | undefined): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    try {
      await prepareDatabase(sql, config, logger);
      if (attempt > 1) logger.info('🔌 Database reachable', { event: 'db_ready', attempts: attempt });
      return;
    } catch (error) {
      if (!(error instanceof DatabaseConnectionError)) throw error;
      const delayMs = backoffDelayMs(attempt, DATABASE_WAIT);
      logger.warn(`🔌 Database not available (${messageOf(error)}); retrying in ${delayMs} ms`, {
        event: 'db_wait',
        attempt,
        delayMs,
        code: error.code,
        error: messageOf(error),
      });
      await sleepOn(systemClock, delayMs, signal);
    }
  }
}

export function createProvider(config: Config, pool: ChunkPool): EmbeddingProvider {
  if (config.embedder === 'openai') {
    return createOpenAIProvider({
      apiKey: config.openaiApiKey,
      baseURL: config.openaiBaseUrl,
      model: config.embeddingModel,
      dimensions: config.embeddingDimensions,
      timeoutMs: config.embeddingTimeoutMs,
    });
  }
  return createLocalProvider(config.embeddingDimensions, pool);
}

export interface Runtime {
  config: Config;
  sql: SqlClient;
  store: QueueStore;
  pool: ChunkPool;
  provider: EmbeddingProvider;
  scheduler: EmbeddingScheduler;
  logger: Logger;
  close(): Promise<void>;
}

export async function openRuntime(config: Config, logger: Logger, options: OpenRuntimeOptions = {}): Promise<Runtime> {
  const sql = await openDatabase(config, logger);
  try {
    if (options.waitForDatabase) await waitForDatabase(sql, config, logger, options.signal);
    else await prepareDatabase(sql, config, logger);
  } catch (error) {
    await sql.close();
    throw error;
  }
  const pool = new ChunkPool(config.threads);
  const provider = createProvider(config, pool);
  const scheduler = new EmbeddingScheduler({
    provider,
    batchSize: config.embeddingBatch,
    concurrency: provider.remote ? config.embeddingConcurrency : Math.max(1, config.threads),
    rpm: config.embeddingRpm,
    tpm: config.embeddingTpm,
    maxRetries: config.providerRetries,
    backoff: { baseMs: 500, maxMs: 30_000 },
    logger,
  });
  return {
    config,
    sql,
    store: new QueueStore(sql),
    pool,
    provider,
    scheduler,
    logger,
    async close() {
      scheduler.close();
      await pool.close();
      await sql.close();
    },
  };
}

export function createCoordinator(rt: Runtime): Coordinator {
  const { config } = rt;
  const coordinator = new Coordinator(
    {
      store: rt.store,
      pool: rt.pool,
      scheduler: rt.scheduler,
      chunkMaxTokens: config.chunkMaxTokens,
      charLimit: config.embeddingCharLimit,
      saveBatch: Math.min(512, Math.max(64, config.embeddingBatch)),
      window: 4,
    },
    {
      workerId: config.workerId,
      maxConcurrentJobs: config.maxConcurrentJobs,
      leaseSeconds: config.leaseSeconds,
      heartbeatMs: config.heartbeatMs,
      pollIntervalMs: config.pollIntervalMs,
      maxAttempts: config.maxAttempts,
      retryBaseMs: config.retryBaseMs,
      retryMaxMs: config.retryMaxMs,
      faultRecheckMs: Math.min(30_000, Math.max(1000, config.pollIntervalMs)),
      secrets: secretsOf(config),
      healthCheck: async () => {
        await checkSchema(rt.sql, config.embeddingDimensions);
        await rt.provider.embed(['rag-worker health check']);
      },
    },
    rt.logger,
  );
  return coordinator;
}

/**
 * LISTEN for new jobs; returns an unsubscribe function. Not through a transaction-mode pooler, where LISTEN
 * cannot work (see shared/pooler.ts): polling finds the jobs, and a log line says so.
 */
export async function listenForJobs(rt: Runtime, coordinator: Coordinator): Promise<() => Promise<void>> {
  const nothing = async () => {};
  if (!rt.config.listen) return nothing;
  const pooler = rt.config.store === 'postgres' && rt.config.databaseUrl ? transactionPoolerOf(rt.config.databaseUrl) : undefined;
  if (pooler) {
    rt.logger.info(
      `🔁 DATABASE_URL goes through a transaction-mode pooler (${pooler.why}): LISTEN/NOTIFY cannot work through it, ` +
        `so new jobs are found by polling every ${rt.config.pollIntervalMs / 1000}s (RAG_POLL_INTERVAL_MS). ` +
        'For pickup within milliseconds use the session pooler (port 5432) or a direct connection.',
      { event: 'pooler_detected', mode: 'transaction', listen: false, why: pooler.why },
    );
    return nothing;
  }
  return rt.sql.listen(QUEUE_CHANNEL, () => coordinator.notify());
}

export function describeRuntime(rt: Runtime): Record<string, unknown> {
  return {
    store: rt.config.store === 'embedded' ? `embedded (${rt.config.dataDir})` : 'postgres',
    embedder: rt.provider.remote ? `${rt.provider.name} ${rt.provider.model}` : `${rt.provider.model} (offline, lexical — not semantic)`,
    dimensions: rt.config.embeddingDimensions,
    tokenizer: encodingForModel(rt.provider.model),
    threads: rt.pool.threads,
    maxConcurrentJobs: rt.config.maxConcurrentJobs,
    // V8 flags of this process (the launcher gives `start` a small young generation; NODE_OPTIONS may add more).
    nodeFlags: process.execArgv.filter((arg) => arg.startsWith('--max')),
  };
}
