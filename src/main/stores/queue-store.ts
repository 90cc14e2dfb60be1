/**
 * The queue and vector store, as calls to the migration's SQL functions over any SqlClient.
 * Builds no state-changing SQL of its own; the only direct statements here are read-only.
 */
import type { StoredAnalysis } from '../../shared/claude/analysis.ts';
import type { Usage } from '../../shared/claude/usage.ts';
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
  /** What the job has spent so far (rag_usage_add keys). */
  usage: Usage;
  /** Key of the analysis recorded on the job, when there is one. */
  analysis_key: string | null;
  submitted_at: Date;
  started_at: Date | null;
  completed_at: Date | null;
  updated_at: Date;
}

/** What the CLI's queue commands use of the store: served by a QueueStore, or over the embedded database's control socket. */
export type QueueApi = Pick<QueueStore, 'enqueue' | 'counts' | 'getJob' | 'getJobs' | 'listJobs' | 'cancelJob' | 'retryJobs' | 'matchChunks' | 'hybridChunks' | 'pruneJobs' | 'storedModels' | 'usageTotals' | 'getDocument'>;

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

/** A row of rag_hybrid_chunks: score is the reciprocal-rank fusion of the two rankings (1-based; null: not in that list). */
export interface HybridRow extends MatchRow {
  context: string | null;
  vector_rank: number | null;
  text_rank: number | null;
}

export { toVectorLiteral, type VectorLiteral } from '../../shared/vector-literal.ts';

/** The p_batches and p_embeddings arguments of one rag_save_chunk_batches call. */
export function saveBatchArguments(batches: readonly SaveBatch[]): { payload: unknown[]; embeddings: VectorLiteral[] } {
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
      ...(b.progress.usage && Object.keys(b.progress.usage).length > 0 ? { usage: b.progress.usage } : {}),
    };
  });
  return { payload, embeddings };
}

/** A published document version (rag_documents). */
export interface DocumentRow {
  document_id: string;
  version: string;
  title: string | null;
  metadata: Record<string, unknown>;
  chunk_count: number;
  embedding_model: string | null;
  job_id: string | null;
  ingested_at: Date;
  analysis: StoredAnalysis | null;
  usage: Usage;
}

/** A chunk as stored: with the context Claude wrote for it, when it has one. */
export type StoredChunk = Chunk & { context?: string | null; contextKey?: string | null };

/** What a save records besides the chunks: progress, and the usage spent since the last save. */
export interface SaveProgress {
  segmentsDone: number;
  tokensEmbedded: number;
  chunksReused: number;
  usage?: Usage;
}

/** One job's start for startJobs. */
export interface JobStart {
  lease: Lease;
  segmentsTotal: number;
  chunksTotal: number | null;
  chunkingSignature: string;
}

/** What starting a job found: where to resume, and whether stored embeddings of its document may be reused. */
export interface StartedJob {
  resumeFrom: number;
  reusable: boolean;
}

/** One job's completion for completeJobs. */
export interface JobCompletion {
  lease: Lease;
  chunksTotal: number | null;
}

/** A start as rag_start_jobs takes it (jsonb). */
export function startRow(s: JobStart) {
  return {
    job_id: s.lease.jobId,
    lease_token: s.lease.leaseToken,
    segments_total: s.segmentsTotal,
    chunks_total: s.chunksTotal,
    chunking_signature: s.chunkingSignature,
  };
}

/** A completion as rag_complete_jobs takes it (jsonb). */
export function completionRow(c: JobCompletion) {
  return { job_id: c.lease.jobId, lease_token: c.lease.leaseToken, chunks_total: c.chunksTotal };
}

/** One job's batch for saveChunkBatches. */
export interface SaveBatch {
  lease: Lease;
  chunks: readonly StoredChunk[];
  embeddings: readonly VectorLiteral[];
  progress: SaveProgress;
}

/** A stored chunk found for reuse: its embedding, and its context when it was embedded with one. */
export interface ReusableChunk {
  embedding: VectorLiteral;
  context: string | null;
}

/** The key of reuseKey lookups: content hash and context key (null: embedded without context). */
export function reuseKey(contentHash: string, contextKey: string | null | undefined): string {
  return `${contentHash}\u0000${contextKey ?? ''}`;
}

export type SaveBatchResult = { chunksDone: number } | { errorCode: string; message: string };

/** A chunk as the save functions take it (jsonb). */
export function chunkRow(c: StoredChunk) {
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
    ...(c.context ? { context: c.context, context_key: c.contextKey ?? null } : {}),
  };
}
import type { VectorLiteral } from '../../shared/vector-literal.ts';

