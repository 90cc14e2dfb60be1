/**
 * Pre-segmented input -> Segment[]. Pure.
 *
 * Shape: [{ "seq": 1, "text": "...", "speaker": "Ann", "start_ms": 0, "end_ms": 5200 }, ...]
 * (given as payload.segments, or as JSON in payload.text: an array or {"segments": [...]}).
 * seq: finite number (required); text: string (required); speaker: string, null or absent;
 * start_ms / end_ms: numbers from 0 to 2^53 - 1 (MAX_TIME_MS; rounded to whole ms), null or absent;
 * end_ms >= start_ms when both are given. Unknown fields are ignored.
 *
 * Order: by seq, then start_ms (untimed after timed), then position in the input.
 * Duplicate seq values are NOT an error: the rows are all kept, in that (seq, start_ms,
 * position) order, and a warning says so. Segments are not joined (each row is already an
 * utterance); blank texts are dropped; seq is renumbered 1..n.
 */
import { BadInputError } from '../errors.ts';
import type { Segment } from '../types.ts';
import { cleanSegmentText, describeValue, isRecord } from './clean-text.ts';
import { isStorableMs, MAX_TIME_MS } from './timestamps.ts';

interface Row {
  seq: number;
  text: string;
  speaker: string | null;
  startMs: number | null;
  endMs: number | null;
  position: number;
}

const MAX_LISTED = 5;

/** `value` is the array itself or an object holding it under "segments". */
export function parseSegmentsValue(value: unknown, source: string): { segments: Segment[]; warnings: string[] } {
  const list = Array.isArray(value) ? value : isRecord(value) && Array.isArray(value.segments) ? value.segments : null;
  if (list === null) {
    throw new BadInputError(`segments: expected ${source} to be an array or {"segments": [...]}, got ${describeValue(value)}`);
  }
  const rows = list.map((item, i) => readRow(item, i));
  const sorted = [...rows].sort(compareRows);
  const warnings = orderWarnings(rows, sorted);
  const segments: Segment[] = [];
  for (const row of sorted) {
    const text = cleanSegmentText(row.text);
    if (text === '') continue;
    segments.push({ seq: segments.length + 1, text, speaker: row.speaker, startMs: row.startMs, endMs: row.endMs });
  }
  return { segments, warnings };
}

function readRow(item: unknown, i: number): Row {
  const where = `segments[${i}]`;
  if (!isRecord(item)) throw new BadInputError(`${where}: expected an object, got ${describeValue(item)}`);
  if (typeof item.seq !== 'number' || !Number.isFinite(item.seq)) {
    throw new BadInputError(`${where}.seq: expected a number, got ${describeValue(item.seq)}`);
  }
  if (typeof item.text !== 'string') {
    throw new BadInputError(`${where}.text: expected a string, got ${describeValue(item.text)}`);
  }
  const speaker = item.speaker;
  if (speaker !== undefined && speaker !== null && typeof speaker !== 'string') {
    throw new BadInputError(`${where}.speaker: expected a string or null, got ${describeValue(speaker)}`);
  }
  const startMs = optionalMs(item.start_ms, `${where}.start_ms`);
  const endMs = optionalMs(item.end_ms, `${where}.end_ms`);
  if (startMs !== null && endMs !== null && endMs < startMs) {
    throw new BadInputError(`${where}: end_ms ${endMs} is before start_ms ${startMs}`);
  }
  const name = typeof speaker === 'string' ? cleanSegmentText(speaker) : '';
  return { seq: item.seq, text: item.text, speaker: name === '' ? null : name, startMs, endMs, position: i };
}

function optionalMs(value: unknown, where: string): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new BadInputError(`${where}: expected a non-negative number of milliseconds or null, got ${describeValue(value)}`);
  }
  const ms = Math.round(value);
  if (!isStorableMs(ms)) {
    throw new BadInputError(`${where}: ${value} is out of range (expected 0 to ${MAX_TIME_MS} milliseconds)`);
  }
  return ms;
}

function compareRows(a: Row, b: Row): number {
  if (a.seq !== b.seq) return a.seq - b.seq;
  if (a.startMs !== b.startMs) {
    if (a.startMs === null) return 1;
    if (b.startMs === null) return -1;
    return a.startMs - b.startMs;
  }
  return a.position - b.position;
}

function orderWarnings(rows: Row[], sorted: Row[]): string[] {
  const warnings: string[] = [];
  if (sorted.some((row, i) => row !== rows[i])) {
    warnings.push('segments: input was not in seq order; sorted by seq, then start_ms');
  }
  const duplicates: number[] = [];
  for (let i = 1; i < sorted.length; i += 1) {
    if (sorted[i].seq === sorted[i - 1].seq && duplicates.at(-1) !== sorted[i].seq) duplicates.push(sorted[i].seq);
  }
  if (duplicates.length > 0) {
    const listed = duplicates.slice(0, MAX_LISTED).join(', ') + (duplicates.length > MAX_LISTED ? ', …' : '');
    warnings.push(
      `segments: ${duplicates.length} duplicate seq values (${listed}) kept, ordered by seq, start_ms, then input position`,
    );
  }
  return warnings;
}
