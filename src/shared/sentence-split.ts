/**
 * Sentence boundaries and whitespace helpers for chunking. Pure string work on UTF-16 offsets.
 *
 * "Whitespace" is what JS `\s` and String.prototype.trim mean (Unicode spaces, NBSP, U+3000,
 * line terminators), so the chunker and its tests agree on what may be dropped at a join.
 */

/** A range of a text: content is [start, coreEnd) (no whitespace at either end); [coreEnd, end) is whitespace. */
export interface TextSpan {
  start: number;
  coreEnd: number;
  end: number;
}

const WHITESPACE = /\s/;

export function isWhitespaceAt(text: string, index: number): boolean {
  const code = text.charCodeAt(index);
  if (code === 0x20 || (code >= 0x09 && code <= 0x0d)) return true;
  if (code < 0x80) return false;
  return WHITESPACE.test(text[index]);
}

/** First index ≥ from (and < to) that is not whitespace, or `to`. */
export function skipWhitespace(text: string, from: number, to: number): number {
  let i = from;
  while (i < to && isWhitespaceAt(text, i)) i++;
  return i;
}

/** Smallest index e ≥ from such that [e, to) is all whitespace. */
export function trimEndIndex(text: string, from: number, to: number): number {
  let e = to;
  while (e > from && isWhitespaceAt(text, e - 1)) e--;
  return e;
}

/**
 * Where a sentence ends: after a run of . ? ! … (plus closing quotes/brackets) that is followed by
 * whitespace or the end of the text; after CJK 。！？ (and fullwidth ．) whatever follows, because
 * CJK text puts no space after them; and at every line break.
 * A run is only tried from its first mark (the lookbehind): tried from every mark of a long run not followed
 * by whitespace ("....x"), each try would rescan the rest of the run, quadratic in its length.
 */
const SENTENCE_END =
  /(?<![.?!…])[.?!…]+["'”’»)\]]*(?=\s|$)|[。！？．]+[」』”’）》〉]*|\r?\n/gu;

/**
 * Splits text[from, to) into sentence spans covering it: span i's `end` is span i+1's `start`,
 * leading whitespace of the range is skipped, and no span's core is empty.
 */
export function sentenceSpans(text: string, from = 0, to = text.length): TextSpan[] {
  const spans: TextSpan[] = [];
  let start = skipWhitespace(text, from, to);
  const pattern = new RegExp(SENTENCE_END.source, SENTENCE_END.flags);
  pattern.lastIndex = start;
  while (start < to) {
    const match = pattern.exec(text);
    let boundary = match === null || match.index >= to ? to : match.index + match[0].length;
    if (boundary > to) boundary = to;
    const coreEnd = trimEndIndex(text, start, boundary);
    if (coreEnd > start) {
      const end = skipWhitespace(text, boundary, to);
      spans.push({ start, coreEnd, end });
      start = end;
    } else if (spans.length > 0) {
      // A boundary with nothing before it (e.g. a blank line): fold the whitespace into the previous span.
      const end = skipWhitespace(text, boundary, to);
      spans[spans.length - 1].end = end;
      start = end;
    } else {
      start = skipWhitespace(text, boundary, to);
    }
    if (match === null) break;
    if (pattern.lastIndex < start) pattern.lastIndex = start;
  }
  return spans;
}
