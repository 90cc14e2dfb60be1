/**
 * The Claude scheduler: one per worker, shared by every job in flight, beside the embedding scheduler.
 * - caps requests in flight (RAG_CLAUDE_CONCURRENCY) and paces them with per-minute buckets for requests,
 *   input tokens and output tokens, seeded from settings and adapted from the anthropic-ratelimit-* headers of
 *   every answer; with no limits configured the first request goes alone, so its headers size the rest;
 * - input tokens are what the account's input limit counts: uncached input and cache writes (cache reads do
 *   not count), estimated by the caller before the request and corrected from the answer's usage;
 * - is fair: higher priority first, then round-robin across jobs;
 * - treats a 429 as backpressure: sending pauses until retry-after (or the exhausted window's reset), and the
 *   try is not counted, however long it lasts;
 * - retries transient failures (529 overloaded, 5xx, network, timeouts) with backoff up to maxRetries; a
 *   worker-level fault (key, spend limit, model) rejects everything and refuses work until resume() — or, when
 *   `faultRetryMs` is set, until that long has passed (the next request is then the probe); bad input and
 *   errors of no known type go straight back to their job.
 */
import { retryDelayMs, type BackoffPolicy } from '../../shared/backoff.ts';
import { BadInputError, JobAbortedError, messageOf, RateLimitError, RetryableError, WorkerFatalError } from '../../shared/errors.ts';
import type { AnthropicRateLimit, LimitWindow } from '../../shared/anthropic-rate-limit.ts';
import { DEFAULT_BURST_MS, TokenBucket } from '../../shared/token-bucket.ts';
import type { Logger } from '../logging/logger.ts';
import { silentLogger } from '../logging/logger.ts';
import { systemClock, type Clock } from '../scheduler/clock.ts';
import { cancelJobWork, WakeTimer } from '../scheduler/wake-timer.ts';
import { ClaudeRateLimitError, type ClaudeClient, type ClaudeRequest, type ClaudeResponse } from './claude-client.ts';

export interface ClaudeSchedulerOptions {
  client: ClaudeClient;
  concurrency: number;
  rpm?: number;
  itpm?: number;
  otpm?: number;
  maxRetries: number;
  backoff: BackoffPolicy;
  /** After a worker-level fault, accept work again after this long (undefined: only on resume()). */
  faultRetryMs?: number;
  burstMs?: number;
  clock?: Clock;
  random?: () => number;
  logger?: Logger;
}

/** What the caller expects a request to count against the input and output limits. */
export interface ClaudeEstimate {
  inputTokens: number;
  outputTokens: number;
}

export interface ClaudeSchedulerStats {
  requests: number;
  rateLimited: number;
  retries: number;
  failedRequests: number;
}

export interface ClaudeSchedulerState {
  rpm?: number;
  itpm?: number;
  otpm?: number;
  pausedForMs: number;
  requestsInFlight: number;
  queued: number;
  fault?: string;
}

interface Pending {
  jobKey: string;
  priority: number;
  request: ClaudeRequest;
  estimate: ClaudeEstimate;
  attempts: number;
  notBefore: number;
  cancelled: boolean;
  resolve: (r: ClaudeResponse) => void;
  reject: (e: unknown) => void;
}

export class ClaudeScheduler {
  private readonly opts: Required<Omit<ClaudeSchedulerOptions, 'rpm' | 'itpm' | 'otpm' | 'faultRetryMs'>> & Pick<ClaudeSchedulerOptions, 'faultRetryMs'>;
  private readonly jobs = new Map<string, { priority: number; items: Pending[] }>();
  private readonly sending = new Set<Pending>();
  private rpm: TokenBucket | undefined;
  private itpm: TokenBucket | undefined;
  private otpm: TokenBucket | undefined;
  private inFlight = 0;
  private pausedUntil = 0;
  private refusedInARow = 0;
  private cursor = 0;
  private answered = false;
  private fatal: WorkerFatalError | undefined;
  private fatalUntil = Infinity;
  private closed = false;
  private readonly timer: WakeTimer;
  /**
   * The item the buckets held back last time: it goes next, so a large request (a window's first, which writes
   * the cache) is not passed over again and again by smaller ones of other jobs.
   */
  private blocked: Pending | undefined;
  /** This worker's part of the Anthropic account's limits (rate-share.ts; 1: the whole limit). */
  private share = 1;
  readonly stats: ClaudeSchedulerStats = { requests: 0, rateLimited: 0, retries: 0, failedRequests: 0 };

