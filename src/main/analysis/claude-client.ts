/**
 * A thin wrapper over the official Anthropic SDK: one non-streaming Messages API call per send(), its text,
 * usage and rate-limit headers, and every failure classified into the worker's error types.
 * SDK retries are off: pacing and retries belong to the Claude scheduler, which needs every 429 and header.
 */
import Anthropic from '@anthropic-ai/sdk';
import { parseAnthropicRateLimit, type AnthropicRateLimit, type LimitWindow } from '../../shared/anthropic-rate-limit.ts';
import {
  BadInputError,
  ProviderResponseError,
  ProviderUnavailableError,
  RateLimitError,
  WorkerFatalError,
  type RateLimitScope,
} from '../../shared/errors.ts';
import { headerGetter, type RateLimitSnapshot } from '../../shared/rate-limit-headers.ts';
import { redact, redactUrlCredentials } from '../../shared/redact.ts';

export interface ClaudeUsage {
  /** Input tokens neither written to nor read from the prompt cache. */
  inputTokens: number;
  cacheWriteTokens: number;
  cacheReadTokens: number;
  outputTokens: number;
}

export interface ClaudeSystemBlock {
  text: string;
  /** Mark this block as a prompt-cache breakpoint (cache_control: ephemeral). */
  cache?: boolean;
}

export interface ClaudeRequest {
  model: string;
  system: ClaudeSystemBlock[];
  /** The single user turn. */
  user: string;
  maxTokens: number;
  /** output_config.effort; not sent when undefined. */
  effort?: 'low' | 'medium' | 'high';
  /** Structured output: output_config.format = { type: 'json_schema', schema }. */
  jsonSchema?: Record<string, unknown>;
}

export interface ClaudeResponse {
  /** The text content blocks joined, in order (thinking and other blocks are left out). */
  text: string;
  stopReason: string | null;
  usage: ClaudeUsage;
  rateLimit: AnthropicRateLimit;
  /** The model that answered, as the API names it. */
  model: string;
}

export interface ClaudeClient {
  /** The configured base URL (ANTHROPIC_BASE_URL), if any. */
  readonly baseURL?: string;
  send(request: ClaudeRequest, signal?: AbortSignal): Promise<ClaudeResponse>;
}

export interface ClaudeClientOptions {
  apiKey: string;
  baseURL?: string;
  timeoutMs: number;
}

const DEFAULT_BASE_URL = 'https://api.anthropic.com';

/** A 429 from the Claude API, with every limit the response reported. */
export class ClaudeRateLimitError extends RateLimitError {
  readonly limits: AnthropicRateLimit;
  constructor(
    message: string,
    options: { cause?: unknown; retryAfterMs?: number; status?: number; scope?: RateLimitScope; limits: AnthropicRateLimit; requestTooLarge?: boolean },
  ) {
    super(message, { ...options, rateLimit: toSnapshot(options.limits) });
    this.limits = options.limits;
  }
}

/**
 * The limits in the provider-neutral shape RateLimitError carries: the requests window, and the token window
 * that is exhausted (else input tokens, else the combined tokens window, else output tokens).
 */
function toSnapshot(limits: AnthropicRateLimit): RateLimitSnapshot {
  const tokenWindows = [limits.inputTokens, limits.tokens, limits.outputTokens].filter((w): w is LimitWindow => w !== undefined);
  const tokens = tokenWindows.find((w) => w.remaining === 0) ?? tokenWindows[0];
  const snapshot: RateLimitSnapshot = {
    limitRequests: limits.requests?.limit,
    remainingRequests: limits.requests?.remaining,
    resetRequestsMs: limits.requests?.resetMs,
    limitTokens: tokens?.limit,
    remainingTokens: tokens?.remaining,
    resetTokensMs: tokens?.resetMs,
    retryAfterMs: limits.retryAfterMs,
  };
  for (const key of Object.keys(snapshot) as (keyof RateLimitSnapshot)[]) {
    if (snapshot[key] === undefined) delete snapshot[key];
  }
  return snapshot;
}

function sdkClient(options: ClaudeClientOptions): { client: Anthropic; mapOptions: { baseURL?: string; apiKey: string } } {
  const client = new Anthropic({ apiKey: options.apiKey, baseURL: options.baseURL, maxRetries: 0, timeout: options.timeoutMs });
  // The SDK falls back to ANTHROPIC_BASE_URL from the environment; name whichever it uses in messages.
  const baseURL = options.baseURL ?? (client.baseURL && client.baseURL !== DEFAULT_BASE_URL ? client.baseURL : undefined);
  return { client, mapOptions: { baseURL, apiKey: options.apiKey } };
}

/**
 * Counts the tokens of a one-word prompt for `model` (POST /v1/messages/count_tokens): proves that the key,
 * the base URL and the model work, and costs nothing. Failures are classified as for send().
 */
