/**
 * The tokenizer seam: a small interface over tiktoken so chunking can be tested with the real
 * tokenizer and the worker thread can hold one instance for its whole life.
 *
 * Pure in the architecture's sense (no network, no database). Importing this module loads the
 * tiktoken WASM module; creating a counter parses the encoding's BPE ranks (~100 ms), so create
 * one per thread and reuse it across tasks.
 */
import { get_encoding } from 'tiktoken';
import type { TiktokenEncoding } from 'tiktoken';

export { DEFAULT_ENCODING, encodingForModel } from './encoding-for-model.ts';

export interface TokenCounter {
  /** Token ids of `text`. Special-token strings such as `<|endoftext|>` are encoded as plain text. */
  encode(text: string): Uint32Array | number[];
  /** Text of `tokens`; a cut multi-byte character decodes to U+FFFD. */
  decode(tokens: Uint32Array | number[]): string;
  /** Encoding name, when known; chunking checks it against ChunkingOptions.encoding. */
  readonly encoding?: string;
}

export const SUPPORTED_ENCODINGS: readonly TiktokenEncoding[] = [
  'cl100k_base',
  'o200k_base',
  'p50k_base',
  'p50k_edit',
  'r50k_base',
  'gpt2',
];

function isSupportedEncoding(name: string): name is TiktokenEncoding {
  return (SUPPORTED_ENCODINGS as readonly string[]).includes(name);
}

/**
 * Wraps a tiktoken encoding. `encode` uses encode_ordinary: transcript text that happens to
 * contain `<|endoftext|>` is text, not a control token (and must not throw).
 * Call `free()` when the thread shuts down; the counter must not be used afterwards.
 */
export function createTokenCounter(encoding: string): TokenCounter & { free(): void } {
  if (!isSupportedEncoding(encoding)) {
    throw new Error(
      `encoding: unsupported tiktoken encoding ${JSON.stringify(encoding)}; expected one of ${SUPPORTED_ENCODINGS.join(', ')}`,
    );
  }
  const tiktoken = get_encoding(encoding);
  const utf8 = new TextDecoder('utf-8');
  let freed = false;
  const live = () => {
    if (freed) throw new Error(`token counter for ${encoding} used after free()`);
    return tiktoken;
  };
  return {
    encoding,
    encode: (text) => live().encode_ordinary(text),
    decode: (tokens) =>
      utf8.decode(live().decode(tokens instanceof Uint32Array ? tokens : Uint32Array.from(tokens))),
    free: () => {
      if (freed) return;
      freed = true;
      tiktoken.free();
    },
  };
}
