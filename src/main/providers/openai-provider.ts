/**
 * Embeddings over the official openai SDK; OPENAI_BASE_URL makes any OpenAI-compatible endpoint work.
 * SDK retries are off: pacing and retries belong to the scheduler, which needs every 429 and header.
 */
import OpenAI from 'openai';
import { BadInputError, RetryableError, WorkerFatalError } from '../../shared/errors.ts';
import { headerGetter, parseRateLimitHeaders, type RateLimitSnapshot } from '../../shared/rate-limit-headers.ts';
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
      return { vectors: validate(data, inputs.length, options), rateLimit };
    },
  };
}

function validate(data: OpenAI.Embeddings.CreateEmbeddingResponse, count: number, options: OpenAIProviderOptions): string[] {
  if (!data || !Array.isArray(data.data) || data.data.length !== count) {
    throw new RetryableError(`embedding response malformed: expected ${count} embeddings, got ${Array.isArray(data?.data) ? data.data.length : 'none'}`);
  }
  const ordered = new Array<string>(count);
  for (const item of data.data) {
    // Servers that ignore encoding_format send float arrays: accept both.
    const raw = item.embedding as unknown;
    const vector = typeof raw === 'string' ? float32FromBase64(raw) : (raw as number[]);
    if (!Array.isArray(vector) && !(vector instanceof Float32Array)) {
      throw new RetryableError('embedding response malformed: an embedding is neither base64 nor an array');
    }
    if (vector.length !== options.dimensions) {
      throw new WorkerFatalError(
        `model ${options.model} returned ${vector.length}-dimensional embeddings but RAG_EMBEDDING_DIMENSIONS=${options.dimensions}: ` +
          `set RAG_EMBEDDING_DIMENSIONS=${vector.length} (and migrate a matching table) or pick a model of that size`,
      );
    }
    ordered[item.index] = toVectorLiteral(vector);
  }
  if (ordered.some((v) => v === undefined)) throw new RetryableError('embedding response malformed: missing indexes');
  return ordered;
}

/** Provider error → category. Exported for tests. */
export function mapOpenAIError(error: unknown, options: Pick<OpenAIProviderOptions, 'model' | 'dimensions' | 'baseURL'>): unknown {
  if (error instanceof OpenAI.APIUserAbortError) return error;
  if (error instanceof OpenAI.APIConnectionTimeoutError) return new RetryableError('embedding request timed out', { cause: error });
  if (error instanceof OpenAI.APIConnectionError) {
    return new RetryableError(`cannot reach the embedding endpoint${options.baseURL ? ` ${options.baseURL}` : ''}: ${error.message}`, { cause: error });
  }
  if (error instanceof OpenAI.APIError) {
    const status = error.status ?? 0;
    const rateLimit = parseRateLimitHeaders(headerGetter(error.headers));
    const code = (error as { code?: string | null }).code ?? '';
    // The SDK's message already starts with the status ("401 Incorrect API key ...").
    const detail = /^\d{3}\b/.test(error.message) ? error.message : `${status} ${error.message}`;
    if (status === 429 && code === 'insufficient_quota') {
      return new WorkerFatalError(`embedding provider says the account is out of quota (${detail}): check billing for OPENAI_API_KEY`, { cause: error });
    }
    if (status === 429 || status === 408 || status === 409 || status >= 500) {
      const e = new RetryableError(`embedding provider answered ${detail}`, { cause: error, retryAfterMs: rateLimit.retryAfterMs });
      return Object.assign(e, { rateLimit, status });
    }
    if (status === 401 || status === 403) {
      return new WorkerFatalError(`embedding provider rejected the credentials (${detail}): check OPENAI_API_KEY`, { cause: error });
    }
    if (status === 404) {
      return new WorkerFatalError(`embedding model not found (${detail}): check RAG_EMBEDDING_MODEL=${options.model}${options.baseURL ? ' and OPENAI_BASE_URL' : ''}`, { cause: error });
    }
    if (status === 400 && /dimension/i.test(error.message)) {
      return new WorkerFatalError(`embedding provider rejected RAG_EMBEDDING_DIMENSIONS=${options.dimensions} for model ${options.model} (${detail})`, { cause: error });
    }
    if (status === 400 && /model/i.test(error.message) && !/input/i.test(error.message)) {
      return new WorkerFatalError(`embedding provider rejected the model (${detail}): check RAG_EMBEDDING_MODEL=${options.model}`, { cause: error });
    }
    if (status === 400 || status === 413 || status === 422) {
      return new BadInputError(`embedding provider rejected the input (${detail})`, { cause: error });
    }
    return new RetryableError(`embedding provider answered ${detail}`, { cause: error });
  }
  if (error instanceof SyntaxError) return new RetryableError(`embedding response was not valid JSON: ${error.message}`, { cause: error });
  return error;
}
