/**
 * Word-level speech-to-text output -> Segment[], the way a person reads a transcript. Pure.
 *
 * A new segment starts:
 * - at every speaker change (and where the source starts a new turn: `breakBefore`);
 * - at a pause of PAUSE_BREAK_MS or more between one word's end and the next word's start;
 * - at a sentence end (. ? ! … and CJK 。！？, before closing quotes / brackets) once the
 *   segment spans SENTENCE_BREAK_MS;
 * - before any word once the segment spans MAX_SEGMENT_MS (text without punctuation).
 * Segment text is the words joined with one space (none before a word with spaceBefore false,
 * as "co" "-founder"), in the service's punctuated form; times are the first word's start and
 * the last word's end (words without times contribute none). Words with no visible text are
 * dropped; speakers are kept exactly as given; a word with neither times nor a speaker stays in
 * the turn it is in.
 */
import type { Segment } from '../../types.ts';
import { cleanSegmentText } from '../clean-text.ts';

export interface Word {
  /** As displayed: punctuated and capitalised where the service provides that form. */
  text: string;
  startMs: number | null;
  endMs: number | null;
  speaker: string | null;
  /** False when the word joins the previous one with no space (punctuation, hyphen parts). Default true. */
  spaceBefore?: boolean;
  /** The source starts a new turn here (a new monologue / utterance / phrase). */
  breakBefore?: boolean;
}

/** A silence at least this long starts a new segment. */
export const PAUSE_BREAK_MS = 2_000;
/** A sentence end starts a new segment once the segment is this long. */
export const SENTENCE_BREAK_MS = 30_000;
/** Any word starts a new segment once the segment is this long (unpunctuated speech). */
export const MAX_SEGMENT_MS = 90_000;

const SENTENCE_END = /[.?!…。！？]["'”’)\]]*$/;

interface Open {
  text: string;
  speaker: string | null;
  startMs: number | null;
  endMs: number | null;
  /** End of the last word that had one: the reference for pauses. */
  lastEndMs: number | null;
  lastText: string;
}

export function wordsToSegments(words: Iterable<Word>): Segment[] {
  const segments: Segment[] = [];
  let open: Open | null = null;
  const close = (): void => {
    if (open === null) return;
    const text = cleanSegmentText(open.text);
    if (text !== '') segments.push({ seq: segments.length + 1, text, speaker: open.speaker, startMs: open.startMs, endMs: open.endMs });
    open = null;
  };
  for (const word of words) {
    const text = cleanSegmentText(word.text);
    if (text === '') continue;
    const own = word.speaker === null ? null : cleanSegmentText(word.speaker) || null;
    // A word with neither times nor a speaker (WhisperX cannot align numerals) belongs to the turn it is in.
    const speaker: string | null = own === null && word.startMs === null && word.endMs === null && open !== null ? (open as Open).speaker : own;
    if (open === null || startsSegment(open, word, speaker)) {
      close();
      open = { text, speaker, startMs: word.startMs, endMs: word.endMs, lastEndMs: word.endMs, lastText: text };
      continue;
    }
    const current: Open = open;
    current.text += word.spaceBefore === false ? text : ` ${text}`;
    current.startMs ??= word.startMs;
    if (word.endMs !== null) {
      current.endMs = current.endMs === null ? word.endMs : Math.max(current.endMs, word.endMs);
      current.lastEndMs = word.endMs;
    }
    current.lastText = text;
  }
  close();
  return segments;
}

function startsSegment(open: Open, word: Word, speaker: string | null): boolean {
  if (word.breakBefore === true || speaker !== open.speaker) return true;
  if (word.spaceBefore === false) return false; // never split a word from its punctuation
  const start = word.startMs;
  if (start !== null && open.lastEndMs !== null && start - open.lastEndMs >= PAUSE_BREAK_MS) return true;
  const span = start !== null && open.startMs !== null ? start - open.startMs : 0;
  if (span >= MAX_SEGMENT_MS) return true;
  return span >= SENTENCE_BREAK_MS && SENTENCE_END.test(open.lastText);
}

/** "Speaker 0" for a service's numeric speaker (Deepgram, Rev.ai, Google, Azure); a string label as given. */
export function speakerLabel(value: unknown): string | null {
  if (typeof value === 'number' && Number.isFinite(value)) return `Speaker ${value}`;
  if (typeof value === 'string' && value.trim() !== '') return value;
  return null;
}

/** Stable merge of several channels' words by start time (untimed words stay after their timed predecessor). */
export function mergeByStart<T extends { startMs: number | null }>(lists: T[][]): T[] {
  if (lists.length === 1) return lists[0];
  const tagged = lists.flatMap((list, channel) => {
    let last = 0;
    return list.map((item, i) => {
      last = item.startMs ?? last;
      return { item, key: last, channel, i };
    });
  });
  tagged.sort((a, b) => a.key - b.key || a.channel - b.channel || a.i - b.i);
  return tagged.map((t) => t.item);
}
