/**
 * k. Claude backfill: the same one-hour meetings (~10,000 words each, named speakers, timestamps) ingested
 * twice side by side, each run into its own fresh database with its own fresh simulated providers (fresh rate
 * buckets, an empty prompt cache): embeddings only (RAG_ENABLE_CLAUDE_ANALYSIS=false), and Claude on (a
 * context for every chunk and an analysis of every transcript, the worker's defaults otherwise). Interleaved
 * repeats (the order alternates), medians.
 *
 * The worker runs in this process (as in scenario a), and so does the simulated Anthropic endpoint
 * (test/support/fake-anthropic.ts): rate limits enforced as buckets holding `burstMs` of each per-minute limit,
 * anthropic-ratelimit-* headers on every answer, prompt caching with a minimum cacheable prefix, token counts of
 * ceil(characters / 4). No Claude limit is configured in the worker: it learns them from the headers. Its
 * answers are sized like real ones (see `simulatedAnswer` below), and its latency grows with the answer's length. The
 * embeddings come from the simulated OpenAI-compatible provider of the other scenarios (bench/fake-server.ts,
 * child process), with generous limits.
 *
 * Figures: wall time of each side (the coordinator's run, enqueueing excluded) and the slowdown; Claude's
 * requests and tokens per minute over its traffic span (first request's arrival → last answer), as a share of
 * each limit; the cache-read share of the document tokens sent; USD per transcript-hour from the usage the
 * worker recorded on its jobs (`rag-worker status --json`'s sum), at the built-in list prices of the default
 * model; the simulator's 429s; and checks of what was stored.
 */
import { DEFAULT_PRICES } from '../src/shared/claude/prices.ts';
import { addUsage, claudeUsage, type Usage } from '../src/shared/claude/usage.ts';
import { FAKE_ANTHROPIC_KEY, fakeTokens, startFakeAnthropic, type FakeAnthropicOptions, type FakeMessagesBody } from '../test/support/fake-anthropic.ts';
import { createTestDatabase } from '../test/support/test-db.ts';
import { spawnFakeServer } from './fake-server.ts';
import { DIMENSIONS, enqueueAll, openWorker, percentile, round, sqlOf, statusCounts, withCleanup, workerEnv, type BenchContext } from './harness.ts';
import { metric, type ScenarioResult } from './report.ts';
import { generateTranscripts, type SyntheticTranscript } from './synthetic-transcripts.ts';

/** The worker's default Claude model (RAG_CLAUDE_MODEL), whose list prices the cost is recorded at. */
const CLAUDE_MODEL = 'claude-haiku-5-5';

export interface ClaudeParams {
  meetings: number;
  wordsPerMeeting: number;
  repeats: number;
  /** The simulated account: per-minute limits, and the share of a minute each bucket holds. */
  rpm: number;
  itpm: number;
  otpm: number;
  burstMs: number;
  minCacheTokens: number;
  /** Latency of an answer: base + per output token. */
  baseLatencyMs: number;
  perOutputTokenMs: number;
  /** The embeddings provider (generous). */
  embedding: { rpm: number; tpm: number; baseMs: number; perKTokensMs: number };
}

export function claudeParams(quick: boolean): ClaudeParams {
  return {
    meetings: quick ? 2 : 8,
    wordsPerMeeting: 10_000,
    repeats: quick ? 1 : 3,
    rpm: 4_000,
    itpm: 400_000,
    otpm: 80_000,
    burstMs: 5_000,
    minCacheTokens: 1024,
    baseLatencyMs: 100,
    perOutputTokenMs: 0.4,
    embedding: { rpm: 10_000, tpm: 10_000_000, baseMs: 50, perKTokensMs: 1 },
  };
}

// ---------- the simulated Claude's answers ----------

const words = (text: string): string[] => text.split(/\s+/).filter((w) => /\p{L}/u.test(w));

function userText(body: FakeMessagesBody): string {
  const m = body.messages?.[0];
  if (!m) return '';
  return typeof m.content === 'string' ? m.content : (m.content ?? []).map((b) => String(b.text ?? '')).join('\n');
}

/** The transcript passages of the system block (between <transcript> and </transcript>, without the instructions). */
function transcriptOf(body: FakeMessagesBody): string {
  const system = typeof body.system === 'string' ? body.system : (body.system ?? []).map((b) => b.text ?? '').join('\n');
  return /<transcript>\n([\s\S]*?)\n<\/transcript>/.exec(system)?.[1] ?? system;
}

