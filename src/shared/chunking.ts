/**
 * Token-accurate chunking of transcript segments (ARCHITECTURE principle 7: never truncate).
 *
 * Guarantees, by construction:
 * - every chunk's tokenCount is the exact count of its content with the given TokenCounter, and
 *   is ≤ options.maxTokens; content.length ≤ options.charLimit;
 * - all segment text is kept, in order: the chunk contents concatenated cover every segment's
 *   text except whitespace at the points where text was joined or split;
 * - same segments + options + encoding → identical chunks (a resumed job re-chunks and skips the
 *   chunks already saved).
 *
 * Layout of a chunk's content: one line per segment (or part of a segment), joined with "\n".
 * A segment with a speaker is written `Speaker: text` so the speaker is part of the embedded text;
 * every part of a split segment carries the prefix again. The prefix is left out when it would
 * take more than a quarter of either limit (the speaker is still listed in `speakers`).
 *
 * Packing: segments are packed whole, in order, while both limits hold; a segment that does not
 * fit in an empty chunk is split at sentence ends (. ? ! … followed by whitespace, CJK 。！？,
 * line breaks) and its sentences are packed the same way, starting in the open chunk; a sentence
 * still too long is split at token boundaries (token-split.ts). Token counts are kept per piece and
 * added up; each finished chunk is encoded once to get its exact count, and if joining made it
 * longer than maxTokens its last piece moves to the next chunk.
 *
 * Other rules: segment text is trimmed; whitespace-only segments produce nothing (their seq is in
 * no chunk); lone UTF-16 surrogates become U+FFFD (they have no UTF-8 form); the speaker name has
 * its whitespace collapsed. The parts of a split segment get times interpolated in proportion to
 * their character offsets when the segment has both startMs and endMs. A chunk's startMs is the
 * least non-null start of its parts and endMs the greatest non-null end.
 */
import { createHash } from 'node:crypto';
import type { Chunk, ChunkingOptions, Segment } from './types.ts';
import type { TokenCounter } from './token-counter.ts';
import { sentenceSpans } from './sentence-split.ts';
import { splitByTokens } from './token-split.ts';
import type { TokenSpan } from './token-split.ts';

export { createTokenCounter, encodingForModel, DEFAULT_ENCODING, SUPPORTED_ENCODINGS } from './token-counter.ts';
export type { TokenCounter } from './token-counter.ts';

/** The input limit of OpenAI's embedding models. */
export const MAX_TOKENS_CEILING = 8191;
export const MIN_CHAR_LIMIT = 50;
/** Lines of a chunk (one per segment or segment part) are joined with this. */
export const LINE_SEPARATOR = '\n';

/** Throws a plain Error naming the first bad option. */
export function validateChunkingOptions(options: ChunkingOptions): void {
  const { maxTokens, charLimit, encoding } = options;
  if (!Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens > MAX_TOKENS_CEILING) {
    throw new Error(`maxTokens must be an integer from 1 to ${MAX_TOKENS_CEILING}, got ${String(maxTokens)}`);
  }
  if (!Number.isSafeInteger(charLimit) || charLimit < MIN_CHAR_LIMIT) {
    throw new Error(`charLimit must be an integer ≥ ${MIN_CHAR_LIMIT}, got ${String(charLimit)}`);
  }
  if (typeof encoding !== 'string' || encoding.length === 0) {
    throw new Error(`encoding must be a tiktoken encoding name, got ${JSON.stringify(encoding)}`);
  }
}

export function chunkSegments(segments: Iterable<Segment>, options: ChunkingOptions, tokens: TokenCounter): Chunk[] {
  return Array.from(chunkSegmentsIter(segments, options, tokens));
}

/** Lazily chunks `segments` (which may itself be lazy); memory is bounded by the largest segment. */
export function* chunkSegmentsIter(
  segments: Iterable<Segment>,
  options: ChunkingOptions,
  tokens: TokenCounter,
): Generator<Chunk, void, undefined> {
  validateChunkingOptions(options);
  if (tokens.encoding !== undefined && tokens.encoding !== options.encoding) {
    throw new Error(`encoding: options say ${options.encoding} but the token counter uses ${tokens.encoding}`);
  }
  const packer = new ChunkPacker(options, tokens);
  for (const segment of segments) {
    const prepared = packer.prepare(segment);
    if (prepared !== null) yield* packer.place(packer.piecesOf(prepared));
  }
  yield* packer.finish();
}

interface PreparedSegment {
  seq: number;
  text: string;
  speaker: string | null;
  /** `Speaker: ` or '' */
  prefix: string;
  /** Estimated token cost of the prefix (the trailing space merges into the next word). */
  prefixTokens: number;
  startMs: number | null;
  endMs: number | null;
}

