/**
 * WebVTT -> Segment[]. Pure.
 *
 * Handles: "WEBVTT" header and header lines (Kind:, Language:), BOM, CRLF, NOTE/STYLE/REGION
 * blocks, optional cue ids, cue settings, hh:mm:ss.mmm / mm:ss.mmm / non-padded Teams stamps
 * ("0:8:44.690"), Zoom "Name: text" prefixes (+ continuation cues without a prefix), Zoom's newer
 * speaker-on-the-cue-id layout (`1 "Jane Doe" (123456789)`, see cueIdSpeaker), Teams
 * <v Name> voice tags (GUID names kept as given), YouTube rolling captions with inline word
 * timestamps (see rolling-captions.ts), other tags stripped and entities decoded.
 * Cues are kept in file order (Teams files have overlapping / slightly out-of-order cues).
 */
import { BadInputError } from '../errors.ts';
import type { Segment } from '../types.ts';
import { normaliseRawText } from './clean-text.ts';
import { acceptedNames, hasInlineTimestamps, plainCueText, speakerPrefix, voiceTagSpeaker } from './cue-text.ts';
import { mergeCues, type Cue } from './merge-cues.ts';
import { dropRepeatedLines, isRollingCaptions, type CueLines } from './rolling-captions.ts';
import { isTimingLine, parseCueTiming } from './timestamps.ts';

interface RawCue extends CueLines {
  startMs: number;
  endMs: number;
  /** The cue identifier line, when there is one. */
  id: string | null;
}

/**
 * Zoom's newer layout names the speaker on the cue identifier line: `1 "Jane Doe" (123456789)`
 * (a cue number, the quoted display name, an optional numeric participant id). A bare number is
 * an ordinary cue id, never a name.
 */
const ZOOM_SPEAKER_ID = /^(\d+[ \t]+)?"(.+)"(?:[ \t]*\(\d+\))?[ \t]*$/;

export function cueIdSpeaker(id: string | null): string | null {
  const m = id === null ? null : ZOOM_SPEAKER_ID.exec(id.trim());
  return m === null ? null : m[2].trim() || null;
}

const BLOCK_KEYWORD = /^(?:NOTE|STYLE|REGION)(?:[ \t]|$)/;

export function parseVtt(text: string): { segments: Segment[]; warnings: string[] } {
  const warnings: string[] = [];
  const lines = normaliseRawText(text).split('\n');
  const cues = readCues(lines, warnings);
  if (cues.length === 0) {
    throw new BadInputError('vtt: no cues found (expected lines like "00:00:01.000 --> 00:00:04.000")');
  }
  let cueLines = cues.map((cue) => cue.plain);
  if (isRollingCaptions(cues, hasInlineTimestamps)) {
    const deduped = dropRepeatedLines(cues);
    cueLines = deduped.lines;
    warnings.push(`vtt: rolling captions (YouTube style): removed ${deduped.removed} repeated caption lines`);
  }
  const speakerCues = attachSpeakers(cues, cueLines);
  return { segments: mergeCues(speakerCues, { inheritSpeaker: true }), warnings };
}

/** Speaker from a <v> voice tag or a Zoom cue id, else an accepted "Name: " prefix on the cue's first line. */
function attachSpeakers(cues: RawCue[], cueLines: string[][]): Cue[] {
  const voices = cues.map((cue) => voiceTagSpeaker(cue.raw.join('\n')) ?? cueIdSpeaker(cue.id));
  const prefixes = cueLines.map((lines, i) => {
    const first = lines.find((l) => l.trim() !== '');
    return voices[i] === null && first !== undefined ? speakerPrefix(first.trim()) : null;
  });
  const accepted = acceptedNames(prefixes.flatMap((p) => (p ? [p.name] : [])));
  return cues.map((cue, i) => {
    const lines = cueLines[i].filter((l) => l.trim() !== '');
    const prefix = prefixes[i];
    let speaker = voices[i];
    if (prefix !== null && accepted.has(prefix.name)) {
      speaker = prefix.name;
      lines[0] = prefix.rest;
    }
    return { text: lines.join(' '), speaker, startMs: cue.startMs, endMs: cue.endMs };
  });
}

