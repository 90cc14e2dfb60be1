/**
 * Loopback Anthropic Messages API server for tests and benchmarks.
 *
 * Speaks the real wire format (POST /v1/messages, error bodies, anthropic-ratelimit-* headers, retry-after,
 * request-id) so the official `@anthropic-ai/sdk` runs end to end against it. It models what the worker's
 * Claude code depends on:
 * - prompt caching: the cacheable prefix is everything (tools, system blocks, then message blocks) up to and
 *   including the last block carrying `cache_control`, keyed by model + that prefix. With at least
 *   `minCacheTokens` tokens in it, a miss reports the prefix as `cache_creation_input_tokens` and a hit as
 *   `cache_read_input_tokens`; the rest of the prompt is `input_tokens`. As with the real API, an entry becomes
 *   readable only when the response that wrote it is sent, so parallel requests arriving before that all miss
 *   (and all pay for the write). Entries expire `cacheTtlMs` after their last use.
 * - deterministic token counts: ceil(chars / 4) per text, for input and output alike;
 * - default answers: for a request with `output_config.format` (a JSON schema), JSON text that validates
 *   against the schema, built from the request's own words; otherwise a short text from the user turn;
 * - per-minute rate limits (requests, input tokens, output tokens) with continuous refill, 429s with
 *   retry-after, and the rate-limit headers on every answer;
 * - scripted faults, one per request, and a log of every request.
 */
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { listenOn } from './listen.ts';

/** The API key the fake accepts unless given another. */
export const FAKE_ANTHROPIC_KEY = 'sk-ant-fake-0123456789abcdefghij';

/** One scripted fault; each answers the next request, in order. */
export type FakeAnthropicFault =
  /** An API error: 429 rate_limit_error, 529 overloaded_error, 401, 500, 400 (with `message`), or any other status. */
  | { status: number; type?: string; message?: string; retryAfterSec?: number; errorCode?: string; headers?: Record<string, string> }
  /** A 200 whose text is not valid JSON (truncated) or valid JSON of the wrong shape. */
  | { malformed: true; shape?: 'truncated' | 'wrong-shape' }
  /** A 200 with stop_reason 'refusal' and no text. */
  | { refusal: true }
  /** The connection is reset without an answer. */
  | { dropConnection: true }
  /** No answer at all, until the client gives up or close(). */
  | { hang: true }
  /** These exact bytes (e.g. a body that is not JSON), default status 200 and content type application/json. */
  | { rawBody: string; status?: number; contentType?: string };

/** The request body as the SDK sends it (loosely typed: the fake also has to accept bad ones). */
export interface FakeMessagesBody {
  model?: unknown;
  max_tokens?: unknown;
  system?: string | Array<{ type?: string; text?: string; cache_control?: unknown }>;
  messages?: Array<{ role?: string; content?: string | Array<Record<string, unknown>> }>;
  tools?: Array<Record<string, unknown>>;
  output_config?: { effort?: string; format?: { type?: string; schema?: Record<string, unknown> } };
  [key: string]: unknown;
}

/** What `respond` may return to replace the default answer (undefined: keep the default). */
export interface FakeAnswer {
  text?: string;
  /** Sent as JSON.stringify(json). */
  json?: unknown;
  stopReason?: string;
  /** The content blocks verbatim (e.g. a thinking block before the text); wins over text/json. */
  content?: Array<Record<string, unknown>>;
  /** Merged over the computed usage (e.g. null cache counts). */
  usage?: Record<string, unknown>;
}

export interface FakeAnthropicOptions {
  /** The accepted key, as x-api-key or `Authorization: Bearer` (default FAKE_ANTHROPIC_KEY). */
  apiKey?: string;
  /** Known models (default: any name starting with `claude-`); others get 404 not_found_error. */
  models?: readonly string[] | ((model: string) => boolean);
  /** Smallest cacheable prefix, in tokens (default 1024). */
  minCacheTokens?: number;
  /** A cache entry expires this long after its last use (default 300,000 ms). */
  cacheTtlMs?: number;
  /** Delay before each normal answer (default 0). */
  latencyMs?: number;
  respond?: (request: FakeMessagesBody) => FakeAnswer | undefined;
  /** Per-minute limits; unset means unlimited and no headers for that window. */
  rpm?: number;
  itpm?: number;
  otpm?: number;
  /** Bucket size as this many ms of allowance (default 60,000: a full minute's). */
  burstMs?: number;
  faults?: FakeAnthropicFault[];
  /** Milliseconds clock for the cache and the buckets (default performance.now); tests may pass a fake one. */
  clock?: () => number;
}

