/**
 * Splits a run of text that is too long for one chunk (a sentence without punctuation, a run of
 * CJK, "aaaa…") into pieces that each fit a token and a character budget on their own.
 *
 * Cuts are token boundaries found by decoding a prefix of the tokens and checking it against the
 * original text: a prefix that ends inside a multi-byte character decodes to U+FFFD, does not
 * match, and the cut backs off one token. Among the clean cuts, a whitespace or clause boundary
 * near the end of the piece is preferred, then a boundary that keeps combining marks, ZWJ
 * sequences and surrogate pairs together. Every piece's token count is the exact count of its own
 * text (one encode per piece), so the work is linear in the length of the run.
 */
import type { TokenCounter } from './token-counter.ts';
import { isWhitespaceAt, skipWhitespace, trimEndIndex } from './sentence-split.ts';
import type { TextSpan } from './sentence-split.ts';

export interface TokenSpan extends TextSpan {
  /** Exact token count of text.slice(start, coreEnd). */
  tokens: number;
}

/** First guess of characters per token for the encode window; then the last window's ratio. */
const INITIAL_CHARS_PER_TOKEN = 4;

/**
 * Pieces covering text[from, to): consecutive (piece i's end is piece i+1's start), no piece
 * empty, each with tokens ≤ maxTokens and coreEnd - start ≤ maxChars.
 * Throws if a single character needs more than maxTokens tokens.
 */
export function splitByTokens(
  text: string,
  from: number,
  to: number,
  maxTokens: number,
  maxChars: number,
  counter: TokenCounter,
): TokenSpan[] {
  const pieces: TokenSpan[] = [];
  let start = skipWhitespace(text, from, to);
  let limit = maxTokens;
  const density = { charsPerToken: INITIAL_CHARS_PER_TOKEN };
  while (start < to) {
    const length = cleanCutLength(text, start, to, limit, maxChars, counter, density);
    const coreEnd = trimEndIndex(text, start, start + length);
    const tokens = counter.encode(text.slice(start, coreEnd)).length;
    if (tokens > maxTokens) {
      // The piece alone tokenizes longer than its prefix did inside the window: aim lower.
      limit -= tokens - maxTokens;
      if (limit < 1) throw tooSmall(text, start, maxTokens);
      continue;
    }
    const end = skipWhitespace(text, coreEnd, to);
    pieces.push({ start, coreEnd, end, tokens });
    start = end;
    limit = maxTokens;
  }
  return pieces;
}

/** Length of the longest clean piece starting at `start` (then nudged back to a nicer boundary). */
function cleanCutLength(
  text: string,
  start: number,
  to: number,
  limit: number,
  maxChars: number,
  counter: TokenCounter,
  density: { charsPerToken: number },
): number {
  const maxEnd = codePointFloor(text, start, start + Math.min(to - start, maxChars));
  // Encode only a window a little longer than `limit` tokens: tiktoken's cost grows with the
  // square of a pre-token's length (a CJK run has no spaces), so never encode the whole run.
  const guess = Math.ceil(limit * density.charsPerToken * 1.2) + 8;
  let windowEnd = codePointFloor(text, start, Math.min(maxEnd, start + guess));
  let tokens = counter.encode(text.slice(start, windowEnd));
  while (tokens.length <= limit && windowEnd < maxEnd) {
    windowEnd = codePointFloor(text, start, Math.min(maxEnd, start + (windowEnd - start) * 2));
    tokens = counter.encode(text.slice(start, windowEnd));
  }
  density.charsPerToken = Math.max(0.25, (windowEnd - start) / Math.max(1, tokens.length));
  let length: number;
  if (tokens.length <= limit) {
    length = windowEnd - start;
  } else {
    length = decodedPrefixLength(text, start, tokens, limit, counter);
  }
  if (start + length < to) length = preferredCut(text, start, length);
  return length;
}

/** Char length of the longest clean token prefix with at most `limit` tokens. */
function decodedPrefixLength(
  text: string,
  start: number,
  tokens: Uint32Array | number[],
  limit: number,
  counter: TokenCounter,
): number {
  for (let k = limit; k > 0; k--) {
    const prefix = counter.decode(tokens.slice(0, k));
    if (prefix.length > 0 && text.startsWith(prefix, start)) return prefix.length;
  }
  throw tooSmall(text, start, limit);
}

function tooSmall(text: string, index: number, maxTokens: number): Error {
  const codePoint = text.codePointAt(index) ?? 0;
  return new Error(
    `maxTokens: ${maxTokens} tokens cannot hold the character U+${codePoint.toString(16).toUpperCase().padStart(4, '0')}; raise maxTokens`,
  );
}

/** `index`, moved off the middle of a surrogate pair (back, unless that would leave nothing). */
function codePointFloor(text: string, start: number, index: number): number {
  if (index >= text.length || index <= start) return index;
  const before = text.charCodeAt(index - 1);
  const after = text.charCodeAt(index);
  if (before >= 0xd800 && before <= 0xdbff && after >= 0xdc00 && after <= 0xdfff) {
    return index - 1 > start ? index - 1 : index + 1;
  }
  return index;
}

const CLAUSE_END = /[,;:，、；：]/;
const CJK_CLAUSE_END = /[，、；：]/;
/** Characters that must stay with the character before them. */
const JOINS_PREVIOUS = /[\p{M}\u200d\ufe00-\ufe0f\u{1F3FB}-\u{1F3FF}\u{E0020}-\u{E007F}]/u;

/**
 * A cut no later than `length`: the last clause end (in the last 30%), else the last whitespace
 * (in the last 50%), else the last position that does not split a grapheme-like cluster (in the
 * last 16 units), else `length` itself.
 */
function preferredCut(text: string, start: number, length: number): number {
  const end = start + length;
  if (isWhitespaceAt(text, end)) return length;
  for (let i = end; i > start + Math.floor(length * 0.7); i--) {
    const previous = text[i - 1];
    if (CLAUSE_END.test(previous) && (CJK_CLAUSE_END.test(previous) || isWhitespaceAt(text, i))) {
      return i - start;
    }
  }
  for (let i = end - 1; i > start + Math.floor(length * 0.5); i--) {
    if (isWhitespaceAt(text, i)) return i - start;
  }
  for (let i = end; i > Math.max(start, end - 16); i--) {
    if (!splitsCluster(text, i)) return i - start;
  }
  return length;
}

function splitsCluster(text: string, index: number): boolean {
  if (text.charCodeAt(index - 1) === 0x200d) return true;
  const next = text.codePointAt(index);
  if (next === undefined) return false;
  return (next >= 0xdc00 && next <= 0xdfff) || JOINS_PREVIOUS.test(String.fromCodePoint(next));
}
