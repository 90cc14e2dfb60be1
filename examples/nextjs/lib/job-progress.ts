/**
 * Follows one rag-worker job until it ends: the subscription logic behind useJobProgress (lib/use-job-progress.ts),
 * as a plain function with no React in it, so it runs (and is tested) anywhere supabase-js runs.
 *
 * - Supabase Realtime: `postgres_changes` UPDATEs of `public.rag_ingestion_queue` filtered by `id=eq.<jobId>`.
 *   The worker updates the row as it goes (segments_done, chunks_done, tokens_embedded, status, error_detail).
 * - A read of the row at once, and again after every (re-)subscription, so a change made before the channel was
 *   up is not missed; and every `pollIntervalMs` (default 10 s) as a safety net, because Realtime sends nothing
 *   when the table is not in the `supabase_realtime` publication.
 * - Snapshots never go back in time: one older than the last seen (by updated_at) is dropped.
 * - It ends by itself at a terminal status (complete, failed with its reason in `error`, cancelled), after handing
 *   that snapshot to `onUpdate`; the function it returns ends it earlier (call it on unmount).
 *
 * With a browser client (anon key plus the user's session) both the read and the Realtime changes go through
 * row-level security: the user needs a select policy on rag_ingestion_queue (e.g. for rows whose
 * metadata->>'owner_id' is auth.uid()), and the table must be in the supabase_realtime publication. See
 * examples/nextjs/README.md.
 */
import type { RealtimeChannel, SupabaseClient } from '@supabase/supabase-js';

export type JobStatus = 'queued' | 'processing' | 'complete' | 'failed' | 'cancelled';
export const TERMINAL_STATUSES: readonly JobStatus[] = ['complete', 'failed', 'cancelled'];

/** The columns read; the other columns (the payload above all) are never fetched. */
export const JOB_PROGRESS_COLUMNS =
  'id,status,document_id,version,attempts,segments_total,segments_done,chunks_total,chunks_done,tokens_embedded,error_detail,run_at,updated_at,completed_at';

export interface JobProgress {
  id: string;
  status: JobStatus;
  documentId: string;
  version: string;
  /** Attempts so far (counted when a worker claims the job). */
  attempts: number;
  segmentsTotal: number | null;
  segmentsDone: number;
  chunksTotal: number | null;
  chunksDone: number;
  tokensEmbedded: number;
  /** Done so far, 0..1: chunks once their number is known, else segments; null before the worker started. */
  fraction: number | null;
  /** Why it failed (status failed), or why the last attempt failed while a retry waits (status queued). */
  error: string | null;
  runAt: string | null;
  updatedAt: string | null;
  completedAt: string | null;
  /** complete, failed or cancelled: nothing more will happen to this job. */
  terminal: boolean;
}

export interface FollowJobOptions {
  /** Re-read the row this often while the job runs (0: never; Realtime and the reads at (re-)subscription only). */
  pollIntervalMs?: number;
  /** A read or the subscription failed (following goes on), or the job is not there (following stops). */
  onError?: (message: string) => void;
}

type Row = Record<string, unknown>;

let channels = 0;

export function followJobProgress(
  client: SupabaseClient,
  jobId: string,
  onUpdate: (progress: JobProgress) => void,
  options: FollowJobOptions = {},
): () => void {
  const pollIntervalMs = options.pollIntervalMs ?? 10_000;
  const onError = options.onError ?? (() => {});
  let stopped = false;
  let latest: JobProgress | undefined;
  let poll: ReturnType<typeof setInterval> | undefined;
  let channel: RealtimeChannel | undefined;

  const stop = () => {
    if (stopped) return;
    stopped = true;
    if (poll !== undefined) clearInterval(poll);
    if (channel) void client.removeChannel(channel).catch(() => {});
  };

  const accept = (row: Row | null | undefined) => {
    if (stopped || !row || row.id !== jobId) return;
    const next = toProgress(row);
    if (latest && isOlder(next, latest)) return;
    latest = next;
    onUpdate(next);
    if (next.terminal) stop();
  };

  const read = async () => {
    if (stopped) return;
    const { data, error } = await client.from('rag_ingestion_queue').select(JOB_PROGRESS_COLUMNS).eq('id', jobId).maybeSingle();
    if (stopped) return;
    if (error) return onError(`reading job ${jobId} failed: ${error.message}`);
    if (!data) {
      onError(`job ${jobId} not found (or not visible to this user: check the select policy on rag_ingestion_queue)`);
      return stop();
    }
    accept(data as Row);
  };
  const refresh = () => void read().catch((error: unknown) => onError(`reading job ${jobId} failed: ${error instanceof Error ? error.message : String(error)}`));

  // A topic of its own per call: React's Strict Mode mounts twice, and a topic still being left cannot take new bindings.
  channel = client
    .channel(`rag-job:${jobId}:${++channels}`)
    .on('postgres_changes', { event: 'UPDATE', schema: 'public', table: 'rag_ingestion_queue', filter: `id=eq.${jobId}` }, (payload) =>
      accept(payload.new as Row),
    )
    .subscribe((status, error) => {
      if (stopped) return;
      if (status === 'SUBSCRIBED') refresh();
      // realtime-js joins again by itself after an error or a timeout; reads keep the progress moving meanwhile.
      else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') onError(`realtime ${status.toLowerCase()}${error ? `: ${error.message}` : ''}`);
    });
  refresh();
  if (pollIntervalMs > 0) poll = setInterval(refresh, pollIntervalMs);
  return stop;
}

function isOlder(a: JobProgress, b: JobProgress): boolean {
  const at = Date.parse(a.updatedAt ?? '');
  const bt = Date.parse(b.updatedAt ?? '');
  return Number.isFinite(at) && Number.isFinite(bt) && at < bt;
}

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v ?? 0) || 0);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : num(v));
const strOrNull = (v: unknown): string | null => (typeof v === 'string' ? v : null);

export function toProgress(row: Row): JobProgress {
  const status = String(row.status) as JobStatus;
  const segmentsTotal = numOrNull(row.segments_total);
  const segmentsDone = num(row.segments_done);
  const chunksTotal = numOrNull(row.chunks_total);
  const chunksDone = num(row.chunks_done);
  let fraction: number | null = null;
  if (status === 'complete') fraction = 1;
  else if (chunksTotal !== null && chunksTotal > 0) fraction = Math.min(1, chunksDone / chunksTotal);
  else if (segmentsTotal !== null && segmentsTotal > 0) fraction = Math.min(1, segmentsDone / segmentsTotal);
  return {
    id: String(row.id),
    status,
    documentId: String(row.document_id ?? ''),
    version: String(row.version ?? ''),
    attempts: num(row.attempts),
    segmentsTotal,
    segmentsDone,
    chunksTotal,
    chunksDone,
    tokensEmbedded: num(row.tokens_embedded),
    fraction,
    error: strOrNull(row.error_detail),
    runAt: strOrNull(row.run_at),
    updatedAt: strOrNull(row.updated_at),
    completedAt: strOrNull(row.completed_at),
    terminal: TERMINAL_STATUSES.includes(status),
  };
}
