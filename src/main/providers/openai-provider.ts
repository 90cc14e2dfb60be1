/**
 * Embeddings over the official openai SDK; OPENAI_BASE_URL makes any OpenAI-compatible endpoint work.
 * SDK retries are off: pacing and retries belong to the scheduler, which needs every 429 and header.
 */
import OpenAI from 'openai';
import { BadInputError, ProviderResponseError, ProviderUnavailableError, RateLimitError, WorkerFatalError } from '../../shared/errors.ts';
import { headerGetter, parseRateLimitHeaders, type RateLimitSnapshot } from '../../shared/rate-limit-headers.ts';
import { redactUrlCredentials } from '../../shared/redact.ts';
import { float32FromBase64, toVectorLiteral } from '../../shared/vector-literal.ts';
import type { EmbeddingProvider, EmbedResult } from './embedding-provider.ts';

export interface OpenAIProviderOptions {
  apiKey?: string;
  baseURL?: string;
  model: string;
  dimensions: number;
  timeoutMs: number;
}

/** Only text-embedding-3-* accept a `dimensions` parameter; other models (and most compatible servers) reject it. */
function acceptsDimensions(model: string): boolean {
  return /^text-embedding-3/.test(model);
}

export function createOpenAIProvider(options: OpenAIProviderOptions): EmbeddingProvider {
  const client = new OpenAI({
    apiKey: options.apiKey || 'not-needed', // local OpenAI-compatible servers often need no key
    baseURL: options.baseURL,
    maxRetries: 0,
    timeout: options.timeoutMs,
  });
  const sendDimensions = acceptsDimensions(options.model);

  return {
    name: 'openai',
    model: options.model,
    dimensions: options.dimensions,
    remote: true,
    async embed(inputs: string[], signal?: AbortSignal): Promise<EmbedResult> {
      let data: OpenAI.Embeddings.CreateEmbeddingResponse;
      let rateLimit: RateLimitSnapshot | undefined;
      try {
        const result = await client.embeddings
          // base64 explicitly: we decode it straight into a Float32Array (the SDK would build a number[] first)
          .create({ model: options.model, input: inputs, encoding_format: 'base64', ...(sendDimensions ? { dimensions: options.dimensions } : {}) }, { signal })
          .withResponse();
        data = result.data as unknown as OpenAI.Embeddings.CreateEmbeddingResponse;
        rateLimit = parseRateLimitHeaders(headerGetter(result.response.headers));
      } catch (error) {
        throw mapOpenAIError(error, options);
      }
      return { vectors: validateEmbeddings(data, inputs.length, options), rateLimit };
    },
  };
}

/**
 * Checks the provider kept its contract: exactly one finite, non-zero vector of the configured size for every
 * input, each index once. Anything else is the provider's fault (ProviderResponseError, retried), never a row
 * the database has to refuse later.
 */
export function validateEmbeddings(data: OpenAI.Embeddings.CreateEmbeddingResponse, count: number, options: Pick<OpenAIProviderOptions, 'model' | 'dimensions'>): string[] {
  const items = (data as { data?: unknown } | null)?.data;
  if (!Array.isArray(items)) throw new ProviderResponseError(`embedding response malformed: no "data" array for ${count} inputs`);
  if (items.length !== count) throw new ProviderResponseError(`embedding response malformed: expected ${count} embeddings, got ${items.length}`);
  const ordered = new Array<string | undefined>(count);
  for (const item of items as { index?: unknown; embedding?: unknown }[]) {
    const index = item?.index;
    if (!Number.isInteger(index) || (index as number) < 0 || (index as number) >= count) {
      throw new ProviderResponseError(`embedding response malformed: index ${JSON.stringify(index)} is not one of 0..${count - 1}`);
    }
    if (ordered[index as number] !== undefined) throw new ProviderResponseError(`embedding response malformed: index ${index} appears twice`);
    // Servers that ignore encoding_format send float arrays: accept both.
    const raw = item.embedding;
    const vector = typeof raw === 'string' ? float32FromBase64(raw) : raw;
    if (!Array.isArray(vector) && !(vector instanceof Float32Array)) {
      throw new ProviderResponseError(`embedding response malformed: embedding ${index} is neither base64 nor an array`);
    }
    if (vector.length !== options.dimensions) {
      throw new WorkerFatalError(
        `model ${options.model} returned ${vector.length}-dimensional embeddings but RAG_EMBEDDING_DIMENSIONS=${options.dimensions}: ` +
          `set RAG_EMBEDDING_DIMENSIONS=${vector.length} (and migrate a matching table) or pick a model of that size`,
        { setting: 'RAG_EMBEDDING_DIMENSIONS' },
      );
    }
    let nonZero = false;
    for (let i = 0; i < vector.length; i++) {
      const v = vector[i] as number;
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new ProviderResponseError(`embedding response malformed: embedding ${index} has a non-finite value at ${i}`);
      if (v !== 0) nonZero = true;
    }
    // An all-zero vector has no direction: its cosine distance is NaN and it would never be found.
    if (!nonZero) throw new ProviderResponseError(`embedding response malformed: embedding ${index} is all zeros`);
    ordered[index as number] = toVectorLiteral(vector);
  }
  return ordered as string[];
}

