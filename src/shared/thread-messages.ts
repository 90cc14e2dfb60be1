/** Messages between the main thread and the chunking threads (src/threads/chunk-worker.ts). */
import type { MessagePort } from 'node:worker_threads';
import type { Chunk, ChunkingOptions, ConcreteFormat } from './types.ts';

export interface ChunkTask {
  format: string;
  /** The job's payload: the object, or its JSON text (as claimed from the database). */
  payload: unknown;
  options: ChunkingOptions;
  /** The job's metadata.speaker_names (validated in the thread: a bad map fails the job as bad input). */
  speakerNames?: unknown;
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

/** A streamed chunk task: chunks arrive on `port` (see ChunkStreamMessage) as they are cut. */
export interface ChunkStreamTask extends ChunkTask {
  port: MessagePort;
  /** Chunks per 'chunks' message. */
  batchSize: number;
  /** Batches the thread may send ahead of the consumer's credits. */
  window: number;
}

/** Thread → main, on the task's port, in this order: one head, any number of chunks, one end. */
export type ChunkStreamMessage =
  | { type: 'head'; format: ConcreteFormat; segmentsTotal: number; signature: string; warnings: string[] }
  | { type: 'chunks'; bytes: Uint8Array }
  | { type: 'end'; chunksTotal: number; elapsedMs: number };

/** Main → thread: one more batch may be sent. */
export interface ChunkStreamCredit {
  type: 'credit';
}

/** What the streamed task itself returns (the data travels on the port). */
export type ChunkStreamResult = { ok: true } | { ok: false; category: 'bad_input'; message: string };

export function encodeChunks(chunks: Chunk[]): Uint8Array {
  return encoder.encode(JSON.stringify(chunks));
}

export function decodeChunks(bytes: Uint8Array): Chunk[] {
  return JSON.parse(decoder.decode(bytes)) as Chunk[];
}

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
