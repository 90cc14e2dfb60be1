/** What the scheduler needs from an embedding provider (OpenAI-compatible HTTP, or the offline embedder). */
import type { RateLimitSnapshot } from '../../shared/rate-limit-headers.ts';
import type { VectorLiteral } from '../stores/queue-store.ts';

export interface EmbedResult {
  vectors: VectorLiteral[];
  /** What the provider's headers said about its limits, when it sent any. */
  rateLimit?: RateLimitSnapshot;
}

export interface EmbeddingProvider {
  /** e.g. "openai" or "local-lexical". */
  readonly name: string;
  readonly model: string;
  readonly dimensions: number;
  /** Whether requests should be paced (local embedding has no limits and no latency). */
  readonly remote: boolean;
  /**
   * Embed inputs, in order. Throws the types of src/shared/errors.ts: RateLimitError (429, with the parsed
   * headers), ProviderUnavailableError (5xx, network, timeout), ProviderResponseError (an answer that breaks
   * the contract), BadInputError (the provider rejected an input), WorkerFatalError (credentials, unknown
   * model, wrong dimensions).
   */
  embed(inputs: string[], signal?: AbortSignal): Promise<EmbedResult>;
  close?(): Promise<void>;
}
