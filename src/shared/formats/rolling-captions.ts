/**
 * YouTube auto-captions de-duplication. Pure.
 *
 * YouTube (and yt-dlp downloads of it) write "rolling" 2-line captions: each cue repeats the
 * previous cue's last line above its new line (the one carrying <00:00:06.560><c> word</c>
 * timings), and a 10 ms "snapshot" cue between them repeats the line again. Read naively every
 * spoken word appears two or three times.
 *
 * Approach: after tags are stripped, a cue keeps only the lines that were not lines of the
 * cue right before it; a cue left with nothing (a snapshot) produces no text. A line spoken
 * twice in a row on purpose would be lost, which is why this runs only on files that show the
 * rolling pattern (isRollingCaptions), never on ordinary VTT.
 */

/** Lines of one cue: `raw` as written (tags included), `plain` with tags stripped. */
export interface CueLines {
  raw: string[];
  plain: string[];
}

const MIN_ROLLING_CUES = 3;

function nonBlank(lines: string[]): string[] {
  return lines.map((l) => l.replace(/\s+/g, ' ').trim()).filter((l) => l !== '');
}

/**
 * Rolling captions: some cue carries inline word timestamps (<00:00:06.560>), or at least
 * half of the multi-line cues (and at least 3) start with the previous cue's last line.
 */
export function isRollingCaptions(cues: CueLines[], hasInlineTimestamps: (text: string) => boolean): boolean {
  if (cues.some((cue) => cue.raw.some(hasInlineTimestamps))) return true;
  let multiLine = 0;
  let rolled = 0;
  let previousLast: string | undefined;
  for (const cue of cues) {
    const lines = nonBlank(cue.plain);
    if (lines.length >= 2) {
      multiLine += 1;
      if (lines[0] === previousLast) rolled += 1;
    }
    previousLast = lines.at(-1);
  }
  return rolled >= MIN_ROLLING_CUES && rolled * 2 >= multiLine;
}

/** Each cue's plain lines minus those that were lines of the previous cue; counts what it removed. */
export function dropRepeatedLines(cues: CueLines[]): { lines: string[][]; removed: number } {
  let previous = new Set<string>();
  let removed = 0;
  const lines = cues.map((cue) => {
    const current = nonBlank(cue.plain);
    const fresh = current.filter((line) => !previous.has(line));
    removed += current.length - fresh.length;
    previous = new Set(current);
    return fresh;
  });
  return { lines, removed };
}
