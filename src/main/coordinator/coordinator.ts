/**
 * The coordinator (main thread): claims as many jobs as it has free slots (SKIP LOCKED, leases), runs them,
 * keeps their leases alive with heartbeats, and turns each outcome into the right SQL transition.
 * Wakes on NOTIFY, on a freed slot, or every RAG_POLL_INTERVAL_MS. Worker-level faults pause claiming,
 * release the jobs untouched and re-check periodically. stop() drains within a grace period.
 * What a failure means is decided by decideOutcome (src/shared/outcome-policy.ts); this class carries it out.
 *
 * Events (also logged, with an `event` field, so process tests can wait for them):
 *   'job_started' { jobId, documentId, version, attempt }
 *   'job'   { jobId, status: 'complete' | 'failed' | 'requeued' | 'released' | 'lost' | 'cancelled', error?, chunks?, reused? }
 *   'fault' { error, setting? }     'fault_cleared' {}     'heartbeat' { jobs }
 */
import { EventEmitter } from 'node:events';
import { backoffDelayMs } from '../../shared/backoff.ts';
import type { Clock } from '../../shared/clock.ts';
import { categoryOf, JobAbortedError, messageOf, WorkerFatalError } from '../../shared/errors.ts';
import { decideOutcome, type Outcome } from '../../shared/outcome-policy.ts';
import { oneLine } from '../../shared/redact.ts';
import type { Logger } from '../logging/logger.ts';
import { systemClock } from '../scheduler/clock.ts';
import type { RateShare } from '../scheduler/rate-share.ts';
import type { JobCompletion, JobRow, JobStart, Lease, QueueBackend, StartedJob } from '../stores/queue-store.ts';
import { withDbRetry } from './db-retry.ts';
import { runJob, type RunnerDeps } from './job-runner.ts';
import { GroupCommit } from './group-commit.ts';
import { SaveBatcher } from './save-batcher.ts';

export interface CoordinatorOptions {
  workerId: string;
  maxConcurrentJobs: number;
  leaseSeconds: number;
  heartbeatMs: number;
  pollIntervalMs: number;
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** How often a paused worker re-checks a worker-level fault. */
  faultRecheckMs: number;
  secrets: readonly string[];
  /** Re-check after a worker-level fault (schema, provider); throws while it persists. */
  healthCheck: () => Promise<void>;
  /** Splits provider accounts' rate limits with other workers while run() runs (rate-share.ts). */
  rateShare?: RateShare;
  clock?: Clock;
  random?: () => number;
}

interface Running {
  job: JobRow;
  lease: Lease;
  controller: AbortController;
  done: Promise<void>;
  startedAt: number;
}

/** A job this worker is running, for the status page and alerts. */
export interface InFlightJob {
  jobId: string;
  documentId: string;
  version: string;
  attempt: number;
  /** Wall-clock time of the claim (epoch ms). */
  startedAt: number;
}

/** What /health needs: whether the claim loop and the heartbeats still move. */
export interface LoopLiveness {
  /** ms the claim loop has been busy in one step (a claim, a release); null while it sleeps. */
  loopBusyMs: number | null;
  /** ms since the heartbeat last finished a beat (or started). */
  heartbeatAgeMs: number;
  activeJobs: number;
  /** starting: run() not called yet (start-up); running; stopped: run() has returned. */
  phase: 'starting' | 'running' | 'stopped';
}

export interface RunSummary {
  completed: number;
  failed: number;
  requeued: number;
  released: number;
  fatal?: string;
}

export class Coordinator extends EventEmitter {
  private readonly running = new Map<string, Running>();
  private readonly touched = new Set<string>();
  private stopping = false;
  private fault: WorkerFatalError | undefined;
  private wake: () => void = () => {};
  /** A wake-up that arrived while the loop was busy (e.g. a NOTIFY during a claim): the next sleep returns at once. */
  private wakeRequested = false;
  private sleeping = false;
  private stopHeartbeat: () => void = () => {};
  private loopMark = 0;
  private heartbeatMark = 0;
  private looping = false;
  private ran = false;
  readonly summary: RunSummary = { completed: 0, failed: 0, requeued: 0, released: 0 };
  private readonly deps: RunnerDeps;
  private readonly store: QueueBackend;
  private readonly opts: CoordinatorOptions;
  private readonly logger: Logger;
  private readonly clock: Clock;

