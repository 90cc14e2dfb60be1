/**
 * d. Memory against transcript size: one transcript at a time (1,000 / 20,000 / 100,000 segments, and a 50 MB
 * payload of long segments; quick: 2,000) through a real worker process — `start --once` as users run it (the
 * compiled dist/main/cli.js when built, else the TypeScript sources) — against a fresh database and the
 * simulated provider (100 ms + 1 ms/1k tokens, no rate limit).
 * Peak RSS from `/usr/bin/time -v` (the kernel's maxrss of the process, threads included), else from
 * sampling /proc/<pid>/status VmHWM. RSS is also sampled every 100 ms to place the peak among the job's phases,
 * which are read from the worker's JSON log lines.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { chooseEntry } from '../bin/choose-entry.mjs';
import { createTestDatabase } from '../test/support/test-db.ts';
import { spawnFakeServer } from './fake-server.ts';
import { DIMENSIONS, MODEL, round, withCleanup, type BenchContext } from './harness.ts';
import { metric, type ScenarioResult } from './report.ts';
import { generateTranscript } from './synthetic-transcripts.ts';

// As users run it (`npx rag-worker start`): the launcher, which runs dist/ when fresh and re-runs `start` with a
// small young generation.
const CLI = fileURLToPath(new URL('../bin/rag-worker.mjs', import.meta.url));
/** What the launcher will run (its own rule, bin/choose-entry.mjs). */
const launcherRuns = (): 'dist/' | 'src/' => (chooseEntry().endsWith('.js') ? 'dist/' : 'src/');
const PROBE = fileURLToPath(new URL('./memory-probe.ts', import.meta.url));
const TIME = '/usr/bin/time';

interface LogLine {
  time: string;
  level: string;
  msg: string;
  [k: string]: unknown;
}

