/**
 * SubRip (.srt) -> Segment[]. Pure.
 *
 * Handles numbered cues, "00:00:01,000 --> 00:00:02,500" (a dot before the milliseconds is
 * tolerated), <i>/<b>/<u>/<font> tags and {\an8} ASS overrides stripped, entities decoded,
 * multi-line cues joined with a space, text lines without a timing block (a blank line typed
 * inside a cue) joined to the cue before them.
 *
 * Speakers (decision): SDH subtitles mark a speaker as "[Claire] Raoul!" or "-[Belkacem] Are
 * you sick?". A cue gets that speaker only when it is clearly a name tag:
 * - the bracket opens the cue's first line (after an optional dialogue dash) and text follows it
 *   ("[Claire panting]" alone is a sound cue: kept as text);
 * - the bracket holds a capitalised name of 1-5 words ("[inspector]", "[boy]" are descriptions
 *   of who speaks, kept as text);
 * - the cue is not a two-speaker dialogue (two or more lines opening with "-"); such cues keep
 *   their dashes and tags as text: "-Brown skin? -[Claire] Yeah.".
 * The tag is removed from the text when it becomes the speaker. Untagged cues never inherit a
 * speaker (tags are sparse hints, not turn markers); a tagged speaker's consecutive cues join.
 */
import { BadInputError } from '../errors.ts';
import type { Segment } from '../types.ts';
import { normaliseRawText, quote } from './clean-text.ts';
import { isPlausibleName, looksLikeName, plainCueText } from './cue-text.ts';
import { mergeCues, type Cue } from './merge-cues.ts';
import { isTimingLine, parseCueTiming } from './timestamps.ts';

interface Block {
  /** 0-based index of the block's first line. */
  start: number;
  lines: string[];
}

export function parseSrt(text: string): { segments: Segment[]; warnings: string[] } {
  const warnings: string[] = [];
  const cues: Cue[] = [];
  let orphanLines = 0;
  for (const block of splitBlocks(normaliseRawText(text))) {
    const timingAt = findTimingLine(block, cues.length === 0);
    if (timingAt === null) {
      const previous = cues.at(-1) as Cue; // findTimingLine throws when there is none
      previous.text += ` ${block.lines.map(plainCueText).join(' ')}`;
      orphanLines += block.lines.length;
      continue;
    }
    const number = timingAt === 1 ? block.lines[0].trim() : String(cues.length + 1);
    const where = `srt: cue ${number} (line ${block.start + timingAt + 1})`;
    const timing = parseCueTiming(block.lines[timingAt], where);
    const { speaker, lines } = speakerTag(block.lines.slice(timingAt + 1).map(plainCueText));
    cues.push({ text: lines.join(' '), speaker, startMs: timing.startMs, endMs: timing.endMs });
  }
  if (cues.length === 0) {
    throw new BadInputError('srt: no cues found (expected a number line, then "00:00:01,000 --> 00:00:02,500")');
  }
  if (orphanLines > 0) warnings.push(`srt: ${orphanLines} text lines outside any cue were joined to the cue before them`);
  return { segments: mergeCues(cues, { inheritSpeaker: false }), warnings };
}

/** Blocks of consecutive non-blank lines, with their starting line index. */
function splitBlocks(text: string): Block[] {
  const blocks: Block[] = [];
  let current: Block | null = null;
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') {
      current = null;
    } else if (current === null) {
      current = { start: i, lines: [line] };
      blocks.push(current);
    } else {
      current.lines.push(line);
    }
  });
  return blocks;
}

/**
 * Where the block's timing line is: 0 (no cue number), 1 (after the cue number), or null for a
 * text-only block (continuation of the previous cue). Throws when the block cannot be a cue.
 */
function findTimingLine(block: Block, first: boolean): 0 | 1 | null {
  if (isTimingLine(block.lines[0])) return 0;
  if (block.lines.length > 1 && isTimingLine(block.lines[1])) return 1;
  const line = block.start + 1;
  if (/^\d+$/.test(block.lines[0].trim())) {
    const got = block.lines[1] === undefined ? 'nothing' : quote(block.lines[1]);
    throw new BadInputError(
      `srt: cue ${block.lines[0].trim()} (line ${line}): expected a timing line "00:00:01,000 --> 00:00:02,500" after the cue number, got ${got}`,
    );
  }
  if (first) {
    throw new BadInputError(
      `srt: line ${line}: expected a cue number then "00:00:01,000 --> 00:00:02,500", got ${quote(block.lines[0])}`,
    );
  }
  return null;
}

const SPEAKER_TAG = /^-?\s*\[([^[\]]{1,40})\]\s*(.*)$/;

/**
 * Applies the speaker-tag decision documented at the top of this file. The tag may stand alone
 * on the first line ("[Claire]" then the text on the next line).
 */
function speakerTag(lines: string[]): { speaker: string | null; lines: string[] } {
  const dialogueLines = lines.filter((l) => l.trimStart().startsWith('-')).length;
  const m = SPEAKER_TAG.exec(lines[0]?.trim() ?? '');
  if (!m || dialogueLines >= 2) return { speaker: null, lines };
  const name = m[1].trim();
  const rest = m[2] === '' ? lines.slice(1) : [m[2], ...lines.slice(1)];
  if (rest.join('').trim() === '' || !isPlausibleName(name) || !looksLikeName(name)) return { speaker: null, lines };
  return { speaker: name, lines: rest };
}