export interface FakeUsage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number | null;
  cache_read_input_tokens: number | null;
  cache_creation: { ephemeral_5m_input_tokens: number; ephemeral_1h_input_tokens: number } | null;
  [key: string]: unknown;
}

export interface FakeRequestLog {
  /** 1-based arrival number. */
  n: number;
  /** Arrival time, ms since the server started (by its clock). */
  at: number;
  /** The parsed JSON body (undefined when it did not parse). */
  body: FakeMessagesBody | undefined;
  headers: IncomingHttpHeaders;
  /** The HTTP status answered; null while pending, and for dropped or hung requests. */
  status: number | null;
  usage?: FakeUsage;
  /** What the prompt cache did for this request. */
  cache?: 'write' | 'read' | 'none';
  fault?: FakeAnthropicFault;
}

export interface FakeAnthropicCounters {
  requests: number;
  ok: number;
  rateLimited: number;
  /** Non-200, non-429 answers, dropped connections and raw bodies. */
  errors: number;
  cacheWrites: number;
  cacheReads: number;
  inputTokens: number;
  cacheWriteTokens: number;
  cacheReadTokens: number;
  outputTokens: number;
}

export interface FakeAnthropic {
  /** Base URL for `new Anthropic({ baseURL })` (the SDK appends /v1/messages). */
  readonly url: string;
  readonly requests: FakeRequestLog[];
  readonly counters: FakeAnthropicCounters;
  /** Emits 'request' (FakeRequestLog, on arrival) and 'response' (FakeRequestLog, once answered or dropped). */
  readonly events: EventEmitter;
  enqueue(...faults: FakeAnthropicFault[]): void;
  /** Holds every normal answer (after its latency) until release(); for making requests overlap. */
  hold(): void;
  release(): void;
  /** Resolves once n requests have arrived (or been answered) since start or reset(); rejects after timeoutMs (default 5 s). */
  waitForRequests(n: number, timeoutMs?: number): Promise<void>;
  waitForResponses(n: number, timeoutMs?: number): Promise<void>;
  /** Forgets requests, counters, faults and the cache; refills the buckets. */
  reset(): void;
  close(): Promise<void>;
}

// ---------- token counts and the prompt ----------

export function fakeTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/** One block of the prompt in cache order, with the identity the cache key hashes. */
interface PromptBlock {
  identity: string;
  text: string;
  cache: boolean;
}

function withoutCacheControl(block: Record<string, unknown>): Record<string, unknown> {
  const { cache_control: _ignored, ...rest } = block;
  return rest;
}

/** Tools, then system blocks, then message blocks: the order the API caches in. */
function promptBlocks(body: FakeMessagesBody): PromptBlock[] {
  const blocks: PromptBlock[] = [];
  for (const tool of body.tools ?? []) {
    const text = JSON.stringify(withoutCacheControl(tool));
    blocks.push({ identity: `tool:${text}`, text, cache: tool.cache_control != null });
  }
  if (typeof body.system === 'string') blocks.push({ identity: `system:${body.system}`, text: body.system, cache: false });
  else for (const b of body.system ?? []) {
    const text = typeof b.text === 'string' ? b.text : JSON.stringify(withoutCacheControl(b));
    blocks.push({ identity: `system:${text}`, text, cache: b.cache_control != null });
  }
  for (const m of body.messages ?? []) {
    const role = String(m.role);
    if (typeof m.content === 'string') blocks.push({ identity: `${role}:${m.content}`, text: m.content, cache: false });
    else for (const b of m.content ?? []) {
      const text = b.type === 'text' && typeof b.text === 'string' ? b.text : JSON.stringify(withoutCacheControl(b));
      blocks.push({ identity: `${role}:${b.type}:${text}`, text, cache: b.cache_control != null });
    }
  }
  return blocks;
}

