/**
 * Runs one claimed job: chunk in a thread, (with Claude on) situate each chunk in its transcript window and
 * analyse the transcript, embed through the shared scheduler (reusing stored embeddings — and contexts — of
 * unchanged chunks), save batches in order under the lease, complete. Throws categorised errors; the
 * coordinator decides what they mean for the job. Resumes after the chunks an earlier attempt saved.
 *
 * With Claude on, batches are gathered into transcript windows (up to RAG_CLAUDE_WINDOW_TOKENS; a normal
 * meeting is one window): a window's chunks get their contexts once the whole window is known, then are embedded
 * and saved as before. Memory stays bounded by the window size.
 */
import type { EventEmitter } from 'node:events';
import { analysisKey, buildWindow, contextKey, embeddedText, estimateClaudeTokens, renderChunk, type TranscriptWindow } from '../../shared/claude/prompts.ts';
import { DEFAULT_PRICES, type PriceTable } from '../../shared/claude/prices.ts';
import { addUsage, embeddingUsage, type Usage } from '../../shared/claude/usage.ts';
import { encodingForModel } from '../../shared/encoding-for-model.ts';
import type { Clock } from '../../shared/clock.ts';
import type { Chunk } from '../../shared/types.ts';
import type { Logger } from '../logging/logger.ts';
import type { EmbeddingScheduler } from '../scheduler/embedding-scheduler.ts';
import { DocumentClaude, type ClaudeSettings } from '../analysis/document-claude.ts';
import {
  reuseKey,
  type JobCompletion,
  type JobRow,
  type JobStart,
  type Lease,
  type QueueBackend,
  type ReusableChunk,
  type StartedJob,
  type StoredChunk,
  type VectorLiteral,
} from '../stores/queue-store.ts';
import type { ChunkPool } from './chunk-pool.ts';
import type { ChunkStream } from './chunk-stream.ts';
import type { GroupCommit } from './group-commit.ts';
import type { SaveBatcher } from './save-batcher.ts';
import { withDbRetry } from './db-retry.ts';

export interface RunnerDeps {
  store: QueueBackend;
  /** Saves of all jobs in flight, coalesced into a few calls (group commit). */
  saver: SaveBatcher;
  /** Starts and completions of all jobs in flight, coalesced the same way. */
  starts: GroupCommit<JobStart, StartedJob>;
  completions: GroupCommit<JobCompletion, number>;
  pool: ChunkPool;
  scheduler: EmbeddingScheduler;
  events: EventEmitter;
  chunkMaxTokens: number;
  charLimit: number;
  /** Chunks per save transaction. */
  saveBatch: number;
  /** Save batches being embedded at once per job (the pipeline's bounded window). */
  window: number;
  /** Price table for the usage recorded on the job (default: the built-in list prices). */
  prices?: PriceTable;
  /** Claude contexts and analysis (RAG_ENABLE_CLAUDE_ANALYSIS); undefined: off. */
  claude?: ClaudeSettings;
  clock?: Clock;
}

export interface JobProgress {
  jobId: string;
  segmentsDone: number;
  segmentsTotal: number;
  chunksDone: number;
  /** null until the thread has cut the last chunk. */
  chunksTotal: number | null;
}

export interface JobResult {
  chunks: number;
  reused: number;
  tokensEmbedded: number;
  elapsedMs: number;
  /** What this attempt spent (the job's usage column sums every attempt). */
  usage: Usage;
}

interface EmbeddedBatch {
  chunks: StoredChunk[];
  vectors: VectorLiteral[];
  reused: number;
  tokens: number;
}

/** Embedding tokens a context adds to its chunk: an upper estimate (no tokenizer on this thread). */
function contextTokens(context: string): number {
  return Math.ceil(context.length / 2) + 2;
}

export async function runJob(deps: RunnerDeps, job: JobRow, lease: Lease, signal: AbortSignal, logger: Logger): Promise<JobResult> {
  const started = performance.now();
  const model = deps.scheduler.provider.model;
  logger.info(`📦 Processing job ${job.id}`, { event: 'job_started', documentId: job.document_id, attempt: job.attempts });
  logger.info(`📄 Version: ${job.version}`);

  const options = { maxTokens: deps.chunkMaxTokens, charLimit: deps.charLimit, encoding: encodingForModel(model) };
  // Chunks stream out of the thread in save-sized batches; the thread stays a bounded number of batches ahead.
  const speakerNames = job.metadata?.speaker_names;
  // The task is built in the call, not held in a variable: pipeline() lets go of job.payload once it is in the
  // thread, and nothing here may keep the (possibly 50 MB) text alive for the rest of the job.
  const stream = deps.pool.stream(
    { format: job.format, payload: job.payload, options, ...(speakerNames === undefined ? {} : { speakerNames }) },
    { batchSize: deps.saveBatch, window: deps.window + 1, signal },
  );
  try {
    return await pipeline(deps, job, lease, stream, signal, logger, started);
  } finally {
    stream.close();
  }
}

