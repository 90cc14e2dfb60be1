/**
 * What a job spends, by kind, and its cost at the price table. The keys are the ones stored in the `usage`
 * jsonb of rag_ingestion_queue and rag_documents (added up by rag_usage_add). Pure.
 */
import { claudePriceOf, type PriceTable } from './prices.ts';

export interface Usage {
  embedding_tokens?: number;
  embedding_usd?: number;
  claude_requests?: number;
  claude_input_tokens?: number;
  claude_cache_write_tokens?: number;
  claude_cache_read_tokens?: number;
  claude_output_tokens?: number;
  claude_usd?: number;
  /** embedding_usd + claude_usd, for the models with a known price. */
  cost_usd?: number;
  /** Set when a model used has no price: its tokens are counted, its cost is not. */
  unpriced_models?: string;
}

export interface ClaudeTokens {
  inputTokens: number;
  cacheWriteTokens: number;
  cacheReadTokens: number;
  outputTokens: number;
}

const USD_DIGITS = 1e9;
const round = (usd: number) => Math.round(usd * USD_DIGITS) / USD_DIGITS;

/** One Claude response's usage and cost (undefined cost: the model has no price). */
export function claudeUsage(table: PriceTable, model: string, t: ClaudeTokens): Usage {
  const price = claudePriceOf(table, model);
  const base: Usage = {
    claude_requests: 1,
    claude_input_tokens: t.inputTokens,
    claude_cache_write_tokens: t.cacheWriteTokens,
    claude_cache_read_tokens: t.cacheReadTokens,
    claude_output_tokens: t.outputTokens,
  };
  if (!price) return { ...base, unpriced_models: model };
  const prompt = t.inputTokens + t.cacheWriteTokens + t.cacheReadTokens;
  const r = price.long && price.longPromptTokens !== undefined && prompt > price.longPromptTokens ? price.long : price;
  const usd = round((t.inputTokens * r.input + t.cacheWriteTokens * r.cacheWrite + t.cacheReadTokens * r.cacheRead + t.outputTokens * r.output) / 1e6);
  return { ...base, claude_usd: usd, cost_usd: usd };
}

/** Embedding tokens and their cost (a model without a price: tokens only). */
export function embeddingUsage(table: PriceTable, model: string, tokens: number): Usage {
  if (tokens === 0) return {};
  const rate = table.embedding[model];
  if (rate === undefined) return { embedding_tokens: tokens, unpriced_models: model };
  const usd = round((tokens * rate) / 1e6);
  return { embedding_tokens: tokens, embedding_usd: usd, cost_usd: usd };
}

/** a + b, key by key (unpriced model names are joined). */
export function addUsage(a: Usage, b: Usage): Usage {
  const out: Record<string, number | string> = { ...a };
  for (const [key, value] of Object.entries(b)) {
    if (value === undefined) continue;
    if (typeof value === 'number') out[key] = round(((out[key] as number | undefined) ?? 0) + value);
    else out[key] = [...new Set([...String(out[key] ?? '').split(',').filter(Boolean), ...value.split(',')])].join(',');
  }
  return out as Usage;
}

/** Share of the document tokens Claude read from its cache (reads / (reads + writes + uncached input)). */
export function cacheReadShare(u: Usage): number {
  const read = u.claude_cache_read_tokens ?? 0;
  const total = read + (u.claude_cache_write_tokens ?? 0) + (u.claude_input_tokens ?? 0);
  return total === 0 ? 0 : read / total;
}
