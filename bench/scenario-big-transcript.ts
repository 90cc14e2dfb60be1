/**
 * d. One huge transcript (20,000 segments) through a real worker process: `node src/main/cli.ts start --once`
 * against a fresh database and the simulated provider (100 ms + 1 ms/1k tokens, no rate limit).
 * Peak RSS from `/usr/bin/time -v` (the kernel's maxrss of the process, threads included), else from
 * sampling /proc/<pid>/status VmHWM. RSS is also sampled every 100 ms to place the peak among the job's phases,
 * which are read from the worker's JSON log lines.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createTestDatabase } from '../test/support/test-db.ts';
import { spawnFakeServer } from './fake-server.ts';
import { DIMENSIONS, MODEL, round, withCleanup, type BenchContext } from './harness.ts';
import { metric, type ScenarioResult } from './report.ts';
import { generateTranscript } from './synthetic-transcripts.ts';

const CLI = fileURLToPath(new URL('../src/main/cli.ts', import.meta.url));
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

function childPid(pid: number): number | null {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    return kids.length > 0 ? Number(kids[0]) : null;
  } catch {
    return null;
  }
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

interface ChildRun {
  exitCode: number | null;
  wallMs: number;
  peakKb: number | null;
  peakHow: string;
  probes: Probe[];
  logs: LogLine[];
  stderrTail: string;
}

async function runWorkerProcess(env: Record<string, string>): Promise<ChildRun> {
  const dir = mkdtempSync(`${os.tmpdir()}/rag-bench-d-`);
  const timeFile = `${dir}/time.txt`;
  const useTime = existsSync(TIME);
  const args = ['--import', PROBE, CLI, 'start', '--once'];
  const started = performance.now();
  const child = useTime
    ? spawn(TIME, ['-v', '-o', timeFile, process.execPath, ...args], { cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn(process.execPath, args, { cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => (stderr += d));
  let hwm: number | null = null;
  let nodePid: number | null = useTime ? null : child.pid!;
  const sampler = setInterval(() => {
    nodePid ??= childPid(child.pid!);
    if (nodePid === null) return;
    const h = readProcKb(nodePid, 'VmHWM');
    if (h !== null) hwm = Math.max(hwm ?? 0, h);
  }, 100);
  const exitCode = await new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  clearInterval(sampler);
  const wallMs = performance.now() - started;
  let peakKb: number | null = hwm;
  let peakHow = 'sampled /proc VmHWM every 100 ms';
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
  return { exitCode, wallMs, peakKb, peakHow, probes, logs, stderrTail: stderr.split('\n').filter((l) => !l.startsWith('{')).slice(-5).join(' | ') };
}

/** Phase boundaries (ms since the first log line) from the worker's log. */
function phases(logs: LogLine[]) {
  const t = (l: LogLine | undefined) => (l ? Date.parse(l.time) : NaN);
  const t0 = t(logs[0]);
  const segLine = logs.find((l) => l.msg.startsWith('📊 Segments'));
  const saves = logs.filter((l) => l.msg.startsWith('✅ Segment'));
  const done = logs.find((l) => /^✅ Job .* completed/.test(l.msg));
  const processing = logs.find((l) => l.msg.startsWith('📦 Processing'));
  return {
    t0,
    chunks: Number(segLine?.chunks ?? NaN),
    chunkMs: Number(segLine?.chunkMs ?? NaN),
    claimedAt: t(processing) - t0,
    chunkedAt: t(segLine) - t0,
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

export async function scenarioBigTranscript(ctx: BenchContext): Promise<ScenarioResult> {
  const segments = ctx.quick ? 2_000 : 20_000;
  const started = performance.now();
  const transcript = generateTranscript(0, segments, { prefix: 'd', format: 'segments' });
  const payloadMB = Buffer.byteLength(JSON.stringify(transcript.payload)) / 1e6;
  return withCleanup(async (defer) => {
    const db = await createTestDatabase(DIMENSIONS);
    defer(() => db.drop());
    const server = await spawnFakeServer({ baseMs: 100, perKTokensMs: 1, dimensions: DIMENSIONS });
    defer(() => server.stop());
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    defer(() => c.end());
    await c.query('select rag_enqueue($1, $2, $3, $4, $5::jsonb)', [transcript.documentId, '1', transcript.title, 'segments', JSON.stringify(transcript.payload)]);
    ctx.log(`d: worker process on one ${segments.toLocaleString('en-US')}-segment transcript (${payloadMB.toFixed(1)} MB of JSON)…`);
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
      // What-if runs (e.g. a heap cap): BENCH_D_NODE_OPTIONS becomes the worker's NODE_OPTIONS; recorded in params.
      ...(process.env.BENCH_D_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_D_NODE_OPTIONS } : {}),
    };
    const monitor = watchLease(c);
    const run = await runWorkerProcess(env);
    const lease = await monitor.stop();
    const job = (await c.query<{ status: string; chunks_total: number; error_detail: string | null }>(
      'select status, chunks_total, error_detail from rag_ingestion_queue',
    )).rows[0];
    const ph = phases(run.logs);
    const peakMB = run.peakKb === null ? NaN : run.peakKb / 1024;
    const peak = run.probes.reduce<Probe | undefined>((a, p) => (a === undefined || p.rss > a.rss ? p : a), undefined);
    const phaseAt = (at: number) => {
      const ms = at - ph.t0;
      return ms < ph.chunkedAt ? 'claim + chunking' : ms < ph.lastSaveAt ? 'embed + save batches' : ms < ph.completedAt ? 'complete' : 'shutdown (after the job completed)';
    };
    const exitNote = run.exitCode === 0 ? 'exit 0' : `exit ${run.exitCode}: ${run.stderrTail}`;
    if (run.exitCode !== 0) ctx.log(`d: worker exited ${run.exitCode}: ${run.stderrTail}`);
    const s = (ms: number) => round(ms / 1000, 1);
    return {
      id: 'd',
      title: `One ${segments.toLocaleString('en-US')}-segment transcript`,
      status: 'ok',
      params: {
        segments,
        payloadMB: round(payloadMB, 2),
        dimensions: DIMENSIONS,
        provider: '100 ms + 1 ms/1k tokens, no rate limit',
        nodeOptions: process.env.BENCH_D_NODE_OPTIONS ?? null,
        phasesMs: ph,
        memoryTimelineMB: run.probes.filter((_, i) => i % 4 === 0).map((p) => ({ t: s(p.at - ph.t0), rss: p.rss, heapTotal: p.heapTotal, heapUsed: p.heapUsed })),
      },
      elapsedMs: performance.now() - started,
      metrics: [
        metric('peak RSS of the worker process', round(peakMB, 1), 'MB', { op: '<=', value: 400 }, run.peakHow),
        metric('wall time of the process', s(run.wallMs), 's', undefined, exitNote),
        metric('job status', job?.status ?? 'missing', '', undefined, job?.error_detail ?? undefined),
        metric('chunks', Number.isFinite(ph.chunks) ? ph.chunks : (job?.chunks_total ?? null)),
        metric('phase: parse + chunk (thread)', round(ph.chunkMs / 1000, 2), 's'),
        metric('phase: embed + save batches', s(ph.lastSaveAt - ph.chunkedAt), 's'),
        metric('phase: complete (rag_complete_job)', s(ph.completedAt - ph.lastSaveAt), 's', undefined, 'last save → job complete'),
        metric(
          'at peak RSS: main-thread V8 heap',
          peak ? peak.heapTotal : null,
          'MB',
          undefined,
          peak ? `used ${peak.heapUsed} MB; rest (threads, WASM, native) ${peak.rss - peak.heapTotal} MB; during ${phaseAt(peak.at)}, ${s(peak.at - ph.t0)} s in` : 'no probe',
        ),
        metric(
          'lease run out while the job was processing',
          lease.expiredS,
          's',
          undefined,
          `sampled every 0.5 s; up to ${round(lease.maxOverdueS, 1)} s past expiry; rag_save_chunks running in ${round(lease.saveBusy * 100, 0)}% of samples; heartbeats blocked on the row: up to ${lease.maxBlockedBeats}; claimable by another worker at ${lease.claimable} samples`,
        ),
      ],
      notes: [`${segments.toLocaleString('en-US')} segments as segment JSON (${payloadMB.toFixed(1)} MB); \`node src/main/cli.ts start --once\` as a child process, default settings; peak RSS: ${run.peakHow}.`],
    };
  });
}
