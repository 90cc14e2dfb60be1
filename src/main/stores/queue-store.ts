/**
 * The queue and vector store, as calls to the migration's SQL functions over any SqlClient.
 * Builds no state-changing SQL of its own; the only direct statements here are read-only.
 */
import type { Chunk, JobStatus } from '../../shared/types.ts';
import type { QueryOptions, SqlClient } from './sql-client.ts';

export interface JobRow {
  id: string;
  status: JobStatus;
  document_id: string;
  version: string;
  title: string | null;
  format: string;
  /** The job's payload; from claimJobs, its JSON text (string). */
  payload: unknown;
  metadata: Record<string, unknown>;
  priority: number;
  attempts: number;
  max_attempts: number | null;
  run_at: Date;
  worker_id: string | null;
  lease_token: string | null;
  lease_expires_at: Date | null;
  segments_total: number | null;
  segments_done: number;
  chunks_total: number | null;
  chunks_done: number;
  chunks_reused: number;
  tokens_embedded: number;
  error_detail: string | null;
  last_error_category: string | null;
  attempt_history: unknown[];
  submitted_at: Date;
  started_at: Date | null;
  completed_at: Date | null;
  updated_at: Date;
}

/** What the CLI's queue commands use of the store: served by a QueueStore, or over the embedded database's control socket. */
export type QueueApi = Pick<QueueStore, 'enqueue' | 'counts' | 'getJob' | 'getJobs' | 'listJobs' | 'cancelJob' | 'retryJobs' | 'matchChunks' | 'pruneJobs' | 'storedModels'>;

/** Proof of ownership of a claimed job: every fenced write passes it. */
export interface Lease {
  jobId: string;
  workerId: string;
  leaseToken: string;
}

export interface EnqueueRequest {
  documentId: string;
  version?: string;
  title?: string | null;
  format?: string;
  payload: unknown;
  metadata?: Record<string, unknown>;
  priority?: number;
  maxAttempts?: number | null;
}

export interface MatchRow {
  document_id: string;
  version: string;
  chunk_index: number;
  content: string;
  start_ms: number | null;
  end_ms: number | null;
  speakers: string[];
  segment_seq_start: number | null;
  segment_seq_end: number | null;
  title: string | null;
  score: number;
}

export { toVectorLiteral, type VectorLiteral } from '../../shared/vector-literal.ts';

/** One job's batch for saveChunkBatches. */
export interface SaveBatch {
  lease: Lease;
  chunks: readonly Chunk[];
  embeddings: readonly VectorLiteral[];
  progress: { segmentsDone: number; tokensEmbedded: number; chunksReused: number };
}

export type SaveBatchResult = { chunksDone: number } | { errorCode: string; message: string };

/** A chunk as the save functions take it (jsonb). */
function chunkRow(c: Chunk) {
  return {
    chunk_index: c.index,
    content: c.content,
    token_count: c.tokenCount,
    segment_seq_start: c.segmentSeqStart,
    segment_seq_end: c.segmentSeqEnd,
    start_ms: c.startMs,
    end_ms: c.endMs,
    speakers: c.speakers,
    content_hash: c.contentHash,
  };
}
import type { VectorLiteral } from '../../shared/vector-literal.ts';

/** Every column of rag_ingestion_queue but payload (as j.<column>). */
const JOB_COLUMNS = [
  'id', 'status', 'document_id', 'version', 'title', 'format', 'metadata', 'priority', 'attempts', 'max_attempts', 'run_at',
  'worker_id', 'lease_token', 'lease_expires_at', 'segments_total', 'segments_done', 'chunks_total', 'chunks_done',
  'chunks_reused', 'tokens_embedded', 'error_detail', 'last_error_category', 'attempt_history', 'submitted_at',
  'started_at', 'completed_at', 'updated_at',
].map((c) => `j.${c}`).join(', ');

/**
 * Lease upkeep (heartbeats, releases) runs on the control lane: a connection of its own that job queries
 * cannot occupy, so a busy or connection-starved worker still keeps its leases and hands jobs back.
 */
