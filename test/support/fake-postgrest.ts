/**
 * Loopback stand-in for a Supabase project's REST endpoint (`<SUPABASE_URL>/rest/v1`), backed by a real PostgreSQL
 * database, so that `createClient(url, serviceKey).rpc(fn, args)` from `@supabase/supabase-js` runs end to end
 * against the real SQL functions of the rag-worker schema.
 *
 * It answers the way PostgREST 12 behind Supabase's API gateway does, for RPC only:
 *
 * - Gateway: the `apikey` header (or `?apikey=`) must be present (401 "No API key found in request") and equal to the
 *   service key (401 "Invalid API key"); bodies larger than `maxBodyBytes` get 413 {"message":"Payload too large"};
 *   paths outside /rest/v1 get 404 {"message":"no Route matched with those values"}. Gateway errors carry only
 *   `message` (and `hint`), no `code`.
 * - PostgREST: `Authorization: Bearer <serviceKey>` is required; another token gets 401 PGRST301 with the JWT
 *   library's message, and none at all runs as the anonymous role, which the rag schema grants nothing: 401 42501.
 *   `POST /rest/v1/rpc/<fn>` (and GET/HEAD with query parameters) finds the function in pg_proc the way PostgREST's
 *   schema cache does (by name and by the set of argument names; parameters with defaults may be left out; a single
 *   json/jsonb parameter takes the whole body when nothing else matches, or always with `Prefer: params=single-object`)
 *   and calls it with the same SQL shape: the JSON body is turned into typed arguments by json_to_record, so a JSON
 *   array becomes a PostgreSQL array, a jsonb argument gets the JSON value as is, and a vector argument accepts a JSON
 *   array or its text form '[1,2,3]'; each argument is passed in named notation. A volatile function runs in a
 *   read-write transaction, a stable or immutable one (and any GET) in a read-only one.
 * - Results: a set of rows or a table → a JSON array of objects; a set of scalars → a JSON array of values; one
 *   composite → an object; a scalar → the bare JSON value (`3`, `"queued"`, `null`); `returns void` → 204 with no
 *   body and no Content-Type. Content-Type is `application/json; charset=utf-8`, with Content-Range as PostgREST
 *   sends it (`0-<n-1>/*`, or `/<n>` with `Prefer: count=exact`).
 * - Errors: `{"code","message","details","hint"}` with the HTTP status PostgREST derives from the SQLSTATE
 *   (`pgrstStatusForSqlState`); PostgREST's own errors (PGRST202 unknown function, PGRST203 ambiguous overload,
 *   PGRST102 invalid body, PGRST106 schema, PGRST101 method); a database that cannot be reached → 503 PGRST000, a
 *   connection lost mid-request → 503 PGRST001, every 503 with `Retry-After: 0`.
 *
 * Unlike PostgREST it serves no tables or views, no filters, `select` or ranges on RPC results (a request that uses
 * them gets 400 naming what is unsupported), reads pg_proc on every request (no schema cache to reload), and runs
 * as the connection's own role (there is no `set role` to service_role). Supabase does not document a limit on the
 * size of a REST request body; the 8 MiB default here is an assumption, to be overridden by tests that care.
 *
 * `fail(...)` scripts the answers to the next requests (one fault per request, in order, before any other check),
 * e.g. `{ status: 503 }` (PGRST000 with Retry-After: 0), `{ status: 500, code: 'XX000', message: '...' }`,
 * `{ status: 401 }` (PGRST301), or `{ dropConnection: true }` (the socket is destroyed once the body is read).
 */
