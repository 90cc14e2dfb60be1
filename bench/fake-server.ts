/**
 * The simulated embeddings provider for the benches, in its own process so its CPU (tokenizing every input,
 * building 1536-float vectors) does not run on the worker's event loop.
 *
 * Run as a script, it starts test/support/fake-openai.ts with a tiktoken cl100k_base token counter (so the
 * server counts tokens exactly as the worker's chunker does), prints `{"url": ...}` on one line, serves
 * `GET /__fake/stats`, and on SIGTERM prints `{"stats": ...}` and exits 0.
 * Imported, spawnFakeServer() starts that process and returns a handle.
 *
 * Rate limits: by default test/support/fake-openai.ts's per-minute buckets (capacity = the per-minute limit).
 * With `burstSeconds`, this file's BurstLimiter enforces them instead: a bucket of capacity
 * limit × burstSeconds / 60 refilling continuously at limit/60,000 per ms (burstSeconds 1 = the bucket holds
 * one second of tokens/requests), a request larger than the token bucket is refused as "Request too large"
 * (it could never be admitted), and every embeddings response carries x-ratelimit-* headers with the
 * per-minute limit, the bucket's current level as `remaining` and the time to a full bucket as `reset`.
 * The stats also carry the provider span: first request arrival → last response (server clock).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { ServerResponse } from 'node:http';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createTokenCounter } from '../src/shared/chunking.ts';
import type { FakeOpenAIStats, FaultAction, RecordedRequest } from '../test/support/fake-openai.ts';
import { formatGoDuration, startFakeOpenAI } from '../test/support/fake-openai.ts';

export interface FakeServerOptions {
  rpm?: number;
  tpm?: number;
  baseMs?: number;
  perKTokensMs?: number;
  faultRate?: number;
  seed?: number;
  dimensions?: number;
  /** Enforce rpm/tpm with buckets holding this many seconds of the limit (BurstLimiter) instead of a minute. */
  burstSeconds?: number;
}

export interface FakeServerStats extends FakeOpenAIStats {
  /** Server-clock ms of the first embeddings request's arrival and of the last response (NaN: none yet). */
  firstRequestMs: number;
  lastResponseMs: number;
  /** lastResponseMs − firstRequestMs. */
  spanMs: number;
  /** Requests refused as larger than the token bucket (included in rateLimited). */
  tooLarge: number;
  /** When the burst limiter refused a request, ms after the first request (where in a run the 429s fall). */
  refusedAtMs: number[];
}

export interface FakeServerHandle {
  url: string;
  pid: number;
  stats(): Promise<FakeServerStats>;
  stop(): Promise<FakeServerStats | undefined>;
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
  let finalStats: FakeServerStats | undefined;
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
        let msg: { url?: string; stats?: FakeServerStats };
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
              return (await res.json()) as FakeServerStats;
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

/** A continuously refilling bucket of `capacity`, refilling `perMinute` per minute. */
class Bucket {
  level: number;
  at: number;
  readonly capacity: number;
  readonly perMinute: number;
  constructor(perMinute: number, capacity: number, now: number) {
    this.perMinute = perMinute;
    this.capacity = capacity;
    this.level = capacity;
    this.at = now;
  }
  refill(now: number): void {
    this.level = Math.min(this.capacity, this.level + ((now - this.at) * this.perMinute) / 60_000);
    this.at = now;
  }
  msUntil(amount: number): number {
    return amount <= this.level ? 0 : ((amount - this.level) * 60_000) / this.perMinute;
  }
  msToFull(): number {
    return ((this.capacity - this.level) * 60_000) / this.perMinute;
  }
}

/** RPM/TPM buckets holding `burstSeconds` of the limit; answers refusals as OpenAI-style 429s (an onRequest hook). */
export class BurstLimiter {
  readonly rpm?: Bucket;
  readonly tpm?: Bucket;
  tooLarge = 0;
  /** performance.now() of each refusal. */
  readonly refusedAt: number[] = [];
  constructor(o: { rpm?: number; tpm?: number; burstSeconds: number }, now = performance.now()) {
    if (o.rpm) this.rpm = new Bucket(o.rpm, Math.max(1, (o.rpm * o.burstSeconds) / 60), now);
    if (o.tpm) this.tpm = new Bucket(o.tpm, Math.max(1, (o.tpm * o.burstSeconds) / 60), now);
  }