  constructor(deps: Omit<RunnerDeps, 'events' | 'saver' | 'starts' | 'completions'>, options: CoordinatorOptions, logger: Logger) {
    super();
    const store = deps.store;
    const saver = new SaveBatcher(store, { workerId: options.workerId, model: deps.scheduler.provider.model, maxRows: 2 * deps.saveBatch, maxInFlight: 2 });
    const starts = new GroupCommit<JobStart, StartedJob>({
      what: 'rag_start_jobs',
      many: (items) => store.startJobs(options.workerId, items),
      // Alone, the single-job function: it does not say whether the document has a published version, so the
      // job looks its embeddings up.
      one: async (s) => ({ resumeFrom: await store.startJob(s.lease, s.segmentsTotal, s.chunksTotal, s.chunkingSignature), reusable: true }),
      key: (s) => s.lease.jobId,
      maxInFlight: 2,
    });
    const completions = new GroupCommit<JobCompletion, number>({
      what: 'rag_complete_jobs',
      many: (items) => store.completeJobs(options.workerId, items),
      one: (c) => store.completeJob(c.lease, c.chunksTotal),
      key: (c) => c.lease.jobId,
      maxInFlight: 2,
    });
    this.deps = { ...deps, saver, starts, completions, events: this };
    this.store = deps.store;
    this.opts = options;
    this.logger = logger.child({ workerId: options.workerId });
    this.clock = options.clock ?? systemClock;
  }

  /** Ids of every job this coordinator has claimed. */
  get touchedJobs(): string[] {
    return [...this.touched];
  }

  get activeJobs(): number {
    return this.running.size;
  }

  /** The worker-level fault in force (redacted message and setting), if any. */
  get currentFault(): { error: string; setting?: string } | undefined {
    if (!this.fault) return undefined;
    return { error: oneLine(messageOf(this.fault), this.opts.secrets), setting: this.fault.setting };
  }

  get isStopping(): boolean {
    return this.stopping;
  }

  inFlight(): InFlightJob[] {
    return [...this.running.values()].map((r) => ({ jobId: r.job.id, documentId: r.job.document_id, version: r.job.version, attempt: r.job.attempts, startedAt: r.startedAt }));
  }

  liveness(): LoopLiveness {
    const now = this.clock.now();
    return {
      loopBusyMs: this.sleeping || !this.looping ? null : now - this.loopMark,
      heartbeatAgeMs: this.ran ? now - this.heartbeatMark : 0,
      activeJobs: this.running.size,
      phase: this.looping ? 'running' : this.ran ? 'stopped' : 'starting',
    };
  }

  /** Nudge the claim loop (NOTIFY arrived). */
  notify(): void {
    this.poke();
  }

  /** Wake the loop now if it sleeps; otherwise make its next sleep return at once. */
  private poke(): void {
    if (this.sleeping) this.wake();
    else this.wakeRequested = true;
  }

