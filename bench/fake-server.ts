/**
 * The simulated embeddings provider for the benches, in its own process so its CPU (tokenizing every input,
 * building 1536-float vectors) does not run on the worker's event loop.
 *
 * Run as a script, it starts test/support/fake-openai.ts with a tiktoken cl100k_base token counter (so the
 * server counts tokens exactly as the worker's chunker does), prints `{"url": ...}` on one line, serves
 * `GET /__fake/stats`, and on SIGTERM prints `{"stats": ...}` and exits 0.
 * Imported, spawnFakeServer() starts that process and returns a handle.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createTokenCounter } from '../src/shared/chunking.ts';
import type { FakeOpenAIStats } from '../test/support/fake-openai.ts';
import { startFakeOpenAI } from '../test/support/fake-openai.ts';

export interface FakeServerOptions {
  rpm?: number;
  tpm?: number;
  baseMs?: number;
  perKTokensMs?: number;
  faultRate?: number;
  seed?: number;
  dimensions?: number;
}

export interface FakeServerHandle {
  url: string;
  pid: number;
  stats(): Promise<FakeOpenAIStats>;
  stop(): Promise<FakeOpenAIStats | undefined>;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Starts the fake provider in a child process; resolves once it listens. */
export function spawnFakeServer(options: FakeServerOptions): Promise<FakeServerHandle> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), JSON.stringify(options)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  live.add(child);
  let buffer = '';
  let finalStats: FakeOpenAIStats | undefined;
  const exited = new Promise<void>((resolve) => child.once('exit', () => { live.delete(child); resolve(); }));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('fake server did not start within 20 s')); }, 20_000);
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`fake server exited early (code ${code})`)); });
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (data: string) => {
      buffer += data;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        let msg: { url?: string; stats?: FakeOpenAIStats };
        try { msg = JSON.parse(line); } catch { continue; }
        if (msg.stats) finalStats = msg.stats;
        if (msg.url) {
          clearTimeout(timer);
          const url = msg.url;
          resolve({
            url,
            pid: child.pid!,
            async stats() {
              const res = await fetch(`${url.replace(/\/v1$/, '')}/__fake/stats`);
              return (await res.json()) as FakeOpenAIStats;
            },
            async stop() {
              if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
              const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
              await exited;
              clearTimeout(killer);
              return finalStats;
            },
          });
        }
      }
    });
  });
}

async function main(): Promise<void> {
  const o = JSON.parse(process.argv[2] ?? '{}') as FakeServerOptions;
  const counter = createTokenCounter('cl100k_base');
  const server = await startFakeOpenAI({
    record: false,
    dimensions: o.dimensions ?? 1536,
    rateLimit: { rpm: o.rpm, tpm: o.tpm },
    latency: { baseMs: o.baseMs, perKTokensMs: o.perKTokensMs },
    faultRate: o.faultRate,
    seed: o.seed,
    countTokens: (s) => Math.max(1, counter.encode(s).length),
  });
  process.stdout.write(`${JSON.stringify({ url: server.url })}\n`);
  const stop = (): void => {
    void server.close().then(() => {
      process.stdout.write(`${JSON.stringify({ stats: server.stats() })}\n`, () => process.exit(0));
    });
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  // The parent died without stopping us (SIGKILL): do not linger.
  const parent = process.ppid;
  setInterval(() => { if (process.ppid !== parent) process.exit(0); }, 1000).unref();
  process.stdout.on('error', () => process.exit(0));
}

function isMain(): boolean {
  try {
    return process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href;
  } catch {
    return false;
  }
}
if (isMain()) {
  main().catch((err: unknown) => {
    process.stderr.write(`fake-server: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  });
}
