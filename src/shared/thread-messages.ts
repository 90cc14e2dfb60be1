/** Messages between the main thread and the chunking threads (src/threads/chunk-worker.ts). */
import type { Chunk, ChunkingOptions, ConcreteFormat } from './types.ts';

export interface ChunkTask {
  format: string;
  /** The job's payload: the object, or its JSON text (as claimed from the database). */
  payload: unknown;
  options: ChunkingOptions;
}

/** Decoded result of a chunk task. Travels as one transferred buffer of JSON (moved, not copied). */
export type ChunkTaskResult =
  | {
      ok: true;
      format: ConcreteFormat;
      segmentsTotal: number;
      chunks: Chunk[];
      /** Identifies (input, options): a resumed job keeps its saved chunks only when this is unchanged. */
      signature: string;
      warnings: string[];
      /** Milliseconds spent parsing and chunking in the thread. */
      elapsedMs: number;
    }
  | { ok: false; category: 'bad_input'; message: string };

export interface LexicalEmbedTask {
  inputs: string[];
  dimensions: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeResult(result: ChunkTaskResult): Uint8Array {
  return encoder.encode(JSON.stringify(result));
}

export function decodeResult(bytes: Uint8Array): ChunkTaskResult {
  return JSON.parse(decoder.decode(bytes)) as ChunkTaskResult;
}
