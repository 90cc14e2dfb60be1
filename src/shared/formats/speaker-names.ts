/**
 * A job's `metadata.speaker_names` map, applied to parsed segments before chunking. Pure.
 *
 * {"spk_0": "Ann", "Speaker 1": "Bob", "2": "Cho"}: a key matches a segment's speaker label
 * exactly as the format gave it ("spk_0", "A", "SPEAKER_00", "Speaker 1"); a bare number also
 * matches "Speaker N" (Deepgram's speaker 0 is "Speaker 0", so {"0": "Ann"} works too). Values are
 * the names to store: non-empty strings. Keys that match no speaker are reported as a warning.
 */
import { BadInputError } from '../errors.ts';
import type { Segment } from '../types.ts';
import { cleanSegmentText, describeValue, isRecord, quote } from './clean-text.ts';

export type SpeakerNames = ReadonlyMap<string, string>;

const MAX_LISTED = 5;

/** Reads metadata.speaker_names: null when absent; BadInputError naming the bad entry otherwise. */
export function readSpeakerNames(value: unknown): SpeakerNames | null {
  if (value === undefined || value === null) return null;
  if (!isRecord(value)) {
    throw new BadInputError(`metadata.speaker_names: expected an object like {"spk_0": "Ann"}, got ${describeValue(value)}`);
  }
  const names = new Map<string, string>();
  for (const [key, name] of Object.entries(value)) {
    const clean = typeof name === 'string' ? cleanSegmentText(name) : '';
    if (clean === '') {
      throw new BadInputError(`metadata.speaker_names[${quote(key, 30)}]: expected a non-empty name, got ${describeValue(name)}`);
    }
    names.set(key.trim(), clean);
  }
  return names;
}

export function applySpeakerNames(segments: Segment[], names: SpeakerNames | null): { segments: Segment[]; warnings: string[] } {
  if (names === null || names.size === 0) return { segments, warnings: [] };
  const used = new Set<string>();
  const renamed = segments.map((segment) => {
    if (segment.speaker === null) return segment;
    const key = keyFor(segment.speaker, names);
    if (key === null) return segment;
    used.add(key);
    return { ...segment, speaker: names.get(key) as string };
  });
  const unused = [...names.keys()].filter((key) => !used.has(key));
  if (unused.length === 0) return { segments: renamed, warnings: [] };
  const listed = unused.slice(0, MAX_LISTED).map((key) => quote(key, 30)).join(', ') + (unused.length > MAX_LISTED ? ', …' : '');
  return { segments: renamed, warnings: [`metadata.speaker_names: ${unused.length} of ${names.size} keys matched no speaker (${listed})`] };
}

function keyFor(speaker: string, names: SpeakerNames): string | null {
  if (names.has(speaker)) return speaker;
  const numbered = /^Speaker (\d+)$/.exec(speaker);
  return numbered !== null && names.has(numbered[1]) ? numbered[1] : null;
}
