/**
 * The worker's HTTP endpoints, wired to a running worker: GET /health (public), /ready, /metrics, / (the status
 * page), /status.json and /events (server-sent events for the page). Started by `start` when RAG_HTTP_PORT or
 * PORT is set. Only this module and the sampler read the database for HTTP, on their own schedule.
 */
import fs from 'node:fs';
import type http from 'node:http';
import type { Config } from '../../shared/config.ts';
import { secretsOf } from '../../shared/config.ts';
import { messageOf } from '../../shared/errors.ts';
import type { Coordinator } from '../coordinator/coordinator.ts';
import type { Logger } from '../logging/logger.ts';
import type { Runtime } from '../runtime.ts';
import type { JobRow } from '../stores/queue-store.ts';
import { HealthProbe } from './health.ts';
import { WorkerMetrics } from './metrics.ts';
import { QueueSampler } from './queue-sampler.ts';
import { Readiness } from './readiness.ts';
import { sendJson, sendText, startHttpServer, type Route } from './server.ts';
import { statusSnapshot, Throughput, type SnapshotSources } from './status-snapshot.ts';

// Same depth under src/ and dist/ (as the migrations' path in migrate.ts): the page is read from the sources.
const PAGE_FILE = new URL('../../../src/main/http/status-page.html', import.meta.url);
/** How often an open status page gets a fresh snapshot (in-flight progress is read for it while a page is open). */
const EVENT_INTERVAL_MS = 1_000;
/** The liveness endpoint platforms probe (deploy/ recipes point at it). */
export const HEALTH_PATH = '/health';
/** An event-loop delay above this makes /health fail. */
const MAX_EVENT_LOOP_DELAY_MS = 2_000;

export interface WorkerHttp {
  port: number;
  close(): Promise<void>;
}

/** The port `start` serves on: RAG_HTTP_PORT, else the platform's PORT, else none. */
export function httpPortOf(config: Config): { port: number; setting: string } | undefined {
  if (config.httpPort !== undefined) return { port: config.httpPort, setting: 'RAG_HTTP_PORT' };
  if (config.platformPort !== undefined) return { port: config.platformPort, setting: 'PORT' };
  return undefined;
}

