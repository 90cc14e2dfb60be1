/** Clock timestamps of cue formats (VTT, SRT, stamped plain text). Pure. */
import { BadInputError } from '../errors.ts';
import { quote } from './clean-text.ts';

// [h+:]m:s[.fff] — hours optional and unbounded; minutes and seconds 1-2 digits (Teams writes
// "0:0:3.490" and "0:8:44.690"); fraction after "." or "," (SRT), 1-9 digits.
const CLOCK = /^(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:[.,](\d{1,9}))?$/;

/**
 * Milliseconds of a clock timestamp, or null when it is not one (bad shape, minutes/seconds >= 60).
 *
 * The fraction is a decimal fraction of a second ("01.5" = 1.500 s), except in the unpadded
 * style Teams writes, where a short fraction is a plain millisecond count: Teams prints
 * "0:4:6.80 --> 0:4:6.530" for a cue from 6.080 s to 6.530 s (read as decimals it would end
 * before it starts). Unpadded style = some field written with one digit ("0:", ":4:", ":6.").
 */
export function parseClock(raw: string): number | null {
  const m = CLOCK.exec(raw.trim());
  if (!m) return null;
  const [, h, min, sec, frac] = m;
  const minutes = Number(min);
  const seconds = Number(sec);
  if (minutes >= 60 || seconds >= 60) return null;
  const unpadded = h?.length === 1 || min.length === 1 || sec.length === 1;
  let fraction = 0;
  if (frac !== undefined) {
    fraction = unpadded && frac.length < 3 ? Number(frac) : Math.round(Number(`0.${frac}`) * 1000);
  }
  return ((Number(h ?? 0) * 60 + minutes) * 60 + seconds) * 1000 + fraction;
}

/**
 * The largest time a transcript may carry, in milliseconds: 2^53 - 1 (Number.MAX_SAFE_INTEGER, about 285,000
 * years). Chunk times are stored in bigint columns (rag_chunks.start_ms / end_ms, which hold up to 2^63 - 1) and
 * computed in JavaScript, which holds whole numbers exactly only up to 2^53 - 1. A time above this (1e20 in a
 * segments file, "99999999999:00:00.000" in a VTT) is bad input, caught while parsing: otherwise it fails later
 * at the database (bigint out of range) on every attempt.
 */
export const MAX_TIME_MS = Number.MAX_SAFE_INTEGER;

/** True for a whole number of milliseconds from 0 to MAX_TIME_MS. */
export function isStorableMs(ms: number): boolean {
  return Number.isSafeInteger(ms) && ms >= 0;
}

/** 3723004 -> "01:02:03.004" (for messages). */
export function formatMs(ms: number): string {
  const pad = (n: number, width = 2): string => String(n).padStart(width, '0');
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor(ms / 60_000) % 60;
  const seconds = Math.floor(ms / 1000) % 60;
  return `${pad(hours)}:${pad(minutes)}:${pad(seconds)}.${pad(ms % 1000, 3)}`;
}

export interface CueTiming {
  startMs: number;
  endMs: number;
  /** Whatever follows the end timestamp (VTT cue settings such as "align:start position:0%"). */
  settings: string;
}

const ARROW = '-->';

/** True when the line is meant as a timing line (contains "-->"); it may still be malformed. */
export function isTimingLine(line: string): boolean {
  return line.includes(ARROW);
}

/**
 * Parses "start --> end [settings]". `where` prefixes errors, e.g. `vtt: cue 17 (line 52)`.
 * Throws BadInputError on a bad timestamp, one past MAX_TIME_MS, or an end before the start.
 */
export function parseCueTiming(line: string, where: string): CueTiming {
  const arrow = line.indexOf(ARROW);
  const startRaw = line.slice(0, arrow).trim();
  const rest = line.slice(arrow + ARROW.length).trim();
  const endRaw = rest.split(/\s+/, 1)[0] ?? '';
  const settings = rest.slice(endRaw.length).trim();
  const startMs = parseClock(startRaw);
  if (startMs === null) throw new BadInputError(`${where}: bad timestamp ${quote(startRaw)}`);
  assertStorable(startMs, startRaw, where);
  const endMs = parseClock(endRaw);
  if (endMs === null) {
    const shown = endRaw === '' ? 'missing end timestamp after "-->"' : `bad timestamp ${quote(endRaw)}`;
    throw new BadInputError(`${where}: ${shown}`);
  }
  assertStorable(endMs, endRaw, where);
  if (endMs < startMs) {
    throw new BadInputError(`${where}: end ${formatMs(endMs)} is before start ${formatMs(startMs)}`);
  }
  return { startMs, endMs, settings };
}

function assertStorable(ms: number, raw: string, where: string): void {
  if (!isStorableMs(ms)) {
    throw new BadInputError(`${where}: timestamp ${quote(raw)} is out of range (expected at most ${formatMs(MAX_TIME_MS)})`);
  }
}
