/**
 * CPU used by the PostgreSQL backends serving one database (read from /proc/<pid>/stat; the server runs on
 * this machine). Take a snapshot before and after a run: backends that appeared in between count from zero;
 * the snapshotting connection itself is left out. Returns null where /proc or the pids are not readable.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import pg from 'pg';

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

function procCpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(rest[11]) + Number(rest[12])) * 1000) / clockTicks();
  } catch {
    return null;
  }
}

export type BackendCpu = Map<number, number> | null;

/** CPU ms so far of every backend connected to the database of `client` (except client's own). */
export async function backendCpu(client: pg.Client): Promise<BackendCpu> {
  const rows = await client.query<{ pid: number }>('select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()');
  const out = new Map<number, number>();
  for (const { pid } of rows.rows) {
    const ms = procCpuMs(pid);
    if (ms === null) return null;
    out.set(pid, ms);
  }
  return out;
}

/** CPU ms the backends used between two snapshots (backends that exited in between are lost: snapshot before closing pools). */
export function backendCpuDelta(before: BackendCpu, after: BackendCpu): number | null {
  if (!before || !after) return null;
  let sum = 0;
  for (const [pid, ms] of after) sum += ms - (before.get(pid) ?? 0);
  return sum;
}

/** Turns on per-function timing (pg_stat_user_functions) for the database's new connections. */
export async function trackFunctions(url: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const db = (await c.query<{ d: string }>('select current_database() as d')).rows[0].d;
    await c.query(`alter database "${db.replace(/"/g, '""')}" set track_functions = 'all'`);
  } finally {
    await c.end();
  }
}

export interface FunctionTime {
  name: string;
  calls: number;
  totalMs: number;
  selfMs: number;
}

/** SQL functions by self time; call after the measured connections closed (a backend flushes its stats on exit). */
export async function functionTimes(url: string, limit = 6): Promise<FunctionTime[]> {
  await new Promise((resolve) => setTimeout(resolve, 500));
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const rows = await c.query<{ funcname: string; calls: string; total_time: number; self_time: number }>(
      'select funcname, calls, total_time, self_time from pg_stat_user_functions order by self_time desc limit $1',
      [limit],
    );
    return rows.rows.map((r) => ({ name: r.funcname, calls: Number(r.calls), totalMs: Math.round(r.total_time), selfMs: Math.round(r.self_time) }));
  } finally {
    await c.end();
  }
}

export function formatFunctionTimes(top: readonly FunctionTime[]): string {
  return top.map((f) => `${f.name} ${f.selfMs} ms self / ${f.totalMs} ms total in ${f.calls} calls`).join('; ');
}