async function pipeline(
  deps: RunnerDeps,
  job: JobRow,
  lease: Lease,
  stream: ChunkStream,
  signal: AbortSignal,
  logger: Logger,
  started: number,
): Promise<JobResult> {
  const model = deps.scheduler.provider.model;
  const head = await stream.head;
  job.payload = undefined; // in the thread now: let the (possibly 10 MB) payload text go
  for (const warning of head.warnings) logger.warn(warning);
  const { segmentsTotal } = head;
  logger.info(`📊 Segments: ${segmentsTotal}`, { event: 'job_parsed', format: head.format });

  const db = <T>(what: string, fn: () => Promise<T>) => withDbRetry(fn, { logger, what, signal, clock: deps.clock });
  // chunks_total is not known until the thread has cut the last chunk: it is recorded at completion.
  // Turning Claude on or off (or changing its model) changes what is stored: chunks saved under the other
  // setting are not resumed from.
  const claude = deps.claude;
  const signature = claude?.contexts ? `${head.signature}:claude:${claude.contextModel}:${claude.windowTokens}` : head.signature;
  const { resumeFrom, reusable } = await db('start', () => deps.starts.submit({ lease, segmentsTotal, chunksTotal: null, chunkingSignature: signature }));
  if (resumeFrom > 0) logger.info(`↪️  Resuming after ${resumeFrom} chunks saved by an earlier attempt`, { event: 'job_resumed', resumeFrom });

  const doc = claude ? new DocumentClaude(claude, job, signal, logger) : undefined;
  const docAnalysisKey = claude?.analysis ? analysisKey(claude.analysisModel, claude.windowTokens, head.signature) : null;
  const knownAnalysis = docAnalysisKey ? await db('analysis lookup', () => deps.store.lookupAnalysis(job.id, job.document_id, docAnalysisKey)) : null;
  if (knownAnalysis) logger.info('♻️  Analysis reused: this transcript was analysed before with the same model', { event: 'analysis_reused' });

  // Chunks whose stored embedding (and context, for the same window) can be reused are looked up first; only the
  // others are sent to Claude and to the embedder.
  const embedBatch = async (batch: Chunk[], window: TranscriptWindow | undefined): Promise<EmbeddedBatch> => {
    const ctxKey = window && claude ? contextKey(claude.contextModel, window) : null;
    const keys = ctxKey === null ? undefined : batch.map(() => ctxKey);
    // Only a published version of the document has embeddings to reuse: a new document skips the lookup.
    const known = reusable
      ? await db('embedding lookup', () => deps.store.lookupEmbeddings(job.document_id, model, batch.map((c) => c.contentHash), keys))
      : new Map<string, ReusableChunk>();
    const missing = batch.filter((c) => !known.has(reuseKey(c.contentHash, ctxKey)));
    // Asked for every batch of a window, even with nothing missing: the window's analysis waits for its cache.
    const contexts = window && doc ? await doc.contexts(window, missing) : new Map<number, string | null>();
    const texts = missing.map((c) => {
      const context = contexts.get(c.index) ?? null;
      // A context that would push the chunk past the embedding model's input limit is stored but not embedded.
      const tokens = context ? c.tokenCount + contextTokens(context) : c.tokenCount;
      return context && tokens <= 8191 ? { text: embeddedText(c.content, context), tokens } : { text: c.content, tokens: c.tokenCount };
    });
    const fresh = await deps.scheduler.embed(job.id, job.priority, texts);
    const byIndex = new Map(missing.map((c, i) => [c.index, fresh[i]]));
    const chunks: StoredChunk[] = batch.map((c) => {
      const reusedChunk = known.get(reuseKey(c.contentHash, ctxKey));
      const context = reusedChunk ? reusedChunk.context : (contexts.get(c.index) ?? null);
      return context ? { ...c, context, contextKey: ctxKey } : c;
    });
    return {
      chunks,
      vectors: batch.map((c) => byIndex.get(c.index) ?? known.get(reuseKey(c.contentHash, ctxKey))!.embedding),
      reused: batch.length - missing.length,
      tokens: texts.reduce((n, t) => n + t.tokens, 0),
    };
  };

  let reused = 0;
  let tokensEmbedded = 0;
  let spent: Usage = {};
  let chunksDone = resumeFrom;
  // Up to `window` batches are being embedded while the oldest one is saved; batches are saved in order.
  const inFlight: Promise<EmbeddedBatch>[] = [];
  const saveOldest = async () => {
    const batch = await inFlight[0];
    inFlight.shift();
    signal.throwIfAborted();
    const segmentsDone = batch.chunks[batch.chunks.length - 1].segmentSeqEnd;
    // The usage of Claude's answers so far travels with this save (a crash loses only what was not yet saved).
    const usage = addUsage(embeddingUsage(deps.prices ?? DEFAULT_PRICES, model, batch.tokens), doc?.takeUsage() ?? {});
    chunksDone = await db('save', () =>
      deps.saver.save(lease, batch.chunks, batch.vectors, { segmentsDone, tokensEmbedded: batch.tokens, chunksReused: batch.reused, usage }),
    );
    spent = addUsage(spent, usage);
    reused += batch.reused;
    tokensEmbedded += batch.tokens;
    logger.info(
      `✅ Segment ${segmentsDone}/${segmentsTotal} embedded (${batch.chunks.length} chunks${batch.reused ? `, ${batch.reused} reused` : ''})`,
      { event: 'job_progress', chunksDone, segmentsDone },
    );
    deps.events.emit('progress', { jobId: job.id, segmentsDone, segmentsTotal, chunksDone, chunksTotal: stream.end?.chunksTotal ?? null } satisfies JobProgress);
  };
  const submit = async (batch: Chunk[], window: TranscriptWindow | undefined) => {
    const p = embedBatch(batch, window);
    p.catch(() => {}); // observed in order by saveOldest; this only silences the ones never reached
    inFlight.push(p);
    if (inFlight.length >= deps.window) await saveOldest();
  };
  // With Claude: the batches of the window being gathered (all chunks, saved ones too: they are its text).
  let gathered: Chunk[][] = [];
  let gatheredTokens = 0;
  let windows = 0;
  const flushWindow = async () => {
    if (gathered.length === 0) return;
    const all = gathered.flat();
    const window = buildWindow(windows++, all, job.title);
    gathered = [];
    gatheredTokens = 0;
    const batches = batchesOf(all, resumeFrom, deps.saveBatch);
    doc!.openWindow(window, batches.length);
    if (!knownAnalysis) doc!.analyseWindow(window);
    for (const b of batches) await submit(b, window);
  };
  try {
    for await (const cut of stream.batches()) {
      if (doc) {
        const tokens = cut.reduce((n, c) => n + estimateClaudeTokens(renderChunk(c)) + 1, 0);
        if (gathered.length > 0 && gatheredTokens + tokens > claude!.windowTokens) await flushWindow();
        gathered.push(cut);
        gatheredTokens += tokens;
        continue;
      }
      // A resumed job skips what an earlier attempt saved (the thread cuts the same chunks again).
      const batch = cut.filter((c) => c.index >= resumeFrom);
      if (batch.length > 0) await submit(batch, undefined);
    }
    await flushWindow();
    while (inFlight.length > 0) await saveOldest();
  } finally {
    inFlight.length = 0;
  }
  if (doc) {
    const analysis = knownAnalysis ?? (await doc.finishAnalysis());
    const usage = doc.takeUsage();
    if (analysis || Object.keys(usage).length > 0) {
      await db('save analysis', () => deps.store.saveAnalysis(lease, analysis, analysis?.status === 'complete' ? docAnalysisKey : null, usage));
    }
    spent = addUsage(spent, usage);
    if (analysis?.status === 'skipped') logger.warn(`Analysis skipped: ${analysis.reason}`, { event: 'analysis_skipped' });
  }
  const chunksTotal = stream.end!.chunksTotal;
  logger.info(`📊 Chunks: ${chunksTotal}`, { event: 'job_chunked', chunks: chunksTotal, chunkMs: Math.round(stream.end!.elapsedMs) });

  signal.throwIfAborted();
  const stored = await db('complete', () => deps.completions.submit({ lease, chunksTotal }));
  const elapsedMs = performance.now() - started;
  const cost = spent.cost_usd === undefined ? '' : `, $${spent.cost_usd.toFixed(4)}`;
  logger.info(`✅ Job ${job.id} completed in ${(elapsedMs / 1000).toFixed(1)}s${cost}`, { event: 'job_complete', chunks: stored, reused, tokensEmbedded, usage: spent });
  return { chunks: stored, reused, tokensEmbedded, elapsedMs, usage: spent };
}

/** The chunks from `from` on, in runs of at most `size` (a window's save batches). */
function batchesOf(chunks: readonly Chunk[], from: number, size: number): Chunk[][] {
  const todo = chunks.filter((c) => c.index >= from);
  const out: Chunk[][] = [];
  for (let i = 0; i < todo.length; i += size) out.push(todo.slice(i, i + size));
  return out;
}
