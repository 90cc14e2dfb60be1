/**
 * What the embedding and Claude schedulers share about waiting: one timer that fires at the earliest time asked
 * for (a later request never postpones an earlier one), and dropping a job's queued and in-flight work.
 */
import type { Clock } from './clock.ts';

export class WakeTimer {
  private readonly clock: Clock;
  private readonly fire: () => void;
  private cancelTimer: (() => void) | undefined;
  private timerAt = Infinity;

  constructor(clock: Clock, fire: () => void) {
    this.clock = clock;
    this.fire = fire;
  }

  /** Fire at `at` (clock ms), unless the timer is already set to fire sooner. */
  wakeAt(at: number): void {
    if (at === Infinity || at >= this.timerAt) return;
    this.cancelTimer?.();
    this.timerAt = at;
    this.cancelTimer = this.clock.setTimer(() => {
      this.timerAt = Infinity;
      this.cancelTimer = undefined;
      this.fire();
    }, Math.max(0, at - this.clock.now()));
  }

  cancel(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    this.timerAt = Infinity;
  }
}

/** A unit of queued work that belongs to a job and can be rejected. */
export interface JobWork {
  jobKey: string;
  /** Set when the job was cancelled while this was in a request: never retried, never resolved. */
  cancelled: boolean;
  reject: (e: unknown) => void;
}

/** Rejects a job's work: what is in a request now (marked cancelled) and what is queued (removed). */
export function cancelJobWork<W extends JobWork>(jobs: Map<string, { items: W[] }>, sending: Iterable<W>, jobKey: string, reason: unknown): void {
  for (const p of sending) {
    if (p.jobKey === jobKey && !p.cancelled) {
      p.cancelled = true;
      p.reject(reason);
    }
  }
  const queue = jobs.get(jobKey);
  if (!queue) return;
  jobs.delete(jobKey);
  for (const p of queue.items) p.reject(reason);
}
