/**
 * Secret redaction for everything that leaves the process: log lines, error_detail, status output.
 * Removes the configured secret values wherever they appear, plus anything shaped like an API key,
 * a bearer token, a JWT or a password in a connection URL, including the partial keys providers quote
 * in their error bodies ("Incorrect API key provided: sk-abc***...wxyz").
 */
const KEY_PATTERNS: RegExp[] = [
  /\b(?:sk|rk|pk)-(?:proj-|ant-|live-|test-|svcacct-)?[A-Za-z0-9_*.\-]{3,}/g, // OpenAI / Anthropic style keys (incl. masked)
  /\bBearer\s+(?=[A-Za-z._~+/=\-]*\d)[A-Za-z0-9._~+/=\-]{8,}/g, // the HTTP scheme with a token (has a digit), not the English word
  /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g, // JWT (Supabase service-role keys)
  /(Incorrect API key provided:\s*)\S+/gi,
];

export const REDACTED = '[redacted]';

export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= 4) out = out.split(secret).join(REDACTED);
  }
  out = out.replace(/(postgres(?:ql)?:\/\/[^:/@\s]+:)[^@\s]+@/gi, `$1${REDACTED}@`);
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
