/**
 * `rag-worker doctor`: every check a first deployment needs, each with what it found and, when it fails, the fix.
 * Checks run in order; one that cannot run because an earlier one failed says so (skipped) instead of failing
 * with a confusing error. Nothing here changes the database or posts a visible message.
 */
import net from 'node:net';
import type { Config } from '../../shared/config.ts';
import { secretsOf } from '../../shared/config.ts';
import { messageOf, WorkerFatalError } from '../../shared/errors.ts';
import { oneLine } from '../../shared/redact.ts';
import { claudePriceOf } from '../../shared/claude/prices.ts';
import { loadPrices, probeClaude } from '../analysis/claude-setup.ts';
import { formatOf } from '../alerts/alert.ts';
import { ChunkPool } from '../coordinator/chunk-pool.ts';
import { httpPortOf } from '../http/worker-http.ts';
import type { Logger } from '../logging/logger.ts';
import { createProvider } from '../runtime.ts';
import { openDatabase } from '../stores/open-database.ts';
import { checkAccess, inspectSchema, SCHEMA_VERSION, type SchemaFacts } from '../stores/migrate.ts';
import type { SqlClient } from '../stores/sql-client.ts';

export interface CheckResult {
  check: string;
  status: 'ok' | 'fail' | 'skip';
  detail: string;
  fix?: string;
}

const WEBHOOK_TIMEOUT_MS = 5_000;

export async function runChecks(config: Config, logger: Logger): Promise<CheckResult[]> {
  const secrets = secretsOf(config);
  const clean = (error: unknown) => oneLine(messageOf(error), secrets, 400);
  const results: CheckResult[] = [];
  const add = (r: CheckResult) => results.push(r);

  add({
    check: 'settings',
    status: 'ok',
    detail: `store ${config.store}, embedder ${config.embedder === 'openai' ? `${config.openaiBaseUrl ? 'OpenAI-compatible' : 'OpenAI'} ${config.embeddingModel}` : 'offline'}, ${config.embeddingDimensions} dimensions`,
  });

  let sql: SqlClient | undefined;
  let facts: SchemaFacts | undefined;
  if (config.store === 'supabase') {
    add(await supabaseCheck(config, clean));
    for (const check of ['access', 'pgvector', 'dimensions']) add({ check, status: 'skip', detail: 'Supabase mode (REST API): checked as part of the schema over the API' });
  } else try {
    sql = await openDatabase(config, logger);
    const [v] = await sql.query<{ v: string }>('select version() as v');
    add({ check: 'database', status: 'ok', detail: sql.kind === 'embedded' ? `embedded PGlite in ${config.dataDir} (${shortVersion(v.v)})` : `reachable (${shortVersion(v.v)})` });
  } catch (error) {
    add({ check: 'database', status: 'fail', detail: clean(error), fix: databaseFix(config, error) });
  }
  if (sql) {
    try {
      facts = await inspectSchema(sql);
    } catch (error) {
      add({ check: 'schema', status: 'fail', detail: clean(error), fix: 'check that the database user may read the system catalogs' });
    }
  }
  if (sql && facts) {
    if (sql.kind === 'postgres' && facts.applied) {
      try {
        await checkAccess(sql);
        const [who] = await sql.query<{ role: string }>('select current_user as role');
        add({ check: 'access', status: 'ok', detail: `role ${who.role} can read, update and claim queue rows` });
      } catch (error) {
        add({ check: 'access', status: 'fail', detail: clean(error), fix: 'connect as the schema owner (on Supabase: the postgres user), or grant the role what the README\'s "Privileges" section lists' });
      }
    } else {
      add({ check: 'access', status: 'skip', detail: sql.kind === 'embedded' ? 'embedded database: this process owns it' : 'schema not applied yet' });
    }
    const embeddedFresh = sql.kind === 'embedded' && !facts.applied;
    add(
      facts.pgvector !== null
        ? { check: 'pgvector', status: 'ok', detail: `version ${facts.pgvector}` }
        : embeddedFresh
          ? { check: 'pgvector', status: 'ok', detail: 'bundled with the embedded database (created on first use)' }
          : { check: 'pgvector', status: 'fail', detail: 'the vector extension is not installed in this database', fix: 'run `rag-worker migrate` (it creates the extension; on self-hosted PostgreSQL install pgvector first, e.g. the postgresql-<version>-pgvector package)' },
    );
    if (embeddedFresh) {
      add({ check: 'schema', status: 'ok', detail: 'not created yet: the first command creates it' });
    } else if (!facts.applied) {
      add({ check: 'schema', status: 'fail', detail: 'the rag-worker schema is not applied', fix: 'run `rag-worker migrate` (or apply supabase/migrations/*.sql with `supabase db push`)' });
    } else if ((facts.version ?? 0) < SCHEMA_VERSION) {
      add({ check: 'schema', status: 'fail', detail: `version ${facts.version}, this worker needs ${SCHEMA_VERSION}`, fix: 'run `rag-worker migrate` (idempotent; keeps your data)' });
    } else {
      add({ check: 'schema', status: 'ok', detail: `version ${facts.version}` });
    }
    if (facts.applied) {
      add(
        facts.dimensions === config.embeddingDimensions
          ? { check: 'dimensions', status: 'ok', detail: `rag_chunks.embedding is vector(${facts.dimensions}) = RAG_EMBEDDING_DIMENSIONS` }
          : { check: 'dimensions', status: 'fail', detail: `RAG_EMBEDDING_DIMENSIONS=${config.embeddingDimensions} but rag_chunks.embedding is vector(${facts.dimensions})`, fix: `set RAG_EMBEDDING_DIMENSIONS=${facts.dimensions}, or re-create rag_chunks for the new size` },
      );
    } else {
      add({ check: 'dimensions', status: 'skip', detail: 'no table yet' });
    }
  } else {
    for (const check of ['access', 'pgvector', 'schema', 'dimensions']) if (!results.some((r) => r.check === check)) add({ check, status: 'skip', detail: 'the database is not reachable' });
  }
  await sql?.close();

  add(await providerCheck(config, clean));
  add(config.enableClaudeAnalysis ? await claudeCheck(config, clean) : { check: 'claude', status: 'skip', detail: 'not enabled (RAG_ENABLE_CLAUDE_ANALYSIS)' });
  if (config.alertWebhookUrls.length === 0) add({ check: 'webhooks', status: 'skip', detail: 'no RAG_ALERT_WEBHOOK_URL' });
  for (const [i, url] of config.alertWebhookUrls.entries()) add(await webhookCheck(url, i, config, secrets));
  add(await portCheck(config));
  return results;
}

