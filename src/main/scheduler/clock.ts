/** The system time source; tests pass a fake clock (test/support/fake-clock.ts) instead. */
import type { Clock } from '../../shared/clock.ts';

export type { Clock } from '../../shared/clock.ts';

export const systemClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
  setTimer(fn, ms) {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};
