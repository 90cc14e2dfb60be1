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

// ---------------------------------------------------------------------------------------------------------
// URL credentials, any scheme (finding 1) and fragments of configured secrets of any shape (finding 2).

/** Every substring of `secret` of `n` characters. */
function piecesOf(secret: string, n = 6): string[] {
  const out: string[] = [];
  for (let i = 0; i + n <= secret.length; i++) out.push(secret.slice(i, i + n));
  return out;
}

describe('URL userinfo is hidden in every scheme (pattern only, nothing configured)', () => {
  const cases: Array<[string, string]> = [
    ['http://user:pw123@127.0.0.1:8080/v1', `http://user:${REDACTED}@127.0.0.1:8080/v1`],
    ['https://proxy:s3cr3t@gateway.example.com/openai/v1/embeddings', `https://proxy:${REDACTED}@gateway.example.com/openai/v1/embeddings`],
    ['HTTPS://U:P@H/v1', `HTTPS://U:${REDACTED}@H/v1`],
    ['redis://:hunter2@cache:6379/0', `redis://:${REDACTED}@cache:6379/0`],
    ['amqp://guest:guest@rabbit:5672', `amqp://guest:${REDACTED}@rabbit:5672`],
    ['mongodb+srv://app:pa55word@cluster0.example.net/db', `mongodb+srv://app:${REDACTED}@cluster0.example.net/db`],
    ['postgresql://u:p@ss@h/db', `postgresql://u:${REDACTED}@h/db`], // an unencoded @ in the password
    ['token form: https://ghp_abcdEFGH1234ijkl5678@github.com/o/r.git', `token form: https://${REDACTED}@github.com/o/r.git`],
    ['token form: http://gsk_live_ABCDEFGH12345678@127.0.0.1/v1', `token form: http://${REDACTED}@127.0.0.1/v1`],
    ['empty user: http://:tok3n@h/v1', `empty user: http://:${REDACTED}@h/v1`],
    ['{"url":"http://rw:Pa%40ss-w0rd@127.0.0.1:9/v1","n":1}', `{"url":"http://rw:${REDACTED}@127.0.0.1:9/v1","n":1}`],
    ['cannot reach the embedding endpoint http://rwuser:pw-XYZ@127.0.0.1:1/v1: Connection error.', `cannot reach the embedding endpoint http://rwuser:${REDACTED}@127.0.0.1:1/v1: Connection error.`],
    ['https://h/v1?api_key=abc123&x=1', `https://h/v1?api_key=${REDACTED}&x=1`],
    ['https://h/v1?x=1&token=abc123#frag', `https://h/v1?x=1&token=${REDACTED}#frag`],
    ['postgres://h/db?sslmode=require&password=Secr3t', `postgres://h/db?sslmode=require&password=${REDACTED}`],
  ];
  for (const [text, want] of cases) test(text, () => assert.equal(redact(text), want));

  const unchanged = [
    'http://user@example.com/path (a plain user name, no password)',
    'postgresql://rag@db:5432/rag and postgres://postgres@127.0.0.1/postgres',
    'mail bob@example.com or git@github.com:org/repo.git',
    'https://example.com/@scope/package and https://example.com/path?q=a@b',
    'http://localhost:11434/v1?page=2&keyword=x',
  ];
  for (const text of unchanged) test(`unchanged: ${text}`, () => assert.equal(redact(text), text));
});

