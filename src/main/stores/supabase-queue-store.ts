/**
 * The queue and vector store over Supabase's REST API: every operation is one `.rpc()` call of the same SQL
 * functions the SQL store calls (reads included: schema version 3's rag_get_jobs, rag_queue_counts, …). No SQL
 * is built here.
 *
 * Request size: Supabase's gateway refuses large bodies, and a save carries chunk texts and embeddings (a
 * 1536-dimension embedding is ~20 KB of JSON). A save call is kept under `maxRequestBytes`: the batches of
 * several jobs are split into several calls, and one job's batch too large for one call is sent as consecutive
 * parts (each continues where the last ended, as the function requires). A call refused with 413 anyway is
 * split in half and sent again.
 */
import type { StoredAnalysis } from '../../shared/claude/analysis.ts';
import type { Usage } from '../../shared/claude/usage.ts';
import type { JobStatus } from '../../shared/types.ts';
import {
  chunkRow,
  completionRow,
  normaliseHybrid,
  normaliseJob,
  normaliseMatch,
  reuseKey,
  saveBatchArguments,
  startRow,
  type DocumentRow,
  type JobCompletion,
  type JobStart,
  type StartedJob,
  type EnqueueRequest,
  type HybridRow,
  type JobRow,
  type Lease,
  type MatchRow,
  type QueueBackend,
  type ReusableChunk,
  type SaveBatch,
  type SaveBatchResult,
  type SaveProgress,
  type StoredChunk,
  type VectorLiteral,
} from './queue-store.ts';
import { RequestTooLargeError, type SupabaseRpc } from './supabase-rpc.ts';

/** Default ceiling of one call's JSON body. */
export const DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024;

export class SupabaseQueueStore implements QueueBackend {
  readonly rpc: SupabaseRpc;
  private readonly maxRequestBytes: number;
  /** Save calls made (and how many were split to fit), for logs and tests. */
  readonly saveStats = { calls: 0, splits: 0 };

  constructor(rpc: SupabaseRpc, options: { maxRequestBytes?: number } = {}) {
    this.rpc = rpc;
    this.maxRequestBytes = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
  }

  async enqueue(job: EnqueueRequest): Promise<string> {
    return this.rpc.call<string>('rag_enqueue', {
      p_document_id: job.documentId,
      p_version: job.version ?? '1',
      p_title: job.title ?? null,
      p_format: job.format ?? 'auto',
      p_payload: job.payload,
      p_metadata: job.metadata ?? {},
      p_priority: job.priority ?? 0,
      p_max_attempts: job.maxAttempts ?? null,
    });
  }

  async claimJobs(workerId: string, limit: number, leaseSeconds: number, defaultMaxAttempts: number): Promise<JobRow[]> {
    const rows = await this.rpc.call<Record<string, unknown>[]>('rag_claim_jobs', {
      p_worker_id: workerId,
      p_limit: limit,
      p_lease_seconds: leaseSeconds,
      p_default_max_attempts: defaultMaxAttempts,
    });
    return (rows ?? []).map(normaliseJob);
  }

  async extendLeases(workerId: string, leases: Lease[], leaseSeconds: number): Promise<{ jobId: string; held: boolean; status: string }[]> {
    if (leases.length === 0) return [];
    const rows = await this.rpc.call<{ job_id: string; held: boolean; status: string }[]>('rag_extend_leases', {
      p_worker_id: workerId,
      p_job_ids: leases.map((l) => l.jobId),
      p_lease_tokens: leases.map((l) => l.leaseToken),
      p_lease_seconds: leaseSeconds,
    });
    return rows.map((r) => ({ jobId: r.job_id, held: r.held, status: r.status }));
  }

  async startJob(lease: Lease, segmentsTotal: number, chunksTotal: number | null, chunkingSignature: string): Promise<number> {
    return Number(
      await this.rpc.call('rag_start_job', {
        ...fenced(lease),
        p_segments_total: segmentsTotal,
        p_chunks_total: chunksTotal,
        p_chunking_signature: chunkingSignature,
      }),
    );
  }

  /** startJobs of the SQL store, through rag_start_jobs. */
  async startJobs(workerId: string, starts: readonly JobStart[]): Promise<Map<string, StartedJob>> {
    const rows = await this.rpc.call<{ job_id: string; resume_from: number; reusable: boolean }[]>('rag_start_jobs', {
      p_worker_id: workerId,
      p_jobs: starts.map(startRow),
    });
    return new Map(rows.map((r) => [r.job_id, { resumeFrom: Number(r.resume_from), reusable: r.reusable }]));
  }

