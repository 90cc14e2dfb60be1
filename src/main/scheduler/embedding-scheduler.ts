/**
 * The embedding scheduler: one per worker, shared by every job in flight (ARCHITECTURE principle 5).
 * - packs chunks of all jobs into requests (RAG_EMBEDDING_BATCH inputs, ≤ 300,000 tokens, ≤ the TPM bucket);
 * - paces them with per-minute token buckets for requests and tokens, seeded from settings and adapted from
 *   x-ratelimit-* headers and 429s, and with a concurrency limit; with no limits configured, the first request
 *   goes alone, so its answer's headers size the rest before anything can overrun the provider's bucket;
 * - is fair: higher priority first, then round-robin across jobs, so one huge job does not starve small ones;
 * - treats rate limiting as backpressure: a 429 pauses sending (retry-after honoured) and never counts as a
 *   failed try, however long the provider throttles; a request the provider calls too large, or one refused
 *   again and again, lowers the request-size cap so batches shrink until they fit;
 * - retries transient failures (RetryableError) with backoff and jitter up to maxRetries; isolates the input a
 *   400 is about; on a worker-level fault rejects everything and refuses work until resume(); an error of no
 *   known type is a bug and is passed to its jobs at once, not retried.
 */
import { retryDelayMs, type BackoffPolicy } from '../../shared/backoff.ts';
import { BadInputError, JobAbortedError, messageOf, RateLimitError, RetryableError, WorkerFatalError } from '../../shared/errors.ts';
import type { RateLimitSnapshot } from '../../shared/rate-limit-headers.ts';
import { DEFAULT_BURST_MS, TokenBucket } from '../../shared/token-bucket.ts';
import type { Logger } from '../logging/logger.ts';
import { silentLogger } from '../logging/logger.ts';
import type { EmbeddingProvider } from '../providers/embedding-provider.ts';
import type { VectorLiteral } from '../stores/queue-store.ts';
import { systemClock, type Clock } from './clock.ts';
import { cancelJobWork, WakeTimer } from './wake-timer.ts';

export const API_MAX_INPUTS = 2048;
export const API_MAX_REQUEST_TOKENS = 300_000;
/** The token margin (see tokenReserve): this many ms of the limit, at most this share of the bucket. */
const TOKEN_RESERVE_MS = 25;
const TOKEN_RESERVE_SHARE = 0.05;
/** Accepted requests after which a learned request-size cap is raised by a quarter. */
const CAP_PROBE_AFTER = 20;

export interface EmbedItem {
  text: string;
  tokens: number;
}

export interface SchedulerOptions {
  provider: EmbeddingProvider;
  batchSize: number;
  concurrency: number;
  rpm?: number;
  tpm?: number;
  maxRetries: number;
  backoff: BackoffPolicy;
  maxRequestTokens?: number;
  /** Burst the rate buckets allow, in ms of the per-minute limit (default one second: a steady rate). */
  burstMs?: number;
  clock?: Clock;
  random?: () => number;
  logger?: Logger;
}

export interface SchedulerStats {
  requests: number;
  inputs: number;
  tokens: number;
  rateLimited: number;
  retries: number;
  failedRequests: number;
}

/** Told about every provider request and every wait on the rate limits (metrics). */
export interface SchedulerObserver {
  /** status: the HTTP status ("200", "429", "503"), or "timeout" / "network" / "error" when there was none. */
  request(r: { status: string; durationMs: number; inputs: number; tokens: number }): void;
  /** Wall time work waited, ready to send, on the rate limits (a pause after a 429, or the buckets). */
  rateLimitWait(ms: number): void;
}

/** What the status page shows of the scheduler. */
export interface SchedulerState {
  rpm?: number;
  tpm?: number;
  /** ms until a pause after a 429 ends (0: not paused). */
  pausedForMs: number;
  maxRequestTokens: number;
  /** This worker's part of the account's limits (1 unless other workers share the account). */
  share: number;
  requestsInFlight: number;
  queuedInputs: number;
  learnedFromHeaders: boolean;
}

interface Pending {
  item: EmbedItem;
  jobKey: string;
  priority: number;
  /** Set when the job was cancelled while this item was in a request: never retried, never resolved. */
  cancelled: boolean;
  attempts: number;
  notBefore: number;
  isolate: boolean;
  resolve: (v: VectorLiteral) => void;
  reject: (e: unknown) => void;
}