  /**
   * Claim and run jobs until stop() — or, with once, until nothing runnable is left (jobs this worker
   * re-queued for a retry are waited for). Resolves with what happened.
   */
  async run({ once = false }: { once?: boolean } = {}): Promise<RunSummary> {
    this.startHeartbeat();
    this.opts.rateShare?.start();
    let claimFailures = 0;
    this.looping = true;
    this.ran = true;
    try {
      while (!this.stopping) {
        this.loopMark = this.clock.now();
        if (this.fault) {
          if (once) {
            this.summary.fatal = oneLine(messageOf(this.fault), this.opts.secrets);
            break;
          }
          await this.recheckFault();
          continue;
        }
        let claimed: JobRow[] = [];
        const free = this.opts.maxConcurrentJobs - this.running.size;
        if (free > 0) {
          try {
            claimed = await this.store.claimJobs(this.opts.workerId, free, this.opts.leaseSeconds, this.opts.maxAttempts);
            claimFailures = 0;
          } catch (error) {
            if (error instanceof WorkerFatalError) {
              this.enterFault(error);
              continue;
            }
            claimFailures++;
            const delay = backoffDelayMs(claimFailures, { baseMs: 500, maxMs: 15_000 }, this.opts.random);
            const fields: Record<string, unknown> = { event: 'claim_retry', error: messageOf(error), delayMs: delay };
            if (categoryOf(error) === 'bug') fields.stack = (error as Error)?.stack;
            this.logger.warn(`🔌 Could not claim jobs; retrying in ${delay} ms`, fields);
            await this.sleep(delay);
            continue;
          }
          if (this.stopping || this.fault) {
            // Stop or a fault arrived while the claim was in flight: hand these straight back.
            await this.releaseUnstarted(claimed);
            continue;
          }
          for (const job of claimed) this.launch(job);
        }
        if (claimed.length > 0 && this.running.size < this.opts.maxConcurrentJobs) continue;
        if (once && this.running.size === 0 && claimed.length === 0) {
          const next = await this.nextOwnRetryMs();
          if (next === null) break;
          await this.sleep(Math.min(next + 10, this.opts.pollIntervalMs));
          continue;
        }
        await this.sleep(this.opts.pollIntervalMs);
      }
      // Leases of jobs still finishing (shutdown grace) keep being renewed until they are done.
      await Promise.all([...this.running.values()].map((r) => r.done));
    } finally {
      this.looping = false;
      this.stopHeartbeat();
      await this.opts.rateShare?.stop();
    }
    return this.summary;
  }

  /** Stop claiming; let running jobs finish within graceMs, then release the rest (no attempt used). */
  async stop(graceMs: number): Promise<void> {
    if (!this.stopping) this.logger.info(`🛑 Stopping: no new jobs; ${this.running.size} in flight (grace ${graceMs} ms)`, { event: 'stopping', inFlight: this.running.size });
    this.stopping = true;
    this.poke();
    const all = Promise.all([...this.running.values()].map((r) => r.done));
    let cancelGrace = () => {};
    const graceOver = new Promise<'grace'>((r) => (cancelGrace = this.clock.setTimer(() => r('grace'), graceMs)));
    const first = await Promise.race([all.then(() => 'done' as const), graceOver]);
    cancelGrace();
    if (first === 'grace') {
      for (const r of this.running.values()) r.controller.abort(new JobAbortedError('shutdown', 'worker shutting down'));
      await all;
    }
  }

  private async releaseUnstarted(jobs: JobRow[]): Promise<void> {
    const leases = jobs.map((job) => ({ jobId: job.id, workerId: this.opts.workerId, leaseToken: job.lease_token! }));
    try {
      const n = await withDbRetry(() => this.store.releaseJobs(this.opts.workerId, leases, this.stopping ? 'worker shutting down' : 'worker-level fault'), {
        logger: this.logger,
        what: 'release',
        deadlineMs: this.opts.leaseSeconds * 1000,
        clock: this.clock,
      });
      this.summary.released += n;
    } catch (error) {
      this.logger.warn('Could not release jobs claimed while stopping; their leases will expire', { error: messageOf(error) });
    }
  }

  private launch(job: JobRow): void {
    const lease: Lease = { jobId: job.id, workerId: this.opts.workerId, leaseToken: job.lease_token! };
    const controller = new AbortController();
    // Whoever aborts a job (lease lost, cancel, shutdown, fault) also drops its queued embedding work at once.
    controller.signal.addEventListener(
      'abort',
      () => {
        this.deps.scheduler.cancelJob(job.id, controller.signal.reason);
        this.deps.claude?.scheduler.cancelJob(job.id, controller.signal.reason);
      },
      { once: true },
    );
    const log = this.logger.child({ jobId: job.id });
    this.touched.add(job.id);
    const entry: Running = { job, lease, controller, done: Promise.resolve(), startedAt: Date.now() };
    this.emit('job_started', { jobId: job.id, documentId: job.document_id, version: job.version, attempt: job.attempts });
    entry.done = runJob(this.deps, job, lease, controller.signal, log)
      .then(
        (result) => {
          this.summary.completed++;
          this.emit('job', { jobId: job.id, documentId: job.document_id, version: job.version, status: 'complete', chunks: result.chunks, reused: result.reused, tokens: result.tokensEmbedded, usage: result.usage });
        },
        (error) => this.settleFailure(entry, error, log),
      )
      .catch((error) => {
        log.error('Could not record the outcome of the job; its lease will expire and it will be retried', {
          event: 'outcome_unrecorded',
          error: messageOf(error),
        });
        // The database itself is the problem (credentials, schema, damaged storage): stop claiming.
        if (error instanceof WorkerFatalError) this.enterFault(error);
      })
      .finally(() => {
        this.deps.scheduler.cancelJob(job.id, new JobAbortedError('finished', 'job finished'));
        this.deps.claude?.scheduler.cancelJob(job.id, new JobAbortedError('finished', 'job finished'));
        this.running.delete(job.id);
        this.poke();
      });
    this.running.set(job.id, entry);
  }

