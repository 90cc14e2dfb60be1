/**
 * Loopback stand-in for a Supabase project's gateway with Realtime (`<SUPABASE_URL>/realtime/v1/websocket`),
 * backed by a real PostgreSQL database, so that a supabase-js client's `channel(...).on('postgres_changes', ...)
 * .subscribe()` runs end to end over a real WebSocket, and everything else (`/rest/v1/...`) is passed on to the
 * loopback PostgREST (test/support/fake-postgrest.ts) given as `restUrl`: one SUPABASE_URL serves both, as the
 * real gateway does.
 *
 * The wire protocol is Phoenix channels, as @supabase/realtime-js 2.119 speaks it:
 *
 * - Gateway: `GET /realtime/v1/websocket?apikey=<key>&vsn=<vsn>` upgraded to a WebSocket. No apikey → HTTP 401
 *   {"message":"No API key found in request"}, another key → 401 {"message":"Invalid API key"}; a vsn other than
 *   1.0.0 / 2.0.0 → 400. realtime-js sends vsn 2.0.0 by default.
 * - Serializers: vsn 2.0.0 frames are JSON arrays `[join_ref, ref, topic, event, payload]`; vsn 1.0.0 frames are
 *   JSON objects `{join_ref, ref, topic, event, payload}`. Binary frames (2.0.0's user broadcasts) are ignored.
 * - Heartbeat: `phoenix` / `heartbeat` is answered `phx_reply` {"status":"ok","response":{}}.
 * - Join: `phx_join` on `realtime:<name>` with `{config: {postgres_changes: [{event, schema, table?, filter?,
 *   select?}], ...}, access_token?}`. The token (the join's access_token, else the socket's apikey) must be the
 *   service key — the service role reads the table through its RLS — or the join is refused. Each binding gets an
 *   id; the reply is {"status":"ok","response":{"postgres_changes":[{id, event, schema, table, filter}]}},
 *   followed by a `system` message {"extension":"postgres_changes","status":"ok","message":"Subscribed to
 *   PostgreSQL","channel":<name>}. A refused join is {"status":"error","response":{"reason":...}}.
 *   Filters understood: `column=eq.value`, `column=neq.value`, `column=in.(a,b)` (others refuse the join).
 * - `access_token` on a joined topic replaces its token (no reply); a wrong one closes the channel after a
 *   `system` error. `phx_leave` is answered ok, then `phx_close`. A message on a topic not joined is answered
 *   {"status":"error","response":{"reason":"unmatched topic"}}.
 * - Changes: the server LISTENs on the database's `rag_ingestion_queue` channel (the queue's NOTIFY trigger: an
 *   insert, or an update of status/run_at, of a queued row) and, for each id, reads the row as it is then and
 *   sends `postgres_changes` with payload {"data":{"type","schema","table","commit_timestamp","columns",
 *   "record","old_record"?,"errors":null},"ids":[...]} to every joined channel with a matching binding (event,
 *   schema, table, filter against the row; `select` narrows record and columns). `join_ref` and `ref` are null,
 *   as for the real server's broadcasts. The type is INSERT for a row never touched since it was submitted
 *   (attempts 0 and updated_at = submitted_at), UPDATE otherwise (old_record then carries the primary key only,
 *   as with the default replica identity). A row gone by then is skipped.
 *
 * Unlike Realtime it needs no publication and no replication slot (the NOTIFY trigger stands in for the WAL), so
 * it reports only what that trigger reports: no DELETEs and no updates of other columns. It serves no
 * broadcast, presence or REST endpoints of Realtime.
 *
 * Controls: `dropConnections()` terminates every WebSocket (the client sees the socket close); `refuseJoins()`
 * answers every join with an error until `refuseJoins(false)`; counters of connections, joins, subscriptions and
 * changes sent; `until(predicate)` resolves when the fake's state satisfies it (re-checked on every change).
 */
import { Buffer } from 'node:buffer';
import { EventEmitter } from 'node:events';
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import pg from 'pg';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { listenOn } from './listen.ts';

export interface FakeRealtimeOptions {
  databaseUrl: string;
  serviceKey: string;
  /** Where every path outside /realtime/v1 is passed on (the fake PostgREST's url). */
  restUrl?: string;
}

