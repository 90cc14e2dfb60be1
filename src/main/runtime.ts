/**
 * Wires the edges together from a Config: database transport + store, thread pool, embedding provider,
 * scheduler, and (for workers) the coordinator with LISTEN/NOTIFY. One place owns opening and closing them.
 */
import { transactionPoolerOf } from '../shared/pooler.ts';
import { encodingForModel } from '../shared/encoding-for-model.ts';
import { backoffDelayMs } from '../shared/backoff.ts';
import { sleepOn } from '../shared/clock.ts';
import { DatabaseConnectionError, messageOf } from '../shared/errors.ts';
import type { Config } from '../shared/config.ts';
import { secretsOf } from '../shared/config.ts';
import type { PriceTable } from '../shared/claude/prices.ts';
import { createClaude, loadPrices, probeClaude } from './analysis/claude-setup.ts';
import type { ClaudeSettings } from './analysis/document-claude.ts';
import { ChunkPool } from './coordinator/chunk-pool.ts';
import { Coordinator } from './coordinator/coordinator.ts';
import type { Logger } from './logging/logger.ts';
import type { EmbeddingProvider } from './providers/embedding-provider.ts';
import { createLocalProvider, type LexicalEmbedRunner } from './providers/local-provider.ts';
import { EmbeddingScheduler } from './scheduler/embedding-scheduler.ts';
import { checkSchema } from './stores/migrate.ts';
import { ensureSchema, openDatabase } from './stores/open-database.ts';
import { QueueStore, type QueueBackend } from './stores/queue-store.ts';
import { checkSupabaseSchema, inspectSupabase, openSupabaseStore } from './stores/supabase-open.ts';
import type { SupabaseQueueStore } from './stores/supabase-queue-store.ts';
import { startRealtimeWake } from './stores/supabase-realtime.ts';
import { inspectSchema, type SchemaFacts } from './stores/migrate.ts';
import { serveControl, type ControlServer } from './stores/embedded-control.ts';
import { systemClock } from './scheduler/clock.ts';
import { RateShare, type SharedAccount } from './scheduler/rate-share.ts';
import { accountFingerprint } from '../shared/account-fingerprint.ts';
import type { SqlClient } from './stores/sql-client.ts';

export { ensureSchema, openDatabase } from './stores/open-database.ts';

export const QUEUE_CHANNEL = 'rag_ingestion_queue';
export const OFFLINE_EMBEDDER_NOTICE =
  'No OPENAI_API_KEY: using the built-in offline embedder (lexical feature hashing — matches words, not meaning). Set OPENAI_API_KEY for semantic search.';

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

