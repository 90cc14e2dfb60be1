/**
 * Secret redaction for everything that leaves the process: log lines, error_detail, status and config output.
 *
 * Two kinds of rules:
 *
 * 1. Configured secrets (secretsOf(config): API keys, DATABASE_URL, the password or token in a URL's userinfo,
 *    secret query parameters), matched literally and case-sensitively:
 *    - a secret of 4+ characters is removed wherever it appears whole, also JSON-escaped or percent-encoded;
 *    - a secret of 12+ characters that is not itself a URL is also removed in pieces, as providers quote keys:
 *      a. every maximal run of text that equals a prefix or a suffix of the secret, 6+ characters long
 *         ("gsk_live_ABC", the first or last 8 characters) — except a run that looks like a word (only letters,
 *         all lower case, Capitalised or ALL CAPS, under 10 characters), so a passphrase starting "correct-…"
 *         does not take the word "correct" out of every log line;
 *      b. masked forms: prefix + mask + suffix, the mask being a run of `*`, `•`, `·`, `…` or 2+ dots
 *         ("gsk_live_ABC***5678", "gsk_…5678", "gsk_***78"), when the visible ends hold 6+ characters of the
 *         secret together, or one end holds 4+ next to a mask of 3+ characters ("****5678").
 *    Short pieces, middle pieces and pieces of URL secrets are never matched on their own: they are either
 *    too ambiguous (common words, "postgres") or not what providers quote. Only configured secrets are matched
 *    this way, so ordinary text never loses anything to rule 1 unless it repeats part of a real secret.
 * 2. Patterns, configured or not: the password (user:password@) or token (token@) in the userinfo of a URL of
 *    any scheme; secret-named query parameters (?api_key=, &password=, …); OpenAI/Anthropic-style keys
 *    (incl. masked: "sk-abc***...wxyz"); bearer tokens; JWTs; whatever follows "Incorrect API key provided:".
 *
 * Cost: rule 1 is a few indexOf scans per secret (prepared once per secret list and cached), rule 2 a handful
 * of linear regexes: 0.05 ms for a 10 kB line of prose with 3 secrets, 0.2 ms for one dense with masks and URLs
 * (test/unit/redact.test.ts measures it).
 */
const KEY_PATTERNS: RegExp[] = [
  /\b(?:sk|rk|pk)-(?:proj-|ant-|live-|test-|svcacct-)?[A-Za-z0-9_*.\-]{3,}/g, // OpenAI / Anthropic style keys (incl. masked)
  /\bBearer\s+(?=[A-Za-z._~+/=\-]*\d)[A-Za-z0-9._~+/=\-]{8,}/g, // the HTTP scheme with a token (has a digit), not the English word
  /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g, // JWT (Supabase service-role keys)
  /(Incorrect API key provided:\s*)\S+/gi,
];

export const REDACTED = '[redacted]';

/** Configured secrets shorter than this are ignored (they would shred ordinary text). */
const EXACT_MIN = 4;
/** Secrets at least this long are also matched in pieces. */
const FRAGMENT_SECRET_MIN = 12;
/** The shortest prefix/suffix run that counts as a piece of a secret. */
const FRAGMENT_MIN = 6;

/**
 * scheme://userinfo@ — userinfo runs to the last "@" before the authority ends ("/", "?", "#", whitespace,
 * quotes), so an unencoded "@" in a password is hidden too.
 */
