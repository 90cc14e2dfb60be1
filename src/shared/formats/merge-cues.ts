/** Turns parsed cues into Segment[]: cleans text, drops blanks, joins a speaker's consecutive cues. Pure. */
import type { Segment } from '../types.ts';
import { cleanSegmentText } from './clean-text.ts';

/** One cue / turn / paragraph as a format parser read it, before joining. */
export interface Cue {
  text: string;
  speaker: string | null;
  startMs: number | null;
  endMs: number | null;
}

export interface MergeOptions {
  /**
   * A cue without a speaker that follows a speaker's cue belongs to that speaker (Zoom writes
   * "Name: " only when the speaker changes or after a pause). Off for SRT, whose speaker tags
   * are sparse SDH hints, not turn markers.
   */
  inheritSpeaker: boolean;
}

interface OpenSegment {
  parts: string[];
  speaker: string | null;
  startMs: number | null;
  endMs: number | null;
}

/**
 * Consecutive cues of the same (non-null) speaker become one segment: texts joined with a
 * space, startMs of the first, endMs of the last (null when the last one's end is unknown;
 * the latest end among them when cues overlap out of order, as in Teams files). Cues without any speaker stay one segment each:
 * a speakerless file is never collapsed into one giant segment; the chunker packs them.
 * Blank texts are dropped; seq is 1..n in output order.
 */
export function mergeCues(cues: Iterable<Cue>, options: MergeOptions): Segment[] {
  const open: OpenSegment[] = [];
  let lastSpeaker: string | null = null;
  for (const cue of cues) {
    const text = cleanSegmentText(cue.text);
    if (text === '') continue;
    const own = cue.speaker === null ? null : cleanSegmentText(cue.speaker) || null;
    const speaker: string | null = own ?? (options.inheritSpeaker ? lastSpeaker : null);
    lastSpeaker = speaker;
    const current = open.at(-1);
    if (current !== undefined && speaker !== null && current.speaker === speaker) {
      current.parts.push(text);
      current.startMs ??= cue.startMs;
      current.endMs = cue.endMs === null ? null : laterOf(current.endMs, cue.endMs);
    } else {
      open.push({ parts: [text], speaker, startMs: cue.startMs, endMs: cue.endMs });
    }
  }
  return open.map((s, i) => ({
    seq: i + 1,
    text: s.parts.join(' '),
    speaker: s.speaker,
    startMs: s.startMs,
    endMs: s.endMs,
  }));
}

function laterOf(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.max(a, b);
}
