/**
 * resolveConfig (src/shared/config.ts): one test per rule. Pure: the environment is passed in.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, describeConfig, resolveConfig, secretsOf, SETTINGS, type Config, type Overrides } from '../../src/shared/config.ts';

const KEY = 'sk-test-ABCDEFGHIJKLMNOPQRSTUVWX1234';
const DB = 'postgres://rag:s3cr3t-pw@db.internal:5432/rag';
const JWT = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ';

/** The ConfigError thrown by resolveConfig (fails the test when it does not throw one). */
function problemsOf(env: Record<string, string | undefined>, overrides: Overrides = {}): ConfigError {
  try {
    resolveConfig(env, overrides);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    return error;
  }
  assert.fail(`expected a ConfigError for ${JSON.stringify(env)}`);
}

describe('defaults', () => {
  test('an empty environment gives the documented defaults, embedded store, local embedder, frozen', () => {
    const c = resolveConfig({});
    assert.equal(Object.isFrozen(c), true);
    assert.equal(c.store, 'embedded');
    assert.equal(c.embedder, 'local');
    assert.equal(c.databaseUrl, undefined);
    assert.equal(c.openaiApiKey, undefined);
    assert.equal(c.dataDir, './.rag-worker');
    assert.equal(c.embeddingModel, 'text-embedding-3-small');
    assert.equal(c.embeddingDimensions, 1536);
    assert.equal(c.embeddingBatch, 16);
    assert.equal(c.embeddingRpm, undefined);
    assert.equal(c.embeddingTpm, undefined);
    assert.equal(c.embeddingConcurrency, 8);
    assert.equal(c.providerRetries, 6);
    assert.equal(c.leaseSeconds, 30);
    assert.equal(c.heartbeatMs, 10_000);
    assert.equal(c.enableClaudeAnalysis, false);
    assert.equal(c.logFormat, 'auto');
    assert.equal(c.logLevel, 'info');
    assert.ok(Number.isInteger(c.threads) && c.threads >= 1);
    assert.match(c.workerId, /^.+-\d+-[a-z0-9]+$/);
    assert.throws(() => {
      (c as { embeddingBatch: number }).embeddingBatch = 1;
    }, TypeError);
  });

  test('every setting\'s default value passes its own rule', () => {
    for (const spec of Object.values(SETTINGS)) {
      assert.equal(spec.schema.safeParse(spec.default).success, true, `${spec.env} default ${JSON.stringify(spec.default)}`);
    }
  });

  test('heartbeat is a third of the lease, at least 500 ms', () => {
    assert.equal(resolveConfig({ RAG_LEASE_SECONDS: '60' }).heartbeatMs, 20_000);
    assert.equal(resolveConfig({ RAG_LEASE_SECONDS: '2' }).heartbeatMs, 666);
  });

  test('values are trimmed and parsed: numbers, booleans, optional numbers', () => {
    const c = resolveConfig({
      RAG_EMBEDDING_BATCH: ' 64 ',
      RAG_EMBEDDING_RPM: '3000',
      RAG_ENABLE_CLAUDE_ANALYSIS: 'YES',
      ANTHROPIC_API_KEY: 'sk-ant-x',
      RAG_THREADS: '3',
      RAG_WORKER_ID: 'w1',
    });
    assert.equal(c.embeddingBatch, 64);
    assert.equal(c.embeddingRpm, 3000);
    assert.equal(c.enableClaudeAnalysis, true);
    assert.equal(c.threads, 3);
    assert.equal(c.workerId, 'w1');
    for (const [raw, want] of [['true', true], ['1', true], ['on', true], ['false', false], ['0', false], ['off', false], ['no', false]] as const) {
      assert.equal(resolveConfig({ RAG_ENABLE_CLAUDE_ANALYSIS: raw, ANTHROPIC_API_KEY: 'k' }).enableClaudeAnalysis, want, raw);
    }
  });
});