export async function startWorkerHttp(rt: Runtime, coordinator: Coordinator, logger: Logger): Promise<WorkerHttp | undefined> {
  const config = rt.config;
  const where = httpPortOf(config);
  if (!where) return undefined;
  const secrets = secretsOf(config);
  const sampler = new QueueSampler(rt.store, config.queueSampleMs, logger, secrets);
  const metrics = new WorkerMetrics({ coordinator, scheduler: rt.scheduler, pool: rt.pool, sampler, provider: rt.provider.name, model: rt.provider.model });
  const health = new HealthProbe({
    liveness: () => coordinator.liveness(),
    stallMs: Math.max(60_000, 2 * config.leaseSeconds * 1000),
    heartbeatMs: config.heartbeatMs,
    maxEventLoopDelayMs: MAX_EVENT_LOOP_DELAY_MS,
  });
  const readiness = new Readiness({
    inspect: () => rt.inspect(),
    kind: rt.sql?.kind ?? 'supabase',
    dimensions: config.embeddingDimensions,
    fault: () => coordinator.currentFault,
    stopping: () => coordinator.isStopping,
    secrets,
  });
  const sources: SnapshotSources = {
    workerId: config.workerId,
    startedAt: Date.now(),
    embedder: rt.provider.remote ? `${rt.provider.name} ${rt.provider.model}` : `${rt.provider.model} (offline)`,
    threads: rt.pool.threads,
    maxConcurrentJobs: config.maxConcurrentJobs,
    coordinator,
    scheduler: rt.scheduler,
    throughput: new Throughput(coordinator),
  };
  const page = fs.readFileSync(PAGE_FILE, 'utf8');
  const streams = new EventStreams(rt, sources, sampler, logger);

  const routes: Route[] = [
    {
      path: HEALTH_PATH,
      public: true,
      handle: (_req, res) => {
        const report = health.report();
        sendJson(res, report.ok ? 200 : 503, { status: report.ok ? 'ok' : 'stuck', ...report });
      },
    },
    {
      path: '/ready',
      handle: async (_req, res) => {
        const report = await readiness.check();
        const failing = report.checks.find((c) => !c.ok);
        sendJson(res, report.ok ? 200 : 503, { status: report.ok ? 'ready' : 'not ready', ...(failing ? { failing: failing.name } : {}), checks: report.checks });
      },
    },
    { path: '/metrics', handle: async (_req, res) => sendText(res, 200, metrics.contentType, await metrics.text()) },
    { path: '/', handle: (_req, res) => sendText(res, 200, 'text/html; charset=utf-8', page) },
    { path: '/status.json', handle: async (_req, res) => sendJson(res, 200, statusSnapshot(sources, sampler.latest, await streams.processing())) },
    { path: '/events', handle: (req, res) => streams.open(req, res) },
  ];
  sampler.start();
  health.start();
  let server;
  try {
    server = await startHttpServer({ port: where.port, host: config.httpHost, token: config.httpToken, routes, logger, secrets, portSetting: where.setting });
  } catch (error) {
    sampler.stop();
    health.stop();
    throw error;
  }
  logger.info(`🩺 HTTP on ${config.httpHost}:${server.port}: /health /ready /metrics and the status page at /`, {
    event: 'http_listening',
    port: server.port,
    host: config.httpHost,
    token: config.httpToken !== undefined,
  });
  return {
    port: server.port,
    async close() {
      streams.close();
      sampler.stop();
      health.stop();
      await server.close();
    },
  };
}

/** Server-sent events for open status pages: one snapshot per second to each, in-flight progress read once for all. */
class EventStreams {
  private readonly clients = new Set<http.ServerResponse>();
  private timer: NodeJS.Timeout | undefined;
  private readonly rt: Runtime;
  private readonly sources: SnapshotSources;
  private readonly sampler: QueueSampler;
  private readonly logger: Logger;

  constructor(rt: Runtime, sources: SnapshotSources, sampler: QueueSampler, logger: Logger) {
    this.rt = rt;
    this.sources = sources;
    this.sampler = sampler;
    this.logger = logger;
  }

  /** In-flight jobs of every worker, fresh (one indexed read), falling back to the last sample if it fails. */
  async processing(): Promise<JobRow[] | undefined> {
    try {
      return await this.rt.store.listJobs({ status: 'processing', limit: 50 });
    } catch (error) {
      this.logger.debug('Status page: could not read the jobs in flight', { error: messageOf(error) });
      return undefined;
    }
  }

  open(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    res.write('retry: 2000\n\n');
    this.clients.add(res);
    req.on('close', () => {
      this.clients.delete(res);
      if (this.clients.size === 0) this.pause();
    });
    void this.push([res]);
    this.timer ??= setInterval(() => void this.push([...this.clients]), EVENT_INTERVAL_MS);
  }

  close(): void {
    this.pause();
    for (const res of this.clients) res.end();
    this.clients.clear();
  }

  private pause(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private pushing = false;

  /** One snapshot to each target; a target still holding the previous frame (not reading) skips this one. */
  private async push(targets: http.ServerResponse[]): Promise<void> {
    if (targets.length === 0 || this.pushing) return; // the previous push is still reading the database
    this.pushing = true;
    try {
      const snapshot = statusSnapshot(this.sources, this.sampler.latest, await this.processing());
      const frame = `data: ${JSON.stringify(snapshot)}\n\n`;
      for (const res of targets) if (!res.writableEnded && !res.writableNeedDrain) res.write(frame);
    } finally {
      this.pushing = false;
    }
  }
}