import { Buffer } from 'node:buffer';
import { STATUS_CODES, createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import pg from 'pg';
import { listenOn } from './listen.ts';

export interface FakePostgrestOptions {
  databaseUrl: string;
  serviceKey: string;
  /** largest request body accepted (bytes); larger → 413. Default 8 MiB. */
  maxBodyBytes?: number;
}

export type FakePostgrestFault = { status: number; code?: string; message?: string } | { dropConnection: true };

export interface FakePostgrestRequest {
  /** The function named by /rest/v1/rpc/<fn>; '' for any other path. */
  fn: string;
  /** HTTP status answered; 0 when the connection was dropped. */
  status: number;
  /** Request body size in bytes. */
  bytes: number;
  /** Arrival time (Date.now()). */
  at: number;
}

export interface FakePostgrest {
  /** e.g. http://127.0.0.1:PORT — the SUPABASE_URL. */
  url: string;
  /** Every request answered, in the order answered. */
  requests: FakePostgrestRequest[];
  /** Answer the next requests with these, one each, in order. */
  fail(...faults: FakePostgrestFault[]): void;
  close(): Promise<void>;
}

export const DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024;

/** The one schema served (Content-Profile / Accept-Profile other than this → 406 PGRST106). */
const SCHEMA = 'public';

const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/** What PostgREST 12 answers for its own error codes when a scripted fault gives none of its own. */
const PGRST_MESSAGES: Record<string, { message: string; details: string | null }> = {
  PGRST000: {
    message: 'Database connection error. Retrying the connection.',
    details: 'connection to server at "127.0.0.1", port 5432 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?\n',
  },
  PGRST001: { message: 'Database client error. Retrying the connection.', details: 'server closed the connection unexpectedly' },
  PGRST002: { message: 'Could not query the database for the schema cache. Retrying.', details: null },
  PGRST003: { message: 'Timed out acquiring connection from connection pool.', details: null },
  PGRST301: { message: 'JWSError JWSInvalidSignature', details: null },
  PGRST302: { message: 'Anonymous access is disabled', details: null },
};

/** The gateway's own bodies for the statuses it answers itself. */
const GATEWAY_MESSAGES: Record<number, string> = {
  400: 'Bad request',
  404: 'Not found',
  405: 'Method not allowed',
  408: 'Request timeout',
  413: 'Payload too large',
  414: 'URI too long',
  500: 'An unexpected error occurred',
  502: 'An invalid response was received from the upstream server',
  503: 'The upstream server is currently unavailable',
  504: 'The upstream server is timing out',
};

/**
 * The HTTP status PostgREST 12 answers for a PostgreSQL error with this SQLSTATE. `authenticated`: whether the
 * request carried a JWT (42501 is 403 then, 401 for the anonymous role).
 */
export function pgrstStatusForSqlState(code: string, message = '', authenticated = true): number {
  const two = code.slice(0, 2);
  if (two === '08') return 503; // connection exception
  if (two === '09') return 500; // triggered action exception
  if (two === '0L' || two === '0P') return 403; // invalid grantor, invalid role specification
  if (code === '23503' || code === '23505') return 409; // foreign key, unique violation
  if (code === '25006') return 405; // read_only_sql_transaction
  if (code === '21000') return message.endsWith('requires a WHERE clause') ? 400 : 500; // cardinality_violation
  if (two === '25' || two === '2D' || two === '38' || two === '39' || two === '3B' || two === '40') return 500;
  if (two === '28') return 403; // invalid authorization specification
  if (code === '53400') return 500; // configuration limit exceeded
  if (two === '53') return 503; // insufficient resources (53300 too many connections, ...)
  if (two === '54' || two === '55') return 500;
  if (code === '57P01') return 503; // terminating connection due to administrator command
  if (two === '57' || two === '58' || two === 'F0' || two === 'HV') return 500;
  if (code === 'P0001') return 400; // raise exception without errcode
  if (two === 'P0' || two === 'XX') return 500;
  if (code === '42883') return message.startsWith('function xmlagg(') ? 406 : 404; // undefined function
  if (code === '42P01') return 404; // undefined table
  if (code === '42P17') return 500; // infinite recursion
  if (code === '42501') return authenticated ? 403 : 401; // insufficient privilege
  if (two === 'PT') {
    const n = Number(code.slice(2));
    return Number.isInteger(n) && n >= 100 && n <= 599 ? n : 500;
  }
  return 400; // every other SQLSTATE, custom ones (e.g. RW001) included
}

interface RoutineParam {
  name: string;
  type: string;
  required: boolean;
  variadic: boolean;
}

interface Routine {
  name: string;
  params: RoutineParam[];
  volatility: 'i' | 's' | 'v';
  returnsSet: boolean;
  returnsComposite: boolean;
  returnsVoid: boolean;
}

interface Answer {
  status: number;
  statusText?: string;
  headers?: Record<string, string>;
  /** undefined: no body (and no Content-Type). */
  body?: string;
}

interface ErrorBody {
  code: string;
  message: string;
  details: string | null;
  hint: string | null;
}

function pgrstError(status: number, body: ErrorBody, headers: Record<string, string> = {}): Answer {
  const extra: Record<string, string> = { ...headers };
  if (status === 401 && !extra['WWW-Authenticate']) extra['WWW-Authenticate'] = 'Bearer';
  if (status === 503) extra['Retry-After'] = '0';
  return { status, headers: { 'Content-Type': JSON_CONTENT_TYPE, ...extra }, body: JSON.stringify(body) };
}

function gatewayError(status: number, message: string, hint?: string, statusText?: string): Answer {
  const body: Record<string, string> = { message };
  if (hint !== undefined) body.hint = hint;
  return { status, statusText, headers: { 'Content-Type': JSON_CONTENT_TYPE }, body: JSON.stringify(body) };
}

function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The JWT library's message for a token that is not the service key. */
function jwtErrorMessage(token: string): string {
  const parts = token.split('.').length;
  if (parts !== 3) return `JWSError (CompactDecodeError Invalid number of parts: Expected 3 parts; got ${parts})`;
  return 'JWSError JWSInvalidSignature';
}

/** The claims PostgREST would expose as request.jwt.claims: the key's payload when it is a JWT. */
function claimsOf(token: string): string {
  const parts = token.split('.');
  if (parts.length === 3) {
    try {
      const payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
      if (payload && typeof payload === 'object' && !Array.isArray(payload)) return JSON.stringify(payload);
    } catch {
      // not a JWT: fall through
    }
  }
  return JSON.stringify({ role: 'service_role' });
}

function parsePrefer(header: string | string[] | undefined): Map<string, string> {
  const prefs = new Map<string, string>();
  const values = Array.isArray(header) ? header : header ? [header] : [];
  for (const value of values) {
    for (const item of value.split(',')) {
      const [k, v = ''] = item.trim().split('=', 2);
      if (k) prefs.set(k.trim(), v.trim());
    }
  }
  return prefs;
}

const ROUTINES_SQL = `
select p.proname as name, p.provolatile as volatility, p.proretset as returns_set,
       p.prorettype = 'pg_catalog.void'::regtype as returns_void,
       (coalesce(bt.typtype, rt.typtype) = 'c'
        or (p.prorettype = 'pg_catalog.record'::regtype
            and coalesce(p.proargmodes, '{}'::"char"[]) && array['o', 'b', 't']::"char"[])) as returns_composite,
       p.pronargs as nargs, p.pronargdefaults as ndefaults,
       coalesce((select json_agg(json_build_object('name', coalesce(a.name, ''), 'type', format_type(a.type, null), 'mode', a.mode)
                                 order by a.pos)
                   from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]),
                               coalesce(p.proargmodes, array_fill('i'::"char", array[p.pronargs])),
                               coalesce(p.proargnames, array_fill(null::text, array[cardinality(coalesce(p.proallargtypes, p.proargtypes::oid[]))])))
                        with ordinality as a(type, mode, name, pos)), '[]'::json) as args
  from pg_catalog.pg_proc p
  join pg_catalog.pg_type rt on rt.oid = p.prorettype
  left join pg_catalog.pg_type bt on rt.typtype = 'd' and bt.oid = rt.typbasetype
 where p.pronamespace = $1::regnamespace and p.proname = $2 and p.prokind = 'f'`;

interface RoutineRow {
  name: string;
  volatility: 'i' | 's' | 'v';
  returns_set: boolean;
  returns_void: boolean;
  returns_composite: boolean;
  nargs: number;
  ndefaults: number;
  args: { name: string; type: string; mode: string }[];
}

function toRoutine(row: RoutineRow): Routine {
  const inArgs = row.args.filter((a) => a.mode === 'i' || a.mode === 'b' || a.mode === 'v');
  const firstDefault = row.nargs - row.ndefaults;
  return {
    name: row.name,
    volatility: row.volatility,
    returnsSet: row.returns_set,
    returnsComposite: row.returns_composite,
    returnsVoid: row.returns_void,
    params: inArgs.map((a, i) => ({ name: a.name, type: a.type, required: i < firstDefault, variadic: a.mode === 'v' })),
  };
}

type Resolution =
  | { kind: 'named'; routine: Routine; given: RoutineParam[] }
  | { kind: 'single'; routine: Routine }
  | { kind: 'error'; answer: Answer };

function setsEqual(a: Set<string>, b: Set<string>): boolean {
  return a.size === b.size && [...a].every((x) => b.has(x));
}

/** PostgREST's overload resolution: by argument names, then the single json/jsonb parameter fallback. */
function resolve(routines: Routine[], fn: string, keys: Set<string>, singleObject: boolean, isPost: boolean): Resolution {
  const isJsonType = (t: string) => t === 'json' || t === 'jsonb';
  const matches = (r: Routine): boolean => {
    if (singleObject) return r.params.length === 1 && isJsonType(r.params[0].type);
    if (r.params.length === 0) return keys.size === 0;
    const required = new Set(r.params.filter((p) => p.required).map((p) => p.name));
    const optional = new Set(r.params.filter((p) => !p.required).map((p) => p.name));
    const rest = new Set([...keys].filter((k) => !optional.has(k)));
    return setsEqual(rest, required);
  };
  const named = routines.filter(matches);
  const fallback = routines.filter((r) => !matches(r) && isPost && r.params.length === 1 && isJsonType(r.params[0].type));
  if (named.length === 1) {
    const routine = named[0];
    if (singleObject) return { kind: 'single', routine };
    return { kind: 'named', routine, given: routine.params.filter((p) => keys.has(p.name)) };
  }
  if (named.length === 0 && fallback.length === 1) return { kind: 'single', routine: fallback[0] };
  const candidates = named.length > 1 ? named : fallback;
  if (candidates.length > 1) {
    const list = candidates
      .map((r) => `${SCHEMA}.${r.name}(${r.params.map((p) => `${p.name} => ${p.type}`).join(', ')})`)
      .join(', ');
    return {
      kind: 'error',
      answer: pgrstError(300, {
        code: 'PGRST203',
        message: `Could not choose the best candidate function between: ${list}`,
        details: null,
        hint: 'Try renaming the parameters or the function itself in the database so function overloading can be resolved',
      }),
    };
  }
  const func = `${SCHEMA}.${fn}`;
  const args = [...keys].sort();
  const argList = args.join(', ');
  const withParams = args.length === 0 ? ' without parameters' : ` with parameter${args.length > 1 ? 's' : ''} ${argList}`;
  const message = singleObject
    ? `Could not find the function ${func} in the schema cache`
    : `Could not find the function ${func}${args.length === 0 ? ' without parameters' : `(${argList})`} in the schema cache`;
  const details = singleObject
    ? `Searched for the function ${func} with a single json/jsonb parameter, but no matches were found in the schema cache.`
    : `Searched for the function ${func}${withParams}${isPost ? ' or with a single unnamed json/jsonb parameter' : ''}, but no matches were found in the schema cache.`;
  let hint: string | null = null;
  if (!singleObject && routines.length > 0) {
    const sorted = [...routines[0].params.map((p) => p.name)].sort();
    hint = `Perhaps you meant to call the function ${func}(${sorted.join(', ')})`;
  }
  return { kind: 'error', answer: pgrstError(404, { code: 'PGRST202', message, details, hint }) };
}

/**
 * The statement PostgREST 12 runs for a call: the function in FROM, fed by json_to_record(set) over the body, and
 * the result aggregated to JSON text in the same statement.
 */
function callStatement(resolution: Exclude<Resolution, { kind: 'error' }>, bodyIsArray: boolean): { sql: string; usesBody: boolean } {
  const r = resolution.routine;
  const qi = `${ident(SCHEMA)}.${ident(r.name)}`;
  const scalarish = !r.returnsComposite;
  const callIt = (argument: string) =>
    scalarish ? `(SELECT ${qi}(${argument}) pgrst_scalar) pgrst_call` : `${qi}(${argument}) pgrst_call`;
  let from: string;
  let usesBody = true;
  if (resolution.kind === 'single') {
    from = `FROM ${callIt(`$1::${r.params[0].type}`)}`;
  } else if (resolution.given.length === 0) {
    from = `FROM ${callIt('')}`;
    usesBody = false;
  } else {
    const given = resolution.given;
    const cols = given.map((p) => ident(p.name)).join(', ');
    const typed = given.map((p) => `${ident(p.name)} ${p.type}`).join(', ');
    const args = given.map((p) => `${p.variadic ? 'VARIADIC ' : ''}${ident(p.name)} := pgrst_body.${ident(p.name)}`).join(', ');
    const toRecord = bodyIsArray ? 'json_to_recordset' : 'json_to_record';
    from =
      `FROM (SELECT $1::json AS json_data) pgrst_payload, ` +
      `LATERAL (SELECT ${cols} FROM ${toRecord}(pgrst_payload.json_data) AS _(${typed}) LIMIT 1) pgrst_body, ` +
      `LATERAL ${callIt(args)}`;
  }
  const select = scalarish ? 'pgrst_call.pgrst_scalar' : 'pgrst_call.*';
  const single = !r.returnsSet;
  let agg: string;
  if (single && r.returnsComposite) agg = `coalesce(json_agg(_postgrest_t)->0, 'null')`;
  else if (single) agg = `coalesce(json_agg(_postgrest_t.pgrst_scalar)->0, 'null')`;
  else if (scalarish) agg = `coalesce(json_agg(_postgrest_t.pgrst_scalar), '[]')`;
  else agg = `coalesce(json_agg(_postgrest_t), '[]')`;
  const sql =
    `WITH pgrst_source AS (SELECT ${select} ${from}) ` +
    `SELECT ${single ? '1' : 'pg_catalog.count(_postgrest_t)'}::int AS page_total, ${agg}::text AS body ` +
    `FROM (SELECT * FROM pgrst_source) _postgrest_t`;
  return { sql, usesBody };
}

function isDatabaseError(e: unknown): e is pg.DatabaseError {
  return e instanceof pg.DatabaseError || (typeof e === 'object' && e !== null && 'severity' in e && typeof (e as { code?: unknown }).code === 'string');
}

function connectionDetails(databaseUrl: string, e: unknown): string {
  let where = 'server';
  try {
    const u = new URL(databaseUrl);
    where = `server at "${u.hostname}", port ${u.port || '5432'}`;
  } catch {
    // keep the generic wording
  }
  const reason = e instanceof Error ? e.message : String(e);
  return `connection to ${where} failed: ${reason}\n`;
}

const FILTER_VALUE = /^(not\.)?(eq|neq|gt|gte|lt|lte|like|ilike|match|imatch|in|is|isdistinct|fts|plfts|phfts|wfts|cs|cd|ov|sl|sr|nxr|nxl|adj|all|any)(\([^)]*\))?\./;
const RESERVED_KEY = /(^|\.)(select|columns|on_conflict|order|limit|offset|and|or)$/;