/** The user turns' text and the system text, for building answers. */
function requestTexts(body: FakeMessagesBody): { user: string; system: string } {
  const user = (body.messages ?? [])
    .filter((m) => m.role === 'user')
    .map((m) => (typeof m.content === 'string' ? m.content : (m.content ?? []).map((b) => (typeof b.text === 'string' ? b.text : '')).join(' ')))
    .join(' ');
  const system = typeof body.system === 'string' ? body.system : (body.system ?? []).map((b) => b.text ?? '').join(' ');
  return { user, system };
}

// ---------- default answers ----------

function wordsOf(text: string): string[] {
  return text.match(/[\p{L}\p{N}][\p{L}\p{N}'’-]*/gu) ?? [];
}

/** Short phrases (three words each) from the user text, then the system text. */
function phrasesOf(user: string, system: string): string[] {
  const phrases: string[] = [];
  for (const words of [wordsOf(user), wordsOf(system)]) {
    for (let i = 0; i < words.length && phrases.length < 64; i += 3) phrases.push(words.slice(i, i + 3).join(' '));
  }
  return phrases.length > 0 ? phrases : ['no text given'];
}

interface SchemaContext {
  root: Record<string, unknown>;
  phrases: string[];
  next: number;
}

type Schema = Record<string, unknown>;

function resolveRef(root: Schema, ref: string): unknown {
  if (!ref.startsWith('#')) return {};
  let node: unknown = root;
  for (const raw of ref.slice(1).split('/').filter(Boolean)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    node = node && typeof node === 'object' ? (node as Schema)[key] : undefined;
  }
  return node ?? {};
}

function nextPhrase(ctx: SchemaContext): string {
  return ctx.phrases[ctx.next++ % ctx.phrases.length];
}

function exampleString(s: Schema, ctx: SchemaContext): string {
  const format = s.format;
  let text = format === 'date-time' ? '2026-01-01T00:00:00Z' : format === 'date' ? '2026-01-01' : format === 'time' ? '00:00:00Z'
    : format === 'email' ? 'someone@example.com' : format === 'uri' || format === 'url' ? 'https://example.com/' : format === 'uuid' ? '00000000-0000-4000-8000-000000000000'
    : nextPhrase(ctx);
  const min = typeof s.minLength === 'number' ? s.minLength : 0;
  while (text.length < min) text += ` ${nextPhrase(ctx)}`;
  if (typeof s.maxLength === 'number') text = text.slice(0, s.maxLength);
  return text;
}

function lowestNumber(s: Schema, integer: boolean): number {
  let v = 0;
  if (typeof s.minimum === 'number') v = s.exclusiveMinimum === true ? (integer ? Math.floor(s.minimum) + 1 : s.minimum + 1) : s.minimum;
  else if (typeof s.exclusiveMinimum === 'number') v = integer ? Math.floor(s.exclusiveMinimum) + 1 : s.exclusiveMinimum + 1;
  else if (typeof s.maximum === 'number' && s.maximum < 0) v = s.maximum;
  else if (typeof s.exclusiveMaximum === 'number' && s.exclusiveMaximum <= 0) v = s.exclusiveMaximum - 1;
  return integer ? Math.ceil(v) : v;
}

/**
 * A value that validates against the schema, deterministic for a given request: strings are phrases of the
 * request, arrays have two items (one for arrays of objects, more if minItems asks), numbers are 0 or the
 * lowest allowed, every listed property is present. Covers what zod's toJSONSchema and hand-written
 * structured-output schemas use ($ref/$defs, anyOf/oneOf/allOf, const, enum, nullable type lists).
 */
export function exampleFromSchema(schema: unknown, ctx: SchemaContext, depth = 0): unknown {
  if (schema === true || schema === undefined || schema === null || typeof schema !== 'object') return nextPhrase(ctx);
  const s = schema as Schema;
  if (typeof s.$ref === 'string') return exampleFromSchema(resolveRef(ctx.root, s.$ref), ctx, depth + 1);
  if ('const' in s) return s.const;
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[0];
  for (const key of ['anyOf', 'oneOf'] as const) {
    const options = s[key];
    if (Array.isArray(options) && options.length > 0) {
      const pick = options.find((o) => !(o && typeof o === 'object' && (o as Schema).type === 'null')) ?? options[0];
      return exampleFromSchema(pick, ctx, depth + 1);
    }
  }
  if (Array.isArray(s.allOf)) {
    const merged: Schema = { ...s, allOf: undefined, properties: {}, required: [] };
    for (const part of s.allOf as Schema[]) {
      const p = typeof part.$ref === 'string' ? (resolveRef(ctx.root, part.$ref) as Schema) : part;
      Object.assign(merged, { ...p, properties: { ...(merged.properties as Schema), ...((p.properties as Schema) ?? {}) } });
    }
    delete merged.allOf;
    return exampleFromSchema(merged, ctx, depth + 1);
  }
  let type = s.type;
  if (Array.isArray(type)) type = type.find((t) => t !== 'null') ?? 'null';
  if (type === undefined) type = s.properties ? 'object' : s.items ? 'array' : 'string';
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      const properties = (s.properties ?? {}) as Schema;
      const required = new Set(Array.isArray(s.required) ? (s.required as string[]) : []);
      // Deep down (a recursive schema), only what is required, so the value stays finite.
      for (const [name, sub] of Object.entries(properties)) if (depth < 8 || required.has(name)) out[name] = exampleFromSchema(sub, ctx, depth + 1);
      for (const name of required) if (!(name in out)) out[name] = nextPhrase(ctx);
      return out;
    }
    case 'array': {
      const items = Array.isArray(s.prefixItems) ? undefined : s.items;
      const itemType = items && typeof items === 'object' ? (items as Schema) : undefined;
      const objects = itemType?.type === 'object' || itemType?.properties !== undefined || itemType?.$ref !== undefined;
      const min = typeof s.minItems === 'number' ? s.minItems : 0;
      const max = typeof s.maxItems === 'number' ? s.maxItems : Infinity;
      const n = depth >= 8 ? min : Math.min(max, Math.max(min, objects ? 1 : 2));
      if (Array.isArray(s.prefixItems)) return (s.prefixItems as unknown[]).slice(0, Math.max(n, s.prefixItems.length)).map((p) => exampleFromSchema(p, ctx, depth + 1));
      return Array.from({ length: n }, () => exampleFromSchema(items, ctx, depth + 1));
    }
    case 'integer':
      return lowestNumber(s, true);
    case 'number':
      return lowestNumber(s, false);
    case 'boolean':
      return false;
    case 'null':
      return null;
    default:
      return exampleString(s, ctx);
  }
}

