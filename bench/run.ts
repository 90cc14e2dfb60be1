/**
 * `npm run bench [-- --quick] [--only a,c] [--strict] [--learn-limits]`
 *
 * Runs the scenarios one after another in this invocation, prints one table (figures, targets, value÷target)
 * and writes bench/results/<timestamp>-<mode>.json and bench/results/latest.json.
 * --quick: small sizes for a CI smoke test (≈ 3 min with f, g, h); targets are reported, never enforced.
 * Exit code: 0 unless a scenario crashed (or, with --strict, a target was missed).
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { codeVersion, environment, formatTable, writeResults, type ScenarioResult } from './report.ts';
import type { BenchContext } from './harness.ts';
import { scenarioRateLimited } from './scenario-rate-limited.ts';
import { scenarioThroughput } from './scenario-throughput.ts';
import { scenarioChunking } from './scenario-chunking.ts';
import { scenarioBigTranscript } from './scenario-big-transcript.ts';
import { scenarioPickup } from './scenario-pickup.ts';
import { scenarioLangChain } from './scenario-langchain.ts';
import { scenarioDeepQueue } from './scenario-deep-queue.ts';
import { scenarioQueueOverhead } from './scenario-queue-overhead.ts';
import { scenarioStartup } from './scenario-startup.ts';
import { scenarioCli } from './scenario-cli.ts';
import { scenarioClaude } from './scenario-claude.ts';
import { scenarioRetrievalQuality } from './retrieval-quality.ts';

interface Scenario {
  id: string;
  title: string;
  run: (ctx: BenchContext) => Promise<ScenarioResult>;
  /** Watchdog per scenario. */
  timeoutMs: { quick: number; full: number };
}

const SCENARIOS: Scenario[] = [
  { id: 'a', title: 'Rate-limited backfill', run: scenarioRateLimited, timeoutMs: { quick: 150_000, full: 20 * 60_000 } },
  { id: 'b', title: 'Unlimited provider throughput', run: scenarioThroughput, timeoutMs: { quick: 60_000, full: 15 * 60_000 } },
  { id: 'c', title: 'Chunking throughput', run: scenarioChunking, timeoutMs: { quick: 60_000, full: 10 * 60_000 } },
  { id: 'd', title: 'Memory against transcript size', run: scenarioBigTranscript, timeoutMs: { quick: 60_000, full: 40 * 60_000 } },
  { id: 'e', title: 'Pickup latency', run: scenarioPickup, timeoutMs: { quick: 60_000, full: 5 * 60_000 } },
  { id: 'f', title: 'rag-worker vs LangChain.js', run: scenarioLangChain, timeoutMs: { quick: 120_000, full: 30 * 60_000 } },
  { id: 'g', title: 'Deep queue', run: scenarioDeepQueue, timeoutMs: { quick: 90_000, full: 15 * 60_000 } },
  { id: 'h', title: 'Queue overhead vs graphile-worker, pg-boss', run: scenarioQueueOverhead, timeoutMs: { quick: 120_000, full: 30 * 60_000 } },
  { id: 'i', title: 'Type stripping vs compiled JS', run: scenarioStartup, timeoutMs: { quick: 120_000, full: 10 * 60_000 } },
  { id: 'j', title: 'CLI on the embedded default', run: scenarioCli, timeoutMs: { quick: 120_000, full: 10 * 60_000 } },
  { id: 'k', title: 'Claude backfill', run: scenarioClaude, timeoutMs: { quick: 90_000, full: 15 * 60_000 } },
  { id: 'l', title: 'Retrieval quality of the offline embedders', run: scenarioRetrievalQuality, timeoutMs: { quick: 180_000, full: 10 * 60_000 } },
];

function usage(): never {
  process.stdout.write(
    'usage: npm run bench [-- --quick] [--only a,b,c,d,e,f,g,h,i,j,k,l] [--strict] [--learn-limits]\n' +
      '  --learn-limits  scenario a without RAG_EMBEDDING_RPM/TPM (limits learned from x-ratelimit-* headers)\n' +
      SCENARIOS.map((s) => `  ${s.id}  ${s.title}`).join('\n') +
      '\n',
  );
  process.exit(0);
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${Math.round(ms / 1000)} s`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      strict: { type: 'boolean', default: false },
      'learn-limits': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) usage();
  const quick = values.quick!;
  const only = values.only?.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  const unknown = only?.filter((id) => !SCENARIOS.some((s) => s.id === id)) ?? [];
  if (unknown.length > 0) {
    process.stderr.write(`bench: unknown scenario(s) ${unknown.join(', ')}\n`);
    return 2;
  }
  const selected = SCENARIOS.filter((s) => !only || only.includes(s.id));
  const startedAt = new Date().toISOString();
  const codeAtStart = codeVersion();
  const t0 = performance.now();
  const ctx: BenchContext = {
    quick,
    learnLimits: values['learn-limits'],
    log: (line) => process.stderr.write(`[bench +${((performance.now() - t0) / 1000).toFixed(1)}s] ${line}\n`),
  };
  ctx.log(`${quick ? 'quick' : 'full'} run: ${selected.map((s) => s.id).join(', ')}`);

  const results: ScenarioResult[] = [];
  for (const s of selected) {
    const began = performance.now();
    const loadavg = os.loadavg()[0];
    try {
      const result = await withTimeout(s.run(ctx), quick ? s.timeoutMs.quick : s.timeoutMs.full, `scenario ${s.id}`);
      result.params.loadavgAtStart = Math.round(loadavg * 100) / 100;
      results.push(result);
      ctx.log(`${s.id}: ${result.status} in ${((performance.now() - began) / 1000).toFixed(1)} s`);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
      results.push({ id: s.id, title: s.title, status: 'error', metrics: [], notes: [], params: {}, elapsedMs: performance.now() - began, error: message });
      ctx.log(`${s.id}: CRASHED: ${message}`);
    }
  }

  const codeAtEnd = codeVersion();
  const describe = (c: typeof codeAtStart) => `${c.commit ?? 'unknown commit'}${c.dirty.length > 0 ? ` + ${c.dirty.length} uncommitted change(s) in src/supabase/sql` : ''}`;
  process.stdout.write(`\nrag-worker bench (${quick ? 'quick — targets not enforced' : 'full'}), ${new Date().toISOString()}, code ${describe(codeAtStart)}\n`);
  if (JSON.stringify(codeAtStart) !== JSON.stringify(codeAtEnd)) {
    process.stdout.write(`WARNING: the code changed during the run (now ${describe(codeAtEnd)}): scenarios may have measured different versions\n`);
  }
  process.stdout.write('\n');
  process.stdout.write(`${formatTable(results)}\n`);
  const file = writeResults({
    startedAt,
    finishedAt: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    only,
    argv: process.argv.slice(2),
    environment: environment(),
    code: { start: codeAtStart, end: codeAtEnd },
    results,
  });
  process.stdout.write(`\nResults: ${file} (and bench/results/latest.json); total ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);

  const crashed = results.some((r) => r.status === 'error');
  const missed = results.some((r) => r.metrics.some((m) => m.met === false));
  if (crashed) return 1;
  if (values.strict && !quick && missed) return 1;
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
