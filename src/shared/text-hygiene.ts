/**
 * Text rules that hold before a transcript reaches PostgreSQL, and what counts as "no text at all". Pure; no
 * imports, usable from the CLI, the parsers and worker threads alike.
 *
 * - storableText: PostgreSQL refuses NUL in text and jsonb ("unsupported Unicode escape sequence: \u0000 cannot be
 *   converted to text") and lone UTF-16 surrogates in jsonb (JSON.stringify writes them as "\ud800" escapes, which
 *   jsonb rejects). Every path that builds a job payload from text runs it through storableText first; a web app
 *   inserting rows itself applies the same rule: `text.replace(/\u0000|\p{Cs}/gu, '')`.
 * - isInvisibleText: text made only of whitespace, Unicode format characters (category Cf: U+200B ZERO WIDTH
 *   SPACE, U+200C/U+200D joiners, U+2060 WORD JOINER, U+FEFF, U+00AD SOFT HYPHEN, bidi marks, ...) and other
 *   default-ignorable code points (variation selectors, U+3164 HANGUL FILLER, ...) has nothing to embed: it is
 *   empty. Such characters inside real text are kept (a ZWJ joins an emoji sequence, a ZWNJ shapes Persian).
 */

/** NUL, or (with the u flag, so well-formed pairs are one code point) a lone surrogate. */
const UNSTORABLE = /\u0000|\p{Cs}/gu;
const INVISIBLE_ONLY = /^[\s\p{Cf}\p{Default_Ignorable_Code_Point}]*$/u;

/** `text` without NUL characters and lone UTF-16 surrogates (well-formed surrogate pairs are kept). */
export function storableText(text: string): string {
  return text.replace(UNSTORABLE, '');
}

/** True when `text` has no visible character: only whitespace, format (Cf) and default-ignorable characters. */
export function isInvisibleText(text: string): boolean {
  return INVISIBLE_ONLY.test(text);
}
