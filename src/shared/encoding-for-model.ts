/**
 * Which tiktoken encoding an embedding model uses. No tiktoken import here, so the main thread can
 * ask without loading the tokenizer's WASM (~45 ms and ~20 MB at import).
 */

/** The encoding used when a model is unknown (e.g. a local or non-OpenAI model). */
export const DEFAULT_ENCODING = 'cl100k_base';

const MODEL_ENCODINGS: ReadonlyArray<readonly [RegExp, string]> = [
  [/^text-embedding-(3-|ada-002)/, 'cl100k_base'],
  [/^(gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|o1|o3|o4|chatgpt-4o)/, 'o200k_base'],
  [/^(gpt-4|gpt-3\.5|gpt-35|davinci-002|babbage-002)/, 'cl100k_base'],
];

/**
 * text-embedding-3-small/-large and text-embedding-ada-002 → cl100k_base; OpenAI chat models →
 * their encoding; any other model → cl100k_base. For a non-OpenAI model the count approximates the
 * provider's own tokenizer, so keep maxTokens well below that model's real limit.
 */
export function encodingForModel(model: string): string {
  const name = model.trim().toLowerCase().replace(/^openai\//, '');
  for (const [pattern, encoding] of MODEL_ENCODINGS) {
    if (pattern.test(name)) return encoding;
  }
  return DEFAULT_ENCODING;
}
