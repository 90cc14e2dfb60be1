#!/usr/bin/env node
/**
 * rag-worker command line (yargs). Settings come from the environment (plus .env.local and .env), and any
 * setting can be overridden by a flag named after it (RAG_MAX_CONCURRENT_JOBS → --max-concurrent-jobs).
 */
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { SETTINGS } from '../shared/config.ts';
import { TRANSCRIPT_FORMATS } from '../shared/types.ts';
import { crashWith, exitWith } from './cli/context.ts';
import { followLauncher } from './cli/launcher-link.ts';

/** Flags for every non-secret setting (and DATABASE_URL), named after the variable. */
export function settingFlag(env: string): string {
  return env.replace(/^RAG_/, '').toLowerCase().replaceAll('_', '-');
}

// Each command's module is loaded when that command runs: `config` or `status` does not load the OpenAI SDK,
// the thread pool, the HTTP server or the other database driver.
const ingest = () => import('./cli/ingest-commands.ts');
const queue = () => import('./cli/queue-commands.ts');
const jobs = () => import('./cli/jobs-commands.ts');
const startCommand = async (a: Record<string, unknown>) => (await import('./cli/start-command.ts')).startCommand(a);
const migrateCommand = async (a: Record<string, unknown>) => (await queue()).migrateCommand(a);
const statusCommand = async (a: Record<string, unknown>) => (await queue()).statusCommand(a);
const cancelCommand = async (a: Record<string, unknown>) => (await queue()).cancelCommand(a);
const retryCommand = async (a: Record<string, unknown>) => (await queue()).retryCommand(a);
const configCommand = async (a: Record<string, unknown>) => (await queue()).configCommand(a);
const enqueueCommand = async (a: Record<string, unknown>) => (await ingest()).enqueueCommand(a);
const ingestCommand = async (a: Record<string, unknown>) => (await ingest()).ingestCommand(a);
const searchCommand = async (a: Record<string, unknown>) => (await import('./cli/search-command.ts')).searchCommand(a);
const showCommand = async (a: Record<string, unknown>) => (await import('./cli/show-command.ts')).showCommand(a);
const doctorCommand = async (a: Record<string, unknown>) => (await import('./cli/doctor-command.ts')).doctorCommand(a);
const jobsListCommand = async (a: Record<string, unknown>) => (await jobs()).jobsListCommand(a);
const pruneCommand = async (a: Record<string, unknown>) => (await jobs()).pruneCommand(a);

function withSettingFlags<T>(y: Argv<T>): Argv<T> {
  let out = y;
  for (const spec of Object.values(SETTINGS)) {
    if ('secret' in spec && spec.secret && spec.env !== 'DATABASE_URL') continue;
    out = out.option(settingFlag(spec.env), { type: 'string', describe: `${spec.doc} [${spec.env}]`, group: 'Settings:', hidden: true });
  }
  return out;
}

const fileOptions = (y: Argv) =>
  y
    .positional('files', { type: 'string', array: true, demandOption: true, describe: 'transcript files (.vtt .srt .json .txt)' })
    .option('document-id', { type: 'string', describe: 'document id (default: the file name); only with one file' })
    .option('version', { type: 'string', describe: 'document version', default: '1' })
    .option('title', { type: 'string', describe: 'title (default: the file name without extension)' })
    .option('format', { type: 'string', describe: `${TRANSCRIPT_FORMATS.join(' | ')} (default: from extension/content)` })
    .option('speaker-names', { type: 'string', describe: 'JSON map from the file\'s speaker labels to names, e.g. \'{"spk_0": "Ann"}\' (stored as metadata.speaker_names)' })
    .option('priority', { type: 'number', describe: 'higher runs first', default: 0 })
    .option('json', { type: 'boolean', describe: 'machine-readable output', default: false });

