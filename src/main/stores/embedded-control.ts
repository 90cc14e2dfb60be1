/**
 * The embedded database is one process's (PGlite runs inside it). While a worker (`start`, `ingest`) holds it, it
 * serves the queue operations of the CLI on a Unix socket next to the data (mode 0600: this user only), so that
 * `status`, `enqueue`, `search`, `cancel`, `retry`, `jobs list` and `prune` from another shell work: each call runs
 * in the worker, through its own connection, one at a time like every other query there — nothing else touches
 * the data files. Only the QueueApi methods are served, with their arguments as JSON.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { BadInputError, messageOf, WorkerFatalError } from '../../shared/errors.ts';
import type { Logger } from '../logging/logger.ts';
import type { JobRow, QueueApi } from './queue-store.ts';

const METHODS = ['enqueue', 'counts', 'getJob', 'getJobs', 'listJobs', 'cancelJob', 'retryJobs', 'matchChunks', 'hybridChunks', 'pruneJobs', 'storedModels', 'usageTotals', 'getDocument'] as const satisfies readonly (keyof QueueApi)[];
type Method = (typeof METHODS)[number];
const DATE_FIELDS = ['run_at', 'lease_expires_at', 'submitted_at', 'started_at', 'completed_at', 'updated_at'] as const;
/** Unix socket paths are limited to about 107 bytes. */
const MAX_SOCKET_PATH = 100;
const CALL_TIMEOUT_MS = 120_000;
/** The first call, to see whether the holder answers at all. */
const PROBE_TIMEOUT_MS = 5_000;
/** Request bodies larger than this are refused (a transcript is enqueued as one body). */
const MAX_BODY_BYTES = 512 * 1024 * 1024;

/**
 * The socket of a data directory: inside it when the path is short enough, else, named by the directory's hash, in
 * a directory of this user's own in the temp dir (mode 0700: in a shared /tmp nobody else can put a socket there).
 */
export function controlSocketPath(dataDir: string): string {
  const dir = path.resolve(dataDir);
  const inside = path.join(dir, 'control.sock');
  if (Buffer.byteLength(inside) <= MAX_SOCKET_PATH) return inside;
  return path.join(os.tmpdir(), `rag-worker-${process.getuid?.() ?? 'user'}`, `${createHash('sha256').update(dir).digest('hex').slice(0, 16)}.sock`);
}

/** The private directory of a socket outside the data directory: created 0700, refused when someone else owns it. */
function ensurePrivateDir(socket: string, dataDir: string): void {
  const dir = path.dirname(socket);
  if (dir === path.resolve(dataDir)) return;
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.lstatSync(dir);
  if (!st.isDirectory() || (process.getuid && st.uid !== process.getuid()) || (st.mode & 0o077) !== 0) {
    throw new Error(`${dir} is not a private directory of this user (owner ${st.uid}, mode ${(st.mode & 0o777).toString(8)})`);
  }
}

/** A socket someone else made is never trusted: its owner must be this user. */
function ownedByMe(socket: string): boolean {
  try {
    const st = fs.lstatSync(socket);
    return st.isSocket() && (!process.getuid || st.uid === process.getuid());
  } catch {
    return false;
  }
}

export interface ControlServer {
  path: string;
  close(): Promise<void>;
}

export async function serveControl(dataDir: string, store: QueueApi, logger: Logger): Promise<ControlServer> {
  const socket = controlSocketPath(dataDir);
  ensurePrivateDir(socket, dataDir);
  fs.rmSync(socket, { force: true }); // a socket left by a process that died (its lock was stale, or we would not be here)
  const server = http.createServer((req, res) => {
    let body = '';
    let size = 0;
    req.setEncoding('utf8');
    req.on('data', (d: string) => {
      size += d.length;
      if (size > MAX_BODY_BYTES) req.destroy();
      else body += d;
    });
    req.on('end', async () => {
      const reply = (status: number, value: unknown) => {
        const text = JSON.stringify(value);
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      };
      if (req.method !== 'POST' || req.url !== '/call') return reply(404, { error: { name: 'Error', message: 'POST /call only' } });
      try {
        const { method, args } = JSON.parse(body) as { method: Method; args: unknown[] };
        if (!(METHODS as readonly string[]).includes(method) || !Array.isArray(args)) throw new BadInputError(`unknown control call ${JSON.stringify(String(method))}`);
        const fn = store[method] as (...a: unknown[]) => Promise<unknown>;
        reply(200, { result: await fn.apply(store, args) });
      } catch (error) {
        const category = error instanceof WorkerFatalError ? 'worker_fatal' : error instanceof BadInputError ? 'bad_input' : 'other';
        reply(200, { error: { name: error instanceof Error ? error.name : 'Error', message: messageOf(error), category } });
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, () => resolve());
  });
  fs.chmodSync(socket, 0o600);
  logger.debug('Embedded database open to other rag-worker commands on a control socket', { event: 'control_listening', socket });
  return {
    path: socket,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        fs.rmSync(socket, { force: true });
      }),
  };
}

