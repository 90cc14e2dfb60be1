/**
 * Piscina thread entry: parse + segment + token-accurate chunking, and the offline lexical embedder.
 * No network, no database. One tokenizer per encoding per thread, reused across tasks.
 */
import { createHash } from 'node:crypto';
import { move } from 'piscina';
import type { MessagePort } from 'node:worker_threads';
import { chunkSegments, chunkSegmentsIter, createTokenCounter, validateChunkingOptions, type TokenCounter } from '../shared/chunking.ts';
import { BadInputError } from '../shared/errors.ts';
import { parseTranscript } from '../shared/formats/parse-transcript.ts';
import { lexicalEmbedding } from '../shared/lexical-embedding.ts';
import {
  encodeChunks,
  encodeResult,
  type ChunkStreamCredit,
  type ChunkStreamMessage,
  type ChunkStreamResult,
  type ChunkStreamTask,
  type ChunkTask,
  type ChunkTaskResult,
  type LexicalEmbedTask,
} from '../shared/thread-messages.ts';
import { toVectorLiteral } from '../shared/vector-literal.ts';
import { TRANSCRIPT_FORMATS, type Chunk, type ParsedTranscript, type TranscriptFormat } from '../shared/types.ts';

const counters = new Map<string, TokenCounter>();

function counterFor(encoding: string): TokenCounter {
  let counter = counters.get(encoding);
  if (!counter) {
    counter = createTokenCounter(encoding);
    counters.set(encoding, counter);
  }
  return counter;
}

/** Parse the payload and compute the chunking signature: the part of a task before any chunk exists. */
function prepare(task: ChunkTask): { parsed: ParsedTranscript; signature: string } {
  if (!(TRANSCRIPT_FORMATS as readonly string[]).includes(task.format)) {
    throw new BadInputError(`unknown format ${JSON.stringify(String(task.format).slice(0, 40))} (expected one of ${TRANSCRIPT_FORMATS.join(', ')})`);
  }
  validateChunkingOptions(task.options);
  // Claimed jobs carry their payload as JSON text (parsed here, off the main thread).
  const payload = typeof task.payload === 'string' ? parsePayloadText(task.payload) : task.payload;
  const parsed = parseTranscript(task.format as TranscriptFormat, payload, { speakerNames: task.speakerNames });
  // Hash the payload text as it came (no re-serialisation of a 10 MB transcript).
  const signature = createHash('sha256')
    .update(JSON.stringify(task.speakerNames === undefined ? [task.options, parsed.format] : [task.options, parsed.format, task.speakerNames]))
    .update(typeof task.payload === 'string' ? task.payload : JSON.stringify(task.payload))
    .digest('hex');
  return { parsed, signature };
}

export function chunkTranscript(task: ChunkTask): ChunkTaskResult {
  const started = performance.now();
  try {
    const { parsed, signature } = prepare(task);
    const chunks = chunkSegments(parsed.segments, task.options, counterFor(task.options.encoding));
    return {
      ok: true,
      format: parsed.format,
      segmentsTotal: parsed.segments.length,
      chunks,
      signature,
      warnings: parsed.warnings,
      elapsedMs: performance.now() - started,
    };
  } catch (error) {
    if (error instanceof BadInputError) return { ok: false, category: 'bad_input', message: error.message };
    throw error;
  }
}

/**
 * Streaming variant: posts the parse result, then the chunks in batches of task.batchSize as they are cut, on
 * task.port. At most task.window batches are ahead of the consumer, which posts a credit for each batch it takes,
 * so a 100,000-segment transcript never has all its chunks in memory at once, and the first batch can be
 * embedded while the rest is still being chunked.
 */
export async function streamChunks(task: ChunkStreamTask): Promise<ChunkStreamResult> {
  const started = performance.now();
  const { port } = task;
  const credits = creditGate(port, task.window);
  try {
    const { parsed, signature } = prepare(task);
    // The task object lives as long as this (job-long) task: let go of the payload text it carries.
    task.payload = undefined;
    const head: ChunkStreamMessage = { type: 'head', format: parsed.format, segmentsTotal: parsed.segments.length, signature, warnings: parsed.warnings };
    port.postMessage(head);
    let batch: Chunk[] = [];
    let total = 0;
    const flush = async () => {
      await credits.take();
      const bytes = encodeChunks(batch);
      port.postMessage({ type: 'chunks', bytes } satisfies ChunkStreamMessage, [bytes.buffer as ArrayBuffer]);
      batch = [];
    };
    for (const chunk of chunkSegmentsIter(consume(parsed.segments), task.options, counterFor(task.options.encoding))) {
      batch.push(chunk);
      total++;
      if (batch.length >= task.batchSize) await flush();
    }
    if (batch.length > 0) await flush();
    port.postMessage({ type: 'end', chunksTotal: total, elapsedMs: performance.now() - started } satisfies ChunkStreamMessage);
    return { ok: true };
  } catch (error) {
    if (error instanceof BadInputError) return { ok: false, category: 'bad_input', message: error.message };
    if (error instanceof StreamClosedError) return { ok: true };
    throw error;
  } finally {
    credits.close();
    port.close();
  }
}

class StreamClosedError extends Error {}

/** Iterates an array while emptying it, so each segment can be collected once it has been chunked. */
function* consume<T>(items: T[]): Generator<T, void, undefined> {
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    (items as (T | undefined)[])[i] = undefined;
    yield item;
  }
  items.length = 0;
}

/** Credits posted by the consumer; take() waits for one. The consumer closing its end ends the stream. */
function creditGate(port: MessagePort, initial: number) {
  let available = initial;
  let closed = false;
  let waiter: { resolve: () => void; reject: (e: Error) => void } | undefined;
  const onMessage = (message: ChunkStreamCredit) => {
    if (message?.type !== 'credit') return;
    available += 1;
    waiter?.resolve();
    waiter = undefined;
  };
  const onClose = () => {
    closed = true;
    waiter?.reject(new StreamClosedError('consumer closed the chunk stream'));
    waiter = undefined;
  };
  port.on('message', onMessage);
  port.on('close', onClose);
  return {
    async take(): Promise<void> {
      while (available <= 0) {
        if (closed) throw new StreamClosedError('consumer closed the chunk stream');
        await new Promise<void>((resolve, reject) => (waiter = { resolve, reject }));
      }
      available -= 1;
    },
    close() {
      port.off('message', onMessage);
      port.off('close', onClose);
    },
  };
}

function parsePayloadText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new BadInputError(`payload is not valid JSON: ${(error as Error).message}`);
  }
}

/** Default task: chunk a transcript; the result is moved to the main thread as one buffer. */
export default function run(task: ChunkTask) {
  return move(encodeResult(chunkTranscript(task)));
}

export function embedLexical(task: LexicalEmbedTask): string[] {
  return task.inputs.map((text) => toVectorLiteral(lexicalEmbedding(text, task.dimensions)));
}
