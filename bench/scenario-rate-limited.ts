/**
 * a. Rate-limited backfill: N transcripts through the worker (in this process) against the simulated provider
 * (child process) enforcing RPM/TPM. Efficiency = tokens served ÷ (TPM × minutes + the initial bucket, = TPM).
 * The naive baseline runs on a subset against a fresh provider with the same limits and is extrapolated.
 */
import { createTestDatabase } from '../test/support/test-db.ts';
import { spawnFakeServer } from './fake-server.ts';
import { DIMENSIONS, enqueueAll, MODEL, openWorker, round, statusCounts, withCleanup, workerEnv, type BenchContext } from './harness.ts';
import { runNaiveBaseline } from './naive-baseline.ts';
import { metric, type ScenarioResult } from './report.ts';
import { generateTranscripts } from './synthetic-transcripts.ts';

export interface RateLimitedParams {
  transcripts: number;
  segments: number;
  rpm: number;
  tpm: number;
  baseMs: number;
  perKTokensMs: number;
  naiveTranscripts: number;
  /** Tell the worker the limits (RAG_EMBEDDING_RPM/TPM); false: it learns them from x-ratelimit-* headers. */
  configureLimits: boolean;
}

export function rateLimitedParams(quick: boolean): RateLimitedParams {
  return quick
    ? { transcripts: 10, segments: 60, rpm: 3000, tpm: 45_000, baseMs: 100, perKTokensMs: 1, naiveTranscripts: 1, configureLimits: true }
    : { transcripts: 100, segments: 250, rpm: 3000, tpm: 1_000_000, baseMs: 100, perKTokensMs: 1, naiveTranscripts: 5, configureLimits: true };
}

interface WorkerRun {
  wallMs: number;
  tokens: number;
  requests: number;
  rateLimited: number;
  failedJobs: number;
  completeJobs: number;
  schedulerRetries: number;
}

export async function runWorker(p: RateLimitedParams, ctx: BenchContext): Promise<WorkerRun> {
  const transcripts = generateTranscripts(p.transcripts, p.segments, { prefix: 'a' });
  return withCleanup(async (defer) => {
    const db = await createTestDatabase(DIMENSIONS);
    defer(() => db.drop());
    const server = await spawnFakeServer({ rpm: p.rpm, tpm: p.tpm, baseMs: p.baseMs, perKTokensMs: p.perKTokensMs, dimensions: DIMENSIONS });
    defer(() => server.stop());
    const worker = await openWorker(
      workerEnv(db.url, {
        OPENAI_API_KEY: 'bench',
        OPENAI_BASE_URL: server.url,
        RAG_EMBEDDING_RPM: p.configureLimits ? String(p.rpm) : '',
        RAG_EMBEDDING_TPM: p.configureLimits ? String(p.tpm) : '',
      }),
      'a',
    );
    defer(() => worker.close());
    await enqueueAll(worker.rt, transcripts);
    ctx.log(`a: worker on ${p.transcripts} × ${p.segments} segments (${p.rpm} RPM, ${p.tpm.toLocaleString('en-US')} TPM)…`);
    const started = performance.now();
    await worker.coordinator.run({ once: true });
    const wallMs = performance.now() - started;
    const stats = await server.stats();
    const counts = await statusCounts(worker.rt);
    return {
      wallMs,
      tokens: stats.tokens,
      requests: stats.requests,
      rateLimited: stats.rateLimited,
      failedJobs: (counts.failed ?? 0) + (counts.queued ?? 0) + (counts.processing ?? 0),
      completeJobs: counts.complete ?? 0,
      schedulerRetries: worker.rt.scheduler.stats.retries,
    };
  });
}

async function runNaive(p: RateLimitedParams, ctx: BenchContext) {
  const transcripts = generateTranscripts(p.naiveTranscripts, p.segments, { prefix: 'a' });
  return withCleanup(async (defer) => {
    const db = await createTestDatabase(DIMENSIONS);
    defer(() => db.drop());
    const server = await spawnFakeServer({ rpm: p.rpm, tpm: p.tpm, baseMs: p.baseMs, perKTokensMs: p.perKTokensMs, dimensions: DIMENSIONS });
    defer(() => server.stop());
    ctx.log(`a: naive baseline on ${p.naiveTranscripts} of the ${p.transcripts} transcripts…`);
    const result = await runNaiveBaseline({ databaseUrl: db.url, baseURL: server.url, model: MODEL, dimensions: DIMENSIONS, transcripts });
    const stats = await server.stats();
    return { ...result, rateLimited: stats.rateLimited };
  });
}

export async function scenarioRateLimited(ctx: BenchContext): Promise<ScenarioResult> {
  const p = { ...rateLimitedParams(ctx.quick), ...(ctx.learnLimits ? { configureLimits: false } : {}) };
  const started = performance.now();
  const w = await runWorker(p, ctx);
  const naive = await runNaive(p, ctx);
  const minutes = w.wallMs / 60_000;
  const allowed = p.tpm * minutes + p.tpm;
  const efficiency = w.tokens / allowed;
  const share429 = w.requests === 0 ? 0 : w.rateLimited / w.requests;
  const naiveExtrapolatedMs = (naive.wallMs / naive.transcripts) * p.transcripts;
  return {
    id: 'a',
    title: 'Rate-limited backfill',
    status: 'ok',
    params: { ...p },
    elapsedMs: performance.now() - started,
    metrics: [
      metric('TPM efficiency: tokens ÷ (TPM×min + TPM)', round(efficiency, 3), '', { op: '>=', value: 0.95 }),
      metric('requests answered 429', round(share429 * 100, 2), '%', { op: '<', value: 1 }),
      metric('failed or unfinished jobs', w.failedJobs, '', { op: '==', value: 0 }),
      metric('worker wall time', round(w.wallMs / 1000, 1), 's'),
      metric('tokens served', w.tokens, 'tokens', undefined, `the limit allowed ${Math.round(allowed).toLocaleString('en-US')} over the run (bucket of ${p.tpm.toLocaleString('en-US')} + refill)`),
      metric('requests', w.requests, '', undefined, `${round(w.requests / minutes)}/min of ${p.rpm} RPM; scheduler retries ${w.schedulerRetries}`),
      metric('jobs complete', w.completeJobs, `of ${p.transcripts}`),
      metric(
        'naive baseline wall time',
        round(naiveExtrapolatedMs / 1000, 1),
        's',
        undefined,
        `extrapolated ×${round(p.transcripts / naive.transcripts, 1)} from ${naive.transcripts} transcript(s) measured in ${round(naive.wallMs / 1000, 1)} s; ${naive.rateLimited} × 429`,
      ),
      metric('speed-up over naive', round(naiveExtrapolatedMs / w.wallMs, 1), '×'),
    ],
    notes: [
      `${p.transcripts} transcripts × ${p.segments} segments (half segment JSON, half WebVTT), ${p.rpm} RPM / ${p.tpm.toLocaleString('en-US')} TPM, latency ${p.baseMs} ms + ${p.perKTokensMs} ms/1k tokens; ` +
        `worker told the limits: ${p.configureLimits ? 'yes (RAG_EMBEDDING_RPM/TPM)' : 'no (learned from headers)'}; default batch/concurrency/jobs.`,
    ],
  };
}