function readProcKb(pid: number, field: 'VmHWM'): number | null {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** pid and every process below it (the launcher's worker process is a child of the launcher). */
function processTree(pid: number): number[] {
  let kids: number[] = [];
  try {
    kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // gone
  }
  return [pid, ...kids.flatMap(processTree)];
}

interface Probe {
  atMs: number;
  /** Date.now() in the worker process. */
  at: number;
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
}

/** /health answers while the job ran: latency of each probe (ms), and how many were not 200 or failed. */
interface HealthProbes {
  latenciesMs: number[];
  bad: number;
}

interface ChildRun {
  health?: HealthProbes;
  exitCode: number | null;
  wallMs: number;
  peakKb: number | null;
  peakHow: string;
  probes: Probe[];
  logs: LogLine[];
  stderrTail: string;
}

/** A port free right now on 127.0.0.1 (for the worker's HTTP server). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** GET /health every 100 ms (one at a time) until stopped. */
function probeHealth(port: number): { stop(): HealthProbes } {
  const out: HealthProbes = { latenciesMs: [], bad: 0 };
  let stopped = false;
  void (async () => {
    while (!stopped) {
      const t0 = performance.now();
      try {
        const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(10_000) });
        await res.arrayBuffer();
        if (res.ok) out.latenciesMs.push(performance.now() - t0);
        else out.bad++;
      } catch {
        // Not listening yet (start-up) or gone (exit): not a latency.
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    stop() {
      stopped = true;
      return out;
    },
  };
}

async function runWorkerProcess(env: Record<string, string>): Promise<ChildRun> {
  const dir = mkdtempSync(`${os.tmpdir()}/rag-bench-d-`);
  const timeFile = `${dir}/time.txt`;
  const useTime = existsSync(TIME);
  const args = [CLI, 'start', '--once'];
  const started = performance.now();
  const child = useTime
    ? spawn(TIME, ['-v', '-o', timeFile, process.execPath, ...args], { cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn(process.execPath, args, { cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => (stderr += d));
  let hwm: number | null = null;
  const sampler = setInterval(() => {
    for (const pid of processTree(child.pid!)) {
      const h = readProcKb(pid, 'VmHWM');
      if (h !== null) hwm = Math.max(hwm ?? 0, h);
    }
  }, 100);
  const health = env.RAG_HTTP_PORT ? probeHealth(Number(env.RAG_HTTP_PORT)) : undefined;
  const exitCode = await new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  clearInterval(sampler);
  const healthProbes = health?.stop();
  const wallMs = performance.now() - started;
  let peakKb: number | null = hwm;
  let peakHow = 'sampled /proc VmHWM of every process every 100 ms';
  if (useTime && existsSync(timeFile)) {
    const m = readFileSync(timeFile, 'utf8').match(/Maximum resident set size \(kbytes\):\s*(\d+)/);
    if (m) {
      peakKb = Number(m[1]);
      peakHow = '/usr/bin/time -v maxrss';
    }
  }
  rmSync(dir, { recursive: true, force: true });
  const logs: LogLine[] = [];
  const probes: Probe[] = [];
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const parsed = JSON.parse(line) as { probe?: Probe };
      if (parsed.probe) probes.push(parsed.probe);
      else logs.push(parsed as LogLine);
    } catch {
      /* not a log line */
    }
  }
  return { health: healthProbes, exitCode, wallMs, peakKb, peakHow, probes, logs, stderrTail: stderr.split('\n').filter((l) => !l.startsWith('{')).slice(-5).join(' | ') };
}

/** Phase boundaries (ms since the first log line) from the worker's log. */
/** The job's phases from the worker's structured events (never from message wording). */
function phases(logs: LogLine[]) {
  const t = (l: LogLine | undefined) => (l ? Date.parse(l.time) : NaN);
  const t0 = t(logs[0]);
  const chunked = logs.find((l) => l.event === 'job_chunked');
  const saves = logs.filter((l) => l.event === 'job_progress');
  const done = logs.find((l) => l.event === 'job_complete');
  const processing = logs.find((l) => l.event === 'job_started');
  return {
    t0,
    chunks: Number(done?.chunks ?? NaN),
    chunkMs: Number(chunked?.chunkMs ?? NaN),
    claimedAt: t(processing) - t0,
    firstSaveAt: t(saves[0]) - t0,
    chunkedAt: t(chunked) - t0,
    lastSaveAt: t(saves.at(-1)) - t0,
    completedAt: t(done) - t0,
  };
}

interface LeaseWatch {
  maxOverdueS: number;
  /** Seconds (sampled every 500 ms) during which the processing job's lease had run out. */
  expiredS: number;
  maxBlockedBeats: number;
  /** Share of samples with a rag_save_chunks call running (it holds the job row FOR UPDATE). */
  saveBusy: number;
  /** Samples at which rag_claim_jobs in another worker would have taken the job over (probed, then rolled back). */
  claimable: number;
}

/** Watches the job row from outside: how long it ran past its lease, heartbeats stuck behind a row lock, saves running. */
function watchLease(c: pg.Client): { stop(): Promise<LeaseWatch> } {
  const w: LeaseWatch = { maxOverdueS: 0, expiredS: 0, maxBlockedBeats: 0, saveBusy: 0, claimable: 0 };
  let samples = 0;
  let busy = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const r = await c.query<{ overdue: number | null; blocked: string; saving: string }>(
          `select (select max(extract(epoch from clock_timestamp() - lease_expires_at))::float8 from rag_ingestion_queue where status = 'processing') as overdue,
                  (select count(*) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'
                      and query ilike '%rag_extend_leases%') as blocked,
                  (select count(*) from pg_stat_activity where datname = current_database() and state = 'active'
                      and query ilike '%rag_save_chunks%' and pid <> pg_backend_pid()) as saving`,
        );
        const overdue = r.rows[0].overdue;
        if (overdue !== null) {
          samples++;
          if (Number(r.rows[0].saving) > 0) busy++;
          if (overdue > 0) w.expiredS += 0.5;
        }
        if (overdue !== null && overdue > 0) {
          // Would a second worker's claim take it now? The claim's own test (expired lease, row not locked), rolled back.
          const probe = (await c.query(
            `begin; select id from rag_ingestion_queue where status = 'processing' and lease_expires_at < now() for update skip locked; rollback`,
          )) as unknown as { rows: unknown[] }[];
          if (probe[1].rows.length > 0) w.claimable++;
        }
        w.maxOverdueS = Math.max(w.maxOverdueS, overdue ?? 0);
        w.maxBlockedBeats = Math.max(w.maxBlockedBeats, Number(r.rows[0].blocked));
      } catch {
        /* keep watching */
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      w.saveBusy = samples === 0 ? 0 : busy / samples;
      return w;
    },
  };
}

interface SizeRun {
  label: string;
  segments: number;
  payloadMB: number;
  peakMB: number;
  peakHow: string;
  wallS: number;
  status: string;
  error: string | null;
  chunks: number | null;
  firstSaveS: number;
  chunkS: number;
  leaseExpiredS: number;
  exit: string;
  health?: HealthProbes;
}

async function runSize(ctx: BenchContext, label: string, segments: number, repeatText: number, probeHttp: boolean): Promise<SizeRun> {
  const transcript = generateTranscript(0, segments, { prefix: 'd', format: 'segments' });
  if (repeatText > 1) {
    for (const seg of (transcript.payload as { segments: { text: string }[] }).segments) seg.text = Array(repeatText).fill(seg.text).join(' ');
  }
  const payloadText = JSON.stringify(transcript.payload);
  const payloadMB = Buffer.byteLength(payloadText) / 1e6;
  return withCleanup(async (defer) => {
    const db = await createTestDatabase(DIMENSIONS);
    defer(() => db.drop());
    const server = await spawnFakeServer({ baseMs: 100, perKTokensMs: 1, dimensions: DIMENSIONS });
    defer(() => server.stop());
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    defer(() => c.end());
    await c.query('select rag_enqueue($1, $2, $3, $4, $5::jsonb)', [transcript.documentId, '1', transcript.title, 'segments', payloadText]);
    ctx.log(`d: ${label}: worker process on one ${segments.toLocaleString('en-US')}-segment transcript (${payloadMB.toFixed(1)} MB of JSON)…`);
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? os.tmpdir(),
      DATABASE_URL: db.url,
      OPENAI_API_KEY: 'bench',
      OPENAI_BASE_URL: server.url,
      RAG_EMBEDDING_MODEL: MODEL,
      RAG_EMBEDDING_DIMENSIONS: String(DIMENSIONS),
      RAG_LOG_FORMAT: 'json',
      RAG_LOG_LEVEL: 'info',
      // The probe in every process (launcher and worker) and thread. What-if runs (e.g. a heap cap):
      // BENCH_D_NODE_OPTIONS is added to the worker's NODE_OPTIONS; recorded in params.
      NODE_OPTIONS: [`--import=${PROBE}`, process.env.BENCH_D_NODE_OPTIONS ?? ''].join(' ').trim(),
      // BENCH_D_ENV=K=V,K2=V2: more environment for the worker (what-if runs, e.g. MALLOC_ARENA_MAX=8).
      ...Object.fromEntries((process.env.BENCH_D_ENV ?? '').split(',').filter((kv) => kv.includes('=')).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])),
      // The largest run also serves HTTP, and /health is probed throughout: is the main thread responsive?
      ...(probeHttp ? { RAG_HTTP_PORT: String(await freePort()), RAG_HTTP_HOST: '127.0.0.1' } : {}),
    };
    const monitor = watchLease(c);
    const ran = launcherRuns();
    const run = await runWorkerProcess(env);
    const lease = await monitor.stop();
    const job = (await c.query<{ status: string; chunks_total: number; error_detail: string | null }>(
      'select status, chunks_total, error_detail from rag_ingestion_queue',
    )).rows[0];
    const ph = phases(run.logs);
    // BENCH_D_TRACE=<dir>: the memory probe's samples and the worker's events of this run, for a timeline.
    if (process.env.BENCH_D_TRACE) {
      const events = run.logs.filter((l) => l.event).map((l) => ({ at: Date.parse(l.time), event: l.event }));
      writeFileSync(`${process.env.BENCH_D_TRACE}/d-${label.replace(/\W+/g, '-')}.json`, JSON.stringify({ label, probes: run.probes, events }, null, 1));
    }
    if (run.exitCode !== 0) ctx.log(`d: worker exited ${run.exitCode}: ${run.stderrTail}`);
    return {
      label,
      segments,
      payloadMB,
      peakMB: run.peakKb === null ? NaN : run.peakKb / 1024,
      peakHow: `${run.peakHow}; ran ${ran}`,
      wallS: run.wallMs / 1000,
      status: job?.status ?? 'missing',
      error: job?.error_detail ?? null,
      chunks: Number.isFinite(ph.chunks) ? ph.chunks : (job?.chunks_total ?? null),
      firstSaveS: (ph.firstSaveAt - ph.claimedAt) / 1000,
      chunkS: ph.chunkMs / 1000,
      leaseExpiredS: lease.expiredS,
      exit: run.exitCode === 0 ? 'exit 0' : `exit ${run.exitCode}: ${run.stderrTail}`,
      health: run.health,
    };
  });
}

