/** Which transcript format a file is: by file extension first, else by content. Pure. */
import type { ConcreteFormat } from '../types.ts';
import { isRecord, looksLikeWhisper } from './whisper.ts';

const BY_EXTENSION: Record<string, ConcreteFormat | 'json'> = {
  vtt: 'vtt',
  webvtt: 'vtt',
  srt: 'srt',
  json: 'json',
  txt: 'text',
  text: 'text',
};

/** Content detection result; `json` is the parsed value when the text was JSON (parse once). */
export interface Detection {
  format: ConcreteFormat;
  json?: unknown;
}

// A number line then "00:00:01,000 --> ..." (or the timing line first), at the start of the file.
const SRT_START = /^(?:\d+[ \t]*\n[ \t]*)?\d{1,2}:\d{1,2}:\d{1,2}[,.]\d{1,3}[ \t]*-->/;
const SNIFF_CHARS = 4096;

/**
 * Format of a file: extension first (.vtt .srt .json .txt), else content (detectContent).
 * A .json file is Whisper or segments by its content ("whisper" when it is neither, so the
 * parser names what is wrong).
 */
export function detectFormat(text: string, fileName?: string): ConcreteFormat {
  const extension = fileName === undefined ? undefined : /\.([A-Za-z0-9]+)$/.exec(fileName)?.[1]?.toLowerCase();
  const byExtension = extension === undefined ? undefined : BY_EXTENSION[extension];
  if (byExtension === 'json') {
    const detected = detectContent(text).format;
    return detected === 'segments' ? 'segments' : 'whisper';
  }
  return byExtension ?? detectContent(text).format;
}

/**
 * Content rules, in order (leading BOM / whitespace ignored):
 * WEBVTT -> vtt; JSON: Whisper shape ({segments:[{start,end,...}]} or [{start,end,...}]) ->
 * whisper, other arrays or {segments:[...]} -> segments, other objects -> whisper; text that
 * starts like JSON ('{"' or '[{') but does not parse -> whisper (its parser reports the JSON
 * error); a leading SRT cue -> srt; anything else -> text.
 */
export function detectContent(text: string): Detection {
  const head = text
    .slice(0, SNIFF_CHARS)
    .replace(/^[\uFEFF\s]+/, '')
    .replace(/\r\n?/g, '\n');
  if (/^WEBVTT(?:[ \t\n]|$)/.test(head)) return { format: 'vtt' };
  if (head.startsWith('{') || head.startsWith('[')) {
    const json = tryJson(text);
    if (json.ok) return { format: jsonFormat(json.value), json: json.value };
    if (/^(?:\{\s*"|\[\s*\{)/.test(head)) return { format: 'whisper' };
  }
  if (SRT_START.test(head)) return { format: 'srt' };
  return { format: 'text' };
}

function jsonFormat(value: unknown): ConcreteFormat {
  if (looksLikeWhisper(value)) return 'whisper';
  if (Array.isArray(value) || (isRecord(value) && Array.isArray(value.segments))) return 'segments';
  return 'whisper';
}

function tryJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text.replace(/^\uFEFF/, '')) };
  } catch {
    return { ok: false };
  }
}