/** The default answer: schema-valid JSON for structured output, else "Context: <first words of the user turn>". */
function defaultAnswer(body: FakeMessagesBody): { text: string; json?: unknown } {
  const { user, system } = requestTexts(body);
  const schema = body.output_config?.format?.schema;
  if (body.output_config?.format?.type === 'json_schema' && schema && typeof schema === 'object') {
    const json = exampleFromSchema(schema, { root: schema, phrases: phrasesOf(user, system), next: 0 });
    return { text: JSON.stringify(json), json };
  }
  const words = wordsOf(user).slice(0, 12);
  return { text: `Context: ${words.length > 0 ? words.join(' ') : 'nothing to situate'}.` };
}

// ---------- rate limits ----------

/** A per-minute allowance refilling continuously, holding at most `burstMs` worth. */
class Bucket {
  readonly perMinute: number;
  readonly capacity: number;
  level: number;
  private at: number;
  constructor(perMinute: number, burstMs: number, now: number) {
    this.perMinute = perMinute;
    this.capacity = (perMinute * burstMs) / 60_000;
    this.level = this.capacity;
    this.at = now;
  }
  refill(now: number): void {
    this.level = Math.min(this.capacity, this.level + ((now - this.at) * this.perMinute) / 60_000);
    this.at = now;
  }
  waitMs(amount: number): number {
    return amount <= this.level ? 0 : ((amount - this.level) * 60_000) / this.perMinute;
  }
  fullInMs(): number {
    return ((this.capacity - this.level) * 60_000) / this.perMinute;
  }
}

