/**
 * Plain text -> Segment[]. Pure.
 *
 * Recognised line shapes (after trimming):
 *   [00:01:10] Ann: text     (00:01:10) Ann: text     [01:10] text (stamp, no speaker)
 *   Ann [00:01:10]: text     Ann (01:10): text        Ann: text
 *   SPEAKER_01:              (a speaker alone on its line: WhisperX text renders; the lines
 *                             after it, up to a blank line or the next speaker, are its text)
 *   Speaker 1  0:05          (Otter-style header: name then a stamp, text on the next lines)
 * Any other line continues the current turn; a blank line (or one of only zero-width / format
 * characters, see isInvisibleText) ends it. Without any speaker or
 * stamp, blank-line separated paragraphs become segments (no speaker, null times).
 * A "Name:" prefix counts only for a plausible name (cue-text.ts) that looks like a name or is
 * used at least twice. A turn's start is its stamp; its end is the next turn's stamp, if it has one.
 * A stamp of the right shape with impossible values ("[00:61:00]") is an error.
 * Otter's export footer ("Transcribed by https://otter.ai", also written "<https://otter.ai>") is
 * not speech and is left out.
 */
import { BadInputError } from '../errors.ts';
import type { Segment } from '../types.ts';
import { isInvisibleText } from '../text-hygiene.ts';
import { normaliseRawText, quote } from './clean-text.ts';
import { acceptedNames, isPlausibleName } from './cue-text.ts';
import { mergeCues, type Cue } from './merge-cues.ts';
import { parseClock } from './timestamps.ts';

const T = String.raw`\d{1,2}:\d{1,2}(?::\d{1,2})?(?:[.,]\d{1,3})?`;
const STAMP = String.raw`(?:\[${T}\]|\(${T}\))`;
const STAMP_FIRST = new RegExp(String.raw`^(${STAMP})\s*(.*)$`);
const NAME_COLON = new RegExp(String.raw`^([^:]{1,40}?)\s*(${STAMP})?\s*:(?:\s+(.*))?$`);
const NAME_THEN_STAMP = new RegExp(String.raw`^([^:]{1,40}?)\s+(${STAMP}|${T})\s*$`);

/**
 * One classified line. `name` is a candidate speaker (accepted later, file-wide); `text` is the
 * line's text if the name is accepted, `fallback` if not (the line without a leading stamp).
 */
interface Line {
  no: number;
  name: string | null;
  stamp: string | null;
  stampLeads: boolean;
  text: string;
  fallback: string;
}

interface Turn {
  speaker: string | null;
  startMs: number | null;
  lines: string[];
}

const OTTER_FOOTER = /^Transcribed by <?https?:\/\/otter\.ai\/?>?$/i;

export function parsePlainText(text: string): { segments: Segment[]; warnings: string[] } {
  const lines = normaliseRawText(text)
    .split('\n')
    .map((line, i) => classify(isInvisibleText(line) || OTTER_FOOTER.test(line.trim()) ? '' : line.trim(), i + 1));
  const accepted = acceptedNames(lines.flatMap((l) => (l.name === null ? [] : [l.name])));
  const turns: Turn[] = [];
  let current: Turn | null = null;
  for (const line of lines) {
    const named = line.name !== null && accepted.has(line.name);
    if (named || line.stampLeads) {
      const body = named ? line.text : line.fallback;
      current = { speaker: named ? line.name : null, startMs: stampMs(line), lines: body ? [body] : [] };
      turns.push(current);
    } else if (line.fallback === '') {
      current = null;
    } else {
      if (current === null) {
        current = { speaker: null, startMs: null, lines: [] };
        turns.push(current);
      }
      current.lines.push(line.fallback);
    }
  }
  return { segments: mergeCues(withEnds(turns), { inheritSpeaker: true }), warnings: [] };
}

function classify(line: string, no: number): Line {
  const stampFirst = STAMP_FIRST.exec(line);
  if (stampFirst) {
    const rest = stampFirst[2];
    const named = nameColon(rest);
    const usable = named !== null && named.stamp === null ? named : null; // "[01:10] Ann [01:12]:" is text
    return { no, name: usable?.name ?? null, stamp: stampFirst[1], stampLeads: true, text: usable?.text ?? rest, fallback: rest };
  }
  const named = nameColon(line);
  if (named) return { no, ...named, stampLeads: false, fallback: line };
  const header = NAME_THEN_STAMP.exec(line);
  if (header && isPlausibleName(header[1].trim())) {
    return { no, name: header[1].trim(), stamp: header[2], stampLeads: false, text: '', fallback: line };
  }
  return { no, name: null, stamp: null, stampLeads: false, text: line, fallback: line };
}

function nameColon(line: string): { name: string; stamp: string | null; text: string } | null {
  const m = NAME_COLON.exec(line);
  if (!m || !isPlausibleName(m[1].trim())) return null;
  return { name: m[1].trim(), stamp: m[2] ?? null, text: m[3] ?? '' };
}

function stampMs(line: Line): number | null {
  if (line.stamp === null) return null;
  const ms = parseClock(line.stamp.replace(/^[[(]|[\])]$/g, ''));
  if (ms === null) throw new BadInputError(`text: line ${line.no}: bad timestamp ${quote(line.stamp)}`);
  return ms;
}

/**
 * Cues with end = the stamp of the very next turn, when it has one that is not earlier than
 * this turn's own stamp; otherwise null (an unstamped turn in between means we do not know).
 */
function withEnds(turns: Turn[]): Cue[] {
  return turns.map((turn, i) => {
    const next = turns[i + 1]?.startMs ?? null;
    const endMs = turn.startMs !== null && next !== null && next >= turn.startMs ? next : null;
    return { text: turn.lines.join(' '), speaker: turn.speaker, startMs: turn.startMs, endMs };
  });
}