const CONTROL: QueryOptions = { lane: 'control' };

const num = (v: unknown) => (v === null || v === undefined ? v : Number(v));

function normaliseJob(row: Record<string, unknown>): JobRow {
  for (const key of ['attempts', 'segments_done', 'chunks_done', 'chunks_reused', 'tokens_embedded', 'priority']) {
    row[key] = Number(row[key] ?? 0);
  }
  for (const key of ['segments_total', 'chunks_total', 'max_attempts']) row[key] = num(row[key]);
  return row as unknown as JobRow;
}

export class QueueStore {
  readonly sql: SqlClient;
  constructor(sql: SqlClient) {
    this.sql = sql;
  }

  async enqueue(job: EnqueueRequest): Promise<string> {
    const rows = await this.sql.query<{ id: string }>(
      'select rag_enqueue($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8) as id',
      [
        job.documentId,
        job.version ?? '1',
        job.title ?? null,
        job.format ?? 'auto',
        JSON.stringify(job.payload),
        JSON.stringify(job.metadata ?? {}),
        job.priority ?? 0,
        job.maxAttempts ?? null,
      ],
    );
    return rows[0].id;
  }

  /**
   * Claims jobs. Their payload comes back as the JSON text (a string), not parsed: it goes to a chunking thread
   * as one string, so a 10 MB transcript never becomes an object graph on the main thread.
   */
  async claimJobs(workerId: string, limit: number, leaseSeconds: number, defaultMaxAttempts: number): Promise<JobRow[]> {
    const rows = await this.sql.query(`select ${JOB_COLUMNS}, j.payload::text as payload from rag_claim_jobs($1, $2, $3, $4) j`, [
      workerId,
      limit,
      leaseSeconds,
      defaultMaxAttempts,
    ]);
    return rows.map(normaliseJob);
  }

  async extendLeases(workerId: string, leases: Lease[], leaseSeconds: number): Promise<{ jobId: string; held: boolean; status: string }[]> {
    if (leases.length === 0) return [];
    const rows = await this.sql.query<{ job_id: string; held: boolean; status: string }>(
      'select * from rag_extend_leases($1, $2::uuid[], $3::uuid[], $4)',
      [workerId, leases.map((l) => l.jobId), leases.map((l) => l.leaseToken), leaseSeconds],
      CONTROL,
    );
    return rows.map((r) => ({ jobId: r.job_id, held: r.held, status: r.status }));
  }

  /** Returns the chunk index to resume from (0 on a fresh start). */
  async startJob(lease: Lease, segmentsTotal: number, chunksTotal: number | null, chunkingSignature: string): Promise<number> {
    const rows = await this.sql.query<{ resume_from: number }>(
      'select rag_start_job($1, $2, $3, $4, $5, $6) as resume_from',
      [lease.jobId, lease.workerId, lease.leaseToken, segmentsTotal, chunksTotal, chunkingSignature],
    );
    return Number(rows[0].resume_from);
  }

  /** Stored embeddings of this document (any version) for these content hashes, by hash. */
  async lookupEmbeddings(documentId: string, model: string, hashes: string[]): Promise<Map<string, VectorLiteral>> {
    if (hashes.length === 0) return new Map();
    const rows = await this.sql.query<{ content_hash: string; embedding: string }>(
      'select * from rag_lookup_embeddings($1, $2, $3::text[])',
      [documentId, model, hashes],
    );
    return new Map(rows.map((r) => [r.content_hash, r.embedding]));
  }