/**
 * The queue of the process that holds the embedded database, or undefined when it serves none (or is gone). A
 * holder that has just started opens its socket a moment after taking the lock: while `holderAlive()`, this waits
 * for it up to waitMs.
 */
export async function connectControl(dataDir: string, options: { waitMs?: number; holderAlive?: () => boolean } = {}): Promise<RemoteQueue | undefined> {
  const socket = controlSocketPath(dataDir);
  const until = Date.now() + (options.waitMs ?? 0);
  for (;;) {
    if (ownedByMe(socket)) {
      const remote = new RemoteQueue(socket, PROBE_TIMEOUT_MS);
      try {
        await remote.counts();
        return new RemoteQueue(socket);
      } catch {
        // not answering (yet): wait, or give up below
      }
    }
    if (Date.now() >= until || (options.holderAlive && !options.holderAlive())) return undefined;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** QueueApi over the control socket: the same calls, job rows' dates revived. */
export class RemoteQueue implements QueueApi {
  readonly socket: string;
  private readonly timeoutMs: number;

  constructor(socket: string, timeoutMs = CALL_TIMEOUT_MS) {
    this.socket = socket;
    this.timeoutMs = timeoutMs;
  }

  enqueue = (...args: Parameters<QueueApi['enqueue']>) => this.call('enqueue', args) as ReturnType<QueueApi['enqueue']>;
  counts = () => this.call('counts', []) as ReturnType<QueueApi['counts']>;
  getJob = async (...args: Parameters<QueueApi['getJob']>) => reviveJob((await this.call('getJob', args)) as JobRow | undefined);
  getJobs = async (...args: Parameters<QueueApi['getJobs']>) => ((await this.call('getJobs', args)) as JobRow[]).map((j) => reviveJob(j)!);
  listJobs = async (...args: Parameters<QueueApi['listJobs']>) => ((await this.call('listJobs', args)) as JobRow[]).map((j) => reviveJob(j)!);
  cancelJob = (...args: Parameters<QueueApi['cancelJob']>) => this.call('cancelJob', args) as ReturnType<QueueApi['cancelJob']>;
  retryJobs = (...args: Parameters<QueueApi['retryJobs']>) => this.call('retryJobs', args) as ReturnType<QueueApi['retryJobs']>;
  matchChunks = (...args: Parameters<QueueApi['matchChunks']>) => this.call('matchChunks', args) as ReturnType<QueueApi['matchChunks']>;
  hybridChunks = (...args: Parameters<QueueApi['hybridChunks']>) => this.call('hybridChunks', args) as ReturnType<QueueApi['hybridChunks']>;
  usageTotals = (...args: Parameters<QueueApi['usageTotals']>) => this.call('usageTotals', args) as ReturnType<QueueApi['usageTotals']>;
  getDocument = (...args: Parameters<QueueApi['getDocument']>) => this.call('getDocument', args) as ReturnType<QueueApi['getDocument']>;
  pruneJobs = (...args: Parameters<QueueApi['pruneJobs']>) => this.call('pruneJobs', args) as ReturnType<QueueApi['pruneJobs']>;
  storedModels = () => this.call('storedModels', []) as ReturnType<QueueApi['storedModels']>;

  private call(method: Method, args: unknown[]): Promise<unknown> {
    const body = JSON.stringify({ method, args });
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath: this.socket, path: '/call', method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, timeout: this.timeoutMs }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          try {
            const reply = JSON.parse(text) as { result?: unknown; error?: { name: string; message: string; category: string } };
            if (reply.error) {
              const { message, category } = reply.error;
              reject(category === 'worker_fatal' ? new WorkerFatalError(message) : category === 'bad_input' ? new BadInputError(message) : new Error(message));
            } else resolve(reply.result);
          } catch (error) {
            reject(error);
          }
        });
      });
      req.on('timeout', () => req.destroy(new Error(`the worker holding the embedded database did not answer within ${this.timeoutMs / 1000} s`)));
      req.on('error', reject);
      req.end(body);
    });
  }
}

function reviveJob(job: JobRow | undefined | null): JobRow | undefined {
  if (!job) return undefined;
  const out = { ...job } as Record<string, unknown>;
  for (const field of DATE_FIELDS) if (typeof out[field] === 'string') out[field] = new Date(out[field] as string);
  return out as unknown as JobRow;
}
