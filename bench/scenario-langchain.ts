/**
 * f. LangChain.js side by side: the same transcripts through rag-worker and through the LangChain few-liner
 * (bench/langchain-sides.ts: RecursiveCharacterTextSplitter → OpenAIEmbeddings → PGVectorStore.addDocuments),
 * each side in its own process, its own fresh database and its own fresh simulated provider (child process;
 * a fresh bucket for every run), no rate limits configured in either client. Interleaved repeats (the order
 * alternates), medians.
 *   generous:     10,000,000 TPM (per-minute bucket), 50 ms latency;
 *   rate-limited: 900,000 TPM, 2,000 RPM, 200 ms latency, buckets holding one second (15,000 tokens, 33 requests);
 *   tight:        150,000 TPM with a 2,500-token bucket (one second), 200 ms latency: does each side finish?
 * Figures per side: wall time of the ingestion (in the child, set-up excluded; rag-worker's includes enqueueing),
 * chunks/s, CPU of the process (process.cpuUsage: all its threads) and of its PostgreSQL backends (/proc),
 * the provider's 429 share and TPM efficiency = tokens embedded ÷ (bucket + TPM × provider span), where the span
 * runs from the first request's arrival to the last response; rows stored vs chunks meant; one similarity query.
 */
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createEmptyDatabase, createTestDatabase } from '../test/support/test-db.ts';
import { runChild } from './child-process.ts';
import { spawnFakeServer, type FakeServerOptions, type FakeServerStats } from './fake-server.ts';
import { formatFunctionTimes } from './pg-cpu.ts';
import { DIMENSIONS, MODEL, percentile, round, withCleanup, type BenchContext } from './harness.ts';
import type { SideParams, SideResult } from './langchain-sides.ts';
import { metric, type Metric, type ScenarioResult } from './report.ts';

const SIDES = fileURLToPath(new URL('./langchain-sides.ts', import.meta.url));
type Side = SideParams['side'];

interface Regime {
  key: string;
  label: string;
  server: FakeServerOptions;
  /** Token bucket capacity the provider starts with (for TPM efficiency). */
  bucketTokens: number;
  tpm: number;
  repeats: number;
  transcripts: number;
  segments: number;
  /** Ratio target rag-worker ÷ LangChain wall time (none: completion is what is checked). */
  target?: number;
  timeoutMs: number;
}

function regimes(quick: boolean): Regime[] {
  const size = quick ? { transcripts: 4, segments: 40 } : { transcripts: 48, segments: 70 };
  return [
    {
      key: 'generous',
      label: '10M TPM, 50 ms',
      server: { tpm: 10_000_000, baseMs: 50 },
      bucketTokens: 10_000_000,
      tpm: 10_000_000,
      repeats: quick ? 1 : 3,
      ...size,
      target: 0.8,
      timeoutMs: quick ? 60_000 : 180_000,
    },
    {
      key: 'limited',
      label: '900k TPM, 2,000 RPM, 200 ms, 1 s burst',
      server: { tpm: 900_000, rpm: 2_000, baseMs: 200, burstSeconds: 1 },
      bucketTokens: 15_000,
      tpm: 900_000,
      repeats: quick ? 1 : 3,
      ...size,
      target: 0.9,
      timeoutMs: quick ? 60_000 : 240_000,
    },
    {
      key: 'tight',
      label: '150k TPM, 2,500-token burst, 200 ms',
      server: { tpm: 150_000, baseMs: 200, burstSeconds: 1 },
      bucketTokens: 2_500,
      tpm: 150_000,
      repeats: 1,
      // Quick: 2 transcripts of the full run's size (≈ 5,700 tokens each, more than the bucket holds).
      ...(quick ? { transcripts: 2, segments: 70 } : size),
      timeoutMs: quick ? 15_000 : 300_000,
    },
  ];
}

interface Run {
  side: Side;
  ok: boolean;
  /** Why it did not complete: the side's error, a crash, or the timeout. */
  problem?: string;
  timedOut: boolean;
  r?: SideResult;
  stats?: FakeServerStats;
}

