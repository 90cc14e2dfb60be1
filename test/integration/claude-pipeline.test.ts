/**
 * Claude in the pipeline, end to end: an in-process Coordinator with the real thread pool and store (PostgreSQL
 * and PGlite), the official Anthropic SDK against the loopback Messages server (test/support/fake-anthropic.ts),
 * and an in-test embedding provider that records what it was asked to embed. Waits on coordinator events and rows.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { createClaudeClient } from '../../src/main/analysis/claude-client.ts';
import { ClaudeScheduler } from '../../src/main/analysis/claude-scheduler.ts';
import type { ClaudeSettings } from '../../src/main/analysis/document-claude.ts';
import { ChunkPool } from '../../src/main/coordinator/chunk-pool.ts';
import { Coordinator } from '../../src/main/coordinator/coordinator.ts';
import { createLogger } from '../../src/main/logging/logger.ts';
import type { EmbeddingProvider } from '../../src/main/providers/embedding-provider.ts';
import { EmbeddingScheduler } from '../../src/main/scheduler/embedding-scheduler.ts';
import { DEFAULT_PRICES } from '../../src/shared/claude/prices.ts';
import { WorkerFatalError } from '../../src/shared/errors.ts';
import { FAKE_ANTHROPIC_KEY, startFakeAnthropic, type FakeAnswer, type FakeAnthropic, type FakeMessagesBody } from '../support/fake-anthropic.ts';
import { BACKENDS, type Backend, DIMS, openBackend, parkOtherJobs, planeVector } from '../support/queue-fixtures.ts';

const MODEL = 'claude-haiku-5-5';

/** A 40-turn meeting: with 64-token chunks, about 20 chunks in three save batches. */
function meeting(tag: string, turns = 40) {
  const speakers = ['Ann', 'Bob', 'Chen'];
  return {
    segments: Array.from({ length: turns }, (_, i) => ({
      seq: i + 1,
      speaker: speakers[i % 3],
      start: i * 15,
      end: i * 15 + 14,
      text: `Point ${i + 1} of the ${tag} review: we agreed the ${['budget', 'launch', 'hiring', 'roadmap'][i % 4]} item needs an owner before Friday.`,
    })),
  };
}

interface Worker {
  coordinator: Coordinator;
  embedded: string[];
  lines: Record<string, unknown>[];
  stop(): Promise<void>;
}

function startWorker(b: Backend, pool: ChunkPool, fake: FakeAnthropic, options: { required?: boolean; failEmbeddingAfter?: number; windowTokens?: number } = {}): Worker {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ format: 'json', level: 'debug', secrets: [FAKE_ANTHROPIC_KEY], write: (line) => lines.push(JSON.parse(line)) });
  const embedded: string[] = [];
  let embedCalls = 0;
  const provider: EmbeddingProvider = {
    name: 'test',
    model: 'test-model',
    dimensions: DIMS,
    remote: true,
    async embed(inputs) {
      embedCalls++;
      if (options.failEmbeddingAfter !== undefined && embedCalls > options.failEmbeddingAfter) {
        throw new WorkerFatalError('embedding provider rejected the credentials (401)', { setting: 'OPENAI_API_KEY' });
      }
      embedded.push(...inputs);
      return { vectors: inputs.map(planeVector) };
    },
  };
  const scheduler = new EmbeddingScheduler({ provider, batchSize: 8, concurrency: 1, maxRetries: 0, backoff: { baseMs: 1, maxMs: 2 }, rpm: 1_000_000, logger });
  const claudeScheduler = new ClaudeScheduler({
    client: createClaudeClient({ apiKey: FAKE_ANTHROPIC_KEY, baseURL: fake.url, timeoutMs: 10_000 }),
    concurrency: 3,
    // Limits known up front: full concurrency from the first request (no slow start), so only the warm-up
    // ordering keeps a window's requests from missing the cache together.
    rpm: 100_000,
    maxRetries: 3,
    backoff: { baseMs: 1, maxMs: 5 },
    logger,
  });
  const claude: ClaudeSettings = {
    scheduler: claudeScheduler,
    contextModel: MODEL,
    analysisModel: MODEL,
    contexts: true,
    analysis: true,
    required: options.required ?? true,
    windowTokens: options.windowTokens ?? 80_000,
    effort: 'low',
    prices: DEFAULT_PRICES,
  };
  const coordinator = new Coordinator(
    { store: b.store, pool, scheduler, claude, prices: DEFAULT_PRICES, chunkMaxTokens: 64, charLimit: 400, saveBatch: 8, window: 2 },
    {
      workerId: `claude-test-${Math.random().toString(36).slice(2, 8)}`,
      maxConcurrentJobs: 2,
      leaseSeconds: 30,
      heartbeatMs: 1000,
      pollIntervalMs: 100,
      maxAttempts: 3,
      retryBaseMs: 60_000,
      retryMaxMs: 120_000,
      faultRecheckMs: 60_000,
      secrets: [FAKE_ANTHROPIC_KEY],
      healthCheck: async () => {
        throw new WorkerFatalError('still broken', { setting: 'ANTHROPIC_API_KEY' });
      },
    },
    logger,
  );
  const run = coordinator.run();
  return {
    coordinator,
    embedded,
    lines,
    async stop() {
      await coordinator.stop(1000);
      await run;
      scheduler.close();
      claudeScheduler.close();
    },
  };
}

