/**
 * i. What Node's TypeScript type stripping costs per isolate, against the compiled JavaScript in dist/ (built by
 * `npm install`): side by side, interleaved rounds, medians.
 * - a process: `rag-worker config` from src/main/cli.ts and from dist/main/cli.js (wall time, peak RSS from
 *   /usr/bin/time);
 * - a chunking thread: a one-thread pool started on src/threads/chunk-worker.ts or dist/threads/chunk-worker.js,
 *   timed to its first chunked transcript, with the process's RSS growth (each variant in a fresh process).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { percentile, round } from './harness.ts';
import type { BenchContext } from './harness.ts';
import { metric, type ScenarioResult } from './report.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SRC_CLI = `${ROOT}src/main/cli.ts`;
const DIST_CLI = `${ROOT}dist/main/cli.js`;

/** Wall ms and peak RSS (MB) of one `config` run. */
function timeConfig(entry: string): { ms: number; rssMb: number } {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, entry, 'config'], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, RAG_DATA_DIR: undefined, DATABASE_URL: undefined },
  });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`config via ${entry} exited ${r.status}: ${r.stderr.slice(-400)}`);
  const kb = Number(r.stderr.trim().split('\n').pop());
  return { ms, rssMb: kb / 1024 };
}

/** In a fresh process: start a one-thread pool on this entry, chunk one transcript, report ms and RSS growth. */
const THREAD_PROBE = `
const [poolModule, entry] = process.argv.slice(1);
const { Piscina } = await import('piscina');
const before = process.memoryUsage().rss;
const t0 = performance.now();
const pool = new Piscina({ filename: entry, minThreads: 1, maxThreads: 1, idleTimeout: Infinity });
await pool.run({ format: 'segments', payload: { segments: [{ seq: 1, text: 'Hello there, this is a short line.' }] },
  options: { maxTokens: 512, charLimit: 4000, encoding: 'cl100k_base' } }, { name: 'default' });
const ms = performance.now() - t0;
const grown = process.memoryUsage().rss - before;
await pool.destroy();
process.stdout.write(JSON.stringify({ ms, rssMb: grown / 1048576 }));
`;

function timeThread(entry: string): { ms: number; rssMb: number } {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', THREAD_PROBE, 'piscina', entry], { cwd: ROOT, encoding: 'utf8' });
  return JSON.parse(out) as { ms: number; rssMb: number };
}

export async function scenarioStartup(ctx: BenchContext): Promise<ScenarioResult> {
  const started = performance.now();
  if (!existsSync(DIST_CLI)) {
    return { id: 'i', title: 'Type stripping vs compiled JS', status: 'skipped', metrics: [], notes: ['dist/ is missing: run `npm run build`'], params: {}, elapsedMs: 0 };
  }
  const rounds = ctx.quick ? 3 : 7;
  const samples = { srcCli: [] as { ms: number; rssMb: number }[], distCli: [] as { ms: number; rssMb: number }[], srcThread: [] as { ms: number; rssMb: number }[], distThread: [] as { ms: number; rssMb: number }[] };
  for (let i = 0; i < rounds; i++) {
    ctx.log(`i: round ${i + 1}/${rounds}`);
    // Alternate which goes first, so drift in machine load does not favour one side.
    const order = i % 2 === 0 ? (['src', 'dist'] as const) : (['dist', 'src'] as const);
    for (const side of order) {
      if (side === 'src') {
        samples.srcCli.push(timeConfig(SRC_CLI));
        samples.srcThread.push(timeThread(`${ROOT}src/threads/chunk-worker.ts`));
      } else {
        samples.distCli.push(timeConfig(DIST_CLI));
        samples.distThread.push(timeThread(`${ROOT}dist/threads/chunk-worker.js`));
      }
    }
  }
  const med = (xs: { ms: number; rssMb: number }[], k: 'ms' | 'rssMb') => percentile(xs.map((x) => x[k]), 50);
  const m = {
    srcCliMs: med(samples.srcCli, 'ms'), distCliMs: med(samples.distCli, 'ms'),
    srcCliRss: med(samples.srcCli, 'rssMb'), distCliRss: med(samples.distCli, 'rssMb'),
    srcThreadMs: med(samples.srcThread, 'ms'), distThreadMs: med(samples.distThread, 'ms'),
    srcThreadRss: med(samples.srcThread, 'rssMb'), distThreadRss: med(samples.distThread, 'rssMb'),
  };
  return {
    id: 'i',
    title: 'Type stripping vs compiled JS',
    status: 'ok',
    params: { rounds },
    elapsedMs: performance.now() - started,
    metrics: [
      metric('`config` process, TS sources: wall', round(m.srcCliMs, 0), 'ms'),
      metric('`config` process, dist/ JS: wall', round(m.distCliMs, 0), 'ms', undefined, `JS ÷ TS ${round(m.distCliMs / m.srcCliMs, 2)}`),
      metric('`config` process, TS sources: peak RSS', round(m.srcCliRss, 1), 'MB'),
      metric('`config` process, dist/ JS: peak RSS', round(m.distCliRss, 1), 'MB', undefined, `saves ${round(m.srcCliRss - m.distCliRss, 1)} MB`),
      metric('chunking thread start → first task, TS', round(m.srcThreadMs, 0), 'ms'),
      metric('chunking thread start → first task, JS', round(m.distThreadMs, 0), 'ms', undefined, `JS ÷ TS ${round(m.distThreadMs / m.srcThreadMs, 2)}`),
      metric('RSS growth per chunking thread, TS', round(m.srcThreadRss, 1), 'MB'),
      metric('RSS growth per chunking thread, JS', round(m.distThreadRss, 1), 'MB', undefined, `saves ${round(m.srcThreadRss - m.distThreadRss, 1)} MB`),
    ],
    notes: [
      `${rounds} interleaved rounds, medians; each sample a fresh process. Thread figures include loading tiktoken's cl100k_base table (the same on both sides).`,
      'the launcher (bin/rag-worker.mjs) runs dist/ when it is newer than every file under src/, else the TypeScript sources.',
    ],
  };
}
