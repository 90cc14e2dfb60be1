/**
 * What the worker asks Claude, as data: the transcript window rendered as the cached system block, the
 * per-chunk context request, and the analysis requests (one per window, then one that merges them). The prompt
 * version is part of every cache key (context_key, analysis_key): changing a prompt here recomputes what it made.
 * Pure.
 */
import { createHash } from 'node:crypto';
import type { Chunk } from '../types.ts';

export const PROMPT_VERSION = 'v1';

/** Output budget of one chunk context (the answer is asked to be 50–100 words). */
export const CONTEXT_MAX_TOKENS = 300;
/** Output budget of one analysis answer. */
export const ANALYSIS_MAX_TOKENS = 4096;
/** A context longer than this (characters) is cut at a word boundary: it is a lead-in, not a second chunk. */
export const CONTEXT_MAX_CHARS = 1200;

const INSTRUCTIONS =
  'You are indexing a transcript (a meeting, interview, podcast or lecture) for search. ' +
  'The transcript follows; each passage starts with its time as [hh:mm:ss] when the recording has times.';

/**
 * Claude tokens of a text, estimated from its length: about one token per three characters of English (the
 * current models' tokenizer counts more tokens for the same text than OpenAI's), so windows stay within budget.
 */
export function estimateClaudeTokens(text: string): number {
  return Math.ceil(text.length / 3);
}

function clock(ms: number): string {
  const s = Math.floor(ms / 1000);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
}

/** One chunk as it appears in the transcript block. */
export function renderChunk(chunk: Pick<Chunk, 'content' | 'startMs'>): string {
  return chunk.startMs === null ? chunk.content : `[${clock(chunk.startMs)}]\n${chunk.content}`;
}

export interface TranscriptWindow {
  /** Position of this window in the document (0-based) and how many windows the document has so far. */
  index: number;
  /** The system block: instructions and the window's passages; identical for every request of the window. */
  text: string;
  firstChunk: number;
  lastChunk: number;
  /** Estimated Claude tokens of `text`. */
  tokens: number;
}

/** The transcript window of these consecutive chunks (all of them: saved ones too, they are context). */
export function buildWindow(index: number, chunks: readonly Pick<Chunk, 'index' | 'content' | 'startMs'>[], title: string | null): TranscriptWindow {
  const head = `${INSTRUCTIONS}${title ? `\nTitle: ${title}` : ''}\n\n<transcript>\n`;
  const text = `${head}${chunks.map(renderChunk).join('\n\n')}\n</transcript>`;
  return { index, text, firstChunk: chunks[0].index, lastChunk: chunks[chunks.length - 1].index, tokens: estimateClaudeTokens(text) };
}

/** What identifies a chunk's context: the model, the prompt and the window it was situated in. */
export function contextKey(model: string, window: TranscriptWindow): string {
  return createHash('sha256').update(`context ${PROMPT_VERSION}\0${model}\0`).update(window.text).digest('hex').slice(0, 32);
}

/** What identifies a document's analysis: the model, the prompt, the window size and the chunked input. */
export function analysisKey(model: string, windowTokens: number, chunkingSignature: string): string {
  return createHash('sha256').update(`analysis ${PROMPT_VERSION}\0${model}\0${windowTokens}\0${chunkingSignature}`).digest('hex').slice(0, 32);
}

export function contextRequestText(chunk: Pick<Chunk, 'content'>): string {
  return (
    `Here is a passage from the transcript above:\n<passage>\n${chunk.content}\n</passage>\n\n` +
    'Write a short context (50 to 100 words) that situates this passage within the whole transcript, to improve ' +
    'search retrieval of the passage: who is speaking and in what role, what is being discussed and what it refers ' +
    'to (resolve words like "that", "it" or "Friday" from the transcript), and at which point of the conversation ' +
    'it comes. Answer with the context only, in the language of the transcript.'
  );
}

/** The context as stored: trimmed, without a leading "Context:" label, at most CONTEXT_MAX_CHARS. */
export function cleanContext(text: string): string {
  let out = text.trim().replace(/^(context|contexte|kontext)\s*:\s*/i, '').trim();
  if (out.length > CONTEXT_MAX_CHARS) {
    const cut = out.lastIndexOf(' ', CONTEXT_MAX_CHARS);
    out = `${out.slice(0, cut > CONTEXT_MAX_CHARS / 2 ? cut : CONTEXT_MAX_CHARS)}…`;
  }
  return out;
}

/** The text embedded (and full-text indexed) for a chunk: its context, a blank line, then the chunk as spoken. */
export function embeddedText(content: string, context: string | null | undefined): string {
  return context ? `${context}\n\n${content}` : content;
}

export function analysisRequestText(window: TranscriptWindow, windows: number | null): string {
  const part = windows === null || windows <= 1 ? 'the transcript above' : `the part of a longer transcript above (part ${window.index + 1})`;
  return (
    `Analyse ${part}. Give its summary, main topics, decisions, action items with their owners, up to five key ` +
    'quotes with their speaker and time, and each speaker\'s apparent role. Use only what the transcript says; ' +
    'leave a list empty when there is nothing for it. Answer in the language of the transcript.'
  );
}

export const MERGE_INSTRUCTIONS =
  'You merge analyses of consecutive parts of one long transcript into one analysis of the whole: one summary of ' +
  'the whole conversation, topics and decisions without repeats, every action item once, the five strongest quotes, ' +
  'and one role per speaker.';

export function mergeRequestText(parts: readonly unknown[]): string {
  return `Analyses of the ${parts.length} parts, in order:\n${parts.map((p, i) => `<part n="${i + 1}">\n${JSON.stringify(p)}\n</part>`).join('\n')}`;
}