/** Speaker labels of the transcript block (lines such as "Ann Okafor: …"). */
function speakersOf(transcript: string): string[] {
  const names = new Set<string>();
  for (const m of transcript.matchAll(/^([\p{Lu}][\p{L}]+(?: [\p{Lu}][\p{L}]+)?):\s/gmu)) names.add(m[1]);
  return [...names];
}

/** Sentences of the transcript block with the [hh:mm:ss] mark of their passage. */
function sentencesOf(transcript: string): { text: string; time: string | null; speaker: string | null }[] {
  const out: { text: string; time: string | null; speaker: string | null }[] = [];
  let time: string | null = null;
  for (const line of transcript.split('\n')) {
    const mark = /^\[(\d\d:\d\d:\d\d)\]$/.exec(line.trim());
    if (mark) {
      time = mark[1];
      continue;
    }
    const said = /^([\p{Lu}][\p{L}]+(?: [\p{Lu}][\p{L}]+)?):\s(.*)$/u.exec(line);
    const speaker = said ? said[1] : null;
    for (const s of (said ? said[2] : line).split(/(?<=[.?!])\s+/)) {
      if (words(s).length >= 8) out.push({ text: s.trim(), time, speaker });
    }
  }
  return out;
}

/**
 * A context of about 80 words (the prompt asks for 50 to 100) made of the passage's own words, or an analysis
 * of about the size a real one of an hour's meeting has (≈ 750 output tokens), valid against the schema sent.
 */
export function simulatedAnswer(body: FakeMessagesBody): { text: string } | { json: unknown } {
  const transcript = transcriptOf(body);
  if (body.output_config?.format) {
    const sentences = sentencesOf(transcript);
    const at = (i: number) => sentences[Math.floor((i * sentences.length) / 37) % Math.max(1, sentences.length)] ?? { text: 'Nothing was said.', time: null, speaker: null };
    const speakers = speakersOf(transcript);
    return {
      json: {
        summary: Array.from({ length: 6 }, (_, i) => at(i).text).join(' '),
        topics: Array.from({ length: 8 }, (_, i) => words(at(6 + i).text).slice(0, 6).join(' ')),
        decisions: Array.from({ length: 6 }, (_, i) => `Agreed: ${at(14 + i).text}`),
        action_items: Array.from({ length: 8 }, (_, i) => ({ task: at(20 + i).text, owner: speakers[i % Math.max(1, speakers.length)] ?? null, due: i % 2 === 0 ? 'by Thursday' : null })),
        key_quotes: Array.from({ length: 5 }, (_, i) => ({ quote: at(26 + i).text, speaker: at(26 + i).speaker, time: at(26 + i).time })),
        speakers: speakers.map((speaker, i) => ({ speaker, role: ['facilitator', 'engineer', 'product manager', 'finance lead', 'designer'][i % 5] })),
      },
    };
  }
  const passage = /<passage>\n([\s\S]*?)\n<\/passage>/.exec(userText(body))?.[1] ?? userText(body);
  const who = speakersOf(passage);
  const lead = `In this part of the meeting ${who.length > 0 ? who.join(' and ') : 'the team'} discuss`;
  const rest = passage.replace(/^[^:\n]+:\s/gm, '').split(/\s+/).filter(Boolean).slice(0, 80 - words(lead).length);
  return { text: `${lead} ${rest.join(' ')}.` };
}

// ---------- one run ----------

interface Run {
  side: 'embeddings' | 'claude';
  wallMs: number;
  /** Usage summed over the jobs, as `rag-worker status --json` reports it. */
  usage: Usage;
  jobs: number;
  complete: number;
  chunks: number;
  chunksWithoutContext: number;
  documents: number;
  analysesComplete: number;
  /** Claude traffic, from the simulator. */
  claude?: {
    requests: number;
    rateLimited: number;
    /** Answers other than 200 and 429. */
    errors: number;
    spanMs: number;
    counters: { input: number; cacheWrite: number; cacheRead: number; output: number };
    /** The simulator's own usage of every answered request, priced at the list prices. */
    pricedUsd: number;
    contextLatencyMs: number[];
    analysisLatencyMs: number[];
    /** Per job: claimed → its first Claude request; its last context answer → its analysis request (ms). */
    firstRequestWaitMs: number[];
    analysisWaitMs: number[];
    schedulerRateLimited: number;
    schedulerRetries: number;
    learned: { rpm?: number; itpm?: number; otpm?: number };
  };
}

