/** `migrate`, `status`, `cancel`, `retry`, `config`: commands that only talk to the database (or print settings). */
import { describeConfig, secretsOf } from '../../shared/config.ts';
import { redact } from '../../shared/redact.ts';
import { migrate, migrationSql } from '../stores/migrate.ts';
import type { JobRow, QueueApi } from '../stores/queue-store.ts';
import { openQueue, type OpenQueue } from './open-queue.ts';
import type { Config } from '../../shared/config.ts';
import type { Logger } from '../logging/logger.ts';
import { loadConfig, makeLogger, printJson } from './context.ts';
import { formatUsage } from './show-command.ts';

/**
 * Runs fn with the queue: the database (schema checked; the embedded one prepares itself on first use), or the
 * process holding the embedded database, through its control socket.
 */
export async function withStore<T>(argv: Record<string, unknown>, fn: (store: QueueApi, queue: OpenQueue, config: Config, logger: Logger) => Promise<T>, options: { schema?: boolean } = {}): Promise<T> {
  const config = loadConfig(argv);
  const logger = makeLogger(config, true);
  const queue = await openQueue(config, logger, options);
  try {
    return await fn(queue.store, queue, config, logger);
  } finally {
    await queue.close();
  }
}

export async function migrateCommand(argv: Record<string, unknown>): Promise<void> {
  if (argv.print) {
    const config = loadConfig(argv);
    process.stdout.write(migrationSql(config.embeddingDimensions));
    return;
  }
  await withStore(
    argv,
    async (_store, { sql, servedBy, supabase }, config) => {
      if (supabase) {
        // PostgREST cannot run DDL: the migrations are applied with the Supabase CLI or the SQL editor.
        const { inspectSupabase, SUPABASE_APPLY_ADVICE } = await import('../stores/supabase-open.ts');
        const { SCHEMA_VERSION } = await import('../stores/migrate.ts');
        const facts = await inspectSupabase(supabase);
        if (facts.applied && (facts.version ?? 0) >= SCHEMA_VERSION) {
          console.log(`✅ The Supabase project has schema version ${facts.version}: nothing to do`);
          return;
        }
        console.error(
          `The Supabase mode reaches the database through the REST API, which cannot change the schema ` +
            `(${facts.applied ? `version ${facts.version}, this worker needs ${SCHEMA_VERSION}` : 'not applied'}): ${SUPABASE_APPLY_ADVICE}. ` +
            'Or set DATABASE_URL to the database connection string and run `rag-worker migrate`.',
        );
        process.exitCode = 1;
        return;
      }
      if (!sql) {
        console.log(`✅ The embedded database in ${config.dataDir} is open in process ${servedBy}, which prepared its schema: nothing to do`);
        return;
      }
      const result = await migrate(sql, config.embeddingDimensions);
      const where = sql.kind === 'embedded' ? `embedded database in ${config.dataDir}` : 'PostgreSQL';
      const what = result.from === result.to ? `schema version ${result.to}, up to date` : `schema version ${result.from} → ${result.to}`;
      console.log(`✅ Schema applied (${where}; ${what}; embeddings vector(${config.embeddingDimensions}))${result.applied.length ? `: ${result.applied.join(', ')}` : ''}`);
    },
    { schema: false },
  );
}

/**
 * Every string in a value, redacted. error_detail and attempt_history are redacted when written, but a row may
 * have been written by an older version or by a worker that did not know this config's secrets.
 */
function redactDeep<T>(value: T, secrets: readonly string[]): T {
  if (typeof value === 'string') return redact(value, secrets) as T;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, secrets)) as T;
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactDeep(v, secrets)])) as T;
  }
  return value;
}

export function jobView(j: JobRow, secrets: readonly string[]) {
  return {
    id: j.id,
    status: j.status,
    document_id: j.document_id,
    version: j.version,
    title: j.title,
    format: j.format,
    priority: j.priority,
    attempts: j.attempts,
    max_attempts: j.max_attempts,
    worker_id: j.worker_id,
    submitted_at: j.submitted_at,
    started_at: j.started_at,
    completed_at: j.completed_at,
    run_at: j.run_at,
    lease_expires_at: j.lease_expires_at,
    segments_total: j.segments_total,
    segments_done: j.segments_done,
    chunks_total: j.chunks_total,
    chunks_done: j.chunks_done,
    chunks_reused: j.chunks_reused,
    tokens_embedded: j.tokens_embedded,
    usage: j.usage,
    error_detail: j.error_detail === null ? null : redact(j.error_detail, secrets),
    attempt_history: redactDeep(j.attempt_history, secrets),
  };
}