interface JobQueue {
  key: string;
  priority: number;
  items: Pending[];
}

export class EmbeddingScheduler {
  private readonly opts: Required<Omit<SchedulerOptions, 'rpm' | 'tpm'>>;
  private readonly jobs = new Map<string, JobQueue>();
  private readonly sending = new Set<Pending>();
  private rpm: TokenBucket | undefined;
  private tpm: TokenBucket | undefined;
  private inFlight = 0;
  private pausedUntil = 0;
  private cursor = 0;
  private fatal: unknown;
  private readonly timer: WakeTimer;
  private closed = false;
  /** Request-size cap in tokens learned from refusals (Infinity: none learned). */
  private learnedMaxTokens = Infinity;
  /** 429s in a row without a success in between. */
  private refusedInARow = 0;
  private acceptedSinceShrink = 0;
  /** Whether the provider has answered any request yet (until then, without configured limits, one at a time). */
  private answered = false;
  /** Since when ready work has been held back by the rate limits (undefined: it is not). */
  private waitingSince: number | undefined;
  /** This worker's part of the provider account's limits (rate-share.ts; 1: the whole limit). */
  private share = 1;
  observer: SchedulerObserver | undefined;
  readonly stats: SchedulerStats = { requests: 0, inputs: 0, tokens: 0, rateLimited: 0, retries: 0, failedRequests: 0 };

  constructor(options: SchedulerOptions) {
    this.opts = {
      maxRequestTokens: API_MAX_REQUEST_TOKENS,
      burstMs: DEFAULT_BURST_MS,
      clock: systemClock,
      random: Math.random,
      logger: silentLogger,
      ...options,
      batchSize: Math.min(options.batchSize, API_MAX_INPUTS),
    };
    this.timer = new WakeTimer(this.opts.clock, () => this.pump());
    const now = this.opts.clock.now();
    if (options.rpm) this.rpm = new TokenBucket(options.rpm, now, this.opts.burstMs);
    if (options.tpm) this.tpm = new TokenBucket(options.tpm, now, this.opts.burstMs);
  }

  get provider(): EmbeddingProvider {
    return this.opts.provider;
  }

  /** Embeds items for a job; resolves with vectors in the same order. */
  embed(jobKey: string, priority: number, items: EmbedItem[]): Promise<VectorLiteral[]> {
    if (this.fatal) return Promise.reject(this.fatal);
    if (this.closed) return Promise.reject(new JobAbortedError('shutdown', 'embedding scheduler is shut down'));
    if (items.length === 0) return Promise.resolve([]);
    let queue = this.jobs.get(jobKey);
    if (!queue) {
      queue = { key: jobKey, priority, items: [] };
      this.jobs.set(jobKey, queue);
    }
    const promises = items.map(
      (item) =>
        new Promise<VectorLiteral>((resolve, reject) => {
          queue.items.push({ item, jobKey, priority, cancelled: false, attempts: 0, notBefore: 0, isolate: false, resolve, reject });
        }),
    );
    this.pump();
    return Promise.all(promises);
  }

  /** Drops a job's queued items (cancelled, lease lost, shutting down); requests in flight finish unobserved. */
  cancelJob(jobKey: string, reason: unknown): void {
    cancelJobWork(this.jobs, this.sending, jobKey, reason);
  }

  /** After a worker-level fault has been fixed: accept work again. */
  resume(): void {
    this.fatal = undefined;
    this.pump();
  }

  get isFatal(): boolean {
    return this.fatal !== undefined;
  }

  get queuedItems(): number {
    let n = 0;
    for (const q of this.jobs.values()) n += q.items.length;
    return n;
  }

  get requestsInFlight(): number {
    return this.inFlight;
  }

  /** Whether anything waits to be sent or is in flight: this worker draws on the provider's limits. */
  get hasDemand(): boolean {
    return this.inFlight > 0 || this.jobs.size > 0;
  }

  /** Draw `share` of the provider's limits from now on (several workers on one account; 1: all of it). */
  setShare(share: number): void {
    if (share === this.share) return;
    const now = this.opts.clock.now();
    this.share = share;
    this.rpm?.setShare(share, now);
    this.tpm?.setShare(share, now);
    this.pump();
  }

