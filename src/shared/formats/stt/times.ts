/**
 * Time fields of speech-to-text JSON, each service its own way, to whole milliseconds. Pure.
 * Every reader takes `where` (a JSON path) and throws BadInputError naming it; an absent value
 * (undefined / null) is null, so a service's untimed items (punctuation) pass through.
 */
import { BadInputError } from '../../errors.ts';
import { describeValue } from '../clean-text.ts';
import { isStorableMs, MAX_TIME_MS } from '../timestamps.ts';

/** Seconds as a number (Deepgram, Whisper, Rev.ai) or a decimal string (Amazon Transcribe: "0.860"). */
export function secondsMs(value: unknown, where: string): number | null {
  if (value === undefined || value === null) return null;
  const seconds = typeof value === 'string' && /^\s*\d+(?:\.\d*)?\s*$/.test(value) ? Number(value) : value;
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) {
    throw new BadInputError(`${where}: expected a non-negative number of seconds, got ${describeValue(value)}`);
  }
  return storable(Math.round(seconds * 1000), value, where);
}

/** Whole or fractional milliseconds as a number (AssemblyAI). */
export function millisecondsMs(value: unknown, where: string): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new BadInputError(`${where}: expected a non-negative number of milliseconds, got ${describeValue(value)}`);
  }
  return storable(Math.round(value), value, where);
}

/** 100-nanosecond ticks (Azure's offsetInTicks / durationInTicks; integers, or floats like 400000.0). */
export function ticksMs(value: unknown, where: string): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new BadInputError(`${where}: expected a non-negative number of 100 ns ticks, got ${describeValue(value)}`);
  }
  return storable(Math.round(value / 10_000), value, where);
}

const PROTO_DURATION = /^\s*(\d+(?:\.\d+)?)s\s*$/;

/**
 * Google's protobuf Duration: "1.300s" in JSON, or {seconds, nanos} (seconds possibly a string,
 * either part possibly missing: {} is zero, as protobuf omits default values).
 */
export function protoDurationMs(value: unknown, where: string): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') {
    const m = PROTO_DURATION.exec(value);
    if (m) return storable(Math.round(Number(m[1]) * 1000), value, where);
  } else if (typeof value === 'object' && !Array.isArray(value)) {
    const { seconds = 0, nanos = 0 } = value as { seconds?: unknown; nanos?: unknown };
    const s = typeof seconds === 'string' && /^\d+$/.test(seconds) ? Number(seconds) : seconds;
    if (typeof s === 'number' && Number.isFinite(s) && s >= 0 && typeof nanos === 'number' && Number.isFinite(nanos) && nanos >= 0) {
      return storable(Math.round(s * 1000 + nanos / 1e6), value, where);
    }
  }
  throw new BadInputError(`${where}: expected a duration like "1.300s" or {"seconds", "nanos"}, got ${describeValue(value)}`);
}

const ISO_DURATION = /^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

/** ISO 8601 durations as Azure writes them: "PT0.13S", "PT1M2.5S", "PT1H", "P1DT2H". */
export function isoDurationMs(value: unknown, where: string): number | null {
  if (value === undefined || value === null) return null;
  const m = typeof value === 'string' ? ISO_DURATION.exec(value.trim()) : null;
  if (!m || value === 'P' || value === 'PT') {
    throw new BadInputError(`${where}: expected an ISO 8601 duration like "PT1.5S", got ${describeValue(value)}`);
  }
  const [, d, h, min, s] = m.map((part) => (part === undefined ? 0 : Number(part)));
  return storable(Math.round((((d * 24 + h) * 60 + min) * 60 + s) * 1000), value, where);
}

function storable(ms: number, value: unknown, where: string): number {
  if (!isStorableMs(ms)) {
    throw new BadInputError(`${where}: ${describeValue(value)} is out of range (at most ${MAX_TIME_MS} ms)`);
  }
  return ms;
}

/** A word's or phrase's times, checked: the end may not be before the start. */
export function checkedSpan(startMs: number | null, endMs: number | null, where: string): { startMs: number | null; endMs: number | null } {
  if (startMs !== null && endMs !== null && endMs < startMs) {
    throw new BadInputError(`${where}: ends (${endMs} ms) before it starts (${startMs} ms)`);
  }
  return { startMs, endMs };
}
