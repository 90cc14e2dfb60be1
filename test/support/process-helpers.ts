/**
 * Helpers for the process-level tests (test/process): real `rag-worker start` processes against a fresh
 * PostgreSQL database and the loopback OpenAI fake. Spawned workers are tracked so an `after` hook can
 * SIGKILL whatever is still running (by pid). Waiting is event-driven (structured log events, polling a row
 * with a short pause between polls, process exit) with deadlines, never a sleep that assumes speed. Tests wait
 * for a line's `event` and fields (waitForEvent, findEvent), never for the wording of its message.
 */
import assert from 'node:assert/strict';
import pg from 'pg';
import { chunkTranscript } from '../../src/threads/chunk-worker.ts';
import { encodingForModel } from '../../src/shared/chunking.ts';
import type { Chunk } from '../../src/shared/types.ts';
import { cliEnv, describeEvent, eventNames, isEvent, parseLogLine, startCli, type CliResult, type EventFields, type LogLine } from './cli.ts';
import { fakeEmbedding, type FakeOpenAI, type FaultHook, type RecordedRequest } from './fake-openai.ts';
import { createTestDatabase, type TestDatabase } from './test-db.ts';

export const DIMS = 32;
export const MODEL = 'text-embedding-3-small';
export const TEST_KEY = 'sk-proc-test-KEY-0123456789abcdefXYZ';

// ───────────────────────────── waiting ─────────────────────────────

