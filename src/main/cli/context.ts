/** Shared CLI plumbing: settings from env/.env files/flags, the logger, and turning errors into exit codes. */
import fs from 'node:fs';
import dotenv from 'dotenv';
import { ConfigError, resolveConfig, secretsOf, SETTINGS, type Config, type Overrides } from '../../shared/config.ts';
import { categoryOf, messageOf } from '../../shared/errors.ts';
import { redact } from '../../shared/redact.ts';
import { createLogger, type Logger } from '../logging/logger.ts';

let knownSecrets: string[] = [];

/** Environment + .env.local + .env (real environment wins, then .env.local, then .env), as in Next.js. */
export function loadEnv(cwd = process.cwd()): Record<string, string | undefined> {
  const fromFiles: Record<string, string> = {};
  for (const file of ['.env', '.env.local']) {
    const path = `${cwd}/${file}`;
    if (fs.existsSync(path)) Object.assign(fromFiles, dotenv.parse(fs.readFileSync(path)));
  }
  return { ...fromFiles, ...process.env };
}

function flagName(env: string): string {
  return env.replace(/^RAG_/, '').toLowerCase().replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Config from the environment and the setting flags present in argv. Throws ConfigError. */
export function loadConfig(argv: Record<string, unknown>): Config {
  const overrides: Overrides = {};
  for (const [key, spec] of Object.entries(SETTINGS)) {
    const value = argv[flagName(spec.env)];
    if (value !== undefined) overrides[key as keyof Overrides] = value as string;
  }
  const config = resolveConfig(loadEnv(), overrides);
  knownSecrets = secretsOf(config);
  return config;
}

export function makeLogger(config: Config, quiet = false): Logger {
  const format = config.logFormat === 'auto' ? (process.stderr.isTTY ? 'pretty' : 'json') : config.logFormat;
  return createLogger({ format, level: quiet ? 'warn' : config.logLevel, secrets: secretsOf(config) });
}

let crashHook: ((error: unknown) => Promise<void>) | undefined;
const CRASH_HOOK_MS = 6_000;

/** Something to do before a crash exits the process (`start` sends its crash alert); one at a time. */
export function onCrash(hook: ((error: unknown) => Promise<void>) | undefined): void {
  crashHook = hook;
}

/** An error that escaped every handler: run the crash hook (bounded in time), then exitWith. */
export async function crashWith(error: unknown): Promise<never> {
  const hook = crashHook;
  crashHook = undefined;
  if (hook) {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([hook(error).catch(() => undefined), new Promise((r) => (timer = setTimeout(r, CRASH_HOOK_MS)))]);
    clearTimeout(timer);
  }
  exitWith(error);
}

/** A wrong flag value or combination: exit 2, like yargs' own usage errors. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Print an error the way an operator can act on it, then exit: 2 for configuration and usage, 1 otherwise. */
export function exitWith(error: unknown): never {
  if (error instanceof ConfigError || error instanceof UsageError) {
    console.error(`rag-worker: ${error.message}`);
    process.exit(2);
  }
  const category = categoryOf(error);
  const prefix = category === 'worker_fatal' ? 'rag-worker cannot run' : 'rag-worker';
  console.error(`${prefix}: ${redact(messageOf(error), knownSecrets)}`);
  if (process.env.RAG_DEBUG && error instanceof Error && error.stack) console.error(redact(error.stack, knownSecrets));
  process.exit(category === 'worker_fatal' ? 3 : 1);
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '--:--';
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const pad = (n: number) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${pad(m)}:${pad(sec)}` : `${pad(m)}:${pad(sec)}`;
}