describe('each bad value names its variable and the value', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['RAG_EMBEDDING_BATCH', '2049', /must be at most 2048/],
    ['RAG_EMBEDDING_BATCH', '0', /must be at least 1/],
    ['RAG_EMBEDDING_BATCH', '16abc', /whole number/],
    ['RAG_EMBEDDING_BATCH', '1.5', /whole number/],
    ['RAG_EMBEDDING_DIMENSIONS', '-3', /at least 1/],
    ['RAG_EMBEDDING_DIMENSIONS', '3072', /must be at most 2000/],
    ['RAG_EMBEDDING_CONCURRENCY', '257', /at most 256/],
    ['RAG_EMBEDDING_RPM', '0', /at least 1/],
    ['RAG_THREADS', '999', /at most 256/],
    ['RAG_EMBEDDING_TPM', '0', /at least 1/],
    ['RAG_CHUNK_MAX_TOKENS', '8192', /at most 8191/],
    ['RAG_LEASE_SECONDS', '1', /at least 2/],
    ['RAG_POLL_INTERVAL_MS', '10', /at least 50/],
    ['RAG_ENABLE_CLAUDE_ANALYSIS', 'maybe', /true or false/],
    ['RAG_LOG_LEVEL', 'verbose', /debug.*info.*warn.*error/],
    ['RAG_LOG_FORMAT', 'xml', /auto.*pretty.*json/],
    ['OPENAI_BASE_URL', 'not a url', /URL/],
    ['SUPABASE_URL', 'localhost', /URL/],
  ];
  test('an empty or blank value means the default (e.g. `RAG_EMBEDDING_BATCH=` in a .env file)', () => {
    const config = resolveConfig({ RAG_EMBEDDING_MODEL: '   ', RAG_DATA_DIR: '', RAG_EMBEDDING_BATCH: '' });
    assert.equal(config.embeddingModel, 'text-embedding-3-small');
    assert.equal(config.dataDir, './.rag-worker');
    assert.equal(config.embeddingBatch, 16);
  });
  for (const [name, value, why] of cases) {
    test(`${name}=${JSON.stringify(value)}`, () => {
      const err = problemsOf({ [name]: value });
      assert.equal(err.problems.length, 1, err.message);
      assert.ok(err.problems[0].startsWith(`${name}=${JSON.stringify(value)}: `), err.problems[0]);
      assert.match(err.problems[0], why);
      assert.match(err.message, new RegExp(`^Invalid configuration:\\n  - ${name}=`));
    });
  }

  test('an optional number that is not a number says why', () => {
    for (const name of ['RAG_EMBEDDING_RPM', 'RAG_EMBEDDING_TPM', 'RAG_THREADS']) {
      assert.match(problemsOf({ [name]: 'lots' }).problems[0], new RegExp(`^${name}="lots": expected a whole number$`));
    }
  });

  test('several bad values: one line per variable, all reported at once', () => {
    const err = problemsOf({ RAG_EMBEDDING_BATCH: '0', RAG_LOG_LEVEL: 'loud', RAG_LEASE_SECONDS: 'x' });
    assert.deepEqual(err.problems.map((p) => p.split('=')[0]).sort(), ['RAG_EMBEDDING_BATCH', 'RAG_LEASE_SECONDS', 'RAG_LOG_LEVEL']);
  });

  test('RAG_EMBEDDING_BATCH: 2048 (the API maximum) is accepted, 2049 is not', () => {
    assert.equal(resolveConfig({ RAG_EMBEDDING_BATCH: '2048' }).embeddingBatch, 2048);
    assert.match(problemsOf({ RAG_EMBEDDING_BATCH: '2049' }).problems[0], /^RAG_EMBEDDING_BATCH="2049": must be at most 2048$/);
  });
});

