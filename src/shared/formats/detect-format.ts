/** Which transcript format a file is: by file extension first, else by content. Pure. */
import type { ConcreteFormat, TranscriptFormat } from '../types.ts';
import { detectJsonFormat } from './json-formats.ts';

const BY_EXTENSION: Record<string, ConcreteFormat | 'json'> = {
  vtt: 'vtt',
  webvtt: 'vtt',
  srt: 'srt',
  json: 'json',
  txt: 'text',
  text: 'text',
};

/**
 * Content detection result. `json` is the parsed value when the text was JSON (parse once);
 * format 'json' is JSON of no known shape, or text that starts like JSON and does not parse.
 */
export interface Detection {
  format: ConcreteFormat | 'json';
  json?: unknown;
}

// A number line then "00:00:01,000 --> ..." (or the timing line first), at the start of the file.
const SRT_START = /^(?:\d+[ \t]*\n[ \t]*)?\d{1,2}:\d{1,2}:\d{1,2}[,.]\d{1,3}[ \t]*-->/;
const SNIFF_CHARS = 4096;

/**
 * Format of a file for its queue row: extension first (.vtt .srt .json .txt), else content
 * (detectContent). A .json file gets the format its content shows, or "auto" when it has none of
 * the known shapes (the worker then fails the job naming the shapes it tried).
 */
export function detectFormat(text: string, fileName?: string): TranscriptFormat {
  const extension = fileName === undefined ? undefined : /\.([A-Za-z0-9]+)$/.exec(fileName)?.[1]?.toLowerCase();
  const byExtension = extension === undefined ? undefined : BY_EXTENSION[extension];
  if (byExtension !== undefined && byExtension !== 'json') return byExtension;
  const detected = detectContent(text).format;
  if (byExtension === 'json') return detected === 'json' || !isJsonFormat(detected) ? 'auto' : detected;
  return detected === 'json' ? 'auto' : detected;
}

function isJsonFormat(format: ConcreteFormat): boolean {
  return format !== 'vtt' && format !== 'srt' && format !== 'text';
}

/**
 * Content rules, in order (leading BOM / whitespace ignored): WEBVTT -> vtt; JSON -> the first
 * format of json-formats.ts whose shape it has, else 'json'; text that starts like JSON
 * ('{"' or '[{') but does not parse -> 'json' (the parser reports the JSON error); a leading
 * SRT cue -> srt; anything else -> text.
 */
export function detectContent(text: string): Detection {
  const head = text
    .slice(0, SNIFF_CHARS)
    .replace(/^[\uFEFF\s]+/, '')
    .replace(/\r\n?/g, '\n');
  if (/^WEBVTT(?:[ \t\n]|$)/.test(head)) return { format: 'vtt' };
  if (head.startsWith('{') || head.startsWith('[')) {
    const json = tryJson(text);
    if (json.ok) return { format: detectJsonFormat(json.value) ?? 'json', json: json.value };
    if (/^(?:\{\s*"|\[\s*\{)/.test(head)) return { format: 'json' };
  }
  if (SRT_START.test(head)) return { format: 'srt' };
  return { format: 'text' };
}

function tryJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text.replace(/^\uFEFF/, '')) };
  } catch {
    return { ok: false };
  }
}