/** Every column of rag_ingestion_queue but payload (as j.<column>). */
const JOB_COLUMNS = [
  'id', 'status', 'document_id', 'version', 'title', 'format', 'metadata', 'priority', 'attempts', 'max_attempts', 'run_at',
  'worker_id', 'lease_token', 'lease_expires_at', 'segments_total', 'segments_done', 'chunks_total', 'chunks_done',
  'chunks_reused', 'tokens_embedded', 'error_detail', 'last_error_category', 'attempt_history', 'usage', 'analysis_key', 'submitted_at',
  'started_at', 'completed_at', 'updated_at',
].map((c) => `j.${c}`).join(', ');

/**
 * Lease upkeep (heartbeats, releases) runs on the control lane: a connection of its own that job queries
 * cannot occupy, so a busy or connection-starved worker still keeps its leases and hands jobs back.
 */
const CONTROL: QueryOptions = { lane: 'control' };

const num = (v: unknown) => (v === null || v === undefined ? v : Number(v));

/** A job row as the store returns it: numbers as numbers, usage parsed, dates as Dates. */
export function normaliseJob(row: Record<string, unknown>): JobRow {
  for (const key of ['attempts', 'segments_done', 'chunks_done', 'chunks_reused', 'tokens_embedded', 'priority']) {
    row[key] = Number(row[key] ?? 0);
  }
  for (const key of ['segments_total', 'chunks_total', 'max_attempts']) row[key] = num(row[key]);
  if (typeof row.usage === 'string') row.usage = JSON.parse(row.usage);
  // Rows that travelled as JSON (the REST API) carry their times as ISO strings.
  for (const key of ['run_at', 'lease_expires_at', 'submitted_at', 'started_at', 'completed_at', 'updated_at']) {
    if (typeof row[key] === 'string') row[key] = new Date(row[key] as string);
  }
  row.usage ??= {};
  row.analysis_key ??= null;
  return row as unknown as JobRow;
}

/** A retrieval row with its bigint times and score as numbers (drivers and JSON may give strings). */
export function normaliseMatch<R extends MatchRow>(r: R): R {
  return { ...r, start_ms: num(r.start_ms) as number | null, end_ms: num(r.end_ms) as number | null, score: Number(r.score) };
}

export function normaliseHybrid(r: HybridRow): HybridRow {
  return { ...normaliseMatch(r), vector_rank: num(r.vector_rank) as number | null, text_rank: num(r.text_rank) as number | null };
}

