/**
 * Redaction (src/shared/redact.ts): what leaves the process (logs, error_detail) never carries a secret,
 * in any form a provider might quote it; ordinary text passes unchanged.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { oneLine, redact, REDACTED } from '../../src/shared/redact.ts';
import { quoteApiKey } from '../support/fake-openai.ts';

const KEY = 'sk-test-ABCDEFGHIJKLMNOPQRSTUVWX1234';
const JWT = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIiwiaXNzIjoic3VwYWJhc2UifQ.dGhpcy1pcy1ub3QtYS1yZWFsLXNpZ25hdHVyZQ';

/** No trace of the key: not whole, not its body, not its last four characters. */
function assertNoKey(out: string, context: string): void {
  assert.ok(!out.includes('sk-test'), `${context}: prefix survived in ${out}`);
  assert.ok(!out.includes('1234'), `${context}: suffix survived in ${out}`);
  for (let i = 8; i + 6 <= KEY.length - 4; i++) {
    const piece = KEY.slice(i, i + 6);
    assert.ok(!out.includes(piece), `${context}: ${piece} survived in ${out}`);
  }
}

describe('API keys', () => {
  const forms = [
    KEY,
    'sk-test-***...1234',
    quoteApiKey(KEY),
    'sk-test-ABCD****************1234',
    'sk-test-ABC...1234',
    'sk-tes**************************1234',
  ];

  for (const form of forms) {
    for (const secrets of [[KEY], []]) {
      test(`${form} (${secrets.length ? 'configured secret' : 'pattern only'})`, () => {
        const texts = [
          form,
          `embedding provider rejected the credentials (401 Incorrect API key provided: ${form}. You can find your API key at https://platform.openai.com/account/api-keys.): check OPENAI_API_KEY`,
          JSON.stringify({ error: { message: `Incorrect API key provided: ${form}`, type: 'invalid_request_error', code: 'invalid_api_key' } }),
          `Authorization: Bearer ${form}`,
          `key=${form}&x=1`,
        ];
        for (const text of texts) assertNoKey(redact(text, secrets), text);
      });
    }
  }

  test('the explanation around the key survives', () => {
    const out = redact(`401 Incorrect API key provided: ${quoteApiKey(KEY)}. You can find your API key at https://platform.openai.com/account/api-keys.`, [KEY]);
    assert.equal(out, `401 Incorrect API key provided: ${REDACTED} You can find your API key at https://platform.openai.com/account/api-keys.`);
  });

  test('"Incorrect API key provided:" hides even a key of no known shape', () => {
    assert.equal(redact('Incorrect API key provided: abcdefgh****wxyz. Bye'), `Incorrect API key provided: ${REDACTED} Bye`);
  });

  test('other providers\' key shapes: proj, ant, svcacct, live', () => {
    for (const k of ['sk-proj-abcDEF123_456-xyz', 'sk-ant-api03-abcdefghijk', 'sk-svcacct-abcdef', 'rk-live-abcdef123', 'pk-live-abcdef123']) {
      assert.equal(redact(`key ${k} here`), `key ${REDACTED} here`, k);
    }
  });

  test('a configured secret of no known shape is removed wherever it appears', () => {
    const secret = 'local-server-token-9f8e7d';
    assert.equal(redact(`GET /v1?t=${secret} with ${secret}`, [secret]), `GET /v1?t=${REDACTED} with ${REDACTED}`);
    assert.equal(redact('a.b*c+d? and more', ['a.b*c+d?']), `${REDACTED} and more`, 'secrets are literal, not regexes');
    assert.equal(redact('abc def', ['abc']), 'abc def', 'secrets under 4 characters are ignored (would shred ordinary text)');
    assert.equal(redact('plain', ['']), 'plain');
  });
});

describe('connection strings and tokens', () => {
  test('a postgres URL keeps user, host and database but hides the password', () => {
    assert.equal(redact('connect postgres://rag:s3cr3t-pw@db.internal:5432/rag failed'), `connect postgres://rag:${REDACTED}@db.internal:5432/rag failed`);
    assert.equal(redact('postgresql://u:p%40ss:w0rd@h/db'), `postgresql://u:${REDACTED}@h/db`);
    assert.equal(redact('POSTGRES://u:pw@h/db'), `POSTGRES://u:${REDACTED}@h/db`);
    assert.equal(redact('DATABASE_URL=postgres://postgres:postgres@127.0.0.1:54322/postgres'), `DATABASE_URL=postgres://postgres:${REDACTED}@127.0.0.1:54322/postgres`);
  });

  test('a configured DATABASE_URL is removed whole', () => {
    const url = 'postgres://rag:s3cr3t-pw@db.internal:5432/rag';
    assert.equal(redact(`error for ${url}`, [url]), `error for ${REDACTED}`);
  });

  test('a JWT (Supabase service-role key) is hidden, configured or not', () => {
    assert.equal(redact(`apikey: ${JWT}`), `apikey: ${REDACTED}`);
    assert.equal(redact(`apikey: ${JWT}`, [JWT]), `apikey: ${REDACTED}`);
  });

  test('a bearer token of any shape is hidden', () => {
    assert.equal(redact('Authorization: Bearer abc.DEF-123_456~xyz='), `Authorization: ${REDACTED}`);
  });
});

describe('ordinary text is unchanged', () => {
  const texts = [
    '',
    'Embedded 128 chunks for job 42 in 1.2s (3 requests, 0 retries)',
    'The risk-free rate; a task-1234 ticket; desk-top; ask-me-anything; Skype',
    'See https://platform.openai.com/account/rate-limits and http://localhost:11434/v1/embeddings',
    'postgres://localhost/rag and postgresql://rag@db:5432/rag have no password',
    'Rate limit reached for text-embedding-3-small in organization org-fake on tokens per min (TPM): Limit 1000000, Used 999000, Requested 2000.',
    'Bearer auth (i.e. Authorization: Bearer KEY)',
    'eyJ alone is not a token; neither is a.b.c',
    'Ünïcödé — “quotes” and emoji 🛑 stay',
  ];
  for (const text of texts) {
    test(JSON.stringify(text.slice(0, 50)), () => assert.equal(redact(text, []), text));
  }

  test('prose with the word "bearer" is left alone', () => {
    const text = 'The bearer certificate and Bearer instruments were discussed';
    assert.equal(redact(text), text);
  });
});

describe('oneLine', () => {
  test('flattens lines, redacts, trims', () => {
    assert.equal(oneLine(`  first line\n   second ${KEY}\n\nthird  `, [KEY]), `first line | second ${REDACTED} | third`);
  });

  test('cuts to maxLength with an ellipsis', () => {
    const out = oneLine('x'.repeat(2000));
    assert.equal(out.length, 1000);
    assert.ok(out.endsWith('…'));
    assert.equal(oneLine('abcdef', [], 4), 'abc…');
    assert.equal(oneLine('abcd', [], 4), 'abcd');
  });

  test('redacts before cutting, so a key at the cut is not half-kept', () => {
    const out = oneLine(`${'x'.repeat(20)} ${KEY}`, [], 30);
    assertNoKey(out, out);
  });
});
