/**
 * j. The CLI on the embedded default, as a newcomer runs it: the bundled examples ingested once, then interleaved
 * rounds of `config`, `status` and `search` (each a fresh process under /usr/bin/time: wall, peak RSS), through the
 * launcher (bin/rag-worker.mjs: it runs the short database commands with --liftoff-only) and, side by side, the
 * CLI run directly with V8's defaults (node dist/main/cli.js: what the launcher did before). Medians; targets from
 * the issue: search ≤ 1.5 s and ≤ 250 MB, status ≤ 1 s.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { percentile, round } from './harness.ts';
import type { BenchContext } from './harness.ts';
import { metric, type ScenarioResult } from './report.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const LAUNCHER = path.join(ROOT, 'bin/rag-worker.mjs');
const DIRECT = path.join(ROOT, 'dist/main/cli.js');
const EXAMPLES = path.join(ROOT, 'examples', 'transcripts');
const QUERY = 'billing database read replica';

interface Sample {
  ms: number;
  rssMb: number;
}

function timed(entry: string, args: string[], cwd: string): Sample {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, entry, ...args], { cwd, encoding: 'utf8', env: { PATH: process.env.PATH, HOME: process.env.HOME, RAG_LOG_FORMAT: 'json' } });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${args.join(' ')} via ${entry} exited ${r.status}: ${r.stderr.slice(-400)}`);
  return { ms, rssMb: Number(r.stderr.trim().split('\n').pop()) / 1024 };
}

export async function scenarioCli(ctx: BenchContext): Promise<ScenarioResult> {
  const started = performance.now();
  if (!existsSync(DIRECT)) {
    return { id: 'j', title: 'CLI on the embedded default', status: 'skipped', metrics: [], notes: ['dist/ is missing: run `npm run build`'], params: {}, elapsedMs: 0 };
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rag-bench-j-'));
  try {
    const files = readdirSync(EXAMPLES).filter((f) => !f.endsWith('.md')).map((f) => path.join(EXAMPLES, f));
    timed(LAUNCHER, ['ingest', ...files], dir);
    const rounds = ctx.quick ? 2 : 5;
    const commands: Record<string, string[]> = { config: ['config'], status: ['status'], search: ['search', QUERY] };
    const samples: Record<string, Sample[]> = {};
    for (let i = 0; i < rounds; i++) {
      ctx.log(`j: round ${i + 1}/${rounds}`);
      for (const [name, args] of Object.entries(commands)) {
        // Alternate which side goes first, so drift in machine load favours neither.
        const sides = i % 2 === 0 ? (['launcher', 'direct'] as const) : (['direct', 'launcher'] as const);
        for (const side of sides) (samples[`${name}/${side}`] ??= []).push(timed(side === 'launcher' ? LAUNCHER : DIRECT, args, dir));
      }
    }
    const med = (key: string, k: keyof Sample) => percentile(samples[key].map((s) => s[k]), 50);
    const configMs = med('config/launcher', 'ms');
    const metrics = [
      metric('`config`: wall / peak RSS', `${round(configMs, 0)} ms / ${round(med('config/launcher', 'rssMb'), 0)} MB`, '', undefined, 'no database: the floor of any command'),
      metric('`status`: wall', round(med('status/launcher', 'ms') / 1000, 2), 's', { op: '<=', value: 1 }, `÷ config ${round(med('status/launcher', 'ms') / configMs, 1)}; V8 defaults: ${round(med('status/direct', 'ms') / 1000, 2)} s`),
      metric('`status`: peak RSS', round(med('status/launcher', 'rssMb'), 0), 'MB', undefined, `V8 defaults: ${round(med('status/direct', 'rssMb'), 0)} MB`),
      metric('`search`: wall', round(med('search/launcher', 'ms') / 1000, 2), 's', { op: '<=', value: 1.5 }, `÷ config ${round(med('search/launcher', 'ms') / configMs, 1)}; V8 defaults: ${round(med('search/direct', 'ms') / 1000, 2)} s`),
      metric('`search`: peak RSS', round(med('search/launcher', 'rssMb'), 0), 'MB', { op: '<=', value: 250 }, `V8 defaults: ${round(med('search/direct', 'rssMb'), 0)} MB`),
    ];
    return {
      id: 'j',
      title: 'CLI on the embedded default',
      status: 'ok',
      params: { rounds, query: QUERY, examples: files.length },
      elapsedMs: performance.now() - started,
      metrics,
      notes: [
        `the bundled examples ingested once; ${rounds} interleaved rounds, medians; each sample a fresh process under /usr/bin/time (the launcher's figures are of the largest process).`,
        'what remains: PGlite starting (about 1 s; its WebAssembly memory starts at 128 MB).',
      ],
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