/** What the worker and the CLI use of a queue store: served over SQL (QueueStore) or Supabase's REST API. */
export type QueueBackend = Omit<QueueStore, 'sql'>;

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

  /**
   * startJob for several jobs of one worker in one statement (group commit). An error in any job fails the whole
   * call (nothing of it is kept): callers repeat its jobs one by one (GroupCommit does). `reusable`: the document
   * has a published version, so lookupEmbeddings can find something.
   */
  async startJobs(workerId: string, starts: readonly JobStart[]): Promise<Map<string, StartedJob>> {
    const rows = await this.sql.query<{ job_id: string; resume_from: number; reusable: boolean }>('select * from rag_start_jobs($1, $2::jsonb)', [
      workerId,
      JSON.stringify(starts.map(startRow)),
    ]);
    return new Map(rows.map((r) => [r.job_id, { resumeFrom: Number(r.resume_from), reusable: r.reusable }]));
  }

  /**
   * Stored embeddings of this document (any version) for these content hashes and context keys (parallel;
   * omitted: chunks embedded without context), by reuseKey(hash, contextKey).
   */
  async lookupEmbeddings(documentId: string, model: string, hashes: string[], contextKeys?: (string | null)[]): Promise<Map<string, ReusableChunk>> {
    if (hashes.length === 0) return new Map();
    const rows = await this.sql.query<{ content_hash: string; context_key: string | null; embedding: string; context: string | null }>(
      'select * from rag_lookup_embeddings($1, $2, $3::text[], $4::text[])',
      [documentId, model, hashes, contextKeys ?? null],
    );
    return new Map(rows.map((r) => [reuseKey(r.content_hash, r.context_key), { embedding: r.embedding, context: r.context }]));
  }

  /** Records the document's analysis on the job (null: only the usage) with the usage spent on it. */
  async saveAnalysis(lease: Lease, analysis: StoredAnalysis | null, analysisKey: string | null, usage: Usage): Promise<void> {
    await this.sql.query('select rag_save_analysis($1, $2, $3, $4::jsonb, $5, $6::jsonb)', [
      lease.jobId,
      lease.workerId,
      lease.leaseToken,
      analysis === null ? null : JSON.stringify(analysis),
      analysisKey,
      JSON.stringify(usage),
    ]);
  }

  /** A complete analysis made from the same input (this job's earlier attempt, or a published one), if any. */
  async lookupAnalysis(jobId: string, documentId: string, analysisKey: string): Promise<StoredAnalysis | null> {
    const rows = await this.sql.query<{ a: StoredAnalysis | string | null }>('select rag_lookup_analysis($1, $2, $3) as a', [jobId, documentId, analysisKey]);
    const a = rows[0]?.a ?? null;
    return typeof a === 'string' ? (JSON.parse(a) as StoredAnalysis) : a;
  }

  /** A published document version with its analysis and usage (`rag-worker show`); the newest version when none is given. */
  async getDocument(documentId: string, version?: string): Promise<DocumentRow | undefined> {
    const rows = await this.sql.query<DocumentRow>(
      `select document_id, version, title, metadata, chunk_count, embedding_model, job_id, ingested_at, analysis, usage
         from rag_documents where document_id = $1 and ($2::text is null or version = $2)
        order by ingested_at desc limit 1`,
      [documentId, version ?? null],
    );
    const r = rows[0];
    if (!r) return undefined;
    const json = <T>(v: unknown) => (typeof v === 'string' ? (JSON.parse(v) as T) : (v as T));
    return { ...r, chunk_count: Number(r.chunk_count), analysis: json(r.analysis), usage: json(r.usage) ?? {}, metadata: json(r.metadata) ?? {} };
  }

  /** Saves chunks (in chunk_index order, continuing from chunks_done) with progress. Returns the new chunks_done. */
  async saveChunks(
    lease: Lease,
    model: string,
    chunks: readonly Chunk[],
    embeddings: readonly VectorLiteral[],
    progress: SaveProgress,
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
    const { payload, embeddings } = saveBatchArguments(batches);
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

  /** completeJob for several jobs of one worker in one statement; all or nothing, as startJobs. Chunks stored by job id. */
  async completeJobs(workerId: string, completions: readonly JobCompletion[]): Promise<Map<string, number>> {
    const rows = await this.sql.query<{ job_id: string; chunks: number }>('select * from rag_complete_jobs($1, $2::jsonb)', [
      workerId,
      JSON.stringify(completions.map(completionRow)),
    ]);
    return new Map(rows.map((r) => [r.job_id, Number(r.chunks)]));
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

  /** Claims (or withdraws) this worker's part of a provider account's rate limit; how many workers share it. */
  async rateShare(account: string, workerId: string, active: boolean, ttlSeconds: number): Promise<number> {
    const rows = await this.sql.query<{ n: number }>('select rag_rate_share($1, $2, $3, $4) as n', [account, workerId, active, ttlSeconds]);
    return Number(rows[0].n);
  }

  /** Published document versions by the embedding model their chunks were stored with (search checks it). */
  async storedModels(): Promise<{ model: string; documents: number }[]> {
    const rows = await this.sql.query<{ model: string | null; documents: number }>(
      'select embedding_model as model, count(*)::int as documents from rag_documents group by embedding_model order by 2 desc',
    );
    return rows.map((r) => ({ model: r.model ?? '(unknown)', documents: Number(r.documents) }));
  }

  /** Usage of every job in the queue table, added up key by key (`status`). */
  async usageTotals(): Promise<Usage> {
    const rows = await this.sql.query<{ key: string; total: string | number }>(
      `select u.key, sum((u.value #>> '{}')::numeric)::float8 as total
         from rag_ingestion_queue q cross join lateral jsonb_each(q.usage) u
        where jsonb_typeof(u.value) = 'number' group by u.key order by u.key`,
    );
    return Object.fromEntries(rows.map((r) => [r.key, Math.round(Number(r.total) * 1e9) / 1e9])) as Usage;
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
    return rows.map(normaliseMatch);
  }

  /** Hybrid search (rag_hybrid_chunks): the vector ranking of matchChunks fused with full-text ranking of context + content. */
  async hybridChunks(queryText: string, embedding: VectorLiteral, count: number, documentId?: string, version?: string): Promise<HybridRow[]> {
    const rows = await this.sql.query<HybridRow>('select * from rag_hybrid_chunks($1, $2::vector, $3, $4, $5)', [
      queryText,
      embedding,
      count,
      documentId ?? null,
      version ?? null,
    ]);
    return rows.map(normaliseHybrid);
  }
}
