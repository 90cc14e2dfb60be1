/** Cue-text helpers shared by VTT, SRT and plain text: tags, entities, speaker names. Pure. */

// Markup tags: <b> </i> <c.color> <v Name> <lang en> <font color="..."> <ruby> ...
const MARKUP_TAG = /<\/?[A-Za-z][^<>]*>/g;
// VTT inline timestamps: <00:00:06.560> (YouTube word timings).
const TIMESTAMP_TAG = /<\d+(?::\d+){1,2}(?:[.,]\d+)?>/g;
// SSA/ASS override blocks left in SRT files: {\an8} {\i1} {\pos(10,20)}.
const ASS_TAG = /\{\\[^{}]*\}/g;

export function hasInlineTimestamps(text: string): boolean {
  TIMESTAMP_TAG.lastIndex = 0;
  return TIMESTAMP_TAG.test(text);
}

export function stripTags(text: string): string {
  return text.replace(TIMESTAMP_TAG, '').replace(MARKUP_TAG, '').replace(ASS_TAG, '');
}

const NAMED_ENTITIES: Record<string, string> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: ' ',
  lrm: '',
  rlm: '',
};

/** Decodes the entities VTT/SRT writers emit; &lrm; and &rlm; (invisible marks) become nothing. */
export function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]{1,6}|#\d{1,7}|[a-zA-Z]{2,6});/g, (whole, body: string) => {
    if (body.startsWith('#')) {
      const code = body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : Number(body.slice(1));
      if (code === 0 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return '';
      return String.fromCodePoint(code);
    }
    return NAMED_ENTITIES[body.toLowerCase()] ?? whole;
  });
}

/** Tags stripped then entities decoded (in that order, so "&lt;b&gt;" stays visible text). */
export function plainCueText(text: string): string {
  return decodeEntities(stripTags(text));
}

/** The name in the first `<v Name>` / `<v.loud Name>` voice tag, as given (Teams writes GUIDs). */
export function voiceTagSpeaker(text: string): string | null {
  const m = /<v(?:\.[^\s>]*)?[ \t]+([^>]*)>/.exec(text);
  const name = m?.[1]?.trim();
  return name ? name : null;
}

const MAX_NAME_CHARS = 40;
const MAX_NAME_WORDS = 5;
// Sentence punctuation never found in a display name; "(SL)" style suffixes are allowed.
const SENTENCE_PUNCTUATION = /[.,;!?"“”…]/;
const LOWERCASE_PARTICLES = new Set(['van', 'von', 'de', 'der', 'den', 'da', 'di', 'du', 'la', 'le', 'bin', 'al', 'y']);

/**
 * Could `name` be a speaker label? Conservative: 1-40 chars, at most 5 words, starts with a
 * letter or digit, no sentence punctuation, no URL, no further colon.
 */
export function isPlausibleName(name: string): boolean {
  if (name.length === 0 || name.length > MAX_NAME_CHARS) return false;
  if (!/^[\p{L}\p{N}]/u.test(name)) return false;
  if (SENTENCE_PUNCTUATION.test(name) || name.includes(':') || name.includes('/')) return false;
  return name.split(/\s+/).length <= MAX_NAME_WORDS;
}

/**
 * Looks like a name on its own: every word capitalised, a digit, SPEAKER_01-style, a
 * "(SL)"-style group or a particle such as "van"/"de". "So the plan" is not; "Ann Lee (SL)" is.
 */
export function looksLikeName(name: string): boolean {
  return name
    .split(/\s+/)
    .every((word) => /^[\p{Lu}\p{Lt}\p{N}]/u.test(word) || /^\(.*\)$/.test(word) || LOWERCASE_PARTICLES.has(word));
}

/**
 * "Name: text" at the start of a line, with a plausible name (see isPlausibleName). Returns a
 * candidate only: the caller accepts it via acceptedNames (file-level evidence).
 */
export function speakerPrefix(line: string): { name: string; rest: string } | null {
  const m = /^([^:]{1,40}?):[ \t]+(\S.*)$/.exec(line);
  if (!m) return null;
  const name = m[1].trim();
  return isPlausibleName(name) ? { name, rest: m[2] } : null;
}

/**
 * Which candidate names are accepted as speakers: those that look like a name on their own
 * (looksLikeName), and any other plausible label used at least twice in the file (a display
 * name like "john's iphone" recurs; a one-off "So the plan: ..." does not).
 */
export function acceptedNames(candidates: Iterable<string>): Set<string> {
  const counts = new Map<string, number>();
  for (const name of candidates) counts.set(name, (counts.get(name) ?? 0) + 1);
  const accepted = new Set<string>();
  for (const [name, count] of counts) {
    if (looksLikeName(name) || count >= 2) accepted.add(name);
  }
  return accepted;
}
