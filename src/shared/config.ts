/**
 * Configuration: one table of settings (name, default, rule, description), one resolve function that
 * validates every value and freezes the result. Every error names the variable and the bad value
 * (secrets are never echoed). Pure: the caller passes the environment in.
 */
import os from 'node:os';
import { z } from 'zod';
import { redact, redactUrlCredentials, urlCredentials } from './redact.ts';

const bool = z
  .string()
  .trim()
  .toLowerCase()
  .refine((v) => ['true', 'false', '1', '0', 'yes', 'no', 'on', 'off', ''].includes(v), 'expected true or false')
  .transform((v) => ['true', '1', 'yes', 'on'].includes(v));
/** A whole number in [min, max]; `whyMax` explains the upper bound when it is not obvious. */
const int = (min: number, max: number, whyMax?: string) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+$/, 'expected a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}${whyMax ? ` ${whyMax}` : ''}`));
const optionalInt = (min: number, max: number) =>
  z
    .string()
    .trim()
    .transform((v) => (v === '' ? undefined : v))
    .pipe(int(min, max).optional());
const url = z.string().trim().url('expected a URL');
const optionalUrl = z.union([z.literal('').transform(() => undefined), url]);
const text = z.string().trim();
const optionalText = text.transform((v) => (v === '' ? undefined : v));

interface SettingSpec {
  env: string;
  default: string;
  schema: z.ZodType<unknown, string>;
  secret?: boolean;
  doc: string;
}