  constructor(options: ClaudeSchedulerOptions) {
    this.opts = { burstMs: DEFAULT_BURST_MS, clock: systemClock, random: Math.random, logger: silentLogger, ...options };
    this.timer = new WakeTimer(this.opts.clock, () => this.pump());
    const now = this.opts.clock.now();
    if (options.rpm) this.rpm = new TokenBucket(options.rpm, now, this.opts.burstMs);
    if (options.itpm) this.itpm = new TokenBucket(options.itpm, now, this.opts.burstMs);
    if (options.otpm) this.otpm = new TokenBucket(options.otpm, now, this.opts.burstMs);
  }

  /** Sends one request for a job; resolves with Claude's answer, or rejects with a categorised error. */
  send(jobKey: string, priority: number, request: ClaudeRequest, estimate: ClaudeEstimate): Promise<ClaudeResponse> {
    this.expireFault();
    if (this.fatal) return Promise.reject(this.fatal);
    if (this.closed) return Promise.reject(new JobAbortedError('shutdown', 'Claude scheduler is shut down'));
    return new Promise((resolve, reject) => {
      let queue = this.jobs.get(jobKey);
      if (!queue) {
        queue = { priority, items: [] };
        this.jobs.set(jobKey, queue);
      }
      queue.items.push({ jobKey, priority, request, estimate, attempts: 0, notBefore: 0, cancelled: false, resolve, reject });
      this.pump();
    });
  }

  cancelJob(jobKey: string, reason: unknown): void {
    cancelJobWork(this.jobs, this.sending, jobKey, reason);
  }

  resume(): void {
    this.fatal = undefined;
    this.fatalUntil = Infinity;
    this.pump();
  }

  /** Whether anything waits to be sent or is in flight: this worker draws on the account's limits. */
  get hasDemand(): boolean {
    return this.inFlight > 0 || this.jobs.size > 0;
  }

  /** Draw `share` of the account's limits from now on (several workers on one account; 1: all of it). */
  setShare(share: number): void {
    if (share === this.share) return;
    const now = this.opts.clock.now();
    this.share = share;
    for (const bucket of [this.rpm, this.itpm, this.otpm]) bucket?.setShare(share, now);
    this.pump();
  }

  get isFatal(): boolean {
    this.expireFault();
    return this.fatal !== undefined;
  }

  state(): ClaudeSchedulerState {
    this.expireFault();
    let queued = 0;
    for (const q of this.jobs.values()) queued += q.items.length;
    return {
      rpm: this.rpm?.limitPerMinute,
      itpm: this.itpm?.limitPerMinute,
      otpm: this.otpm?.limitPerMinute,
      pausedForMs: Math.max(0, this.pausedUntil - this.opts.clock.now()),
      requestsInFlight: this.inFlight,
      queued,
      ...(this.fatal ? { fault: messageOf(this.fatal) } : {}),
    };
  }

  close(reason: unknown = new JobAbortedError('shutdown', 'Claude scheduler is shut down')): void {
    this.closed = true;
    this.timer.cancel();
    for (const key of [...this.jobs.keys()]) this.cancelJob(key, reason);
  }

  private expireFault(): void {
    if (this.fatal && this.opts.clock.now() >= this.fatalUntil) {
      this.fatal = undefined;
      this.fatalUntil = Infinity;
    }
  }