export interface FakeRealtimeChange {
  type: 'INSERT' | 'UPDATE';
  id: string;
  /** Topics it was sent to. */
  topics: string[];
  at: number;
}

export interface FakeRealtimeStats {
  /** WebSockets accepted, in all. */
  connections: number;
  /** WebSockets open now. */
  openConnections: number;
  /** Upgrades refused (missing or wrong apikey, bad vsn). */
  rejectedConnections: number;
  /** phx_join messages received on realtime: topics. */
  joins: number;
  /** Joins refused (refuseJoins, wrong token, bad filter). */
  refusedJoins: number;
  /** Joins accepted with postgres_changes bindings, in all. */
  subscriptions: number;
  /** Channels with postgres_changes bindings joined now, on open connections. */
  activeSubscriptions: number;
}

export interface FakeRealtime extends FakeRealtimeStats {
  /** e.g. http://127.0.0.1:PORT — the SUPABASE_URL. */
  url: string;
  /** Every postgres_changes change sent (only those that reached at least one channel). */
  changes: FakeRealtimeChange[];
  /** Notifications read from the database (whether or not anything was subscribed). */
  notifications: number;
  /** Terminates every WebSocket now. */
  dropConnections(): void;
  /** Refuse every join with `reason` (true: a default reason) until called with false. */
  refuseJoins(reason?: string | boolean): void;
  /** Resolves with the first truthy value of `probe`, re-checked whenever the fake's state changes. */
  until<T>(probe: (fake: FakeRealtime) => T | undefined | null | false, what: string, timeoutMs?: number): Promise<T>;
  close(): Promise<void>;
}

const QUEUE_CHANNEL = 'rag_ingestion_queue';
const QUEUE_TABLE = 'rag_ingestion_queue';
const DEFAULT_REFUSAL = 'fake-realtime: joins are refused';

type Vsn = '1.0.0' | '2.0.0';

interface Message {
  join_ref: string | null;
  ref: string | null;
  topic: string;
  event: string;
  payload: unknown;
}

interface Binding {
  id: number;
  event: string;
  schema: string;
  table?: string;
  filter?: string;
  select?: string[];
  match: (row: Record<string, unknown>) => boolean;
}

interface JoinedChannel {
  joinRef: string | null;
  bindings: Binding[];
  token: string;
}

interface Connection {
  ws: WebSocket;
  vsn: Vsn;
  apikey: string;
  channels: Map<string, JoinedChannel>;
}

function encode(vsn: Vsn, m: Message): string {
  return vsn === '2.0.0' ? JSON.stringify([m.join_ref, m.ref, m.topic, m.event, m.payload]) : JSON.stringify(m);
}

function decode(vsn: Vsn, text: string): Message | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    if (vsn === '2.0.0') {
      if (!Array.isArray(parsed) || parsed.length !== 5) return undefined;
      const [join_ref, ref, topic, event, payload] = parsed as [string | null, string | null, string, string, unknown];
      return { join_ref, ref, topic, event, payload };
    }
    const o = parsed as Partial<Message>;
    if (typeof o?.topic !== 'string' || typeof o.event !== 'string') return undefined;
    return { join_ref: o.join_ref ?? null, ref: o.ref ?? null, topic: o.topic, event: o.event, payload: o.payload };
  } catch {
    return undefined;
  }
}

/** `column=op.value` → a predicate on a row (values compared in their text form), or an error text. */
function parseFilter(filter: string): ((row: Record<string, unknown>) => boolean) | string {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)=(eq|neq|in)\.(.*)$/s.exec(filter);
  if (!m) return `invalid or unsupported filter: ${filter}`;
  const [, column, op, value] = m;
  const text = (row: Record<string, unknown>) => {
    const v = row[column];
    return v === null || v === undefined ? null : typeof v === 'object' ? JSON.stringify(v) : String(v);
  };
  if (op === 'eq') return (row) => text(row) === value;
  if (op === 'neq') return (row) => text(row) !== null && text(row) !== value;
  const list = /^\((.*)\)$/s.exec(value);
  if (!list) return `invalid in-list in filter: ${filter}`;
  const values = new Set(list[1].split(',').map((v) => v.trim().replace(/^"(.*)"$/s, '$1')));
  return (row) => {
    const t = text(row);
    return t !== null && values.has(t);
  };
}