export async function main(argv: string[]): Promise<void> {
  const cli = withSettingFlags(yargs(argv))
    .scriptName('rag-worker')
    .usage('$0 <command> [options]\n\nIngest transcripts from a Postgres job queue into pgvector. Every setting can also be given as a flag named after it (RAG_LEASE_SECONDS → --lease-seconds); see `rag-worker config`.')
    .command('start', 'run the worker until SIGINT/SIGTERM', (y) => y.option('once', { type: 'boolean', default: false, describe: 'exit when nothing runnable is left (exit code 0 if every job it ran completed)' }), (a) => startCommand(a))
    .command('migrate', 'apply the schema (idempotent)', (y) => y.option('print', { type: 'boolean', default: false, describe: 'print the SQL instead of applying it' }), (a) => migrateCommand(a))
    .command('enqueue <files..>', 'add transcript files to the queue', (y) => fileOptions(y).option('wait', { type: 'boolean', default: false, describe: 'follow progress until the jobs finish' }), (a) => enqueueCommand(a))
    .command('ingest <files..>', 'enqueue files and process them in this process until they finish', (y) => fileOptions(y), (a) => ingestCommand(a))
    .command('status [job-id]', 'queue counts by status, or one job', (y) => y.positional('job-id', { type: 'string' }).option('json', { type: 'boolean', default: false }), (a) => statusCommand(a))
    .command(
      'show <document-id>',
      "a published document: its chunks, Claude's analysis (summary, topics, decisions, action items, quotes, speakers) and what ingesting it cost",
      (y) =>
        y
          .positional('document-id', { type: 'string', demandOption: true })
          .option('doc-version', { type: 'string', describe: 'this version (default: the newest)' })
          .option('json', { type: 'boolean', default: false }),
      (a) => showCommand(a),
    )
    .command(
      'search <query>',
      'embed a query and print the best chunks',
      (y) =>
        y
          .positional('query', { type: 'string', demandOption: true })
          .option('k', { alias: 'top', type: 'number', default: 5, describe: 'number of chunks' })
          .option('document-id', { type: 'string', describe: 'only this document' })
          .option('doc-version', { type: 'string', describe: 'only this version (with --document-id)' })
          .option('hybrid', {
            type: 'boolean',
            default: false,
            describe: 'also rank by the query\'s words (full-text search over each chunk\'s context and content) and fuse both rankings (reciprocal-rank fusion, rag_hybrid_chunks); shows which ranking found each chunk',
          })
          .option('json', { type: 'boolean', default: false }),
      (a) => searchCommand(a),
    )
    .command('cancel <job-id>', 'cancel a queued or running job', (y) => y.positional('job-id', { type: 'string', demandOption: true }), (a) => cancelCommand(a))
    .command(
      'retry [job-ids..]',
      're-queue failed (or cancelled) jobs with fresh attempts',
      (y) => y.positional('job-ids', { type: 'string', array: true }).option('failed', { type: 'boolean', default: false, describe: 'every failed job' }),
      (a) => retryCommand(a),
    )
    .command('config', 'print the effective settings (secrets hidden)', (y) => y.option('json', { type: 'boolean', default: false }), (a) => configCommand(a))
    .command('doctor', 'check settings, database, schema, provider, webhooks and port, each with the fix', (y) => y.option('json', { type: 'boolean', default: false }), (a) => doctorCommand(a))
    .command('jobs', 'list jobs (jobs list)', (y) =>
      y
        .command(
          'list',
          'jobs as a table, newest first',
          (l) =>
            l
              .option('status', { type: 'string', describe: 'queued | processing | complete | failed | cancelled' })
              .option('document-id', { type: 'string', describe: 'only this document' })
              .option('limit', { type: 'number', default: 50, describe: 'at most this many (up to 10000)' })
              .option('json', { type: 'boolean', default: false }),
          (a) => jobsListCommand(a),
        )
        .demandCommand(1, 'Name a jobs command: list'),
    )
    .command(
      'prune',
      'delete finished jobs older than --older-than (never their chunks), in batches',
      (y) =>
        y
          .option('older-than', { type: 'string', demandOption: true, describe: 'e.g. 30d, 12h, 90m' })
          .option('status', { type: 'string', array: true, describe: 'complete | failed | cancelled (default: all three)' })
          .option('batch', { type: 'number', default: 1000, describe: 'jobs deleted per transaction' })
          .option('json', { type: 'boolean', default: false }),
      (a) => pruneCommand(a),
    )
    .demandCommand(1, 'Name a command: start, migrate, enqueue, ingest, status, search, cancel, retry, config, doctor, jobs, prune')
    .strict()
    .help()
    .version(false)
    .fail((msg, err, y) => {
      if (err) throw err;
      console.error(`${y.help()}\n\n${msg}`);
      process.exit(2);
    });
  try {
    await cli.parseAsync();
  } catch (error) {
    exitWith(error);
  }
}

// Anything that escapes every handler still leaves through exitWith: redacted, one line, the right exit code
// (Node's default printer would show the raw error and its cause chain, URLs with credentials included).
process.on('uncaughtException', (error) => void crashWith(error));
process.on('unhandledRejection', (reason) => void crashWith(reason));

followLauncher();
await main(hideBin(process.argv));
