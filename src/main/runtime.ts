/**
 * Wires the edges together from a Config: database transport + store, thread pool, embedding provider,
 * scheduler, and (for workers) the coordinator with LISTEN/NOTIFY. One place owns opening and closing them.
 */
import { encodingForModel } from '../shared/encoding-for-model.ts';
import { WorkerFatalError } from '../shared/errors.ts';
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
import type { SqlClient } from './stores/sql-client.ts';

export const QUEUE_CHANNEL = 'rag_ingestion_queue';
export const OFFLINE_EMBEDDER_NOTICE =
  'No OPENAI_API_KEY: using the built-in offline embedder (lexical feature hashing — matches words, not meaning). Set OPENAI_API_KEY for semantic search.';

export async function openDatabase(config: Config, logger: Logger): Promise<SqlClient> {
  if (config.store === 'supabase') {
    throw new WorkerFatalError(
      'SUPABASE_URL / SUPABASE_SERVICE_ROLE_KEY alone are not supported yet: set DATABASE_URL to your Supabase database connection string ' +
        '(Project Settings → Database → Connection string; use the session pooler or a direct connection)',
    );
  }
  if (config.store === 'postgres') {
    return createPgClient({ connectionString: config.databaseUrl!, maxConnections: config.maxConcurrentJobs + 4, logger, applicationName: `rag-worker ${config.workerId}` });
  }
  return createPgliteClient(config.dataDir);
}

/** Embedded databases are migrated on first use (zero setup); PostgreSQL needs an explicit `rag-worker migrate`. */
export async function ensureSchema(sql: SqlClient, config: Config, logger: Logger): Promise<void> {
  if (sql.kind === 'embedded') {
    try {
      await checkSchema(sql, config.embeddingDimensions);
      return;
    } catch {
      logger.info(`🗄️  Preparing the embedded database in ${config.dataDir}`);
      await migrate(sql, config.embeddingDimensions);
      return;
    }
  }
  await checkSchema(sql, config.embeddingDimensions);
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

export async function openRuntime(config: Config, logger: Logger): Promise<Runtime> {
  const sql = await openDatabase(config, logger);
  try {
    await ensureSchema(sql, config, logger);
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

/** LISTEN for new jobs; returns an unsubscribe function. */
export async function listenForJobs(rt: Runtime, coordinator: Coordinator): Promise<() => Promise<void>> {
  if (!rt.config.listen) return async () => {};
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
  };
}
