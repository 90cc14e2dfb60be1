'use client';
/**
 * useJobProgress(jobId) — a job's progress, live, in a client component:
 *
 *   const { progress, error } = useJobProgress(jobId);
 *   if (progress?.status === 'failed') return <p>Failed: {progress.error}</p>;
 *   if (progress?.status === 'complete') return <p>Ready: {progress.chunksDone} passages</p>;
 *   return <progress value={progress?.fraction ?? undefined} />;
 *
 * It follows the job with followJobProgress (lib/job-progress.ts): Supabase Realtime UPDATEs of its row in
 * rag_ingestion_queue, a read of the row at once and after every (re-)subscription, a read every 10 s as a
 * safety net. It stops at complete, failed (the reason in `progress.error`) or cancelled, when jobId changes,
 * and on unmount. `error` reports what went wrong with following (not with the job).
 */
import { useEffect, useState } from 'react';
import type { SupabaseClient } from '@supabase/supabase-js';
import { followJobProgress, type JobProgress } from './job-progress.ts';
import { supabaseBrowser } from './supabase-browser.ts';

export type { JobProgress, JobStatus } from './job-progress.ts';

export interface JobProgressState {
  /** The latest snapshot of the job; null until the first one arrives. */
  progress: JobProgress | null;
  /** The last problem following the job (a failed read, a Realtime error, a job that is not there). */
  error: string | null;
  /** The job has ended (complete, failed or cancelled). */
  done: boolean;
}

export interface UseJobProgressOptions {
  /** The browser client to use (default: supabaseBrowser()). Keep it stable across renders. */
  client?: SupabaseClient;
  /** How often to re-read the row as a safety net (default 10 s; 0: never). */
  pollIntervalMs?: number;
}

export function useJobProgress(jobId: string | null | undefined, options: UseJobProgressOptions = {}): JobProgressState {
  const { client, pollIntervalMs } = options;
  const [state, setState] = useState<JobProgressState>({ progress: null, error: null, done: false });

  useEffect(() => {
    setState({ progress: null, error: null, done: false });
    if (!jobId) return;
    const stop = followJobProgress(
      client ?? supabaseBrowser(),
      jobId,
      (progress) => setState((s) => ({ ...s, progress, done: progress.terminal })),
      { pollIntervalMs, onError: (error) => setState((s) => ({ ...s, error })) },
    );
    return stop;
  }, [jobId, client, pollIntervalMs]);

  return state;
}
