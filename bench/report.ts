/** Results: one shape for every scenario, a plain-text table for stdout, JSON files under bench/results/. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

export type TargetOp = '>=' | '<=' | '<' | '==';

export interface Target {
  op: TargetOp;
  value: number;
}

export interface Metric {
  name: string;
  value: number | string | null;
  unit?: string;
  target?: Target;
  /** value ÷ target (≥ targets are met at ≥ 1; ≤ and < targets at ≤ 1 / < 1). */
  ratio?: number;
  met?: boolean;
  note?: string;
}

export interface ScenarioResult {
  id: string;
  title: string;
  status: 'ok' | 'skipped' | 'error';
  metrics: Metric[];
  notes: string[];
  params: Record<string, unknown>;
  elapsedMs: number;
  error?: string;
}

export function metric(name: string, value: number | string | null, unit = '', target?: Target, note?: string): Metric {
  const m: Metric = { name, value, unit };
  if (note) m.note = note;
  if (target && typeof value === 'number' && Number.isFinite(value)) {
    m.target = target;
    m.ratio = target.value === 0 ? (value === 0 ? 0 : Infinity) : value / target.value;
    m.met =
      target.op === '>=' ? value >= target.value : target.op === '<=' ? value <= target.value : target.op === '<' ? value < target.value : value === target.value;
  } else if (target) {
    m.target = target;
  }
  return m;
}

function fmtNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return v.toLocaleString('en-US');
  const abs = Math.abs(v);
  if (abs !== 0 && abs < 0.01) return v.toExponential(2);
  if (abs >= 10_000) return Math.round(v).toLocaleString('en-US');
  if (abs >= 100) return v.toFixed(0);
  if (abs >= 10) return v.toFixed(1);
  return v.toFixed(abs >= 1 ? 2 : 3);
}

function fmtValue(m: Metric): string {
  if (m.value === null) return '—';
  const v = typeof m.value === 'number' ? fmtNumber(m.value) : m.value;
  return m.unit ? `${v} ${m.unit}` : v;
}

function fmtTarget(m: Metric): string {
  if (!m.target) return '';
  const op = { '>=': '≥', '<=': '≤', '<': '<', '==': '=' }[m.target.op];
  return `${op} ${fmtNumber(m.target.value)}${m.unit ? ` ${m.unit}` : ''}`;
}

function pad(s: string, n: number): string {
  const len = [...s].length;
  return len >= n ? s : s + ' '.repeat(n - len);
}

export function formatTable(results: readonly ScenarioResult[]): string {
  const rows: string[][] = [['scenario', 'metric', 'value', 'target', 'value÷target', 'met', 'note']];
  for (const r of results) {
    const head = `${r.id}. ${r.title}`;
    if (r.status !== 'ok') {
      rows.push([head, r.status.toUpperCase(), '', '', '', '', r.error ?? r.notes[0] ?? '']);
      continue;
    }
    r.metrics.forEach((m, i) => {
      const met = m.met === undefined ? '' : m.met ? 'yes' : 'NO';
      rows.push([i === 0 ? head : '', m.name, fmtValue(m), fmtTarget(m), m.ratio === undefined ? '' : fmtNumber(m.ratio), met, m.note ?? '']);
    });
  }
  const last = rows[0].length - 1;
  const widths = rows[0].map((_, c) => (c === last ? 0 : Math.max(...rows.map((row) => [...row[c]].length))));
  const line = (row: string[]) => row.map((cell, c) => pad(cell, widths[c])).join(' │ ').trimEnd();
  const sep = widths.map((w) => '─'.repeat(w)).join('─┼─');
  const out = [line(rows[0]), sep];
  for (let i = 1; i < rows.length; i++) {
    if (rows[i][0] !== '' && i > 1) out.push(sep);
    out.push(line(rows[i]));
  }
  const notes = results.flatMap((r) => r.notes.map((n) => `  ${r.id}: ${n}`));
  if (notes.length > 0) out.push('', 'Notes:', ...notes);
  return out.join('\n');
}

/** The code being measured: commit, and whether src/ or the migration differ from it (read-only git calls). */
export function codeVersion(): { commit: string | null; dirty: string[] } {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const git = (...args: string[]) => execFileSync('git', ['-C', root, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    const dirty = git('status', '--porcelain', '--', 'src', 'supabase', 'sql').split('\n').filter(Boolean);
    return { commit: git('rev-parse', '--short', 'HEAD'), dirty };
  } catch {
    return { commit: null, dirty: [] };
  }
}

export function environment(): Record<string, unknown> {
  return {
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    availableParallelism: os.availableParallelism(),
    totalMemMB: Math.round(os.totalmem() / 2 ** 20),
    loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

export interface RunRecord {
  startedAt: string;
  finishedAt: string;
  mode: 'quick' | 'full';
  /** Scenario ids when --only was given. */
  only?: string[];
  argv: string[];
  environment: Record<string, unknown>;
  /** Code version at the start and at the end of the run (they differ if someone committed or edited meanwhile). */
  code: { start: ReturnType<typeof codeVersion>; end: ReturnType<typeof codeVersion> };
  results: ScenarioResult[];
}

/** Writes bench/results/<timestamp>-<mode>[-only-<ids>].json and bench/results/latest.json; returns the timestamped path. */
export function writeResults(record: RunRecord): string {
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const stamp = record.startedAt.replace(/[:.]/g, '-');
  const file = `${dir}${stamp}-${record.mode}${record.only ? `-only-${record.only.join('')}` : ''}.json`;
  const text = `${JSON.stringify(record, null, 2)}\n`;
  writeFileSync(file, text);
  writeFileSync(`${dir}latest.json`, text);
  return file;
}
