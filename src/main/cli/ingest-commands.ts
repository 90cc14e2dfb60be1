/** `rag-worker enqueue <files..>` and `rag-worker ingest <files..>`. */
import { EmbeddedInUseError } from '../../shared/errors.ts';
import type { JobRow, QueueApi } from '../stores/queue-store.ts';
import { createCoordinator, describeRuntime, OFFLINE_EMBEDDER_NOTICE, openRuntime, type Runtime } from '../runtime.ts';
import { openQueue, queueOfHolder } from './open-queue.ts';
import type { JobProgress } from '../coordinator/job-runner.ts';
import { loadConfig, makeLogger, printJson } from './context.ts';
import { fileJobs, type FileArgs } from './files.ts';
import { ProgressBar } from './progress-bar.ts';

const TERMINAL = new Set(['complete', 'failed', 'cancelled']);

function jobSummary(j: JobRow) {
  return {
    id: j.id,
    document_id: j.document_id,
    version: j.version,
    status: j.status,
    chunks: j.chunks_done,
    segments: j.segments_total,
    reused: j.chunks_reused,
    error_detail: j.error_detail,
  };
}

/**
 * Exit codes of enqueue --wait and ingest: 0 when every job completed, 1 when any did not (failed, cancelled, or
 * left unfinished), 3 on a worker-level fault. Set only after the database is closed: closing PGlite (the
 * embedded database) ends its WASM runtime, which sets process.exitCode to 0 and so erased a 1 set before.
 */
function setExitCode(code: number): void {
  if (code !== 0) process.exitCode = code;
}

export async function enqueueCommand(argv: Record<string, unknown>): Promise<void> {
  const config = loadConfig(argv);
  const logger = makeLogger(config, true);
  const jobs = fileJobs(argv as unknown as FileArgs);
  const queue = await openQueue(config, logger);
  if (argv.wait && config.store === 'embedded' && queue.servedBy === undefined) {
    // The embedded database is this process's alone: no worker elsewhere can run these jobs, so waiting would never
    // end. Run them here instead, exactly as `ingest` does (same output, same exit codes).
    await queue.close();
    console.error('Note: with the embedded database no other process can work on these jobs; running them in this process (as `rag-worker ingest`).');
    return ingestCommand(argv);
  }
  let exitCode = 0;
  try {
    const ids: string[] = [];
    for (const job of jobs) ids.push(await queue.store.enqueue(job));
    if (!argv.json) jobs.forEach((j, i) => console.log(`${ids[i]}  ${j.documentId} (version ${j.version}, ${j.format})`));
    if (!argv.wait) {
      if (argv.json) printJson(jobs.map((j, i) => ({ id: ids[i], document_id: j.documentId, version: j.version, format: j.format })));
      return;
    }
    exitCode = await followJobs(queue.store, ids, Boolean(argv.json));
  } finally {
    await queue.close();
    setExitCode(exitCode);
  }
}

/** Polls the jobs until every one has ended, printing progress lines; the exit code (0: all complete). */
async function followJobs(store: QueueApi, ids: string[], json: boolean): Promise<number> {
  let last = '';
  for (;;) {
    const rows = await store.getJobs(ids);
    const line = rows.map((r) => `${r.document_id}: ${r.status} ${r.chunks_done}/${r.chunks_total ?? '?'}`).join(' · ');
    if (line !== last && !json) console.error(line);
    last = line;
    if (rows.every((r) => TERMINAL.has(r.status))) {
      if (json) printJson(rows.map(jobSummary));
      return rows.length < ids.length || rows.some((r) => r.status !== 'complete') ? 1 : 0;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * `ingest` while another process (a running `start`) holds the embedded database: hand the jobs to it and follow
 * them to the end, like `enqueue --wait`.
 */
async function ingestThroughHolder(held: EmbeddedInUseError, jobs: ReturnType<typeof fileJobs>, argv: Record<string, unknown>): Promise<boolean> {
  const remote = await queueOfHolder(held);
  if (!remote) return false;
  console.error(`Note: process ${held.ownerPid} holds the embedded database; it will process these jobs (following them here).`);
  const ids: string[] = [];
  for (const job of jobs) ids.push(await remote.enqueue(job));
  setExitCode(await followJobs(remote, ids, Boolean(argv.json)));
  return true;
}

export async function ingestCommand(argv: Record<string, unknown>): Promise<void> {
  const config = loadConfig(argv);
  const bar = process.stderr.isTTY && !argv.json ? new ProgressBar(process.stderr) : undefined;
  const logger = makeLogger(config, bar !== undefined).child({ workerId: config.workerId });
  const jobs = fileJobs(argv as unknown as FileArgs);
  let rt: Runtime;
  try {
    rt = await openRuntime(config, logger);
  } catch (error) {
    if (error instanceof EmbeddedInUseError && (await ingestThroughHolder(error, jobs, argv))) return;
    throw error;
  }
  if (!rt.provider.remote) logger.warn(OFFLINE_EMBEDDER_NOTICE);
  let exitCode = 0;
  try {
    const ids: string[] = [];
    for (const job of jobs) ids.push(await rt.store.enqueue(job));
    const mine = new Set(ids);
    const coordinator = createCoordinator(rt);
    logger.info('✅ Worker ready. Polling for jobs...', describeRuntime(rt));
    const progress = new Map<string, JobProgress>();
    const finished = new Set<string>();
    coordinator.on('progress', (p: JobProgress) => {
      if (!mine.has(p.jobId)) return;
      progress.set(p.jobId, p);
      bar?.render(finished.size, ids.length, [...progress.values()]);
    });
    const check = async () => {
      const rows = await rt.store.getJobs(ids);
      for (const r of rows) if (TERMINAL.has(r.status)) finished.add(r.id);
      bar?.render(finished.size, ids.length, [...progress.values()]);
      if (finished.size === ids.length) void coordinator.stop(config.shutdownGraceMs);
    };
    coordinator.on('job', () => void check().catch(() => {}));
    coordinator.on('fault', () => void coordinator.stop(0));
    let signals = 0;
    const onSignal = () => {
      if (++signals > 1) process.exit(130);
      void coordinator.stop(config.shutdownGraceMs);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const summary = await coordinator.run();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    bar?.finish();
    const rows = await rt.store.getJobs(ids);
    const byId = new Map(rows.map((r) => [r.id, r]));
    const ordered = ids.map((id) => byId.get(id)!);
    if (argv.json) {
      printJson(ordered.map(jobSummary));
    } else {
      for (const r of ordered) {
        const mark = r.status === 'complete' ? '✅' : r.status === 'failed' ? '❌' : '⏸️ ';
        const extra = r.status === 'complete' ? `${r.chunks_done} chunks from ${r.segments_total} segments` : (r.error_detail ?? r.status);
        console.log(`${mark} ${r.document_id} (version ${r.version}): ${extra}`);
      }
    }
    if (summary.fatal) {
      console.error(`rag-worker cannot run: ${summary.fatal}`);
      exitCode = 3;
    } else if (ordered.some((r) => r.status !== 'complete')) {
      exitCode = 1;
    }
  } finally {
    await rt.close();
    setExitCode(exitCode);
  }
}