  async lookupEmbeddings(documentId: string, model: string, hashes: string[], contextKeys?: (string | null)[]): Promise<Map<string, ReusableChunk>> {
    if (hashes.length === 0) return new Map();
    const rows = await this.rpc.call<{ content_hash: string; context_key: string | null; embedding: string; context: string | null }[]>('rag_lookup_embeddings', {
      p_document_id: documentId,
      p_embedding_model: model,
      p_content_hashes: hashes,
      p_context_keys: contextKeys ?? null,
    });
    return new Map(rows.map((r) => [reuseKey(r.content_hash, r.context_key), { embedding: r.embedding, context: r.context }]));
  }

  async saveAnalysis(lease: Lease, analysis: StoredAnalysis | null, analysisKey: string | null, usage: Usage): Promise<void> {
    await this.rpc.call('rag_save_analysis', { ...fenced(lease), p_analysis: analysis, p_analysis_key: analysisKey, p_usage: usage });
  }

  async lookupAnalysis(jobId: string, documentId: string, analysisKey: string): Promise<StoredAnalysis | null> {
    return (await this.rpc.call<StoredAnalysis | null>('rag_lookup_analysis', { p_job_id: jobId, p_document_id: documentId, p_analysis_key: analysisKey })) ?? null;
  }

  async getDocument(documentId: string, version?: string): Promise<DocumentRow | undefined> {
    const rows = await this.rpc.call<Record<string, unknown>[]>('rag_get_document', { p_document_id: documentId, p_version: version ?? null });
    const r = rows[0];
    if (!r) return undefined;
    return {
      ...(r as unknown as DocumentRow),
      chunk_count: Number(r.chunk_count),
      ingested_at: new Date(r.ingested_at as string),
      usage: (r.usage as Usage | null) ?? {},
      metadata: (r.metadata as Record<string, unknown> | null) ?? {},
    };
  }

  async saveChunks(lease: Lease, model: string, chunks: readonly StoredChunk[], embeddings: readonly VectorLiteral[], progress: SaveProgress): Promise<number> {
    const result = (await this.saveChunkBatches(lease.workerId, model, [{ lease, chunks, embeddings, progress }])).get(lease.jobId);
    if (!result) throw new Error(`rag_save_chunk_batches returned no result for job ${lease.jobId}`);
    if ('errorCode' in result) throw new Error(result.message);
    return result.chunksDone;
  }

  /** Saves as rag_save_chunk_batches does, in as many calls as the request-size ceiling needs. */
  async saveChunkBatches(workerId: string, model: string, batches: readonly SaveBatch[]): Promise<Map<string, SaveBatchResult>> {
    const out = new Map<string, SaveBatchResult>();
    for (const call of packCalls(batches, this.maxRequestBytes)) {
      for (const [jobId, result] of await this.sendSave(workerId, model, call)) out.set(jobId, result);
    }
    return out;
  }

  /** One save call; refused as too large, it is sent again in halves (whole batches, else one batch's chunks). */
  private async sendSave(workerId: string, model: string, batches: readonly SaveBatch[]): Promise<Map<string, SaveBatchResult>> {
    try {
      this.saveStats.calls++;
      return await this.saveCall(workerId, model, batches);
    } catch (error) {
      if (!(error instanceof RequestTooLargeError)) throw error;
      const halves = batches.length > 1 ? [batches.slice(0, batches.length >> 1), batches.slice(batches.length >> 1)] : splitBatch(batches[0]).map((b) => [b]);
      if (halves.length < 2) throw error; // one chunk larger than the gateway accepts: nothing to split
      this.saveStats.splits++;
      const out = new Map<string, SaveBatchResult>();
      for (const half of halves) for (const [jobId, result] of await this.sendSave(workerId, model, half)) out.set(jobId, result);
      return out;
    }
  }

  private async saveCall(workerId: string, model: string, batches: readonly SaveBatch[]): Promise<Map<string, SaveBatchResult>> {
    const { payload, embeddings } = saveBatchArguments(batches);
    const rows = await this.rpc.call<{ job_id: string; chunks_done: number | null; error_code: string | null; error_message: string | null }[]>('rag_save_chunk_batches', {
      p_worker_id: workerId,
      p_embedding_model: model,
      p_batches: payload,
      p_embeddings: embeddings,
    });
    const out = new Map<string, SaveBatchResult>();
    for (const r of rows) {
      out.set(r.job_id, r.error_code === null ? { chunksDone: Number(r.chunks_done) } : { errorCode: r.error_code, message: r.error_message ?? r.error_code });
    }
    return out;
  }

