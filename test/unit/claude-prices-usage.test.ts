/**
 * The pure Claude helpers: the price table and RAG_PRICES (src/shared/claude/prices.ts), usage and cost
 * arithmetic (src/shared/claude/usage.ts), the prompts and cache keys (src/shared/claude/prompts.ts), and the
 * analysis schema and its parser (src/shared/claude/analysis.ts).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { ANALYSIS_JSON_SCHEMA, parseAnalysis, type AnalysisBody } from '../../src/shared/claude/analysis.ts';
import { claudePriceOf, DEFAULT_PRICES, mergePrices, type PriceTable } from '../../src/shared/claude/prices.ts';
import {
  analysisKey,
  buildWindow,
  CONTEXT_MAX_CHARS,
  cleanContext,
  contextKey,
  embeddedText,
  estimateClaudeTokens,
  PROMPT_VERSION,
  renderChunk,
} from '../../src/shared/claude/prompts.ts';
import { addUsage, cacheReadShare, claudeUsage, embeddingUsage, type ClaudeTokens } from '../../src/shared/claude/usage.ts';

const tokens = (inputTokens: number, cacheWriteTokens: number, cacheReadTokens: number, outputTokens: number): ClaudeTokens => ({
  inputTokens,
  cacheWriteTokens,
  cacheReadTokens,
  outputTokens,
});

/** USD of a request at per-million rates, rounded as usage.ts rounds (nine decimals). */
const usd = (t: ClaudeTokens, r: { input: number; cacheWrite: number; cacheRead: number; output: number }) =>
  Math.round(((t.inputTokens * r.input + t.cacheWriteTokens * r.cacheWrite + t.cacheReadTokens * r.cacheRead + t.outputTokens * r.output) / 1e6) * 1e9) / 1e9;

// ---------- claudeUsage ----------