  state(): SchedulerState {
    const now = this.opts.clock.now();
    return {
      ...this.limits(),
      pausedForMs: Math.max(0, this.pausedUntil - now),
      maxRequestTokens: this.maxRequestTokens,
      share: this.share,
      requestsInFlight: this.inFlight,
      queuedInputs: this.queuedItems,
      learnedFromHeaders: this.answered && (this.rpm !== undefined || this.tpm !== undefined),
    };
  }

  /** Current limits (learned or configured), for logs and metrics. */
  limits(): { rpm?: number; tpm?: number } {
    return { rpm: this.rpm?.limitPerMinute, tpm: this.tpm?.limitPerMinute };
  }

  /**
   * Tokens kept in hand before a request may go (never spent: the rate is unchanged). We take tokens when a
   * request leaves; the provider takes them when it gets to it, and a burst of requests reaches it spread out over
   * a few ms — refill it cannot bank while its bucket is full. Without a margin the last request of a burst can
   * find the provider a little short of what we counted (seen in bench f: 135 tokens short, one 429 per run).
   */
  private tokenReserve(): number {
    return this.tpm ? Math.min(this.tpm.capacity * TOKEN_RESERVE_SHARE, (this.tpm.limitPerMinute / 60_000) * TOKEN_RESERVE_MS) : 0;
  }

  /** Current request-size cap in tokens: the API's, what the token bucket holds, and what refusals taught. */
  get maxRequestTokens(): number {
    return Math.max(1, Math.floor(Math.min(this.opts.maxRequestTokens, this.tpm?.capacity ?? Infinity, this.learnedMaxTokens)));
  }

  close(reason: unknown = new JobAbortedError('shutdown', 'embedding scheduler is shut down')): void {
    this.closed = true;
    this.timer.cancel();
    for (const key of [...this.jobs.keys()]) this.cancelJob(key, reason);
  }

  private pump(): void {
    if (this.fatal || this.closed) return;
    const paced = this.opts.provider.remote;
    // Slow start: with nothing known about the provider's limits, a first fan-out of `concurrency` requests can
    // overrun its bucket before any header has told us its size. One request first; its answer (headers, or a
    // 429's) seeds the buckets, and then the full concurrency applies.
    const unknownLimits = paced && !this.answered && !this.rpm && !this.tpm;
    const concurrency = unknownLimits ? 1 : this.opts.concurrency;
    while (this.inFlight < concurrency) {
      const now = this.opts.clock.now();
      if (paced && now < this.pausedUntil) {
        if (this.jobs.size > 0) this.waitingSince ??= now;
        return this.wakeAt(this.pausedUntil);
      }
      const batch = this.pickBatch(now);
      if (!batch || batch.items.length === 0) this.endWait(now);
      if (!batch) return;
      if (batch.items.length === 0) return this.wakeAt(batch.wakeAt);
      if (paced) {
        const wait = Math.max(this.rpm?.waitMs(1, now) ?? 0, this.tpm?.waitMs(batch.tokens + this.tokenReserve(), now) ?? 0);
        if (wait > 0) {
          this.waitingSince ??= now;
          return this.wakeAt(now + wait);
        }
        this.rpm?.take(1, now);
        this.tpm?.take(batch.tokens, now);
      }
      this.endWait(now);
      this.take(batch.items);
      this.send(batch.items, batch.tokens);
    }
  }

  private endWait(now: number): void {
    if (this.waitingSince === undefined) return;
    this.observer?.rateLimitWait(now - this.waitingSince);
    this.waitingSince = undefined;
  }

  /** Chooses the next request's items without removing them. undefined: nothing queued. */
  private pickBatch(now: number): { items: Pending[]; tokens: number; wakeAt: number } | undefined {
    if (this.jobs.size === 0) return undefined;
    const maxTokens = this.maxRequestTokens;
    const byPriority = [...this.jobs.values()].sort((a, b) => b.priority - a.priority);
    const levels = [...new Set(byPriority.map((q) => q.priority))];
    const chosen: Pending[] = [];
    let tokens = 0;
    let wakeAt = Infinity;
    this.cursor++;
    for (const level of levels) {
      const queues = byPriority.filter((q) => q.priority === level);
      const offsets = new Map(queues.map((q) => [q, 0]));
      let progress = true;
      while (progress && chosen.length < this.opts.batchSize) {
        progress = false;
        for (let i = 0; i < queues.length && chosen.length < this.opts.batchSize; i++) {
          const q = queues[(i + this.cursor) % queues.length];
          const offset = offsets.get(q)!;
          const p = q.items[offset];
          if (!p) continue;
          if (p.notBefore > now) {
            wakeAt = Math.min(wakeAt, p.notBefore);
            continue;
          }
          if (p.isolate && chosen.length > 0) continue;
          if (chosen.length > 0 && (tokens + p.item.tokens > maxTokens || chosen[0].isolate)) continue;
          chosen.push(p);
          tokens += p.item.tokens;
          offsets.set(q, offset + 1);
          progress = true;
          if (p.isolate) return { items: chosen, tokens, wakeAt };
        }
      }
    }
    return { items: chosen, tokens, wakeAt };
  }

