/**
 * Google Cloud Speech-to-Text response (v1 recognize / longRunningRecognize, v2 recognize /
 * batch output) -> Segment[]. Pure.
 *
 * Reads results[] {alternatives[0] {transcript, words[]}, channelTag?, resultEndTime? (v1) /
 * resultEndOffset? (v2)}; words {word, startTime/endTime (v1) or startOffset/endOffset (v2) as
 * protobuf durations "1.300s", speakerTag (v1, integer) or speakerLabel (v2, string)}. An
 * operation ({done, response: {results}}) is unwrapped. With diarization Google repeats every
 * word of the audio, with its speaker, in the FINAL result: when the last result's words carry
 * speakers, those words alone are read. Speakers are "Speaker N" for a speakerTag, a speakerLabel
 * as given; with several channels and no diarization the channel is the speaker ("Channel 1").
 * A result without words becomes one turn from the previous result's end to its own.
 */
import type { Segment } from '../../types.ts';
import { arrayAt, isRecord, objectAt, optionalArray, optionalString, stringAt, type Json } from './shape.ts';
import { protoDurationMs } from './times.ts';
import { mergeByStart, speakerLabel, wordsToSegments, type Word } from './words.ts';

export function looksLikeGoogleSpeech(value: unknown): boolean {
  const results = resultsOf(value);
  return Array.isArray(results) && (results.length === 0 ? isRecord(value) && ('totalBilledTime' in value || isRecord(value.response)) : isRecord(results[0]) && Array.isArray(results[0].alternatives));
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
  const last = results.at(-1);
  const lastWords = last === undefined ? [] : readWords(last, label);
  if (lastWords.some((w) => w.speaker !== null && !w.speaker.startsWith('Channel '))) {
    return { segments: wordsToSegments(lastWords), warnings: [] };
  }
  const byChannel = new Map<number, Word[]>();
  const previousEnd = new Map<number, number | null>();
  for (const result of results) {
    const channel = result.channel ?? 1;
    const words = result === last ? lastWords : readWords(result, label);
    const list = byChannel.get(channel) ?? [];
    if (words.length > 0) {
      list.push(...words.map((w, i) => (i === 0 ? { ...w, breakBefore: true } : w)));
    } else {
      const transcript = optionalString(result.alternative.transcript, `${result.where}.transcript`);
      if (transcript !== null) {
        list.push({ text: transcript, startMs: previousEnd.get(channel) ?? null, endMs: result.endMs, speaker: label(null, channel), breakBefore: true });
      }
    }
    byChannel.set(channel, list);
    previousEnd.set(channel, result.endMs);
  }
  return { segments: wordsToSegments(mergeByStart([...byChannel.values()])), warnings: [] };
}

function readWords(result: Result, label: (speaker: string | null, channel: number | null) => string | null): Word[] {
  return optionalArray(result.alternative.words, `${result.where}.words`).map((w, i) => {
    const at = `${result.where}.words[${i}]`;
    const word = objectAt(w, at);
    const speaker = speakerLabel(word.speakerTag) ?? optionalString(word.speakerLabel, `${at}.speakerLabel`);
    return {
      text: stringAt(word.word, `${at}.word`),
      startMs: protoDurationMs(word.startTime ?? word.startOffset, `${at}.startTime`) ?? 0,
      endMs: protoDurationMs(word.endTime ?? word.endOffset, `${at}.endTime`),
      speaker: label(speaker === '' || word.speakerTag === 0 ? null : speaker, result.channel),
    };
  });
}