  private async settleFailure(entry: Running, error: unknown, log: Logger): Promise<void> {
    const { job, lease, controller } = entry;
    const outcome = decideOutcome({
      error,
      abortReason: controller.signal.aborted ? controller.signal.reason : undefined,
      attempts: job.attempts,
      limits: {
        maxAttempts: this.maxAttemptsOf(job),
        backoff: { baseMs: this.opts.retryBaseMs, maxMs: this.opts.retryMaxMs },
        secrets: this.opts.secrets,
      },
      now: this.clock.now(),
      random: this.opts.random,
    });
    await this.carryOut(outcome, entry, error, log);
  }

  /** The job's own max_attempts, or the worker's RAG_MAX_ATTEMPTS. */
  private maxAttemptsOf(job: JobRow): number {
    return job.max_attempts ?? this.opts.maxAttempts;
  }

  /** Performs an outcome: the SQL transition, the summary, one log line and one event. */
  private async carryOut(outcome: Outcome, { job, lease }: Running, error: unknown, log: Logger): Promise<void> {
    const db = <T>(what: string, fn: () => Promise<T>) =>
      withDbRetry(fn, { logger: log, what, deadlineMs: this.opts.leaseSeconds * 1000, clock: this.clock });
    switch (outcome.kind) {
      case 'lost':
        log.warn(`⏹️  Job ${job.id} stopped: ${outcome.reason}`, { event: 'job_lost' });
        this.emit('job', { jobId: job.id, documentId: job.document_id, version: job.version, status: 'lost', reason: outcome.reason });
        return;
      case 'release': {
        // Pause claiming before the release's NOTIFY can wake the claim loop.
        if (outcome.fault) this.enterFault(outcome.fault);
        const n = await db('release', () => this.store.releaseJobs(this.opts.workerId, [lease], outcome.reason));
        this.summary.released += n;
        log.info(`↩️  Job ${job.id} released to the queue (${outcome.reason})`, { event: 'job_released' });
        this.emit('job', { jobId: job.id, documentId: job.document_id, version: job.version, status: 'released', reason: outcome.reason });
        return;
      }
      case 'retry':
      case 'fail': {
        const retryInMs = outcome.kind === 'retry' ? outcome.delayMs : null;
        const maxAttempts = this.maxAttemptsOf(job);
        const status = await db('fail', () => this.store.failJob(lease, outcome.detail, outcome.category, retryInMs, maxAttempts));
        if (outcome.kind === 'fail' && outcome.logStack) log.error('Unexpected error (a bug in rag-worker)', { event: 'bug', stack: (error as Error)?.stack ?? String(error) });
        if (status === 'cancelled') {
          log.warn(`⏭️  Job ${job.id} superseded by a newer enqueue of ${job.document_id} (version ${job.version})`, { event: 'job_cancelled' });
        } else if (status === 'queued') {
          this.summary.requeued++;
          log.warn(`🔁 Job ${job.id} will be retried in ${((retryInMs ?? 0) / 1000).toFixed(1)}s (attempt ${job.attempts} of ${maxAttempts}): ${outcome.detail}`, {
            event: 'job_requeued',
          });
        } else {
          this.summary.failed++;
          const after = outcome.category === 'retryable' ? ` after ${job.attempts} attempts` : '';
          log.error(`❌ Job ${job.id} failed${after}: ${outcome.detail}`, { event: 'job_failed', category: outcome.category });
        }
        this.emit('job', { jobId: job.id, documentId: job.document_id, version: job.version, status: status === 'queued' ? 'requeued' : status, error: outcome.detail, category: outcome.category });
        return;
      }
    }
  }

