/**
 * Word-only JSON -> Segment[]. Pure.
 *
 * Shapes: a top-level array of words [{word | text, start, end, speaker?}]; WhisperX's
 * {word_segments: [...]} (no "segments"); OpenAI's transcription with only word timestamps
 * {text, words: [{word, start, end}]} (no "segments"). Times are seconds, except when every
 * time is an integer and the median word lasts 20 units or more: then they are milliseconds
 * (AssemblyAI-style word exports; a word does not last 20 seconds). Words without times
 * (WhisperX cannot align numerals) are kept, untimed. Speakers are kept as given.
 */
import { BadInputError } from '../../errors.ts';
import type { Segment } from '../../types.ts';
import { describeValue } from '../clean-text.ts';
import { isRecord, objectAt, optionalString, type Json } from './shape.ts';
import { checkedSpan, millisecondsMs, secondsMs } from './times.ts';
import { speakerLabel, wordsToSegments, type Word } from './words.ts';

const MS_MEDIAN_DURATION = 20;
/** Fewer {text, start} items than this are read as Whisper segments (too few to tell words from sentences). */
const MIN_TEXT_WORDS = 20;

/** The word array of a word-only value, or null. */
function wordArrayOf(value: unknown): unknown[] | null {
  if (Array.isArray(value)) return value;
  if (!isRecord(value) || value.segments !== undefined) return null;
  if (Array.isArray(value.word_segments)) return value.word_segments;
  if (Array.isArray(value.words)) return value.words;
  return null;
}

/**
 * True for a word list: items with a string `word`, or at least MIN_TEXT_WORDS items with a
 * string `text` of one token (90 % of them) and a numeric start, and none of Whisper's segment
 * fields (a Whisper segment list has sentences in `text`).
 */
export function looksLikeWordList(value: unknown): boolean {
  const list = wordArrayOf(value);
  if (list === null || list.length === 0) return false;
  const sample = list.slice(0, 50);
  if (!sample.every(isRecord)) return false;
  const items = sample as Json[];
  if (items.every((w) => typeof w.word === 'string')) return true;
  if (items.length < MIN_TEXT_WORDS || items.some((w) => 'seek' in w || 'tokens' in w || 'avg_logprob' in w)) return false;
  const oneToken = items.filter((w) => typeof w.text === 'string' && !/\S\s+\S/.test(w.text.trim())).length;
  return items.every((w) => typeof w.text === 'string' && typeof w.start === 'number') && oneToken >= items.length * 0.9;
}

export function parseWordListValue(value: unknown): { segments: Segment[]; warnings: string[] } {
  const list = wordArrayOf(value);
  if (list === null) {
    throw new BadInputError(`words: expected an array of {"word", "start", "end"}, {"word_segments": [...]} or {"words": [...]}, got ${describeValue(value)}`);
  }
  const items = list.map((w, i) => objectAt(w, `words[${i}]`));
  const inMs = millisecondTimes(items);
  const time = inMs ? millisecondsMs : secondsMs;
  const words = items.map((w, i): Word => {
    const where = `words[${i}]`;
    const text = optionalString(w.word, `${where}.word`) ?? optionalString(w.text, `${where}.text`);
    if (text === null) throw new BadInputError(`${where}: expected a "word" or "text" string, got neither`);
    const startMs = time(w.start, `${where}.start`);
    const endMs = time(w.end, `${where}.end`);
    if (startMs !== null && endMs !== null && endMs < startMs) {
      throw new BadInputError(`${where}: end ${String(w.end)} is before start ${String(w.start)} (${inMs ? 'milliseconds' : 'seconds'})`);
    }
    return { text, startMs, endMs, speaker: speakerLabel(w.speaker) };
  });
  return { segments: wordsToSegments(words), warnings: inMs ? ['words: integer times with a median word duration of 20 or more read as milliseconds'] : [] };
}

function millisecondTimes(items: Json[]): boolean {
  const durations: number[] = [];
  for (const w of items) {
    for (const t of [w.start, w.end]) if (t !== undefined && t !== null && !Number.isInteger(t)) return false;
    if (typeof w.start === 'number' && typeof w.end === 'number') durations.push(w.end - w.start);
  }
  if (durations.length === 0) return false;
  durations.sort((a, b) => a - b);
  return durations[Math.floor(durations.length / 2)] >= MS_MEDIAN_DURATION;
}

/** WhisperX / Whisper segments whose words carry speakers: the words, each with its own speaker or its segment's. */
export function whisperWordsWithSpeakers(segments: unknown[]): Word[] | null {
  const hasWordSpeakers = segments.some((s) => isRecord(s) && Array.isArray(s.words) && s.words.some((w) => isRecord(w) && typeof w.speaker === 'string'));
  if (!hasWordSpeakers) return null;
  return segments.flatMap((s, i) => {
    const segment = objectAt(s, `whisper: segments[${i}]`);
    const own = speakerLabel(segment.speaker);
    if (!Array.isArray(segment.words)) {
      const text = optionalString(segment.text, `whisper: segments[${i}].text`) ?? '';
      return [{ text, startMs: secondsMs(segment.start, `whisper: segments[${i}].start`), endMs: secondsMs(segment.end, `whisper: segments[${i}].end`), speaker: own }];
    }
    return segment.words.map((w, j): Word => {
      const where = `whisper: segments[${i}].words[${j}]`;
      const word = objectAt(w, where);
      const text = optionalString(word.word, `${where}.word`) ?? optionalString(word.text, `${where}.text`) ?? '';
      return { text, ...checkedSpan(secondsMs(word.start, `${where}.start`), secondsMs(word.end, `${where}.end`), where), speaker: speakerLabel(word.speaker) ?? own };
    });
  });
}
