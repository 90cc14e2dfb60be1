/**
 * List prices, in USD per million tokens, for the models the worker calls: Claude (input, 5-minute cache writes,
 * cache reads, output; some models bill a whole request at higher rates once its prompt passes a threshold) and
 * OpenAI's embedding models. The defaults are the providers' published list prices on PRICES_AS_OF; a user
 * whose prices differ (a newer model, a negotiated rate) overrides or extends them with RAG_PRICES (inline JSON
 * or a path to a JSON file). Pure: parsing only, the caller reads the file.
 */
import { z } from 'zod';

export const PRICES_AS_OF = '2026-12-02';

export interface TokenRates {
  input: number;
  cacheWrite: number;
  cacheRead: number;
  output: number;
}

export interface ClaudePrice extends TokenRates {
  /** A request whose prompt (input + cache writes + cache reads) has more tokens than this is billed at `long`. */
  longPromptTokens?: number;
  long?: TokenRates;
}

export interface PriceTable {
  claude: Record<string, ClaudePrice>;
  /** USD per million input tokens. */
  embedding: Record<string, number>;
}

const rates = (input: number, output: number, cacheRead = input / 10): TokenRates => ({ input, cacheWrite: input * 1.25, cacheRead, output });

export const DEFAULT_PRICES: PriceTable = {
  claude: {
    'claude-haiku-5-5': { ...rates(0.1, 0.5, 0.01), longPromptTokens: 100_000, long: rates(0.5, 2.5, 0.05) },
    'claude-haiku-4-5': rates(1, 5),
    'claude-haiku-4-5-20251001': rates(1, 5),
    'claude-sonnet-5-5': rates(2, 10, 0.1),
    'claude-sonnet-5': rates(2, 10),
    'claude-sonnet-4-6': rates(3, 15),
    'claude-sonnet-4-5': rates(3, 15),
    'claude-sonnet-4-5-20250929': rates(3, 15),
    'claude-opus-5': rates(5, 25),
    'claude-opus-4-8': rates(5, 25),
    'claude-opus-4-7': rates(5, 25),
    'claude-opus-4-6': rates(5, 25),
    'claude-opus-4-5': rates(5, 25),
  },
  embedding: {
    'text-embedding-3-small': 0.02,
    'text-embedding-3-large': 0.13,
    'text-embedding-ada-002': 0.1,
    'local-lexical-hash-v1': 0,
  },
};

const nonNegative = z.number().finite().min(0);
const tokenRates = z.strictObject({ input: nonNegative, cacheWrite: nonNegative.optional(), cacheRead: nonNegative.optional(), output: nonNegative });
const overrideSchema = z.strictObject({
  claude: z
    .record(
      z.string().min(1),
      tokenRates.extend({ longPromptTokens: z.number().int().positive().optional(), long: tokenRates.optional() }),
    )
    .optional(),
  embedding: z.record(z.string().min(1), nonNegative).optional(),
});

const complete = (r: z.infer<typeof tokenRates>): TokenRates => ({
  input: r.input,
  cacheWrite: r.cacheWrite ?? r.input * 1.25,
  cacheRead: r.cacheRead ?? r.input / 10,
  output: r.output,
});

/**
 * The default table with the user's entries laid over it (model by model). `text` is the JSON of RAG_PRICES:
 * {"claude": {"<model>": {"input": 0.1, "output": 0.5, "cacheWrite"?: …, "cacheRead"?: …}}, "embedding": {"<model>": 0.02}}.
 * Cache rates default to 1.25× and 0.1× the input rate. Throws an Error naming the first bad entry.
 */
export function mergePrices(text: string | undefined, base: PriceTable = DEFAULT_PRICES): PriceTable {
  if (text === undefined || text.trim() === '') return base;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`not valid JSON (${(error as Error).message})`);
  }
  const parsed = overrideSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${issue.path.join('.') || '(top level)'}: ${issue.message}`);
  }
  const claude = { ...base.claude };
  for (const [model, r] of Object.entries(parsed.data.claude ?? {})) {
    if ((r.longPromptTokens === undefined) !== (r.long === undefined)) {
      throw new Error(`claude.${model}: longPromptTokens and long go together (the prompt size above which the long rates apply, and those rates)`);
    }
    claude[model] = { ...complete(r), ...(r.longPromptTokens !== undefined && r.long ? { longPromptTokens: r.longPromptTokens, long: complete(r.long) } : {}) };
  }
  return { claude, embedding: { ...base.embedding, ...(parsed.data.embedding ?? {}) } };
}

/** The price of a Claude model: an exact id, else the longest listed id the model id starts with (dated ids). */
export function claudePriceOf(table: PriceTable, model: string): ClaudePrice | undefined {
  if (table.claude[model]) return table.claude[model];
  const prefix = Object.keys(table.claude)
    .filter((id) => model.startsWith(`${id}-`))
    .sort((a, b) => b.length - a.length)[0];
  return prefix === undefined ? undefined : table.claude[prefix];
}
