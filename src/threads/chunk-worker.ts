/**
 * Piscina thread entry: parse + segment + token-accurate chunking, and the offline lexical embedder.
 * No network, no database. One tokenizer per encoding per thread, reused across tasks.
 */
import { createHash } from 'node:crypto';
import { move } from 'piscina';
import { chunkSegments, createTokenCounter, type TokenCounter } from '../shared/chunking.ts';
import { BadInputError } from '../shared/errors.ts';
import { parseTranscript } from '../shared/formats/parse-transcript.ts';
import { lexicalEmbedding } from '../shared/lexical-embedding.ts';
import { encodeResult, type ChunkTask, type ChunkTaskResult, type LexicalEmbedTask } from '../shared/thread-messages.ts';
import { toVectorLiteral } from '../shared/vector-literal.ts';
import { TRANSCRIPT_FORMATS, type TranscriptFormat } from '../shared/types.ts';

const counters = new Map<string, TokenCounter>();

function counterFor(encoding: string): TokenCounter {
  let counter = counters.get(encoding);
  if (!counter) {
    counter = createTokenCounter(encoding);
    counters.set(encoding, counter);
  }
  return counter;
}

export function chunkTranscript(task: ChunkTask): ChunkTaskResult {
  const started = performance.now();
  try {
    if (!(TRANSCRIPT_FORMATS as readonly string[]).includes(task.format)) {
      throw new BadInputError(`unknown format ${JSON.stringify(String(task.format).slice(0, 40))} (expected one of ${TRANSCRIPT_FORMATS.join(', ')})`);
    }
    // Claimed jobs carry their payload as JSON text (parsed here, off the main thread).
    const payload = typeof task.payload === 'string' ? parsePayloadText(task.payload) : task.payload;
    const parsed = parseTranscript(task.format as TranscriptFormat, payload);
    const chunks = chunkSegments(parsed.segments, task.options, counterFor(task.options.encoding));
    // Hash the payload text as it came (no re-serialisation of a 10 MB transcript).
    const signature = createHash('sha256')
      .update(JSON.stringify([task.options, parsed.format]))
      .update(typeof task.payload === 'string' ? task.payload : JSON.stringify(task.payload))
      .digest('hex');
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