describe('claudeUsage at the default price table', () => {
  test('counts every kind of token and prices each at its rate (claude-haiku-4-5: $1 in, $1.25 write, $0.10 read, $5 out)', () => {
    const u = claudeUsage(DEFAULT_PRICES, 'claude-haiku-4-5', tokens(1_000, 2_000, 10_000, 500));
    // 1000·1 + 2000·1.25 + 10000·0.1 + 500·5 = 7000 per million
    assert.deepEqual(u, {
      claude_requests: 1,
      claude_input_tokens: 1_000,
      claude_cache_write_tokens: 2_000,
      claude_cache_read_tokens: 10_000,
      claude_output_tokens: 500,
      claude_usd: 0.007,
      cost_usd: 0.007,
    });
  });

  test('a request with no tokens costs nothing but is still one request', () => {
    assert.deepEqual(claudeUsage(DEFAULT_PRICES, 'claude-opus-4-8', tokens(0, 0, 0, 0)), {
      claude_requests: 1,
      claude_input_tokens: 0,
      claude_cache_write_tokens: 0,
      claude_cache_read_tokens: 0,
      claude_output_tokens: 0,
      claude_usd: 0,
      cost_usd: 0,
    });
  });

  test('default cache rates are 1.25× and 0.1× input unless a model lists its own', () => {
    assert.deepEqual(DEFAULT_PRICES.claude['claude-sonnet-4-6'], { input: 3, cacheWrite: 3.75, cacheRead: 0.3, output: 15 });
    assert.deepEqual(DEFAULT_PRICES.claude['claude-sonnet-5-5'], { input: 2, cacheWrite: 2.5, cacheRead: 0.1, output: 10 });
    assert.equal(claudeUsage(DEFAULT_PRICES, 'claude-sonnet-4-6', tokens(0, 1_000_000, 0, 0)).claude_usd, 3.75);
    assert.equal(claudeUsage(DEFAULT_PRICES, 'claude-sonnet-4-6', tokens(0, 0, 1_000_000, 0)).claude_usd, 0.3);
  });

  describe('claude-haiku-5-5: a prompt over 100,000 tokens bills the whole request at the long rates', () => {
    const base = { input: 0.1, cacheWrite: 0.125, cacheRead: 0.01, output: 0.5 };
    const long = { input: 0.5, cacheWrite: 0.625, cacheRead: 0.05, output: 2.5 };

    test('the table has both bands', () => {
      const p = DEFAULT_PRICES.claude['claude-haiku-5-5'];
      assert.equal(p.longPromptTokens, 100_000);
      assert.deepEqual({ input: p.input, cacheWrite: p.cacheWrite, cacheRead: p.cacheRead, output: p.output }, base);
      assert.deepEqual(p.long, long);
    });

    test('a prompt of exactly 100,000 tokens (input + writes + reads) stays at the base rates', () => {
      const t = tokens(40_000, 10_000, 50_000, 1_000);
      const u = claudeUsage(DEFAULT_PRICES, 'claude-haiku-5-5', t);
      // 40000·0.1 + 10000·0.125 + 50000·0.01 + 1000·0.5 = 6250 per million
      assert.equal(u.claude_usd, 0.00625);
      assert.equal(u.claude_usd, usd(t, base));
    });

    test('one token more and every token is billed at the long rates, output included', () => {
      const t = tokens(40_000, 10_000, 50_001, 1_000);
      const u = claudeUsage(DEFAULT_PRICES, 'claude-haiku-5-5', t);
      // 40000·0.5 + 10000·0.625 + 50001·0.05 + 1000·2.5 = 31250.05 per million
      assert.equal(u.claude_usd, 0.03125005);
      assert.equal(u.cost_usd, 0.03125005);
      assert.equal(u.claude_usd, usd(t, long));
    });

    test('cache reads count towards the threshold: a cached long prompt is still a long prompt', () => {
      const t = tokens(10, 0, 150_000, 100);
      assert.equal(claudeUsage(DEFAULT_PRICES, 'claude-haiku-5-5', t).claude_usd, usd(t, long));
    });

    test('output alone never moves a request into the long band', () => {
      const t = tokens(1_000, 0, 0, 200_000);
      assert.equal(claudeUsage(DEFAULT_PRICES, 'claude-haiku-5-5', t).claude_usd, usd(t, base));
      assert.equal(claudeUsage(DEFAULT_PRICES, 'claude-haiku-5-5', t).claude_usd, 0.1001);
    });

    test('a dated haiku-5-5 id gets the long band too', () => {
      const t = tokens(200_000, 0, 0, 0);
      assert.equal(claudeUsage(DEFAULT_PRICES, 'claude-haiku-5-5-20270101', t).claude_usd, 0.1);
    });
  });

  describe('dated model ids resolve by prefix', () => {
    test('an exact entry wins (claude-haiku-4-5-20251001 is listed)', () => {
      assert.equal(claudePriceOf(DEFAULT_PRICES, 'claude-haiku-4-5-20251001'), DEFAULT_PRICES.claude['claude-haiku-4-5-20251001']);
    });

    test('an unlisted date suffix takes the price of the listed id it extends', () => {
      assert.equal(claudePriceOf(DEFAULT_PRICES, 'claude-sonnet-4-6-20260115'), DEFAULT_PRICES.claude['claude-sonnet-4-6']);
      assert.equal(claudePriceOf(DEFAULT_PRICES, 'claude-opus-4-5-20251101'), DEFAULT_PRICES.claude['claude-opus-4-5']);
      const u = claudeUsage(DEFAULT_PRICES, 'claude-haiku-4-5-20260301', tokens(1_000_000, 0, 0, 0));
      assert.equal(u.claude_usd, 1);
      assert.equal(u.unpriced_models, undefined);
    });

    test('the longest listed prefix wins (claude-sonnet-5-5-… is not claude-sonnet-5)', () => {
      assert.equal(claudePriceOf(DEFAULT_PRICES, 'claude-sonnet-5-5-20270101'), DEFAULT_PRICES.claude['claude-sonnet-5-5']);
      assert.equal(claudePriceOf(DEFAULT_PRICES, 'claude-sonnet-5-20270101'), DEFAULT_PRICES.claude['claude-sonnet-5']);
      // The two differ in their cache-read rate: 0.1 against 0.2.
      assert.equal(claudeUsage(DEFAULT_PRICES, 'claude-sonnet-5-5-20270101', tokens(0, 0, 1_000_000, 0)).claude_usd, 0.1);
      assert.equal(claudeUsage(DEFAULT_PRICES, 'claude-sonnet-5-20270101', tokens(0, 0, 1_000_000, 0)).claude_usd, 0.2);
    });

    test('a prefix must end at a dash: claude-opus-55 is not claude-opus-5', () => {
      assert.equal(claudePriceOf(DEFAULT_PRICES, 'claude-opus-55'), undefined);
      assert.equal(claudePriceOf(DEFAULT_PRICES, 'claude-opus'), undefined);
      assert.equal(claudePriceOf(DEFAULT_PRICES, 'xclaude-opus-5-2027'), undefined);
    });
  });

  test('a model without a price: its tokens are counted, no cost, and it is named', () => {
    const u = claudeUsage(DEFAULT_PRICES, 'claude-future-9', tokens(100, 200, 300, 400));
    assert.deepEqual(u, {
      claude_requests: 1,
      claude_input_tokens: 100,
      claude_cache_write_tokens: 200,
      claude_cache_read_tokens: 300,
      claude_output_tokens: 400,
      unpriced_models: 'claude-future-9',
    });
    assert.equal('claude_usd' in u, false);
    assert.equal('cost_usd' in u, false);
  });
});

