/**
 * Loopback OpenAI-compatible embeddings server for tests and benchmarks.
 * Speaks the real wire format (errors, rate-limit headers, base64 float32 vectors) so the official
 * `openai` SDK is exercised end to end. Run as a script for benches: see `runCli` at the bottom.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { mulberry32 } from './prng.ts';
import { listenOn } from './listen.ts';

type Headers = Record<string, string>;
type Body = string | object;

export type FaultAction =
  | { status: 500 | 502 | 503; body?: Body; headers?: Headers }
  | { status: 429; retryAfterMs?: number; headers?: Headers; body?: Body }
  | { status: 400; message: string }
  | { status: 401 }
  | { kind: 'hang' } // never answer; close() or the client's timeout ends it
  | { kind: 'delay'; ms: number } // wait, then process normally
  | { kind: 'reset' } // TCP reset, no response
  | { kind: 'malformed' } // 200 with a truncated JSON body
  | { kind: 'wrong-dimensions'; dims: number } // 200 with vectors of `dims` floats
  | { kind: 'broken-data'; how: BrokenData }; // 200 whose data breaks the contract

/** Ways a buggy OpenAI-compatible server breaks the embeddings contract. */
export type BrokenData = 'duplicate-index' | 'missing-index' | 'out-of-range-index' | 'zero-vector' | 'one-too-few';

export type FaultHook = (req: RecordedRequest, n: number) => FaultAction | null | undefined;

export type RequestOutcome = 'pending' | 'ok' | 'rate_limited' | 'error' | 'malformed' | 'reset' | 'hung' | 'aborted';

export interface RecordedRequest {
  /** 1-based arrival number since start or reset(). */
  n: number;
  /** The x-request-id sent back. */
  id: string;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** Parsed JSON body, undefined when it did not parse. */
  body: unknown;
  model: string | undefined;
  /** The input as a list: strings, or token arrays. */
  inputs: Array<string | number[]>;
  /** As sent by the client: the SDK sends 'base64' unless the caller chose one. */
  encodingFormat: string | undefined;
  dimensions: number | undefined;
  tokens: number;
  fault: FaultAction | null;
  /** HTTP status answered; null while pending and for hang/reset/aborted. */
  status: number | null;
  outcome: RequestOutcome;
}

export interface FakeOpenAIStats {
  requests: number;
  ok: number;
  rateLimited: number;
  /** Non-200, non-429 answers, malformed 200s and resets. */
  errors: number;
  /** Inputs and tokens embedded by ok answers. */
  inputs: number;
  tokens: number;
  hung: number;
  aborted: number;
}

export interface FakeOpenAIOptions {
  port?: number;
  host?: string;
  /** When set, `Authorization: Bearer <apiKey>` is required (401 invalid_api_key otherwise). */
  apiKey?: string;
  /** Vector length when the request has no `dimensions` (default 1536). */
  dimensions?: number;
  /** Largest `dimensions` a request may ask for (default 3072). */
  maxDimensions?: number;
  /** Allowed models (default: anything starting with `text-embedding-`); others get 404 model_not_found. */
  models?: readonly string[] | ((model: string) => boolean);
  /** Default: ceil(chars / 4), at least 1. Token arrays count their length. */
  countTokens?: (s: string) => number;
  maxInputs?: number; // 2048
  maxInputTokens?: number; // 8192
  maxRequestTokens?: number; // 300000
  rateLimit?: { rpm?: number; tpm?: number };
  latency?: { baseMs?: number; perKTokensMs?: number };
  /** Scripted actions, one consumed per request in order; null = no fault for that request. */
  faults?: Array<FaultAction | null>;
  onRequest?: FaultHook;
  /** Probability of a random fault from `randomFaults`, drawn from a PRNG seeded with `seed`. */
  faultRate?: number;
  seed?: number;
  randomFaults?: FaultAction[];
  /** Milliseconds clock for the rate-limit buckets (default performance.now); pass a fake one in tests. */
  clock?: () => number;
  /** Keep every request in `requests` (default true); benches may turn it off to save memory. */
  record?: boolean;
}

