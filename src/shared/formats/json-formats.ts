/**
 * The JSON transcript formats, in detection order: each with the shape that identifies it, a
 * check and its parser. Pure. Order matters where shapes overlap: word lists before Whisper
 * (both are arrays of {start, end}), Whisper before pre-segmented input (both may be arrays).
 */
import type { ConcreteFormat, Segment } from '../types.ts';
import { isRecord } from './clean-text.ts';
import { parseSegmentsValue } from './segments-input.ts';
import { looksLikeAssemblyAi, parseAssemblyAiValue } from './stt/assemblyai.ts';
import { looksLikeAwsTranscribe, parseAwsTranscribeValue } from './stt/aws-transcribe.ts';
import { looksLikeAzureSpeech, parseAzureSpeechValue } from './stt/azure-speech.ts';
import { looksLikeDeepgram, parseDeepgramValue } from './stt/deepgram.ts';
import { looksLikeGoogleSpeech, parseGoogleSpeechValue } from './stt/google-speech.ts';
import { looksLikeRevAi, parseRevAiValue } from './stt/revai.ts';
import { looksLikeWordList, parseWordListValue } from './stt/word-list.ts';
import { looksLikeWhisper, parseWhisperValue } from './whisper.ts';

type Parsed = { segments: Segment[]; warnings: string[] };

export interface JsonFormat {
  format: ConcreteFormat;
  /** The identifying shape, for "tried ..." messages. */
  shape: string;
  looksLike: (value: unknown) => boolean;
  parse: (value: unknown) => Parsed;
}

export const JSON_FORMATS: readonly JsonFormat[] = [
  { format: 'deepgram', shape: '{"results": {"channels": [...]}}', looksLike: looksLikeDeepgram, parse: parseDeepgramValue },
  { format: 'aws-transcribe', shape: '{"results": {"items": [...]}}', looksLike: looksLikeAwsTranscribe, parse: parseAwsTranscribeValue },
  { format: 'google-speech', shape: '{"results": [{"alternatives": [...]}]}', looksLike: looksLikeGoogleSpeech, parse: parseGoogleSpeechValue },
  { format: 'assemblyai', shape: '{"utterances": [...]} or {"words": [...], "audio_url"}', looksLike: looksLikeAssemblyAi, parse: parseAssemblyAiValue },
  { format: 'revai', shape: '{"monologues": [...]}', looksLike: looksLikeRevAi, parse: parseRevAiValue },
  { format: 'azure-speech', shape: '{"recognizedPhrases": [...]}', looksLike: looksLikeAzureSpeech, parse: parseAzureSpeechValue },
  { format: 'words', shape: '[{"word", "start", "end"}]', looksLike: looksLikeWordList, parse: parseWordListValue },
  { format: 'whisper', shape: '{"segments": [{"start", "end", "text"}]}', looksLike: looksLikeWhisperResult, parse: parseWhisperValue },
  { format: 'segments', shape: '[{"seq", "text"}]', looksLike: looksLikeSegments, parse: (value) => parseSegmentsValue(value, 'payload.text') },
];

/** The format whose shape `value` has, or null. */
export function detectJsonFormat(value: unknown): ConcreteFormat | null {
  return JSON_FORMATS.find((f) => f.looksLike(value))?.format ?? null;
}

export function jsonFormatOf(format: ConcreteFormat): JsonFormat | undefined {
  return JSON_FORMATS.find((f) => f.format === format);
}

/** "deepgram {...}, aws-transcribe {...}, ..." for the message about JSON of no known shape. */
export function triedShapes(): string {
  return JSON_FORMATS.map((f) => `${f.format} ${f.shape}`).join(', ');
}

/** Whisper segments, or OpenAI's plain json response {"text"} (read as one untimed segment). */
function looksLikeWhisperResult(value: unknown): boolean {
  return looksLikeWhisper(value) || (isRecord(value) && value.segments === undefined && typeof value.text === 'string');
}

function looksLikeSegments(value: unknown): boolean {
  return Array.isArray(value) || (isRecord(value) && Array.isArray(value.segments));
}