  private pump(): void {
    this.expireFault();
    if (this.fatal || this.closed) return;
    const unknownLimits = !this.answered && !this.rpm && !this.itpm && !this.otpm;
    const concurrency = unknownLimits ? 1 : this.opts.concurrency;
    while (this.inFlight < concurrency) {
      const now = this.opts.clock.now();
      if (now < this.pausedUntil) return this.wakeAt(this.pausedUntil);
      const reserved = this.blocked && this.isQueued(this.blocked) ? this.blocked : undefined;
      const picked = reserved ? { item: reserved } : this.pick(now);
      if (!picked) return;
      if ('wakeAt' in picked) return this.wakeAt(picked.wakeAt);
      const p = picked.item;
      const wait = Math.max(
        this.rpm?.waitMs(1, now) ?? 0,
        this.itpm?.waitMs(p.estimate.inputTokens, now) ?? 0,
        this.otpm?.waitMs(p.estimate.outputTokens, now) ?? 0,
      );
      if (wait > 0) {
        this.blocked = p;
        return this.wakeAt(now + wait);
      }
      this.blocked = undefined;
      this.rpm?.take(1, now);
      this.itpm?.take(p.estimate.inputTokens, now);
      this.otpm?.take(p.estimate.outputTokens, now);
      this.take(p);
      this.dispatch(p);
    }
  }

  /** The next item to send (highest priority, round-robin across jobs), or when the earliest becomes due. */
  private pick(now: number): { item: Pending } | { wakeAt: number } | undefined {
    if (this.jobs.size === 0) return undefined;
    const queues = [...this.jobs.values()].sort((a, b) => b.priority - a.priority);
    let wakeAt = Infinity;
    this.cursor++;
    for (const level of [...new Set(queues.map((q) => q.priority))]) {
      const same = queues.filter((q) => q.priority === level);
      for (let i = 0; i < same.length; i++) {
        const q = same[(i + this.cursor) % same.length];
        const due = q.items.find((p) => p.notBefore <= now);
        if (due) return { item: due };
        for (const p of q.items) wakeAt = Math.min(wakeAt, p.notBefore);
      }
    }
    return wakeAt === Infinity ? undefined : { wakeAt };
  }

  private isQueued(p: Pending): boolean {
    return !p.cancelled && (this.jobs.get(p.jobKey)?.items.includes(p) ?? false);
  }

  private take(p: Pending): void {
    const q = this.jobs.get(p.jobKey);
    if (!q) return;
    const i = q.items.indexOf(p);
    if (i >= 0) q.items.splice(i, 1);
    if (q.items.length === 0) this.jobs.delete(p.jobKey);
  }

  private requeue(p: Pending): void {
    if (p.cancelled) return;
    let q = this.jobs.get(p.jobKey);
    if (!q) {
      q = { priority: p.priority, items: [] };
      this.jobs.set(p.jobKey, q);
    }
    q.items.unshift(p);
  }

  private dispatch(p: Pending): void {
    this.inFlight++;
    this.sending.add(p);
    this.stats.requests++;
    this.opts.client
      .send(p.request)
      .then(
        (response) => {
          const now = this.opts.clock.now();
          this.refusedInARow = 0;
          // Correct the buckets from what the request really counted.
          const input = response.usage.inputTokens + response.usage.cacheWriteTokens;
          this.correct(this.itpm, input - p.estimate.inputTokens, now);
          this.correct(this.otpm, response.usage.outputTokens - p.estimate.outputTokens, now);
          this.adapt(response.rateLimit, now);
          if (!p.cancelled) p.resolve(response);
        },
        (error) => this.onFailure(p, error),
      )
      .finally(() => {
        this.answered = true;
        this.sending.delete(p);
        this.inFlight--;
        this.pump();
      });
  }

  private correct(bucket: TokenBucket | undefined, delta: number, now: number): void {
    if (!bucket || delta === 0) return;
    if (delta > 0) bucket.take(delta, now);
    else bucket.refund(-delta, now);
  }