async function runSide(side: Side, regime: Regime, ctx: BenchContext, timeoutMs: number): Promise<Run> {
  return withCleanup(async (defer) => {
    // rag-worker needs its migrated schema; LangChain creates its own table in an empty database.
    const [dbR, serverR] = await Promise.allSettled([
      side === 'rag-worker' ? createTestDatabase(DIMENSIONS) : createEmptyDatabase(),
      spawnFakeServer({ ...regime.server, dimensions: DIMENSIONS }),
    ]);
    if (dbR.status === 'fulfilled') defer(() => dbR.value.drop());
    if (serverR.status === 'fulfilled') defer(() => serverR.value.stop());
    if (dbR.status === 'rejected') throw dbR.reason;
    if (serverR.status === 'rejected') throw serverR.reason;
    const db = dbR.value;
    const server = serverR.value;
    const params: SideParams = {
      side,
      databaseUrl: db.url,
      baseURL: server.url,
      transcripts: regime.transcripts,
      segments: regime.segments,
      prefix: 'f',
      model: MODEL,
      dimensions: DIMENSIONS,
      query: 'who is blocked on the retry logic for the billing service',
    };
    // A clean environment: no OPENAI_* / LANGCHAIN_* / RAG_* from the caller.
    const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', TEST_DATABASE_URL: process.env.TEST_DATABASE_URL ?? '' };
    const out = await runChild<SideResult>(SIDES, params, { timeoutMs, tag: `f-${side}`, env });
    let stats: FakeServerStats | undefined;
    try {
      stats = await server.stats();
    } catch {
      /* server gone */
    }
    const r = out.result;
    const problem = out.timedOut
      ? `did not finish within ${Math.round(timeoutMs / 1000)} s (killed)`
      : !r
        ? `process exited ${out.exitCode ?? out.signal}: ${out.stderrTail}`
        : r.error;
    const ok = !out.timedOut && !!r && r.completed && r.storedRows === r.expectedChunks && r.storedRows > 0 && r.searchRows > 0;
    ctx.log(
      `f: ${regime.key} ${side}: ${r ? `${round(r.wallMs / 1000, 2)} s, ${r.storedRows}/${r.expectedChunks} rows, ${stats?.rateLimited ?? '?'}×429 of ${stats?.requests ?? '?'}` : ''}${problem ? ` — ${problem}` : ''}`,
    );
    return { side, ok, problem: ok ? undefined : (problem ?? `stored ${r?.storedRows} of ${r?.expectedChunks}, search rows ${r?.searchRows}`), timedOut: out.timedOut, r, stats };
  });
}

/**
 * Several rag-worker processes on one account: one simulated provider (the rate-limited regime) and one queue
 * database, each process enqueueing a share of the transcripts, all started at once — workers of one deployment.
 * They split the account's limit through rag_rate_shares (RAG_SHARE_RATE_LIMITS, on by default; BENCH_F_SHARE=off
 * runs them without it, when only the provider's answers share the limit): the 429 share and the TPM efficiency
 * over the shared span show whether they share it. Every job complete and every chunk stored is checked at the end.
 */
