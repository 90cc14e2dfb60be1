/**
 * Rev.ai transcript (application/vnd.rev.transcript.v1.0+json) -> Segment[]. Pure.
 *
 * Reads monologues[] {speaker (integer), speaker_name?, elements[]}: "text" elements {value, ts,
 * end_ts (seconds)} are words; "punct" elements {value} carry punctuation AND the spaces between
 * words (" "), untimed; other element types ("unknown") are skipped. Text is rebuilt exactly as
 * the elements spell it ("co" "-" "founder" -> "co-founder"). Each monologue starts a segment,
 * even when the speaker does not change. The speaker is the speaker_name given on any of that
 * speaker's monologues, else "Speaker N".
 */
import type { Segment } from '../../types.ts';
import { arrayAt, isRecord, objectAt, optionalString, stringAt } from './shape.ts';
import { checkedSpan, secondsMs } from './times.ts';
import { speakerLabel, wordsToSegments, type Word } from './words.ts';

export function looksLikeRevAi(value: unknown): boolean {
  return isRecord(value) && Array.isArray(value.monologues);
}

export function parseRevAiValue(value: unknown): { segments: Segment[]; warnings: string[] } {
  const monologues = arrayAt(objectAt(value, 'revai').monologues, 'revai: monologues').map((m, i) => objectAt(m, `revai: monologues[${i}]`));
  const names = new Map<unknown, string>();
  monologues.forEach((monologue, i) => {
    const name = optionalString(monologue.speaker_name, `revai: monologues[${i}].speaker_name`)?.trim();
    if (name && !names.has(monologue.speaker)) names.set(monologue.speaker, name);
  });
  const words: Word[] = [];
  monologues.forEach((monologue, i) => {
    const where = `revai: monologues[${i}]`;
    const speaker = names.get(monologue.speaker) ?? speakerLabel(monologue.speaker);
    let first = true;
    let space = true;
    arrayAt(monologue.elements, `${where}.elements`).forEach((e, j) => {
      const at = `${where}.elements[${j}]`;
      const element = objectAt(e, at);
      const text = stringAt(element.value, `${at}.value`);
      if (element.type === 'punct') {
        if (text.trim() === '') {
          space = true;
          return;
        }
        words.push({ text, startMs: null, endMs: null, speaker, spaceBefore: space && !first, breakBefore: first });
      } else if (element.type === 'text') {
        words.push({ text, ...checkedSpan(secondsMs(element.ts, `${at}.ts`), secondsMs(element.end_ts, `${at}.end_ts`), at), speaker, spaceBefore: space || first, breakBefore: first });
      } else {
        return;
      }
      first = false;
      space = false;
    });
  });
  return { segments: wordsToSegments(words), warnings: [] };
}
