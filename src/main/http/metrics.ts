/**
 * Prometheus metrics (prom-client, a registry of our own). Everything is fed by events the worker already has —
 * the coordinator's job events, the scheduler's request observer, the thread pool's counters, the queue sampler —
 * so a scrape never queries the database.
 */
import client from 'prom-client';
import type { Usage } from '../../shared/claude/usage.ts';
import type { Coordinator } from '../coordinator/coordinator.ts';
import type { ChunkPool } from '../coordinator/chunk-pool.ts';
import type { EmbeddingScheduler } from '../scheduler/embedding-scheduler.ts';
import type { QueueSampler } from './queue-sampler.ts';
import { JOB_STATUSES } from '../../shared/types.ts';

const DURATION_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 10_800];
const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60];

export interface MetricsSources {
  coordinator: Coordinator;
  scheduler: EmbeddingScheduler;
  pool: ChunkPool;
  sampler: QueueSampler;
  /** "openai" or "local-lexical", and the model: labels of the provider metrics. */
  provider: string;
  model: string;
}

export class WorkerMetrics {
  readonly registry = new client.Registry();

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    const { coordinator, scheduler, pool, sampler, provider, model } = sources;
    client.collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 20 });

    const jobs = new client.Counter({ name: 'rag_worker_jobs_total', help: 'Jobs this worker finished an attempt of, by outcome (complete, failed, cancelled: final; requeued, released, lost: the job goes on).', labelNames: ['status'], registers });
    const duration = new client.Histogram({ name: 'rag_worker_job_duration_seconds', help: 'Wall time of a job attempt on this worker, from claim to outcome.', labelNames: ['status'], buckets: DURATION_BUCKETS, registers });
    const leasesLost = new client.Counter({ name: 'rag_worker_leases_lost_total', help: 'Jobs this worker stopped because its lease was taken over or the job was cancelled.', registers });
    const chunks = new client.Counter({ name: 'rag_worker_chunks_total', help: 'Chunks stored by completed jobs: kind="embedded" (sent to the provider) or "reused" (embedding of unchanged content reused).', labelNames: ['provider', 'kind'], registers });
    const tokens = new client.Counter({ name: 'rag_worker_tokens_total', help: 'Tokens sent to the embedding provider in accepted requests.', labelNames: ['provider', 'model', 'kind'], registers });
    const requests = new client.Counter({ name: 'rag_worker_provider_requests_total', help: 'Embedding requests by HTTP status (or timeout / network / error when there was no answer).', labelNames: ['provider', 'status'], registers });
    const latency = new client.Histogram({ name: 'rag_worker_provider_request_duration_seconds', help: 'Latency of embedding requests.', labelNames: ['provider'], buckets: LATENCY_BUCKETS, registers });
    const waited = new client.Counter({ name: 'rag_worker_rate_limit_wait_seconds_total', help: 'Wall time ready embedding work waited on the rate limits (buckets, or a pause after a 429).', labelNames: ['provider'], registers });
    const claudeTokens = new client.Counter({
      name: 'rag_worker_claude_tokens_total',
      help: 'Claude tokens of completed job attempts, by kind: input (uncached), cache_write, cache_read, output.',
      labelNames: ['kind'],
      registers,
    });
    const claudeRequests = new client.Counter({ name: 'rag_worker_claude_requests_total', help: 'Claude requests answered for completed job attempts.', registers });
    const cost = new client.Counter({
      name: 'rag_worker_cost_usd_total',
      help: 'USD spent by completed job attempts at the price table (RAG_PRICES), by kind: embedding, claude.',
      labelNames: ['kind'],
      registers,
    });
    const fault = new client.Gauge({ name: 'rag_worker_fault', help: '1 while a worker-level fault (credentials, schema, model) stops this worker from claiming jobs.', registers });
    fault.set(0);
    for (const status of ['complete', 'failed', 'cancelled', 'requeued', 'released', 'lost']) jobs.inc({ status }, 0);
    requests.inc({ provider, status: '200' }, 0);
    waited.inc({ provider }, 0);

    new client.Gauge({ name: 'rag_worker_jobs_in_flight', help: 'Jobs this worker is running now.', registers, collect() { this.set(coordinator.activeJobs); } });
    new client.Gauge({
      name: 'rag_worker_queue_jobs',
      help: 'Jobs in rag_ingestion_queue by status (all workers), sampled every RAG_QUEUE_SAMPLE_MS.',
      labelNames: ['status'],
      registers,
      collect() {
        const sample = sampler.latest;
        if (!sample) return;
        for (const status of JOB_STATUSES) this.set({ status }, sample.counts[status]);
      },
    });
    new client.Gauge({ name: 'rag_worker_queue_sample_age_seconds', help: 'Age of the queue sample behind rag_worker_queue_jobs.', registers, collect() { const s = sampler.latest; if (s) this.set((Date.now() - s.at) / 1000); } });
    new client.Gauge({ name: 'rag_worker_embedding_queue_inputs', help: 'Chunks waiting in the embedding scheduler.', registers, collect() { this.set(scheduler.queuedItems); } });
    new client.Gauge({ name: 'rag_worker_embedding_requests_in_flight', help: 'Embedding requests in flight.', registers, collect() { this.set(scheduler.requestsInFlight); } });
    new client.Gauge({
      name: 'rag_worker_rate_limit',
      help: 'The provider limits in force (configured, or learned from x-ratelimit-* headers): kind="requests_per_minute" or "tokens_per_minute".',
      labelNames: ['provider', 'kind'],
      registers,
      collect() {
        const { rpm, tpm } = scheduler.limits();
        if (rpm !== undefined) this.set({ provider, kind: 'requests_per_minute' }, rpm);
        if (tpm !== undefined) this.set({ provider, kind: 'tokens_per_minute' }, tpm);
      },
    });
    new client.Gauge({ name: 'rag_worker_threads', help: 'Chunking threads in the pool.', registers, collect() { this.set(pool.stats().threads); } });
    new client.Gauge({ name: 'rag_worker_thread_tasks_waiting', help: 'Chunking tasks waiting for a free thread.', registers, collect() { this.set(pool.stats().queued); } });
    new client.Counter({
      name: 'rag_worker_thread_busy_seconds_total',
      help: 'Time the chunking threads were busy (parsing, chunking, the offline embedder); rate() of it divided by rag_worker_threads is the pool\'s utilisation.',
      registers,
      collect() {
        // The pool keeps the running total; the counter mirrors it.
        this.reset();
        this.inc(pool.stats().busyMs / 1000);
      },
    });

    const startedAt = new Map<string, number>();
    coordinator.on('job_started', (e: { jobId: string }) => startedAt.set(e.jobId, performance.now()));
    coordinator.on('job', (e: { jobId: string; status: string; chunks?: number; reused?: number; tokens?: number; usage?: Usage }) => {
      jobs.inc({ status: e.status });
      const t0 = startedAt.get(e.jobId);
      startedAt.delete(e.jobId);
      if (t0 !== undefined) duration.observe({ status: e.status }, (performance.now() - t0) / 1000);
      if (e.status === 'lost') leasesLost.inc();
      if (e.status === 'complete') {
        const reused = e.reused ?? 0;
        chunks.inc({ provider, kind: 'embedded' }, Math.max(0, (e.chunks ?? 0) - reused));
        chunks.inc({ provider, kind: 'reused' }, reused);
        const u = e.usage ?? {};
        claudeTokens.inc({ kind: 'input' }, u.claude_input_tokens ?? 0);
        claudeTokens.inc({ kind: 'cache_write' }, u.claude_cache_write_tokens ?? 0);
        claudeTokens.inc({ kind: 'cache_read' }, u.claude_cache_read_tokens ?? 0);
        claudeTokens.inc({ kind: 'output' }, u.claude_output_tokens ?? 0);
        claudeRequests.inc(u.claude_requests ?? 0);
        cost.inc({ kind: 'embedding' }, u.embedding_usd ?? 0);
        cost.inc({ kind: 'claude' }, u.claude_usd ?? 0);
      }
    });
    coordinator.on('fault', () => fault.set(1));
    coordinator.on('fault_cleared', () => fault.set(0));
    scheduler.observer = {
      request(r) {
        requests.inc({ provider, status: r.status });
        latency.observe({ provider }, r.durationMs / 1000);
        if (r.status === '200') tokens.inc({ provider, model, kind: 'embedding' }, r.tokens);
      },
      rateLimitWait(ms) {
        waited.inc({ provider }, ms / 1000);
      },
    };
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