describe('secrets are never echoed', () => {
  test('problems about secret variables show no secret value', () => {
    const env = { DATABASE_URL: `mysql://rag:s3cr3t-pw@db/rag`, OPENAI_API_KEY: KEY, SUPABASE_SERVICE_ROLE_KEY: JWT, ANTHROPIC_API_KEY: 'sk-ant-secret-value' };
    const err = problemsOf(env);
    assert.match(err.message, /DATABASE_URL: expected a postgres:\/\/ or postgresql:\/\/ URL/);
    for (const secret of ['s3cr3t-pw', KEY, JWT, 'sk-ant-secret-value']) assert.ok(!err.message.includes(secret), secret);
  });

  test('a secret shown next to a bad value is (hidden)', () => {
    const secretSpecs = Object.values(SETTINGS).filter((s) => 'secret' in s && s.secret);
    assert.deepEqual(secretSpecs.map((s) => s.env).sort(), ['ANTHROPIC_API_KEY', 'DATABASE_URL', 'OPENAI_API_KEY', 'RAG_ALERT_WEBHOOK_URL', 'RAG_HTTP_TOKEN', 'SUPABASE_SERVICE_ROLE_KEY']);
    const token = problemsOf({ RAG_HTTP_TOKEN: 'tok-short' });
    assert.equal(token.problems[0], 'RAG_HTTP_TOKEN=(hidden): must be at least 16 characters');
    const hook = problemsOf({ RAG_ALERT_WEBHOOK_URL: 'https://hooks.slack.com/services/T/B/secretpart, not-a-url-secret' });
    assert.match(hook.problems[0], /^RAG_ALERT_WEBHOOK_URL=\(hidden\): expected http\(s\) URLs separated by commas, got one that is not a URL \(2 of 2\)$/);
    assert.ok(!hook.message.includes('secretpart') && !hook.message.includes('not-a-url-secret'));
    const nonSecretErr = problemsOf({ OPENAI_BASE_URL: 'nope' });
    assert.ok(nonSecretErr.problems[0].includes('"nope"'), 'non-secrets are quoted');
  });

  test('webhook URLs: each one is a secret on its own; none configured shows as empty', () => {
    const urls = ['https://hooks.slack.com/services/T1/B1/aaaaSECRET', 'https://discord.com/api/webhooks/1/bbbbSECRET'];
    const c = resolveConfig({ RAG_ALERT_WEBHOOK_URL: urls.join(' , ') });
    assert.deepEqual(c.alertWebhookUrls, urls);
    for (const u of urls) assert.ok(secretsOf(c).includes(u));
    assert.equal(describeConfig(c).find((r) => r.env === 'RAG_ALERT_WEBHOOK_URL')?.value, '(set)');
    assert.equal(describeConfig(resolveConfig({})).find((r) => r.env === 'RAG_ALERT_WEBHOOK_URL')?.value, '');
  });

  test('describeConfig shows secrets as (set), never their values; secretsOf lists them for redaction', () => {
    const c = resolveConfig({ DATABASE_URL: DB, OPENAI_API_KEY: KEY });
    const rows = describeConfig(c);
    assert.equal(rows.find((r) => r.env === 'OPENAI_API_KEY')?.value, '(set)');
    assert.equal(rows.find((r) => r.env === 'DATABASE_URL')?.value, '(set)');
    assert.equal(rows.find((r) => r.env === 'ANTHROPIC_API_KEY')?.value, '');
    assert.equal(rows.find((r) => r.env === 'RAG_EMBEDDING_BATCH')?.value, '16');
    assert.ok(!JSON.stringify(rows).includes(KEY));
    assert.ok(!JSON.stringify(rows).includes('s3cr3t-pw'));
    assert.deepEqual(secretsOf(c).sort(), [DB, KEY, 's3cr3t-pw'].sort());
    assert.equal(describeConfig().length, Object.keys(SETTINGS).length);
  });

  test('secretsOf lists the password of DATABASE_URL and OPENAI_BASE_URL, as written and percent-decoded', () => {
    const c = resolveConfig({
      DATABASE_URL: 'postgres://rag:p%40ss%2Fw0rd-DB@db.internal:5432/rag',
      OPENAI_BASE_URL: 'http://proxyuser:Pr0xy%3Apass-XY@127.0.0.1:8080/v1',
    });
    const secrets = secretsOf(c);
    for (const s of ['p%40ss%2Fw0rd-DB', 'p@ss/w0rd-DB', 'Pr0xy%3Apass-XY', 'Pr0xy:pass-XY']) assert.ok(secrets.includes(s), `${s} in ${JSON.stringify(secrets)}`);
    assert.ok(!secrets.includes('proxyuser') && !secrets.includes('rag'), 'user names next to a password are not secrets');
    assert.ok(!secrets.includes('http://proxyuser:Pr0xy%3Apass-XY@127.0.0.1:8080/v1'), 'OPENAI_BASE_URL itself is not a secret');
  });

  test('secretsOf lists a token given as OPENAI_BASE_URL userinfo, and secret query parameters', () => {
    const token = resolveConfig({ OPENAI_BASE_URL: 'https://gsk_live_ABCDEFGH12345678@gateway.example.com/v1' });
    assert.ok(secretsOf(token).includes('gsk_live_ABCDEFGH12345678'));
    const query = resolveConfig({ OPENAI_BASE_URL: 'https://gateway.example.com/v1?api-key=q-Secret-123', DATABASE_URL: 'postgres://h/db?password=Db-Secret-456' });
    assert.ok(secretsOf(query).includes('q-Secret-123'));
    assert.ok(secretsOf(query).includes('Db-Secret-456'));
    const plain = resolveConfig({ DATABASE_URL: 'postgres://postgres@127.0.0.1/postgres', OPENAI_BASE_URL: 'http://localhost:11434/v1' });
    assert.deepEqual(secretsOf(plain), ['postgres://postgres@127.0.0.1/postgres'], 'a database role without a password is not a secret');
  });

  test('describeConfig (rag-worker config) shows a URL with its userinfo hidden', () => {
    const c = resolveConfig({ OPENAI_BASE_URL: 'http://proxyuser:Pr0xy-pass@127.0.0.1:8080/v1?api_key=q-Secret-123&x=1', SUPABASE_URL: 'https://tok3n-abcdef123456@abc.supabase.co', SUPABASE_SERVICE_ROLE_KEY: JWT });
    const rows = describeConfig(c);
    assert.equal(rows.find((r) => r.env === 'OPENAI_BASE_URL')?.value, 'http://[redacted]@127.0.0.1:8080/v1?api_key=[redacted]&x=1');
    assert.equal(rows.find((r) => r.env === 'SUPABASE_URL')?.value, 'https://[redacted]@abc.supabase.co');
    const plain = resolveConfig({ OPENAI_BASE_URL: 'http://localhost:11434/v1' });
    assert.equal(describeConfig(plain).find((r) => r.env === 'OPENAI_BASE_URL')?.value, 'http://localhost:11434/v1');
  });

  test('a bad URL value is echoed with its userinfo hidden', () => {
    const err = problemsOf({ OPENAI_BASE_URL: 'http://proxyuser:Pr0xy-pass@bad host/v1' });
    assert.ok(!err.message.includes('Pr0xy-pass'), err.message);
    assert.match(err.message, /OPENAI_BASE_URL="http:\/\/\[redacted\]@bad host\/v1": expected a URL/);
  });
});

