/**
 * Whisper / faster-whisper / WhisperX JSON -> Segment[]. Pure.
 *
 * Accepts `{ segments: [{ start, end, text, speaker? }, ...], ... }` (times in SECONDS, floats)
 * or a top-level array of such segments. Other fields (id, seek, tokens, words, avg_logprob,
 * ...) are ignored. A `{ text }` object without segments (the OpenAI API's plain json response)
 * becomes one untimed segment, with a warning. Times are rounded to whole milliseconds and must be
 * from 0 to MAX_TIME_MS (2^53 - 1 ms, see timestamps.ts).
 * With speakers (WhisperX diarisation) a speaker's consecutive segments are joined and a
 * segment without a speaker continues the previous one; without speakers one segment each.
 * When the segments' words[] carry speakers of their own (WhisperX assigns them per word), the
 * words are read instead, so a speaker change inside a segment is kept (stt/words.ts rules).
 */
import { BadInputError } from '../errors.ts';
import type { Segment } from '../types.ts';
import { describeValue, isRecord, oneLine } from './clean-text.ts';
import { mergeCues, type Cue } from './merge-cues.ts';
import { isStorableMs, MAX_TIME_MS } from './timestamps.ts';
import { whisperWordsWithSpeakers } from './stt/word-list.ts';
import { wordsToSegments } from './stt/words.ts';

/** JSON.parse with the BadInputError this project wants ("<format>: text is not JSON: ..."). */
export function parseJsonText(text: string, format: string): unknown {
  try {
    return JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new BadInputError(`${format}: text is not JSON: ${oneLine(reason, 120)}`);
  }
}

/** True when `value` has the shape of a Whisper result: {segments:[{start,end}...]} or [{start,end}...]. */
export function looksLikeWhisper(value: unknown): boolean {
  const list = Array.isArray(value) ? value : isRecord(value) ? value.segments : undefined;
  if (!Array.isArray(list) || list.length === 0) return false;
  const first: unknown = list[0];
  return isRecord(first) && typeof first.start === 'number' && typeof first.end === 'number';
}

export function parseWhisper(text: string): { segments: Segment[]; warnings: string[] } {
  return parseWhisperValue(parseJsonText(text, 'whisper'));
}

export function parseWhisperValue(value: unknown): { segments: Segment[]; warnings: string[] } {
  if (isRecord(value) && value.segments === undefined && typeof value.text === 'string') {
    const warning = 'whisper: no "segments" array; used the top-level "text" as one segment without timestamps';
    return { segments: mergeCues([{ text: value.text, speaker: null, startMs: null, endMs: null }], { inheritSpeaker: false }), warnings: [warning] };
  }
  const list = Array.isArray(value) ? value : isRecord(value) ? value.segments : value;
  if (!Array.isArray(list)) {
    const got = isRecord(value) ? `an object whose "segments" is ${describeValue(value.segments)}` : describeValue(value);
    throw new BadInputError(`whisper: expected {"segments": [{"start", "end", "text"}, ...]}, got ${got}`);
  }
  const worded = whisperWordsWithSpeakers(list);
  if (worded !== null) return { segments: wordsToSegments(worded), warnings: [] };
  const cues = list.map((item, i) => readSegment(item, `whisper: segments[${i}]`));
  const hasSpeakers = cues.some((cue) => cue.speaker !== null);
  return { segments: mergeCues(cues, { inheritSpeaker: hasSpeakers }), warnings: [] };
}

function readSegment(item: unknown, where: string): Cue {
  if (!isRecord(item)) throw new BadInputError(`${where}: expected an object, got ${describeValue(item)}`);
  const startMs = seconds(item.start, `${where}.start`);
  const endMs = seconds(item.end, `${where}.end`);
  if (endMs < startMs) {
    throw new BadInputError(`${where}: end ${item.end} is before start ${item.start} (seconds)`);
  }
  if (typeof item.text !== 'string') {
    throw new BadInputError(`${where}.text: expected a string, got ${describeValue(item.text)}`);
  }
  const speaker = item.speaker;
  if (speaker !== undefined && speaker !== null && typeof speaker !== 'string') {
    throw new BadInputError(`${where}.speaker: expected a string or null, got ${describeValue(speaker)}`);
  }
  return { text: item.text, speaker: speaker ?? null, startMs, endMs };
}

/** MAX_TIME_MS in seconds, written exactly ("9007199254740.991"; MAX_TIME_MS / 1000 prints one digit short). */
const MAX_SECONDS = `${Math.floor(MAX_TIME_MS / 1000)}.${String(MAX_TIME_MS % 1000).padStart(3, '0')}`;

function seconds(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new BadInputError(`${where}: expected a non-negative number of seconds, got ${describeValue(value)}`);
  }
  const ms = Math.round(value * 1000);
  if (!isStorableMs(ms)) {
    throw new BadInputError(`${where}: ${value} is out of range (expected 0 to ${MAX_SECONDS} seconds)`);
  }
  return ms;
}