  private take(items: Pending[]): void {
    for (const p of items) {
      const q = this.jobs.get(p.jobKey);
      if (!q) continue;
      const i = q.items.indexOf(p);
      if (i >= 0) q.items.splice(i, 1);
      if (q.items.length === 0) this.jobs.delete(p.jobKey);
    }
  }

  private requeue(items: Pending[]): void {
    for (const p of [...items].reverse()) {
      if (p.cancelled) continue;
      let q = this.jobs.get(p.jobKey);
      if (!q) {
        q = { key: p.jobKey, priority: p.priority, items: [] };
        this.jobs.set(p.jobKey, q);
      }
      q.items.unshift(p);
    }
  }

  private send(items: Pending[], tokens: number): void {
    this.inFlight++;
    for (const p of items) this.sending.add(p);
    this.stats.requests++;
    const started = this.opts.clock.now();
    const report = (status: string) => this.observer?.request({ status, durationMs: this.opts.clock.now() - started, inputs: items.length, tokens });
    this.opts.provider
      .embed(items.map((p) => p.item.text))
      .then(
        (result) => {
          report('200');
          if (result.rateLimit) this.adapt(result.rateLimit);
          this.refusedInARow = 0;
          // Let a learned cap creep back up after a run of successes, so one burst of refusals does not
          // shrink requests for good (each probe may cost one 429).
          if (this.learnedMaxTokens !== Infinity && ++this.acceptedSinceShrink >= CAP_PROBE_AFTER) {
            this.acceptedSinceShrink = 0;
            this.learnedMaxTokens = Math.ceil(this.learnedMaxTokens * 1.25);
            if (this.learnedMaxTokens >= this.opts.maxRequestTokens) this.learnedMaxTokens = Infinity;
          }
          this.stats.inputs += items.length;
          this.stats.tokens += tokens;
          items.forEach((p, i) => {
            if (!p.cancelled) p.resolve(result.vectors[i]);
          });
        },
        (error) => {
          report(requestStatus(error));
          this.onFailure(items, tokens, error);
        },
      )
      .finally(() => {
        this.answered = true;
        for (const p of items) this.sending.delete(p);
        this.inFlight--;
        this.pump();
      });
  }

  private onFailure(all: Pending[], tokens: number, error: unknown): void {
    this.stats.failedRequests++;
    const items = all.filter((p) => !p.cancelled);
    const now = this.opts.clock.now();
    if (error instanceof RateLimitError) {
      // A refused request does not count against the limit: give back what we took, then adopt the provider's view.
      this.rpm?.refund(1, now);
      if (error.scope !== 'tokens') this.tpm?.refund(tokens, now);
      this.adapt(error.rateLimit);
    }
    if (this.closed || this.fatal) {
      // Nothing will be sent any more: settle now so no caller waits forever.
      const reason = this.fatal ?? new JobAbortedError('shutdown', 'embedding scheduler is shut down');
      for (const p of items) p.reject(reason);
      return;
    }
    if (error instanceof WorkerFatalError) {
      this.fatal = error;
      this.opts.logger.error('🛑 Embedding provider fault: stopping embedding until it is fixed', { error: messageOf(error), setting: error.setting });
      for (const p of items) p.reject(error);
      for (const key of [...this.jobs.keys()]) this.cancelJob(key, error);
      return;
    }
    if (error instanceof BadInputError) {
      if (items.length > 1) {
        // Find which input the provider objects to: resend each alone.
        for (const p of items) p.isolate = true;
        this.requeue(items);
      } else if (items.length === 1) {
        items[0].reject(new BadInputError(`${messageOf(error)}; chunk text starts ${JSON.stringify(items[0].item.text.slice(0, 60))}`, { cause: error }));
      }
      return;
    }
    if (error instanceof RateLimitError) return this.onRateLimited(items, tokens, error, now);
    if (!(error instanceof RetryableError)) {
      // Not a provider answer we know: a bug. Retrying would only repeat it.
      for (const p of items) p.reject(error);
      return;
    }
    const retry: Pending[] = [];
    for (const p of items) {
      p.attempts++;
      if (p.attempts > this.opts.maxRetries) {
        p.reject(new RetryableError(`${messageOf(error)} (after ${p.attempts} tries)`, { cause: error, retryAfterMs: error.retryAfterMs }));
      } else {
        p.notBefore = now + retryDelayMs(p.attempts, this.opts.backoff, error.retryAfterMs, this.opts.random);
        retry.push(p);
      }
    }
    if (retry.length > 0) {
      this.stats.retries++;
      this.opts.logger.debug('Embedding request failed; retrying', { error: messageOf(error), inputs: retry.length, attempt: retry[0].attempts });
      this.requeue(retry);
    }
  }