export async function countClaudeTokens(options: ClaudeClientOptions, model: string, signal?: AbortSignal): Promise<number> {
  const { client, mapOptions } = sdkClient(options);
  let data: unknown;
  try {
    data = await client.messages.countTokens({ model, messages: [{ role: 'user', content: 'ping' }] }, { signal });
  } catch (error) {
    throw mapAnthropicError(error, { model, ...mapOptions });
  }
  const tokens = (data as { input_tokens?: unknown } | null)?.input_tokens;
  if (typeof tokens !== 'number' || !Number.isFinite(tokens)) throw new ProviderResponseError('Claude token count malformed: no input_tokens');
  return tokens;
}

export function createClaudeClient(options: ClaudeClientOptions): ClaudeClient {
  const { client, mapOptions } = sdkClient(options);

  return {
    baseURL: options.baseURL,
    async send(request: ClaudeRequest, signal?: AbortSignal): Promise<ClaudeResponse> {
      const outputConfig: Anthropic.Messages.OutputConfig = {};
      if (request.effort !== undefined) outputConfig.effort = request.effort;
      if (request.jsonSchema !== undefined) outputConfig.format = { type: 'json_schema', schema: request.jsonSchema };
      const params: Anthropic.Messages.MessageCreateParamsNonStreaming = {
        model: request.model,
        max_tokens: request.maxTokens,
        system: request.system.map((block) => ({ type: 'text' as const, text: block.text, ...(block.cache ? { cache_control: { type: 'ephemeral' as const } } : {}) })),
        messages: [{ role: 'user', content: request.user }],
        ...(Object.keys(outputConfig).length > 0 ? { output_config: outputConfig } : {}),
      };
      let data: unknown;
      let rateLimit: AnthropicRateLimit;
      try {
        const result = await client.messages.create(params, { signal }).withResponse();
        data = result.data;
        rateLimit = parseAnthropicRateLimit(headerGetter(result.response.headers));
      } catch (error) {
        throw mapAnthropicError(error, { model: request.model, ...mapOptions });
      }
      return { ...readMessage(data, request.model), rateLimit };
    },
  };
}

function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : 0;
}

/** Checks the answer is a message and reads what the worker uses from it; anything else is the API's fault. */
function readMessage(data: unknown, requestedModel: string): Omit<ClaudeResponse, 'rateLimit'> {
  const message = data as Partial<Anthropic.Messages.Message> | null;
  if (!message || typeof message !== 'object' || !Array.isArray(message.content)) {
    const what = typeof data === 'string' ? `a ${data.length}-character non-JSON body` : `no "content" array`;
    throw new ProviderResponseError(`Claude response malformed: ${what}`);
  }
  const usage = message.usage as Partial<Anthropic.Messages.Usage> | null | undefined;
  if (!usage || typeof usage !== 'object' || typeof usage.input_tokens !== 'number' || typeof usage.output_tokens !== 'number') {
    throw new ProviderResponseError('Claude response malformed: no usage counts');
  }
  // Select text blocks by type: an answer may open with thinking (or other) blocks.
  const text = message.content
    .filter((block): block is Anthropic.Messages.TextBlock => block?.type === 'text' && typeof (block as { text?: unknown }).text === 'string')
    .map((block) => block.text)
    .join('');
  return {
    text,
    stopReason: typeof message.stop_reason === 'string' ? message.stop_reason : null,
    usage: {
      inputTokens: count(usage.input_tokens),
      cacheWriteTokens: count(usage.cache_creation_input_tokens),
      cacheReadTokens: count(usage.cache_read_input_tokens),
      outputTokens: count(usage.output_tokens),
    },
    model: typeof message.model === 'string' ? message.model : requestedModel,
  };
}

/**
 * Error codes (error.details.error_code) that mean the account may not spend more: retrying cannot help until
 * someone changes its billing or limits.
 */
const SPEND_CODES = new Set(['contract_spend_limit_reached', 'enforced_spend_limit_reached', 'linked_organization_spend_limit_reached', 'linked_organization_billing_unavailable']);

/** The API's wording for an account that is out of credit or at a spend/usage limit (when no code says so). */
const SPEND_MESSAGE = /credit balance is too low|(?:spend|spending|usage) limit|out of credits?|insufficient (?:credit|funds)|purchase credits/i;

/** Which windows the headers show as used up: requests first, then any token window. */
function exhaustedScope(limits: AnthropicRateLimit): RateLimitScope {
  if (limits.requests?.remaining === 0) return 'requests';
  if ([limits.inputTokens, limits.outputTokens, limits.tokens].some((w) => w?.remaining === 0)) return 'tokens';
  return 'unknown';
}

/**
 * Claude API error → error type. The one place that reads the API's answer: the HTTP status, the body's
 * `error.type` and `error.details.error_code`, and — only for spend limits, the model, `effort` and an
 * over-long prompt, which the API signals no other way — its message.
 * `apiKey`, when given, is also removed from every message (the worker's redaction catches key-shaped text).
 * Exported for tests.
 */
