/**
 * Which provider account a worker draws on, as a value that may be stored and compared but reveals nothing:
 * the first 16 hex digits of SHA-256 over the service, its endpoint and its key. Workers with the same
 * fingerprint share one set of rate limits (rate-share.ts); the key itself never leaves the process.
 */
import { createHash } from 'node:crypto';

export function accountFingerprint(service: string, endpoint: string, apiKey: string): string {
  const normalised = endpoint.trim().replace(/\/+$/, '').toLowerCase();
  return createHash('sha256').update(`${service}\n${normalised}\n${apiKey}`).digest('hex').slice(0, 16);
}
