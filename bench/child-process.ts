/**
 * One side of a side-by-side comparison in its own Node process (scenarios f and h): a fresh heap and JIT for
 * each run, its own CPU figures, and a pid to kill when it overruns. The child script prints its result as one
 * `{"result": ...}` line on stdout (childResult()); everything else it writes goes to the bench's stderr.
 */
import { spawn, type ChildProcess } from 'node:child_process';

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export interface ChildOutcome<T> {
  result: T | undefined;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** Wall time from spawn to exit, ms (includes Node start-up and imports). */
  processMs: number;
  /** Last lines of the child's stderr. */
  stderrTail: string;
}

/** Runs `node <script> <json params>`; kills it (by pid: SIGTERM, then SIGKILL) after timeoutMs. */
export function runChild<T>(script: string, params: unknown, options: { timeoutMs: number; tag: string; env?: NodeJS.ProcessEnv }): Promise<ChildOutcome<T>> {
  const started = performance.now();
  const child = spawn(process.execPath, [script, JSON.stringify(params)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: options.env ?? process.env,
  });
  live.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => (stdout += d));
  child.stderr!.on('data', (d: string) => {
    stderr += d;
    if (stderr.length > 20_000) stderr = stderr.slice(-10_000);
    for (const line of d.split('\n')) if (line.trim() !== '') process.stderr.write(`  [${options.tag}] ${line}\n`);
  });
  let timedOut = false;
  let killer: NodeJS.Timeout | undefined;
  const timer = setTimeout(() => {
    timedOut = true;
    if (child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
    killer = setTimeout(() => {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    }, 3_000);
  }, options.timeoutMs);
  return new Promise((resolve) => {
    child.once('exit', (exitCode, signal) => {
      clearTimeout(timer);
      clearTimeout(killer);
      live.delete(child);
      let result: T | undefined;
      for (const line of stdout.split('\n')) {
        if (!line.startsWith('{"result"')) continue;
        try {
          result = (JSON.parse(line) as { result: T }).result;
        } catch {
          /* not ours */
        }
      }
      resolve({
        result,
        exitCode,
        signal,
        timedOut,
        processMs: performance.now() - started,
        stderrTail: stderr.split('\n').filter(Boolean).slice(-6).join(' | '),
      });
    });
  });
}

/** In the child: print the result line and exit once stdout is flushed. */
export function childResult(result: unknown, exitCode = 0): void {
  process.stdout.write(`${JSON.stringify({ result })}\n`, () => process.exit(exitCode));
}

/** In the child: CPU used by this process (all its threads) since `from`, in ms. */
export function cpuMsSince(from: NodeJS.CpuUsage): { userMs: number; systemMs: number; totalMs: number } {
  const d = process.cpuUsage(from);
  return { userMs: d.user / 1000, systemMs: d.system / 1000, totalMs: (d.user + d.system) / 1000 };
}