async function runSide(side: Run['side'], p: ClaudeParams, transcripts: readonly SyntheticTranscript[], ctx: BenchContext): Promise<Run> {
  return withCleanup(async (defer) => {
    const db = await createTestDatabase(DIMENSIONS);
    defer(() => db.drop());
    const embedder = await spawnFakeServer({ ...p.embedding, dimensions: DIMENSIONS });
    defer(() => embedder.stop());
    let claudeEnv: Record<string, string> = { RAG_ENABLE_CLAUDE_ANALYSIS: 'false' };
    let fake: Awaited<ReturnType<typeof startFakeAnthropic>> | undefined;
    const latency = { context: [] as number[], analysis: [] as number[] };
    const span = { first: NaN, last: NaN };
    // Per document (by the title line of the transcript block), wall-clock ms: first request, last context
    // answer, analysis request.
    const documents = new Map<string, { first?: number; lastContext?: number; analysis?: number }>();
    const perDocument = (body: FakeMessagesBody | undefined) => {
      const title = /\nTitle: ([^\n]*)\n/.exec(typeof body?.system === 'string' ? body.system : (body?.system?.[0]?.text ?? ''))?.[1] ?? '';
      let doc = documents.get(title);
      if (!doc) documents.set(title, (doc = {}));
      return doc;
    };
    if (side === 'claude') {
      const options: FakeAnthropicOptions = {
        rpm: p.rpm,
        itpm: p.itpm,
        otpm: p.otpm,
        burstMs: p.burstMs,
        minCacheTokens: p.minCacheTokens,
        latencyMs: p.baseLatencyMs,
      };
      // The simulator reads options.latencyMs when it holds each answer back, right after asking `respond` for
      // the answer (nothing runs in between): setting it here makes the latency grow with the answer's length.
      options.respond = (body) => {
        const a = simulatedAnswer(body);
        const text = 'json' in a ? JSON.stringify(a.json) : a.text;
        options.latencyMs = p.baseLatencyMs + p.perOutputTokenMs * fakeTokens(text);
        return a;
      };
      const started = await startFakeAnthropic(options);
      fake = started;
      defer(() => started.close());
      // Latency and the traffic span on this process's clock: arrival of each request → its answer sent.
      const arrivals = new Map<object, number>();
      started.events.on('request', (entry: { body?: FakeMessagesBody }) => {
        const now = performance.now();
        arrivals.set(entry, now);
        if (Number.isNaN(span.first)) span.first = now;
        const doc = perDocument(entry.body);
        doc.first ??= Date.now();
        if (entry.body?.output_config?.format) doc.analysis ??= Date.now();
      });
      started.events.on('response', (entry: { status: number | null; body?: FakeMessagesBody }) => {
        const now = performance.now();
        const arrived = arrivals.get(entry);
        arrivals.delete(entry);
        if (entry.status !== 200 || arrived === undefined) return;
        span.last = now;
        const analysis = entry.body?.output_config?.format !== undefined;
        (analysis ? latency.analysis : latency.context).push(now - arrived);
        if (!analysis) perDocument(entry.body).lastContext = Date.now();
      });
      claudeEnv = { RAG_ENABLE_CLAUDE_ANALYSIS: 'true', ANTHROPIC_API_KEY: FAKE_ANTHROPIC_KEY, ANTHROPIC_BASE_URL: started.url };
    }
    const worker = await openWorker(workerEnv(db.url, { OPENAI_API_KEY: 'bench', OPENAI_BASE_URL: embedder.url, ...claudeEnv }), `k-${side}`);
    defer(() => worker.close());
    await enqueueAll(worker.rt, transcripts);
    ctx.log(`k: ${side === 'claude' ? 'Claude on' : 'embeddings only'}, ${transcripts.length} meeting(s)…`);
    const t0 = performance.now();
    await worker.coordinator.run({ once: true });
    const wallMs = performance.now() - t0;

    const counts = await statusCounts(worker.rt);
    const usage = await worker.rt.store.usageTotals();
    const [c] = await sqlOf(worker.rt).query<{ n: string; no_context: string }>('select count(*) as n, count(*) filter (where context is null) as no_context from rag_chunks');
    const [d] = await sqlOf(worker.rt).query<{ n: string; complete: string }>(
      `select count(*) as n, count(*) filter (where analysis->>'status' = 'complete') as complete from rag_documents`,
    );
    const run: Run = {
      side,
      wallMs,
      usage,
      jobs: transcripts.length,
      complete: counts.complete ?? 0,
      chunks: Number(c.n),
      chunksWithoutContext: Number(c.no_context),
      documents: Number(d.n),
      analysesComplete: Number(d.complete),
    };
    if (fake) {
      const answered = fake.requests.filter((r) => r.status === 200 && r.usage);
      let priced: Usage = {};
      for (const r of answered) {
        const u = r.usage!;
        priced = addUsage(
          priced,
          claudeUsage(DEFAULT_PRICES, CLAUDE_MODEL, {
            inputTokens: u.input_tokens,
            cacheWriteTokens: u.cache_creation_input_tokens ?? 0,
            cacheReadTokens: u.cache_read_input_tokens ?? 0,
            outputTokens: u.output_tokens,
          }),
        );
      }
      const claimed = await sqlOf(worker.rt).query<{ title: string; started_at: Date }>('select title, started_at from rag_ingestion_queue');
      const firstRequestWaitMs: number[] = [];
      const analysisWaitMs: number[] = [];
      for (const job of claimed) {
        const doc = documents.get(job.title);
        if (doc?.first !== undefined) firstRequestWaitMs.push(doc.first - job.started_at.getTime());
        if (doc?.analysis !== undefined && doc.lastContext !== undefined) analysisWaitMs.push(Math.max(0, doc.analysis - doc.lastContext));
      }
      const state = worker.rt.claude!.scheduler.state();
      run.claude = {
        requests: fake.counters.requests,
        rateLimited: fake.counters.rateLimited,
        errors: fake.counters.errors,
        spanMs: span.last - span.first,
        counters: { input: fake.counters.inputTokens, cacheWrite: fake.counters.cacheWriteTokens, cacheRead: fake.counters.cacheReadTokens, output: fake.counters.outputTokens },
        pricedUsd: priced.claude_usd ?? 0,
        contextLatencyMs: latency.context,
        analysisLatencyMs: latency.analysis,
        firstRequestWaitMs,
        analysisWaitMs,
        schedulerRateLimited: worker.rt.claude!.scheduler.stats.rateLimited,
        schedulerRetries: worker.rt.claude!.scheduler.stats.retries,
        learned: { rpm: state.rpm, itpm: state.itpm, otpm: state.otpm },
      };
    }
    return run;
  });
}

