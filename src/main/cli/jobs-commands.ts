/** `jobs list` and `prune`: reading the queue as a table, and deleting finished jobs in bounded batches. */
import { secretsOf } from '../../shared/config.ts';
import { parseDurationSeconds } from '../../shared/durations.ts';
import { redact } from '../../shared/redact.ts';
import { JOB_STATUSES, type JobStatus } from '../../shared/types.ts';
import { printJson, UsageError } from './context.ts';
import { jobView, withStore } from './queue-commands.ts';

const FINISHED: readonly JobStatus[] = ['complete', 'failed', 'cancelled'];
const MAX_LIST = 10_000;

export async function jobsListCommand(argv: Record<string, unknown>): Promise<void> {
  const status = argv.status as string | undefined;
  if (status !== undefined && !(JOB_STATUSES as readonly string[]).includes(status)) {
    throw new UsageError(`--status ${JSON.stringify(status)}: expected one of ${JOB_STATUSES.join(', ')}`);
  }
  const limit = Number(argv.limit ?? 50);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST) throw new UsageError(`--limit ${String(argv.limit)}: expected a whole number from 1 to ${MAX_LIST}`);
  await withStore(argv, async (store, _queue, config) => {
    const jobs = await store.listJobs({ status: status as JobStatus | undefined, documentId: argv.documentId as string | undefined, limit });
    const secrets = secretsOf(config);
    if (argv.json) return printJson(jobs.map((j) => jobView(j, secrets)));
    if (jobs.length === 0) return console.log('No jobs match.');
    const rows = jobs.map((j) => [
      j.id,
      j.status,
      `${j.document_id} (${j.version})`,
      `${j.attempts}${j.max_attempts ? `/${j.max_attempts}` : ''}`,
      j.segments_total ? `${Math.floor((100 * j.segments_done) / j.segments_total)}% of ${j.segments_total}` : j.status === 'processing' ? 'parsing' : '',
      (j.completed_at ?? j.started_at ?? j.submitted_at).toISOString().replace('T', ' ').slice(0, 19),
      j.error_detail ? redact(j.error_detail, secrets).slice(0, 60) : '',
    ]);
    printTable(['id', 'status', 'document (version)', 'attempts', 'progress', 'when (UTC)', 'error'], rows);
  });
}

export async function pruneCommand(argv: Record<string, unknown>): Promise<void> {
  let olderThan: number;
  try {
    olderThan = parseDurationSeconds(String(argv.olderThan ?? ''), '--older-than');
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const statuses = parseStatuses(argv.status);
  const batch = Number(argv.batch ?? 1000);
  if (!Number.isInteger(batch) || batch < 1 || batch > 100_000) throw new UsageError(`--batch ${String(argv.batch)}: expected a whole number from 1 to 100000`);
  await withStore(argv, async (store) => {
    let deleted = 0;
    let batches = 0;
    for (;;) {
      const n = await store.pruneJobs(olderThan, statuses, batch);
      if (n === 0) break;
      deleted += n;
      batches++;
      if (!argv.json) process.stderr.write(`\rdeleted ${deleted} job(s)…`);
    }
    if (!argv.json && batches > 0) process.stderr.write('\n');
    if (argv.json) return printJson({ deleted, batches, statuses, older_than_seconds: olderThan });
    console.log(`Deleted ${deleted} ${statuses.join('/')} job(s) finished more than ${String(argv.olderThan)} ago (${batches} batch(es) of at most ${batch}); their chunks are kept.`);
  });
}

function parseStatuses(value: unknown): JobStatus[] {
  const given = (Array.isArray(value) ? value : value === undefined ? [] : [value]).flatMap((v) => String(v).split(',')).map((s) => s.trim()).filter(Boolean);
  if (given.length === 0) return [...FINISHED];
  for (const s of given) {
    if (!(FINISHED as readonly string[]).includes(s)) throw new UsageError(`--status ${JSON.stringify(s)}: only finished jobs can be pruned (${FINISHED.join(', ')})`);
  }
  return [...new Set(given)] as JobStatus[];
}

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  console.log(line(header));
  console.log(line(widths.map((w) => '─'.repeat(w))));
  for (const r of rows) console.log(line(r));
}
