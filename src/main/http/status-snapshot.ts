/**
 * What the status page shows, as one JSON snapshot: this worker, the queue (sampled), jobs in flight on every
 * worker with their progress, the latest failures, this worker's throughput and the provider's rate-limit state.
 */
import type { Coordinator } from '../coordinator/coordinator.ts';
import type { EmbeddingScheduler, SchedulerState } from '../scheduler/embedding-scheduler.ts';
import type { JobRow } from '../stores/queue-store.ts';
import type { JobStatus } from '../../shared/types.ts';
import type { QueueSample } from './queue-sampler.ts';

export interface JobProgress {
  jobId: string;
  documentId: string;
  version: string;
  workerId: string | null;
  mine: boolean;
  attempt: number;
  segmentsTotal: number | null;
  segmentsDone: number;
  chunksDone: number;
  startedAt: string | null;
}

export interface StatusSnapshot {
  at: string;
  worker: { id: string; state: 'running' | 'fault' | 'stopping'; fault?: string; setting?: string; uptimeSeconds: number; embedder: string; threads: number; maxConcurrentJobs: number };
  queue: { counts: Record<JobStatus, number> | null; sampledAt: string | null; error?: string };
  inFlight: JobProgress[];
  failures: { jobId: string; documentId: string; version: string; finishedAt: string | null; category: string | null; error: string | null }[];
  throughput: { jobsLastMinute: number; jobsLastFiveMinutes: number; chunksPerSecond: number };
  rateLimit: SchedulerState;
}

const WINDOW_MS = 5 * 60_000;

/** Completions of this worker in the last five minutes, for the throughput figures. */
export class Throughput {
  private readonly done: { at: number; chunks: number }[] = [];

  constructor(coordinator: Coordinator) {
    coordinator.on('job', (e: { status: string; chunks?: number }) => {
      if (e.status !== 'complete') return;
      this.done.push({ at: Date.now(), chunks: e.chunks ?? 0 });
      this.trim(Date.now());
    });
  }

  figures(now = Date.now()): StatusSnapshot['throughput'] {
    this.trim(now);
    const lastMinute = this.done.filter((d) => now - d.at <= 60_000);
    return {
      jobsLastMinute: lastMinute.length,
      jobsLastFiveMinutes: this.done.length,
      chunksPerSecond: Math.round((lastMinute.reduce((n, d) => n + d.chunks, 0) / 60) * 10) / 10,
    };
  }

  private trim(now: number): void {
    while (this.done.length > 0 && now - this.done[0].at > WINDOW_MS) this.done.shift();
  }
}

export interface SnapshotSources {
  workerId: string;
  startedAt: number;
  embedder: string;
  threads: number;
  maxConcurrentJobs: number;
  coordinator: Coordinator;
  scheduler: EmbeddingScheduler;
  throughput: Throughput;
}

export function statusSnapshot(src: SnapshotSources, sample: QueueSample | undefined, processing: JobRow[] | undefined): StatusSnapshot {
  const fault = src.coordinator.currentFault;
  const rows = processing ?? sample?.processing ?? [];
  return {
    at: new Date().toISOString(),
    worker: {
      id: src.workerId,
      state: fault ? 'fault' : src.coordinator.isStopping ? 'stopping' : 'running',
      ...(fault ? { fault: fault.error, setting: fault.setting } : {}),
      uptimeSeconds: Math.round((Date.now() - src.startedAt) / 1000),
      embedder: src.embedder,
      threads: src.threads,
      maxConcurrentJobs: src.maxConcurrentJobs,
    },
    queue: { counts: sample?.counts ?? null, sampledAt: sample ? new Date(sample.at).toISOString() : null, ...(sample?.error ? { error: sample.error } : {}) },
    inFlight: rows.map((j) => ({
      jobId: j.id,
      documentId: j.document_id,
      version: j.version,
      workerId: j.worker_id,
      mine: j.worker_id === src.workerId,
      attempt: j.attempts,
      segmentsTotal: j.segments_total,
      segmentsDone: j.segments_done,
      chunksDone: j.chunks_done,
      startedAt: j.started_at ? new Date(j.started_at).toISOString() : null,
    })),
    failures: (sample?.failures ?? []).map((j) => ({
      jobId: j.id,
      documentId: j.document_id,
      version: j.version,
      finishedAt: j.completed_at ? new Date(j.completed_at).toISOString() : null,
      category: j.last_error_category,
      error: j.error_detail,
    })),
    throughput: src.throughput.figures(),
    rateLimit: src.scheduler.state(),
  };
}
