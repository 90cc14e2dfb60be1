/**
 * The coordinator carries out decideOutcome against a real queue (PostgreSQL): an in-process Coordinator with
 * the real thread pool and store, and an in-test embedding provider that fails the way each test needs.
 * Waits on the coordinator's 'job' and 'fault' events and on rows, never on log text.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { ChunkPool } from '../../src/main/coordinator/chunk-pool.ts';
import { Coordinator } from '../../src/main/coordinator/coordinator.ts';
import { createLogger } from '../../src/main/logging/logger.ts';
import type { EmbeddingProvider } from '../../src/main/providers/embedding-provider.ts';
import { EmbeddingScheduler } from '../../src/main/scheduler/embedding-scheduler.ts';
import { BadInputError, ProviderUnavailableError, WorkerFatalError } from '../../src/shared/errors.ts';
import { type Backend, DIMS, openBackend, parkOtherJobs } from '../support/queue-fixtures.ts';

const vector = `[${Array.from({ length: DIMS }, (_, i) => (i + 1) / 10).join(',')}]`;

function provider(embed: (inputs: string[]) => Promise<string[]>): EmbeddingProvider {
  return { name: 'test', model: 'test-model', dimensions: DIMS, remote: true, embed: async (inputs) => ({ vectors: await embed(inputs) }) };
}

interface Harness {
  coordinator: Coordinator;
  lines: Record<string, unknown>[];
  run: Promise<unknown>;
  stop(): Promise<void>;
}

function startCoordinator(b: Backend, pool: ChunkPool, p: EmbeddingProvider, options: { maxAttempts?: number } = {}): Harness {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ format: 'json', level: 'debug', secrets: [], write: (line) => lines.push(JSON.parse(line)) });
  const scheduler = new EmbeddingScheduler({ provider: p, batchSize: 8, concurrency: 2, maxRetries: 0, backoff: { baseMs: 1, maxMs: 2 }, logger });
  const coordinator = new Coordinator(
    { store: b.store, pool, scheduler, chunkMaxTokens: 64, charLimit: 400, saveBatch: 8, window: 2 },
    {
      workerId: `coord-test-${Math.random().toString(36).slice(2, 8)}`,
      maxConcurrentJobs: 2,
      leaseSeconds: 30,
      heartbeatMs: 1000,
      pollIntervalMs: 100,
      maxAttempts: options.maxAttempts ?? 3,
      retryBaseMs: 60_000,
      retryMaxMs: 120_000,
      faultRecheckMs: 60_000,
      secrets: [],
      healthCheck: async () => {
        throw new WorkerFatalError('still broken', { setting: 'OPENAI_API_KEY' });
      },
    },
    logger,
  );
  const run = coordinator.run();
  return {
    coordinator,
    lines,
    run,
    async stop() {
      await coordinator.stop(1000);
      await run;
      scheduler.close();
    },
  };
}

async function nextJobEvent(c: Coordinator, jobId: string): Promise<{ status: string; error?: string; category?: string }> {
  for (;;) {
    const [event] = (await once(c, 'job')) as [{ jobId: string; status: string }];
    if (event.jobId === jobId) return event;
  }
}

const transcript = { segments: [{ seq: 1, speaker: 'Ann', text: 'We ship the release on Friday after the final review.' }] };

describe('coordinator outcomes (postgres)', () => {
  let b: Backend;
  let pool: ChunkPool;
  before(async () => {
    b = await openBackend('postgres');
    pool = new ChunkPool(1);
  });
  after(async () => {
    await pool.close();
    await b.close();
  });

  test('an error of unknown type fails the job on its first attempt, says it is a bug, and logs the stack', async () => {
    await parkOtherJobs(b.sql);
    const h = startCoordinator(b, pool, provider(async () => {
      throw new TypeError("Cannot read properties of undefined (reading 'embedding')");
    }));
    try {
      const id = await b.store.enqueue({ documentId: 'bug-doc', payload: transcript });
      const event = await nextJobEvent(h.coordinator, id);
      assert.equal(event.status, 'failed');
      const job = (await b.store.getJob(id))!;
      assert.equal(job.status, 'failed');
      assert.equal(job.attempts, 1, 'not retried as if transient');
      assert.equal(job.last_error_category, 'bug');
      assert.match(job.error_detail ?? '', /bug/);
      assert.match(job.error_detail ?? '', /TypeError/);
      const bug = h.lines.find((l) => l.event === 'bug' && l.jobId === id);
      assert.ok(bug && typeof bug.stack === 'string' && (bug.stack as string).includes('TypeError'), 'the stack is in the log');
    } finally {
      await h.stop();
    }
  });

  test('bad input from the provider fails at once; a transient error re-queues with backoff and keeps the attempt', async () => {
    await parkOtherJobs(b.sql);
    let calls = 0;
    const h = startCoordinator(b, pool, provider(async (inputs) => {
      calls++;
      if (inputs.some((t) => t.includes('poison'))) throw new BadInputError('embedding provider rejected the input (400)');
      throw new ProviderUnavailableError('embedding provider answered 503', { status: 503 });
    }));
    try {
      const bad = await b.store.enqueue({ documentId: 'poison-doc', payload: { segments: [{ seq: 1, text: 'a poison chunk' }] } });
      const flaky = await b.store.enqueue({ documentId: 'flaky-doc', payload: transcript });
      const [badEvent, flakyEvent] = await Promise.all([nextJobEvent(h.coordinator, bad), nextJobEvent(h.coordinator, flaky)]);
      assert.equal(badEvent.status, 'failed');
      assert.equal(flakyEvent.status, 'requeued');
      const flakyJob = (await b.store.getJob(flaky))!;
      assert.equal(flakyJob.status, 'queued');
      assert.equal(flakyJob.attempts, 1);
      const inMs = flakyJob.run_at.getTime() - Date.now();
      assert.ok(inMs > 20_000 && inMs <= 120_000, `run_at ${inMs} ms ahead (base 60 s, half to full)`);
      assert.equal((await b.store.getJob(bad))!.last_error_category, 'bad_input');
      assert.ok(calls >= 2);
    } finally {
      await h.stop();
    }
  });

  test('a worker-level fault releases the job without using an attempt and names the setting', async () => {
    await parkOtherJobs(b.sql);
    const h = startCoordinator(b, pool, provider(async () => {
      throw new WorkerFatalError('embedding provider rejected the credentials (401)', { setting: 'OPENAI_API_KEY' });
    }));
    try {
      const faulted = once(h.coordinator, 'fault');
      const id = await b.store.enqueue({ documentId: 'fault-doc', payload: transcript });
      const [fault] = (await faulted) as [{ setting?: string }];
      assert.equal(fault.setting, 'OPENAI_API_KEY');
      const event = await nextJobEvent(h.coordinator, id);
      assert.equal(event.status, 'released');
      const job = (await b.store.getJob(id))!;
      assert.equal(job.status, 'queued');
      assert.equal(job.attempts, 0);
    } finally {
      await h.stop();
    }
  });
});