  private onFailure(p: Pending, error: unknown): void {
    this.stats.failedRequests++;
    const now = this.opts.clock.now();
    if (p.cancelled) return;
    if (this.closed) return p.reject(new JobAbortedError('shutdown', 'Claude scheduler is shut down'));
    // A fault is in force: nothing will be sent until it clears, so nothing may wait in the queue for it.
    if (this.fatal && !(error instanceof WorkerFatalError)) return p.reject(this.fatal);
    if (error instanceof RateLimitError) {
      // A refused request is not counted by the provider: give back what it took, then adopt the provider's view.
      this.rpm?.refund(1, now);
      this.itpm?.refund(p.estimate.inputTokens, now);
      this.otpm?.refund(p.estimate.outputTokens, now);
      const limits = error instanceof ClaudeRateLimitError ? error.limits : undefined;
      if (limits) this.adapt(limits, now);
      this.stats.rateLimited++;
      this.refusedInARow++;
      const reset = limits ? exhaustedResetMs(limits) : undefined;
      const pause = error.retryAfterMs ?? reset ?? retryDelayMs(Math.min(this.refusedInARow, 6), this.opts.backoff, undefined, this.opts.random);
      this.pausedUntil = Math.max(this.pausedUntil, now + pause);
      if (limits?.requests?.remaining === 0) this.rpm?.drain(now, pause);
      if (limits?.inputTokens?.remaining === 0 || limits?.tokens?.remaining === 0) this.itpm?.drain(now, pause);
      if (limits?.outputTokens?.remaining === 0) this.otpm?.drain(now, pause);
      this.opts.logger.debug('Claude request rate limited; waiting', { pauseMs: pause });
      this.requeue(p);
      return;
    }
    if (error instanceof WorkerFatalError) {
      this.fatal = error;
      this.fatalUntil = this.opts.faultRetryMs === undefined ? Infinity : now + this.opts.faultRetryMs;
      this.opts.logger.error('🛑 Claude fault: no Claude requests until it is fixed', { error: messageOf(error), setting: error.setting });
      p.reject(error);
      for (const key of [...this.jobs.keys()]) this.cancelJob(key, error);
      // Requests of other jobs still in flight: their answers are not waited for (a retry could not be sent).
      for (const other of this.sending) {
        if (other !== p && !other.cancelled) {
          other.cancelled = true;
          other.reject(error);
        }
      }
      return;
    }
    if (error instanceof BadInputError || !(error instanceof RetryableError)) return p.reject(error);
    p.attempts++;
    if (p.attempts > this.opts.maxRetries) {
      p.reject(new RetryableError(`${messageOf(error)} (after ${p.attempts} tries)`, { cause: error, retryAfterMs: error.retryAfterMs }));
      return;
    }
    this.stats.retries++;
    p.notBefore = now + retryDelayMs(p.attempts, this.opts.backoff, error.retryAfterMs, this.opts.random);
    this.requeue(p);
  }

  private adapt(limits: AnthropicRateLimit, now: number): void {
    const sync = (bucket: TokenBucket | undefined, w: LimitWindow | undefined): TokenBucket | undefined => {
      if (!w || w.limit === undefined || w.limit <= 0) return bucket;
      let b = bucket;
      if (!b) {
        b = new TokenBucket(w.limit, now, this.opts.burstMs);
        b.setShare(this.share, now);
      }
      b.sync(w.limit, w.remaining, now);
      return b;
    };
    this.rpm = sync(this.rpm, limits.requests);
    this.itpm = sync(this.itpm, limits.inputTokens ?? limits.tokens);
    this.otpm = sync(this.otpm, limits.outputTokens);
  }

  private wakeAt(at: number): void {
    this.timer.wakeAt(at);
  }
}

/** The latest reset among the windows the headers show as exhausted (ms from now). */
function exhaustedResetMs(limits: AnthropicRateLimit): number | undefined {
  const resets = [limits.requests, limits.inputTokens, limits.outputTokens, limits.tokens]
    .filter((w): w is LimitWindow => w !== undefined && w.remaining === 0 && w.resetMs !== undefined)
    .map((w) => w.resetMs!);
  return resets.length === 0 ? undefined : Math.max(...resets);
}