// ---------- embeddingUsage ----------

describe('embeddingUsage', () => {
  test('tokens and cost at the model\'s rate', () => {
    assert.deepEqual(embeddingUsage(DEFAULT_PRICES, 'text-embedding-3-small', 1_000_000), { embedding_tokens: 1_000_000, embedding_usd: 0.02, cost_usd: 0.02 });
    assert.deepEqual(embeddingUsage(DEFAULT_PRICES, 'text-embedding-3-large', 12_345), { embedding_tokens: 12_345, embedding_usd: 0.00160485, cost_usd: 0.00160485 });
  });

  test('no tokens: nothing at all', () => {
    assert.deepEqual(embeddingUsage(DEFAULT_PRICES, 'text-embedding-3-small', 0), {});
    assert.deepEqual(embeddingUsage(DEFAULT_PRICES, 'unknown-model', 0), {});
  });

  test('a free model is priced at zero, not unpriced', () => {
    assert.deepEqual(embeddingUsage(DEFAULT_PRICES, 'local-lexical-hash-v1', 500), { embedding_tokens: 500, embedding_usd: 0, cost_usd: 0 });
  });

  test('a model without a price: tokens only, named', () => {
    assert.deepEqual(embeddingUsage(DEFAULT_PRICES, 'nomic-embed-text', 500), { embedding_tokens: 500, unpriced_models: 'nomic-embed-text' });
  });

  test('embedding models are matched exactly, not by prefix', () => {
    assert.deepEqual(embeddingUsage(DEFAULT_PRICES, 'text-embedding-3-small-2025', 10), { embedding_tokens: 10, unpriced_models: 'text-embedding-3-small-2025' });
  });
});

// ---------- addUsage, cacheReadShare ----------

describe('addUsage', () => {
  test('adds key by key; a key on one side only is kept', () => {
    const a = claudeUsage(DEFAULT_PRICES, 'claude-haiku-4-5', tokens(1_000, 2_000, 10_000, 500));
    const b = embeddingUsage(DEFAULT_PRICES, 'text-embedding-3-small', 1_000_000);
    assert.deepEqual(addUsage(a, b), {
      claude_requests: 1,
      claude_input_tokens: 1_000,
      claude_cache_write_tokens: 2_000,
      claude_cache_read_tokens: 10_000,
      claude_output_tokens: 500,
      claude_usd: 0.007,
      embedding_tokens: 1_000_000,
      embedding_usd: 0.02,
      cost_usd: 0.027,
    });
    assert.deepEqual(addUsage(a, a), {
      claude_requests: 2,
      claude_input_tokens: 2_000,
      claude_cache_write_tokens: 4_000,
      claude_cache_read_tokens: 20_000,
      claude_output_tokens: 1_000,
      claude_usd: 0.014,
      cost_usd: 0.014,
    });
  });

  test('sums of dollars are rounded to nine decimals (no 0.30000000000000004)', () => {
    assert.equal(addUsage({ cost_usd: 0.1 }, { cost_usd: 0.2 }).cost_usd, 0.3);
    assert.equal(addUsage({ claude_usd: 0.000000001 }, { claude_usd: 0.000000002 }).claude_usd, 0.000000003);
  });

  test('unpriced model names are joined without repeats', () => {
    assert.equal(addUsage({ unpriced_models: 'a' }, { unpriced_models: 'b' }).unpriced_models, 'a,b');
    assert.equal(addUsage({ unpriced_models: 'a,b' }, { unpriced_models: 'b,c' }).unpriced_models, 'a,b,c');
    assert.equal(addUsage({}, { unpriced_models: 'x' }).unpriced_models, 'x');
    assert.equal(addUsage({ unpriced_models: 'x' }, {}).unpriced_models, 'x');
  });

  test('the empty usage is neutral; undefined values are skipped; the inputs are not changed', () => {
    const u = claudeUsage(DEFAULT_PRICES, 'claude-future-9', tokens(1, 2, 3, 4));
    const copy = structuredClone(u);
    assert.deepEqual(addUsage({}, u), u);
    assert.deepEqual(addUsage(u, {}), u);
    assert.deepEqual(addUsage(u, { cost_usd: undefined }), u);
    assert.deepEqual(u, copy);
  });

  test('summing a job\'s requests one by one', () => {
    let total = {};
    for (let i = 0; i < 10; i++) total = addUsage(total, claudeUsage(DEFAULT_PRICES, 'claude-haiku-4-5', tokens(100, 0, 900, 30)));
    // per request: 100·1 + 900·0.1 + 30·5 = 340 per million
    assert.deepEqual(total, {
      claude_requests: 10,
      claude_input_tokens: 1_000,
      claude_cache_write_tokens: 0,
      claude_cache_read_tokens: 9_000,
      claude_output_tokens: 300,
      claude_usd: 0.0034,
      cost_usd: 0.0034,
    });
  });
});