  private startHeartbeat(): void {
    let stopped = false;
    let cancel = () => {};
    this.heartbeatMark = this.clock.now();
    const tick = () => {
      if (stopped) return;
      void this.beat().finally(() => {
        this.heartbeatMark = this.clock.now();
        if (!stopped) cancel = this.clock.setTimer(tick, this.opts.heartbeatMs);
      });
    };
    cancel = this.clock.setTimer(tick, this.opts.heartbeatMs);
    this.stopHeartbeat = () => {
      stopped = true;
      cancel();
    };
  }

  private async beat(): Promise<void> {
    if (this.running.size === 0) return;
    const leases = [...this.running.values()].map((r) => r.lease);
    try {
      const result = await this.store.extendLeases(this.opts.workerId, leases, this.opts.leaseSeconds);
      for (const r of result) {
        if (r.held) continue;
        const entry = this.running.get(r.jobId);
        const why = r.status === 'cancelled' ? 'job was cancelled' : `lease lost (job is ${r.status})`;
        entry?.controller.abort(new JobAbortedError(r.status === 'cancelled' ? 'cancelled' : 'lease_lost', why));
      }
      this.emit('heartbeat', { jobs: leases.length });
    } catch (error) {
      this.logger.warn('💓 Heartbeat failed; will retry at the next beat', { event: 'heartbeat_failed', error: messageOf(error) });
    }
  }

  private enterFault(error: WorkerFatalError): void {
    if (this.fault) return;
    this.fault = error;
    const message = oneLine(messageOf(error), this.opts.secrets);
    this.logger.error(`🛑 Worker-level fault: ${message}. Not claiming jobs; releasing the ones in flight; re-checking every ${this.opts.faultRecheckMs / 1000}s`, {
      event: 'fault',
      setting: error.setting,
    });
    this.emit('fault', { error: message, setting: error.setting });
    for (const r of this.running.values()) r.controller.abort(new JobAbortedError('fault', 'worker-level fault'));
    this.poke();
  }

  private async recheckFault(): Promise<void> {
    // Wait the full interval: NOTIFYs and settling jobs wake the loop, but must not trigger extra health checks.
    const until = this.clock.now() + this.opts.faultRecheckMs;
    while (!this.stopping && this.clock.now() < until) await this.sleep(until - this.clock.now());
    if (this.stopping) return;
    try {
      await this.opts.healthCheck();
      this.logger.info('✅ Worker-level fault cleared; claiming jobs again', { event: 'fault_cleared' });
      this.fault = undefined;
      this.deps.scheduler.resume();
      this.deps.claude?.scheduler.resume();
      this.emit('fault_cleared', {});
    } catch (error) {
      this.logger.warn(`🛑 Still faulty: ${oneLine(messageOf(error), this.opts.secrets)}`, { event: 'fault_persists' });
    }
  }

  /** For --once: ms until the earliest job this worker touched and re-queued is due again (null: none). */
  private async nextOwnRetryMs(): Promise<number | null> {
    if (this.touched.size === 0) return null;
    const jobs = await this.store.getJobs([...this.touched]);
    const now = this.clock.now();
    const due = jobs.filter((j) => j.status === 'queued').map((j) => j.run_at.getTime() - now);
    return due.length === 0 ? null : Math.max(0, Math.min(...due));
  }

  private sleep(ms: number): Promise<void> {
    if (this.wakeRequested) {
      this.wakeRequested = false;
      return Promise.resolve();
    }
    this.sleeping = true;
    return new Promise((resolve) => {
      let cancel = () => {};
      const done = () => {
        cancel();
        this.sleeping = false;
        this.wake = () => {};
        resolve();
      };
      cancel = this.clock.setTimer(done, ms);
      this.wake = done;
    });
  }

}