describe('fragments of a configured secret of any format are removed', () => {
  const KEY2 = 'gsk_live_ABCDEFGH12345678';
  const TOKEN = 'Zx9fQ2LmN7pR4tVw8yB3cD6e'; // no recognisable shape at all
  const cases: Array<[secret: string, text: string]> = [
    [KEY2, 'Incorrect API key provided: gsk_live_ABC***5678'],
    [KEY2, '{"error":{"message":"invalid key gsk_live_ABC***5678, see docs"}}'],
    [KEY2, 'key gsk_live_ABCD…5678 was revoked'],
    [KEY2, 'key gsk_live_ABCD...12345678 was revoked'],
    [KEY2, 'key gsk_l****************5678 was revoked'],
    [KEY2, 'key gsk_••••5678 was revoked'],
    [KEY2, 'first 8: gsk_live, last 8: 12345678'],
    [KEY2, 'prefix gsk_live_ABCDEF then junk'],
    [KEY2, 'ends with …EFGH12345678.'],
    [KEY2, `the whole key ${KEY2} and its URL form ${encodeURIComponent(KEY2)}`],
    [TOKEN, 'token Zx9fQ2Lm************D6e rejected'],
    [TOKEN, 'token Zx9fQ2…cD6e rejected'],
    [TOKEN, 'token ending in B3cD6e rejected'],
    ['correct-horse-battery-staple-9', 'password correct-horse… is wrong; correct-horse-battery in logs'],
  ];
  for (const [secret, text] of cases) {
    test(`${secret}: ${text}`, () => {
      const out = redact(text, [secret]);
      assert.ok(out.includes(REDACTED), out);
      for (const piece of piecesOf(secret)) assert.ok(!out.includes(piece), `${piece} survived in ${out}`);
    });
  }

  test('a masked form loses its visible ends too (not only the 6+ character parts)', () => {
    assert.equal(redact('invalid key gsk_live_ABC***5678, see docs', [KEY2]), `invalid key ${REDACTED}, see docs`);
    assert.equal(redact('key ****5678 expired', [KEY2]), `key ${REDACTED} expired`);
    assert.equal(redact('key gsk_***78 expired', [KEY2]), `key ${REDACTED} expired`);
  });

  const untouched: Array<[secret: string, text: string, why: string]> = [
    [KEY2, 'a middle piece live_ABC is not a prefix or suffix', 'only prefixes/suffixes are fragments'],
    [KEY2, 'gsk_l and 45678 are short', 'fragments under 6 characters are kept'],
    ['correct-horse-battery-staple-9', 'That is correct, said the horse', 'a word-like fragment (letters only, under 10) is kept'],
    ['Password123456', 'Password reset emails are sent', 'a word-like fragment is kept'],
    ['abcdefghij_k', 'abcdefghij_ is 11 characters of a 12-character secret', 'a 12-character secret has fragments…'],
    ['abcd_fghij1', 'abcd_fghij appears (secret of 11 characters)', 'secrets under 12 characters are matched whole only'],
    ['postgres://rag:s3cr3t-pw@db.internal:5432/rag', 'postgres is up; postgres://rag@db.internal:5432/other', 'URL secrets are not matched by fragment'],
    [KEY2, 'ratings: *** and ... and …', 'masks alone are kept'],
    [KEY2, 'Embedded 128 chunks in 1.2s (3 requests, 0 retries)', 'ordinary text'],
  ];
  for (const [secret, text, why] of untouched) {
    if (why.startsWith('a 12-character')) {
      test(`${why} (${text})`, () => assert.equal(redact(text, [secret]), `${REDACTED} is 11 characters of a 12-character secret`));
      continue;
    }
    test(`unchanged: ${why}`, () => assert.equal(redact(text, [secret]), text));
  }

  test('a secret quoted JSON-escaped (as in a JSON log line) is removed', () => {
    const secret = 'pa"ss\\word-12';
    assert.equal(redact(JSON.stringify({ msg: `bad ${secret}` }), [secret]), `{"msg":"bad ${REDACTED}"}`);
  });
});

describe('redact() stays fast (it runs on every log line)', () => {
  test('a 10 kB line with 3 configured secrets takes well under 1 ms', () => {
    const secrets = ['gsk_live_ABCDEFGH12345678', 'correct-horse-battery-staple-9', 'postgres://rag:s3cr3t-pw@db.internal:5432/rag'];
    const parts: string[] = [];
    for (let i = 0; parts.join(' ').length < 10_000; i++) {
      parts.push(`chunk ${i} embedded in 12 ms g*k ... *** http://localhost:11434/v1 gsk_ corr postgres://db/${i} score 0.${i}`);
    }
    const line = parts.join(' ').slice(0, 10_000) + ' key gsk_live_ABC***5678';
    for (let i = 0; i < 50; i++) redact(line, secrets); // warm up
    const runs = 500;
    const start = performance.now();
    for (let i = 0; i < runs; i++) redact(line, secrets);
    const perCall = (performance.now() - start) / runs;
    assert.ok(!redact(line, secrets).includes('gsk_live'), 'still redacts');
    assert.ok(perCall < 0.5, `redact() took ${perCall.toFixed(3)} ms per 10 kB line`);
  });
});