async function nextJobEvent(c: Coordinator, jobId: string): Promise<{ status: string }> {
  for (;;) {
    const [event] = (await once(c, 'job')) as [{ jobId: string; status: string }];
    if (event.jobId === jobId) return event;
  }
}

async function chunksOf(b: Backend, documentId: string) {
  return b.sql.query<{ chunk_index: number; content: string; context: string | null; context_key: string | null; tsv: string }>(
    `select chunk_index, content, context, context_key, search_tsv::text as tsv from rag_chunks where document_id = $1 order by version, chunk_index`,
    [documentId],
  );
}

/** Requests for chunk contexts (the analysis is the one with a JSON schema). */
const contextRequests = (fake: FakeAnthropic) => fake.requests.filter((r) => r.body && !(r.body as { output_config?: { format?: unknown } }).output_config?.format);
const analysisRequests = (fake: FakeAnthropic) => fake.requests.filter((r) => (r.body as { output_config?: { format?: unknown } } | undefined)?.output_config?.format);

for (const kind of BACKENDS) {
  describe(`Claude in the pipeline (${kind})`, () => {
    let b: Backend;
    let pool: ChunkPool;
    let fake: FakeAnthropic;
    let respond: ((body: FakeMessagesBody) => FakeAnswer | undefined) | undefined;
    before(async () => {
      b = await openBackend(kind);
      pool = new ChunkPool(1);
      fake = await startFakeAnthropic({ minCacheTokens: 200, latencyMs: 15, respond: (body) => respond?.(body) });
    });
    after(async () => {
      await fake.close();
      await pool.close();
      await b.close();
    });

    test('every chunk gets a context (cache written once, then read), embedded and keyword-indexed with it; content stays as spoken; the analysis is stored; the cost adds up', async () => {
      await parkOtherJobs(b.sql);
      fake.reset();
      const w = startWorker(b, pool, fake);
      try {
        const id = await b.store.enqueue({ documentId: `ctx-${kind}`, title: 'Planning', payload: meeting('planning') });
        assert.equal((await nextJobEvent(w.coordinator, id)).status, 'complete');
        const rows = await chunksOf(b, `ctx-${kind}`);
        assert.ok(rows.length >= 10, `${rows.length} chunks`);
        for (const r of rows) {
          assert.ok(r.context && r.context.length > 0, `chunk ${r.chunk_index} has a context`);
          assert.doesNotMatch(r.content, /^Context:/, 'content is the transcript, not the context');
          assert.ok(r.context_key, 'context key stored');
          assert.ok(w.embedded.some((t) => t.startsWith(r.context!) && t.endsWith(r.content)), 'embedded as context + content');
        }
        // The fake's contexts start with words of the request ("Here is a passage…"): those are in the index too.
        assert.ok(rows.every((r) => r.tsv.includes("'passag'")), 'the context is keyword-indexed');

        // Prompt caching: one window, one cache write (the first request, alone); every other request reads it.
        const ctx = contextRequests(fake);
        assert.equal(ctx.length, rows.length);
        assert.equal(fake.counters.cacheWrites, 1, 'the document was written to the cache once');
        const first = fake.requests[0];
        assert.equal(first.cache, 'write');
        assert.ok(fake.requests.slice(1).every((r) => r.cache === 'read'), 'fan-out reads the cache');
        assert.ok(fake.requests.every((r) => (r.body as { system?: unknown[] }).system?.length), 'the transcript goes in the system block');

        const job = (await b.store.getJob(id))!;
        const u = job.usage;
        assert.equal(u.claude_requests, fake.counters.ok);
        assert.equal(u.claude_cache_read_tokens, fake.counters.cacheReadTokens);
        assert.equal(u.claude_cache_write_tokens, fake.counters.cacheWriteTokens);
        assert.equal(u.claude_input_tokens, fake.counters.inputTokens);
        assert.equal(u.claude_output_tokens, fake.counters.outputTokens);
        const p = DEFAULT_PRICES.claude[MODEL];
        const expected = (fake.counters.inputTokens * p.input + fake.counters.cacheWriteTokens * p.cacheWrite + fake.counters.cacheReadTokens * p.cacheRead + fake.counters.outputTokens * p.output) / 1e6;
        assert.ok(Math.abs((u.claude_usd ?? -1) - expected) < 1e-8, `claude_usd ${u.claude_usd} vs ${expected}`);
        assert.equal(u.embedding_tokens, job.tokens_embedded);

        const doc = (await b.store.getDocument(`ctx-${kind}`))!;
        assert.equal(doc.analysis?.status, 'complete');
        if (doc.analysis?.status === 'complete') {
          assert.equal(typeof doc.analysis.summary, 'string');
          assert.ok(Array.isArray(doc.analysis.action_items));
          assert.equal(doc.analysis.windows, 1);
        }
        assert.deepEqual(doc.usage, job.usage, 'the document carries the job usage');
      } finally {
        await w.stop();
      }
    });

    test('a transcript longer than the window: each window is cached and situated on its own, analysed, and the analyses merged', async () => {
      await parkOtherJobs(b.sql);
      fake.reset();
      // ~8 chunks (one save batch) per window of 1,500 estimated tokens.
      const w = startWorker(b, pool, fake, { windowTokens: 1500 });
      try {
        const id = await b.store.enqueue({ documentId: `windows-${kind}`, payload: meeting('windows', 60) });
        assert.equal((await nextJobEvent(w.coordinator, id)).status, 'complete');
        const rows = await chunksOf(b, `windows-${kind}`);
        const keys = new Set(rows.map((r) => r.context_key));
        assert.ok(keys.size >= 2, `${keys.size} windows`);
        assert.ok(rows.every((r) => r.context));
        assert.equal(fake.counters.cacheWrites, keys.size, 'one cache write per window');
        const structured = analysisRequests(fake);
        assert.equal(structured.length, keys.size + 1, 'one analysis per window, then the merge');
        const merge = structured[structured.length - 1].body as { messages?: { content?: unknown }[] };
        assert.match(JSON.stringify(merge.messages), /Analyses of the \d+ parts/);
        const doc = (await b.store.getDocument(`windows-${kind}`))!;
        assert.equal(doc.analysis?.status, 'complete');
        assert.equal(doc.analysis?.status === 'complete' ? doc.analysis.windows : 0, keys.size);
      } finally {
        await w.stop();
      }
    });

    test('re-ingesting an unchanged transcript reuses contexts, embeddings and analysis; a changed one recomputes', async () => {
      await parkOtherJobs(b.sql);
      const w = startWorker(b, pool, fake);
      try {
        const documentId = `reuse-${kind}`;
        const one = await b.store.enqueue({ documentId, version: '1', payload: meeting('reuse') });
        await nextJobEvent(w.coordinator, one);
        const before = fake.counters.requests;
        const two = await b.store.enqueue({ documentId, version: '2', payload: meeting('reuse') });
        assert.equal((await nextJobEvent(w.coordinator, two)).status, 'complete');
        assert.equal(fake.counters.requests, before, 'no Claude request for an unchanged transcript');
        const v2 = (await chunksOf(b, documentId)).filter((_, i, all) => i >= all.length / 2);
        assert.ok(v2.every((r) => r.context), 'reused chunks keep their context');
        assert.equal((await b.store.getDocument(documentId, '2'))!.analysis?.status, 'complete');
        assert.equal((await b.store.getJob(two))!.chunks_reused, v2.length);

        const three = await b.store.enqueue({ documentId, version: '3', payload: meeting('changed') });
        assert.equal((await nextJobEvent(w.coordinator, three)).status, 'complete');
        assert.ok(fake.counters.requests > before + v2.length, 'a changed transcript is situated and analysed again');
      } finally {
        await w.stop();
      }
    });

    test('a job taken over after its worker died does not redo the contexts it saved', async () => {
      await parkOtherJobs(b.sql);
      fake.reset();
      const documentId = `takeover-${kind}`;
      // The first worker loses its embedding provider after two batches: the job is released with them saved.
      const first = startWorker(b, pool, fake, { failEmbeddingAfter: 2 });
      let saved = 0;
      try {
        const id = await b.store.enqueue({ documentId, payload: meeting('takeover') });
        assert.equal((await nextJobEvent(first.coordinator, id)).status, 'released');
        saved = (await b.store.getJob(id))!.chunks_done;
        assert.ok(saved > 0, 'some chunks were saved before the fault');
      } finally {
        await first.stop();
      }
      const firstContexts = contextRequests(fake).length;
      const second = startWorker(b, pool, fake);
      try {
        const [job] = await b.sql.query<{ id: string }>('select id from rag_ingestion_queue where document_id = $1', [documentId]);
        assert.equal((await nextJobEvent(second.coordinator, job.id)).status, 'complete');
        const total = (await b.store.getJob(job.id))!.chunks_total!;
        assert.equal(contextRequests(fake).length - firstContexts, total - saved, 'only the unsaved chunks are situated again');
        assert.ok((await chunksOf(b, documentId)).every((r) => r.context));
        assert.equal(analysisRequests(fake).length, 2, 'the analysis of the released attempt was not saved, so it is asked once more');
      } finally {
        await second.stop();
      }
    });

    test('a malformed analysis is asked again once; twice malformed with RAG_CLAUDE_REQUIRED=false is stored as skipped', async () => {
      await parkOtherJobs(b.sql);
      fake.reset();
      const w = startWorker(b, pool, fake, { required: false });
      try {
        respond = (body) => ((body as { output_config?: { format?: unknown } }).output_config?.format ? { text: '{"summary": "cut off' } : undefined);
        const id = await b.store.enqueue({ documentId: `malformed-${kind}`, payload: meeting('malformed', 6) });
        assert.equal((await nextJobEvent(w.coordinator, id)).status, 'complete');
        const doc = (await b.store.getDocument(`malformed-${kind}`))!;
        assert.equal(doc.analysis?.status, 'skipped');
        assert.match(doc.analysis?.status === 'skipped' ? doc.analysis.reason : '', /malformed twice/);
        assert.equal(analysisRequests(fake).length, 2);
        assert.ok((await chunksOf(b, `malformed-${kind}`)).every((r) => r.context), 'contexts are unaffected');
      } finally {
        respond = undefined;
        await w.stop();
      }
    });

    test('RAG_CLAUDE_REQUIRED=false: a rejected key embeds without context and skips the analysis, naming the reason', async () => {
      await parkOtherJobs(b.sql);
      fake.reset();
      fake.enqueue({ status: 401 });
      const w = startWorker(b, pool, fake, { required: false });
      try {
        const id = await b.store.enqueue({ documentId: `optional-${kind}`, payload: meeting('optional', 6) });
        assert.equal((await nextJobEvent(w.coordinator, id)).status, 'complete');
        const rows = await chunksOf(b, `optional-${kind}`);
        assert.ok(rows.every((r) => r.context === null && r.context_key === null));
        const doc = (await b.store.getDocument(`optional-${kind}`))!;
        assert.equal(doc.analysis?.status, 'skipped');
        assert.match(doc.analysis?.status === 'skipped' ? doc.analysis.reason : '', /ANTHROPIC_API_KEY/);
        assert.ok(!JSON.stringify(doc.analysis).includes(FAKE_ANTHROPIC_KEY));
      } finally {
        await w.stop();
      }
    });

    test('RAG_CLAUDE_REQUIRED=true: a rejected key is a worker-level fault naming ANTHROPIC_API_KEY; the job goes back untouched', async () => {
      await parkOtherJobs(b.sql);
      fake.reset();
      fake.enqueue({ status: 401 });
      const w = startWorker(b, pool, fake, { required: true });
      try {
        const faulted = once(w.coordinator, 'fault');
        const id = await b.store.enqueue({ documentId: `required-${kind}`, payload: meeting('required', 6) });
        const [fault] = (await faulted) as [{ setting?: string }];
        assert.equal(fault.setting, 'ANTHROPIC_API_KEY');
        assert.equal((await nextJobEvent(w.coordinator, id)).status, 'released');
        const job = (await b.store.getJob(id))!;
        assert.equal(job.status, 'queued');
        assert.equal(job.attempts, 0);
        assert.equal((await chunksOf(b, `required-${kind}`)).length, 0, 'nothing stored without its context');
      } finally {
        await w.stop();
      }
    });

    test('429 with retry-after and 529 overloaded are waited out and retried; the job completes', async () => {
      await parkOtherJobs(b.sql);
      fake.reset();
      fake.enqueue({ status: 529 }, { status: 429, retryAfterSec: 1 });
      const w = startWorker(b, pool, fake);
      try {
        const id = await b.store.enqueue({ documentId: `throttled-${kind}`, payload: meeting('throttled', 6) });
        assert.equal((await nextJobEvent(w.coordinator, id)).status, 'complete');
        assert.equal(fake.counters.rateLimited, 1);
        assert.ok((await chunksOf(b, `throttled-${kind}`)).every((r) => r.context));
        const job = (await b.store.getJob(id))!;
        assert.equal(job.attempts, 1, 'neither used a job attempt');
      } finally {
        await w.stop();
      }
    });
  });
}
