/**
 * The worker's HTTP server (node:http): a few GET routes, an optional bearer token for all but the public ones,
 * JSON errors. Handlers never see a request whose token is wrong; a handler's error answers 500 without its
 * message (which is logged, redacted). close() ends open event streams too.
 */
import http from 'node:http';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { messageOf, WorkerFatalError } from '../../shared/errors.ts';
import { oneLine } from '../../shared/redact.ts';
import type { Logger } from '../logging/logger.ts';

export interface Route {
  path: string;
  /** Answered without the token (liveness probes cannot send one). */
  public?: boolean;
  handle(req: http.IncomingMessage, res: http.ServerResponse, url: URL): void | Promise<void>;
}

export interface HttpServerOptions {
  port: number;
  host: string;
  token?: string;
  routes: Route[];
  logger: Logger;
  secrets: readonly string[];
  /** The setting the port came from, for the error when it is taken. */
  portSetting: string;
}

export interface RunningServer {
  port: number;
  close(): Promise<void>;
}

export async function startHttpServer(options: HttpServerOptions): Promise<RunningServer> {
  const routes = new Map(options.routes.map((r) => [r.path, r]));
  const expected = options.token === undefined ? undefined : digest(options.token);
  const server = http.createServer((req, res) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      return sendJson(res, 400, { error: 'malformed request target' });
    }
    const route = routes.get(url.pathname);
    if (!route) return sendJson(res, 404, { error: `no such endpoint: ${url.pathname}`, endpoints: [...routes.keys()] });
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return sendJson(res, 405, { error: `${req.method} is not allowed: use GET` });
    }
    if (!route.public && expected !== undefined && !authorised(req, url, expected)) {
      res.setHeader('www-authenticate', 'Bearer realm="rag-worker"');
      return sendJson(res, 401, { error: 'missing or wrong token: send Authorization: Bearer <RAG_HTTP_TOKEN>' });
    }
    Promise.resolve()
      .then(() => route.handle(req, res, url))
      .catch((error) => {
        options.logger.error(`HTTP ${url.pathname} failed: ${oneLine(messageOf(error), options.secrets)}`, { event: 'http_error', path: url.pathname });
        if (!res.headersSent) sendJson(res, 500, { error: 'internal error (see the worker log)' });
        else res.destroy();
      });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      const why = error.code === 'EADDRINUSE' ? 'is already in use' : error.code === 'EACCES' ? 'needs privileges this user does not have' : `cannot be opened (${error.code ?? error.message})`;
      reject(new WorkerFatalError(`${options.portSetting}=${options.port}: port ${options.port} on ${options.host} ${why}: choose another port`, { setting: options.portSetting }));
    });
    server.listen(options.port, options.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

export function sendText(res: http.ServerResponse, status: number, contentType: string, text: string): void {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

/** Bearer header, or ?token= (EventSource and a browser's address bar cannot send headers). Constant-time compare. */
function authorised(req: http.IncomingMessage, url: URL, expected: Buffer): boolean {
  const header = req.headers.authorization;
  // The scheme name is case-insensitive (RFC 7235).
  const given = header !== undefined && /^bearer /i.test(header) ? header.slice(7).trim() : url.searchParams.get('token');
  return given !== null && given !== undefined && timingSafeEqual(digest(given), expected);
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
