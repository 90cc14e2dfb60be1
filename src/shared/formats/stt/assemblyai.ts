/**
 * AssemblyAI transcript (GET /v2/transcript/{id}) -> Segment[]. Pure.
 *
 * Reads words[] {text, start, end (integer MILLISECONDS), speaker ("A", "B", ... with
 * speaker_labels; null without)}, falling back to utterances[].words, then utterances[] as whole
 * turns, then the top-level text (untimed). Speakers are kept as given ("A"). A transcript whose
 * status is not "completed" is refused with its status (and error, for "error").
 */
import { BadInputError } from '../../errors.ts';
import type { Segment } from '../../types.ts';
import { quote } from '../clean-text.ts';
import { isRecord, objectAt, optionalArray, optionalString, stringAt } from './shape.ts';
import { checkedSpan, millisecondsMs } from './times.ts';
import { speakerLabel, wordsToSegments, type Word } from './words.ts';

/** An object with utterances[], or words[] of {text, start} and AssemblyAI's own top-level keys. */
export function looksLikeAssemblyAi(value: unknown): boolean {
  if (!isRecord(value)) return false;
  if (Array.isArray(value.utterances)) return true;
  const first: unknown = Array.isArray(value.words) ? value.words[0] : undefined;
  const hasOwnKeys = 'audio_url' in value || 'audio_duration' in value || 'acoustic_model' in value || 'speech_model' in value;
  return hasOwnKeys && (first === undefined || (isRecord(first) && typeof first.text === 'string'));
}

export function parseAssemblyAiValue(value: unknown): { segments: Segment[]; warnings: string[] } {
  const root = objectAt(value, 'assemblyai');
  const status = optionalString(root.status, 'assemblyai: status');
  if (status !== null && status !== 'completed') {
    const error = optionalString(root.error, 'assemblyai: error');
    const detail = status === 'error' ? `: ${quote(error ?? 'no error given', 160)}` : ' (fetch it again once its status is "completed")';
    throw new BadInputError(`assemblyai: transcript status is ${quote(status, 20)}, not "completed"${detail}`);
  }
  const words = optionalArray(root.words, 'assemblyai: words').map((w, i) => readWord(w, `assemblyai: words[${i}]`, false));
  if (words.length > 0) return { segments: wordsToSegments(words), warnings: [] };
  const utterances = optionalArray(root.utterances, 'assemblyai: utterances');
  const fromUtterances = utterances.flatMap((u, i) => {
    const where = `assemblyai: utterances[${i}]`;
    const turn = objectAt(u, where);
    const own = optionalArray(turn.words, `${where}.words`).map((w, j) => readWord(w, `${where}.words[${j}]`, j === 0));
    return own.length > 0 ? own : [readWord(turn, where, true)];
  });
  if (fromUtterances.length > 0) return { segments: wordsToSegments(fromUtterances), warnings: [] };
  const text = optionalString(root.text, 'assemblyai: text');
  const untimed: Word[] = text === null ? [] : [{ text, startMs: null, endMs: null, speaker: null }];
  return { segments: wordsToSegments(untimed), warnings: text === null ? [] : ['assemblyai: no words or utterances; read the text without timestamps'] };
}

function readWord(item: unknown, where: string, breakBefore: boolean): Word {
  const w = objectAt(item, where);
  return {
    text: stringAt(w.text, `${where}.text`),
    ...checkedSpan(millisecondsMs(w.start, `${where}.start`), millisecondsMs(w.end, `${where}.end`), where),
    speaker: speakerLabel(w.speaker),
    breakBefore,
  };
}
