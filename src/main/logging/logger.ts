/**
 * A small structured logger: human-readable lines on a TTY (the emoji lines users know from the earlier
 * worker), JSON lines otherwise. Every line passes through redaction. Library code takes a Logger and
 * attaches context ({workerId, jobId}) with child(); only the CLI decides the format.
 */
import { redact } from '../../shared/redact.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export interface LoggerOptions {
  format: 'pretty' | 'json';
  level: LogLevel;
  secrets: readonly string[];
  write?: (line: string) => void;
}

export function createLogger(options: LoggerOptions, base: Record<string, unknown> = {}): Logger {
  const write = options.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const min = LEVELS[options.level];
  const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (LEVELS[level] < min) return;
    const all = { ...base, ...fields };
    if (options.format === 'json') {
      write(redact(JSON.stringify({ time: new Date().toISOString(), level, msg, ...all }, jsonSafe), options.secrets));
    } else {
      const { workerId: _w, ...rest } = all;
      const extras = Object.entries(rest)
        .filter(([k, v]) => v !== undefined && k !== 'jobId')
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v, jsonSafe)}`)
        .join(' ');
      const tag = level === 'warn' ? '⚠️  ' : level === 'error' ? '❌ ' : '';
      write(redact(`${tag}${msg}${extras ? `  ${extras}` : ''}`, options.secrets));
    }
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger(options, { ...base, ...fields }),
  };
}

function jsonSafe(_key: string, value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message };
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/** A logger that drops everything (library default, tests). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};
