/**
 * Samples the queue from the database every RAG_QUEUE_SAMPLE_MS (never per scrape or per page view): counts by
 * status, the jobs in flight on every worker with their progress, and the latest failures. /metrics and the
 * status page read the last sample. A failed sample keeps the previous one and says since when it is stale.
 */
import { messageOf } from '../../shared/errors.ts';
import { oneLine } from '../../shared/redact.ts';
import type { JobStatus } from '../../shared/types.ts';
import type { Logger } from '../logging/logger.ts';
import type { JobRow, QueueBackend } from '../stores/queue-store.ts';

export interface QueueSample {
  at: number;
  counts: Record<JobStatus, number>;
  processing: JobRow[];
  failures: JobRow[];
  /** The last sample's error, when the latest attempt failed (the data above is from `at`). */
  error?: string;
}

const IN_FLIGHT_SHOWN = 50;
const FAILURES_SHOWN = 10;

export class QueueSampler {
  private sample: QueueSample | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private listeners = new Set<(sample: QueueSample) => void>();

  private readonly store: QueueBackend;
  private readonly intervalMs: number;
  private readonly logger: Logger;
  private readonly secrets: readonly string[];

  constructor(store: QueueBackend, intervalMs: number, logger: Logger, secrets: readonly string[] = []) {
    this.store = store;
    this.intervalMs = intervalMs;
    this.logger = logger;
    this.secrets = secrets;
  }

  start(): void {
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  get latest(): QueueSample | undefined {
    return this.sample;
  }

  onSample(listener: (sample: QueueSample) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Takes a sample now (one at a time: a refresh during one in flight waits for it). */
  refresh(): Promise<void> {
    this.running ??= this.take().finally(() => (this.running = undefined));
    return this.running;
  }

  private async take(): Promise<void> {
    try {
      const [counts, processing, failures] = await Promise.all([
        this.store.counts(),
        this.store.listJobs({ status: 'processing', limit: IN_FLIGHT_SHOWN }),
        this.store.listJobs({ status: 'failed', limit: FAILURES_SHOWN }),
      ]);
      this.sample = { at: Date.now(), counts, processing, failures };
    } catch (error) {
      const message = oneLine(messageOf(error), this.secrets);
      if (this.sample?.error === undefined) this.logger.warn(`Could not sample the queue for metrics: ${message}`, { event: 'queue_sample_failed' });
      if (this.sample) this.sample = { ...this.sample, error: message };
      return;
    }
    for (const listener of this.listeners) listener(this.sample);
  }
}
