/**
 * Entry point: a job's (format, payload) -> ParsedTranscript. Pure; every problem with the
 * input throws BadInputError with one actionable line (what, and where).
 *
 * payload is the job's jsonb: {"text": "<file content>"} or {"segments": [{seq, text, ...}]}.
 * - segments: payload.segments, or payload.text holding a JSON array / {"segments": [...]}.
 * - every other format (vtt, srt, text, whisper and the speech-to-text JSON formats): payload.text.
 * - auto: payload.segments when present, else detected from payload.text (detectContent).
 * options.speakerNames (the job's metadata.speaker_names) renames speakers after parsing.
 */
import { BadInputError } from '../errors.ts';
import { TRANSCRIPT_FORMATS, type ConcreteFormat, type ParsedTranscript, type Segment, type TranscriptFormat } from '../types.ts';
import { isInvisibleText } from '../text-hygiene.ts';
import { assertNotBinary, describeValue, isRecord, normaliseRawText, quote } from './clean-text.ts';
import { detectContent, type Detection } from './detect-format.ts';
import { jsonFormatOf, triedShapes } from './json-formats.ts';
import { parsePlainText } from './plain-text.ts';
import { parseSegmentsValue } from './segments-input.ts';
import { applySpeakerNames, readSpeakerNames } from './speaker-names.ts';
import { parseSrt } from './srt.ts';
import { parseVtt } from './vtt.ts';
import { parseJsonText } from './whisper.ts';

export { detectFormat } from './detect-format.ts';

interface Payload {
  text?: string;
  segments?: unknown[];
}

type Parsed = { segments: Segment[]; warnings: string[] };

export function isTranscriptFormat(value: unknown): value is TranscriptFormat {
  return typeof value === 'string' && (TRANSCRIPT_FORMATS as readonly string[]).includes(value);
}

export interface ParseOptions {
  /** The job's metadata.speaker_names (validated here: a bad map is bad input). */
  speakerNames?: unknown;
}

export function parseTranscript(format: TranscriptFormat, payload: unknown, options: ParseOptions = {}): ParsedTranscript {
  if (!isTranscriptFormat(format)) {
    const shown = typeof format === 'string' ? quote(format, 30) : describeValue(format);
    throw new BadInputError(`unknown format ${shown} (expected one of ${TRANSCRIPT_FORMATS.join(', ')})`);
  }
  const names = readSpeakerNames(options.speakerNames);
  const input = readPayload(payload);
  if (format === 'segments' || (format === 'auto' && input.segments !== undefined)) {
    return finish('segments', segmentsFrom(input), names);
  }
  const text = requireText(input, format);
  const detection: Detection = format === 'auto' ? detectContent(text) : { format };
  if (detection.format === 'json') throw unknownJson(detection, text);
  return finish(detection.format, parseText(detection.format, detection.json, text), names);
}

/** JSON of no known shape (names every shape tried), or text that starts like JSON and does not parse. */
function unknownJson(detection: Detection, text: string): BadInputError {
  const value = 'json' in detection ? detection.json : parseJsonText(text, 'json');
  const got = isRecord(value) ? describeKeys(value) : describeValue(value);
  return new BadInputError(`json: matches no known transcript shape (got ${got}); tried ${triedShapes()}`);
}

/** payload.text / payload.segments, checked; a null value counts as absent. */
function readPayload(payload: unknown): Payload {
  const expected = 'payload: expected {"text": string} or {"segments": [...]}';
  if (!isRecord(payload)) throw new BadInputError(`${expected}, got ${describeValue(payload)}`);
  const text = payload.text ?? undefined;
  const segments = payload.segments ?? undefined;
  if (text === undefined && segments === undefined) {
    throw new BadInputError(`${expected}, got ${describeKeys(payload)}`);
  }
  if (segments !== undefined && !Array.isArray(segments)) {
    throw new BadInputError(`payload.segments: expected an array, got ${describeValue(segments)}`);
  }
  if (text !== undefined && typeof text !== 'string') {
    throw new BadInputError(`payload.text: expected a string, got ${describeValue(text)}`);
  }
  return { text, segments };
}

function describeKeys(payload: Record<string, unknown>): string {
  const nulls = ['text', 'segments'].filter((key) => payload[key] === null);
  if (nulls.length > 0) return nulls.map((key) => `"${key}": null`).join(', ');
  const keys = Object.keys(payload);
  if (keys.length === 0) return 'an empty object';
  return `an object with keys ${keys.slice(0, 5).map((k) => quote(k, 20)).join(', ')}${keys.length > 5 ? ', …' : ''}`;
}

function segmentsFrom(input: Payload): Parsed {
  if (input.segments !== undefined) return parseSegmentsValue(input.segments, 'payload.segments');
  const text = requireText(input, 'segments');
  return parseSegmentsValue(parseJsonText(text, 'segments'), 'payload.text');
}

/** payload.text, checked: present, not binary, not blank (nothing visible: see isInvisibleText); invalid characters removed. */
function requireText(input: Payload, format: TranscriptFormat): string {
  if (input.text === undefined) {
    throw new BadInputError(
      `${format}: expected payload.text (the file content as a string), got only payload.segments (use format "segments" or "auto")`,
    );
  }
  assertNotBinary(input.text);
  const text = normaliseRawText(input.text);
  if (isInvisibleText(text)) throw new BadInputError('transcript is empty (payload.text is blank)');
  return text;
}

/** `json` is the value detectContent already parsed (undefined when the format was named). */
function parseText(format: ConcreteFormat, json: unknown, text: string): Parsed {
  switch (format) {
    case 'vtt':
      return parseVtt(text);
    case 'srt':
      return parseSrt(text);
    case 'text':
      return parsePlainText(text);
    default: {
      const parser = jsonFormatOf(format);
      if (parser === undefined) throw new Error(`no parser for format ${format}`);
      return parser.parse(json !== undefined ? json : parseJsonText(text, format));
    }
  }
}

function finish(format: ConcreteFormat, parsed: Parsed, names: ReturnType<typeof readSpeakerNames>): ParsedTranscript {
  if (parsed.segments.length === 0) {
    throw new BadInputError(`transcript is empty (no spoken text after parsing ${format})`);
  }
  const named = applySpeakerNames(parsed.segments, names);
  return { format, segments: named.segments, warnings: [...parsed.warnings, ...named.warnings] };
}