async function runShared(regime: Regime, processes: number, ctx: BenchContext) {
  return withCleanup(async (defer) => {
    const server = await spawnFakeServer({ ...regime.server, dimensions: DIMENSIONS });
    defer(() => server.stop());
    const db = await createTestDatabase(DIMENSIONS);
    defer(() => db.drop());
    const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', TEST_DATABASE_URL: process.env.TEST_DATABASE_URL ?? '' };
    const per = Math.ceil(regime.transcripts / processes);
    const outs = await Promise.all(
      Array.from({ length: processes }, (_, i) =>
        runChild<SideResult>(
          SIDES,
          {
            side: 'rag-worker',
            databaseUrl: db.url,
            baseURL: server.url,
            transcripts: per,
            segments: regime.segments,
            prefix: `f${i + 1}`,
            model: MODEL,
            dimensions: DIMENSIONS,
            query: 'who is blocked on the retry logic for the billing service',
            sharedQueue: true,
            workerSettings: process.env.BENCH_F_SHARE === 'off' ? { RAG_SHARE_RATE_LIMITS: 'false' } : {},
          } satisfies SideParams,
          { timeoutMs: regime.timeoutMs, tag: `f-shared-${i + 1}`, env },
        ),
      ),
    );
    const stats = await server.stats();
    const problems = outs.filter((o) => o.timedOut || !o.result?.completed).map((o) => o.result?.error ?? o.stderrTail);
    const probe = new pg.Client({ connectionString: db.url });
    await probe.connect();
    try {
      const q = await probe.query<{ jobs: number; complete: number; expected: string | null; stored: number }>(
        `select count(*)::int as jobs, count(*) filter (where status = 'complete')::int as complete, sum(chunks_total) as expected,
                (select count(*)::int from rag_chunks) as stored
           from rag_ingestion_queue`,
      );
      const { jobs, complete, expected, stored } = q.rows[0];
      if (jobs !== per * processes || complete !== jobs) problems.push(`${complete} of ${jobs} jobs complete (expected ${per * processes})`);
      if (Number(expected ?? 0) !== stored || stored === 0) problems.push(`stored ${stored} chunks of ${expected}`);
    } finally {
      await probe.end();
    }
    const ok = problems.length === 0;
    const walls = outs.map((o) => (o.result ? o.result.wallMs : NaN));
    const efficiency = stats.tokens / (regime.bucketTokens + (regime.tpm * stats.spanMs) / 60_000);
    ctx.log(`f: shared by ${processes} processes: ${walls.map((w) => round(w / 1000, 2)).join(', ')} s, ${stats.rateLimited}×429 of ${stats.requests}, efficiency ${round(efficiency, 3)}${ok ? '' : ` — ${problems.join('; ')}`}`);
    return { ok, walls, stats, efficiency, per, problems };
  });
}

const med = (xs: number[]) => (xs.length === 0 ? NaN : percentile(xs, 50));

function summarize(runs: Run[], regime: Regime) {
  const good = runs.filter((x) => x.ok && x.r && x.stats);
  const wall = med(good.map((x) => x.r!.wallMs));
  const chunks = med(good.map((x) => x.r!.storedRows));
  const tokens = good.map((x) => x.stats!.tokens);
  return {
    runs: runs.length,
    ok: good.length,
    wallMs: wall,
    wallAll: runs.map((x) => (x.r ? round(x.r.wallMs / 1000, 2) : null)),
    chunksPerS: med(good.map((x) => x.r!.storedRows / (x.r!.wallMs / 1000))),
    chunks,
    expected: runs.map((x) => x.r?.expectedChunks ?? null),
    stored: runs.map((x) => x.r?.storedRows ?? null),
    search: runs.map((x) => x.r?.searchRows ?? null),
    cpuS: med(good.map((x) => x.r!.cpu.totalMs / 1000)),
    pgCpuS: med(good.filter((x) => x.r!.pgCpuMs !== null).map((x) => x.r!.pgCpuMs! / 1000)),
    share429: med(runs.filter((x) => x.stats && x.stats.requests > 0).map((x) => x.stats!.rateLimited / x.stats!.requests)),
    requests: med(runs.filter((x) => x.stats).map((x) => x.stats!.requests)),
    tooLarge: med(runs.filter((x) => x.stats).map((x) => x.stats!.tooLarge ?? 0)),
    refusedAt: runs.flatMap((x) => (x.stats?.refusedAtMs ?? []).slice(0, 4).map((ms) => round(ms / 1000, 2))).slice(0, 8),
    tokens: med(tokens),
    efficiency: med(
      good.filter((x) => Number.isFinite(x.stats!.spanMs)).map((x) => x.stats!.tokens / (regime.bucketTokens + (regime.tpm * x.stats!.spanMs) / 60_000)),
    ),
    spanS: med(good.filter((x) => Number.isFinite(x.stats!.spanMs)).map((x) => x.stats!.spanMs / 1000)),
    problems: [...new Set(runs.filter((x) => x.problem).map((x) => x.problem!.replace(/\s+/g, ' ').slice(0, 240)))],
    warmupS: med(good.filter((x) => x.r!.warmupMs !== undefined).map((x) => x.r!.warmupMs! / 1000)) || 0,
  };
}

