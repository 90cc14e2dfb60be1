/**
 * Text hygiene shared by every transcript format. Pure.
 *
 * Two levels:
 * - normaliseRawText: for a whole file before parsing. Keeps the line structure (so error
 *   messages can name line numbers) but removes what PostgreSQL or a parser cannot take:
 *   BOM, NUL and other C0 controls (except \t \n \r) and DEL, lone UTF-16 surrogates;
 *   CRLF and lone CR become LF.
 * - cleanSegmentText: for one segment's text (or a speaker name): the above, plus NBSP and
 *   every whitespace run collapsed to one space, trimmed; text with no visible character (only
 *   zero-width / format characters and whitespace, see isInvisibleText) becomes '' and is dropped.
 * PostgreSQL rejects NUL in text/jsonb, so NUL is removed, never rejected (storableText).
 */
import { BadInputError } from '../errors.ts';
import { isInvisibleText, storableText } from '../text-hygiene.ts';

// C0 controls except NUL (removed by storableText), \t (09) \n (0A) \r (0D), plus DEL (7F).
const CONTROL_CHARS = /[\u0001-\u0008\u000B\u000C\u000E-\u001F\u007F]/g;
const LONE_SURROGATES = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const BOM = /\uFEFF/g;

/** Removes characters that are never text: NUL and lone surrogates (storableText), BOM, other C0 controls (not \t \n \r), DEL. */
export function removeInvalidChars(text: string): string {
  return storableText(text).replace(CONTROL_CHARS, '').replace(BOM, '');
}

/** Whole-file hygiene that keeps line numbers: invalid chars removed, CRLF / CR -> LF. */
export function normaliseRawText(text: string): string {
  return removeInvalidChars(text).replace(/\r\n?/g, '\n');
}

/** One segment's text or a speaker name: hygiene, whitespace (incl. NBSP) collapsed, trimmed. */
export function cleanSegmentText(text: string): string {
  const clean = removeInvalidChars(text).replace(/\s+/g, ' ').trim();
  return isInvisibleText(clean) ? '' : clean;
}

const BINARY_CHARS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFD]/g;
const BINARY_RATIO = 0.1;
const BINARY_MIN_CHARS = 8;

/**
 * Throws when more than 10% of the characters (and at least 8 of them) are control characters
 * (other than \t \n \r), U+FFFD replacement characters (what invalid UTF-8 decodes to) or lone
 * surrogates: that is a binary file or a wrong encoding (UTF-16 read as UTF-8), not a transcript
 * with a few stray bytes (those are removed by normaliseRawText).
 */
export function assertNotBinary(text: string, where = 'payload.text'): void {
  if (text.length === 0) return;
  const bad = (text.match(BINARY_CHARS)?.length ?? 0) + (text.match(LONE_SURROGATES)?.length ?? 0);
  const ratio = bad / text.length;
  if (ratio > BINARY_RATIO && bad >= BINARY_MIN_CHARS) {
    const percent = Math.round(ratio * 100);
    throw new BadInputError(
      `${where} looks binary (${percent}% of ${text.length} characters are control or replacement characters); send UTF-8 text`,
    );
  }
}

/** A short, one-line, quoted excerpt of user text for error messages (at most `max` chars of it). */
export function quote(text: string, max = 40): string {
  const short = text.length > max ? `${text.slice(0, max)}…` : text;
  return JSON.stringify(short);
}

/** Makes any message (e.g. a JSON.parse error that echoes input) one line of bounded length. */
export function oneLine(message: string, max = 160): string {
  const flat = message.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

/** "a string", "a number", "null", "an array", "an object", ... for "expected X, got Y" messages. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing (undefined)';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number') {
    return `a number (${value})`;
  }
  if (typeof value === 'string') return `a string (${quote(value, 30)})`;
  const type = typeof value;
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