function healthMetric(r: SizeRun): ReturnType<typeof metric> {
  const l = [...r.health!.latenciesMs].sort((a, b) => a - b);
  const at = (q: number) => (l.length === 0 ? NaN : l[Math.min(l.length - 1, Math.floor(q * l.length))]);
  return metric(
    `${r.label}: GET /health latency during the job, p50 / p99 / max`,
    `${round(at(0.5), 1)} / ${round(at(0.99), 1)} / ${round(l.at(-1) ?? NaN, 1)}`,
    'ms',
    undefined,
    `${l.length} probes every 100 ms while the worker ran (RAG_HTTP_PORT set for this size only), ${r.health!.bad} not 200`,
  );
}

export async function scenarioBigTranscript(ctx: BenchContext): Promise<ScenarioResult> {
  const started = performance.now();
  // [label, segments, text repeated, target peak MB]
  const sizes: [string, number, number, number | undefined][] = ctx.quick
    ? [['2k segments', 2_000, 1, undefined]]
    : [
        ['1k segments', 1_000, 1, undefined],
        ['20k segments', 20_000, 1, 300],
        ['100k segments', 100_000, 1, 350],
        ['50 MB payload', 25_000, 4, 500],
      ];
  // BENCH_D_SIZES=100k,50: only the sizes whose label starts with one of these (what-if runs).
  const only = process.env.BENCH_D_SIZES?.split(',').map((x) => x.trim()).filter(Boolean);
  const chosen = only ? sizes.filter(([label]) => only.some((o) => label.startsWith(o))) : sizes;
  sizes.splice(0, sizes.length, ...chosen);
  const runs: SizeRun[] = [];
  // BENCH_D_HTTP=off: no size serves HTTP; =all: every size does; default: the largest only.
  const httpMode = process.env.BENCH_D_HTTP ?? 'largest';
  const largest = sizes.reduce((best, s) => (s[1] * s[2] > best[1] * best[2] ? s : best), sizes[0])?.[0];
  for (const [label, segments, repeat] of sizes) {
    const r = await runSize(ctx, label, segments, repeat, httpMode === 'all' || (httpMode !== 'off' && label === largest));
    ctx.log(`d: ${label}: peak RSS ${round(r.peakMB, 1)} MB, first save ${round(r.firstSaveS, 2)} s, ${round(r.wallS, 1)} s, ${r.status}`);
    runs.push(r);
  }
  const metrics = runs.flatMap((r, i) => {
    const target = sizes[i][3];
    return [
      metric(`${r.label} (${r.payloadMB.toFixed(1)} MB): peak RSS`, round(r.peakMB, 1), 'MB', target === undefined ? undefined : { op: '<=', value: target }, r.peakHow),
      metric(`${r.label}: first save after the claim`, round(r.firstSaveS, 2), 's', undefined, `the thread streamed chunks for ${round(r.chunkS, 1)} s (paced by embedding and saving)`),
      metric(`${r.label}: wall time, job status`, `${round(r.wallS, 1)} s, ${r.status}`, '', undefined, `${r.chunks ?? '?'} chunks; ${r.exit}${r.error ? `; ${r.error}` : ''}; lease ran out for ${r.leaseExpiredS} s`),
      ...(r.health ? [healthMetric(r)] : []),
    ];
  });
  return {
    id: 'd',
    title: 'Memory against transcript size',
    status: 'ok',
    params: { sizes: sizes.map(([label, segments, repeat]) => ({ label, segments, repeat })), cli: CLI, nodeOptions: process.env.BENCH_D_NODE_OPTIONS ?? null },
    elapsedMs: performance.now() - started,
    metrics,
    notes: [
      `one transcript per run as segment JSON; \`node bin/rag-worker.mjs start --once\` (the launcher, running ${launcherRuns()}; it re-runs \`start\` with --max-semi-space-size=4) as a child process, default settings; peak RSS: the kernel's maxrss of the largest process (threads included).`,
    ],
  };
}
