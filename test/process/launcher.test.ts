/**
 * bin/rag-worker.mjs started by an old Node (< 22.18, e.g. the system's Node 20) re-runs the CLI with the bundled
 * Node 24 as a child process. These tests run the launcher with such a Node against the real PostgreSQL:
 *
 * - Ctrl-C in a terminal signals the whole foreground process group. The worker must see that SIGINT once (a
 *   second one means "exit now"), so it drains and the job in flight completes with one attempt.
 * - A signal sent only to the launcher (a process manager's `kill -TERM <pid>`) still reaches the worker once.
 * - A launcher killed with SIGKILL leaves no worker behind: the worker notices and stops as on SIGTERM.
 * - Exit codes pass through (128+n for a worker killed by signal n), and commands that end by themselves still
 *   end under the launcher.
 *
 * The launcher is started with `detached: true` so that it leads its own process group, like a shell job.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { after, afterEach, before, test } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.ts';
import { assertChunksMatch, closeScenarios, DIMS, hangWhen, openScenario, referenceChunks, segmentsPayload, waitFor, workerEnv } from '../support/process-helpers.ts';

const LAUNCHER = fileURLToPath(new URL('../../bin/rag-worker.mjs', import.meta.url));
/** What the launcher runs: the compiled CLI when dist/ is fresh, else the sources. */
const CLIS = [fileURLToPath(new URL('../../src/main/cli.ts', import.meta.url)), fileURLToPath(new URL('../../dist/main/cli.js', import.meta.url))];
/** Time allowed on top of the grace period to release, close threads and connections, and exit. */
const EXIT_MARGIN_MS = 5000;
/** How long the provider holds the later requests of a job: the job is in flight for a while, but finishes within grace. */
const HOLD_MS = 1500;

// ───────────────────────────── an old Node ─────────────────────────────

/** A Node older than 22.18 (the launcher's re-run path): $RAG_TEST_OLD_NODE, /usr/bin/node, or one on PATH. */
function findOldNode(): { path: string; version: string } | undefined {
  const candidates = [process.env.RAG_TEST_OLD_NODE, '/usr/bin/node', '/usr/local/bin/node', ...(process.env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, 'node'))];
  for (const path of new Set(candidates)) {
    if (!path || !existsSync(path)) continue;
    try {
      const version = execFileSync(path, ['-p', 'process.versions.node'], { encoding: 'utf8', timeout: 15_000 }).trim();
      const [major, minor] = version.split('.').map(Number);
      if (major < 22 || (major === 22 && minor < 18)) return { path, version };
    } catch {
      // not runnable: try the next one
    }
  }
  return undefined;
}

const OLD_NODE = findOldNode();
const SKIP = !existsSync('/proc/self/stat')
  ? 'needs /proc (Linux) to find the worker process the launcher starts'
  : !OLD_NODE
    ? 'no Node.js older than 22.18 found (tried $RAG_TEST_OLD_NODE, /usr/bin/node, /usr/local/bin/node and PATH): the launcher only re-runs the CLI from such a Node'
    : false;

// ───────────────────────────── the process table ─────────────────────────────

interface ProcInfo {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  state: string;
  /** Clock ticks after boot: with the pid, identifies one process even if the pid is reused later. */
  startTime: string;
}

function procInfo(pid: number): ProcInfo | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime priority nice num_threads itrealvalue starttime
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { pid, state: f[0], ppid: Number(f[1]), pgid: Number(f[2]), sid: Number(f[3]), startTime: f[19] };
}

function cmdlineOf(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return [];
  }
}

function childrenOf(ppid: number): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const info = procInfo(Number(name));
    if (info?.ppid === ppid) out.push(info);
  }
  return out;
}

/** Still running: present and neither a zombie nor dead (an orphan's zombie may wait for a reaper that never comes). */
function running(p: Pick<ProcInfo, 'pid' | 'startTime'>): boolean {
  const now = procInfo(p.pid);
  return now !== undefined && now.startTime === p.startTime && now.state !== 'Z' && now.state !== 'X';
}

