/** Run the rag-worker CLI as a real child process (same Node as the tests). */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';

export const CLI = fileURLToPath(new URL('../../src/main/cli.ts', import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Environment for a CLI child: only what the test sets (no developer .env leaking in), JSON logs. */
export function cliEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, RAG_LOG_FORMAT: 'json', ...extra };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  return env;
}

export function startCli(args: string[], env: NodeJS.ProcessEnv, cwd?: string): ChildProcess & { result: Promise<CliResult> } {
  const child = spawn(process.execPath, [CLI, ...args], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const result = new Promise<CliResult>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return Object.assign(child, { result });
}

export function runCli(args: string[], env: NodeJS.ProcessEnv, cwd?: string): Promise<CliResult> {
  return startCli(args, env, cwd).result;
}

/**
 * Resolves when the child's stderr matches `pattern`.
 * @deprecated matches log wording; wait for a structured event with waitForEvent instead.
 */
export function waitForLog(child: ChildProcess, pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (d: Buffer | string) => {
      seen += d.toString();
      const m = seen.match(pattern);
      if (m) {
        child.stderr!.off('data', onData);
        resolve(m[0]);
      }
    };
    child.stderr!.on('data', onData);
    child.once('close', () => reject(new Error(`process exited before logging ${pattern}; stderr:\n${seen.slice(-2000)}`)));
  });
}

// ───────────────────────────── structured log lines ─────────────────────────────

/**
 * One log line of a CLI child (RAG_LOG_FORMAT=json, which cliEnv sets). Lines a test may wait for carry an
 * `event` field (job_started, job_complete, fault, worker_ready, …) plus structured fields such as jobId:
 * tests match those, never the wording of `msg`, so the wording can change freely.
 */
export interface LogLine {
  time?: string;
  level: string;
  msg: string;
  event?: string;
  workerId?: string;
  jobId?: string;
  [key: string]: unknown;
}

/** Fields a line must carry to match, each compared with deep strict equality (e.g. `{ jobId: id }`). */
export type EventFields = Record<string, unknown>;

/** Parses a stream of log lines; a line that is not JSON becomes `{ level: 'raw', msg: line }` (and has no event). */
export function parseLogLines(text: string): LogLine[] {
  const out: LogLine[] = [];
  for (const raw of text.split('\n')) {
    const line = parseLogLine(raw);
    if (line) out.push(line);
  }
  return out;
}

export function parseLogLine(raw: string): LogLine | undefined {
  if (!raw.trim()) return undefined;
  try {
    const value = JSON.parse(raw) as unknown;
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as LogLine;
  } catch {
    // not JSON
  }
  return { level: 'raw', msg: raw };
}

/** Whether a line is the event `name` carrying every one of `fields`. */
export function isEvent(line: LogLine, name: string, fields: EventFields = {}): boolean {
  return line.event === name && Object.entries(fields).every(([k, v]) => isDeepStrictEqual(line[k], v));
}

export function describeEvent(name: string, fields: EventFields = {}): string {
  return Object.keys(fields).length ? `event ${name} ${JSON.stringify(fields)}` : `event ${name}`;
}

type LogSource = string | readonly LogLine[] | Pick<CliResult, 'stderr'>;

function linesOf(source: LogSource): readonly LogLine[] {
  if (typeof source === 'string') return parseLogLines(source);
  if ('stderr' in source) return parseLogLines(source.stderr);
  return source;
}

/** The first line of `source` (stderr text, a CliResult or parsed lines) that is the event `name` with `fields`. */
export function findEvent(source: LogSource, name: string, fields?: EventFields): LogLine | undefined {
  return linesOf(source).find((l) => isEvent(l, name, fields));
}

/** Every line of `source` that is the event `name` with `fields`, in order. */
export function eventsOf(source: LogSource, name: string, fields?: EventFields): LogLine[] {
  return linesOf(source).filter((l) => isEvent(l, name, fields));
}

/** The sequence of events in `source` (for failure messages). */
export function eventNames(source: LogSource): string[] {
  return linesOf(source).flatMap((l) => (typeof l.event === 'string' ? [l.event] : []));
}

/** Resolves with the first log line the child writes to stderr (from now on) that is the event `name` with `fields`. */
export function waitForEvent(child: ChildProcess, name: string, fields?: EventFields, timeoutMs = 15_000): Promise<LogLine> {
  return new Promise((resolve, reject) => {
    let seen = '';
    let partial = '';
    const what = describeEvent(name, fields);
    const onData = (d: Buffer | string) => {
      const text = d.toString();
      seen += text;
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const raw of lines) {
        const line = parseLogLine(raw);
        if (line && isEvent(line, name, fields)) return finish(() => resolve(line));
      }
    };
    const onClose = () => finish(() => reject(new Error(`process exited before logging ${what}; events: ${eventNames(seen).join(' ')}; stderr:\n${seen.slice(-2000)}`)));
    const timer = setTimeout(() => finish(() => reject(new Error(`no ${what} within ${timeoutMs} ms; events: ${eventNames(seen).join(' ')}; stderr:\n${seen.slice(-2000)}`))), timeoutMs);
    const finish = (fn: () => void) => {
      clearTimeout(timer);
      child.stderr!.off('data', onData);
      child.off('close', onClose);
      fn();
    };
    child.stderr!.on('data', onData);
    child.once('close', onClose);
  });
}
