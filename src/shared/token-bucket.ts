/**
 * A per-minute token bucket (requests/min or tokens/min) with continuous refill, the way OpenAI meters:
 * capacity = the per-minute limit, refilling limit/60,000 per ms. Pure: the caller passes the time.
 * It can be re-seeded from the provider's headers (limit, remaining, time to full reset).
 */
export class TokenBucket {
  private capacity: number;
  private level: number;
  private updatedAt: number;

  constructor(limitPerMinute: number, nowMs: number) {
    this.capacity = limitPerMinute;
    this.level = limitPerMinute;
    this.updatedAt = nowMs;
  }

  get limitPerMinute(): number {
    return this.capacity;
  }

  private refill(nowMs: number): void {
    const elapsed = Math.max(0, nowMs - this.updatedAt);
    this.level = Math.min(this.capacity, this.level + (elapsed * this.capacity) / 60_000);
    this.updatedAt = nowMs;
  }

  /** Milliseconds until `amount` is available (0 = now). Amounts above capacity wait for a full bucket. */
  waitMs(amount: number, nowMs: number): number {
    this.refill(nowMs);
    const need = Math.min(amount, this.capacity) - this.level;
    return need <= 0 ? 0 : Math.ceil((need * 60_000) / this.capacity);
  }

  take(amount: number, nowMs: number): void {
    this.refill(nowMs);
    this.level -= Math.min(amount, this.capacity);
  }

  /** Give back what a request that never reached the provider had taken. */
  refund(amount: number, nowMs: number): void {
    this.refill(nowMs);
    this.level = Math.min(this.capacity, this.level + amount);
  }

  /** Adopt the provider's view: its limit, and never believe we have more left than it says. */
  sync(limit: number | undefined, remaining: number | undefined, nowMs: number): void {
    this.refill(nowMs);
    if (limit !== undefined && limit > 0 && limit !== this.capacity) {
      this.level = (this.level / this.capacity) * limit;
      this.capacity = limit;
    }
    if (remaining !== undefined && remaining >= 0) this.level = Math.min(this.level, remaining);
  }

  /** After a 429: nothing is left until the provider's reset (or retry-after) has passed. */
  drain(nowMs: number, forMs: number): void {
    this.refill(nowMs);
    this.level = Math.min(this.level, -(forMs * this.capacity) / 60_000);
  }
}