const URL_USERINFO = /\b([a-z][a-z0-9+.\-]*:\/\/)([^\s/?#"'<>\\]*)@/gi;
const SECRET_QUERY_PARAMS = /([?&](?:password|passwd|pwd|pass|sslpassword|secret|client_secret|token|access_token|refresh_token|id_token|auth|api[-_]?key|key|sig|signature)=)[^&#\s"'<>]+/gi;

interface FragmentSecret {
  secret: string;
  /** For each character: the lengths k of the secret's prefixes ending in it, longest first. */
  prefixEnds: Map<number, number[]>;
  /** For each character: the lengths k of the secret's suffixes starting with it, longest first. */
  suffixStarts: Map<number, number[]>;
}

interface Prepared {
  /** Literal forms to remove whole, longest first. */
  exact: string[];
  /** Secrets also matched in pieces. */
  fragment: FragmentSecret[];
}

const preparedCache = new Map<string, Prepared>();

function indexByChar(secret: string, charAt: (k: number) => number): Map<number, number[]> {
  const map = new Map<number, number[]>();
  for (let k = secret.length - 1; k > 0; k--) {
    const c = charAt(k);
    const list = map.get(c);
    if (list) list.push(k);
    else map.set(c, [k]);
  }
  return map;
}

function prepare(secrets: readonly string[]): Prepared {
  const cacheKey = secrets.join('\u0000');
  const hit = preparedCache.get(cacheKey);
  if (hit) return hit;
  const exact = new Set<string>();
  const fragment = new Map<string, FragmentSecret>();
  for (const secret of secrets) {
    if (typeof secret !== 'string' || secret.length < EXACT_MIN) continue;
    exact.add(secret);
    exact.add(JSON.stringify(secret).slice(1, -1)); // as it appears inside a JSON log line
    exact.add(encodeURIComponent(secret)); // as it appears in a query string or a URL's userinfo
    if (secret.length >= FRAGMENT_SECRET_MIN && !secret.includes('://') && !fragment.has(secret)) {
      const n = secret.length;
      fragment.set(secret, {
        secret,
        prefixEnds: indexByChar(secret, (k) => secret.charCodeAt(k - 1)),
        suffixStarts: indexByChar(secret, (k) => secret.charCodeAt(n - k)),
      });
    }
  }
  const prepared = { exact: [...exact].sort((a, b) => b.length - a.length), fragment: [...fragment.values()] };
  if (preparedCache.size > 64) preparedCache.clear();
  preparedCache.set(cacheKey, prepared);
  return prepared;
}

/** A run that could be an ordinary word: letters only, one case (or Capitalised), under 10 characters. */
function wordLike(run: string): boolean {
  return run.length < 10 && /^(?:[a-z]+|[A-Z][a-z]+|[A-Z]+)$/.test(run);
}

const STAR = 42; // *
const DOT = 46; // .
const BULLET = 0x2022; // •
const MIDDLE_DOT = 0xb7; // ·
const ELLIPSIS = 0x2026; // …

function isMaskChar(c: number): boolean {
  return c === STAR || c === DOT || c === BULLET || c === MIDDLE_DOT || c === ELLIPSIS;
}

/** Mask runs of the text: [start, end) pairs; a lone dot is punctuation, not a mask. */
function maskRuns(text: string): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  const n = text.length;
  for (let i = 0; i < n; i++) {
    if (!isMaskChar(text.charCodeAt(i))) continue;
    let j = i + 1;
    while (j < n && isMaskChar(text.charCodeAt(j))) j++;
    if (j - i > 1 || text.charCodeAt(i) !== DOT) runs.push([i, j]);
    i = j;
  }
  return runs;
}

/** Length of the longest prefix of the secret (shorter than the whole) that ends at text[end - 1]. */
function prefixEndingAt(text: string, end: number, f: FragmentSecret): number {
  if (end === 0) return 0;
  const candidates = f.prefixEnds.get(text.charCodeAt(end - 1));
  if (!candidates) return 0;
  for (const k of candidates) {
    if (k > end) continue;
    let j = 1;
    while (j < k && text.charCodeAt(end - 1 - j) === f.secret.charCodeAt(k - 1 - j)) j++;
    if (j === k) return k;
  }
  return 0;
}

/** Length of the longest suffix of the secret (shorter than the whole) that starts at text[start]. */
function suffixStartingAt(text: string, start: number, f: FragmentSecret): number {
  if (start >= text.length) return 0;
  const candidates = f.suffixStarts.get(text.charCodeAt(start));
  if (!candidates) return 0;
  const n = f.secret.length;
  for (const k of candidates) {
    if (start + k > text.length) continue;
    let j = 1;
    while (j < k && text.charCodeAt(start + j) === f.secret.charCodeAt(n - k + j)) j++;
    if (j === k) return k;
  }
  return 0;
}

/** [start, end) ranges of the text holding a configured secret, whole or in pieces (rule 1). */
function secretRanges(text: string, prepared: Prepared): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  for (const form of prepared.exact) {
    for (let i = text.indexOf(form); i >= 0; i = text.indexOf(form, i + form.length)) ranges.push([i, i + form.length]);
  }
  let masks: Array<[number, number]> | undefined;
  for (const f of prepared.fragment) {
    const { secret } = f;
    const n = secret.length;
    // a. prefix runs: every one of 6+ characters starts with the secret's first 6.
    const head = secret.slice(0, FRAGMENT_MIN);
    for (let i = text.indexOf(head); i >= 0; i = text.indexOf(head, i + 1)) {
      let k = FRAGMENT_MIN;
      while (k < n && i + k < text.length && text.charCodeAt(i + k) === secret.charCodeAt(k)) k++;
      if (!wordLike(text.slice(i, i + k))) ranges.push([i, i + k]);
    }
    // a. suffix runs: every one of 6+ characters ends with the secret's last 6.
    const tail = secret.slice(-FRAGMENT_MIN);
    for (let i = text.indexOf(tail); i >= 0; i = text.indexOf(tail, i + 1)) {
      const end = i + FRAGMENT_MIN;
      let k = FRAGMENT_MIN;
      while (k < n && end - k - 1 >= 0 && text.charCodeAt(end - k - 1) === secret.charCodeAt(n - k - 1)) k++;
      if (!wordLike(text.slice(end - k, end))) ranges.push([end - k, end]);
    }
    // b. masked forms around each mask run.
    masks ??= maskRuns(text);
    for (const [a, b] of masks) {
      const p = prefixEndingAt(text, a, f);
      const s = suffixStartingAt(text, b, f);
      const maskLength = b - a;
      const longMask = maskLength >= 3 || text[a] === '…';
      if ((p > 0 && s > 0 && p + s >= FRAGMENT_MIN) || (longMask && (p >= 4 || s >= 4))) ranges.push([a - p, b + s]);
    }
  }
  return ranges;
}

/** Replaces the ranges (merged where they overlap or touch) with REDACTED. */
function cut(text: string, ranges: Array<[number, number]>): string {
  if (ranges.length === 0) return text;
  ranges.sort((x, y) => x[0] - y[0] || y[1] - x[1]);
  let out = '';
  let at = 0;
  let [start, end] = ranges[0];
  for (let i = 1; i <= ranges.length; i++) {
    const next = ranges[i];
    if (next && next[0] <= end) {
      end = Math.max(end, next[1]);
      continue;
    }
    out += text.slice(at, start) + REDACTED;
    at = end;
    if (next) [start, end] = next;
  }
  return out + text.slice(at);
}

/** A userinfo without a password that reads as a user name ("postgres", "rag", "bob.smith"), not a token. */
function plainUserName(user: string): boolean {
  return user.length < 8 || (user.length <= 32 && /^[A-Za-z][A-Za-z._-]*$/.test(user));
}

/**
 * Hides the credentials in every URL of the text: the password of user:password@ (the user name stays: it
 * helps and is not a secret), a token@ userinfo unless it reads as a plain user name, and secret-named query
 * parameters. allUserinfo: hide the whole userinfo of every URL (for showing a setting's value).
 */
export function redactUrlCredentials(text: string, { allUserinfo = false }: { allUserinfo?: boolean } = {}): string {
  if (!text.includes('://') && !text.includes('=')) return text;
  return text
    .replace(URL_USERINFO, (match, scheme: string, userinfo: string) => {
      if (allUserinfo) return userinfo === '' ? match : `${scheme}${REDACTED}@`;
      const colon = userinfo.indexOf(':');
      if (colon >= 0) return colon === userinfo.length - 1 ? match : `${scheme}${userinfo.slice(0, colon)}:${REDACTED}@`;
      return userinfo === '' || plainUserName(userinfo) ? match : `${scheme}${REDACTED}@`;
    })
    .replace(SECRET_QUERY_PARAMS, `$1${REDACTED}`);
}

/**
 * The secrets inside a configured URL, for secretsOf(): the userinfo password (as written and percent-decoded),
 * the userinfo itself when it has no password and userIsToken (OPENAI_BASE_URL: a token; not DATABASE_URL,
 * where it is a role name), and the values of secret-named query parameters.
 */
export function urlCredentials(url: string | undefined, { userIsToken }: { userIsToken: boolean }): string[] {
  if (!url) return [];
  const out: string[] = [];
  const add = (raw: string) => {
    if (raw === '') return;
    out.push(raw);
    try {
      const decoded = decodeURIComponent(raw);
      if (decoded !== raw) out.push(decoded);
    } catch {
      // not valid percent-encoding: the raw form is all there is
    }
  };
  const m = /^[a-z][a-z0-9+.\-]*:\/\/([^/?#]*)@/i.exec(url);
  if (m) {
    const userinfo = m[1];
    const colon = userinfo.indexOf(':');
    if (colon >= 0) add(userinfo.slice(colon + 1));
    else if (userIsToken) add(userinfo);
  }
  for (const q of url.matchAll(new RegExp(SECRET_QUERY_PARAMS.source, 'gi'))) add(q[0].slice(q[1].length));
  return out;
}

export function redact(text: string, secrets: readonly string[] = []): string {
  let out = secrets.length > 0 ? cut(text, secretRanges(text, prepare(secrets))) : text;
  out = redactUrlCredentials(out);
  for (const pattern of KEY_PATTERNS) {
    out = out.replace(pattern, (match, prefix?: string) =>
      typeof prefix === 'string' && match.startsWith(prefix) ? `${prefix}${REDACTED}` : REDACTED,
    );
  }
  return out;
}

/** One line, at most maxLength characters, redacted: the shape of every error_detail. */
export function oneLine(text: string, secrets: readonly string[] = [], maxLength = 1000): string {
  const flat = redact(text, secrets).replace(/\s*\n\s*/g, ' | ').trim();
  return flat.length > maxLength ? `${flat.slice(0, maxLength - 1)}…` : flat;
}