interface Piece extends TokenSpan {
  segment: PreparedSegment;
}

const LONE_SURROGATE = /\p{Cs}/gu;

class ChunkPacker {
  readonly #options: ChunkingOptions;
  readonly #counter: TokenCounter;
  readonly #prefixTokens = new Map<string, number>();
  /** Pieces of the chunk being filled, in order. */
  #open: Piece[] = [];
  #openTokens = 0;
  #openChars = 0;
  /** Pieces to place before the rest of the current segment (a stack: last is next). */
  #front: Piece[] = [];
  #nextIndex = 0;

  constructor(options: ChunkingOptions, counter: TokenCounter) {
    this.#options = options;
    this.#counter = counter;
  }

  prepare(segment: Segment): PreparedSegment | null {
    const text = segment.text.replace(LONE_SURROGATE, '\uFFFD').trim();
    if (text.length === 0) return null;
    const speaker = segment.speaker?.replace(/\s+/g, ' ').trim() || null;
    let prefix = '';
    let prefixTokens = 0;
    if (speaker !== null) {
      const candidate = `${speaker}: `;
      const cost = this.#speakerCost(speaker);
      if (cost * 4 <= this.#options.maxTokens && candidate.length * 4 <= this.#options.charLimit) {
        prefix = candidate;
        prefixTokens = cost;
      }
    }
    return { seq: segment.seq, text, speaker, prefix, prefixTokens, startMs: segment.startMs, endMs: segment.endMs };
  }

  /** The segment whole if it fits an empty chunk, else its sentences, else token-boundary pieces. */
  piecesOf(segment: PreparedSegment): Piece[] {
    const { text } = segment;
    const tokenBudget = this.#options.maxTokens - segment.prefixTokens;
    const charBudget = this.#options.charLimit - segment.prefix.length;
    if (mayFit(text, 0, text.length, tokenBudget, charBudget)) {
      const tokens = this.#counter.encode(text).length;
      if (tokens <= tokenBudget) return [{ start: 0, coreEnd: text.length, end: text.length, tokens, segment }];
    }
    const pieces: Piece[] = [];
    for (const span of sentenceSpans(text)) {
      if (mayFit(text, span.start, span.coreEnd, tokenBudget, charBudget)) {
        const tokens = this.#counter.encode(text.slice(span.start, span.coreEnd)).length;
        if (tokens <= tokenBudget) {
          pieces.push({ ...span, tokens, segment });
          continue;
        }
      }
      for (const sub of splitByTokens(text, span.start, span.end, tokenBudget, charBudget, this.#counter)) {
        pieces.push({ ...sub, segment });
      }
    }
    return pieces;
  }

  /** Places pieces in order, yielding every chunk that fills up. */
  *place(pieces: Piece[]): Generator<Chunk, void, undefined> {
    this.#nextIndex = 0;
    for (;;) {
      const piece = this.#front.length > 0 ? this.#front.pop() : pieces[this.#nextIndex++];
      if (piece === undefined) return;
      if (this.#open.length > 0 && !this.#fits(piece)) {
        this.#front.push(piece);
        yield* this.#close();
      } else {
        this.#add(piece);
      }
    }
  }

  *finish(): Generator<Chunk, void, undefined> {
    while (this.#open.length > 0) {
      yield* this.#close();
      yield* this.place([]);
    }
  }

  #speakerCost(speaker: string): number {
    let cost = this.#prefixTokens.get(speaker);
    if (cost === undefined) {
      cost = this.#counter.encode(`${speaker}:`).length;
      if (this.#prefixTokens.size < 10_000) this.#prefixTokens.set(speaker, cost);
    }
    return cost;
  }

  #cost(piece: Piece): { tokens: number; chars: number } {
    const last = this.#open.at(-1);
    if (last !== undefined && last.segment === piece.segment && last.end === piece.start) {
      return { tokens: piece.tokens, chars: piece.coreEnd - last.coreEnd };
    }
    const separator = last === undefined ? 0 : LINE_SEPARATOR.length;
    return {
      tokens: separator + piece.segment.prefixTokens + piece.tokens,
      chars: separator + piece.segment.prefix.length + piece.coreEnd - piece.start,
    };
  }