export interface FakeOpenAI {
  /** Base URL ending in /v1, for `new OpenAI({ baseURL })`. */
  readonly url: string;
  readonly port: number;
  readonly requests: RecordedRequest[];
  /** Emits 'request' (RecordedRequest, on arrival) and 'response' (RecordedRequest, when settled). */
  readonly events: EventEmitter;
  onRequest: FaultHook | undefined;
  pushFaults(...actions: Array<FaultAction | null>): void;
  stats(): FakeOpenAIStats;
  /** Clears recordings, counters and the fault queue; refills the rate-limit buckets. */
  reset(): void;
  waitForRequests(n: number, timeoutMs?: number): Promise<void>;
  waitForResponses(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export const DEFAULT_RANDOM_FAULTS: readonly FaultAction[] = [
  { status: 500 }, { status: 502 }, { status: 503 }, { status: 429, retryAfterMs: 1000 }, { kind: 'reset' },
];

// ---------- pure helpers ----------

function fnv1a(s: string, seed: number): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h;
}

/**
 * Deterministic embedding: lowercase word tokens hashed into `dims` signed buckets, L2-normalised,
 * rounded to float32 (so float and base64 answers decode to exactly these numbers).
 */
export function fakeEmbedding(text: string, dims: number): number[] {
  const v = new Float64Array(dims);
  const words = text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [text];
  for (const w of words) {
    const sign = fnv1a(w, 0x9747b28c) & 1 ? -1 : 1;
    v[fnv1a(w, 2166136261) % dims] += sign;
  }
  let norm = 0;
  for (const x of v) norm += x * x;
  norm = Math.sqrt(norm);
  if (norm === 0) { v[0] = 1; norm = 1; }
  return Array.from(v, (x) => Math.fround(x / norm));
}

export function encodeBase64Float32(vector: readonly number[]): string {
  const view = new DataView(new ArrayBuffer(vector.length * 4));
  vector.forEach((x, i) => view.setFloat32(i * 4, x, true));
  return Buffer.from(view.buffer).toString('base64');
}

/** Go time.Duration style, as in OpenAI's x-ratelimit-reset-* headers: 0s, 12ms, 1.2s, 6m0s, 1h0m0s. */
export function formatGoDuration(ms: number): string {
  if (!(ms > 0)) return '0s';
  const total = Math.ceil(ms);
  if (total < 1000) return `${total}ms`;
  const h = Math.floor(total / 3_600_000);
  const m = Math.floor((total % 3_600_000) / 60_000);
  const s = ((total % 60_000) / 1000).toFixed(3).replace(/\.?0+$/, '');
  return `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${s}s`;
}

/** Quotes part of a key the way the real API does: short keys whole, long ones as prefix***suffix. */
export function quoteApiKey(key: string): string {
  return key.length < 12 ? key : `${key.slice(0, 8)}${'*'.repeat(Math.min(key.length - 12, 40))}${key.slice(-4)}`;
}

/** An onRequest hook failing every request with an input containing `substring`. */
export function failInputContaining(substring: string, status: 400 | 500 | 502 | 503 = 400): FaultHook {
  return (req) => {
    const i = req.inputs.findIndex((x) => typeof x === 'string' && x.includes(substring));
    if (i < 0) return undefined;
    if (status !== 400) return { status };
    return { status: 400, message: `Invalid 'input[${i}]': rejected by the fake server (contains ${JSON.stringify(substring)}).` };
  };
}


function apiError(message: string, type: string, param: string | null = null, code: string | null = null): object {
  return { error: { message, type, param, code } };
}

class Bucket {
  readonly limit: number;
  level: number;
  at: number;
  constructor(limit: number, now: number) { this.limit = limit; this.level = limit; this.at = now; }
  refill(now: number): void {
    this.level = Math.min(this.limit, this.level + ((now - this.at) * this.limit) / 60_000);
    this.at = now;
  }
  msUntil(amount: number): number { return amount <= this.level ? 0 : ((amount - this.level) * 60_000) / this.limit; }
  used(): number { return Math.round(this.limit - this.level); }
}

// ---------- request parsing and validation ----------

interface Problem { status: number; body: object }

function normalizeInput(input: unknown): Array<string | number[]> | null {
  if (typeof input === 'string') return [input];
  if (!Array.isArray(input)) return null;
  if (input.length > 0 && input.every((x) => typeof x === 'number')) return [input as number[]];
  const ok = input.every((x) => typeof x === 'string' || (Array.isArray(x) && x.every((t) => Number.isInteger(t))));
  return ok ? (input as Array<string | number[]>) : null;
}

function modelAllowed(models: FakeOpenAIOptions['models'], model: string): boolean {
  if (typeof models === 'function') return models(model);
  if (models) return models.includes(model);
  return model.startsWith('text-embedding-');
}

function validate(rec: RecordedRequest, o: Required<Pick<FakeOpenAIOptions, 'maxInputs' | 'maxInputTokens' | 'maxRequestTokens' | 'maxDimensions'>> & FakeOpenAIOptions, countOne: (x: string | number[]) => number): Problem | null {
  const bad = (message: string, param: string | null = null): Problem => ({ status: 400, body: apiError(message, 'invalid_request_error', param) });
  const body = rec.body as Record<string, unknown> | undefined;
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    return bad("We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)");
  }
  if (typeof body.model !== 'string' || body.model === '') return bad('you must provide a model parameter');
  if (!modelAllowed(o.models, body.model)) {
    return { status: 404, body: apiError(`The model \`${body.model}\` does not exist or you do not have access to it.`, 'invalid_request_error', null, 'model_not_found') };
  }
  if (body.input === undefined) return bad("'input' is a required property", 'input');
  const inputs = normalizeInput(body.input);
  if (!inputs) return bad("'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.", 'input');
  if (inputs.length === 0) return bad("Invalid 'input': empty array. Expected an array with minimum length 1.", 'input');
  if (inputs.length > o.maxInputs) return bad(`Invalid 'input': array too long. Expected an array with maximum length ${o.maxInputs}, but got an array with length ${inputs.length} instead.`, 'input');
  const empty = inputs.findIndex((x) => x.length === 0);
  if (empty >= 0) return bad(`Invalid 'input[${empty}]': empty ${typeof inputs[empty] === 'string' ? 'string' : 'token array'}. Expected a non-empty value.`, 'input');
  const fmt = body.encoding_format;
  if (fmt !== undefined && fmt !== 'float' && fmt !== 'base64') return bad(`'${String(fmt)}' is not one of ['float', 'base64'] - 'encoding_format'`, 'encoding_format');
  const dims = body.dimensions;
  if (dims !== undefined) {
    if (body.model === 'text-embedding-ada-002') return bad('This model does not support specifying dimensions.', 'dimensions');
    if (!Number.isInteger(dims) || (dims as number) < 1 || (dims as number) > o.maxDimensions) return bad(`Invalid 'dimensions': expected an integer between 1 and ${o.maxDimensions}, got ${JSON.stringify(dims)}.`, 'dimensions');
  }
  for (const x of inputs) {
    const t = countOne(x);
    if (t > o.maxInputTokens) return bad(`This model's maximum context length is ${o.maxInputTokens} tokens, however you requested ${t} tokens (${t} in your prompt; 0 for the completion). Please reduce your prompt; or completion length.`);
  }
  if (rec.tokens > o.maxRequestTokens) return bad(`Requested ${rec.tokens} tokens, max ${o.maxRequestTokens} tokens per request`, 'input');
  return null;
}