/** RFC 3339 in whole seconds, as the API sends it ("2026-12-02T05:40:12Z"), rounded up. */
function rfc3339(epochMs: number): string {
  return new Date(Math.ceil(epochMs / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

// ---------- server ----------

const ERROR_DEFAULTS: Record<number, { type: string; message: string }> = {
  400: { type: 'invalid_request_error', message: 'Invalid request.' },
  401: { type: 'authentication_error', message: 'invalid x-api-key' },
  403: { type: 'permission_error', message: 'Your API key does not have permission to use the specified resource.' },
  404: { type: 'not_found_error', message: 'Not found.' },
  408: { type: 'timeout_error', message: 'Request timed out.' },
  409: { type: 'conflict_error', message: 'Conflict.' },
  413: { type: 'request_too_large', message: 'Request exceeds the maximum allowed number of bytes.' },
  422: { type: 'invalid_request_error', message: 'Unprocessable request.' },
  429: { type: 'rate_limit_error', message: 'This request would exceed the rate limit for your organization. Please try again later.' },
  500: { type: 'api_error', message: 'Internal server error' },
  502: { type: 'api_error', message: 'Bad gateway' },
  503: { type: 'api_error', message: 'Service unavailable' },
  504: { type: 'timeout_error', message: 'Gateway timeout' },
  529: { type: 'overloaded_error', message: 'Overloaded' },
};

function requestId(): string {
  return `req_${randomBytes(12).toString('hex')}`;
}

function zeroCounters(): FakeAnthropicCounters {
  return { requests: 0, ok: 0, rateLimited: 0, errors: 0, cacheWrites: 0, cacheReads: 0, inputTokens: 0, cacheWriteTokens: 0, cacheReadTokens: 0, outputTokens: 0 };
}

export async function startFakeAnthropic(options: FakeAnthropicOptions = {}): Promise<FakeAnthropic> {
  const apiKey = options.apiKey ?? FAKE_ANTHROPIC_KEY;
  const minCacheTokens = options.minCacheTokens ?? 1024;
  const cacheTtlMs = options.cacheTtlMs ?? 300_000;
  const clock = options.clock ?? (() => performance.now());
  const startedAt = clock();
  const events = new EventEmitter();
  events.setMaxListeners(0);
  const requests: FakeRequestLog[] = [];
  const counters = zeroCounters();
  const faults: FakeAnthropicFault[] = [...(options.faults ?? [])];
  /** Cache key → when the entry was last written or read (by `clock`). */
  const cache = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();
  let gate: { promise: Promise<void>; open: () => void } | undefined;
  let settled = 0;

  const burstMs = options.burstMs ?? 60_000;
  let buckets: Array<{ bucket: Bucket; header: string; what: string }> = [];
  const resetBuckets = (): void => {
    buckets = [];
    const now = clock();
    if (options.rpm) buckets.push({ bucket: new Bucket(options.rpm, burstMs, now), header: 'requests', what: 'requests' });
    if (options.itpm) buckets.push({ bucket: new Bucket(options.itpm, burstMs, now), header: 'input-tokens', what: 'input tokens' });
    if (options.otpm) buckets.push({ bucket: new Bucket(options.otpm, burstMs, now), header: 'output-tokens', what: 'output tokens' });
  };
  resetBuckets();

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, ms);
      timers.add(t);
    });

  function rateHeaders(): Record<string, string> {
    const h: Record<string, string> = {};
    const now = clock();
    for (const { bucket, header } of buckets) {
      bucket.refill(now);
      h[`anthropic-ratelimit-${header}-limit`] = String(bucket.perMinute);
      h[`anthropic-ratelimit-${header}-remaining`] = String(Math.max(0, Math.floor(bucket.level)));
      h[`anthropic-ratelimit-${header}-reset`] = rfc3339(Date.now() + bucket.fullInMs());
    }
    return h;
  }

  function finish(entry: FakeRequestLog, status: number | null): void {
    entry.status = status;
    if (status === 200) counters.ok++;
    else if (status === 429) counters.rateLimited++;
    else counters.errors++;
    settled++;
    events.emit('response', entry);
  }

  function send(res: ServerResponse, entry: FakeRequestLog | null, status: number, body: string | object, headers: Record<string, string> = {}): void {
    if (res.destroyed || res.writableEnded) {
      if (entry) finish(entry, null);
      return;
    }
    res.writeHead(status, { 'content-type': 'application/json', 'request-id': requestId(), ...headers });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
    if (entry) finish(entry, status);
  }

  function apiError(status: number, type?: string, message?: string, errorCode?: string): object {
    const d = ERROR_DEFAULTS[status] ?? { type: status >= 500 ? 'api_error' : 'invalid_request_error', message: `Error ${status}` };
    const error: Record<string, unknown> = { type: type ?? d.type, message: message ?? d.message };
    if (errorCode) error.details = { error_code: errorCode };
    return { type: 'error', error, request_id: requestId() };
  }

  function modelKnown(model: string): boolean {
    const m = options.models;
    if (typeof m === 'function') return m(model);
    if (m) return m.includes(model);
    return model.startsWith('claude-');
  }

  /** Answers a fault that replaces the whole exchange; false for those that only change the answer. */
  function answerFault(fault: FakeAnthropicFault, req: IncomingMessage, res: ServerResponse, entry: FakeRequestLog): boolean {
    if ('dropConnection' in fault) {
      req.socket.resetAndDestroy();
      finish(entry, null);
      return true;
    }
    if ('hang' in fault) return true;
    if ('rawBody' in fault) {
      send(res, entry, fault.status ?? 200, fault.rawBody, { 'content-type': fault.contentType ?? 'application/json', ...rateHeaders() });
      return true;
    }
    if ('status' in fault) {
      const headers = { ...rateHeaders(), ...(fault.retryAfterSec !== undefined ? { 'retry-after': String(fault.retryAfterSec) } : {}), ...fault.headers };
      send(res, entry, fault.status, apiError(fault.status, fault.type, fault.message, fault.errorCode), headers);
      return true;
    }
    return false;
  }

  /** The key as x-api-key, or as `Authorization: Bearer <key>` (how this SDK version sends an API key). */
  function authorized(req: IncomingMessage): boolean {
    const auth = req.headers.authorization;
    const given = req.headers['x-api-key'] ?? (typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice(7) : undefined);
    return given === apiKey;
  }

  function invalid(body: FakeMessagesBody | undefined): string | null {
    if (!body || typeof body !== 'object' || Array.isArray(body)) return 'The request body is not valid JSON.';
    if (typeof body.model !== 'string' || body.model === '') return 'model: Field required';
    if (!Number.isInteger(body.max_tokens) || (body.max_tokens as number) < 1) return 'max_tokens: Field required (a positive integer)';
    if (!Array.isArray(body.messages) || body.messages.length === 0) return 'messages: at least one message is required';
    const format = body.output_config?.format;
    if (format && (format.type !== 'json_schema' || !format.schema || typeof format.schema !== 'object')) return 'output_config.format: expected {type: "json_schema", schema}';
    const effort = body.output_config?.effort;
    if (effort !== undefined && !['low', 'medium', 'high', 'xhigh', 'max'].includes(effort)) return `output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'`;
    return null;
  }

  async function handleMessages(req: IncomingMessage, res: ServerResponse, raw: string): Promise<void> {
    let body: FakeMessagesBody | undefined;
    try {
      body = JSON.parse(raw) as FakeMessagesBody;
    } catch {
      body = undefined;
    }
    const entry: FakeRequestLog = { n: ++counters.requests, at: clock() - startedAt, body, headers: req.headers, status: null };
    requests.push(entry);
    events.emit('request', entry);

    const fault = faults.shift();
    if (fault) entry.fault = fault;
    if (fault && answerFault(fault, req, res, entry)) return;

    if (!authorized(req)) return send(res, entry, 401, apiError(401));
    const problem = invalid(body);
    if (problem || !body) return send(res, entry, 400, apiError(400, 'invalid_request_error', problem ?? undefined));
    const model = body.model as string;
    if (!modelKnown(model)) return send(res, entry, 404, apiError(404, 'not_found_error', `model: ${model}`));

    // The prompt cache, as it stands when the request arrives.
    const blocks = promptBlocks(body);
    const total = blocks.reduce((sum, b) => sum + fakeTokens(b.text), 0);
    const last = blocks.findLastIndex((b) => b.cache);
    const prefix = last < 0 ? 0 : blocks.slice(0, last + 1).reduce((sum, b) => sum + fakeTokens(b.text), 0);
    const cacheable = last >= 0 && prefix >= minCacheTokens;
    const key = cacheable ? createHash('sha256').update(JSON.stringify([model, ...blocks.slice(0, last + 1).map((b) => b.identity)])).digest('hex') : '';
    const seen = cacheable ? cache.get(key) : undefined;
    const hit = seen !== undefined && clock() - seen <= cacheTtlMs;
    entry.cache = !cacheable ? 'none' : hit ? 'read' : 'write';

    // The answer.
    let content: Array<Record<string, unknown>>;
    let stopReason = 'end_turn';
    let extraUsage: Record<string, unknown> = {};
    if (fault && 'refusal' in fault) {
      content = [];
      stopReason = 'refusal';
    } else {
      const fallback = defaultAnswer(body);
      const custom = fault && 'malformed' in fault ? undefined : options.respond?.(body);
      let text = custom?.json !== undefined ? JSON.stringify(custom.json) : custom?.text ?? fallback.text;
      if (fault && 'malformed' in fault) {
        text = fault.shape === 'wrong-shape' ? JSON.stringify({ unexpected: fallback.text.slice(0, 40) }) : text.slice(0, Math.max(1, Math.floor(text.length / 2)));
      }
      stopReason = custom?.stopReason ?? 'end_turn';
      extraUsage = custom?.usage ?? {};
      if (custom?.content) content = custom.content;
      else {
        const maxChars = (body.max_tokens as number) * 4;
        if (text.length > maxChars) [text, stopReason] = [text.slice(0, maxChars), 'max_tokens'];
        content = [{ type: 'text', text, citations: null }];
      }
    }
    const outputTokens = content.reduce((sum, b) => sum + fakeTokens(String(b.text ?? b.thinking ?? (b.type === 'text' ? '' : JSON.stringify(b)))), 0);
    const usage: FakeUsage = {
      input_tokens: cacheable ? total - prefix : total,
      output_tokens: outputTokens,
      cache_creation_input_tokens: cacheable && !hit ? prefix : 0,
      cache_read_input_tokens: cacheable && hit ? prefix : 0,
      cache_creation: { ephemeral_5m_input_tokens: cacheable && !hit ? prefix : 0, ephemeral_1h_input_tokens: 0 },
      ...extraUsage,
    };

    // Rate limits: admitted only if every bucket has room; uncached input and cache writes count as input.
    const now = clock();
    const needs: Record<string, number> = { requests: 1, 'input-tokens': usage.input_tokens + (usage.cache_creation_input_tokens ?? 0), 'output-tokens': outputTokens };
    let waitMs = 0;
    let short: (typeof buckets)[number] | undefined;
    for (const b of buckets) {
      b.bucket.refill(now);
      const wait = b.bucket.waitMs(needs[b.header]);
      if (wait > waitMs) [waitMs, short] = [wait, b];
    }
    if (short) {
      const message = `This request would exceed your organization's rate limit of ${short.bucket.perMinute} ${short.what} per minute. Please try again later.`;
      return send(res, entry, 429, apiError(429, 'rate_limit_error', message), { ...rateHeaders(), 'retry-after': String(Math.max(1, Math.ceil(waitMs / 1000))) });
    }
    for (const b of buckets) b.bucket.level -= needs[b.header];
    if (hit) cache.set(key, now);

    if (options.latencyMs) await sleep(options.latencyMs);
    if (gate) await gate.promise;
    // Written now, as the answer goes out: requests that arrived meanwhile have already missed.
    if (cacheable && !hit) cache.set(key, clock());
    entry.usage = usage;
    counters.inputTokens += usage.input_tokens;
    counters.outputTokens += usage.output_tokens;
    if (entry.cache === 'write') [counters.cacheWrites, counters.cacheWriteTokens] = [counters.cacheWrites + 1, counters.cacheWriteTokens + prefix];
    if (entry.cache === 'read') [counters.cacheReads, counters.cacheReadTokens] = [counters.cacheReads + 1, counters.cacheReadTokens + prefix];
    const message = { id: `msg_${randomBytes(12).toString('hex')}`, type: 'message', role: 'assistant', model, content, stop_reason: stopReason, stop_sequence: null, usage };
    send(res, entry, 200, message, rateHeaders());
  }

  /** POST /v1/messages/count_tokens: the same key, model and fault handling; answers the prompt's token count. */
  function handleCountTokens(req: IncomingMessage, res: ServerResponse, raw: string): void {
    let body: FakeMessagesBody | undefined;
    try {
      body = JSON.parse(raw) as FakeMessagesBody;
    } catch {
      body = undefined;
    }
    const entry: FakeRequestLog = { n: ++counters.requests, at: clock() - startedAt, body, headers: req.headers, status: null };
    requests.push(entry);
    events.emit('request', entry);
    const fault = faults.shift();
    if (fault) entry.fault = fault;
    if (fault && answerFault(fault, req, res, entry)) return;
    if (!authorized(req)) return send(res, entry, 401, apiError(401));
    if (!body || typeof body.model !== 'string' || !Array.isArray(body.messages)) return send(res, entry, 400, apiError(400, 'invalid_request_error', 'model and messages are required'));
    if (!modelKnown(body.model)) return send(res, entry, 404, apiError(404, 'not_found_error', `model: ${body.model}`));
    send(res, entry, 200, { input_tokens: promptBlocks(body).reduce((sum, b) => sum + fakeTokens(b.text), 0) });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/v1/messages/count_tokens' && req.method === 'POST') return handleCountTokens(req, res, Buffer.concat(chunks).toString('utf8'));
    if (path !== '/v1/messages') return send(res, null, 404, apiError(404, 'not_found_error', `Not found: ${req.method} ${path}`));
    if (req.method !== 'POST') return send(res, null, 405, apiError(405, 'invalid_request_error', `Method not allowed: ${req.method}`));
    await handleMessages(req, res, Buffer.concat(chunks).toString('utf8'));
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent && !res.destroyed) send(res, null, 500, apiError(500, 'api_error', `fake server bug: ${String(err)}`));
    });
  });
  const port = await listenOn(server);

  /** Resolves once `done()` holds, checked on every `event`; rejects after timeoutMs so a test cannot hang. */
  const waitFor = (event: string, done: () => boolean, what: string, timeoutMs: number): Promise<void> =>
    new Promise((resolve, reject) => {
      if (done()) return resolve();
      const check = (): void => {
        if (!done()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`fake-anthropic: no ${what} within ${timeoutMs} ms (${counters.requests} requests, ${settled} answered)`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        events.off(event, check);
      };
      events.on(event, check);
    });

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    counters,
    events,
    enqueue: (...more) => {
      faults.push(...more);
    },
    hold: () => {
      if (gate) return;
      let open!: () => void;
      const promise = new Promise<void>((resolve) => (open = resolve));
      gate = { promise, open };
    },
    release: () => {
      gate?.open();
      gate = undefined;
    },
    waitForRequests: (n, timeoutMs = 5_000) => waitFor('request', () => counters.requests >= n, `${n} requests`, timeoutMs),
    waitForResponses: (n, timeoutMs = 5_000) => waitFor('response', () => settled >= n, `${n} answers`, timeoutMs),
    reset: () => {
      requests.length = 0;
      Object.assign(counters, zeroCounters());
      faults.length = 0;
      cache.clear();
      settled = 0;
      resetBuckets();
    },
    close: async () => {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      gate?.open();
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await done;
    },
  };
}