  #fits(piece: Piece): boolean {
    const cost = this.#cost(piece);
    return (
      this.#openTokens + cost.tokens <= this.#options.maxTokens &&
      this.#openChars + cost.chars <= this.#options.charLimit
    );
  }

  #add(piece: Piece): void {
    const cost = this.#cost(piece);
    this.#open.push(piece);
    this.#openTokens += cost.tokens;
    this.#openChars += cost.chars;
  }

  /**
   * Emits the open chunk after one exact count. Over the limit: move the last piece back to the
   * queue and count again; a lone piece over the limit (prefix and text merged worse than
   * estimated) is split again with a budget lowered by the excess.
   */
  *#close(): Generator<Chunk, void, undefined> {
    const { maxTokens } = this.#options;
    for (;;) {
      const content = renderContent(this.#open);
      const tokenCount = this.#counter.encode(content).length;
      if (tokenCount <= maxTokens) {
        yield this.#emit(content, tokenCount);
        break;
      }
      const last = this.#open.pop() as Piece;
      if (this.#open.length > 0) {
        this.#front.push(last);
        continue;
      }
      const budget = last.tokens - (tokenCount - maxTokens);
      if (budget < 1) throw new Error(`maxTokens: ${maxTokens} is too small for segment ${last.segment.seq}`);
      const charBudget = this.#options.charLimit - last.segment.prefix.length;
      const text = last.segment.text;
      const parts = splitByTokens(text, last.start, last.end, budget, charBudget, this.#counter);
      for (let i = parts.length - 1; i >= 0; i--) this.#front.push({ ...parts[i], segment: last.segment });
      break;
    }
    this.#open = [];
    this.#openTokens = 0;
    this.#openChars = 0;
  }

  #chunkIndex = 0;

  #emit(content: string, tokenCount: number): Chunk {
    if (content.length > this.#options.charLimit) {
      throw new Error(`chunking bug: chunk of ${content.length} chars exceeds charLimit ${this.#options.charLimit}`);
    }
    return {
      index: this.#chunkIndex++,
      content,
      tokenCount,
      ...describePieces(this.#open),
      contentHash: createHash('sha256').update(content, 'utf8').digest('hex'),
    };
  }
}

/** Above this many characters per token, text is not even tried whole (it is split instead). */
const MAX_CHARS_PER_TOKEN = 8;
/** tiktoken's cost grows with the square of a pre-token's length; runs this long go to splitByTokens. */
const LONG_LETTER_RUN = /[\p{L}\p{M}]{1024}/u;

/** Whether text[start, end) is worth one encode to see if it fits whole. */
function mayFit(text: string, start: number, end: number, tokenBudget: number, charBudget: number): boolean {
  const length = end - start;
  if (length > charBudget || length > tokenBudget * MAX_CHARS_PER_TOKEN) return false;
  return length < 1024 || !LONG_LETTER_RUN.test(text.slice(start, end));
}

/** One line per run of contiguous pieces of one segment, prefixed with the segment's speaker. */
function renderContent(pieces: Piece[]): string {
  const lines: string[] = [];
  for (const run of pieceRuns(pieces)) {
    lines.push(run.segment.prefix + run.segment.text.slice(run.start, run.coreEnd));
  }
  return lines.join(LINE_SEPARATOR);
}

interface PieceRun {
  segment: PreparedSegment;
  start: number;
  coreEnd: number;
}

function pieceRuns(pieces: Piece[]): PieceRun[] {
  const runs: PieceRun[] = [];
  let run: PieceRun | undefined;
  let runEnd = -1;
  for (const piece of pieces) {
    if (run !== undefined && run.segment === piece.segment && runEnd === piece.start) {
      run.coreEnd = piece.coreEnd;
    } else {
      run = { segment: piece.segment, start: piece.start, coreEnd: piece.coreEnd };
      runs.push(run);
    }
    runEnd = piece.end;
  }
  return runs;
}

type ChunkDescription = Pick<Chunk, 'segmentSeqStart' | 'segmentSeqEnd' | 'startMs' | 'endMs' | 'speakers'>;

function describePieces(pieces: Piece[]): ChunkDescription {
  let seqStart = Infinity;
  let seqEnd = -Infinity;
  let startMs: number | null = null;
  let endMs: number | null = null;
  const speakers: string[] = [];
  for (const run of pieceRuns(pieces)) {
    const { segment } = run;
    seqStart = Math.min(seqStart, segment.seq);
    seqEnd = Math.max(seqEnd, segment.seq);
    const start = timeAt(segment, run.start, segment.startMs);
    const end = timeAt(segment, run.coreEnd, segment.endMs);
    if (start !== null && (startMs === null || start < startMs)) startMs = start;
    if (end !== null && (endMs === null || end > endMs)) endMs = end;
    if (segment.speaker !== null && !speakers.includes(segment.speaker)) speakers.push(segment.speaker);
  }
  return { segmentSeqStart: seqStart, segmentSeqEnd: seqEnd, startMs, endMs, speakers };
}

/** Time at a character offset of a segment, interpolated when both ends are known. */
function timeAt(segment: PreparedSegment, offset: number, fallback: number | null): number | null {
  const { startMs, endMs, text } = segment;
  if (startMs === null || endMs === null || endMs < startMs) return fallback;
  return startMs + Math.round(((endMs - startMs) * offset) / text.length);
}