/** Supabase mode: the REST API answers with the service-role key, and the schema is current and of our dimension. */
async function supabaseCheck(config: Config, clean: (e: unknown) => string): Promise<CheckResult> {
  const { openSupabaseStore, checkSupabaseSchema, SUPABASE_APPLY_ADVICE } = await import('../stores/supabase-open.ts');
  const store = openSupabaseStore(config);
  try {
    await checkSupabaseSchema(store, config.embeddingDimensions);
    const facts = await store.schemaFacts();
    return { check: 'schema', status: 'ok', detail: `Supabase REST API at ${store.rpc.url}: schema version ${facts.version}, pgvector ${facts.pgvector}, vector(${facts.dimensions})` };
  } catch (error) {
    const setting = (error as { setting?: string }).setting;
    return { check: 'schema', status: 'fail', detail: clean(error), fix: setting ? `check ${setting}` : SUPABASE_APPLY_ADVICE };
  }
}

/** The key and model answer a token count (free), and the price table knows the model. */
async function claudeCheck(config: Config, clean: (e: unknown) => string): Promise<CheckResult> {
  try {
    const prices = loadPrices(config);
    await probeClaude(config);
    const priced = claudePriceOf(prices, config.claudeModel);
    return {
      check: 'claude',
      status: 'ok',
      detail: `${config.claudeModel} answers${priced ? `; $${priced.input}/$${priced.output} per million input/output tokens` : ' (no price in the table: add it with RAG_PRICES)'}`,
    };
  } catch (error) {
    const setting = (error as { setting?: string }).setting;
    return { check: 'claude', status: 'fail', detail: clean(error), ...(setting ? { fix: `check ${setting}` } : {}) };
  }
}