describe('RAG_EMBEDDING_DIMENSIONS', () => {
  test('above 2,000 is refused: pgvector\'s HNSW index on vector supports at most 2,000 dimensions', () => {
    const err = problemsOf({ RAG_EMBEDDING_DIMENSIONS: '3072' });
    assert.equal(err.problems.length, 1, err.message);
    const [problem] = err.problems;
    assert.ok(problem.startsWith('RAG_EMBEDDING_DIMENSIONS="3072": must be at most 2000'), problem);
    assert.match(problem, /pgvector's HNSW index on `vector` supports at most 2,000 dimensions/);
    assert.match(problem, /text-embedding-3-large with RAG_EMBEDDING_DIMENSIONS=1536 or smaller/);
    assert.match(problem, /OpenAI's text-embedding-3 models accept a `dimensions` parameter/);
    assert.equal(resolveConfig({ RAG_EMBEDDING_DIMENSIONS: '2000' }).embeddingDimensions, 2000);
    assert.match(problemsOf({ RAG_EMBEDDING_DIMENSIONS: '2001' }).problems[0], /^RAG_EMBEDDING_DIMENSIONS="2001": must be at most 2000 /);
  });
});

describe('cross-checks', () => {
  test('SUPABASE_URL without SUPABASE_SERVICE_ROLE_KEY', () => {
    const err = problemsOf({ SUPABASE_URL: 'https://abc.supabase.co' });
    assert.deepEqual(err.problems, ['SUPABASE_URL is set but SUPABASE_SERVICE_ROLE_KEY is missing (or set DATABASE_URL to use a direct connection)']);
  });

  test('SUPABASE_SERVICE_ROLE_KEY without SUPABASE_URL (and the key is not echoed)', () => {
    const err = problemsOf({ SUPABASE_SERVICE_ROLE_KEY: JWT });
    assert.deepEqual(err.problems, ['SUPABASE_SERVICE_ROLE_KEY is set but SUPABASE_URL is missing']);
  });

  test('SUPABASE_URL without key is fine when DATABASE_URL gives a direct connection', () => {
    assert.equal(resolveConfig({ SUPABASE_URL: 'https://abc.supabase.co', DATABASE_URL: DB }).store, 'postgres');
  });

  test('DATABASE_URL must be postgres:// or postgresql://', () => {
    assert.deepEqual(problemsOf({ DATABASE_URL: 'http://db' }).problems, ['DATABASE_URL: expected a postgres:// or postgresql:// URL']);
    assert.equal(resolveConfig({ DATABASE_URL: 'postgresql://u@h/db' }).store, 'postgres');
  });

  test('RAG_ENABLE_CLAUDE_ANALYSIS=true needs ANTHROPIC_API_KEY', () => {
    assert.deepEqual(problemsOf({ RAG_ENABLE_CLAUDE_ANALYSIS: 'true' }).problems, ['RAG_ENABLE_CLAUDE_ANALYSIS=true needs ANTHROPIC_API_KEY']);
  });

  test('RAG_RETRY_MAX_MS must be at least RAG_RETRY_BASE_MS', () => {
    assert.deepEqual(problemsOf({ RAG_RETRY_BASE_MS: '2000', RAG_RETRY_MAX_MS: '1000' }).problems, ['RAG_RETRY_MAX_MS=1000: must be at least RAG_RETRY_BASE_MS (2000)']);
    assert.equal(resolveConfig({ RAG_RETRY_BASE_MS: '1000', RAG_RETRY_MAX_MS: '1000' }).retryMaxMs, 1000);
  });

  test('several cross-check problems are reported together', () => {
    const err = problemsOf({ SUPABASE_URL: 'https://abc.supabase.co', RAG_ENABLE_CLAUDE_ANALYSIS: '1' });
    assert.equal(err.problems.length, 2);
  });
});

describe('overrides', () => {
  test('overrides (CLI flags) win over the environment, numbers and booleans included', () => {
    const c: Config = resolveConfig(
      { RAG_EMBEDDING_BATCH: '16', RAG_LOG_LEVEL: 'info', RAG_ENABLE_CLAUDE_ANALYSIS: 'true', ANTHROPIC_API_KEY: 'k' },
      { embeddingBatch: 64, logLevel: 'debug', enableClaudeAnalysis: false },
    );
    assert.equal(c.embeddingBatch, 64);
    assert.equal(c.logLevel, 'debug');
    assert.equal(c.enableClaudeAnalysis, false);
  });

  test('an undefined override leaves the environment value', () => {
    assert.equal(resolveConfig({ RAG_EMBEDDING_BATCH: '32' }, { embeddingBatch: undefined }).embeddingBatch, 32);
  });

  test('a bad override is reported under the variable name', () => {
    const err = problemsOf({ RAG_EMBEDDING_BATCH: '16' }, { embeddingBatch: 5000 });
    assert.deepEqual(err.problems, ['RAG_EMBEDDING_BATCH="5000": must be at most 2048']);
  });
});

describe('store and embedder selection', () => {
  test('store: DATABASE_URL → postgres; SUPABASE_URL + key → supabase; nothing → embedded', () => {
    assert.equal(resolveConfig({}).store, 'embedded');
    assert.equal(resolveConfig({ DATABASE_URL: DB }).store, 'postgres');
    assert.equal(resolveConfig({ SUPABASE_URL: 'https://abc.supabase.co', SUPABASE_SERVICE_ROLE_KEY: JWT }).store, 'supabase');
    assert.equal(resolveConfig({ DATABASE_URL: DB, SUPABASE_URL: 'https://abc.supabase.co', SUPABASE_SERVICE_ROLE_KEY: JWT }).store, 'postgres');
    assert.equal(resolveConfig({ DATABASE_URL: '' }).store, 'embedded');
  });

  test('embedder: local without a key; openai with OPENAI_API_KEY or an OPENAI_BASE_URL (keyless local server)', () => {
    assert.equal(resolveConfig({}).embedder, 'local');
    assert.equal(resolveConfig({ OPENAI_API_KEY: '' }).embedder, 'local');
    assert.equal(resolveConfig({ OPENAI_API_KEY: KEY }).embedder, 'openai');
    assert.equal(resolveConfig({ OPENAI_BASE_URL: 'http://localhost:11434/v1' }).embedder, 'openai');
  });
});
