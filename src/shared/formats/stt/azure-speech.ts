/**
 * Azure AI Speech batch transcription result -> Segment[]. Pure.
 *
 * Reads recognizedPhrases[] {recognitionStatus, channel, speaker? (integer, with diarization),
 * offsetInTicks / durationInTicks (100 ns ticks, integers or floats), or offset / duration
 * (ISO 8601, "PT1.1S"), nBest[0].display}: each recognised phrase is one segment, in its
 * punctuated display form (word entries, when present, are lexical and unpunctuated, so they
 * are not used). Phrases are ordered by offset (several channels interleave); phrases whose
 * status is not "Success" (NoMatch, InitialSilenceTimeout) carry no text and are skipped.
 * Speakers are "Speaker N"; with several channels and no diarization the channel is the speaker
 * ("Channel 0", "Channel 1").
 */
import type { Segment } from '../../types.ts';
import { arrayAt, isRecord, objectAt, optionalString } from './shape.ts';
import { isoDurationMs, ticksMs } from './times.ts';
import { mergeByStart, speakerLabel, wordsToSegments, type Word } from './words.ts';

export function looksLikeAzureSpeech(value: unknown): boolean {
  return isRecord(value) && Array.isArray(value.recognizedPhrases);
}

export function parseAzureSpeechValue(value: unknown): { segments: Segment[]; warnings: string[] } {
  const phrases = arrayAt(objectAt(value, 'azure-speech').recognizedPhrases, 'azure-speech: recognizedPhrases');
  const read = phrases.map((p, i) => {
    const where = `azure-speech: recognizedPhrases[${i}]`;
    const phrase = objectAt(p, where);
    const status = optionalString(phrase.recognitionStatus, `${where}.recognitionStatus`);
    const nBest = phrase.nBest === undefined || phrase.nBest === null ? [] : arrayAt(phrase.nBest, `${where}.nBest`);
    const best = nBest.length === 0 ? {} : objectAt(nBest[0], `${where}.nBest[0]`);
    const text = optionalString(best.display, `${where}.nBest[0].display`) ?? optionalString(best.lexical, `${where}.nBest[0].lexical`);
    const startMs = ticksMs(phrase.offsetInTicks, `${where}.offsetInTicks`) ?? isoDurationMs(phrase.offset, `${where}.offset`);
    const durationMs = ticksMs(phrase.durationInTicks, `${where}.durationInTicks`) ?? isoDurationMs(phrase.duration, `${where}.duration`);
    return {
      ok: (status === null || status === 'Success') && text !== null,
      text: text ?? '',
      startMs,
      endMs: startMs !== null && durationMs !== null ? startMs + durationMs : null,
      speaker: speakerLabel(phrase.speaker),
      channel: typeof phrase.channel === 'number' ? phrase.channel : 0,
    };
  });
  const kept = read.filter((phrase) => phrase.ok);
  const channels = new Set(kept.map((phrase) => phrase.channel));
  const byChannel = [...channels].sort((a, b) => a - b).map((channel) =>
    kept
      .filter((phrase) => phrase.channel === channel)
      .map((phrase): Word => ({
        text: phrase.text,
        startMs: phrase.startMs,
        endMs: phrase.endMs,
        speaker: phrase.speaker ?? (channels.size > 1 ? `Channel ${phrase.channel}` : null),
        breakBefore: true,
      })),
  );
  const skipped = read.length - kept.length;
  const ordered = mergeByStart(byChannel.map((list) => [...list].sort((a, b) => (a.startMs ?? 0) - (b.startMs ?? 0))));
  return { segments: wordsToSegments(ordered), warnings: skipped > 0 ? [`azure-speech: ${skipped} phrases without a recognised text skipped`] : [] };
}
