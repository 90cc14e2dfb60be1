/**
 * Readiness for GET /ready: the database answers, pgvector is there, the schema is applied and current, its
 * vector dimension matches RAG_EMBEDDING_DIMENSIONS, and no worker-level fault stops the worker. 503 names the
 * failing check. Results are cached for a moment, so a probe every second costs one query every few seconds.
 */
import { messageOf } from '../../shared/errors.ts';
import { oneLine } from '../../shared/redact.ts';
import { schemaProblem, SCHEMA_VERSION, type SchemaFacts } from '../stores/migrate.ts';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface ReadyReport {
  ok: boolean;
  checks: Check[];
}

export interface ReadinessOptions {
  /** The schema as the database reports it; rejects when the database does not answer. */
  inspect: () => Promise<SchemaFacts>;
  /** postgres, embedded or supabase, for the report. */
  kind: string;
  dimensions: number;
  fault: () => { error: string; setting?: string } | undefined;
  stopping: () => boolean;
  secrets: readonly string[];
  cacheMs?: number;
  timeoutMs?: number;
}

export class Readiness {
  private readonly opts: Required<ReadinessOptions>;
  private cached: { at: number; report: Promise<ReadyReport> } | undefined;

  constructor(options: ReadinessOptions) {
    this.opts = { cacheMs: 2_000, timeoutMs: 3_000, ...options };
  }

  check(): Promise<ReadyReport> {
    const now = Date.now();
    if (this.cached && now - this.cached.at < this.opts.cacheMs) return this.cached.report;
    const report = this.run();
    this.cached = { at: now, report };
    return report;
  }

  private async run(): Promise<ReadyReport> {
    const checks: Check[] = [];
    try {
      const facts = await withTimeout(this.opts.inspect(), this.opts.timeoutMs, 'the database did not answer');
      checks.push({ name: 'database', ok: true, detail: `reachable (${this.opts.kind})` });
      checks.push({ name: 'pgvector', ok: facts.pgvector !== null, detail: facts.pgvector === null ? 'the vector extension is not installed: run `rag-worker migrate`' : `version ${facts.pgvector}` });
      const problem = schemaProblem(facts, this.opts.dimensions);
      const schemaOk = facts.applied && (facts.version ?? 0) >= SCHEMA_VERSION;
      checks.push({
        name: 'schema',
        ok: schemaOk,
        detail: schemaOk ? `version ${facts.version}` : facts.pgvector === null ? 'not checked (no pgvector)' : oneLine(messageOf(problem), this.opts.secrets),
      });
      if (schemaOk) {
        const dimsOk = facts.dimensions === this.opts.dimensions;
        checks.push({ name: 'dimensions', ok: dimsOk, detail: dimsOk ? `vector(${facts.dimensions})` : oneLine(messageOf(problem), this.opts.secrets) });
      }
    } catch (error) {
      checks.push({ name: 'database', ok: false, detail: oneLine(messageOf(error), this.opts.secrets) });
    }
    const fault = this.opts.fault();
    checks.push({ name: 'worker', ok: !fault && !this.opts.stopping(), detail: fault ? `worker-level fault${fault.setting ? ` (check ${fault.setting})` : ''}: ${fault.error}` : this.opts.stopping() ? 'shutting down' : 'claiming jobs' });
    return { ok: checks.every((c) => c.ok), checks };
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