// ---------- server ----------

const EMBEDDINGS_PATHS = new Set(['/v1/embeddings', '/embeddings']);
const MALFORMED = '{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0123,';
const BAD_GATEWAY = '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n';
const SERVER_ERROR: Record<number, object> = {
  500: apiError('The server had an error while processing your request. Sorry about that!', 'server_error'),
  503: apiError('The engine is currently overloaded, please try again later.', 'server_error'),
};

export async function startFakeOpenAI(options: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  const o = {
    ...options,
    maxInputs: options.maxInputs ?? 2048,
    maxInputTokens: options.maxInputTokens ?? 8192,
    maxRequestTokens: options.maxRequestTokens ?? 300_000,
    maxDimensions: options.maxDimensions ?? 3072,
  };
  const defaultDims = o.dimensions ?? 1536;
  const clock = o.clock ?? (() => performance.now());
  const countTokens = o.countTokens ?? ((s: string) => Math.max(1, Math.ceil(s.length / 4)));
  const countOne = (x: string | number[]): number => (typeof x === 'string' ? countTokens(x) : x.length);
  const rng = mulberry32(o.seed ?? 1);
  const randomFaults = o.randomFaults ?? DEFAULT_RANDOM_FAULTS;
  const events = new EventEmitter();
  events.setMaxListeners(0);
  const timers = new Set<NodeJS.Timeout>();
  const requests: RecordedRequest[] = [];
  let faultQueue: Array<FaultAction | null> = [...(o.faults ?? [])];
  let counters = zeroStats();
  let settled = 0;
  let rpm: Bucket | undefined;
  let tpm: Bucket | undefined;
  const resetBuckets = (): void => {
    rpm = o.rateLimit?.rpm ? new Bucket(o.rateLimit.rpm, clock()) : undefined;
    tpm = o.rateLimit?.tpm ? new Bucket(o.rateLimit.tpm, clock()) : undefined;
  };
  resetBuckets();
  let closed = false;

  const sleep = (ms: number): Promise<void> => new Promise((resolve) => {
    const t = setTimeout(() => { timers.delete(t); resolve(); }, ms);
    timers.add(t);
  });

  function rateHeaders(): Headers {
    const h: Headers = {};
    for (const [b, kind] of [[rpm, 'requests'], [tpm, 'tokens']] as const) {
      if (!b) continue;
      h[`x-ratelimit-limit-${kind}`] = String(b.limit);
      h[`x-ratelimit-remaining-${kind}`] = String(Math.max(0, Math.floor(b.level)));
      h[`x-ratelimit-reset-${kind}`] = formatGoDuration(((b.limit - b.level) * 60_000) / b.limit);
    }
    return h;
  }

  function retryHeaders(ms: number): Headers {
    return { 'retry-after': String(Math.max(1, Math.ceil(ms / 1000))), 'retry-after-ms': String(Math.ceil(ms)) };
  }

  /** Admits or rejects by the rate limits; consumes only when admitted. */
  function admit(rec: RecordedRequest): Problem & { headers: Headers } | null {
    const now = clock();
    rpm?.refill(now);
    tpm?.refill(now);
    const where = `${rec.model} in organization org-fake`;
    const visit = 'Visit https://platform.openai.com/account/rate-limits to learn more.';
    if (tpm && rec.tokens > tpm.limit) {
      const message = `Request too large for ${where} on tokens per min (TPM): Limit ${tpm.limit}, Requested ${rec.tokens}. The input or output tokens must be reduced in order to run successfully. ${visit}`;
      return { status: 429, body: apiError(message, 'tokens', null, 'rate_limit_exceeded'), headers: rateHeaders() };
    }
    for (const [b, need, kind, label] of [[rpm, 1, 'requests', 'requests per min (RPM)'], [tpm, rec.tokens, 'tokens', 'tokens per min (TPM)']] as const) {
      const wait = b?.msUntil(need) ?? 0;
      if (b && wait > 0) {
        const message = `Rate limit reached for ${where} on ${label}: Limit ${b.limit}, Used ${b.used()}, Requested ${need}. Please try again in ${formatGoDuration(wait)}. ${visit}`;
        return { status: 429, body: apiError(message, kind, null, 'rate_limit_exceeded'), headers: { ...rateHeaders(), ...retryHeaders(wait) } };
      }
    }
    if (rpm) rpm.level -= 1;
    if (tpm) tpm.level -= rec.tokens;
    return null;
  }

  function settle(rec: RecordedRequest, status: number | null, outcome: RequestOutcome): void {
    rec.status = status;
    rec.outcome = outcome;
    settled++;
    if (outcome === 'ok') { counters.ok++; counters.inputs += rec.inputs.length; counters.tokens += rec.tokens; }
    else if (outcome === 'rate_limited') counters.rateLimited++;
    else if (outcome === 'hung' || outcome === 'aborted') counters[outcome]++;
    else counters.errors++;
    events.emit('response', rec);
  }

  function send(res: ServerResponse, rec: RecordedRequest | null, status: number, body: Body, headers: Headers, started: number, outcome?: RequestOutcome): void {
    if (res.destroyed || res.writableEnded) { if (rec) settle(rec, null, 'aborted'); return; }
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    const type = typeof body === 'string' && text.startsWith('<') ? 'text/html' : 'application/json';
    res.writeHead(status, {
      'content-type': type, 'openai-version': '2020-10-01', 'x-request-id': rec?.id ?? requestId(),
      'openai-processing-ms': String(Math.round(performance.now() - started)), ...headers,
    });
    res.end(text);
    if (rec) settle(rec, status, outcome ?? (status === 200 ? 'ok' : status === 429 ? 'rate_limited' : 'error'));
  }

  function nextFault(rec: RecordedRequest): FaultAction | null {
    const scripted = faultQueue.shift();
    if (scripted) return scripted;
    const hooked = api.onRequest?.(rec, rec.n);
    if (hooked) return hooked;
    if (o.faultRate && rng() < o.faultRate) return randomFaults[Math.floor(rng() * randomFaults.length)] ?? null;
    return null;
  }

  function authProblem(rec: RecordedRequest, force = false): Problem | null {
    const auth = rec.headers.authorization ?? '';
    const key = auth.startsWith('Bearer ') ? auth.slice(7) : '';
    if (!force && (o.apiKey === undefined || key === o.apiKey)) return null;
    const message = key
      ? `Incorrect API key provided: ${quoteApiKey(key)}. You can find your API key at https://platform.openai.com/account/api-keys.`
      : "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).";
    return { status: 401, body: apiError(message, 'invalid_request_error', null, key ? 'invalid_api_key' : null) };
  }

  /** Answers a terminal fault; returns false for modifiers (delay, wrong-dimensions, malformed). */
  function applyTerminalFault(f: FaultAction, req: IncomingMessage, res: ServerResponse, rec: RecordedRequest, started: number): boolean {
    if ('kind' in f) {
      if (f.kind === 'hang') { settle(rec, null, 'hung'); return true; }
      if (f.kind === 'reset') { req.socket.resetAndDestroy(); settle(rec, null, 'reset'); return true; }
      return false;
    }
    if (f.status === 401) { send(res, rec, 401, authProblem(rec, true)?.body ?? {}, {}, started); return true; }
    if (f.status === 400) { send(res, rec, 400, apiError(f.message, 'invalid_request_error'), {}, started); return true; }
    if (f.status === 429) {
      const message = `Rate limit reached for ${rec.model} in organization org-fake on requests per min (RPM). Please try again later.`;
      const retry = f.retryAfterMs === undefined ? {} : retryHeaders(f.retryAfterMs);
      send(res, rec, 429, f.body ?? apiError(message, 'requests', null, 'rate_limit_exceeded'), { ...rateHeaders(), ...retry, ...f.headers }, started);
      return true;
    }
    send(res, rec, f.status, f.body ?? SERVER_ERROR[f.status] ?? BAD_GATEWAY, f.headers ?? {}, started);
    return true;
  }

  async function handleEmbeddings(req: IncomingMessage, res: ServerResponse, raw: string, started: number): Promise<void> {
    let body: unknown;
    try { body = JSON.parse(raw); } catch { body = undefined; }
    const b = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
    const inputs = normalizeInput(b.input) ?? [];
    const rec: RecordedRequest = {
      n: ++counters.requests, id: requestId(), method: req.method ?? '', path: req.url ?? '', headers: req.headers, body,
      model: typeof b.model === 'string' ? b.model : undefined, inputs,
      encodingFormat: typeof b.encoding_format === 'string' ? b.encoding_format : undefined,
      dimensions: typeof b.dimensions === 'number' ? b.dimensions : undefined,
      tokens: inputs.reduce((sum, x) => sum + countOne(x), 0), fault: null, status: null, outcome: 'pending',
    };
    if (o.record !== false) requests.push(rec);
    events.emit('request', rec);
    const fault = (rec.fault = nextFault(rec));
    if (fault && applyTerminalFault(fault, req, res, rec, started)) return;
    if (fault && 'kind' in fault && fault.kind === 'delay') await sleep(fault.ms);
    const problem = authProblem(rec) ?? validate(rec, o, countOne);
    if (problem) return send(res, rec, problem.status, problem.body, rateHeaders(), started);
    const limited = admit(rec);
    if (limited) return send(res, rec, limited.status, limited.body, limited.headers, started);
    const headers = rateHeaders();
    const latency = (o.latency?.baseMs ?? 0) + ((o.latency?.perKTokensMs ?? 0) * rec.tokens) / 1000;
    if (latency > 0) await sleep(latency);
    if (fault && 'kind' in fault && fault.kind === 'malformed') return send(res, rec, 200, MALFORMED, headers, started, 'malformed');
    const dims = fault && 'kind' in fault && fault.kind === 'wrong-dimensions' ? fault.dims : rec.dimensions ?? defaultDims;
    const base64 = rec.encodingFormat === 'base64';
    const data = rec.inputs.map((x, index) => {
      const vector = fakeEmbedding(typeof x === 'string' ? x : x.join(' '), dims);
      return { object: 'embedding', index, embedding: base64 ? encodeBase64Float32(vector) : vector };
    });
    if (fault && 'kind' in fault && fault.kind === 'broken-data') breakData(data, fault.how, dims);
    const usage = { prompt_tokens: rec.tokens, total_tokens: rec.tokens };
    send(res, rec, 200, { object: 'list', data, model: rec.model, usage }, { ...headers, 'openai-model': rec.model ?? '' }, started);
  }

  function breakData(data: { index?: number; embedding: unknown }[], how: BrokenData, dims: number): void {
    const last = data[data.length - 1];
    if (how === 'duplicate-index') last.index = 0;
    else if (how === 'missing-index') delete last.index;
    else if (how === 'out-of-range-index') last.index = data.length + 5;
    else if (how === 'one-too-few') data.pop();
    else last.embedding = typeof last.embedding === 'string' ? encodeBase64Float32(new Array(dims).fill(0)) : new Array(dims).fill(0);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/__fake/stats' && req.method === 'GET') return send(res, null, 200, api.stats(), {}, started);
    if (!EMBEDDINGS_PATHS.has(path) || req.method !== 'POST') {
      return send(res, null, EMBEDDINGS_PATHS.has(path) ? 405 : 404, apiError(`Invalid URL (${req.method} ${path})`, 'invalid_request_error'), {}, started);
    }
    await handleEmbeddings(req, res, Buffer.concat(chunks).toString('utf8'), started);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent && !res.destroyed) send(res, null, 500, apiError(`fake server bug: ${String(err)}`, 'server_error'), {}, performance.now());
    });
  });
  server.keepAliveTimeout = 5_000;
  const port = await listenOn(server, o.port ?? 0, o.host ?? '127.0.0.1');

  function waitUntil(event: string, done: () => boolean, what: string, timeoutMs: number): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => { if (done()) { cleanup(); resolve(); } };
      const onClose = (): void => { cleanup(); reject(new Error(`fake-openai closed while waiting for ${what}`)); };
      const timer = setTimeout(() => { cleanup(); reject(new Error(`fake-openai: timed out after ${timeoutMs}ms waiting for ${what} (have ${counters.requests} requests, ${settled} settled)`)); }, timeoutMs);
      const cleanup = (): void => { clearTimeout(timer); events.off(event, check); events.off('close', onClose); };
      events.on(event, check);
      events.once('close', onClose);
    });
  }

  const api: FakeOpenAI = {
    url: `http://${o.host ?? '127.0.0.1'}:${port}/v1`,
    port,
    requests,
    events,
    onRequest: o.onRequest,
    pushFaults: (...actions) => { faultQueue.push(...actions); },
    stats: () => ({ ...counters }),
    reset: () => { requests.length = 0; counters = zeroStats(); settled = 0; faultQueue = []; resetBuckets(); },
    waitForRequests: (n, timeoutMs = 5_000) => waitUntil('request', () => counters.requests >= n, `${n} requests`, timeoutMs),
    waitForResponses: (n, timeoutMs = 5_000) => waitUntil('response', () => settled >= n, `${n} settled requests`, timeoutMs),
    close: async () => {
      if (closed) return;
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      events.emit('close');
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections(); // hanging and keep-alive sockets included
      await done;
    },
  };
  return api;
}