/**
 * Provider error → error type. This is the one place that reads the provider's answer: the HTTP status, the
 * body's `type`/`code`/`param` fields, and (for the two cases OpenAI signals no other way) its message.
 * Exported for tests.
 */
export function mapOpenAIError(error: unknown, options: Pick<OpenAIProviderOptions, 'model' | 'dimensions' | 'baseURL'>): unknown {
  if (error instanceof OpenAI.APIUserAbortError) return error;
  if (error instanceof OpenAI.APIConnectionTimeoutError) return new ProviderUnavailableError('embedding request timed out', { cause: error });
  if (error instanceof OpenAI.APIConnectionError) {
    const where = options.baseURL ? ` ${redactUrlCredentials(options.baseURL, { allUserinfo: true })}` : '';
    return new ProviderUnavailableError(`cannot reach the embedding endpoint${where}: ${error.message}`, { cause: error });
  }
  if (error instanceof OpenAI.APIError) {
    const status = error.status ?? 0;
    const rateLimit = parseRateLimitHeaders(headerGetter(error.headers));
    const code = error.code ?? '';
    const type = error.type ?? '';
    const param = error.param ?? '';
    const bodyMessage = (error.error as { message?: unknown } | undefined)?.message;
    const said = typeof bodyMessage === 'string' ? bodyMessage : '';
    // The SDK's message already starts with the status ("401 Incorrect API key ...").
    const detail = /^\d{3}\b/.test(error.message) ? error.message : `${status} ${error.message}`;
    if (status === 429 && code === 'insufficient_quota') {
      return new WorkerFatalError(`embedding provider says the account is out of quota (${detail}): check billing for OPENAI_API_KEY`, { cause: error, setting: 'OPENAI_API_KEY' });
    }
    if (status === 429) {
      return new RateLimitError(`embedding provider answered ${detail}`, {
        cause: error,
        status,
        retryAfterMs: rateLimit.retryAfterMs,
        rateLimit,
        scope: type === 'tokens' || type === 'requests' ? type : rateLimit.remainingTokens === 0 ? 'tokens' : rateLimit.remainingRequests === 0 ? 'requests' : 'unknown',
        // OpenAI says "Request too large for <model> … on tokens per min" only in the message.
        requestTooLarge: /^Request too large/i.test(said),
      });
    }
    if (status === 408 || status === 409 || status >= 500) {
      return new ProviderUnavailableError(`embedding provider answered ${detail}`, { cause: error, status, retryAfterMs: rateLimit.retryAfterMs });
    }
    if (status === 401 || status === 403) {
      return new WorkerFatalError(`embedding provider rejected the credentials (${detail}): check OPENAI_API_KEY`, { cause: error, setting: 'OPENAI_API_KEY' });
    }
    if (status === 404 || code === 'model_not_found') {
      return new WorkerFatalError(`embedding model not found (${detail}): check RAG_EMBEDDING_MODEL=${options.model}${options.baseURL ? ' and OPENAI_BASE_URL' : ''}`, {
        cause: error,
        setting: 'RAG_EMBEDDING_MODEL',
      });
    }
    if (status === 400 && (param === 'dimensions' || (param === '' && /dimension/i.test(said)))) {
      return new WorkerFatalError(`embedding provider rejected RAG_EMBEDDING_DIMENSIONS=${options.dimensions} for model ${options.model} (${detail})`, {
        cause: error,
        setting: 'RAG_EMBEDDING_DIMENSIONS',
      });
    }
    if (status === 400 && (param === 'model' || (param === '' && /\bmodel\b/i.test(said) && !/input|context length|tokens/i.test(said)))) {
      return new WorkerFatalError(`embedding provider rejected the model (${detail}): check RAG_EMBEDDING_MODEL=${options.model}`, { cause: error, setting: 'RAG_EMBEDDING_MODEL' });
    }
    if (status === 400 || status === 413 || status === 422) {
      return new BadInputError(`embedding provider rejected the input (${detail})`, { cause: error });
    }
    return new ProviderUnavailableError(`embedding provider answered ${detail}`, { cause: error, status });
  }
  if (error instanceof SyntaxError) return new ProviderResponseError(`embedding response was not valid JSON: ${error.message}`, { cause: error });
  return error;
}
