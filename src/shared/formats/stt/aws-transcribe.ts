/**
 * Amazon Transcribe job output -> Segment[]. Pure.
 *
 * Reads results.items[] {type "pronunciation" | "punctuation", alternatives[0].content,
 * start_time / end_time (seconds as STRINGS; punctuation has none), speaker_label?}.
 * Punctuation joins the word before it. An item's speaker is its own speaker_label (current
 * layout) or, in the older layout where items carry none, the speaker_labels.segments[].items[]
 * entry with the same start time, else the segment whose time range holds it. With channel
 * identification and no diarization the channel is the speaker ("ch_0", "ch_1"), from the item's
 * channel_label or results.channel_labels.channels[].items. Labels are kept as given ("spk_0").
 * Items masked by a vocabulary filter ("***") are kept as written.
 */
import type { Segment } from '../../types.ts';
import { arrayAt, isRecord, objectAt, optionalArray, optionalString, stringAt, type Json } from './shape.ts';
import { checkedSpan, secondsMs } from './times.ts';
import { mergeByStart, wordsToSegments, type Word } from './words.ts';

export function looksLikeAwsTranscribe(value: unknown): boolean {
  return isRecord(value) && isRecord(value.results) && (Array.isArray(value.results.items) || Array.isArray(value.results.transcripts));
}

interface SpeakerIndex {
  byStart: Map<number, string>;
  ranges: { startMs: number; endMs: number; label: string }[];
}

export function parseAwsTranscribeValue(value: unknown): { segments: Segment[]; warnings: string[] } {
  const results = objectAt(objectAt(value, 'aws-transcribe').results, 'aws-transcribe: results');
  const speakers = speakerIndex(results.speaker_labels, 'aws-transcribe: results.speaker_labels');
  const channels = channelIndex(results.channel_labels);
  let items = optionalArray(results.items, 'aws-transcribe: results.items').map((item, i) => readItem(item, `aws-transcribe: results.items[${i}]`));
  // Channel identification without diarization, where the items carry no label of their own: each channel's own
  // list says whose every word is (two channels may have words starting at the same time).
  const unlabelled = items.every((item) => item.speaker === null) && speakers.ranges.length === 0 && speakers.byStart.size === 0;
  if (channels.lists.length > 0 && (items.length === 0 || unlabelled)) items = mergeByStart(channels.lists);
  const words = items.map((item) => ({ ...item, speaker: item.speaker ?? speakerAt(speakers, item.startMs) ?? channelAt(channels.byStart, item.startMs) }));
  if (words.length > 0) return { segments: wordsToSegments(attachPunctuationSpeakers(words)), warnings: [] };
  const transcripts = optionalArray(results.transcripts, 'aws-transcribe: results.transcripts').map((t, i) =>
    stringAt(objectAt(t, `aws-transcribe: results.transcripts[${i}]`).transcript, `aws-transcribe: results.transcripts[${i}].transcript`),
  );
  const untimed = transcripts.map((text): Word => ({ text, startMs: null, endMs: null, speaker: null, breakBefore: true }));
  return { segments: wordsToSegments(untimed), warnings: untimed.length > 0 ? ['aws-transcribe: no items; read results.transcripts without timestamps'] : [] };
}

function readItem(item: unknown, where: string, channel: string | null = null): Word {
  const it = objectAt(item, where);
  const alternatives = arrayAt(it.alternatives, `${where}.alternatives`);
  const content = alternatives.length === 0 ? '' : stringAt(objectAt(alternatives[0], `${where}.alternatives[0]`).content, `${where}.alternatives[0].content`);
  const punctuation = it.type === 'punctuation';
  return {
    text: content,
    ...(punctuation ? { startMs: null, endMs: null } : checkedSpan(secondsMs(it.start_time, `${where}.start_time`), secondsMs(it.end_time, `${where}.end_time`), where)),
    speaker: optionalString(it.speaker_label, `${where}.speaker_label`) ?? optionalString(it.channel_label, `${where}.channel_label`) ?? channel,
    spaceBefore: !punctuation,
  };
}

function speakerIndex(value: unknown, where: string): SpeakerIndex {
  const index: SpeakerIndex = { byStart: new Map(), ranges: [] };
  if (!isRecord(value)) return index;
  optionalArray(value.segments, `${where}.segments`).forEach((s, i) => {
    const at = `${where}.segments[${i}]`;
    const segment = objectAt(s, at);
    const label = optionalString(segment.speaker_label, `${at}.speaker_label`);
    if (label === null) return;
    const startMs = secondsMs(segment.start_time, `${at}.start_time`);
    const endMs = secondsMs(segment.end_time, `${at}.end_time`);
    if (startMs !== null && endMs !== null) index.ranges.push({ startMs, endMs, label });
    optionalArray(segment.items, `${at}.items`).forEach((item, j) => {
      const entry = objectAt(item, `${at}.items[${j}]`);
      const start = secondsMs(entry.start_time, `${at}.items[${j}].start_time`);
      if (start !== null) index.byStart.set(start, optionalString(entry.speaker_label, `${at}.items[${j}].speaker_label`) ?? label);
    });
  });
  index.ranges.sort((a, b) => a.startMs - b.startMs);
  return index;
}

function speakerAt(index: SpeakerIndex, startMs: number | null): string | null {
  if (startMs === null) return null;
  const exact = index.byStart.get(startMs);
  if (exact !== undefined) return exact;
  // Ranges are in time order (sorted in speakerIndex): binary search for the last one starting at or before.
  let lo = 0;
  let hi = index.ranges.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (index.ranges[mid].startMs <= startMs) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  const range = found >= 0 ? index.ranges[found] : undefined;
  return range !== undefined && startMs < range.endMs ? range.label : null;
}

/** Channel identification: each channel's items (for outputs without results.items) and channel by start time. */
function channelIndex(value: unknown): { lists: Word[][]; byStart: Map<number, string> } {
  const byStart = new Map<number, string>();
  if (!isRecord(value)) return { lists: [], byStart };
  const where = 'aws-transcribe: results.channel_labels.channels';
  const lists = optionalArray(value.channels, where).map((c, i) => {
    const channel: Json = objectAt(c, `${where}[${i}]`);
    const label = optionalString(channel.channel_label, `${where}[${i}].channel_label`) ?? `ch_${i}`;
    const items = optionalArray(channel.items, `${where}[${i}].items`).map((item, j) => readItem(item, `${where}[${i}].items[${j}]`, label));
    for (const item of items) if (item.startMs !== null) byStart.set(item.startMs, label);
    return items;
  });
  return { lists, byStart };
}

function channelAt(byStart: Map<number, string>, startMs: number | null): string | null {
  return startMs === null ? null : (byStart.get(startMs) ?? null);
}

/** Punctuation belongs to the word it follows: it takes that word's speaker (it has no time of its own to look up). */
function attachPunctuationSpeakers(words: Word[]): Word[] {
  let last: string | null = null;
  return words.map((word) => {
    if (word.spaceBefore === false) return { ...word, speaker: last };
    last = word.speaker;
    return word;
  });
}