/** Every setting a user can touch. README's configuration table mirrors this list (`rag-worker config`). */
export const SETTINGS = {
  databaseUrl: { env: 'DATABASE_URL', default: '', schema: optionalText, secret: true, doc: 'PostgreSQL connection string (pgvector required). Empty: the embedded PGlite database.' },
  supabaseUrl: { env: 'SUPABASE_URL', default: '', schema: optionalUrl, doc: "Supabase project URL. With SUPABASE_SERVICE_ROLE_KEY and no DATABASE_URL, the worker reaches the database only through Supabase's REST API (supabase-js .rpc() of the rag_* functions)." },
  supabaseServiceRoleKey: { env: 'SUPABASE_SERVICE_ROLE_KEY', default: '', schema: optionalText, secret: true, doc: "Supabase service-role key (with SUPABASE_URL; Project Settings → API). Never the anon key: the rag_* functions are not granted to anon." },
  supabaseTimeoutMs: { env: 'RAG_SUPABASE_TIMEOUT_MS', default: '30000', schema: int(1000, 600_000), doc: 'Timeout of one REST call in the Supabase mode (a timed-out call is retried like a lost connection).' },
  supabaseMaxRequestBytes: {
    env: 'RAG_SUPABASE_MAX_REQUEST_BYTES',
    default: '4194304',
    schema: int(65_536, 100 * 1024 * 1024),
    doc: "Largest JSON body of one REST call in the Supabase mode: bigger saves are split into several calls (a call the gateway still refuses with 413 is halved).",
  },
  supabaseRealtime: {
    env: 'RAG_SUPABASE_REALTIME',
    default: 'true',
    schema: bool,
    doc: "Supabase mode: wake on new jobs through Supabase Realtime (postgres_changes on rag_ingestion_queue, which must be in the supabase_realtime publication); polling every RAG_POLL_INTERVAL_MS stays as the safety net. false: polling only.",
  },
  dataDir: { env: 'RAG_DATA_DIR', default: './.rag-worker', schema: text.min(1, 'must not be empty'), doc: 'Where the embedded database keeps its files.' },
  openaiApiKey: { env: 'OPENAI_API_KEY', default: '', schema: optionalText, secret: true, doc: 'Embedding API key. Empty: the built-in offline embedder (lexical feature hashing, not semantic).' },
  openaiBaseUrl: { env: 'OPENAI_BASE_URL', default: '', schema: optionalUrl, doc: 'Any OpenAI-compatible endpoint (Azure, Ollama, vLLM, TEI), e.g. http://localhost:11434/v1.' },
  embeddingModel: { env: 'RAG_EMBEDDING_MODEL', default: 'text-embedding-3-small', schema: text.min(1, 'must not be empty'), doc: 'Embedding model name sent to the provider; also decides the tokenizer.' },
  embeddingDimensions: {
    env: 'RAG_EMBEDDING_DIMENSIONS',
    default: '1536',
    schema: int(
      1,
      2000,
      "(pgvector's HNSW index on `vector` supports at most 2,000 dimensions): use text-embedding-3-large with RAG_EMBEDDING_DIMENSIONS=1536 or smaller — OpenAI's text-embedding-3 models accept a `dimensions` parameter",
    ),
    doc: "Vector size, at most 2000 (pgvector's HNSW index limit); must match rag_chunks.embedding (set at migrate time).",
  },
  embeddingBatch: { env: 'RAG_EMBEDDING_BATCH', default: '16', schema: int(1, 2048), doc: 'Inputs per embedding request (the API allows 2048 inputs / 300,000 tokens).' },
  embeddingCharLimit: { env: 'RAG_EMBEDDING_CHAR_LIMIT', default: '1200', schema: int(50, 100000), doc: 'Maximum characters per chunk.' },
  chunkMaxTokens: { env: 'RAG_CHUNK_MAX_TOKENS', default: '512', schema: int(16, 8191), doc: 'Maximum tokens per chunk, counted with the model\'s tokenizer (API limit 8191).' },
  embeddingRpm: { env: 'RAG_EMBEDDING_RPM', default: '', schema: optionalInt(1, 100_000_000), doc: 'Requests per minute allowed by your account (empty: learned from x-ratelimit-* headers).' },
  embeddingTpm: { env: 'RAG_EMBEDDING_TPM', default: '', schema: optionalInt(1, 10_000_000_000), doc: 'Tokens per minute allowed by your account (empty: learned from x-ratelimit-* headers).' },
  shareRateLimits: {
    env: 'RAG_SHARE_RATE_LIMITS',
    default: 'true',
    schema: bool,
    doc: 'Workers on one provider account (same endpoint and key) split its rate limits through the rag_rate_shares table, each drawing 1/N. false: each worker sends at the whole limit and only the provider\'s 429s share it.',
  },
  embeddingConcurrency: { env: 'RAG_EMBEDDING_CONCURRENCY', default: '8', schema: int(1, 256), doc: 'Embedding requests in flight at once, across all jobs.' },
  embeddingTimeoutMs: { env: 'RAG_EMBEDDING_TIMEOUT_MS', default: '60000', schema: int(100, 600_000), doc: 'Timeout of one embedding request.' },
  providerRetries: { env: 'RAG_PROVIDER_RETRIES', default: '6', schema: int(0, 100), doc: 'Retries of one provider request on transient failures (5xx, network, timeouts, malformed answers) before the job attempt fails and is re-queued with backoff. 429s are waited out and never count.' },
  pollIntervalMs: { env: 'RAG_POLL_INTERVAL_MS', default: '10000', schema: int(50, 3_600_000), doc: 'How often an idle worker polls the queue (LISTEN/NOTIFY wakes it sooner on a direct connection).' },
  listen: { env: 'RAG_LISTEN', default: 'true', schema: bool, doc: 'Wake on NOTIFY from the queue (direct connections). false: poll only (e.g. behind a transaction-mode pooler).' },
  pgHeapWarmupMb: {
    env: 'RAG_PG_HEAP_WARMUP_MB',
    default: '8',
    schema: int(0, 32, "(glibc raises its mmap threshold for freed blocks of at most 32 MB)"),
    doc: "Once per job connection, allocate and free this many MB in the PostgreSQL backend, raising glibc malloc's mmap threshold there so pgvector's HNSW inserts reuse heap memory instead of page-faulting fresh blocks for every row (halved the save CPU in bench f). A backend may keep up to twice this much free heap. 0: off.",
  },
  maxConcurrentJobs: { env: 'RAG_MAX_CONCURRENT_JOBS', default: '4', schema: int(1, 1000), doc: 'Jobs processed at once by this worker.' },
  threads: { env: 'RAG_THREADS', default: '', schema: optionalInt(1, 256), doc: 'Chunking threads (empty: os.availableParallelism()).' },
  workerId: { env: 'RAG_WORKER_ID', default: '', schema: optionalText, doc: 'Name of this worker in the queue (empty: host-pid-random).' },
  leaseSeconds: { env: 'RAG_LEASE_SECONDS', default: '30', schema: int(2, 3600), doc: 'Lease of a claimed job; heartbeats renew it every third of it. A dead worker\'s jobs are claimable after it.' },
  maxAttempts: { env: 'RAG_MAX_ATTEMPTS', default: '5', schema: int(1, 100), doc: 'Attempts per job (counted at claim) for jobs whose max_attempts column is null.' },
  retryBaseMs: { env: 'RAG_RETRY_BASE_MS', default: '5000', schema: int(0, 3_600_000), doc: 'First re-queue delay after a transient failure; doubles each attempt, with jitter.' },
  retryMaxMs: { env: 'RAG_RETRY_MAX_MS', default: '600000', schema: int(0, 86_400_000), doc: 'Cap of the re-queue delay.' },
  shutdownGraceMs: { env: 'RAG_SHUTDOWN_GRACE_MS', default: '20000', schema: int(0, 600_000), doc: 'On SIGTERM/SIGINT: time to finish in-flight work before unfinished jobs are released.' },
  logFormat: { env: 'RAG_LOG_FORMAT', default: 'auto', schema: z.enum(['auto', 'pretty', 'json']), doc: 'auto: human-readable on a TTY, JSON lines otherwise.' },
  logLevel: { env: 'RAG_LOG_LEVEL', default: 'info', schema: z.enum(['debug', 'info', 'warn', 'error']), doc: 'Minimum log level.' },
  httpPort: { env: 'RAG_HTTP_PORT', default: '', schema: optionalInt(0, 65535), doc: '`start` serves /health, /ready, /metrics and the status page on this port (0: any free port, logged). Empty: the platform\'s PORT when set, else no HTTP server.' },
  platformPort: { env: 'PORT', default: '', schema: optionalInt(0, 65535), doc: 'The port a platform (Railway, Render, Fly.io, Heroku) assigns; used when RAG_HTTP_PORT is empty.' },
  httpHost: { env: 'RAG_HTTP_HOST', default: '0.0.0.0', schema: text.min(1, 'must not be empty'), doc: 'Address the HTTP server listens on (127.0.0.1: this machine only).' },
  httpToken: { env: 'RAG_HTTP_TOKEN', default: '', schema: optionalText.pipe(z.string().min(16, 'must be at least 16 characters').optional()), secret: true, doc: 'Bearer token required by every endpoint but /health (Authorization: Bearer <token>). Empty: no token.' },
  alertWebhookUrls: {
    env: 'RAG_ALERT_WEBHOOK_URL',
    default: '',
    schema: text.transform((v, ctx) => {
      const urls = v.split(/[\s,]+/).filter(Boolean);
      for (const u of urls) {
        if (!/^https?:\/\/[^\s/]+/.test(u) || !URL.canParse(u)) ctx.addIssue({ code: 'custom', message: `expected http(s) URLs separated by commas, got one that is not a URL (${urls.indexOf(u) + 1} of ${urls.length})` });
      }
      return urls;
    }),
    secret: true,
    doc: 'Slack incoming-webhook or Discord webhook URLs (comma-separated) for alerts: final job failures, worker-level faults and recoveries, crashes, long jobs.',
  },
  alertFormat: { env: 'RAG_ALERT_FORMAT', default: 'auto', schema: z.enum(['auto', 'slack', 'discord']), doc: 'Payload of the alert webhooks. auto: Discord for discord.com/discordapp.com URLs, Slack otherwise.' },
  longJobMs: { env: 'RAG_LONG_JOB_MS', default: '300000', schema: int(1000, 86_400_000), doc: 'Alert once when a job has been running this long.' },
  queueSampleMs: { env: 'RAG_QUEUE_SAMPLE_MS', default: '15000', schema: int(1000, 3_600_000), doc: 'How often the HTTP server samples queue depth from the database (for /metrics and the status page).' },
  enableClaudeAnalysis: {
    env: 'RAG_ENABLE_CLAUDE_ANALYSIS',
    default: 'false',
    schema: bool,
    doc: 'Claude situates every chunk in its transcript (contextual retrieval: the context is stored in rag_chunks.context and embedded and keyword-indexed with the chunk) and analyses each transcript (rag_documents.analysis). Needs ANTHROPIC_API_KEY.',
  },
  anthropicApiKey: { env: 'ANTHROPIC_API_KEY', default: '', schema: optionalText, secret: true, doc: 'Claude API key (with RAG_ENABLE_CLAUDE_ANALYSIS).' },
  anthropicBaseUrl: { env: 'ANTHROPIC_BASE_URL', default: '', schema: optionalUrl, doc: 'Another Messages API endpoint (a gateway or proxy). Empty: api.anthropic.com.' },
  claudeModel: { env: 'RAG_CLAUDE_MODEL', default: 'claude-haiku-5-5', schema: text.min(1, 'must not be empty'), doc: 'Model for chunk contexts (and the analysis, unless RAG_CLAUDE_ANALYSIS_MODEL is set).' },
  claudeAnalysisModel: { env: 'RAG_CLAUDE_ANALYSIS_MODEL', default: '', schema: optionalText, doc: 'Model for the transcript analysis. Empty: RAG_CLAUDE_MODEL.' },
  claudeFeatures: {
    env: 'RAG_CLAUDE_FEATURES',
    default: 'context,analysis',
    schema: text.transform((v, ctx) => {
      const items = v.split(/[\s,]+/).filter(Boolean);
      for (const item of items) if (item !== 'context' && item !== 'analysis') ctx.addIssue({ code: 'custom', message: `expected context and/or analysis, got ${JSON.stringify(item)}` });
      if (items.length === 0) ctx.addIssue({ code: 'custom', message: 'expected context and/or analysis' });
      return { context: items.includes('context'), analysis: items.includes('analysis') };
    }),
    doc: 'What Claude does when enabled: context (per chunk), analysis (per transcript), or both.',
  },
  claudeRequired: {
    env: 'RAG_CLAUDE_REQUIRED',
    default: 'true',
    schema: bool,
    doc: 'When Claude stays unavailable: true keeps jobs waiting and retrying (no chunk is stored without its context); false embeds the rest of the job without context and marks its analysis skipped, with the reason.',
  },
  claudeConcurrency: { env: 'RAG_CLAUDE_CONCURRENCY', default: '3', schema: int(1, 64), doc: 'Claude requests in flight at once, across all jobs.' },
  claudeRpm: { env: 'RAG_CLAUDE_RPM', default: '', schema: optionalInt(1, 100_000_000), doc: 'Claude requests per minute (empty: learned from anthropic-ratelimit-* headers).' },
  claudeItpm: { env: 'RAG_CLAUDE_ITPM', default: '', schema: optionalInt(1, 10_000_000_000), doc: 'Claude input tokens per minute, cache reads not counted (empty: learned from headers).' },
  claudeOtpm: { env: 'RAG_CLAUDE_OTPM', default: '', schema: optionalInt(1, 10_000_000_000), doc: 'Claude output tokens per minute (empty: learned from headers).' },
  claudeEffort: {
    env: 'RAG_CLAUDE_EFFORT',
    default: 'low',
    schema: z.enum(['low', 'medium', 'high', 'none']),
    doc: "output_config.effort sent with every Claude request (low: short contexts, little thinking). none: not sent (models without the effort parameter).",
  },
  claudeWindowTokens: {
    env: 'RAG_CLAUDE_WINDOW_TOKENS',
    default: '80000',
    schema: int(2000, 900_000),
    doc: 'Largest transcript window sent to Claude as one cached block; a longer transcript is cut into consecutive windows and each chunk is situated in its own. 80,000 keeps every request under the 100,000-token prompt above which claude-haiku-5-5 bills 5× (about 6 hours of speech fit).',
  },
  claudeTimeoutMs: { env: 'RAG_CLAUDE_TIMEOUT_MS', default: '120000', schema: int(1000, 900_000), doc: 'Timeout of one Claude request.' },
  prices: {
    env: 'RAG_PRICES',
    default: '',
    schema: optionalText,
    doc: 'Price overrides for the cost recorded on every job: inline JSON or a path to a JSON file, e.g. {"claude":{"my-model":{"input":1,"output":5}},"embedding":{"my-embedder":0.02}} (USD per million tokens; cache rates default to 1.25× and 0.1× input).',
  },
} satisfies Record<string, SettingSpec>;

