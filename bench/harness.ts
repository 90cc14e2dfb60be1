/**
 * Shared plumbing for the scenarios: a worker opened in this process from an env object (exactly as the CLI
 * would resolve it), enqueueing, queue counts, and small statistics helpers.
 */
import type { SqlClient } from '../src/main/stores/sql-client.ts';
import { resolveConfig } from '../src/shared/config.ts';
import { createLogger, type Logger } from '../src/main/logging/logger.ts';
import { createCoordinator, openRuntime, type Runtime } from '../src/main/runtime.ts';
import type { Coordinator } from '../src/main/coordinator/coordinator.ts';
import type { SyntheticTranscript } from './synthetic-transcripts.ts';

export const DIMENSIONS = 1536;
export const MODEL = 'text-embedding-3-small';

export interface BenchContext {
  quick: boolean;
  /** Scenario a: leave RAG_EMBEDDING_RPM/TPM unset so the worker learns the limits from x-ratelimit-* headers. */
  learnLimits?: boolean;
  /** Progress lines for the operator (stderr). */
  log: (line: string) => void;
}

/** Env for resolveConfig: only what we set, never the caller's environment (no stray .env values). */
export function workerEnv(databaseUrl: string, extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    DATABASE_URL: databaseUrl,
    RAG_EMBEDDING_DIMENSIONS: String(DIMENSIONS),
    RAG_EMBEDDING_MODEL: MODEL,
    RAG_LOG_LEVEL: 'warn',
    RAG_LOG_FORMAT: 'pretty',
    RAG_WORKER_ID: `bench-${process.pid}`,
    ...extra,
  };
}

export function benchLogger(tag: string): Logger {
  return createLogger({
    format: 'pretty',
    level: 'warn',
    secrets: [],
    write: (line) => process.stderr.write(`  [${tag}] ${line}\n`),
  });
}

export interface Worker {
  rt: Runtime;
  coordinator: Coordinator;
  close(): Promise<void>;
}

export async function openWorker(env: Record<string, string | undefined>, tag: string): Promise<Worker> {
  const config = resolveConfig(env);
  const rt = await openRuntime(config, benchLogger(tag));
  const coordinator = createCoordinator(rt);
  return { rt, coordinator, close: () => rt.close() };
}

export async function enqueueAll(rt: Runtime, transcripts: readonly SyntheticTranscript[]): Promise<string[]> {
  const ids: string[] = [];
  for (const t of transcripts) {
    ids.push(await rt.store.enqueue({ documentId: t.documentId, title: t.title, format: t.format, payload: t.payload }));
  }
  return ids;
}

/** The bench's runtimes are always on SQL (PostgreSQL or PGlite). */
export function sqlOf(rt: Runtime): SqlClient {
  if (!rt.sql) throw new Error('bench: this runtime has no SQL connection (Supabase REST mode)');
  return rt.sql;
}

export async function statusCounts(rt: Runtime): Promise<Record<string, number>> {
  const rows = await sqlOf(rt).query<{ status: string; n: string }>('select status, count(*) as n from rag_ingestion_queue group by status');
  return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
}

export async function chunkCount(rt: Runtime): Promise<number> {
  const rows = await sqlOf(rt).query<{ n: string }>('select count(*) as n from rag_chunks');
  return Number(rows[0].n);
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function round(n: number, digits = 2): number {
  if (!Number.isFinite(n)) return n;
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** Runs fn with resources released in reverse order, whatever happens. */
export async function withCleanup<T>(fn: (defer: (f: () => Promise<unknown> | unknown) => void) => Promise<T>): Promise<T> {
  const stack: (() => Promise<unknown> | unknown)[] = [];
  try {
    return await fn((f) => stack.push(f));
  } finally {
    for (const f of stack.reverse()) {
      try {
        await f();
      } catch (error) {
        process.stderr.write(`  [cleanup] ${error instanceof Error ? error.message : String(error)}\n`);
      }
    }
  }
}