/** Polls `probe` (with `intervalMs` between polls) until it returns a truthy value; fails after `timeoutMs`. */
export async function waitFor<T>(
  probe: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  what: string,
  { timeoutMs = 15_000, intervalMs = 50 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    const value = await probe();
    if (value) return value;
    last = value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

// ───────────────────────────── worker processes ─────────────────────────────

export type { EventFields, LogLine } from './cli.ts';

type LinePredicate = RegExp | ((line: LogLine) => boolean);

const live = new Set<WorkerProcess>();

export class WorkerProcess {
  readonly name: string;
  readonly pid: number;
  readonly result: Promise<CliResult>;
  exit: CliResult | undefined;
  private stderr = '';
  private stdout = '';
  private parsed: LogLine[] = [];
  private partial = '';
  private readonly waiters = new Set<() => void>();
  private readonly child: ReturnType<typeof startCli>;

  constructor(name: string, args: string[], env: NodeJS.ProcessEnv) {
    this.name = name;
    this.child = startCli(args, env);
    this.pid = this.child.pid!;
    this.child.stderr!.on('data', (d: string | Buffer) => this.onStderr(d.toString()));
    this.child.stdout!.on('data', (d: string | Buffer) => (this.stdout += d.toString()));
    this.result = this.child.result.then((r) => {
      this.exit = r;
      live.delete(this);
      this.notify();
      return r;
    });
    live.add(this);
  }

  private onStderr(text: string): void {
    this.stderr += text;
    this.partial += text;
    const lines = this.partial.split('\n');
    this.partial = lines.pop() ?? '';
    for (const raw of lines) {
      const line = parseLogLine(raw);
      if (line) this.parsed.push(line);
    }
    this.notify();
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  get stderrText(): string {
    return this.stderr;
  }

  get stdoutText(): string {
    return this.stdout;
  }

  get lines(): readonly LogLine[] {
    return this.parsed;
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  /** The first line so far matching `pred` (a RegExp is tested against the message: prefer findEvent). */
  find(pred: LinePredicate): LogLine | undefined {
    const test = typeof pred === 'function' ? pred : (l: LogLine) => pred.test(l.msg);
    return this.parsed.find(test);
  }

  /** The first line so far that is the event `name` carrying `fields` (e.g. `{ jobId }`). */
  findEvent(name: string, fields?: EventFields): LogLine | undefined {
    return this.parsed.find((l) => isEvent(l, name, fields));
  }

  /** Every line so far that is the event `name` carrying `fields`, in order. */
  events(name: string, fields?: EventFields): LogLine[] {
    return this.parsed.filter((l) => isEvent(l, name, fields));
  }

  /** The names of the events logged so far, in order (for failure messages). */
  get eventNames(): string[] {
    return eventNames(this.parsed);
  }

  /**
   * Resolves with the first line (past or future) that is the event `name` carrying every one of `fields`
   * (deep-equal); rejects when the process exits first or after timeoutMs.
   */
  waitForEvent(name: string, fields?: EventFields, timeoutMs = 15_000): Promise<LogLine> {
    return this.waitUntil((l) => isEvent(l, name, fields), describeEvent(name, fields), timeoutMs);
  }

  /**
   * Resolves with the first log line (past or future) matching; rejects on exit or after timeoutMs.
   * @deprecated a RegExp matches log wording: wait for a structured event with waitForEvent instead.
   */
  waitForLine(pred: LinePredicate, timeoutMs = 15_000): Promise<LogLine> {
    const test = typeof pred === 'function' ? pred : (l: LogLine) => pred.test(l.msg);
    return this.waitUntil(test, `a log line matching ${pred}`, timeoutMs);
  }

  private waitUntil(test: (line: LogLine) => boolean, what: string, timeoutMs: number): Promise<LogLine> {
    const found = this.parsed.find(test);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const context = () => `events so far: ${this.eventNames.join(' ') || '(none)'}; log tail:\n${this.tail()}`;
      const check = () => {
        const line = this.parsed.find(test);
        if (line) return finish(() => resolve(line));
        if (this.exit) finish(() => reject(new Error(`${this.name} exited (code ${this.exit!.code}, signal ${this.exit!.signal}) before logging ${what}; ${context()}`)));
      };
      const timer = setTimeout(() => finish(() => reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms; ${context()}`))), timeoutMs);
      const finish = (fn: () => void) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        fn();
      };
      this.waiters.add(check);
    });
  }

  /** The exit result, or undefined when the process is still running after timeoutMs. */
  async waitForExit(timeoutMs: number): Promise<CliResult | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), timeoutMs)));
    try {
      return await Promise.race([this.result, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends a signal by pid (through the ChildProcess, which never signals a process it has already reaped). */
  signal(sig: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(sig);
  }

  /** SIGKILL and wait until the process is gone. */
  async kill(): Promise<CliResult> {
    this.signal('SIGKILL');
    return this.result;
  }

  tail(n = 25): string {
    return this.stderr.split('\n').slice(-n).join('\n');
  }
}

export function spawnWorker(name: string, env: NodeJS.ProcessEnv, args: string[] = ['start']): WorkerProcess {
  return new WorkerProcess(name, args, { ...env, RAG_WORKER_ID: env.RAG_WORKER_ID ?? `rag-test-${name}` });
}

/** SIGKILLs every worker this file started that is still running (for `after` hooks). */
export async function killAllWorkers(): Promise<void> {
  await Promise.all([...live].map((w) => w.kill()));
}

/** Environment of a worker process: fresh test database, loopback provider, fast leases and polling. */
export function workerEnv(db: TestDatabase, openai: Pick<FakeOpenAI, 'url'>, extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  return cliEnv({
    DATABASE_URL: db.url,
    OPENAI_API_KEY: TEST_KEY,
    OPENAI_BASE_URL: openai.url,
    RAG_EMBEDDING_MODEL: MODEL,
    RAG_EMBEDDING_DIMENSIONS: String(DIMS),
    RAG_LOG_FORMAT: 'json',
    RAG_LEASE_SECONDS: '3',
    RAG_POLL_INTERVAL_MS: '200',
    RAG_THREADS: '1',
    RAG_CHUNK_MAX_TOKENS: String(CHUNKING.maxTokens),
    RAG_EMBEDDING_CHAR_LIMIT: String(CHUNKING.charLimit),
    RAG_EMBEDDING_BATCH: '8',
    RAG_RETRY_BASE_MS: '200',
    RAG_RETRY_MAX_MS: '2000',
    RAG_SHUTDOWN_GRACE_MS: '2000',
    ...extra,
  });
}

// ───────────────────────────── transcripts and expected chunks ─────────────────────────────

export const CHUNKING = { maxTokens: 16, charLimit: 80 } as const;

const WORDS = ['budget', 'roadmap', 'billing', 'replica', 'freeze', 'launch', 'metrics', 'hiring', 'vendor', 'audit', 'latency', 'backlog'];

/**
 * A segments payload whose chunk texts are unique (every sentence carries `tag` and its position), with
 * every fifth segment long enough to be split at sentence ends. With CHUNKING, `segments` short segments
 * give about one chunk each.
 */
export function segmentsPayload(tag: string, segments: number): { segments: object[] } {
  return {
    segments: Array.from({ length: segments }, (_, i) => {
      const n = i + 1;
      const sentence = (part: string) => `${tag}.${n}${part} ${WORDS[(n + part.length) % 12]} ${WORDS[(n * 7 + 3) % 12]} notes.`;
      const text = n % 5 === 0 ? [sentence('a'), sentence('b'), sentence('c')].join(' ') : sentence('');
      return { seq: n, speaker: n % 3 === 0 ? 'Ann' : 'Bob', start_ms: n * 1000, end_ms: n * 1000 + 900, text };
    }),
  };
}

/** What one worker alone produces for this payload with CHUNKING (the same code the chunking thread runs). */
export function referenceChunks(payload: unknown, chunking: { maxTokens: number; charLimit: number } = CHUNKING): Chunk[] {
  const result = chunkTranscript({ format: 'segments', payload, options: { ...chunking, encoding: encodingForModel(MODEL) } });
  if (!result.ok) throw new Error(`reference chunking failed: ${result.message}`);
  const texts = new Set(result.chunks.map((c) => c.content));
  assert.equal(texts.size, result.chunks.length, 'test precondition: chunk texts of a payload are unique');
  return result.chunks;
}

/** Which recorded requests (by arrival order) asked to embed each text. */
export function requestsByText(requests: readonly RecordedRequest[]): Map<string, RecordedRequest[]> {
  const out = new Map<string, RecordedRequest[]>();
  for (const r of requests) {
    for (const input of r.inputs) {
      if (typeof input !== 'string') continue;
      const list = out.get(input) ?? [];
      list.push(r);
      out.set(input, list);
    }
  }
  return out;
}

/** A fake-server hook that leaves every request alone except those `hold` picks, which hang. */
export function hangWhen(hold: (inputs: string[]) => boolean): FaultHook {
  return (req) => (hold(req.inputs.filter((x): x is string => typeof x === 'string')) ? { kind: 'hang' } : undefined);
}

// ───────────────────────────── the test's view of the database ─────────────────────────────

export interface QueueRow {
  id: string;
  status: string;
  document_id: string;
  attempts: number;
  max_attempts: number | null;
  worker_id: string | null;
  lease_expires_at: Date | null;
  chunks_total: number | null;
  chunks_done: number;
  error_detail: string | null;
  last_error_category: string | null;
  attempt_history: { attempt: number; worker_id: string | null; outcome: string; detail: string | null }[];
}

export interface ChunkRow {
  chunk_index: number;
  content: string;
  content_hash: string;
  embedding: string;
  job_id: string;
}

export class QueueProbe {
  readonly pool: pg.Pool;
  readonly db: TestDatabase;

  constructor(db: TestDatabase) {
    this.db = db;
    // Not 'rag-worker…': the connection-drop test terminates those and must not terminate ours.
    this.pool = new pg.Pool({ connectionString: db.url, max: 3, application_name: 'process-test-probe' });
    // pool.end() resolves before its sockets are closed; the `drop database … with (force)` that follows may
    // then terminate a closing connection, whose error must not become an uncaught exception.
    this.pool.on('error', () => {});
  }

  async enqueue(documentId: string, payload: unknown, options: { maxAttempts?: number } = {}): Promise<string> {
    const { rows } = await this.pool.query<{ id: string }>(
      `select rag_enqueue($1, '1', $1, 'segments', $2::jsonb, '{}'::jsonb, 0, $3) as id`,
      [documentId, JSON.stringify(payload), options.maxAttempts ?? null],
    );
    return rows[0].id;
  }

  /** Enqueues all in one statement (one transaction: the NOTIFYs arrive together). Ids in input order. */
  async enqueueMany(docs: { documentId: string; payload: unknown }[]): Promise<string[]> {
    const { rows } = await this.pool.query<{ id: string; ord: string }>(
      `select rag_enqueue(d.doc, '1', d.doc, 'segments', d.payload, '{}'::jsonb, 0, null) as id, d.ord
         from unnest($1::text[], $2::jsonb[]) with ordinality as d(doc, payload, ord) order by d.ord`,
      [docs.map((d) => d.documentId), docs.map((d) => JSON.stringify(d.payload))],
    );
    return rows.map((r) => r.id);
  }

  async job(id: string): Promise<QueueRow> {
    const [row] = await this.jobs([id]);
    assert.ok(row, `no job ${id}`);
    return row;
  }

  async jobs(ids?: string[]): Promise<QueueRow[]> {
    const { rows } = await this.pool.query<QueueRow>(
      `select id, status, document_id, attempts, max_attempts, worker_id, lease_expires_at, chunks_total, chunks_done,
              error_detail, last_error_category, attempt_history
         from rag_ingestion_queue where $1::uuid[] is null or id = any($1::uuid[]) order by submitted_at, id`,
      [ids ?? null],
    );
    return rows;
  }

  async statusCounts(): Promise<Record<string, number>> {
    const { rows } = await this.pool.query<{ status: string; n: number }>('select status, count(*)::int as n from rag_ingestion_queue group by status');
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }

  async chunks(documentId: string): Promise<ChunkRow[]> {
    const { rows } = await this.pool.query<ChunkRow>(
      `select chunk_index, content, content_hash, embedding::text as embedding, job_id
         from rag_chunks where document_id = $1 order by chunk_index`,
      [documentId],
    );
    return rows;
  }

  async stagingCount(jobId: string): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>('select count(*)::int as n from rag_unpublished_chunks where job_id = $1', [jobId]);
    return rows[0].n;
  }

  /** Waits until the job reaches one of `statuses` (polling the row) and returns it. */
  async waitForStatus(id: string, statuses: string[], timeoutMs = 20_000): Promise<QueueRow> {
    return waitFor(async () => {
      const row = await this.job(id);
      return statuses.includes(row.status) ? row : undefined;
    }, `job ${id} to be ${statuses.join(' or ')}`, { timeoutMs });
  }

  /** Terminates the worker processes' connections to this test's database. Returns how many. */
  async terminateWorkerConnections(): Promise<number> {
    const { rows } = await this.pool.query<{ ok: boolean }>(
      `select pg_terminate_backend(pid) as ok from pg_stat_activity
        where datname = $1 and application_name like 'rag-worker%' and pid <> pg_backend_pid()`,
      [this.db.name],
    );
    return rows.filter((r) => r.ok).length;
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

// ───────────────────────────── assertions ─────────────────────────────

function parseVector(literal: string): number[] {
  return literal.slice(1, -1).split(',').map(Number);
}

/**
 * The published chunks of a document equal what one worker alone produces: chunk_index 0..n-1 dense, same
 * content and content_hash in order, each embedding the fake provider's vector of that very content.
 */
export function assertChunksMatch(rows: ChunkRow[], expected: Chunk[], what: string): void {
  assert.deepEqual(rows.map((r) => r.chunk_index), expected.map((_, i) => i), `${what}: chunk_index is 0..${expected.length - 1}, dense`);
  assert.deepEqual(rows.map((r) => r.content), expected.map((c) => c.content), `${what}: chunk contents`);
  assert.deepEqual(rows.map((r) => r.content_hash), expected.map((c) => c.contentHash), `${what}: content hashes`);
  for (const r of rows) {
    const want = fakeEmbedding(r.content, DIMS);
    const got = parseVector(r.embedding);
    assert.equal(got.length, DIMS, `${what}: chunk ${r.chunk_index} embedding size`);
    const off = got.findIndex((x, i) => Math.abs(x - want[i]) > 1e-5);
    assert.equal(off, -1, `${what}: chunk ${r.chunk_index} has the embedding of its own content`);
  }
}

// ───────────────────────────── one database per test ─────────────────────────────

const scenarios: { db: TestDatabase; probe: QueueProbe }[] = [];

/** A fresh migrated database (and a probe on it) for one test; closeScenarios() drops them all. */
export async function openScenario(): Promise<{ db: TestDatabase; probe: QueueProbe }> {
  const db = await createTestDatabase(DIMS);
  const scenario = { db, probe: new QueueProbe(db) };
  scenarios.push(scenario);
  return scenario;
}

export async function closeScenarios(): Promise<void> {
  await killAllWorkers();
  for (const { db, probe } of scenarios.splice(0)) {
    await probe.close().catch(() => {});
    await db.drop();
  }
}