function refuseUpgrade(socket: Socket, status: number, reason: string, message: string): void {
  const body = JSON.stringify({ message });
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

export async function startFakeRealtime(options: FakeRealtimeOptions): Promise<FakeRealtime> {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  const changed = () => emitter.emit('change');
  const connections = new Set<Connection>();
  const stats: FakeRealtimeStats = { connections: 0, openConnections: 0, rejectedConnections: 0, joins: 0, refusedJoins: 0, subscriptions: 0, activeSubscriptions: 0 };
  const changes: FakeRealtimeChange[] = [];
  let notifications = 0;
  let refusal: string | undefined;
  let nextId = 1_000_000 + Math.floor(Math.random() * 1_000_000);
  const restTarget = options.restUrl ? new URL(options.restUrl) : undefined;

  const countActive = () => {
    let n = 0;
    for (const c of connections) for (const ch of c.channels.values()) if (ch.bindings.length > 0) n++;
    stats.activeSubscriptions = n;
    stats.openConnections = connections.size;
    changed();
  };

  // ───────────── the database side: NOTIFY → row → change ─────────────
  const listener = new pg.Client({ connectionString: options.databaseUrl, application_name: 'fake-realtime' });
  listener.on('error', () => {});
  await listener.connect();
  const columnTypes = (
    await listener.query<{ name: string; type: string }>(
      `select a.attname as name, t.typname as type
         from pg_attribute a join pg_type t on t.oid = a.atttypid
        where a.attrelid = 'public.${QUEUE_TABLE}'::regclass and a.attnum > 0 and not a.attisdropped
        order by a.attnum`,
    )
  ).rows;
  let pending = Promise.resolve();
  listener.on('notification', (msg) => {
    if (msg.channel !== QUEUE_CHANNEL || !msg.payload) return;
    const id = msg.payload;
    // One at a time, in arrival order, as a replication stream would deliver them.
    pending = pending.then(() => deliver(id)).catch(() => {});
  });
  await listener.query(`listen ${QUEUE_CHANNEL}`);

  async function deliver(id: string): Promise<void> {
    notifications++;
    const { rows } = await listener.query<{ row: Record<string, unknown>; fresh: boolean }>(
      `select to_jsonb(q) as row, (q.attempts = 0 and q.updated_at = q.submitted_at) as fresh from public.${QUEUE_TABLE} q where q.id = $1`,
      [id],
    );
    changed();
    if (rows.length === 0) return;
    const { row, fresh } = rows[0];
    const type = fresh ? 'INSERT' : 'UPDATE';
    const topics: string[] = [];
    for (const conn of connections) {
      for (const [topic, channel] of conn.channels) {
        const matching = channel.bindings.filter(
          (b) => (b.event === '*' || b.event === type) && (b.schema === '*' || b.schema === 'public') && (!b.table || b.table === '*' || b.table === QUEUE_TABLE) && b.match(row),
        );
        if (matching.length === 0) continue;
        // One message per distinct column selection (the same as one per binding when none selects).
        const bySelect = new Map<string, Binding[]>();
        for (const b of matching) {
          const key = b.select ? b.select.join(',') : '*';
          bySelect.set(key, [...(bySelect.get(key) ?? []), b]);
        }
        for (const group of bySelect.values()) {
          const select = group[0].select;
          const cols = select ? columnTypes.filter((c) => select.includes(c.name)) : columnTypes;
          const record = Object.fromEntries(cols.map((c) => [c.name, row[c.name] ?? null]));
          const data: Record<string, unknown> = {
            type,
            schema: 'public',
            table: QUEUE_TABLE,
            commit_timestamp: new Date().toISOString(),
            columns: cols,
            record,
            errors: null,
          };
          if (type === 'UPDATE') data.old_record = { id: row.id };
          send(conn, { join_ref: null, ref: null, topic, event: 'postgres_changes', payload: { data, ids: group.map((b) => b.id) } });
        }
        topics.push(topic);
      }
    }
    if (topics.length > 0) {
      changes.push({ type, id, topics, at: Date.now() });
      changed();
    }
  }

  // ───────────── the WebSocket side ─────────────
  function send(conn: Connection, m: Message): void {
    if (conn.ws.readyState === conn.ws.OPEN) conn.ws.send(encode(conn.vsn, m));
  }
  const reply = (conn: Connection, m: Message, status: 'ok' | 'error', response: unknown) =>
    send(conn, { join_ref: m.join_ref, ref: m.ref, topic: m.topic, event: 'phx_reply', payload: { status, response } });

  function onJoin(conn: Connection, m: Message): void {
    stats.joins++;
    const payload = (m.payload ?? {}) as { config?: { postgres_changes?: unknown }; access_token?: unknown };
    const refuse = (reason: string) => {
      stats.refusedJoins++;
      reply(conn, m, 'error', { reason });
      changed();
    };
    if (refusal !== undefined) return refuse(refusal);
    const token = typeof payload.access_token === 'string' ? payload.access_token : conn.apikey;
    if (token !== options.serviceKey) return refuse('Invalid token: the access token is not accepted for this project');
    const requested = Array.isArray(payload.config?.postgres_changes) ? (payload.config.postgres_changes as Record<string, unknown>[]) : [];
    const bindings: Binding[] = [];
    for (const r of requested) {
      const event = String(r.event ?? '');
      if (!['*', 'INSERT', 'UPDATE', 'DELETE'].includes(event) || typeof r.schema !== 'string') return refuse(`invalid postgres_changes binding: ${JSON.stringify(r)}`);
      let match: Binding['match'] = () => true;
      if (typeof r.filter === 'string' && r.filter !== '') {
        const parsed = parseFilter(r.filter);
        if (typeof parsed === 'string') return refuse(parsed);
        match = parsed;
      }
      const select = Array.isArray(r.select) ? r.select.map(String) : undefined;
      bindings.push({ id: nextId++, event, schema: r.schema, table: typeof r.table === 'string' ? r.table : undefined, filter: typeof r.filter === 'string' ? r.filter : undefined, select, match });
    }
    const previous = conn.channels.get(m.topic);
    // A second join of a joined topic replaces the first, which is closed, as Phoenix does.
    if (previous) send(conn, { join_ref: previous.joinRef, ref: null, topic: m.topic, event: 'phx_close', payload: {} });
    conn.channels.set(m.topic, { joinRef: m.join_ref ?? m.ref, bindings, token });
    reply(conn, m, 'ok', { postgres_changes: bindings.map((b) => ({ id: b.id, event: b.event, schema: b.schema, table: b.table, filter: b.filter })) });
    if (bindings.length > 0) {
      stats.subscriptions++;
      send(conn, {
        join_ref: m.join_ref,
        ref: null,
        topic: m.topic,
        event: 'system',
        payload: { extension: 'postgres_changes', status: 'ok', message: 'Subscribed to PostgreSQL', channel: m.topic.replace(/^realtime:/, '') },
      });
    }
    countActive();
  }

  function onMessage(conn: Connection, m: Message): void {
    if (m.topic === 'phoenix') {
      if (m.event === 'heartbeat') reply(conn, m, 'ok', {});
      return;
    }
    if (m.event === 'phx_join') {
      if (!m.topic.startsWith('realtime:')) return reply(conn, m, 'error', { reason: 'unmatched topic' });
      return onJoin(conn, m);
    }
    const channel = conn.channels.get(m.topic);
    // Leaving a topic that is not joined (a refused join, a channel of an earlier connection) is answered ok.
    if (!channel) return reply(conn, m, m.event === 'phx_leave' ? 'ok' : 'error', m.event === 'phx_leave' ? {} : { reason: 'unmatched topic' });
    if (m.event === 'phx_leave') {
      conn.channels.delete(m.topic);
      reply(conn, m, 'ok', {});
      send(conn, { join_ref: channel.joinRef, ref: null, topic: m.topic, event: 'phx_close', payload: {} });
      countActive();
      return;
    }
    if (m.event === 'access_token') {
      const token = (m.payload as { access_token?: unknown } | null)?.access_token;
      if (token === options.serviceKey) {
        channel.token = token;
        return;
      }
      send(conn, { join_ref: channel.joinRef, ref: null, topic: m.topic, event: 'system', payload: { extension: 'system', status: 'error', message: 'Invalid token', channel: m.topic.replace(/^realtime:/, '') } });
      conn.channels.delete(m.topic);
      send(conn, { join_ref: channel.joinRef, ref: null, topic: m.topic, event: 'phx_close', payload: {} });
      countActive();
      return;
    }
    // Broadcast and presence are not served; a push that wants an answer gets one.
    if (m.ref) reply(conn, m, 'ok', {});
  }

  const wss = new WebSocketServer({ noServer: true });

  function proxy(req: IncomingMessage, res: ServerResponse, target: URL): void {
    const upstream = httpRequest(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => {
      if (res.headersSent) return void res.destroy();
      const body = JSON.stringify({ message: 'An invalid response was received from the upstream server' });
      res.writeHead(502, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    });
    req.pipe(upstream);
  }

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    if (!path.startsWith('/realtime/') && restTarget) return proxy(req, res, restTarget);
    const body = JSON.stringify({ message: 'no Route matched with those values' });
    res.writeHead(404, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });

  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => {});
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const reject = (status: number, reason: string, message: string) => {
      stats.rejectedConnections++;
      refuseUpgrade(socket, status, reason, message);
      changed();
    };
    if (url.pathname !== '/realtime/v1/websocket') return reject(404, 'Not Found', 'no Route matched with those values');
    const apikey = url.searchParams.get('apikey') ?? (typeof req.headers.apikey === 'string' ? req.headers.apikey : null);
    if (!apikey) return reject(401, 'Unauthorized', 'No API key found in request');
    if (apikey !== options.serviceKey) return reject(401, 'Unauthorized', 'Invalid API key');
    const vsn = url.searchParams.get('vsn') ?? '1.0.0';
    if (vsn !== '1.0.0' && vsn !== '2.0.0') return reject(400, 'Bad Request', `unsupported serializer version ${vsn}`);
    wss.handleUpgrade(req, socket, head, (ws) => {
      const conn: Connection = { ws, vsn, apikey, channels: new Map() };
      connections.add(conn);
      stats.connections++;
      ws.on('message', (data: RawData, isBinary: boolean) => {
        if (isBinary) return;
        const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
        const m = decode(conn.vsn, bytes.toString('utf8'));
        if (m) onMessage(conn, m);
      });
      ws.on('error', () => {});
      ws.on('close', () => {
        connections.delete(conn);
        countActive();
      });
      countActive();
    });
  });

  const port = await listenOn(server);

  const fake: FakeRealtime = {
    url: `http://127.0.0.1:${port}`,
    changes,
    get notifications() {
      return notifications;
    },
    get connections() {
      return stats.connections;
    },
    get openConnections() {
      return stats.openConnections;
    },
    get rejectedConnections() {
      return stats.rejectedConnections;
    },
    get joins() {
      return stats.joins;
    },
    get refusedJoins() {
      return stats.refusedJoins;
    },
    get subscriptions() {
      return stats.subscriptions;
    },
    get activeSubscriptions() {
      return stats.activeSubscriptions;
    },
    dropConnections() {
      for (const conn of connections) {
        conn.channels.clear();
        conn.ws.terminate();
      }
      connections.clear();
      countActive();
    },
    refuseJoins(reason: string | boolean = true) {
      refusal = reason === false ? undefined : reason === true ? DEFAULT_REFUSAL : reason;
    },
    until<T>(probe: (f: FakeRealtime) => T | undefined | null | false, what: string, timeoutMs = 10_000): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        const check = () => {
          const value = probe(fake);
          if (!value) return false;
          finish();
          resolve(value);
          return true;
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`fake-realtime: no ${what} within ${timeoutMs} ms (${JSON.stringify({ ...stats, notifications, changes: changes.length })})`));
        }, timeoutMs);
        const finish = () => {
          clearTimeout(timer);
          emitter.off('change', check);
        };
        if (check()) return;
        emitter.on('change', check);
      });
    },
    async close() {
      for (const conn of connections) conn.ws.terminate();
      connections.clear();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await pending;
      await listener.end().catch(() => {});
    },
  };
  return fake;
}
