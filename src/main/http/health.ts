/**
 * Liveness for GET /health: 200 while the claim loop and the heartbeats move and the event loop is not blocked;
 * 503 with the reasons otherwise. Cheap (no database), so a platform may ping it every few seconds.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { LoopLiveness } from '../coordinator/coordinator.ts';

export interface HealthReport {
  ok: boolean;
  reasons: string[];
  loopBusyMs: number | null;
  heartbeatAgeMs: number;
  activeJobs: number;
  /** The longest event-loop delay in the last window (ms). */
  eventLoopDelayMs: number;
}

export interface HealthOptions {
  liveness: () => LoopLiveness;
  /** A claim-loop step or a heartbeat gap longer than this is a stall. */
  stallMs: number;
  heartbeatMs: number;
  /** An event-loop delay longer than this (in the last window) is a stall. */
  maxEventLoopDelayMs: number;
}

const LAG_WINDOW_MS = 5_000;

export class HealthProbe {
  private readonly opts: HealthOptions;
  private readonly histogram: ReturnType<typeof monitorEventLoopDelay>;
  private previousWindowMaxMs = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(options: HealthOptions) {
    this.opts = options;
    this.histogram = monitorEventLoopDelay({ resolution: 20 });
  }

  start(): void {
    this.histogram.enable();
    this.timer = setInterval(() => {
      this.previousWindowMaxMs = this.histogram.max / 1e6;
      this.histogram.reset();
    }, LAG_WINDOW_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.histogram.disable();
  }

  report(): HealthReport {
    const live = this.opts.liveness();
    const delay = Math.max(this.previousWindowMaxMs, this.histogram.max / 1e6);
    const reasons: string[] = [];
    if (live.phase === 'stopped') reasons.push('the claim loop has stopped');
    if (live.loopBusyMs !== null && live.loopBusyMs > this.opts.stallMs) {
      reasons.push(`the claim loop has been stuck in one step for ${seconds(live.loopBusyMs)} (a database call that does not return?)`);
    }
    if (live.activeJobs > 0 && live.heartbeatAgeMs > this.opts.heartbeatMs + this.opts.stallMs) {
      reasons.push(`no heartbeat for ${seconds(live.heartbeatAgeMs)} with ${live.activeJobs} job(s) in flight (their leases will expire)`);
    }
    if (delay > this.opts.maxEventLoopDelayMs) reasons.push(`the event loop was blocked for ${seconds(delay)} in the last ${LAG_WINDOW_MS / 1000} s`);
    return { ok: reasons.length === 0, reasons, loopBusyMs: live.loopBusyMs, heartbeatAgeMs: live.heartbeatAgeMs, activeJobs: live.activeJobs, eventLoopDelayMs: Math.round(delay) };
  }
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
