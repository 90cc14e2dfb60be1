/**
 * A rate-limit token bucket (requests/min or tokens/min) with continuous refill at limit/60,000 per ms.
 * Pure: the caller passes the time. It can be re-seeded from the provider's headers (limit, remaining).
 *
 * Capacity is the burst the bucket allows: by default one second's worth of the per-minute limit, so requests
 * go out at a steady rate rather than a minute's allowance at once. Providers meter "per minute" limits over
 * much shorter windows (a one-second burst is common), and a full-minute burst is refused by those; a steady
 * rate loses nothing on a long backfill. Pass burstMs = 60,000 for a true per-minute bucket.
 *
 * A share below 1 is this worker's part of a limit several workers draw on (one provider account): the bucket
 * refills at limit × share and holds that share of the burst, while the limit and the remaining count it is
 * synced with stay the account's.
 */
export const DEFAULT_BURST_MS = 1_000;

export class TokenBucket {
  private limit: number;
  private burstMs: number;
  private level: number;
  private updatedAt: number;
  private part = 1;

  constructor(limitPerMinute: number, nowMs: number, burstMs: number = DEFAULT_BURST_MS) {
    this.limit = limitPerMinute;
    this.burstMs = Math.min(60_000, Math.max(1, burstMs));
    this.level = this.capacity;
    this.updatedAt = nowMs;
  }

  get limitPerMinute(): number {
    return this.limit;
  }

  /** This worker's part of the limit (1: all of it). */
  get share(): number {
    return this.part;
  }

  /** The most the bucket holds: the largest amount one request can take without waiting for more than it. */
  get capacity(): number {
    return (this.limit * this.part * this.burstMs) / 60_000;
  }

  /** What the provider's bucket for the whole limit holds, as far as we know. */
  private get accountCapacity(): number {
    return (this.limit * this.burstMs) / 60_000;
  }

  /** Refill per ms. */
  private get rate(): number {
    return (this.limit * this.part) / 60_000;
  }

  private refill(nowMs: number): void {
    const elapsed = Math.max(0, nowMs - this.updatedAt);
    this.level = Math.min(this.capacity, this.level + elapsed * this.rate);
    this.updatedAt = nowMs;
  }

  /** Take `share` (0 < share ≤ 1) of the limit from now on; what the bucket holds is scaled with it. */
  setShare(share: number, nowMs: number): void {
    const next = Math.min(1, Math.max(1e-3, share));
    if (next === this.part) return;
    this.refill(nowMs);
    this.level = this.level > 0 ? (this.level / this.part) * next : this.level;
    this.part = next;
  }

  /** Milliseconds until `amount` is available (0 = now). Amounts above capacity wait for a full bucket. */
  waitMs(amount: number, nowMs: number): number {
    this.refill(nowMs);
    const need = Math.min(amount, this.capacity) - this.level;
    return need <= 0 ? 0 : Math.ceil(need / this.rate);
  }

  /** Takes `amount` (which may drive the level below zero: a request larger than capacity borrows ahead). */
  take(amount: number, nowMs: number): void {
    this.refill(nowMs);
    this.level -= amount;
  }

  /** Give back what a request that never reached the provider had taken. */
  refund(amount: number, nowMs: number): void {
    this.refill(nowMs);
    this.level = Math.min(this.capacity, this.level + amount);
  }

  /**
   * Adopt the provider's view: its limit, and never believe we have more left than it says. A remaining count
   * above our capacity reveals a larger provider bucket, which we then adopt as our burst.
   */
  sync(limit: number | undefined, remaining: number | undefined, nowMs: number): void {
    this.refill(nowMs);
    if (limit !== undefined && limit > 0 && limit !== this.limit) {
      this.level = (this.level / this.limit) * limit;
      this.limit = limit;
    }
    if (remaining !== undefined && remaining >= 0) {
      // The provider holds more than our burst: its bucket is larger (a true per-minute bucket, say). Grow ours
      // to what it shows, so a per-minute allowance is not left unused; it never shrinks below one second.
      if (remaining > this.accountCapacity) {
        this.burstMs = Math.min(60_000, (remaining * 60_000) / this.limit);
        this.level = Math.max(this.level, remaining * this.part);
      }
      this.level = Math.min(this.level, remaining);
    }
  }

  /** After a 429: nothing is left until the provider's reset (or retry-after) has passed. */
  drain(nowMs: number, forMs: number): void {
    this.refill(nowMs);
    this.level = Math.min(this.level, -forMs * this.rate);
  }
}
