/**
 * Runs one claimed job: chunk in a thread, embed through the shared scheduler (reusing stored embeddings of
 * unchanged chunks), save batches in order under the lease, complete. Throws categorised errors; the
 * coordinator decides what they mean for the job. Resumes after the chunks an earlier attempt saved.
 */
import type { EventEmitter } from 'node:events';
import { encodingForModel } from '../../shared/encoding-for-model.ts';
import type { Clock } from '../../shared/clock.ts';
import type { Chunk } from '../../shared/types.ts';
import type { Logger } from '../logging/logger.ts';
import type { EmbeddingScheduler } from '../scheduler/embedding-scheduler.ts';
import type { JobRow, Lease, QueueStore, VectorLiteral } from '../stores/queue-store.ts';
import type { ChunkPool } from './chunk-pool.ts';
import type { ChunkStream } from './chunk-stream.ts';
import type { SaveBatcher } from './save-batcher.ts';
import { withDbRetry } from './db-retry.ts';

export interface RunnerDeps {
  store: QueueStore;
  /** Saves of all jobs in flight, coalesced into a few calls (group commit). */
  saver: SaveBatcher;
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
  /** null until the thread has cut the last chunk. */
  chunksTotal: number | null;
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
  const resumeFrom = await db('start', () => deps.store.startJob(lease, segmentsTotal, null, head.signature));
  if (resumeFrom > 0) logger.info(`↪️  Resuming after ${resumeFrom} chunks saved by an earlier attempt`, { event: 'job_resumed', resumeFrom });

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

  let reused = 0;
  let tokensEmbedded = 0;
  let chunksDone = resumeFrom;
  // Up to `window` batches are being embedded while the oldest one is saved; batches are saved in order.
  const inFlight: Promise<EmbeddedBatch>[] = [];
  const saveOldest = async () => {
    const batch = await inFlight[0];
    inFlight.shift();
    signal.throwIfAborted();
    const segmentsDone = batch.chunks[batch.chunks.length - 1].segmentSeqEnd;
    chunksDone = await db('save', () =>
      deps.saver.save(lease, batch.chunks, batch.vectors, { segmentsDone, tokensEmbedded: batch.tokens, chunksReused: batch.reused }),
    );
    reused += batch.reused;
    tokensEmbedded += batch.tokens;
    logger.info(
      `✅ Segment ${segmentsDone}/${segmentsTotal} embedded (${batch.chunks.length} chunks${batch.reused ? `, ${batch.reused} reused` : ''})`,
      { event: 'job_progress', chunksDone, segmentsDone },
    );
    deps.events.emit('progress', { jobId: job.id, segmentsDone, segmentsTotal, chunksDone, chunksTotal: stream.end?.chunksTotal ?? null } satisfies JobProgress);
  };
  try {
    for await (const cut of stream.batches()) {
      // A resumed job skips what an earlier attempt saved (the thread cuts the same chunks again).
      const batch = cut.filter((c) => c.index >= resumeFrom);
      if (batch.length === 0) continue;
      const p = embedBatch(batch);
      p.catch(() => {}); // observed in order by saveOldest; this only silences the ones never reached
      inFlight.push(p);
      if (inFlight.length >= deps.window) await saveOldest();
    }
    while (inFlight.length > 0) await saveOldest();
  } finally {
    inFlight.length = 0;
  }
  const chunksTotal = stream.end!.chunksTotal;
  logger.info(`📊 Chunks: ${chunksTotal}`, { event: 'job_chunked', chunks: chunksTotal, chunkMs: Math.round(stream.end!.elapsedMs) });

  signal.throwIfAborted();
  const stored = await db('complete', () => deps.store.completeJob(lease, chunksTotal));
  const elapsedMs = performance.now() - started;
  logger.info(`✅ Job ${job.id} completed in ${(elapsedMs / 1000).toFixed(1)}s`, { event: 'job_complete', chunks: stored, reused, tokensEmbedded });
  return { chunks: stored, reused, tokensEmbedded, elapsedMs };
}