function zeroStats(): FakeOpenAIStats {
  return { requests: 0, ok: 0, rateLimited: 0, errors: 0, inputs: 0, tokens: 0, hung: 0, aborted: 0 };
}

function requestId(): string {
  return `req_${randomBytes(16).toString('hex')}`;
}

// ---------- CLI (benches run it as a separate process) ----------

async function runCli(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '0' }, host: { type: 'string', default: '127.0.0.1' },
      rpm: { type: 'string' }, tpm: { type: 'string' }, 'base-ms': { type: 'string' }, 'per-k-tokens-ms': { type: 'string' },
      'fault-rate': { type: 'string' }, seed: { type: 'string' }, dimensions: { type: 'string' }, 'api-key': { type: 'string' },
    },
  });
  const num = (name: keyof typeof values): number | undefined => {
    const raw = values[name];
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0) throw new Error(`fake-openai: --${name} must be a non-negative number, got ${JSON.stringify(raw)}`);
    return n;
  };
  const server = await startFakeOpenAI({
    port: num('port'), host: values.host, apiKey: values['api-key'], dimensions: num('dimensions'), record: false,
    rateLimit: { rpm: num('rpm'), tpm: num('tpm') },
    latency: { baseMs: num('base-ms'), perKTokensMs: num('per-k-tokens-ms') },
    faultRate: num('fault-rate'), seed: num('seed'),
  });
  process.stdout.write(`${JSON.stringify({ url: server.url, port: server.port })}\n`);
  const stop = (): void => {
    void server.close().then(() => { process.stdout.write(`${JSON.stringify({ stats: server.stats() })}\n`); process.exit(0); });
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

function isMain(): boolean {
  try {
    return process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href;
  } catch {
    return false;
  }
}
if (isMain()) {
  runCli(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  });
}