export function mapAnthropicError(error: unknown, options: { model: string; baseURL?: string; apiKey?: string }): unknown {
  const clean = (text: string): string => redact(text, options.apiKey ? [options.apiKey] : []);
  if (error instanceof Anthropic.APIUserAbortError) return error;
  if (error instanceof Anthropic.APIConnectionTimeoutError) return new ProviderUnavailableError('Claude request timed out', { cause: error });
  if (error instanceof Anthropic.APIConnectionError) {
    const where = redactUrlCredentials(options.baseURL ?? DEFAULT_BASE_URL, { allUserinfo: true });
    const cause = (error as { cause?: unknown }).cause;
    const why = cause instanceof Error && cause.message && cause.message !== error.message ? `${error.message} (${cause.message})` : error.message;
    return new ProviderUnavailableError(`cannot reach the Claude API at ${where}: ${clean(why)}`, { cause: error });
  }
  if (error instanceof Anthropic.APIError) {
    const status = error.status ?? 0;
    const limits = parseAnthropicRateLimit(headerGetter(error.headers));
    const type: string = error.type ?? '';
    const code: string = error.errorCode ?? '';
    const said = error.apiMessage ?? '';
    // The body's own message when there is one; else the SDK's text (the raw body), which may lack the status.
    const detail = clean(said ? `${status} ${said}` : /^\d{3}\b/.test(error.message) ? error.message : `${status} ${error.message}`);
    const retryAfterMs = limits.retryAfterMs;

    if (SPEND_CODES.has(code) || type === 'billing_error' || status === 402 || ([400, 403, 429].includes(status) && SPEND_MESSAGE.test(said))) {
      return new WorkerFatalError(
        `Claude API says the account has reached a spend or usage limit or is out of credit (${detail}): check the account's billing and limits for ANTHROPIC_API_KEY`,
        { cause: error, setting: 'ANTHROPIC_API_KEY' },
      );
    }
    if (status === 429 || type === 'rate_limit_error') {
      return new ClaudeRateLimitError(`Claude API answered ${detail}`, { cause: error, status: status || 429, retryAfterMs, limits, scope: exhaustedScope(limits) });
    }
    if (status === 529 || type === 'overloaded_error' || status >= 500 || status === 408 || status === 409) {
      return new ProviderUnavailableError(`Claude API answered ${detail}`, { cause: error, status, retryAfterMs });
    }
    if (status === 401 || status === 403 || type === 'authentication_error' || type === 'permission_error') {
      const what = status === 403 || type === 'permission_error' ? 'refused the request for this API key' : 'rejected the API key';
      return new WorkerFatalError(`Claude API ${what} (${detail}): check ANTHROPIC_API_KEY`, { cause: error, setting: 'ANTHROPIC_API_KEY' });
    }
    if (status === 404 || type === 'not_found_error') {
      return new WorkerFatalError(`Claude model not found (${detail}): check RAG_CLAUDE_MODEL=${options.model}${options.baseURL ? ' and ANTHROPIC_BASE_URL' : ''}`, {
        cause: error,
        setting: 'RAG_CLAUDE_MODEL',
      });
    }
    if (status === 413 || type === 'request_too_large') {
      return new BadInputError(`Claude API refused the request as too large (${detail})`, { cause: error });
    }
    if (status === 400 || status === 422) {
      // Not the API's JSON error (a proxy's page, say): nothing tells us the input is to blame.
      if (error.error === undefined || error.error === null) {
        return new ProviderResponseError(`Claude API answered ${detail} with a body that is not JSON`, { cause: error });
      }
      if (/prompt is too long/i.test(said)) {
        return new BadInputError(`the prompt is too long for Claude model ${options.model} (${detail})`, { cause: error });
      }
      // Before the model: "effort is not supported by <model>" is about the effort setting.
      if (/\boutput_config\.effort\b|\beffort\b/i.test(said)) {
        return new WorkerFatalError(`Claude API rejected the effort setting for model ${options.model} (${detail}): check RAG_CLAUDE_EFFORT`, {
          cause: error,
          setting: 'RAG_CLAUDE_EFFORT',
        });
      }
      if (said.includes(options.model) || /\bmodel\b/i.test(said)) {
        return new WorkerFatalError(`Claude API rejected the model (${detail}): check RAG_CLAUDE_MODEL=${options.model}`, { cause: error, setting: 'RAG_CLAUDE_MODEL' });
      }
      return new BadInputError(`Claude API rejected the request (${detail})`, { cause: error });
    }
    return new ProviderUnavailableError(`Claude API answered ${detail}`, { cause: error, status, retryAfterMs });
  }
  // A 2xx body the SDK could not parse as the JSON it was labelled.
  if (error instanceof SyntaxError) return new ProviderResponseError(`Claude response was not valid JSON: ${error.message}`, { cause: error });
  return error;
}