export async function statusCommand(argv: Record<string, unknown>): Promise<void> {
  await withStore(argv, async (store, _queue, config) => {
    const jobId = argv.jobId as string | undefined;
    if (!jobId) {
      const [counts, usage] = await Promise.all([store.counts(), store.usageTotals()]);
      if (argv.json) return printJson({ ...counts, usage });
      for (const [status, n] of Object.entries(counts)) console.log(`${status.padEnd(11)} ${n}`);
      const spent = formatUsage(usage);
      if (spent) console.log(`spent       ${spent} (all jobs in the queue table)`);
      return;
    }
    const job = await store.getJob(jobId);
    if (!job) {
      console.error(`No job ${jobId}`);
      process.exitCode = 1;
      return;
    }
    const secrets = secretsOf(config);
    if (argv.json) return printJson(jobView(job, secrets));
    const pct = job.chunks_total ? ` (${Math.floor((100 * job.chunks_done) / job.chunks_total)}%)` : '';
    console.log(`Job ${job.id}: ${job.status}`);
    console.log(`  document  ${job.document_id} (version ${job.version})${job.title ? ` — ${job.title}` : ''}`);
    console.log(`  attempts  ${job.attempts}${job.max_attempts ? `/${job.max_attempts}` : ''}${job.worker_id ? `, worker ${job.worker_id}` : ''}`);
    console.log(`  progress  segments ${job.segments_done}/${job.segments_total ?? '?'}, chunks ${job.chunks_done}/${job.chunks_total ?? '?'}${pct}, ${job.chunks_reused} reused, ${job.tokens_embedded} tokens embedded`);
    const spent = formatUsage(job.usage);
    if (spent) console.log(`  cost      ${spent}`);
    if (job.status === 'queued' && job.run_at.getTime() > Date.now()) console.log(`  next try  ${job.run_at.toISOString()}`);
    if (job.error_detail) console.log(`  error     ${redact(job.error_detail, secrets)}`);
  });
}

export async function cancelCommand(argv: Record<string, unknown>): Promise<void> {
  await withStore(argv, async (store) => {
    const status = await store.cancelJob(argv.jobId as string);
    if (status === 'cancelled') console.log(`Job ${argv.jobId} cancelled (a worker running it stops at its next heartbeat)`);
    else {
      console.error(status === 'missing' ? `No job ${argv.jobId}` : `Job ${argv.jobId} is ${status}; only queued or processing jobs can be cancelled`);
      process.exitCode = 1;
    }
  });
}

export async function retryCommand(argv: Record<string, unknown>): Promise<void> {
  const ids = (argv.jobIds as string[] | undefined) ?? [];
  if (!argv.failed && ids.length === 0) {
    console.error('Name job ids to retry, or --failed for every failed job');
    process.exitCode = 2;
    return;
  }
  await withStore(argv, async (store) => {
    const requeued = await store.retryJobs(argv.failed ? null : ids);
    console.log(`Re-queued ${requeued.length} job(s)${requeued.length ? `: ${requeued.join(', ')}` : ''}`);
    const skipped = ids.filter((id) => !requeued.includes(id));
    if (skipped.length > 0) {
      console.error(`Not re-queued (not failed/cancelled, unknown, or that document version is already queued): ${skipped.join(', ')}`);
      process.exitCode = 1;
    }
  });
}

export async function configCommand(argv: Record<string, unknown>): Promise<void> {
  const config = loadConfig(argv);
  const rows = describeConfig(config);
  if (argv.json) return printJson(Object.fromEntries(rows.map((r) => [r.env, r.value])));
  console.log(`store: ${config.store}    embedder: ${config.embedder}    worker: ${config.workerId}    threads: ${config.threads}`);
  for (const r of rows) console.log(`${r.env.padEnd(28)} ${(r.value ?? '').padEnd(24)} ${r.doc}`);
}