  /** Saves chunks (in chunk_index order, continuing from chunks_done) with progress. Returns the new chunks_done. */
  async saveChunks(
    lease: Lease,
    model: string,
    chunks: readonly Chunk[],
    embeddings: readonly VectorLiteral[],
    progress: { segmentsDone: number; tokensEmbedded: number; chunksReused: number },
  ): Promise<number> {
    const rows = chunks.map(chunkRow);
    const result = await this.sql.query<{ chunks_done: number }>(
      'select rag_save_chunks($1, $2, $3, $4, $5::jsonb, $6::text[], $7, $8, $9) as chunks_done',
      [lease.jobId, lease.workerId, lease.leaseToken, model, JSON.stringify(rows), embeddings, progress.segmentsDone, progress.tokensEmbedded, progress.chunksReused],
    );
    return Number(result[0].chunks_done);
  }

  /**
   * Saves one batch for each of several jobs of this worker in one call (see rag_save_chunk_batches). Returns, per
   * job, the new chunks_done or the reason its batch was not saved (lease lost, out of order).
   */
  async saveChunkBatches(workerId: string, model: string, batches: readonly SaveBatch[]): Promise<Map<string, SaveBatchResult>> {
    const embeddings: VectorLiteral[] = [];
    const payload = batches.map((b) => {
      const offset = embeddings.length;
      for (const v of b.embeddings) embeddings.push(v);
      return {
        job_id: b.lease.jobId,
        lease_token: b.lease.leaseToken,
        offset,
        chunks: b.chunks.map(chunkRow),
        segments_done: b.progress.segmentsDone,
        tokens_embedded: b.progress.tokensEmbedded,
        chunks_reused: b.progress.chunksReused,
      };
    });
    const rows = await this.sql.query<{ job_id: string; chunks_done: number | null; error_code: string | null; error_message: string | null }>(
      'select * from rag_save_chunk_batches($1, $2, $3::jsonb, $4::text[])',
      [workerId, model, JSON.stringify(payload), embeddings],
    );
    const out = new Map<string, SaveBatchResult>();
    for (const r of rows) {
      out.set(r.job_id, r.error_code === null ? { chunksDone: Number(r.chunks_done) } : { errorCode: r.error_code, message: r.error_message ?? r.error_code });
    }
    return out;
  }

  /** Publishes the job's chunks; chunksTotal (when given) is recorded and checked against what was saved. */
  async completeJob(lease: Lease, chunksTotal: number | null = null): Promise<number> {
    const rows = await this.sql.query<{ n: number }>('select rag_complete_job($1, $2, $3, $4) as n', [lease.jobId, lease.workerId, lease.leaseToken, chunksTotal]);
    return Number(rows[0].n);
  }

  /**
   * retryInMs null: final failure. Returns the resulting status: 'queued' (retry later), 'failed', or 'cancelled'
   * (superseded by a newer queued job of the same document version).
   */
  async failJob(lease: Lease, detail: string, category: string, retryInMs: number | null, defaultMaxAttempts: number): Promise<'queued' | 'failed' | 'cancelled'> {
    const rows = await this.sql.query<{ status: 'queued' | 'failed' | 'cancelled' }>(
      'select rag_fail_job($1, $2, $3, $4, $5, $6, $7) as status',
      [lease.jobId, lease.workerId, lease.leaseToken, detail, category, retryInMs === null ? null : Math.round(retryInMs), defaultMaxAttempts],
    );
    return rows[0].status;
  }

  async releaseJobs(workerId: string, leases: Lease[], reason: string): Promise<number> {
    if (leases.length === 0) return 0;
    const rows = await this.sql.query<{ n: number }>('select rag_release_jobs($1, $2::uuid[], $3::uuid[], $4) as n', [
      workerId,
      leases.map((l) => l.jobId),
      leases.map((l) => l.leaseToken),
      reason,
    ], CONTROL);
    return Number(rows[0].n);
  }

  async cancelJob(jobId: string): Promise<string> {
    const rows = await this.sql.query<{ status: string }>('select rag_cancel_job($1) as status', [jobId]);
    return rows[0].status;
  }

  async retryJobs(jobIds: string[] | null): Promise<string[]> {
    const rows = await this.sql.query<{ id: string }>('select id from rag_retry_jobs($1::uuid[]) as id', [jobIds]);
    return rows.map((r) => r.id);
  }