  /**
   * Backpressure: pause everything until the provider's retry-after (or a backoff), never counting a try.
   * A request too large for the limit, or refused twice in a row, is sent again in smaller pieces.
   */
  private onRateLimited(items: Pending[], tokens: number, error: RateLimitError, now: number): void {
    this.stats.rateLimited++;
    this.refusedInARow++;
    const pause = error.retryAfterMs ?? retryDelayMs(Math.min(this.refusedInARow, 6), this.opts.backoff, undefined, this.opts.random);
    this.pausedUntil = Math.max(this.pausedUntil, now + pause);
    if (error.scope === 'tokens' || error.rateLimit.remainingTokens === 0) this.tpm?.drain(now, pause);
    if (error.scope === 'requests' || error.rateLimit.remainingRequests === 0) this.rpm?.drain(now, pause);
    // Smaller requests help only against a token limit: against the request rate they would make it worse (more
    // requests for the same chunks). So refusals on requests per minute never shrink the batches.
    const shrink = error.requestTooLarge || (this.refusedInARow >= 2 && error.scope !== 'requests');
    if (shrink && items.length > 1) {
      this.learnedMaxTokens = Math.max(1, Math.floor(tokens / 2));
      this.acceptedSinceShrink = 0;
    } else if (error.requestTooLarge && items.length === 1) {
      items[0].reject(
        new BadInputError(
          `the embedding provider's token limit is smaller than this one chunk (${tokens} tokens; ${error.message}): lower RAG_CHUNK_MAX_TOKENS or raise the account's limit`,
          { cause: error },
        ),
      );
      return;
    }
    this.opts.logger.debug('Embedding request rate limited; waiting', { pauseMs: pause, inputs: items.length, maxRequestTokens: this.maxRequestTokens });
    this.requeue(items);
  }

  private adapt(snapshot: RateLimitSnapshot): void {
    const now = this.opts.clock.now();
    if (snapshot.limitRequests !== undefined) {
      this.rpm ??= this.newBucket(snapshot.limitRequests, now);
      this.rpm.sync(snapshot.limitRequests, snapshot.remainingRequests, now);
    }
    if (snapshot.limitTokens !== undefined) {
      this.tpm ??= this.newBucket(snapshot.limitTokens, now);
      this.tpm.sync(snapshot.limitTokens, snapshot.remainingTokens, now);
    }
  }

  private newBucket(limit: number, now: number): TokenBucket {
    const bucket = new TokenBucket(limit, now, this.opts.burstMs);
    bucket.setShare(this.share, now);
    return bucket;
  }

  private wakeAt(at: number): void {
    this.timer.wakeAt(at);
  }
}

/** The HTTP status of a failed request, or what kind of failure it was when there was no answer. */
function requestStatus(error: unknown): string {
  const own = (error as { status?: unknown })?.status;
  const status = typeof own === 'number' ? own : (error as { cause?: { status?: unknown } })?.cause?.status;
  if (typeof status === 'number') return String(status);
  const message = messageOf(error);
  if (/timed out|timeout/i.test(message)) return 'timeout';
  if (error instanceof RetryableError) return 'network';
  return 'error';
}
