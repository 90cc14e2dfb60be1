/**
 * Logger (src/main/logging/logger.ts): every line, pretty or JSON, message and fields, passes through redaction.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createLogger } from '../../src/main/logging/logger.ts';
import { resolveConfig, secretsOf } from '../../src/shared/config.ts';

const KEY = 'gsk_live_ABCDEFGH12345678';
const PASSWORD = 'Pr0xy@pa55"w0rd';
const BASE = `http://proxyuser:${encodeURIComponent(PASSWORD)}@127.0.0.1:8080/v1`;
const FORBIDDEN = [PASSWORD, encodeURIComponent(PASSWORD), JSON.stringify(PASSWORD).slice(1, -1), ...Array.from({ length: KEY.length - 5 }, (_, i) => KEY.slice(i, i + 6))];

describe('log lines carry no secret', () => {
  const config = resolveConfig({ OPENAI_API_KEY: KEY, OPENAI_BASE_URL: BASE });
  for (const format of ['json', 'pretty'] as const) {
    test(format, () => {
      const lines: string[] = [];
      const logger = createLogger({ format, level: 'debug', secrets: secretsOf(config), write: (l) => lines.push(l) }).child({ jobId: 'j1' });
      logger.warn(`cannot reach the embedding endpoint ${BASE}: Connection error.`, { error: new Error(`400 invalid key ${KEY.slice(0, 12)}***${KEY.slice(-4)}`) });
      logger.error('provider said', { body: { message: `password ${PASSWORD} for ${KEY.slice(0, 8)}…${KEY.slice(-8)}` }, url: BASE });
      assert.equal(lines.length, 2);
      for (const line of lines) {
        for (const secret of FORBIDDEN) assert.ok(!line.includes(secret), `${secret} in ${line}`);
        assert.match(line, /\[redacted\]/);
      }
      assert.match(lines[0], /http:\/\/proxyuser:\[redacted\]@127\.0\.0\.1:8080\/v1/, 'the endpoint stays readable');
    });
  }
});