// ───────────────────────────── launcher processes ─────────────────────────────

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const launchers = new Set<Launcher>();
/** Worker processes the launchers started, killed by pid in teardown (they may outlive their launcher). */
const workers = new Map<string, ProcInfo>();
const trackWorker = (p: ProcInfo) => workers.set(`${p.pid}@${p.startTime}`, p);

class Launcher {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<Exit>;
  exit: Exit | undefined;
  private stderr = '';
  /** The structured `event` fields of the JSON log lines so far (stderr is shared by launcher and worker). */
  private readonly events: string[] = [];
  /** The JSON log lines so far, parsed. */
  readonly logLines: Record<string, unknown>[] = [];
  private partial = '';

  /** node: the Node that runs the launcher (default: the old one, whose launcher always re-runs the CLI). */
  constructor(args: string[], env: NodeJS.ProcessEnv, node = OLD_NODE!.path) {
    // Its own process group (and session), as a shell puts a job: process.kill(-pid) then acts like a terminal's Ctrl-C.
    this.child = spawn(node, [LAUNCHER, ...args], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.pid = this.child.pid!;
    this.child.stdout!.resume();
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => this.onStderr(d));
    // 'exit', not 'close': an orphaned worker keeps the pipes open after the launcher is gone.
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve((this.exit = { code, signal }))));
    launchers.add(this);
  }

  private onStderr(text: string): void {
    this.stderr += text;
    const lines = (this.partial + text).split('\n');
    this.partial = lines.pop() ?? '';
    for (const raw of lines) {
      try {
        const line = JSON.parse(raw) as Record<string, unknown>;
        this.logLines.push(line);
        if (typeof line.event === 'string') this.events.push(line.event);
      } catch {
        // not a JSON log line
      }
    }
  }

  /** Waits for a JSON log line whose `event` field is `event` (the structured field, not the message wording). */
  waitForEvent(event: string): Promise<true> {
    return waitFor(() => {
      if (this.events.includes(event)) return true;
      if (this.exit) throw new Error(`the launcher exited before a log line with event ${event}; stderr:\n${this.tail()}`);
      return false;
    }, `a log line with event ${event}`, { intervalMs: 10 });
  }

  /** The worker process (the bundled Node running the CLI), once the launcher has started it. */
  async worker(): Promise<ProcInfo> {
    const info = await waitFor(() => {
      if (this.exit) throw new Error(`the launcher exited (${JSON.stringify(this.exit)}) before a worker process appeared; stderr:\n${this.tail()}`);
      const [child] = childrenOf(this.pid);
      if (child) trackWorker(child);
      // Between fork and exec the child still shows the launcher's command line.
      return child && cmdlineOf(child.pid).some((arg) => CLIS.includes(arg)) ? child : undefined;
    }, `launcher ${this.pid} to start the worker process (the CLI under the bundled Node)`);
    assert.equal(childrenOf(this.pid).length, 1, 'the launcher starts one process');
    return info;
  }

  async waitForExit(timeoutMs: number): Promise<Exit | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), timeoutMs)));
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  tail(n = 25): string {
    return this.stderr.split('\n').slice(-n).join('\n');
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** Waits until the process is gone (exited; a zombie counts as gone). */
function waitForGone(p: ProcInfo, what: string, timeoutMs: number): Promise<true> {
  return waitFor(() => !running(p), what, { timeoutMs, intervalMs: 25 });
}

async function killAll(): Promise<void> {
  for (const l of launchers) {
    for (const c of l.exit ? [] : childrenOf(l.pid)) trackWorker(c);
    l.kill();
  }
  for (const w of workers.values()) {
    try {
      if (running(w)) process.kill(w.pid, 'SIGKILL');
    } catch {
      // exited in between
    }
  }
  await Promise.all([...launchers].map((l) => l.exited));
  await Promise.all([...workers.values()].map((w) => waitForGone(w, `worker ${w.pid} to die`, 10_000)));
  launchers.clear();
  workers.clear();
}

// ───────────────────────────── tests ─────────────────────────────

let openai: FakeOpenAI;

before(async () => {
  if (SKIP) return;
  openai = await startFakeOpenAI({ dimensions: DIMS });
});

afterEach(async () => {
  await killAll();
  if (openai) openai.onRequest = undefined;
});

after(async () => {
  await killAll();
  await closeScenarios();
  await openai?.close();
});

/**
 * A job whose first save batch is embedded at once and whose later requests the provider holds for HOLD_MS: in
 * flight for a while, yet done well within the grace period.
 */
async function slowJobs(probe: Awaited<ReturnType<typeof openScenario>>['probe'], tag: string) {
  const docs = [`${tag}-doc`].map((documentId) => {
    const payload = segmentsPayload(documentId, 100);
    return { documentId, payload, expected: referenceChunks(payload) };
  });
  const firstBatches = new Set(docs.flatMap((d) => d.expected.slice(0, 64).map((c) => c.content)));
  openai.onRequest = (req) => (req.inputs.some((x) => typeof x === 'string' && !firstBatches.has(x)) ? { kind: 'delay', ms: HOLD_MS } : undefined);
  const ids = await probe.enqueueMany(docs);
  return { docs, ids };
}

/** Every job processing with a first batch saved (and more to do): the shutdown finds them in flight. */
async function waitInFlight(probe: Awaited<ReturnType<typeof openScenario>>['probe'], ids: string[], launcher: Launcher): Promise<void> {
  await waitFor(async () => (await probe.jobs(ids)).every((j) => j.status === 'processing' && j.chunks_done > 0), 'the jobs to save a first batch', { intervalMs: 25 }).catch(async (error: Error) => {
    const rows = (await probe.jobs(ids)).map((j) => `${j.id} ${j.status} ${j.chunks_done}/${j.chunks_total} attempts ${j.attempts}`);
    throw new Error(`${error.message}\njobs:\n${rows.join('\n')}\nlauncher stderr:\n${launcher.tail()}`);
  });
  for (const j of await probe.jobs(ids)) assert.ok(j.chunks_total === null || j.chunks_done < j.chunks_total, `job ${j.id} is still in flight (${j.chunks_done}/${j.chunks_total})`);
}

test('Ctrl-C (SIGINT to the whole process group): the worker drains once, in-flight jobs complete with one attempt, exit 0', { skip: SKIP }, async () => {
  const graceMs = 15_000;
  const { db, probe } = await openScenario();
  const env = workerEnv(db, openai, { RAG_WORKER_ID: 'rag-test-launcher-ctrlc', RAG_SHUTDOWN_GRACE_MS: String(graceMs), RAG_EMBEDDING_CONCURRENCY: '64' });
  const { docs, ids } = await slowJobs(probe, 'ctrlc');

  const launcher = new Launcher(['start'], env);
  const worker = await launcher.worker();
  await waitInFlight(probe, ids, launcher);
  process.kill(-launcher.pid, 'SIGINT'); // what the terminal does on Ctrl-C: the whole foreground process group

  const exit = await launcher.waitForExit(graceMs + EXIT_MARGIN_MS);
  assert.ok(exit, `the launcher exits within grace + margin; stderr:\n${launcher.tail()}`);
  assert.deepEqual(exit, { code: 0, signal: null }, `a graceful stop exits 0 (130 means the worker saw a second SIGINT and skipped the drain); stderr:\n${launcher.tail()}`);
  await waitForGone(worker, 'the worker to exit', EXIT_MARGIN_MS);

  const jobs = await probe.jobs(ids);
  for (const [i, job] of jobs.entries()) {
    assert.equal(job.status, 'complete', `job ${job.id} finished during the drain`);
    assert.equal(job.attempts, 1, `job ${job.id}: one attempt (2 means it was abandoned and taken over later)`);
    assert.deepEqual(job.attempt_history.map((h) => [h.attempt, h.worker_id, h.outcome]), [[1, 'rag-test-launcher-ctrlc', 'complete']]);
    assertChunksMatch(await probe.chunks(docs[i].documentId), docs[i].expected, `job ${job.id}`);
  }
});

test('SIGTERM to the launcher alone (a process manager): the worker gets it once, drains, exit 0', { skip: SKIP }, async () => {
  const graceMs = 15_000;
  const { db, probe } = await openScenario();
  const env = workerEnv(db, openai, { RAG_WORKER_ID: 'rag-test-launcher-term', RAG_SHUTDOWN_GRACE_MS: String(graceMs), RAG_EMBEDDING_CONCURRENCY: '64' });
  const { ids } = await slowJobs(probe, 'term');

  const launcher = new Launcher(['start'], env);
  const worker = await launcher.worker();
  await waitInFlight(probe, ids, launcher);
  process.kill(launcher.pid, 'SIGTERM');

  const exit = await launcher.waitForExit(graceMs + EXIT_MARGIN_MS);
  assert.ok(exit, `the worker got the SIGTERM and stopped within grace + margin; stderr:\n${launcher.tail()}`);
  assert.deepEqual(exit, { code: 0, signal: null }, launcher.tail());
  await waitForGone(worker, 'the worker to exit', EXIT_MARGIN_MS);
  for (const job of await probe.jobs(ids)) {
    assert.equal(job.status, 'complete', `job ${job.id} finished during the drain`);
    assert.equal(job.attempts, 1, `job ${job.id}: one attempt`);
  }
});

test('SIGTERM, then SIGKILL of the launcher (a process manager giving up): the worker goes on draining, jobs complete with one attempt', { skip: SKIP }, async () => {
  const graceMs = 15_000;
  const { db, probe } = await openScenario();
  const env = workerEnv(db, openai, { RAG_WORKER_ID: 'rag-test-launcher-escalate', RAG_SHUTDOWN_GRACE_MS: String(graceMs), RAG_EMBEDDING_CONCURRENCY: '64' });
  const { ids } = await slowJobs(probe, 'escalate');

  const launcher = new Launcher(['start'], env);
  const worker = await launcher.worker();
  await waitInFlight(probe, ids, launcher);
  process.kill(launcher.pid, 'SIGTERM');
  await launcher.waitForEvent('stopping'); // the worker got the forwarded SIGTERM and is draining
  process.kill(launcher.pid, 'SIGKILL');
  assert.deepEqual(await launcher.exited, { code: null, signal: 'SIGKILL' });

  await waitForGone(worker, `the worker (pid ${worker.pid}) to finish its drain and exit`, graceMs + EXIT_MARGIN_MS);
  for (const job of await probe.jobs(ids)) {
    assert.equal(job.status, 'complete', `job ${job.id} finished during the drain (the launcher's death was not taken as a second signal)`);
    assert.deepEqual(job.attempt_history.map((h) => [h.attempt, h.worker_id, h.outcome]), [[1, 'rag-test-launcher-escalate', 'complete']]);
  }
});

test('SIGKILL of the launcher: the orphaned worker stops as on SIGTERM, releasing its jobs without using an attempt', { skip: SKIP }, async () => {
  const graceMs = 1000;
  const { db, probe } = await openScenario();
  const env = workerEnv(db, openai, { RAG_WORKER_ID: 'rag-test-launcher-kill', RAG_SHUTDOWN_GRACE_MS: String(graceMs), RAG_EMBEDDING_CONCURRENCY: '64' });
  const payload = segmentsPayload('orphan', 100);
  const firstBatch = new Set(referenceChunks(payload).slice(0, 64).map((c) => c.content));
  openai.onRequest = hangWhen((inputs) => inputs.some((x) => !firstBatch.has(x)));
  const id = await probe.enqueue('orphan-doc', payload);
  const queuedRow = await probe.job(id);

  const launcher = new Launcher(['start'], env);
  const worker = await launcher.worker();
  const saved = await waitFor(async () => (await probe.job(id)).chunks_done, 'the first batch to be saved', { intervalMs: 25 });
  process.kill(launcher.pid, 'SIGKILL');
  assert.deepEqual(await launcher.exited, { code: null, signal: 'SIGKILL' });

  await waitForGone(worker, `the worker (pid ${worker.pid}) to exit after its launcher was killed`, graceMs + EXIT_MARGIN_MS);
  const job = await probe.job(id);
  assert.equal(job.status, 'queued', 'released to the queue, not left processing under a live lease');
  assert.equal(job.attempts, queuedRow.attempts, 'no attempt used');
  assert.equal(job.worker_id, null);
  assert.equal(job.chunks_done, saved, 'saved chunks are kept for the next worker');
  assert.equal(job.attempt_history.at(-1)?.outcome, 'released');
  assert.equal((await probe.statusCounts()).processing ?? 0, 0, 'nothing left processing');
});

test('exit codes pass through the launcher: 128+n for a worker killed by signal n; short commands end on their own', { skip: SKIP }, async () => {
  const { db } = await openScenario();
  const env = workerEnv(db, openai, { RAG_WORKER_ID: 'rag-test-launcher-codes' });

  const launcher = new Launcher(['start'], env);
  const worker = await launcher.worker();
  process.kill(worker.pid, 'SIGKILL');
  assert.deepEqual(await launcher.waitForExit(10_000), { code: 128 + constants.signals.SIGKILL, signal: null }, launcher.tail());

  // `status` ends by returning (process.exitCode), not process.exit(): nothing the launcher sets up may keep it alive.
  const ok = new Launcher(['status', '--json'], env);
  assert.deepEqual(await ok.waitForExit(15_000), { code: 0, signal: null }, ok.tail());
  const missing = new Launcher(['status', '00000000-0000-4000-8000-000000000000'], env);
  assert.deepEqual(await missing.waitForExit(15_000), { code: 1, signal: null }, missing.tail());
  const usage = new Launcher(['no-such-command'], env);
  assert.deepEqual(await usage.waitForExit(15_000), { code: 2, signal: null }, usage.tail());
});

test('on Node 24, `start` is re-run in a child with a small young generation unless NODE_OPTIONS sets one; short commands stay in the launcher', { skip: existsSync('/proc/self/stat') ? false : 'needs /proc (Linux)' }, async () => {
  const { db } = await openScenario();
  const env = workerEnv(db, openai, { RAG_WORKER_ID: 'rag-test-launcher-heap' });
  const flagsOf = (l: Launcher) => l.logLines.find((line) => line.event === 'worker_ready')?.nodeFlags;

  const start = new Launcher(['start'], env, process.execPath);
  const worker = await start.worker();
  assert.ok(cmdlineOf(worker.pid).includes('--max-semi-space-size=4'), cmdlineOf(worker.pid).join(' '));
  await start.waitForEvent('worker_ready');
  assert.deepEqual(flagsOf(start), ['--max-semi-space-size=4']);
  process.kill(start.pid, 'SIGTERM');
  assert.deepEqual(await start.waitForExit(15_000), { code: 0, signal: null }, start.tail());

  // A size chosen in NODE_OPTIONS wins: no re-run, the worker is the launcher's own process.
  const chosen = new Launcher(['start', '--once'], { ...env, NODE_OPTIONS: '--max-semi-space-size=8' }, process.execPath);
  assert.deepEqual(await chosen.waitForExit(30_000), { code: 0, signal: null }, chosen.tail());
  assert.deepEqual(flagsOf(chosen), []);

  const status = new Launcher(['status', '--json'], env, process.execPath);
  assert.deepEqual(await status.waitForExit(15_000), { code: 0, signal: null }, status.tail());
});
