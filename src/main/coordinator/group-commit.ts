/**
 * Group commit for one kind of job transition (start, complete): what the jobs in flight submit while a call is
 * running goes out together in the next call, one statement and one transaction for all of them, at most
 * maxInFlight calls at a time (a lone item too: the call is the same). When a call of several items fails,
 * each of its items is sent again alone: the transaction kept nothing, and one job's error (a lost lease, a bad
 * count) then reaches only that job, exactly as the single-job call reports it.
 */
export interface GroupCommitOptions<I, R> {
  /** The call for several items; resolves with each item's result by key. */
  many: (items: I[]) => Promise<Map<string, R>>;
  /** The call for one item, used after a call of several failed. */
  one: (item: I) => Promise<R>;
  /** The item's key in many's results (a job id); an item is never sent twice in one call. */
  key: (item: I) => string;
  /** What many is, for the error when it leaves an item out. */
  what: string;
  /** Items per call (default 64). */
  maxItems?: number;
  /** Calls in flight at once (default 1). */
  maxInFlight?: number;
}

interface Pending<I, R> {
  item: I;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
}

export class GroupCommit<I, R> {
  private readonly opts: GroupCommitOptions<I, R>;
  private pending: Pending<I, R>[] = [];
  private running = 0;
  /** Calls of `many`, items handled, and items sent again alone after a failed call. */
  readonly stats = { calls: 0, items: 0, retriedAlone: 0 };

  constructor(options: GroupCommitOptions<I, R>) {
    this.opts = options;
  }

  submit(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (this.running < (this.opts.maxInFlight ?? 1)) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running++;
    try {
      while (this.pending.length > 0) await this.send(this.take());
    } finally {
      this.running--;
    }
  }

  /** The oldest pending items, one per key, up to maxItems. */
  private take(): Pending<I, R>[] {
    const call: Pending<I, R>[] = [];
    const keys = new Set<string>();
    const rest: Pending<I, R>[] = [];
    const max = this.opts.maxItems ?? 64;
    for (const p of this.pending) {
      const key = this.opts.key(p.item);
      if (call.length < max && !keys.has(key)) {
        call.push(p);
        keys.add(key);
      } else {
        rest.push(p);
      }
    }
    this.pending = rest;
    return call;
  }

  private async send(call: Pending<I, R>[]): Promise<void> {
    this.stats.items += call.length;
    this.stats.calls++;
    let results: Map<string, R>;
    try {
      results = await this.opts.many(call.map((p) => p.item));
    } catch (error) {
      if (call.length === 1) {
        call[0].reject(error); // its own error: nothing to separate
        return;
      }
      this.stats.retriedAlone += call.length;
      await Promise.all(call.map((p) => this.alone(p)));
      return;
    }
    for (const p of call) {
      const key = this.opts.key(p.item);
      if (results.has(key)) p.resolve(results.get(key)!);
      else p.reject(new Error(`${this.opts.what} returned no result for ${key}`));
    }
  }

  private async alone(p: Pending<I, R>): Promise<void> {
    try {
      p.resolve(await this.opts.one(p.item));
    } catch (error) {
      p.reject(error);
    }
  }
}
