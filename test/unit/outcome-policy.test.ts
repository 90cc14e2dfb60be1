/** decideOutcome (src/shared/outcome-policy.ts) as a table: every error category and the edges between them. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  BadInputError,
  DatabaseAuthError,
  DatabaseConnectionError,
  JobAbortedError,
  LeaseLostError,
  ProviderResponseError,
  ProviderUnavailableError,
  RateLimitError,
  SchemaError,
  StorageCorruptionError,
  WorkerFatalError,
} from '../../src/shared/errors.ts';
import { decideOutcome, type Outcome, type OutcomeInput } from '../../src/shared/outcome-policy.ts';

const NOW = 1_800_000_000_000;
const limits = { maxAttempts: 5, backoff: { baseMs: 1000, maxMs: 60_000 }, secrets: ['sk-live-SECRETSECRET1234'] };
const decide = (over: Partial<OutcomeInput>): Outcome => decideOutcome({ error: new Error('x'), attempts: 1, limits, now: NOW, random: () => 0, ...over });

const shutdown = new JobAbortedError('shutdown', 'worker shutting down');
const fault = new JobAbortedError('fault', 'worker-level fault');
const cancelled = new JobAbortedError('cancelled', 'job was cancelled');
const taken = new JobAbortedError('lease_lost', 'lease lost (job is processing)');

interface Row {
  name: string;
  input: Partial<OutcomeInput>;
  expect: Partial<Outcome> & { kind: Outcome['kind'] };
}

const rows: Row[] = [
  // transient → retry with backoff, until the last attempt
  { name: 'lost DB connection, attempt 1 → retry after base/2', input: { error: new DatabaseConnectionError('gone', { code: '57P01' }) }, expect: { kind: 'retry', delayMs: 500, runAt: NOW + 500 } },
  { name: 'provider 5xx, attempt 3 → retry after 4·base/2', input: { error: new ProviderUnavailableError('503', { status: 503 }), attempts: 3 }, expect: { kind: 'retry', delayMs: 2000 } },
  { name: 'server-advised delay wins over backoff', input: { error: new ProviderUnavailableError('503', { retryAfterMs: 7000 }) }, expect: { kind: 'retry', delayMs: 7000 } },
  { name: 'backoff is capped at maxMs', input: { error: new ProviderUnavailableError('503'), attempts: 4, limits: { ...limits, maxAttempts: 50, backoff: { baseMs: 1000, maxMs: 3000 } } }, expect: { kind: 'retry', delayMs: 1500 } },
  { name: 'malformed provider answer → retry', input: { error: new ProviderResponseError('index 3 appears twice') }, expect: { kind: 'retry', category: 'retryable' } },
  { name: 'transient on the last attempt → fail', input: { error: new DatabaseConnectionError('gone'), attempts: 5 }, expect: { kind: 'fail', category: 'retryable' } },
  { name: 'transient past the last attempt (max lowered) → fail', input: { error: new DatabaseConnectionError('gone'), attempts: 3, limits: { ...limits, maxAttempts: 2 } }, expect: { kind: 'fail' } },
  // bad input and bugs fail at once, whatever the attempt
  { name: 'bad input on attempt 1 → fail now', input: { error: new BadInputError('empty transcript') }, expect: { kind: 'fail', category: 'bad_input', detail: 'empty transcript', logStack: false } },
  { name: 'a TypeError (bug) → fail now, saying it is a bug', input: { error: new TypeError("Cannot read properties of undefined (reading 'x')") }, expect: { kind: 'fail', category: 'bug', logStack: true } },
  { name: 'a thrown string (bug) → fail now', input: { error: 'boom' }, expect: { kind: 'fail', category: 'bug' } },
  // worker-level faults hand the job back untouched and enter the fault
  { name: 'credentials rejected → release + fault', input: { error: new WorkerFatalError('401', { setting: 'OPENAI_API_KEY' }) }, expect: { kind: 'release' } },
  { name: 'schema missing → release + fault', input: { error: new SchemaError('relation missing') }, expect: { kind: 'release' } },
  { name: 'storage damaged → release + fault, on the last attempt too', input: { error: new StorageCorruptionError('bad page'), attempts: 5 }, expect: { kind: 'release' } },
  { name: 'database auth → release + fault', input: { error: new DatabaseAuthError('28P01') }, expect: { kind: 'release' } },
  // rate limiting never uses an attempt
  { name: 'rate limit reaching the job → release, no attempt', input: { error: new RateLimitError('429', { scope: 'tokens' }), attempts: 5 }, expect: { kind: 'release' } },
  // the lease
  { name: 'fenced write refused → lost', input: { error: new LeaseLostError('RW001') }, expect: { kind: 'lost' } },
  { name: 'heartbeat found the lease taken → lost, even with a bad-input error', input: { error: new BadInputError('x'), abortReason: taken }, expect: { kind: 'lost' } },
  { name: 'cancel racing a failure → lost (the row is cancelled, nothing to write)', input: { error: new DatabaseConnectionError('gone'), abortReason: cancelled }, expect: { kind: 'lost' } },
  { name: 'cancel racing a bug → lost', input: { error: new TypeError('x'), abortReason: cancelled }, expect: { kind: 'lost' } },
  // this worker's own aborts
  { name: 'shutdown during a retryable failure → release, no attempt used', input: { error: new ProviderUnavailableError('503'), abortReason: shutdown }, expect: { kind: 'release', reason: 'worker shutting down' } },
  { name: 'shutdown on the last attempt → release (not fail)', input: { error: new DatabaseConnectionError('gone'), abortReason: shutdown, attempts: 5 }, expect: { kind: 'release' } },
  { name: 'shutdown while failing with bad input → release (the abort may have caused it)', input: { error: new BadInputError('aborted parse'), abortReason: shutdown }, expect: { kind: 'release' } },
  { name: 'the abort itself thrown as the error → release', input: { error: shutdown }, expect: { kind: 'release' } },
  { name: 'fault noticed by another job → release, no fault of its own', input: { error: new ProviderUnavailableError('503'), abortReason: fault }, expect: { kind: 'release' } },
  { name: 'lease lost beats shutdown (abort reason is the lease)', input: { error: shutdown, abortReason: taken }, expect: { kind: 'lost' } },
];

describe('decideOutcome', () => {
  for (const row of rows) {
    test(row.name, () => {
      const outcome = decide(row.input);
      for (const [key, value] of Object.entries(row.expect)) {
        assert.deepEqual((outcome as Record<string, unknown>)[key], value, `${key} of ${JSON.stringify(outcome)}`);
      }
    });
  }

  test('a worker-level fault carries the error to enter the fault with; an abort does not', () => {
    const error = new WorkerFatalError('401', { setting: 'OPENAI_API_KEY' });
    const own = decide({ error });
    assert.equal(own.kind === 'release' && own.fault, error);
    const echo = decide({ error, abortReason: fault });
    assert.equal(echo.kind === 'release' && echo.fault, undefined);
  });

  test('details are redacted and one line', () => {
    const outcome = decide({ error: new BadInputError('key sk-live-SECRETSECRET1234 in\nthe text') });
    assert.equal(outcome.kind, 'fail');
    assert.ok(outcome.kind === 'fail' && !outcome.detail.includes('SECRETSECRET') && !outcome.detail.includes('\n'), JSON.stringify(outcome));
  });

  test('a bug says so in the detail', () => {
    const outcome = decide({ error: new RangeError('Invalid array length') });
    assert.ok(outcome.kind === 'fail' && /bug/.test(outcome.detail) && /RangeError: Invalid array length/.test(outcome.detail));
  });

  test('jitter stays within [half, full] of the step', () => {
    const low = decide({ error: new DatabaseConnectionError('gone'), attempts: 2, random: () => 0 });
    const high = decide({ error: new DatabaseConnectionError('gone'), attempts: 2, random: () => 0.999999 });
    assert.ok(low.kind === 'retry' && high.kind === 'retry');
    assert.equal(low.delayMs, 1000);
    assert.ok(high.delayMs <= 2000 && high.delayMs >= 1999);
  });
});