describe('cacheReadShare', () => {
  test('reads over reads + writes + uncached input; output does not count', () => {
    assert.equal(cacheReadShare({ claude_input_tokens: 100, claude_cache_write_tokens: 100, claude_cache_read_tokens: 800, claude_output_tokens: 5_000 }), 0.8);
    assert.equal(cacheReadShare({ claude_cache_read_tokens: 10 }), 1);
    assert.equal(cacheReadShare({ claude_input_tokens: 10, claude_cache_write_tokens: 10 }), 0);
  });

  test('no Claude tokens at all: 0, not NaN', () => {
    assert.equal(cacheReadShare({}), 0);
    assert.equal(cacheReadShare({ embedding_tokens: 100, claude_output_tokens: 5 }), 0);
  });
});

// ---------- mergePrices ----------

describe('mergePrices (RAG_PRICES)', () => {
  test('nothing given: the default table itself', () => {
    assert.equal(mergePrices(undefined), DEFAULT_PRICES);
    assert.equal(mergePrices(''), DEFAULT_PRICES);
    assert.equal(mergePrices('  \n '), DEFAULT_PRICES);
  });

  test('inline JSON adds a model and overrides another; cache rates default to 1.25× and 0.1× input', () => {
    const table = mergePrices('{"claude": {"claude-new-1": {"input": 2, "output": 8}, "claude-haiku-4-5": {"input": 0.8, "output": 4, "cacheWrite": 1, "cacheRead": 0.05}}}');
    assert.deepEqual(table.claude['claude-new-1'], { input: 2, cacheWrite: 2.5, cacheRead: 0.2, output: 8 });
    assert.deepEqual(table.claude['claude-haiku-4-5'], { input: 0.8, cacheWrite: 1, cacheRead: 0.05, output: 4 });
    assert.deepEqual(table.claude['claude-opus-4-8'], DEFAULT_PRICES.claude['claude-opus-4-8'], 'the others are kept');
    assert.deepEqual(table.embedding, DEFAULT_PRICES.embedding);
    assert.equal(claudeUsage(table, 'claude-new-1-20270101', tokens(1_000_000, 0, 0, 0)).claude_usd, 2, 'a dated id of the new model is priced');
  });

  test('only one cache rate given: the other still defaults', () => {
    const table = mergePrices('{"claude": {"m": {"input": 4, "output": 20, "cacheRead": 1}}}');
    assert.deepEqual(table.claude.m, { input: 4, cacheWrite: 5, cacheRead: 1, output: 20 });
  });

  test('a long-prompt band with both fields, its cache rates defaulted too', () => {
    const table = mergePrices('{"claude": {"m": {"input": 1, "output": 2, "longPromptTokens": 1000, "long": {"input": 10, "output": 20}}}}');
    assert.deepEqual(table.claude.m, { input: 1, cacheWrite: 1.25, cacheRead: 0.1, output: 2, longPromptTokens: 1000, long: { input: 10, cacheWrite: 12.5, cacheRead: 1, output: 20 } });
    assert.equal(claudeUsage(table, 'm', tokens(1_001, 0, 0, 0)).claude_usd, 0.01001);
    assert.equal(claudeUsage(table, 'm', tokens(1_000, 0, 0, 0)).claude_usd, 0.001);
  });

  test('an override of a banded model replaces the whole entry (model by model)', () => {
    const table = mergePrices('{"claude": {"claude-haiku-5-5": {"input": 0.2, "output": 1}}}');
    assert.deepEqual(table.claude['claude-haiku-5-5'], { input: 0.2, cacheWrite: 0.25, cacheRead: 0.02, output: 1 });
  });

  test('embedding prices are laid over the defaults', () => {
    const table = mergePrices('{"embedding": {"nomic-embed-text": 0.01, "text-embedding-3-small": 0.015}}');
    assert.equal(table.embedding['nomic-embed-text'], 0.01);
    assert.equal(table.embedding['text-embedding-3-small'], 0.015);
    assert.equal(table.embedding['text-embedding-3-large'], 0.13);
    assert.deepEqual(table.claude, DEFAULT_PRICES.claude);
    assert.deepEqual(mergePrices('{}'), { claude: DEFAULT_PRICES.claude, embedding: DEFAULT_PRICES.embedding });
  });

  test('the base table is not changed', () => {
    const base: PriceTable = structuredClone(DEFAULT_PRICES);
    const before = structuredClone(base);
    const merged = mergePrices('{"claude": {"claude-haiku-4-5": {"input": 9, "output": 9}, "new": {"input": 1, "output": 1}}, "embedding": {"e": 1}}', base);
    assert.deepEqual(base, before);
    assert.notEqual(merged.claude, base.claude);
    assert.equal(merged.claude['claude-sonnet-4-6'], base.claude['claude-sonnet-4-6']);
  });

  test('a bad entry is named in the error, by its path', () => {
    const cases: [string, RegExp][] = [
      ['{"claude": {"m": {"input": -1, "output": 1}}}', /^claude\.m\.input: /],
      ['{"claude": {"m": {"input": 1}}}', /^claude\.m\.output: /],
      ['{"claude": {"m": {"input": "1", "output": 1}}}', /^claude\.m\.input: /],
      ['{"claude": {"m": {"input": 1, "output": 1, "extra": 2}}}', /^claude\.m: .*"extra"/],
      ['{"claude": {"m": {"input": 1, "output": 1, "longPromptTokens": 1.5}}}', /^claude\.m\.longPromptTokens: /],
      ['{"claude": {"m": {"input": 1, "output": 1, "long": {"input": 1}}}}', /^claude\.m\.long\.output: /],
      ['{"embedding": {"e": -2}}', /^embedding\.e: /],
      ['{"embedding": {"e": "cheap"}}', /^embedding\.e: /],
      ['{"claud": {}}', /^\(top level\): .*"claud"/],
      ['[1, 2]', /^\(top level\): /],
      ['42', /^\(top level\): /],
    ];
    for (const [text, message] of cases) assert.throws(() => mergePrices(text), { message }, text);
  });

  test('text that is not JSON', () => {
    assert.throws(() => mergePrices('{'), { message: /^not valid JSON \(.+\)$/ });
    assert.throws(() => mergePrices('/etc/prices.json'), { message: /^not valid JSON \(/ });
    assert.throws(() => mergePrices("{'claude': {}}"), { message: /^not valid JSON \(/ });
  });
});

// ---------- prompts ----------

const chunk = (index: number, content: string, startMs: number | null) => ({ index, content, startMs });

describe('renderChunk', () => {
  test('a chunk with a start time opens with it as [hh:mm:ss]', () => {
    assert.equal(renderChunk(chunk(0, 'Hello.', 0)), '[00:00:00]\nHello.');
    assert.equal(renderChunk(chunk(0, 'Later.', 3_723_456)), '[01:02:03]\nLater.');
    assert.equal(renderChunk(chunk(0, 'Almost.', 59_999)), '[00:00:59]\nAlmost.', 'milliseconds are dropped, not rounded');
    assert.equal(renderChunk(chunk(0, 'Long.', 36_000_000)), '[10:00:00]\nLong.');
    assert.equal(renderChunk(chunk(0, 'Very long.', 360_000_000)), '[100:00:00]\nVery long.', 'hours are not wrapped');
  });

  test('without a time, just the content', () => {
    assert.equal(renderChunk(chunk(0, 'No times here.', null)), 'No times here.');
  });
});

describe('buildWindow', () => {
  const chunks = [chunk(4, 'First passage.', 1_000), chunk(5, 'Second passage.', 65_000), chunk(6, 'Third passage.', null)];

  test('instructions, the title, then the passages in a <transcript> block', () => {
    const w = buildWindow(2, chunks, 'Quarterly review');
    assert.equal(w.index, 2);
    assert.equal(w.firstChunk, 4);
    assert.equal(w.lastChunk, 6);
    const [head, rest] = w.text.split('\nTitle: Quarterly review\n\n<transcript>\n');
    assert.match(head, /^You are indexing a transcript/);
    assert.match(head, /\[hh:mm:ss\]/);
    assert.equal(rest, '[00:00:01]\nFirst passage.\n\n[00:01:05]\nSecond passage.\n\nThird passage.\n</transcript>');
    assert.equal(w.tokens, estimateClaudeTokens(w.text));
    assert.equal(w.tokens, Math.ceil(w.text.length / 3));
  });

  test('no title line without a title', () => {
    for (const title of [null, '']) {
      const w = buildWindow(0, chunks, title);
      assert.ok(!w.text.includes('Title:'), w.text);
      assert.match(w.text, /\[hh:mm:ss\] when the recording has times\.\n\n<transcript>\n\[00:00:01\]/);
    }
  });

  test('one chunk: first and last are the same', () => {
    const w = buildWindow(0, [chunk(9, 'Only.', null)], null);
    assert.equal(w.firstChunk, 9);
    assert.equal(w.lastChunk, 9);
    assert.ok(w.text.endsWith('<transcript>\nOnly.\n</transcript>'));
  });
});

describe('contextKey and analysisKey', () => {
  const window = buildWindow(0, [chunk(0, 'We ship on Friday.', 0), chunk(1, 'Agreed.', 5_000)], 'Standup');

  test('32 hex characters, stable for the same inputs', () => {
    const k = contextKey('claude-haiku-4-5', window);
    assert.match(k, /^[0-9a-f]{32}$/);
    assert.equal(contextKey('claude-haiku-4-5', window), k);
    assert.equal(contextKey('claude-haiku-4-5', buildWindow(0, [chunk(0, 'We ship on Friday.', 0), chunk(1, 'Agreed.', 5_000)], 'Standup')), k, 'an equal window built again');
    assert.match(analysisKey('claude-haiku-4-5', 20_000, 'sig'), /^[0-9a-f]{32}$/);
    assert.equal(analysisKey('claude-haiku-4-5', 20_000, 'sig'), analysisKey('claude-haiku-4-5', 20_000, 'sig'));
  });

  test('contextKey changes with the model and with the window text, not with the window\'s position or bounds', () => {
    const k = contextKey('claude-haiku-4-5', window);
    assert.notEqual(contextKey('claude-sonnet-4-6', window), k);
    assert.notEqual(contextKey('claude-haiku-4-5-20251001', window), k);
    assert.notEqual(contextKey('claude-haiku-4-5', buildWindow(0, [chunk(0, 'We ship on Monday.', 0), chunk(1, 'Agreed.', 5_000)], 'Standup')), k, 'a word of a passage');
    assert.notEqual(contextKey('claude-haiku-4-5', buildWindow(0, [chunk(0, 'We ship on Friday.', 1_000), chunk(1, 'Agreed.', 5_000)], 'Standup')), k, 'a time');
    assert.notEqual(contextKey('claude-haiku-4-5', buildWindow(0, [chunk(0, 'We ship on Friday.', 0), chunk(1, 'Agreed.', 5_000)], 'Retro')), k, 'the title');
    assert.notEqual(contextKey('claude-haiku-4-5', { ...window, text: `${window.text} ` }), k, 'one character more');
    assert.equal(contextKey('claude-haiku-4-5', { ...window, index: 7, firstChunk: 30, lastChunk: 31, tokens: 1 }), k);
  });

  test('contextKey changes with the prompt: the instructions are part of the window text and the version is hashed in', () => {
    assert.ok(window.text.startsWith('You are indexing a transcript'), 'the instructions are in the hashed text');
    const hash = (version: string) => createHash('sha256').update(`context ${version}\0claude-haiku-4-5\0`).update(window.text).digest('hex').slice(0, 32);
    assert.equal(contextKey('claude-haiku-4-5', window), hash(PROMPT_VERSION));
    assert.notEqual(hash(PROMPT_VERSION), hash(`${PROMPT_VERSION}-next`));
  });

  test('analysisKey changes with the model, the window size, the chunked input and the prompt version', () => {
    const k = analysisKey('claude-haiku-4-5', 20_000, 'cl100k:512:abc');
    assert.notEqual(analysisKey('claude-opus-4-8', 20_000, 'cl100k:512:abc'), k);
    assert.notEqual(analysisKey('claude-haiku-4-5', 40_000, 'cl100k:512:abc'), k);
    assert.notEqual(analysisKey('claude-haiku-4-5', 20_000, 'cl100k:512:abd'), k);
    const hash = (version: string) => createHash('sha256').update(`analysis ${version}\0claude-haiku-4-5\0${20_000}\0cl100k:512:abc`).digest('hex').slice(0, 32);
    assert.equal(k, hash(PROMPT_VERSION));
    assert.notEqual(hash(PROMPT_VERSION), hash(`${PROMPT_VERSION}-next`));
  });

  test('a context key and an analysis key never coincide for the same model', () => {
    assert.notEqual(contextKey('m', { ...window, text: '20000\0sig' }), analysisKey('m', 20_000, 'sig'));
  });
});

describe('cleanContext', () => {
  test('trims and strips a leading "Context:" label (any case, English, French, German)', () => {
    assert.equal(cleanContext('  Context: The team plans the Q3 launch.  '), 'The team plans the Q3 launch.');
    assert.equal(cleanContext('CONTEXT:The team.'), 'The team.');
    assert.equal(cleanContext('contexte : Réunion de lancement.'), 'Réunion de lancement.');
    assert.equal(cleanContext('Kontext:   Planung.'), 'Planung.');
    assert.equal(cleanContext('\nContext:\n\nOn a new line.'), 'On a new line.');
  });

  test('a label elsewhere, or a word that starts with "context", is kept', () => {
    assert.equal(cleanContext('The context: a launch.'), 'The context: a launch.');
    assert.equal(cleanContext('Contextual retrieval: a note.'), 'Contextual retrieval: a note.');
    assert.equal(cleanContext('Context is everything.'), 'Context is everything.');
  });

  test('text up to the limit is kept whole', () => {
    const text = 'x'.repeat(CONTEXT_MAX_CHARS);
    assert.equal(cleanContext(text), text);
  });

  test('a longer text is cut at a word boundary and ends with …', () => {
    const words = Array.from({ length: 400 }, (_, i) => `word${i}`).join(' ');
    const out = cleanContext(`Context: ${words}`);
    assert.ok(out.endsWith('…'), out.slice(-20));
    const body = out.slice(0, -1);
    assert.ok(body.length <= CONTEXT_MAX_CHARS, String(body.length));
    assert.ok(body.length > CONTEXT_MAX_CHARS - 10, String(body.length));
    assert.ok(words.startsWith(body), 'a prefix of the text');
    assert.equal(words[body.length], ' ', 'cut just before a space: no word is split');
    assert.ok(!body.endsWith(' '));
  });

  test('without a space in the second half, the text is cut at the limit', () => {
    const text = `short ${'y'.repeat(3_000)}`;
    const out = cleanContext(text);
    assert.equal(out, `${text.slice(0, CONTEXT_MAX_CHARS)}…`);
  });
});

describe('embeddedText', () => {
  test('the context, a blank line, then the chunk as spoken', () => {
    assert.equal(embeddedText('We ship Friday.', 'The team agrees on the launch date.'), 'The team agrees on the launch date.\n\nWe ship Friday.');
  });

  test('no context: the chunk alone', () => {
    assert.equal(embeddedText('We ship Friday.', null), 'We ship Friday.');
    assert.equal(embeddedText('We ship Friday.', undefined), 'We ship Friday.');
    assert.equal(embeddedText('We ship Friday.', ''), 'We ship Friday.');
  });
});

// ---------- analysis ----------

const valid: AnalysisBody = {
  summary: 'The team agreed to ship on Friday.',
  topics: ['launch date', 'testing'],
  decisions: ['Ship on Friday'],
  action_items: [{ task: 'Write the release notes', owner: 'Dana', due: 'Thursday' }, { task: 'Book the room', owner: null, due: null }],
  key_quotes: [{ quote: 'We ship on Friday.', speaker: 'Speaker 1', time: '00:00:05' }, { quote: 'Agreed.', speaker: null, time: null }],
  speakers: [{ speaker: 'Speaker 1', role: 'facilitator' }],
};

describe('parseAnalysis', () => {
  test('accepts a valid object', () => {
    assert.deepEqual(parseAnalysis(JSON.stringify(valid)), { ok: true, value: valid });
    assert.deepEqual(parseAnalysis(`\n  ${JSON.stringify(valid, null, 2)}\n`), { ok: true, value: valid });
  });

  test('accepts empty lists', () => {
    const empty = { summary: 'Nothing much.', topics: [], decisions: [], action_items: [], key_quotes: [], speakers: [] };
    assert.deepEqual(parseAnalysis(JSON.stringify(empty)), { ok: true, value: empty });
  });

  test('accepts the JSON in a Markdown fence (```json or bare ```)', () => {
    const json = JSON.stringify(valid, null, 2);
    assert.deepEqual(parseAnalysis(`\`\`\`json\n${json}\n\`\`\``), { ok: true, value: valid });
    assert.deepEqual(parseAnalysis(`  \`\`\`json\n${json}\n\`\`\`\n`), { ok: true, value: valid });
    assert.deepEqual(parseAnalysis(`\`\`\`\n${json}\n\`\`\``), { ok: true, value: valid });
  });

  test('keys the schema does not know are dropped from the value', () => {
    const r = parseAnalysis(JSON.stringify({ ...valid, mood: 'upbeat' }));
    assert.equal(r.ok, true);
    assert.ok(r.ok && !('mood' in r.value));
  });

  test('rejects truncated JSON (an answer cut at max_tokens), saying how it starts', () => {
    const text = JSON.stringify(valid).slice(0, 80);
    const r = parseAnalysis(text);
    assert.equal(r.ok, false);
    assert.ok(!r.ok);
    assert.match(r.error, /^not JSON \(/);
    assert.ok(r.error.endsWith(`starts ${JSON.stringify(text.slice(0, 60))}`), r.error);
  });

  test('rejects prose and an unclosed fence', () => {
    for (const text of ['Here is the analysis you asked for.', '', `\`\`\`json\n${JSON.stringify(valid)}`]) {
      const r = parseAnalysis(text);
      assert.equal(r.ok, false, text);
      assert.ok(!r.ok && r.error.startsWith('not JSON'), text);
    }
  });

  test('rejects wrong shapes with a message naming the path', () => {
    const cases: [unknown, string][] = [
      [{ ...valid, summary: 42 }, 'summary'],
      [{ ...valid, topics: 'launch' }, 'topics'],
      [{ ...valid, decisions: ['ok', 7] }, 'decisions.1'],
      [{ ...valid, action_items: [{ task: 'x', due: null }] }, 'action_items.0.owner'],
      [{ ...valid, key_quotes: [valid.key_quotes[0], { quote: 'q', speaker: null, time: 5 }] }, 'key_quotes.1.time'],
      [{ ...valid, speakers: [{ speaker: 'S1' }] }, 'speakers.0.role'],
      [(({ speakers: _s, ...rest }) => rest)(valid), 'speakers'],
      [[valid], '(top level)'],
      [null, '(top level)'],
      ['just a string', '(top level)'],
    ];
    for (const [value, path] of cases) {
      const r = parseAnalysis(JSON.stringify(value));
      assert.equal(r.ok, false, JSON.stringify(value));
      assert.ok(!r.ok && r.error.startsWith(`does not match the analysis schema: ${path}: `), `${path}: ${!r.ok && r.error}`);
    }
  });
});

describe('ANALYSIS_JSON_SCHEMA (structured output)', () => {
  /** Every object schema in the tree, with where it is. */
  function objects(node: unknown, at = '$'): { at: string; schema: Record<string, unknown> }[] {
    if (node === null || typeof node !== 'object') return [];
    if (Array.isArray(node)) return node.flatMap((n, i) => objects(n, `${at}[${i}]`));
    const schema = node as Record<string, unknown>;
    const here = schema.type === 'object' || 'properties' in schema ? [{ at, schema }] : [];
    return [...here, ...Object.entries(schema).flatMap(([k, v]) => objects(v, `${at}.${k}`))];
  }

  test('an object at the top, without $schema, with the analysis fields', () => {
    assert.equal(ANALYSIS_JSON_SCHEMA.type, 'object');
    assert.equal('$schema' in ANALYSIS_JSON_SCHEMA, false);
    assert.deepEqual(Object.keys(ANALYSIS_JSON_SCHEMA.properties as object), ['summary', 'topics', 'decisions', 'action_items', 'key_quotes', 'speakers']);
  });

  test('every object has additionalProperties false and requires every property', () => {
    const found = objects(ANALYSIS_JSON_SCHEMA);
    assert.equal(found.length, 4, found.map((o) => o.at).join(', '));
    for (const { at, schema } of found) {
      assert.equal(schema.type, 'object', at);
      assert.equal(schema.additionalProperties, false, `${at}: additionalProperties`);
      const properties = Object.keys(schema.properties as object);
      assert.ok(properties.length > 0, at);
      assert.deepEqual([...(schema.required as string[])].sort(), [...properties].sort(), `${at}: required`);
    }
  });

  test('nullable fields are typed as string or null (present, never omitted)', () => {
    const items = (name: string) => ((ANALYSIS_JSON_SCHEMA.properties as Record<string, { items: { properties: Record<string, { type: unknown }> } }>)[name]).items.properties;
    assert.deepEqual(items('action_items').owner.type, ['string', 'null']);
    assert.deepEqual(items('action_items').due.type, ['string', 'null']);
    assert.deepEqual(items('key_quotes').speaker.type, ['string', 'null']);
    assert.deepEqual(items('key_quotes').time.type, ['string', 'null']);
    assert.equal(items('speakers').role.type, 'string');
  });

  test('a value that parseAnalysis accepts has every required key (the schema and the parser agree)', () => {
    const r = parseAnalysis(JSON.stringify(valid));
    assert.ok(r.ok);
    for (const key of ANALYSIS_JSON_SCHEMA.required as string[]) assert.ok(key in r.value, key);
  });
});
