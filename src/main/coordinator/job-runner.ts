/**
 * Runs one claimed job: chunk in a thread, embed through the shared scheduler (reusing stored embeddings of
 * unchanged chunks), save batches in order under the lease, complete. Throws categorised errors; the
 * coordinator decides what they mean for the job. Resumes after the chunks an earlier attempt saved.
 */
import type { EventEmitter } from 'node:events';
import { encodingForModel } from '../../shared/encoding-for-model.ts';
import type { Clock } from '../../shared/clock.ts';
import { BadInputError } from '../../shared/errors.ts';
import type { Chunk } from '../../shared/types.ts';
import type { Logger } from '../logging/logger.ts';
import type { EmbeddingScheduler } from '../scheduler/embedding-scheduler.ts';
import type { JobRow, Lease, QueueStore, VectorLiteral } from '../stores/queue-store.ts';
import type { ChunkPool } from './chunk-pool.ts';
import { withDbRetry } from './db-retry.ts';

export interface RunnerDeps {
  store: QueueStore;
  pool: ChunkPool;
  scheduler: EmbeddingScheduler;
  events: EventEmitter;
  chunkMaxTokens: number;
  charLimit: number;
  /** Chunks per save transaction. */
  saveBatch: number;
  /** Save batches being embedded at once per job (the pipeline's bounded window). */
  window: number;
  clock?: Clock;
}

export interface JobProgress {
  jobId: string;
  segmentsDone: number;
  segmentsTotal: number;
  chunksDone: number;
  chunksTotal: number;
}

export interface JobResult {
  chunks: number;
  reused: number;
  tokensEmbedded: number;
  elapsedMs: number;
}

interface EmbeddedBatch {
  chunks: Chunk[];
  vectors: VectorLiteral[];
  reused: number;
  tokens: number;
}

export async function runJob(deps: RunnerDeps, job: JobRow, lease: Lease, signal: AbortSignal, logger: Logger): Promise<JobResult> {
  const started = performance.now();
  const model = deps.scheduler.provider.model;
  logger.info(`📦 Processing job ${job.id}`, { event: 'job_started', documentId: job.document_id, attempt: job.attempts });
  logger.info(`📄 Version: ${job.version}`);

  const options = { maxTokens: deps.chunkMaxTokens, charLimit: deps.charLimit, encoding: encodingForModel(model) };
  const parsed = await deps.pool.chunk({ format: job.format, payload: job.payload, options }, signal);
  if (!parsed.ok) throw new BadInputError(parsed.message);
  job.payload = undefined; // chunked: let the (possibly 10 MB) payload text go
  for (const warning of parsed.warnings) logger.warn(warning);
  const { chunks, segmentsTotal } = parsed;
  logger.info(`📊 Segments: ${segmentsTotal}`, { chunks: chunks.length, format: parsed.format, chunkMs: Math.round(parsed.elapsedMs) });

  const db = <T>(what: string, fn: () => Promise<T>) => withDbRetry(fn, { logger, what, signal, clock: deps.clock });
  const resumeFrom = await db('start', () => deps.store.startJob(lease, segmentsTotal, chunks.length, parsed.signature));
  if (resumeFrom > 0) logger.info(`↪️  Resuming after ${resumeFrom} of ${chunks.length} chunks saved by an earlier attempt`, { event: 'job_resumed', resumeFrom });

  const batches: Chunk[][] = [];
  for (let i = resumeFrom; i < chunks.length; i += deps.saveBatch) batches.push(chunks.slice(i, i + deps.saveBatch));

  const embedBatch = async (batch: Chunk[]): Promise<EmbeddedBatch> => {
    const known = await db('embedding lookup', () => deps.store.lookupEmbeddings(job.document_id, model, batch.map((c) => c.contentHash)));
    const missing = batch.filter((c) => !known.has(c.contentHash));
    const fresh = await deps.scheduler.embed(job.id, job.priority, missing.map((c) => ({ text: c.content, tokens: c.tokenCount })));
    const byIndex = new Map(missing.map((c, i) => [c.index, fresh[i]]));
    return {
      chunks: batch,
      vectors: batch.map((c) => byIndex.get(c.index) ?? known.get(c.contentHash)!),
      reused: batch.length - missing.length,
      tokens: missing.reduce((n, c) => n + c.tokenCount, 0),
    };
  };

  const inFlight: Promise<EmbeddedBatch>[] = [];
  const startUpTo = (n: number) => {
    while (inFlight.length < Math.min(n, batches.length)) {
      const p = embedBatch(batches[inFlight.length]);
      p.catch(() => {}); // observed below, in order; this only silences the ones we never reach
      inFlight.push(p);
    }
  };

  let reused = 0;
  let tokensEmbedded = 0;
  let chunksDone = resumeFrom;
  for (let i = 0; i < batches.length; i++) {
    startUpTo(i + deps.window);
    const batch = await inFlight[i];
    signal.throwIfAborted();
    const segmentsDone = batch.chunks[batch.chunks.length - 1].segmentSeqEnd;
    chunksDone = await db('save', () =>
      deps.store.saveChunks(lease, model, batch.chunks, batch.vectors, { segmentsDone, tokensEmbedded: batch.tokens, chunksReused: batch.reused }),
    );
    delete inFlight[i]; // let the batch's vectors be collected
    reused += batch.reused;
    tokensEmbedded += batch.tokens;
    const first = batch.chunks[0];
    logger.info(`🔄 Processing segment ${first.segmentSeqStart}/${segmentsTotal} (seq: ${first.segmentSeqStart})`);
    logger.info(
      `✅ Segment ${segmentsDone} embedded (${batch.chunks.length} chunks${batch.reused ? `, ${batch.reused} reused` : ''})`,
      { event: 'job_progress', chunksDone, chunksTotal: chunks.length },
    );
    deps.events.emit('progress', { jobId: job.id, segmentsDone, segmentsTotal, chunksDone, chunksTotal: chunks.length } satisfies JobProgress);
  }

  signal.throwIfAborted();
  const stored = await db('complete', () => deps.store.completeJob(lease));
  const elapsedMs = performance.now() - started;
  logger.info(`✅ Job ${job.id} completed in ${(elapsedMs / 1000).toFixed(1)}s`, { event: 'job_complete', chunks: stored, reused, tokensEmbedded });
  return { chunks: stored, reused, tokensEmbedded, elapsedMs };
}
