/**
 * Splitting a provider account's rate limit among the workers that draw on it, through Postgres.
 *
 * Each worker learns the account's whole limit from the provider's headers; several workers on one key would
 * each send at all of it, and only the provider's 429s would share the account. Instead, a worker with work for
 * an account keeps a row in rag_rate_shares fresh (rag_rate_share(), four times a second) and draws 1/N of the
 * limit, N being the workers of that account seen within the last few seconds. A worker whose demand ends
 * withdraws at once; one that dies drops out when its row goes stale, and the others take its part back.
 * Idle workers make no calls. A failed call keeps the last share (the provider's headers and 429s still guard
 * the account) and is tried again at the next tick.
 */
import { messageOf } from '../../shared/errors.ts';
import type { Clock } from '../../shared/clock.ts';
import type { Logger } from '../logging/logger.ts';
import { systemClock } from './clock.ts';

/** A scheduler whose draw on an account can be scaled. */
export interface RateSharer {
  readonly hasDemand: boolean;
  setShare(share: number): void;
}

export interface SharedAccount {
  /** What the logs call it: "embeddings", "claude". */
  name: string;
  /** accountFingerprint() of the service, endpoint and key. */
  account: string;
  target: RateSharer;
}

export interface RateShareStore {
  rateShare(account: string, workerId: string, active: boolean, ttlSeconds: number): Promise<number>;
}

export interface RateShareOptions {
  store: RateShareStore;
  workerId: string;
  accounts: SharedAccount[];
  /** How often demand is looked at (no database call unless it changed or a refresh is due). */
  checkMs?: number;
  /** How often an active worker refreshes its row and re-reads N. */
  refreshMs?: number;
  /** Rows older than this are other workers that stopped without withdrawing. */
  ttlSeconds?: number;
  /** Demand must have been gone this long before the worker withdraws (a job's gap between batches is not an end). */
  idleAfterMs?: number;
  clock?: Clock;
  logger: Logger;
}

interface AccountState {
  spec: SharedAccount;
  active: boolean;
  lastDemandAt: number;
  refreshedAt: number;
  workers: number;
  calling: boolean;
  failing: boolean;
}

export class RateShare {
  private readonly opts: Required<Omit<RateShareOptions, 'clock'>> & { clock: Clock };
  private readonly states: AccountState[];
  private cancel: (() => void) | undefined;
  private stopped = false;

  constructor(options: RateShareOptions) {
    this.opts = { checkMs: 50, refreshMs: 250, ttlSeconds: 5, idleAfterMs: 500, clock: systemClock, ...options };
    this.states = options.accounts.map((spec) => ({ spec, active: false, lastDemandAt: -Infinity, refreshedAt: -Infinity, workers: 1, calling: false, failing: false }));
  }

  start(): void {
    if (this.states.length === 0 || this.cancel || this.stopped) return;
    const tick = () => {
      if (this.stopped) return;
      for (const state of this.states) void this.check(state);
      this.cancel = this.opts.clock.setTimer(tick, this.opts.checkMs);
    };
    tick();
  }

  /** Stops the checks and withdraws from every account this worker was drawing on. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.cancel?.();
    this.cancel = undefined;
    await Promise.all(
      this.states.filter((s) => s.active).map(async (s) => {
        s.active = false;
        try {
          await this.opts.store.rateShare(s.spec.account, this.opts.workerId, false, this.opts.ttlSeconds);
        } catch {
          // Its row goes stale within ttlSeconds.
        }
      }),
    );
  }

  /** Workers sharing each account as last seen (for the status page and tests). */
  snapshot(): { name: string; active: boolean; workers: number }[] {
    return this.states.map((s) => ({ name: s.spec.name, active: s.active, workers: s.workers }));
  }

  private async check(state: AccountState): Promise<void> {
    if (state.calling) return;
    const now = this.opts.clock.now();
    if (state.spec.target.hasDemand) state.lastDemandAt = now;
    const wanted = now - state.lastDemandAt < this.opts.idleAfterMs;
    // After a failed call, the next try waits for the refresh interval rather than the next check.
    const refreshDue = now - state.refreshedAt >= this.opts.refreshMs;
    const due = wanted && ((!state.active && !state.failing) || refreshDue);
    const withdraw = !wanted && state.active && (!state.failing || refreshDue);
    if (!due && !withdraw) return;
    state.calling = true;
    try {
      const workers = await this.opts.store.rateShare(state.spec.account, this.opts.workerId, wanted, this.opts.ttlSeconds);
      if (this.stopped) return;
      state.refreshedAt = this.opts.clock.now();
      state.active = wanted;
      if (state.failing) this.opts.logger.info(`⚖️  Rate share for ${state.spec.name} reachable again`, { event: 'rate_share_recovered', account: state.spec.name });
      state.failing = false;
      const next = wanted ? Math.max(1, workers) : 1;
      if (next !== state.workers) {
        this.opts.logger.info(
          next > 1
            ? `⚖️  ${next} workers share the ${state.spec.name} account: this one draws 1/${next} of its rate limit`
            : `⚖️  This worker draws all of the ${state.spec.name} account's rate limit`,
          { event: 'rate_share', account: state.spec.name, workers: next },
        );
      }
      state.workers = next;
      state.spec.target.setShare(1 / next);
    } catch (error) {
      if (!state.failing) {
        this.opts.logger.warn(`⚖️  Could not share the ${state.spec.name} rate limit through the database (${messageOf(error)}); keeping 1/${state.workers}`, {
          event: 'rate_share_failed',
          account: state.spec.name,
          error: messageOf(error),
        });
      }
      state.failing = true;
      state.refreshedAt = this.opts.clock.now();
    } finally {
      state.calling = false;
    }
  }
}