async function providerCheck(config: Config, clean: (e: unknown) => string): Promise<CheckResult> {
  const pool = new ChunkPool(1);
  try {
    const provider = await createProvider(config, pool);
    const t0 = performance.now();
    const result = await provider.embed(['rag-worker doctor']);
    const ms = Math.round(performance.now() - t0);
    const dims = result.vectors[0]?.slice(1, -1).split(',').length;
    const limits = result.rateLimit?.limitTokens ? `; limits ${result.rateLimit.limitRequests ?? '?'} requests/min, ${result.rateLimit.limitTokens} tokens/min` : '';
    return {
      check: 'provider',
      status: 'ok',
      detail: provider.remote ? `${provider.name} ${provider.model}: one embedding of ${dims} dimensions in ${ms} ms${limits}` : `offline embedder (${provider.model}; set OPENAI_API_KEY for semantic search)`,
    };
  } catch (error) {
    const setting = error instanceof WorkerFatalError ? error.setting : undefined;
    return { check: 'provider', status: 'fail', detail: clean(error), fix: setting ? `check ${setting}` : 'check OPENAI_BASE_URL and the network path to it (a proxy, a firewall)' };
  } finally {
    await pool.close();
  }
}

/**
 * Reachable and accepted, without posting anything: Discord answers GET on a webhook URL with the webhook; Slack
 * answers an empty POST with 400 (no_text / invalid_payload) when the URL is valid and 403/404 when it is not.
 */
async function webhookCheck(url: string, i: number, config: Config, secrets: readonly string[]): Promise<CheckResult> {
  const format = formatOf(url, config.alertFormat);
  const label = `webhook ${i + 1}`;
  const host = new URL(url).host;
  try {
    const res =
      format === 'discord'
        ? await fetch(url, { signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS) })
        : await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}', signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS) });
    const text = (await res.text()).slice(0, 100);
    const ok = format === 'discord' ? res.ok : res.status === 400 || res.ok;
    return ok
      ? { check: label, status: 'ok', detail: `${format} webhook at ${host} answers (${res.status})` }
      : { check: label, status: 'fail', detail: `${format} webhook at ${host} answered ${res.status} ${oneLine(text, [...secrets, url], 80)}`, fix: 'the URL was revoked or mistyped: create a new webhook and set RAG_ALERT_WEBHOOK_URL' };
  } catch (error) {
    return { check: label, status: 'fail', detail: `${format} webhook at ${host} is not reachable: ${oneLine(messageOf(error), [...secrets, url], 200)}`, fix: 'check RAG_ALERT_WEBHOOK_URL and outbound HTTPS from this machine' };
  }
}

async function portCheck(config: Config): Promise<CheckResult> {
  const where = httpPortOf(config);
  if (!where) return { check: 'http port', status: 'skip', detail: 'no RAG_HTTP_PORT or PORT: `start` serves no HTTP' };
  if (where.port === 0) return { check: 'http port', status: 'ok', detail: `${where.setting}=0: any free port` };
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', (error: NodeJS.ErrnoException) =>
      resolve({ check: 'http port', status: 'fail', detail: `${where.setting}=${where.port}: ${error.code === 'EADDRINUSE' ? 'already in use' : error.code ?? error.message} on ${config.httpHost}`, fix: `stop what listens there, or choose another ${where.setting}` }),
    );
    server.listen(where.port, config.httpHost, () => server.close(() => resolve({ check: 'http port', status: 'ok', detail: `${where.setting}=${where.port} is free on ${config.httpHost}` })));
  });
}

function databaseFix(config: Config, error: unknown): string {
  if (config.store === 'embedded') return `another process may hold ${config.dataDir} (a running worker); stop it, or use DATABASE_URL for several processes`;
  if (config.store === 'supabase') return 'set DATABASE_URL to the Supabase connection string (session pooler or direct)';
  const setting = error instanceof WorkerFatalError ? error.setting : undefined;
  return setting ? `check ${setting}` : 'check DATABASE_URL (host, port, database, user, password) and that PostgreSQL accepts connections from here';
}

function shortVersion(version: string): string {
  return /PostgreSQL [\d.]+/.exec(version)?.[0] ?? version.slice(0, 40);
}