export async function startFakePostgrest(options: FakePostgrestOptions): Promise<FakePostgrest> {
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const pool = new pg.Pool({ connectionString: options.databaseUrl, max: 10 });
  // An idle connection the server closes (restart, pg_terminate_backend) must not crash the test process.
  pool.on('error', () => {});
  const faults: FakePostgrestFault[] = [];
  const requests: FakePostgrestRequest[] = [];

  async function callRoutine(
    req: IncomingMessage,
    fn: string,
    method: 'GET' | 'HEAD' | 'POST',
    body: Buffer,
    query: URLSearchParams,
    authenticated: boolean,
    token: string,
  ): Promise<Answer> {
    const prefs = parsePrefer(req.headers.prefer);
    const singleObject = prefs.get('params') === 'single-object';
    const countPref = prefs.get('count');
    const isPost = method === 'POST';

    // Arguments: the JSON body for POST, the query string for GET/HEAD.
    let payload: string;
    let keys: Set<string>;
    let bodyIsArray = false;
    const unsupported = [...query.entries()].filter(
      ([k, v]) => (k === 'select' ? v !== '*' : RESERVED_KEY.test(k)) || (!isPost && FILTER_VALUE.test(v)) || (isPost && k !== 'select'),
    );
    if (unsupported.length > 0) {
      return pgrstError(400, {
        code: 'PGRST100',
        message: `fake-postgrest does not support query parameters on RPC: ${unsupported.map(([k, v]) => `${k}=${v}`).join('&')}`,
        details: 'Only the function arguments (GET/HEAD) are understood; filters, select, order, limit and offset are not.',
        hint: null,
      });
    }
    if (isPost) {
      const contentType = (req.headers['content-type'] ?? 'application/json').split(';')[0].trim().toLowerCase();
      if (contentType !== 'application/json') {
        return pgrstError(400, { code: 'PGRST102', message: `Content-Type not acceptable: ${contentType}`, details: null, hint: null });
      }
      const text = body.length === 0 ? '{}' : body.toString('utf8');
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        return pgrstError(400, { code: 'PGRST102', message: 'Empty or invalid json', details: null, hint: null });
      }
      if (singleObject) {
        keys = new Set();
      } else if (Array.isArray(parsed)) {
        bodyIsArray = true;
        const first = parsed[0];
        if (first === undefined) keys = new Set();
        else if (first === null || typeof first !== 'object' || Array.isArray(first)) {
          return pgrstError(400, { code: 'PGRST102', message: 'All object keys must match', details: null, hint: null });
        } else {
          keys = new Set(Object.keys(first));
          const uniform = parsed.every(
            (o) => o !== null && typeof o === 'object' && !Array.isArray(o) && setsEqual(new Set(Object.keys(o)), keys),
          );
          if (!uniform) return pgrstError(400, { code: 'PGRST102', message: 'All object keys must match', details: null, hint: null });
        }
      } else if (parsed !== null && typeof parsed === 'object') {
        keys = new Set(Object.keys(parsed));
      } else {
        keys = new Set();
        bodyIsArray = true;
      }
      payload = text;
    } else {
      const args: Record<string, string | string[]> = {};
      for (const [k, v] of query.entries()) {
        if (k === 'select') continue;
        const prev = args[k];
        args[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
      }
      keys = new Set(Object.keys(args));
      payload = JSON.stringify(args);
    }

    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (e) {
      return pgrstError(503, {
        code: 'PGRST000',
        message: 'Database connection error. Retrying the connection.',
        details: connectionDetails(options.databaseUrl, e),
        hint: null,
      });
    }
    let broken: Error | undefined;
    let inTransaction = false;
    try {
      const rows = (await client.query<RoutineRow>(ROUTINES_SQL, [SCHEMA, fn])).rows;
      const routines = rows.map(toRoutine);
      const resolution = resolve(routines, fn, keys, singleObject, isPost);
      if (resolution.kind === 'error') return resolution.answer;
      // GET arguments are strings; a variadic parameter given once is still an array.
      if (!isPost && resolution.kind === 'named') {
        const args = JSON.parse(payload) as Record<string, unknown>;
        for (const p of resolution.given) if (p.variadic && !Array.isArray(args[p.name])) args[p.name] = [args[p.name]];
        payload = JSON.stringify(args);
      }
      const routine = resolution.routine;
      if (!authenticated) {
        // The anonymous role: the rag schema grants it nothing (rag_apply_privileges), so PostgreSQL refuses.
        return pgrstError(401, { code: '42501', message: `permission denied for function ${fn}`, details: null, hint: null });
      }
      const readOnly = !isPost || routine.volatility !== 'v';
      const { sql, usesBody } = callStatement(resolution, bodyIsArray);
      await client.query(`BEGIN ISOLATION LEVEL READ COMMITTED ${readOnly ? 'READ ONLY' : 'READ WRITE'}`);
      inTransaction = true;
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (k !== 'cookie' && v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      await client.query(
        `select set_config('request.jwt.claims', $1, true), set_config('request.method', $2, true),
                set_config('request.path', $3, true), set_config('request.headers', $4, true)`,
        [claimsOf(token), method, `/rpc/${fn}`, JSON.stringify(headers)],
      );
      const result = await client.query<{ page_total: number; body: string }>(sql, usesBody ? [payload] : []);
      await client.query('COMMIT');
      inTransaction = false;
      const row = result.rows[0] ?? { page_total: 0, body: routine.returnsSet ? '[]' : 'null' };
      const n = Number(row.page_total);
      const total = countPref === 'exact' || countPref === 'planned' || countPref === 'estimated' ? String(n) : '*';
      const answerHeaders: Record<string, string> = { 'Content-Range': n > 0 ? `0-${n - 1}/${total}` : `*/${total}` };
      const applied = [singleObject ? 'params=single-object' : '', total !== '*' ? `count=${countPref}` : ''].filter(Boolean);
      if (applied.length > 0) answerHeaders['Preference-Applied'] = applied.join(', ');
      if (routine.returnsVoid) return { status: 204, headers: answerHeaders };
      answerHeaders['Content-Type'] = JSON_CONTENT_TYPE;
      if (req.headers['content-profile'] || req.headers['accept-profile']) answerHeaders['Content-Profile'] = SCHEMA;
      return { status: 200, headers: answerHeaders, body: method === 'HEAD' ? undefined : row.body };
    } catch (e) {
      if (inTransaction) await client.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
      if (isDatabaseError(e)) {
        const code = e.code ?? 'XX000';
        if (code === '57P01' || code.startsWith('08')) broken = e;
        if (code === 'PGRST') return raisedPgrst(e);
        const status = pgrstStatusForSqlState(code, e.message, authenticated);
        const answer = pgrstError(status, { code, message: e.message, details: e.detail ?? null, hint: e.hint ?? null });
        if (code.startsWith('PT')) answer.statusText = e.message;
        return answer;
      }
      broken = e instanceof Error ? e : new Error(String(e));
      return pgrstError(503, {
        code: 'PGRST001',
        message: 'Database client error. Retrying the connection.',
        details: broken.message,
        hint: null,
      });
    } finally {
      client.release(broken);
    }
  }

  /** `raise sqlstate 'PGRST' using message = '{"code":..}', detail = '{"status":..,"headers":{..}}'`: full control. */
  function raisedPgrst(e: pg.DatabaseError): Answer {
    try {
      const m = JSON.parse(e.message) as { code: string; message: string; details?: string; hint?: string };
      const d = JSON.parse(e.detail ?? '') as { status: number; status_text?: string; headers: Record<string, string> };
      if (typeof m.code !== 'string' || typeof m.message !== 'string' || typeof d.status !== 'number' || typeof d.headers !== 'object') throw new Error('shape');
      const answer = pgrstError(d.status, { code: m.code, message: m.message, details: m.details ?? null, hint: m.hint ?? null }, d.headers);
      if (d.status_text) answer.statusText = d.status_text;
      return answer;
    } catch {
      return pgrstError(500, {
        code: 'PGRST121',
        message: "Could not parse JSON in the \"RAISE SQLSTATE 'PGRST'\" error",
        details: `Invalid JSON value for MESSAGE: '${e.message}'`,
        hint: 'MESSAGE must be a JSON object with obligatory keys: \'code\', \'message\' and optional keys: \'details\', \'hint\'.',
      });
    }
  }

  function faultAnswer(fault: { status: number; code?: string; message?: string }): Answer {
    const { status } = fault;
    const code = fault.code ?? (status === 503 ? 'PGRST000' : status === 401 ? 'PGRST301' : undefined);
    if (code === undefined) return gatewayError(status, fault.message ?? GATEWAY_MESSAGES[status] ?? `The upstream server responded with ${status}`);
    const known = PGRST_MESSAGES[code];
    const message = fault.message ?? known?.message ?? STATUS_CODES[status] ?? 'error';
    const headers: Record<string, string> = {};
    if (status === 401 && code === 'PGRST301') {
      headers['WWW-Authenticate'] = `Bearer error="invalid_token", error_description=${JSON.stringify(message)}`;
    }
    return pgrstError(status, { code, message, details: fault.message === undefined ? (known?.details ?? null) : null, hint: null }, headers);
  }

  async function route(req: IncomingMessage, url: URL, body: Buffer): Promise<Answer> {
    if (!url.pathname.startsWith('/rest/v1/') && url.pathname !== '/rest/v1') {
      return gatewayError(404, 'no Route matched with those values');
    }
    // Gateway: the API key.
    const apikey = (req.headers.apikey as string | undefined) ?? url.searchParams.get('apikey') ?? undefined;
    if (!apikey) return gatewayError(401, 'No API key found in request', 'No `apikey` request header or url param was found.');
    if (apikey !== options.serviceKey) {
      return gatewayError(401, 'Invalid API key', 'Double check your Supabase `anon` or `service_role` API key.');
    }
    url.searchParams.delete('apikey');
    // PostgREST: the JWT.
    const authorization = req.headers.authorization;
    let authenticated = false;
    let token = '';
    if (authorization !== undefined) {
      const m = /^Bearer\s+(.*)$/i.exec(authorization.trim());
      token = m ? m[1].trim() : '';
      if (token !== options.serviceKey) {
        const message = jwtErrorMessage(token);
        return pgrstError(
          401,
          { code: 'PGRST301', message, details: null, hint: null },
          { 'WWW-Authenticate': `Bearer error="invalid_token", error_description=${JSON.stringify(message)}` },
        );
      }
      authenticated = true;
    }
    const method = req.method ?? 'GET';
    const profile = (method === 'GET' || method === 'HEAD' ? req.headers['accept-profile'] : req.headers['content-profile']) as string | undefined;
    if (profile !== undefined && profile !== SCHEMA) {
      return pgrstError(406, { code: 'PGRST106', message: `The schema must be one of the following: ${SCHEMA}`, details: null, hint: null });
    }
    const rpc = /^\/rest\/v1\/rpc\/([^/]+)$/.exec(url.pathname);
    if (!rpc) {
      return pgrstError(404, {
        code: 'PGRST_FAKE',
        message: `fake-postgrest serves only /rest/v1/rpc/<function>, not ${url.pathname}`,
        details: null,
        hint: null,
      });
    }
    const fn = decodeURIComponent(rpc[1]);
    if (method !== 'POST' && method !== 'GET' && method !== 'HEAD') {
      return pgrstError(405, { code: 'PGRST101', message: `Cannot use the ${method} method on RPC`, details: null, hint: null });
    }
    return callRoutine(req, fn, method, body, url.searchParams, authenticated, token);
  }

  function send(res: ServerResponse, answer: Answer): void {
    res.statusCode = answer.status;
    const text = answer.statusText?.replace(/[^\t\x20-\x7e]/g, ' ');
    if (text) res.statusMessage = text;
    for (const [k, v] of Object.entries(answer.headers ?? {})) res.setHeader(k, v);
    if (answer.body === undefined) {
      res.end();
    } else {
      res.setHeader('Content-Length', Buffer.byteLength(answer.body));
      res.end(answer.body);
    }
  }

  const server = createServer((req, res) => {
    const at = Date.now();
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const rpc = /^\/rest\/v1\/rpc\/([^/]+)$/.exec(url.pathname);
    let fn = '';
    if (rpc) {
      try {
        fn = decodeURIComponent(rpc[1]);
      } catch {
        fn = rpc[1];
      }
    }
    const chunks: Buffer[] = [];
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      // Past the limit the rest is read and dropped, so the client finishes sending and reads the 413.
      if (bytes <= maxBodyBytes) chunks.push(chunk);
    });
    req.on('error', () => res.destroy());
    req.on('end', () => {
      const log = (status: number) => requests.push({ fn, status, bytes, at });
      const fault = faults.shift();
      if (fault && 'dropConnection' in fault) {
        log(0);
        req.socket.destroy();
        return;
      }
      let answering: Promise<Answer>;
      if (fault) answering = Promise.resolve(faultAnswer(fault));
      else if (bytes > maxBodyBytes) answering = Promise.resolve(gatewayError(413, 'Payload too large', undefined, 'Request Entity Too Large'));
      else answering = route(req, url, Buffer.concat(chunks));
      answering
        .catch((e: unknown) =>
          pgrstError(500, { code: 'XX000', message: `fake-postgrest: ${e instanceof Error ? e.message : String(e)}`, details: null, hint: null }),
        )
        .then((answer) => {
          if (answer.status === 413) res.setHeader('Connection', 'close');
          log(answer.status);
          send(res, answer);
        });
    });
  });

  const port = await listenOn(server);

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    fail(...more: FakePostgrestFault[]) {
      faults.push(...more);
    },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await pool.end();
    },
  };
}
