/**
 * Realistic synthetic transcripts from a seeded PRNG: meetings with 2–5 named speakers taking turns,
 * 40–80 words per segment in sentences with punctuation, fillers, numbers and domain terms, timestamps that
 * advance with speech rate. Every other transcript is rendered as WebVTT (`<v Name>` cues, as Teams writes
 * them), the rest as segment JSON, so the parser runs on both. Consecutive segments always have different
 * speakers, so a VTT transcript parses to exactly as many segments as were generated.
 */
import { mulberry32 } from '../test/support/prng.ts';

export interface SyntheticSegment {
  seq: number;
  text: string;
  speaker: string;
  start_ms: number;
  end_ms: number;
}

export interface SyntheticTranscript {
  documentId: string;
  title: string;
  format: 'segments' | 'vtt';
  payload: { segments: SyntheticSegment[] } | { text: string };
  segments: SyntheticSegment[];
  /** Characters of segment text (not of the rendered payload). */
  textChars: number;
}

export { mulberry32 };

const FIRST = ['Ann', 'Bilal', 'Chen', 'Dora', 'Emeka', 'Farah', 'Gustavo', 'Hana', 'Ivan', 'Jules', 'Kofi', 'Lena', 'Mateo', 'Nadia', 'Oskar', 'Priya', 'Quinn', 'Rosa', 'Sven', 'Tomoko'];
const LAST = ['Okafor', 'Lindqvist', 'Moreau', 'Kowalski', 'Haddad', 'Nakamura', 'Silva', 'Brennan', 'Petrov', 'Adeyemi', 'García', 'Schmidt'];
const FILLERS = ['um', 'uh', 'you know', 'I mean', 'like', 'so', 'right', 'okay', 'well', 'actually', 'basically', 'sort of'];
const SUBJECTS = ['we', 'I', 'the team', 'our customers', 'the billing service', 'the new dashboard', 'the migration', 'marketing', 'the read replica', 'the onboarding flow', 'legal', 'the mobile app', 'the search index', 'finance', 'the support queue', 'the data pipeline'];
const VERBS = ['need to look at', 'shipped', 'are still blocked on', 'should prioritise', 'reviewed', 'can probably drop', 'want to revisit', 'underestimated', 'rolled back', 'are measuring', 'talked to', 'have to document', 'could automate', 'moved', 'split up', 'are waiting on'];
const OBJECTS = ['the latency numbers', 'the pricing page', 'the quarterly roadmap', 'the retry logic', 'the customer interviews', 'the invoice export', 'the staging environment', 'the accessibility audit', 'the churn analysis', 'the API rate limits', 'the Postgres upgrade', 'the design review', 'the hiring plan', 'the incident report', 'the feature flags', 'the contract renewal', 'the embedding costs', 'the transcript backlog'];
const TAILS = ['before the end of the sprint', 'by Thursday', 'for the enterprise tier', 'after the offsite', 'in the next release', 'with the platform team', 'because of the outage last week', 'once we have the numbers', 'for about two weeks', 'in Europe first', 'without breaking the old clients', 'if legal signs off', 'at roughly 40 percent', 'since March', 'on the staging cluster'];
const REACTIONS = ['That makes sense.', 'I agree.', 'Can you say more about that?', 'Good point.', 'Hmm, not sure.', 'Yeah, exactly.', 'Let me check.', 'Right, okay.', 'That is a fair concern.', 'We tried that already.'];

function pick<T>(rng: () => number, list: readonly T[]): T {
  return list[Math.floor(rng() * list.length)];
}

function sentence(rng: () => number): string {
  const parts: string[] = [];
  if (rng() < 0.3) parts.push(pick(rng, FILLERS) + ',');
  parts.push(pick(rng, SUBJECTS), pick(rng, VERBS), pick(rng, OBJECTS));
  if (rng() < 0.6) parts.push(pick(rng, TAILS));
  if (rng() < 0.15) parts.push(`and it was ${Math.floor(rng() * 900) + 10} ms at p95`);
  const s = parts.join(' ');
  const end = rng() < 0.12 ? '?' : '.';
  return s.charAt(0).toUpperCase() + s.slice(1) + end;
}

/** 40–80 words of speech. */
function utterance(rng: () => number): string {
  const target = 40 + Math.floor(rng() * 41);
  const out: string[] = [];
  let words = 0;
  if (rng() < 0.25) {
    const r = pick(rng, REACTIONS);
    out.push(r);
    words += r.split(' ').length;
  }
  while (words < target) {
    const s = sentence(rng);
    out.push(s);
    words += s.split(' ').length;
  }
  return out.join(' ');
}

function vttTime(ms: number): string {
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = Math.floor((ms % 60_000) / 1000);
  const f = ms % 1000;
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(h)}:${p(m)}:${p(s)}.${p(f, 3)}`;
}

export function toVtt(segments: readonly SyntheticSegment[]): string {
  const cues = segments.map((s) => `${vttTime(s.start_ms)} --> ${vttTime(s.end_ms)}\n<v ${s.speaker}>${s.text}</v>`);
  return `WEBVTT\n\n${cues.join('\n\n')}\n`;
}

export interface GenerateOptions {
  seed?: number;
  /** Render as: alternate (default), or all one format. */
  format?: 'alternate' | 'segments' | 'vtt';
  prefix?: string;
  /** Stop once the meeting has this many words of speech (segmentCount is then an upper bound). */
  words?: number;
}

export function generateTranscript(index: number, segmentCount: number, options: GenerateOptions = {}): SyntheticTranscript {
  const rng = mulberry32((options.seed ?? 42) * 1_000_003 + index);
  const nSpeakers = 2 + Math.floor(rng() * 4);
  const speakers = Array.from({ length: nSpeakers }, () => `${pick(rng, FIRST)} ${pick(rng, LAST)}`);
  const segments: SyntheticSegment[] = [];
  let t = Math.floor(rng() * 5000);
  let last = -1;
  let textChars = 0;
  let wordCount = 0;
  for (let seq = 1; seq <= segmentCount && (options.words === undefined || wordCount < options.words); seq++) {
    let who = Math.floor(rng() * nSpeakers);
    if (who === last) who = (who + 1) % nSpeakers;
    last = who;
    const text = utterance(rng);
    const words = text.split(' ').length;
    wordCount += words;
    const duration = Math.round(words * (330 + rng() * 120));
    segments.push({ seq, text, speaker: speakers[who], start_ms: t, end_ms: t + duration });
    textChars += text.length;
    t += duration + Math.floor(rng() * 900);
  }
  const mode = options.format ?? 'alternate';
  const format = mode === 'alternate' ? (index % 2 === 0 ? 'segments' : 'vtt') : mode;
  const documentId = `${options.prefix ?? 'bench'}-${String(index).padStart(4, '0')}`;
  return {
    documentId,
    title: `Synthetic meeting ${index} (${segments.length} segments)`,
    format,
    payload: format === 'segments' ? { segments } : { text: toVtt(segments) },
    segments,
    textChars,
  };
}

export function generateTranscripts(count: number, segmentCount: number, options: GenerateOptions = {}): SyntheticTranscript[] {
  return Array.from({ length: count }, (_, i) => generateTranscript(i, segmentCount, options));
}