function readCues(lines: string[], warnings: string[]): RawCue[] {
  const cues: RawCue[] = [];
  let orphanLines = 0;
  let i = skipHeader(lines, warnings);
  while (i < lines.length) {
    const line = lines[i];
    if (line.trim() === '') {
      i += 1;
    } else if (BLOCK_KEYWORD.test(line)) {
      i = skipBlock(lines, i);
    } else if (isTimingLine(line) || (i + 1 < lines.length && isTimingLine(lines[i + 1]))) {
      const timingIndex = isTimingLine(line) ? i : i + 1; // else line i is the cue id
      const where = `vtt: cue ${cues.length + 1} (line ${timingIndex + 1})`;
      const timing = parseCueTiming(lines[timingIndex], where);
      const payload = readPayload(lines, timingIndex + 1);
      const id = timingIndex === i ? null : line;
      cues.push({ startMs: timing.startMs, endMs: timing.endMs, id, raw: payload.lines, plain: payload.lines.map(plainCueText) });
      i = payload.next;
    } else {
      // Text without a timing line: a blank line typed inside a cue's text. Keep it with that cue.
      const payload = readPayload(lines, i);
      const previous = cues.at(-1);
      if (previous) {
        previous.raw.push(...payload.lines);
        previous.plain.push(...payload.lines.map(plainCueText));
      }
      orphanLines += payload.lines.length;
      i = payload.next;
    }
  }
  if (orphanLines > 0) warnings.push(`vtt: ${orphanLines} text lines outside any cue timing block were joined to the cue before them`);
  return cues;
}

/** Index after the header block ("WEBVTT" line and header lines up to the first blank line). */
function skipHeader(lines: string[], warnings: string[]): number {
  if (!/^WEBVTT(?:[ \t]|$)/.test(lines[0] ?? '')) {
    warnings.push('vtt: no "WEBVTT" header on line 1; read as WebVTT anyway');
    return 0;
  }
  let i = 1;
  while (i < lines.length && lines[i].trim() !== '' && !isTimingLine(lines[i])) i += 1;
  return i;
}

/** NOTE / STYLE / REGION blocks run to the next blank line. */
function skipBlock(lines: string[], start: number): number {
  let i = start;
  while (i < lines.length && lines[i].trim() !== '') i += 1;
  return i;
}

/**
 * Cue text lines from `start` to the next empty line. A whitespace-only line (YouTube writes
 * " " lines inside cues) ends the cue only when a new cue follows it; a missing blank line
 * before the next cue (id line or timing line) also ends it.
 */
function readPayload(lines: string[], start: number): { lines: string[]; next: number } {
  const payload: string[] = [];
  let i = start;
  while (i < lines.length) {
    const line = lines[i];
    if (line === '' || isTimingLine(line)) break;
    if (isCueId(line) && i + 1 < lines.length && isTimingLine(lines[i + 1])) break; // next cue's id
    if (line.trim() === '' && startsCue(lines, i + 1)) break;
    payload.push(line);
    i += 1;
  }
  return { lines: payload, next: i };
}

/**
 * A cue id written without a blank line before it: one token ("17", "cue-3") or a numbered Zoom speaker id
 * (`12 "Jane Doe" (1677)`), not a sentence (a quoted line of text stays text).
 */
function isCueId(line: string): boolean {
  return /^\S+$/.test(line.trim()) || (cueIdSpeaker(line) !== null && /^\d+[ \t]/.test(line.trim()));
}

function startsCue(lines: string[], i: number): boolean {
  const line = lines[i];
  if (line === undefined) return false;
  return isTimingLine(line) || (line.trim() !== '' && i + 1 < lines.length && isTimingLine(lines[i + 1]));
}