type Settings = typeof SETTINGS;
type Parsed<K extends keyof Settings> = z.output<Settings[K]['schema']>;

export type StoreKind = 'postgres' | 'embedded' | 'supabase';
export type EmbedderKind = 'openai' | 'local';

export type Config = { readonly [K in keyof Settings]: Parsed<K> } & {
  readonly store: StoreKind;
  readonly embedder: EmbedderKind;
  readonly workerId: string;
  readonly threads: number;
  readonly heartbeatMs: number;
};

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export type Overrides = Partial<Record<keyof Settings, string | number | boolean | undefined>>;

/**
 * Validate the environment (plus CLI overrides, which win) and return a frozen Config.
 * Throws ConfigError listing one line per bad value.
 */
export function resolveConfig(env: Record<string, string | undefined>, overrides: Overrides = {}): Config {
  const problems: string[] = [];
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(SETTINGS) as [keyof Settings, SettingSpec][]) {
    const override = overrides[key];
    // An empty value (e.g. `RAG_EMBEDDING_BATCH=` in a .env file) means "use the default".
    const given = override !== undefined ? String(override) : env[spec.env];
    const raw = given === undefined || given.trim() === '' ? spec.default : given;
    const result = spec.schema.safeParse(raw);
    if (result.success) {
      out[key] = result.data;
    } else {
      const shown = spec.secret ? '(hidden)' : JSON.stringify(shownValue(raw));
      problems.push(`${spec.env}=${shown}: ${result.error.issues.map((i) => i.message).join('; ')}`);
    }
  }
  if (problems.length === 0) problems.push(...crossChecks(out));
  if (problems.length > 0) throw new ConfigError(problems);

  const store: StoreKind = out.databaseUrl ? 'postgres' : out.supabaseUrl || out.supabaseServiceRoleKey ? 'supabase' : 'embedded';
  const leaseSeconds = out.leaseSeconds as number;
  return Object.freeze({
    ...(out as { [K in keyof Settings]: Parsed<K> }),
    store,
    embedder: out.openaiApiKey || out.openaiBaseUrl ? 'openai' : 'local',
    workerId: (out.workerId as string | undefined) ?? defaultWorkerId(),
    threads: (out.threads as number | undefined) ?? Math.max(1, os.availableParallelism()),
    heartbeatMs: Math.max(500, Math.floor((leaseSeconds * 1000) / 3)),
  }) as Config;
}

