/**
 * Deepgram pre-recorded response (/v1/listen) -> Segment[]. Pure.
 *
 * Reads results.channels[c].alternatives[0].words[] {word, punctuated_word?, start, end (seconds),
 * speaker? (integer, with diarize)}: the punctuated form when present. Speakers are "Speaker N";
 * with several channels and no diarization each channel is a speaker ("Channel 0", "Channel 1"),
 * and with both, "Speaker N (channel C)". Channels are merged by time. A response without words
 * (word timings stripped) falls back to results.utterances[] {transcript, start, end, speaker,
 * channel}, then to each channel's paragraphs, then to its transcript (untimed).
 */
import type { Segment } from '../../types.ts';
import { arrayAt, isRecord, objectAt, optionalArray, optionalString, stringAt, type Json } from './shape.ts';
import { checkedSpan, secondsMs } from './times.ts';
import { mergeByStart, speakerLabel, wordsToSegments, type Word } from './words.ts';

export function looksLikeDeepgram(value: unknown): boolean {
  return isRecord(value) && isRecord(value.results) && Array.isArray(value.results.channels);
}

export function parseDeepgramValue(value: unknown): { segments: Segment[]; warnings: string[] } {
  const root = objectAt(value, 'deepgram');
  const results = objectAt(root.results, 'deepgram: results');
  const channels = arrayAt(results.channels, 'deepgram: results.channels');
  const alternatives = channels.map((channel, c) => firstAlternative(channel, `deepgram: results.channels[${c}]`));
  const hasSpeaker = (item: unknown) => isRecord(item) && item.speaker !== undefined && item.speaker !== null;
  const diarized =
    alternatives.some((alt, c) => optionalArray(alt.words, `deepgram: results.channels[${c}].alternatives[0].words`).some(hasSpeaker)) ||
    optionalArray(results.utterances, 'deepgram: results.utterances').some(hasSpeaker) ||
    alternatives.some((alt) => isRecord(alt.paragraphs) && Array.isArray(alt.paragraphs.paragraphs) && alt.paragraphs.paragraphs.some(hasSpeaker));
  const label = (speaker: unknown, channel: number): string | null => {
    const own = speakerLabel(speaker);
    if (channels.length === 1) return own;
    if (!diarized) return `Channel ${channel}`;
    return own === null ? `Channel ${channel}` : `${own} (channel ${channel})`;
  };
  const perChannel = alternatives.map((alt, c) =>
    optionalArray(alt.words, `deepgram: results.channels[${c}].alternatives[0].words`).map((w, i) =>
      readWord(w, `deepgram: results.channels[${c}].alternatives[0].words[${i}]`, (s) => label(s, c)),
    ),
  );
  if (perChannel.some((words) => words.length > 0)) return { segments: wordsToSegments(mergeByStart(perChannel)), warnings: [] };
  const utterances = optionalArray(results.utterances, 'deepgram: results.utterances');
  if (utterances.length > 0) {
    const words = utterances.map((u, i) => readUtterance(u, `deepgram: results.utterances[${i}]`, label));
    return { segments: wordsToSegments(words), warnings: ['deepgram: no word timings; read results.utterances'] };
  }
  const fallback = mergeByStart(alternatives.map((alt, c) => transcriptWords(alt, c, label)));
  return { segments: wordsToSegments(fallback), warnings: fallback.length > 0 ? ['deepgram: no words or utterances; read the transcript text'] : [] };
}

function firstAlternative(channel: unknown, where: string): Json {
  const alternatives = arrayAt(objectAt(channel, where).alternatives, `${where}.alternatives`);
  return alternatives.length === 0 ? {} : objectAt(alternatives[0], `${where}.alternatives[0]`);
}

function readWord(item: unknown, where: string, label: (speaker: unknown) => string | null): Word {
  const w = objectAt(item, where);
  const punctuated = optionalString(w.punctuated_word, `${where}.punctuated_word`);
  const text = punctuated !== null && punctuated.trim() !== '' ? punctuated : stringAt(w.word, `${where}.word`);
  return { text, ...checkedSpan(secondsMs(w.start, `${where}.start`), secondsMs(w.end, `${where}.end`), where), speaker: label(w.speaker) };
}

function readUtterance(item: unknown, where: string, label: (speaker: unknown, channel: number) => string | null): Word {
  const u = objectAt(item, where);
  const channel = typeof u.channel === 'number' ? u.channel : 0;
  return {
    text: stringAt(u.transcript, `${where}.transcript`),
    ...checkedSpan(secondsMs(u.start, `${where}.start`), secondsMs(u.end, `${where}.end`), where),
    speaker: label(u.speaker, channel),
    breakBefore: true,
  };
}

/** Paragraph sentences when present (timed, with a speaker), else the whole transcript as one untimed turn. */
function transcriptWords(alt: Json, channel: number, label: (speaker: unknown, channel: number) => string | null): Word[] {
  const where = `deepgram: results.channels[${channel}].alternatives[0]`;
  const paragraphs = isRecord(alt.paragraphs) ? optionalArray(alt.paragraphs.paragraphs, `${where}.paragraphs.paragraphs`) : [];
  const words = paragraphs.flatMap((p, i) => {
    const paragraph = objectAt(p, `${where}.paragraphs.paragraphs[${i}]`);
    return optionalArray(paragraph.sentences, `${where}.paragraphs.paragraphs[${i}].sentences`).map((s, j): Word => {
      const at = `${where}.paragraphs.paragraphs[${i}].sentences[${j}]`;
      const sentence = objectAt(s, at);
      return {
        text: stringAt(sentence.text, `${at}.text`),
        startMs: secondsMs(sentence.start, `${at}.start`),
        endMs: secondsMs(sentence.end, `${at}.end`),
        speaker: label(paragraph.speaker, channel),
        breakBefore: j === 0,
      };
    });
  });
  if (words.length > 0) return words;
  const transcript = optionalString(alt.transcript, `${where}.transcript`);
  return transcript === null ? [] : [{ text: transcript, startMs: null, endMs: null, speaker: label(undefined, channel), breakBefore: true }];
}