  async completeJob(lease: Lease, chunksTotal: number | null = null): Promise<number> {
    return Number(await this.rpc.call('rag_complete_job', { ...fenced(lease), p_chunks_total: chunksTotal }));
  }

  /** completeJobs of the SQL store, through rag_complete_jobs. */
  async completeJobs(workerId: string, completions: readonly JobCompletion[]): Promise<Map<string, number>> {
    const rows = await this.rpc.call<{ job_id: string; chunks: number }[]>('rag_complete_jobs', {
      p_worker_id: workerId,
      p_jobs: completions.map(completionRow),
    });
    return new Map(rows.map((r) => [r.job_id, Number(r.chunks)]));
  }

  async failJob(lease: Lease, detail: string, category: string, retryInMs: number | null, defaultMaxAttempts: number): Promise<'queued' | 'failed' | 'cancelled'> {
    return this.rpc.call('rag_fail_job', {
      ...fenced(lease),
      p_error_detail: detail,
      p_error_category: category,
      p_retry_in_ms: retryInMs === null ? null : Math.round(retryInMs),
      p_default_max_attempts: defaultMaxAttempts,
    });
  }

  async releaseJobs(workerId: string, leases: Lease[], reason: string): Promise<number> {
    if (leases.length === 0) return 0;
    return Number(
      await this.rpc.call('rag_release_jobs', {
        p_worker_id: workerId,
        p_job_ids: leases.map((l) => l.jobId),
        p_lease_tokens: leases.map((l) => l.leaseToken),
        p_reason: reason,
      }),
    );
  }

  async cancelJob(jobId: string): Promise<string> {
    return this.rpc.call('rag_cancel_job', { p_job_id: jobId });
  }

  async retryJobs(jobIds: string[] | null): Promise<string[]> {
    const rows = await this.rpc.call<(string | { rag_retry_jobs: string })[]>('rag_retry_jobs', { p_job_ids: jobIds });
    return rows.map((r) => (typeof r === 'string' ? r : r.rag_retry_jobs));
  }

  async getJob(jobId: string): Promise<JobRow | undefined> {
    return (await this.getJobs([jobId]))[0];
  }

  async getJobs(jobIds: string[]): Promise<JobRow[]> {
    if (jobIds.length === 0) return [];
    const rows = await this.rpc.call<Record<string, unknown>[]>('rag_get_jobs', { p_job_ids: jobIds });
    return rows.map((r) => normaliseJob({ ...r, payload: null }));
  }

  async listJobs(filter: { status?: JobStatus; documentId?: string; limit: number }): Promise<JobRow[]> {
    const rows = await this.rpc.call<Record<string, unknown>[]>('rag_list_jobs', {
      p_status: filter.status ?? null,
      p_document_id: filter.documentId ?? null,
      p_limit: filter.limit,
    });
    return rows.map((r) => normaliseJob({ ...r, payload: null }));
  }

  async pruneJobs(olderThanSeconds: number, statuses: readonly JobStatus[], limit: number): Promise<number> {
    return Number(await this.rpc.call('rag_prune_jobs', { p_older_than: `${olderThanSeconds} seconds`, p_statuses: statuses, p_limit: limit }));
  }

  async rateShare(account: string, workerId: string, active: boolean, ttlSeconds: number): Promise<number> {
    return Number(await this.rpc.call('rag_rate_share', { p_account: account, p_worker_id: workerId, p_active: active, p_ttl_seconds: ttlSeconds }));
  }

  async storedModels(): Promise<{ model: string; documents: number }[]> {
    const rows = await this.rpc.call<{ model: string; documents: number }[]>('rag_stored_models');
    return rows.map((r) => ({ model: r.model, documents: Number(r.documents) }));
  }

  async usageTotals(): Promise<Usage> {
    return (await this.rpc.call<Usage | null>('rag_usage_totals')) ?? {};
  }

  async counts(): Promise<Record<JobStatus, number>> {
    return this.rpc.call<Record<JobStatus, number>>('rag_queue_counts');
  }

  async hasRunnableJobs(): Promise<boolean> {
    const [r] = await this.rpc.call<{ runnable: boolean }[]>('rag_queue_due');
    return Boolean(r?.runnable);
  }