  headers(now = performance.now()): Record<string, string> {
    const h: Record<string, string> = {};
    for (const [b, kind] of [[this.rpm, 'requests'], [this.tpm, 'tokens']] as const) {
      if (!b) continue;
      b.refill(now);
      h[`x-ratelimit-limit-${kind}`] = String(b.perMinute);
      h[`x-ratelimit-remaining-${kind}`] = String(Math.max(0, Math.floor(b.level)));
      h[`x-ratelimit-reset-${kind}`] = formatGoDuration(b.msToFull());
    }
    return h;
  }

  /** null: admitted (and consumed); otherwise the 429 to answer. */
  admit(rec: RecordedRequest, now = performance.now()): FaultAction | null {
    this.rpm?.refill(now);
    this.tpm?.refill(now);
    const where = `${rec.model} in organization org-fake`;
    const visit = 'Visit https://platform.openai.com/account/rate-limits to learn more.';
    const body = (message: string, type: string) => ({ error: { message, type, param: null, code: 'rate_limit_exceeded' } });
    if (this.tpm && rec.tokens > this.tpm.capacity) {
      this.tooLarge++;
      this.refusedAt.push(now);
      const message = `Request too large for ${where} on tokens per min (TPM): Limit ${this.tpm.perMinute} (burst ${Math.floor(this.tpm.capacity)}), Requested ${rec.tokens}. The input or output tokens must be reduced in order to run successfully. ${visit}`;
      return { status: 429, body: body(message, 'tokens'), headers: this.headers(now) };
    }
    const waitR = this.rpm?.msUntil(1) ?? 0;
    const waitT = this.tpm?.msUntil(rec.tokens) ?? 0;
    if (waitR > 0 || waitT > 0) {
      this.refusedAt.push(now);
      const tokens = waitT >= waitR;
      const b = (tokens ? this.tpm : this.rpm)!;
      const wait = Math.max(waitR, waitT);
      const label = tokens ? 'tokens per min (TPM)' : 'requests per min (RPM)';
      const message = `Rate limit reached for ${where} on ${label}: Limit ${b.perMinute}, Used ${Math.round(b.capacity - b.level)}, Requested ${tokens ? rec.tokens : 1}. Please try again in ${formatGoDuration(wait)}. ${visit}`;
      return { status: 429, retryAfterMs: wait, body: body(message, tokens ? 'tokens' : 'requests'), headers: this.headers(now) };
    }
    if (this.rpm) this.rpm.level -= 1;
    if (this.tpm) this.tpm.level -= rec.tokens;
    return null;
  }
}

async function main(): Promise<void> {
  const o = JSON.parse(process.argv[2] ?? '{}') as FakeServerOptions;
  const counter = createTokenCounter('cl100k_base');
  const limiter = o.burstSeconds ? new BurstLimiter({ rpm: o.rpm, tpm: o.tpm, burstSeconds: o.burstSeconds }) : undefined;
  const server = await startFakeOpenAI({
    record: false,
    dimensions: o.dimensions ?? 1536,
    rateLimit: limiter ? {} : { rpm: o.rpm, tpm: o.tpm },
    latency: { baseMs: o.baseMs, perKTokensMs: o.perKTokensMs },
    faultRate: o.faultRate,
    seed: o.seed,
    countTokens: (s) => Math.max(1, counter.encode(s).length),
    onRequest: limiter ? (rec) => limiter.admit(rec) : undefined,
  });
  if (limiter) {
    // fake-openai.ts adds x-ratelimit-* headers only from its own buckets (off here): add the limiter's to every
    // 200 answer of the embeddings endpoint (this process serves nothing else).
    const writeHead = ServerResponse.prototype.writeHead;
    ServerResponse.prototype.writeHead = function (this: ServerResponse, ...args: unknown[]) {
      if (args[0] === 200 && this.req?.method === 'POST' && /\/embeddings$/.test((this.req.url ?? '').split('?')[0])) {
        for (const [k, v] of Object.entries(limiter.headers())) this.setHeader(k, v);
      }
      return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args);
    } as typeof writeHead;
  }
  // Provider span (first request → last response) in the stats; /__fake/stats calls server.stats().
  let firstRequestMs = NaN;
  let lastResponseMs = NaN;
  server.events.on('request', () => {
    if (Number.isNaN(firstRequestMs)) firstRequestMs = performance.now();
  });
  server.events.on('response', () => {
    lastResponseMs = performance.now();
  });
  const baseStats = server.stats;
  (server as unknown as { stats: () => FakeServerStats }).stats = () => ({
    ...baseStats(),
    firstRequestMs,
    lastResponseMs,
    spanMs: lastResponseMs - firstRequestMs,
    tooLarge: limiter?.tooLarge ?? 0,
    refusedAtMs: (limiter?.refusedAt ?? []).map((t) => Math.round(t - firstRequestMs)),
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