function crossChecks(c: Record<string, unknown>): string[] {
  const problems: string[] = [];
  if (c.supabaseUrl && !c.supabaseServiceRoleKey && !c.databaseUrl) {
    problems.push('SUPABASE_URL is set but SUPABASE_SERVICE_ROLE_KEY is missing (or set DATABASE_URL to use a direct connection)');
  }
  if (c.supabaseServiceRoleKey && !c.supabaseUrl && !c.databaseUrl) {
    problems.push('SUPABASE_SERVICE_ROLE_KEY is set but SUPABASE_URL is missing');
  }
  if (c.databaseUrl) {
    const u = String(c.databaseUrl);
    if (!/^postgres(ql)?:\/\//.test(u)) problems.push('DATABASE_URL: expected a postgres:// or postgresql:// URL');
  }
  if (c.enableClaudeAnalysis && !c.anthropicApiKey) {
    problems.push('RAG_ENABLE_CLAUDE_ANALYSIS=true needs ANTHROPIC_API_KEY');
  }
  if ((c.retryMaxMs as number) < (c.retryBaseMs as number)) {
    problems.push(`RAG_RETRY_MAX_MS=${c.retryMaxMs}: must be at least RAG_RETRY_BASE_MS (${c.retryBaseMs})`);
  }
  return problems;
}

function defaultWorkerId(): string {
  return `${os.hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * The secret values in a config, for redaction: every secret setting whole, plus the credentials inside the
 * URL settings (userinfo password as written and percent-decoded, a token given as userinfo, secret query
 * parameters), so they are removed even where they appear without their URL.
 */
export function secretsOf(config: Config): string[] {
  const out = (Object.entries(SETTINGS) as [keyof Settings, SettingSpec][])
    .filter(([, spec]) => spec.secret)
    .map(([key]) => config[key])
    .filter((v): v is string => typeof v === 'string' && v.length > 0);
  const webhookList = config.alertWebhookUrls.join(',');
  if (webhookList !== '') out.push(webhookList);
  // A user name without a password is a role name in DATABASE_URL, but a token in an HTTP endpoint's URL.
  out.push(...urlCredentials(config.databaseUrl, { userIsToken: false }));
  out.push(...urlCredentials(config.openaiBaseUrl, { userIsToken: true }));
  out.push(...urlCredentials(config.supabaseUrl, { userIsToken: true }));
  out.push(...urlCredentials(config.anthropicBaseUrl, { userIsToken: true }));
  // Each webhook URL is a credential on its own (Slack's and Discord's carry their token in the path).
  out.push(...config.alertWebhookUrls);
  return [...new Set(out)];
}

/** A non-secret value as shown to the user (config output, validation errors): URL credentials hidden. */
function shownValue(value: string): string {
  return redact(redactUrlCredentials(value, { allUserinfo: true }));
}

/** Rows for `rag-worker config` and the README table: env name, default, effective value (secrets hidden). */
export function describeConfig(config?: Config): { env: string; default: string; value?: string; doc: string }[] {
  return (Object.entries(SETTINGS) as [keyof Settings, SettingSpec][]).map(([key, spec]) => ({
    env: spec.env,
    default: spec.default,
    value: config === undefined ? undefined : spec.secret ? (isSet(config[key]) ? '(set)' : '') : shownValue(String(config[key] ?? '')),
    doc: spec.doc,
  }));
}

function isSet(value: unknown): boolean {
  return Array.isArray(value) ? value.length > 0 : Boolean(value);
}