  async msUntilNextDue(): Promise<number | null> {
    const [r] = await this.rpc.call<{ ms_until_next_due: number | null }[]>('rag_queue_due');
    return r?.ms_until_next_due === null || r?.ms_until_next_due === undefined ? null : Number(r.ms_until_next_due);
  }

  async matchChunks(embedding: VectorLiteral, count: number, documentId?: string, version?: string): Promise<MatchRow[]> {
    const rows = await this.rpc.call<MatchRow[]>('rag_match_chunks', {
      p_query_embedding: embedding,
      p_match_count: count,
      p_document_id: documentId ?? null,
      p_version: version ?? null,
    });
    return rows.map(normaliseMatch);
  }

  async hybridChunks(queryText: string, embedding: VectorLiteral, count: number, documentId?: string, version?: string): Promise<HybridRow[]> {
    const rows = await this.rpc.call<HybridRow[]>('rag_hybrid_chunks', {
      p_query_text: queryText,
      p_query_embedding: embedding,
      p_match_count: count,
      p_document_id: documentId ?? null,
      p_version: version ?? null,
    });
    return rows.map(normaliseHybrid);
  }

  /** The schema version and what a worker checks before it starts (rag_schema_version, rag_schema_facts). */
  async schemaFacts(): Promise<{ version: number; pgvector: string | null; dimensions: number | null }> {
    const version = Number(await this.rpc.call('rag_schema_version'));
    // rag_schema_facts arrived with version 3: an older schema is reported by its version alone.
    if (version < 3) return { version, pgvector: null, dimensions: null };
    const facts = await this.rpc.call<{ pgvector: string | null; dimensions: number | null }>('rag_schema_facts');
    return { version, pgvector: facts.pgvector, dimensions: facts.dimensions === null ? null : Number(facts.dimensions) };
  }
}

function fenced(lease: Lease) {
  return { p_job_id: lease.jobId, p_worker_id: lease.workerId, p_lease_token: lease.leaseToken };
}

/** The JSON size of a batch's share of a call. */
function batchBytes(b: SaveBatch): number {
  let n = 200;
  for (let i = 0; i < b.chunks.length; i++) n += JSON.stringify(chunkRow(b.chunks[i])).length + b.embeddings[i].length + 4;
  return n;
}

/** Groups batches into calls under the ceiling; a batch too large alone is split into consecutive parts first. */
export function packCalls(batches: readonly SaveBatch[], maxBytes: number): SaveBatch[][] {
  const calls: SaveBatch[][] = [];
  let current: SaveBatch[] = [];
  let bytes = 0;
  for (const whole of batches) {
    for (const part of fitBatch(whole, maxBytes)) {
      const size = batchBytes(part);
      // One job per call at most once: rag_save_chunk_batches takes one batch per job.
      if (current.length > 0 && (bytes + size > maxBytes || current.some((b) => b.lease.jobId === part.lease.jobId))) {
        calls.push(current);
        current = [];
        bytes = 0;
      }
      current.push(part);
      bytes += size;
    }
  }
  if (current.length > 0) calls.push(current);
  return calls;
}

function fitBatch(b: SaveBatch, maxBytes: number): SaveBatch[] {
  if (b.chunks.length <= 1 || batchBytes(b) <= maxBytes) return [b];
  return splitBatch(b).flatMap((part) => fitBatch(part, maxBytes));
}

/**
 * A batch as two consecutive parts. The first reports progress up to its last chunk and carries no usage or reuse
 * count; the second carries the rest of the batch's progress. Tokens are shared in proportion to the chunks.
 */
function splitBatch(b: SaveBatch): SaveBatch[] {
  if (b.chunks.length <= 1) return [b];
  const half = b.chunks.length >> 1;
  const tokensFirst = Math.round((b.progress.tokensEmbedded * half) / b.chunks.length);
  return [
    {
      lease: b.lease,
      chunks: b.chunks.slice(0, half),
      embeddings: b.embeddings.slice(0, half),
      progress: { segmentsDone: b.chunks[half - 1].segmentSeqEnd, tokensEmbedded: tokensFirst, chunksReused: 0 },
    },
    { lease: b.lease, chunks: b.chunks.slice(half), embeddings: b.embeddings.slice(half), progress: { ...b.progress, tokensEmbedded: b.progress.tokensEmbedded - tokensFirst } },
  ];
}