async function waitForDatabase(prepare: () => Promise<void>, logger: Logger, signal: AbortSignal | undefined): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    try {
      await prepare();
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

/** The embedding provider of the config; the OpenAI SDK is loaded only when it is used. */
export async function createProvider(config: Config, pool: LexicalEmbedRunner): Promise<EmbeddingProvider> {
  if (config.embedder === 'openai') {
    const { createOpenAIProvider } = await import('./providers/openai-provider.ts');
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

function createScheduler(config: Config, provider: EmbeddingProvider, logger: Logger): EmbeddingScheduler {
  return new EmbeddingScheduler({
    provider,
    batchSize: config.embeddingBatch,
    concurrency: provider.remote ? config.embeddingConcurrency : Math.max(1, config.threads),
    rpm: config.embeddingRpm,
    tpm: config.embeddingTpm,
    maxRetries: config.providerRetries,
    backoff: { baseMs: 500, maxMs: 30_000 },
    logger,
  });
}

export interface Runtime {
  config: Config;
  /** The SQL connection; undefined in the Supabase mode, where every call goes through the REST API. */
  sql: SqlClient | undefined;
  store: QueueBackend;
  /** The schema as the database reports it (readiness). */
  inspect(): Promise<SchemaFacts>;
  /** Throws unless the schema is applied, current and of the configured dimension. */
  checkSchema(): Promise<void>;
  pool: ChunkPool;
  provider: EmbeddingProvider;
  scheduler: EmbeddingScheduler;
  /** Claude contexts and analysis, when RAG_ENABLE_CLAUDE_ANALYSIS is on. */
  claude: ClaudeSettings | undefined;
  prices: PriceTable;
  logger: Logger;
  close(): Promise<void>;
}

/** Where the queue lives: its store, how to check its schema, and how to let it go. */
interface Backend {
  sql: SqlClient | undefined;
  store: QueueBackend;
  inspect(): Promise<SchemaFacts>;
  checkSchema(): Promise<void>;
  close(): Promise<void>;
}

export async function openRuntime(config: Config, logger: Logger, options: OpenRuntimeOptions = {}): Promise<Runtime> {
  const prices = loadPrices(config);
  const backend = config.store === 'supabase' ? await openSupabaseBackend(config, logger, options) : await openSqlBackend(config, logger, options);
  const pool = new ChunkPool(config.threads);
  const provider = await createProvider(config, pool);
  const scheduler = createScheduler(config, provider, logger);
  const claude = await createClaude(config, prices, logger);
  return {
    config,
    ...backend,
    pool,
    provider,
    scheduler,
    claude,
    prices,
    logger,
    async close() {
      scheduler.close();
      claude?.scheduler.close();
      await pool.close();
      await backend.close();
    },
  };
}

async function openSqlBackend(config: Config, logger: Logger, options: OpenRuntimeOptions): Promise<Backend> {
  const sql = await openDatabase(config, logger);
  try {
    if (options.waitForDatabase) await waitForDatabase(() => prepareDatabase(sql, config, logger), logger, options.signal);
    else await prepareDatabase(sql, config, logger);
  } catch (error) {
    await sql.close();
    throw error;
  }
  const store = new QueueStore(sql);
  // Other rag-worker commands reach an embedded database held by this process through it (embedded-control.ts).
  let control: ControlServer | undefined;
  if (sql.kind === 'embedded') {
    try {
      control = await serveControl(config.dataDir, store, logger);
    } catch (error) {
      logger.warn(`Other rag-worker commands cannot reach this embedded database while this process runs: ${messageOf(error)}`, { event: 'control_unavailable' });
    }
  }
  return {
    sql,
    store,
    inspect: () => inspectSchema(sql),
    checkSchema: () => checkSchema(sql, config.embeddingDimensions),
    async close() {
      await control?.close();
      await sql.close();
    },
  };
}

/** The Supabase mode: the store over the REST API, its schema checked before anything starts. */
async function openSupabaseBackend(config: Config, logger: Logger, options: OpenRuntimeOptions): Promise<Backend> {
  const store: SupabaseQueueStore = openSupabaseStore(config);
  const check = () => checkSupabaseSchema(store, config.embeddingDimensions);
  if (options.waitForDatabase) await waitForDatabase(check, logger, options.signal);
  else await check();
  return { sql: undefined, store, inspect: () => inspectSupabase(store), checkSchema: check, close: async () => {} };
}

export function createCoordinator(rt: Runtime): Coordinator {
  const { config } = rt;
  const coordinator = new Coordinator(
    {
      store: rt.store,
      pool: rt.pool,
      scheduler: rt.scheduler,
      claude: rt.claude,
      prices: rt.prices,
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
      rateShare: createRateShare(rt),
      healthCheck: async () => {
        await rt.checkSchema();
        await rt.provider.embed(['rag-worker health check']);
        // A Claude fault pauses the worker only when Claude is required; then it must be fixed to go on.
        if (rt.claude?.required) await probeClaude(config);
      },
    },
    rt.logger,
  );
  return coordinator;
}

/**
 * The accounts this worker shares with others (RAG_SHARE_RATE_LIMITS): the embedding provider's when it is
 * remote, and Anthropic's when Claude is on. None with the embedded database (one worker holds it).
 */
function createRateShare(rt: Runtime): RateShare | undefined {
  const { config } = rt;
  if (!config.shareRateLimits || config.store === 'embedded') return undefined;
  const accounts: SharedAccount[] = [];
  if (rt.provider.remote) {
    accounts.push({ name: 'embeddings', account: accountFingerprint('openai', config.openaiBaseUrl || 'https://api.openai.com/v1', config.openaiApiKey ?? ''), target: rt.scheduler });
  }
  if (rt.claude) {
    accounts.push({ name: 'claude', account: accountFingerprint('anthropic', config.anthropicBaseUrl || 'https://api.anthropic.com', config.anthropicApiKey ?? ''), target: rt.claude.scheduler });
  }
  if (accounts.length === 0) return undefined;
  return new RateShare({ store: rt.store, workerId: config.workerId, accounts, logger: rt.logger });
}

/**
 * LISTEN for new jobs; returns an unsubscribe function. Not through a transaction-mode pooler, where LISTEN
 * cannot work (see shared/pooler.ts): polling finds the jobs, and a log line says so. In the Supabase mode
 * (no SQL connection) Supabase Realtime stands in for LISTEN unless RAG_SUPABASE_REALTIME=false.
 */
export async function listenForJobs(rt: Runtime, coordinator: Coordinator): Promise<() => Promise<void>> {
  const nothing = async () => {};
  if (!rt.config.listen) return nothing;
  if (!rt.sql) {
    if (rt.config.supabaseRealtime && rt.config.supabaseUrl) {
      const wake = startRealtimeWake({
        url: rt.config.supabaseUrl,
        serviceRoleKey: rt.config.supabaseServiceRoleKey ?? '',
        onWake: () => coordinator.notify(),
        logger: rt.logger,
        secrets: secretsOf(rt.config),
        pollIntervalMs: rt.config.pollIntervalMs,
      });
      return () => wake.close();
    }
    rt.logger.info(
      `🔁 Supabase mode (REST API only) with RAG_SUPABASE_REALTIME=false: new jobs are found by polling every ${rt.config.pollIntervalMs / 1000}s ` +
        '(RAG_POLL_INTERVAL_MS). For quicker pickup turn Realtime on, or set DATABASE_URL (session pooler or direct connection).',
      { event: 'polling_only', mode: 'supabase', realtime: false },
    );
    return nothing;
  }
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
    store: rt.config.store === 'embedded' ? `embedded (${rt.config.dataDir})` : rt.config.store === 'supabase' ? `supabase REST (${rt.config.supabaseUrl})` : 'postgres',
    claude: rt.claude
      ? `${[rt.claude.contexts ? 'context' : '', rt.claude.analysis ? 'analysis' : ''].filter(Boolean).join(' + ')} with ${rt.claude.contextModel}${rt.claude.analysisModel !== rt.claude.contextModel ? ` / ${rt.claude.analysisModel}` : ''}${rt.claude.required ? '' : ' (optional)'}`
      : 'off',
    embedder: rt.provider.remote ? `${rt.provider.name} ${rt.provider.model}` : `${rt.provider.model} (offline, lexical — not semantic)`,
    dimensions: rt.config.embeddingDimensions,
    tokenizer: encodingForModel(rt.provider.model),
    threads: rt.pool.threads,
    maxConcurrentJobs: rt.config.maxConcurrentJobs,
    // V8 flags of this process (the launcher gives `start` a small young generation; NODE_OPTIONS may add more).
    nodeFlags: process.execArgv.filter((arg) => arg.startsWith('--max')),
  };
}
