/** Durations as people type them on a command line ("30d", "12h", "90m", "45s", "2w", "1d12h"). Pure. */
const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** Seconds in `text`, or throws an Error naming the expected form. */
export function parseDurationSeconds(text: string, what = 'duration'): number {
  const trimmed = text.trim().toLowerCase();
  const parts = [...trimmed.matchAll(/(\d+(?:\.\d+)?)\s*([smhdw])/g)];
  const consumed = parts.map((p) => p[0]).join('');
  if (parts.length === 0 || consumed.replace(/\s/g, '') !== trimmed.replace(/\s/g, '')) {
    throw new Error(`${what}: expected a duration like 30d, 12h, 90m or 1d12h (units s, m, h, d, w), got ${JSON.stringify(text.slice(0, 40))}`);
  }
  return parts.reduce((total, [, n, unit]) => total + Number(n) * UNITS[unit], 0);
}
