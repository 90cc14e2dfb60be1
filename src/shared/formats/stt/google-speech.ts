/**
 * Google Cloud Speech-to-Text response (v1 recognize / longRunningRecognize, v2 recognize /
 * batch output) -> Segment[]. Pure.
 *
 * Reads results[] {alternatives[0] {transcript, words[]}, channelTag?, resultEndTime? (v1) /
 * resultEndOffset? (v2)}; words {word, startTime/endTime (v1) or startOffset/endOffset (v2) as
 * protobuf durations "1.300s", speakerTag (v1, integer) or speakerLabel (v2, string)}. An
 * operation ({done, response: {results}}) is unwrapped. With diarization Google repeats every
 * word of the audio, with its speaker, in the FINAL result of each channel: when that result's
 * words carry speakers and are at least as many as the channel's other results hold, those words
 * alone are read for the channel; otherwise every result is. A word with neither time is untimed
 * (a missing startTime alone is 0 s: protobuf leaves zero values out). Speakers are "Speaker N" for a speakerTag, a speakerLabel
 * as given; with several channels and no diarization the channel is the speaker ("Channel 1").
 * A result without words becomes one turn from the previous result's end to its own.
 */
import type { Segment } from '../../types.ts';
import { arrayAt, isRecord, objectAt, optionalArray, optionalString, stringAt, type Json } from './shape.ts';
import { checkedSpan, protoDurationMs } from './times.ts';
import { mergeByStart, speakerLabel, wordsToSegments, type Word } from './words.ts';

export function looksLikeGoogleSpeech(value: unknown): boolean {
  const results = resultsOf(value);
  if (!Array.isArray(results)) return false;
  if (results.length > 0) return isRecord(results[0]) && Array.isArray(results[0].alternatives);
  return isRecord(value) && ('totalBilledTime' in value || isRecord(value.response) || isRecord(value.metadata) || 'requestId' in value);
}

function resultsOf(value: unknown): unknown {
  if (!isRecord(value)) return undefined;
  return isRecord(value.response) && 'results' in value.response ? value.response.results : value.results;
}

interface Result {
  alternative: Json;
  channel: number | null;
  endMs: number | null;
  where: string;
}

export function parseGoogleSpeechValue(value: unknown): { segments: Segment[]; warnings: string[] } {
  objectAt(value, 'google-speech');
  const where = isRecord((value as Json).response) ? 'google-speech: response.results' : 'google-speech: results';
  const results = optionalArray(resultsOf(value), where).map((r, i): Result => {
    const at = `${where}[${i}]`;
    const result = objectAt(r, at);
    const alternatives = arrayAt(result.alternatives, `${at}.alternatives`);
    return {
      alternative: alternatives.length === 0 ? {} : objectAt(alternatives[0], `${at}.alternatives[0]`),
      channel: typeof result.channelTag === 'number' ? result.channelTag : null,
      endMs: protoDurationMs(result.resultEndTime ?? result.resultEndOffset, `${at}.resultEndTime`),
      where: `${at}.alternatives[0]`,
    };
  });
  const channels = new Set(results.map((r) => r.channel ?? 1));
  const label = (speaker: string | null, channel: number | null): string | null =>
    speaker ?? (channels.size > 1 ? `Channel ${channel ?? 1}` : null);
  const byChannel = new Map<number, Result[]>();
  for (const result of results) {
    const channel = result.channel ?? 1;
    const list = byChannel.get(channel);
    if (list) list.push(result);
    else byChannel.set(channel, [result]);
  }
  const lists = [...byChannel.entries()].map(([channel, list]) => channelWords(channel, list, label));
  return { segments: wordsToSegments(mergeByStart(lists)), warnings: [] };
}

/** One channel's words: the diarized final result when it repeats the others, else every result in order. */
function channelWords(channel: number, results: Result[], label: (speaker: string | null, channel: number | null) => string | null): Word[] {
  const read = results.map((result) => readWords(result, label));
  const last = read.at(-1) ?? [];
  const earlier = read.slice(0, -1).reduce((n, words) => n + words.length, 0);
  if (last.some((w) => w.speaker !== null && !w.speaker.startsWith('Channel ')) && last.length >= earlier) return last;
  const words: Word[] = [];
  let previousEnd: number | null = null;
  results.forEach((result, i) => {
    if (read[i].length > 0) {
      words.push(...read[i].map((w, j) => (j === 0 ? { ...w, breakBefore: true } : w)));
    } else {
      const transcript = optionalString(result.alternative.transcript, `${result.where}.transcript`);
      if (transcript !== null) words.push({ text: transcript, startMs: previousEnd, endMs: result.endMs, speaker: label(null, channel), breakBefore: true });
    }
    previousEnd = result.endMs;
  });
  return words;
}

function readWords(result: Result, label: (speaker: string | null, channel: number | null) => string | null): Word[] {
  return optionalArray(result.alternative.words, `${result.where}.words`).map((w, i) => {
    const at = `${result.where}.words[${i}]`;
    const word = objectAt(w, at);
    const speaker = speakerLabel(word.speakerTag) ?? optionalString(word.speakerLabel, `${at}.speakerLabel`);
    const start = word.startTime ?? word.startOffset;
    const end = word.endTime ?? word.endOffset;
    const untimed = (start === undefined || start === null) && (end === undefined || end === null);
    return {
      text: stringAt(word.word, `${at}.word`),
      ...checkedSpan(untimed ? null : (protoDurationMs(start, `${at}.startTime`) ?? 0), protoDurationMs(end, `${at}.endTime`), at),
      speaker: label(speaker === '' || word.speakerTag === 0 ? null : speaker, result.channel),
    };
  });
}