// ---------- the scenario ----------

export async function scenarioClaude(ctx: BenchContext): Promise<ScenarioResult> {
  const p = claudeParams(ctx.quick);
  const started = performance.now();
  const transcripts = generateTranscripts(p.meetings, 100_000, { prefix: 'k', words: p.wordsPerMeeting });
  const audioSeconds = transcripts.reduce((s, t) => s + t.segments[t.segments.length - 1].end_ms / 1000, 0);
  const hours = audioSeconds / 3600;
  const wordCount = transcripts.reduce((s, t) => s + t.segments.reduce((n, seg) => n + seg.text.split(' ').length, 0), 0);

  // One untimed meeting first: the first run in this process would otherwise also pay for compiling the worker.
  ctx.log('k: warm-up (one meeting, embeddings only, not measured)…');
  await runSide('embeddings', p, transcripts.slice(0, 1), ctx);
  const runs: Run[] = [];
  for (let r = 0; r < p.repeats; r++) {
    const order: Run['side'][] = r % 2 === 0 ? ['embeddings', 'claude'] : ['claude', 'embeddings'];
    for (const side of order) runs.push(await runSide(side, p, transcripts, ctx));
  }
  const plain = runs.filter((r) => r.side === 'embeddings');
  const withClaude = runs.filter((r) => r.side === 'claude');
  const med = (xs: number[]) => percentile(xs, 50);
  const plainMs = med(plain.map((r) => r.wallMs));
  const claudeMs = med(withClaude.map((r) => r.wallMs));

  // Claude's figures, over all its runs (each run is the same work).
  const sum = (f: (r: Run) => number) => withClaude.reduce((s, r) => s + f(r), 0);
  const usage = withClaude.reduce<Usage>((u, r) => addUsage(u, r.usage), {});
  const input = usage.claude_input_tokens ?? 0;
  const write = usage.claude_cache_write_tokens ?? 0;
  const read = usage.claude_cache_read_tokens ?? 0;
  const output = usage.claude_output_tokens ?? 0;
  const requests = usage.claude_requests ?? 0;
  const minutes = sum((r) => r.claude!.spanMs) / 60_000;
  const perMin = (n: number) => n / minutes;
  // What a limit allowed over the runs: each run's fresh simulator starts with a full bucket, then refills.
  const allowed = (limit: number) => (limit * (minutes + (withClaude.length * p.burstMs) / 60_000));
  const share = (n: number, limit: number, name: string) =>
    `${round(perMin(n) / limit, 3)} of ${limit.toLocaleString('en-US')} ${name}; ${round(n / allowed(limit), 3)} of what ${name} allowed (bucket + refill)`;
  const cacheShare = read / (read + write + input);
  const costPerHour = (usage.cost_usd ?? 0) / (hours * withClaude.length);
  const plainUsage = plain.reduce<Usage>((u, r) => addUsage(u, r.usage), {});
  const plainCostPerHour = (plainUsage.cost_usd ?? 0) / (hours * plain.length);
  const rateLimited = sum((r) => r.claude!.rateLimited);
  const fakeRequests = sum((r) => r.claude!.requests);
  const pricedUsd = sum((r) => r.claude!.pricedUsd);
  const fakeTokensSum = {
    input: sum((r) => r.claude!.counters.input),
    write: sum((r) => r.claude!.counters.cacheWrite),
    read: sum((r) => r.claude!.counters.cacheRead),
    output: sum((r) => r.claude!.counters.output),
  };
  const countsAgree = fakeTokensSum.input === input && fakeTokensSum.write === write && fakeTokensSum.read === read && fakeTokensSum.output === output;
  const contextLat = withClaude.flatMap((r) => r.claude!.contextLatencyMs);
  const analysisLat = withClaude.flatMap((r) => r.claude!.analysisLatencyMs);
  const firstWait = withClaude.flatMap((r) => r.claude!.firstRequestWaitMs);
  const analysisWait = withClaude.flatMap((r) => r.claude!.analysisWaitMs);

  // What was stored: every job complete in both sides; with Claude, a context on every chunk and a complete analysis.
  const problems: string[] = [];
  for (const r of runs) {
    const label = r.side === 'claude' ? 'Claude on' : 'embeddings only';
    if (r.complete !== r.jobs) problems.push(`${label}: ${r.complete} of ${r.jobs} jobs complete`);
    if (r.documents !== r.jobs) problems.push(`${label}: ${r.documents} documents for ${r.jobs} jobs`);
    if (r.side === 'claude' && r.chunksWithoutContext > 0) problems.push(`${label}: ${r.chunksWithoutContext} of ${r.chunks} chunks without a context`);
    if (r.side === 'claude' && r.analysesComplete !== r.documents) problems.push(`${label}: ${r.analysesComplete} of ${r.documents} documents with a complete analysis`);
  }
  const chunksPerRun = withClaude[0]?.chunks ?? 0;
  const learned = withClaude[0]?.claude?.learned ?? {};

  return {
    id: 'k',
    title: 'Claude backfill',
    status: 'ok',
    params: { ...p, model: CLAUDE_MODEL, words: wordCount, audioSeconds: round(audioSeconds, 0), chunksPerRun },
    elapsedMs: performance.now() - started,
    metrics: [
      metric(
        'cost per transcript-hour, Claude on',
        round(costPerHour, 4),
        'USD',
        { op: '<=', value: 0.12 },
        `recorded job usage at ${CLAUDE_MODEL} list prices: Claude $${round((usage.claude_usd ?? 0) / withClaude.length, 4)} + embeddings $${round((usage.embedding_usd ?? 0) / withClaude.length, 5)} per run of ${round(hours, 2)} h; embeddings only: $${round(plainCostPerHour, 5)}/h`,
      ),
      metric('cache-read share of document tokens', round(cacheShare, 3), '', { op: '>=', value: 0.9 }, 'cache_read ÷ (cache_read + cache_write + input)'),
      metric('wall time, embeddings only', round(plainMs / 1000, 1), 's', undefined, `${plain.map((r) => round(r.wallMs / 1000, 1)).join(', ')} s`),
      metric('wall time, Claude on', round(claudeMs / 1000, 1), 's', undefined, `${withClaude.map((r) => round(r.wallMs / 1000, 1)).join(', ')} s`),
      metric('slowdown: Claude on ÷ embeddings only', round(claudeMs / plainMs, 2), '×', undefined, `medians of ${p.repeats}`),
      metric('Claude requests per minute', round(perMin(requests), 0), '/min', undefined, `${share(requests, p.rpm, 'RPM')}; ${round(requests / withClaude.length, 0)} per run (${chunksPerRun} contexts + ${p.meetings} analyses)`),
      metric('uncached input tokens per minute', round(perMin(input), 0), '/min', undefined, `${share(input, p.itpm, 'ITPM')}`),
      metric('cache-write tokens per minute', round(perMin(write), 0), '/min', undefined, `${share(write, p.itpm, 'ITPM')}`),
      metric('input + cache writes per minute (what ITPM counts)', round(perMin(input + write), 0), '/min', undefined, `${share(input + write, p.itpm, 'ITPM')}`),
      metric('cache-read tokens per minute', round(perMin(read), 0), '/min', undefined, `${round(perMin(read) / p.itpm, 1)}× ITPM, which does not count cache reads`),
      metric('output tokens per minute', round(perMin(output), 0), '/min', undefined, `${share(output, p.otpm, 'OTPM')}`),
      metric(
        'requests answered 429 by the simulator',
        rateLimited,
        '',
        undefined,
        `of ${fakeRequests} (${round((rateLimited / Math.max(1, fakeRequests)) * 100, 2)} %); ${sum((r) => r.claude!.errors)} other errors; the worker's Claude scheduler saw ${sum((r) => r.claude!.schedulerRateLimited)} × 429 and retried ${sum((r) => r.claude!.schedulerRetries)} other failures`,
      ),
      metric(
        'simulated latency (median)',
        `${round(med(contextLat), 0)} / ${round(med(analysisLat), 0)}`,
        'ms',
        undefined,
        `context / analysis answers, arrival → answer sent (includes nothing of the worker's queueing)`,
      ),
      metric(
        'job claimed → its first Claude request',
        `${round(med(firstWait) / 1000, 1)} / ${round(Math.max(...firstWait) / 1000, 1)}`,
        's',
        undefined,
        `median / max over ${firstWait.length} jobs, 4 claimed at once (RAG_MAX_CONCURRENT_JOBS); a window's first request writes its cache, the others wait for it`,
      ),
      metric(
        "job's last context answer → its analysis request",
        `${round(med(analysisWait) / 1000, 1)} / ${round(Math.max(...analysisWait) / 1000, 1)}`,
        's',
        undefined,
        `median / max over ${analysisWait.length} jobs (0: sent while contexts were still being answered)`,
      ),
      metric('checks', problems.length === 0 ? 'pass' : 'FAIL', '', undefined, problems.length === 0 ? 'every job complete; Claude on: a context on every chunk, a complete analysis on every document' : problems.join('; ')),
    ],
    notes: [
      `${p.meetings} meetings × ~${p.wordsPerMeeting.toLocaleString('en-US')} words (${wordCount.toLocaleString('en-US')} words, ${round(hours, 2)} h of audio, ${chunksPerRun} chunks), half segment JSON, half WebVTT; ${p.repeats} interleaved repeat(s) after an untimed one-meeting warm-up, each side in a fresh database with fresh simulators.`,
      `Simulated Anthropic: ${p.rpm.toLocaleString('en-US')} RPM, ${p.itpm.toLocaleString('en-US')} ITPM, ${p.otpm.toLocaleString('en-US')} OTPM, buckets holding ${p.burstMs / 1000} s of each; latency ${p.baseLatencyMs} ms + ${p.perOutputTokenMs} ms per output token; minimum cacheable prefix ${p.minCacheTokens} tokens (real Haiku-class models need more); tokens = ceil(chars / 4). ` +
        `Worker: no Claude limits configured (learned: ${learned.rpm ?? '?'} RPM, ${learned.itpm ?? '?'} ITPM, ${learned.otpm ?? '?'} OTPM), defaults otherwise (RAG_CLAUDE_CONCURRENCY 3, effort low).`,
      `Embeddings: simulated provider, ${p.embedding.rpm.toLocaleString('en-US')} RPM / ${p.embedding.tpm.toLocaleString('en-US')} TPM, ${p.embedding.baseMs} ms + ${p.embedding.perKTokensMs} ms/1k tokens. Per-minute rates are over Claude's traffic span (first request → last answer, ${round(minutes * 60 / withClaude.length, 1)} s per run).`,
      `Recorded Claude usage ${countsAgree ? 'matches' : 'DIFFERS from'} the simulator's counts (${fakeTokensSum.input}/${fakeTokensSum.write}/${fakeTokensSum.read}/${fakeTokensSum.output} input/write/read/output vs recorded ${input}/${write}/${read}/${output}); recorded claude_usd $${round(usage.claude_usd ?? 0, 5)} vs the simulator's usage priced here $${round(pricedUsd, 5)}.`,
    ],
  };
}