export async function scenarioLangChain(ctx: BenchContext): Promise<ScenarioResult> {
  const started = performance.now();
  const metrics: Metric[] = [];
  const notes: string[] = [];
  const params: Record<string, unknown> = {};
  // BENCH_F_PARTS=limited,shared: only those regimes (what-if runs); default all, then the shared account.
  const parts = process.env.BENCH_F_PARTS?.split(',').map((x) => x.trim()).filter(Boolean);
  for (const regime of regimes(ctx.quick).filter((r) => !parts || parts.includes(r.key))) {
    ctx.log(`f: ${regime.key} (${regime.label}): ${regime.transcripts} × ${regime.segments} segments, ${regime.repeats} interleaved repeat(s)…`);
    const runs: Record<Side, Run[]> = { 'rag-worker': [], langchain: [] };
    for (let i = 0; i < regime.repeats; i++) {
      const order: Side[] = i % 2 === 0 ? ['rag-worker', 'langchain'] : ['langchain', 'rag-worker'];
      for (const side of order) runs[side].push(await runSide(side, regime, ctx, regime.timeoutMs));
    }
    const rw = summarize(runs['rag-worker'], regime);
    const lc = summarize(runs.langchain, regime);
    params[regime.key] = { ...regime, ragWorker: rw, langchain: lc };
    const top = runs['rag-worker'].find((x) => x.ok && x.r?.topFunctions?.length)?.r?.topFunctions;
    if (top) {
      notes.push(
        `${regime.key}: rag-worker's SQL functions by self time (one run, track_functions = all; PostgreSQL CPU above is all backends): ` +
          formatFunctionTimes(top),
      );
    }
    const k = regime.key;
    const pct = (x: number) => round(x * 100, 2);
    if (regime.target !== undefined) {
      const ratio = rw.ok > 0 && lc.ok > 0 ? round(rw.wallMs / lc.wallMs, 3) : null;
      metrics.push(
        metric(`${k}: wall rag-worker ÷ LangChain`, ratio, '', { op: '<=', value: regime.target }, ratio === null ? `a side did not complete: ${[...rw.problems, ...lc.problems].join('; ')}` : `${regime.label}; medians of ${regime.repeats}`),
      );
    } else {
      metrics.push(metric(`${k}: rag-worker completed`, rw.ok === rw.runs ? 'yes' : 'NO', '', undefined, rw.problems.join('; ') || regime.label));
      metrics.push(metric(`${k}: LangChain completed`, lc.ok === lc.runs ? 'yes' : 'no', '', undefined, lc.problems.join('; ') || regime.label));
    }
    for (const [name, s] of [['rag-worker', rw], ['LangChain', lc]] as const) {
      if (s.ok === 0) {
        metrics.push(metric(`${k}: ${name} wall time`, null, 's', undefined, s.problems.join('; ')));
        continue;
      }
      metrics.push(
        metric(`${k}: ${name} wall time`, round(s.wallMs / 1000, 2), 's', undefined, `runs: ${s.wallAll.join(', ')} s${s.warmupS > 0 ? `; thread start-up before the clock ${round(s.warmupS, 2)} s` : ''}`),
      );
      metrics.push(metric(`${k}: ${name} chunks/s`, round(s.chunksPerS, 1), 'chunks/s', undefined, `stored ${s.stored.join(', ')} of ${s.expected.join(', ')} chunks; search rows ${s.search.join(', ')}`));
      metrics.push(metric(`${k}: ${name} CPU (process)`, round(s.cpuS, 2), 's', undefined, `PostgreSQL backends ${round(s.pgCpuS, 2)} s`));
      metrics.push(
        metric(`${k}: ${name} 429 share`, pct(s.share429), '%', undefined, `${s.requests} requests${s.tooLarge ? `, ${s.tooLarge} refused as larger than the bucket` : ''}${s.refusedAt.length ? `; refused at ${s.refusedAt.join(', ')} s into the runs` : ''}`),
      );
      metrics.push(metric(`${k}: ${name} TPM efficiency`, round(s.efficiency, 3), '', undefined, `${s.tokens.toLocaleString('en-US')} tokens over a ${round(s.spanS, 1)} s provider span`));
    }
  }
  const limited = regimes(ctx.quick).find((r) => r.key === 'limited')!;
  const processes = 3;
  if (parts && !parts.includes('shared')) return { id: 'f', title: 'rag-worker vs LangChain.js', status: 'ok', params, elapsedMs: performance.now() - started, metrics, notes };
  ctx.log(`f: shared (${limited.label}): ${processes} rag-worker processes at once on one simulated account…`);
  const shared = await runShared(limited, processes, ctx);
  params.shared = { processes, transcriptsEach: shared.per, walls: shared.walls, stats: shared.stats, efficiency: shared.efficiency };
  const share = shared.stats.requests > 0 ? shared.stats.rateLimited / shared.stats.requests : NaN;
  metrics.push(
    metric(`shared by ${processes} worker processes: 429 share`, round(share * 100, 2), '%', { op: '<', value: 1 }, `${shared.stats.rateLimited} of ${shared.stats.requests} requests${shared.stats.refusedAtMs.length ? ` (at ${shared.stats.refusedAtMs.slice(0, 6).map((ms) => round(ms / 1000, 2)).join(', ')} s)` : ''}; ${limited.label}; ${shared.ok ? 'every job complete' : `NOT all complete: ${shared.problems.join('; ')}`}`),
    metric(`shared by ${processes} worker processes: TPM efficiency`, round(shared.efficiency, 3), '', { op: '>=', value: 0.95 }, `${shared.stats.tokens.toLocaleString('en-US')} tokens over a ${round(shared.stats.spanMs / 1000, 1)} s shared span; walls ${shared.walls.map((w) => round(w / 1000, 2)).join(', ')} s`),
  );
  notes.push(
    `shared: ${processes} rag-worker processes (${shared.per} transcripts enqueued by each, one queue database) started together against one simulated provider in the rate-limited regime; no limits configured; ${process.env.BENCH_F_SHARE === 'off' ? 'RAG_SHARE_RATE_LIMITS=false: nothing coordinates them but the provider\'s answers (headers, 429s)' : 'they split the account\'s limit through rag_rate_shares (RAG_SHARE_RATE_LIMITS)'}.`,
    'each run: its own process (node bench/langchain-sides.ts), fresh database, fresh simulated provider (tiktoken-counted tokens, 1536 dims); wall = the ingestion inside the process (rag-worker: enqueue + run --once; LangChain: split + addDocuments of every transcript); set-up before the clock on both sides (LangChain: imports, PGVectorStore.initialize, createHnswIndex; rag-worker: openRuntime and starting its chunking threads), verification after it.',
    'LangChain side: RecursiveCharacterTextSplitter(1,200 chars, no overlap) on `Speaker: text` lines from the pre-parsed segments (parsing untimed there, timed in rag-worker), OpenAIEmbeddings defaults (batchSize 512, maxConcurrency 2, 6 retries honouring retry-after), PGVectorStore.addDocuments, its own table with createHnswIndex; one transcript after the other, as the few-liner does.',
    'rate limits: neither client is told them. "1 s burst" = bucket of limit/60 refilling continuously (bench/fake-server.ts BurstLimiter), x-ratelimit-* headers report the per-minute limit and the bucket level; a request above the token bucket is refused "Request too large". TPM efficiency = tokens ÷ (bucket + TPM × provider span); in the generous regime the limit is far away, so it only shows how little of it was used.',
  );
  return { id: 'f', title: 'rag-worker vs LangChain.js', status: 'ok', params, elapsedMs: performance.now() - started, metrics, notes };
}