  async getJob(jobId: string): Promise<JobRow | undefined> {
    const rows = await this.sql.query('select * from rag_ingestion_queue where id = $1', [jobId]);
    return rows[0] ? normaliseJob(rows[0]) : undefined;
  }

  /** Jobs by id, without their payload (status polling must not re-read megabytes of transcript). */
  async getJobs(jobIds: string[]): Promise<JobRow[]> {
    if (jobIds.length === 0) return [];
    const rows = await this.sql.query(`select ${JOB_COLUMNS}, null::jsonb as payload from rag_ingestion_queue j where j.id = any($1::uuid[])`, [jobIds]);
    return rows.map(normaliseJob);
  }

  /** Jobs without their payload, newest first (status page, `jobs list`). */
  async listJobs(filter: { status?: JobStatus; documentId?: string; limit: number }): Promise<JobRow[]> {
    const rows = await this.sql.query(
      `select ${JOB_COLUMNS}, null::jsonb as payload from rag_ingestion_queue j
        where ($1::text is null or j.status = $1) and ($2::text is null or j.document_id = $2)
        order by coalesce(j.completed_at, j.started_at, j.submitted_at) desc, j.submitted_at desc
        limit $3`,
      [filter.status ?? null, filter.documentId ?? null, filter.limit],
    );
    return rows.map(normaliseJob);
  }

  /** One batch of rag_prune_jobs: how many finished jobs it deleted. */
  async pruneJobs(olderThanSeconds: number, statuses: readonly JobStatus[], limit: number): Promise<number> {
    const rows = await this.sql.query<{ n: number }>(`select rag_prune_jobs(make_interval(secs => $1), $2::text[], $3) as n`, [olderThanSeconds, statuses, limit]);
    return Number(rows[0].n);
  }

  /** Published document versions by the embedding model their chunks were stored with (search checks it). */
  async storedModels(): Promise<{ model: string; documents: number }[]> {
    const rows = await this.sql.query<{ model: string | null; documents: number }>(
      'select embedding_model as model, count(*)::int as documents from rag_documents group by embedding_model order by 2 desc',
    );
    return rows.map((r) => ({ model: r.model ?? '(unknown)', documents: Number(r.documents) }));
  }

  async counts(): Promise<Record<JobStatus, number>> {
    const rows = await this.sql.query<{ status: JobStatus; n: number }>('select status, count(*)::int as n from rag_ingestion_queue group by status');
    const out: Record<JobStatus, number> = { queued: 0, processing: 0, complete: 0, failed: 0, cancelled: 0 };
    for (const r of rows) out[r.status] = Number(r.n);
    return out;
  }

  /** Whether any job is queued and due now or held by an expired lease (what `start --once` waits for). */
  async hasRunnableJobs(): Promise<boolean> {
    const rows = await this.sql.query<{ n: number }>(
      `select count(*)::int as n from rag_ingestion_queue
        where (status = 'queued' and run_at <= now()) or (status = 'processing' and lease_expires_at < now())`,
    );
    return Number(rows[0].n) > 0;
  }

  /** Delay until the next queued job becomes due (ms), or null when nothing is queued. */
  async msUntilNextDue(): Promise<number | null> {
    const rows = await this.sql.query<{ ms: number | null }>(
      `select greatest(0, extract(epoch from (min(run_at) - now())) * 1000)::float8 as ms from rag_ingestion_queue where status = 'queued'`,
    );
    return rows[0].ms === null ? null : Number(rows[0].ms);
  }

  async matchChunks(embedding: VectorLiteral, count: number, documentId?: string, version?: string): Promise<MatchRow[]> {
    const rows = await this.sql.query<MatchRow>('select * from rag_match_chunks($1::vector, $2, $3, $4)', [
      embedding,
      count,
      documentId ?? null,
      version ?? null,
    ]);
    return rows.map((r) => ({ ...r, start_ms: num(r.start_ms) as number | null, end_ms: num(r.end_ms) as number | null, score: Number(r.score) }));
  }
}
