/**
 * The offline embedders the retrieval bench compares. Each loads lazily (so a process measures only its own
 * candidate) and embeds a batch of texts into unit vectors.
 */
import { existsSync } from 'node:fs';
import { lexicalEmbedding } from '../../src/shared/lexical-embedding.ts';
import { USE_LITE_DIMENSIONS, USE_LITE_MODEL, useLiteEmbeddings } from '../../src/shared/use-embedding.ts';
import { createWordVectorEmbedder, loadWordTable, type WordVectorMode } from './word-vectors.ts';

export type Embed = (texts: string[]) => Promise<Float32Array[]>;

export interface Candidate {
  id: string;
  label: string;
  dimensions: number;
  /** Why it cannot run here (e.g. the word-vector table was not built), or undefined. */
  unavailable(): string | undefined;
  load(): Promise<Embed>;
}

/** The lexical embedder's dimensions in the worker: RAG_EMBEDDING_DIMENSIONS' default. */
export const LEXICAL_DIMENSIONS = 1536;

/** Where reduce-word-vectors.ts wrote the table (never in the repo). */
export const WORD_VECTORS_PATH = process.env.RAG_BENCH_WORD_VECTORS ?? '/tmp/rag-word-vectors-50k.bin';

function wordVectors(mode: WordVectorMode, label: string): Candidate {
  return {
    id: `glove-${mode}`,
    label,
    dimensions: 100,
    unavailable: () =>
      existsSync(WORD_VECTORS_PATH)
        ? undefined
        : `no word-vector table at ${WORD_VECTORS_PATH} (build it with bench/retrieval/reduce-word-vectors.ts, or set RAG_BENCH_WORD_VECTORS)`,
    async load() {
      const embed = createWordVectorEmbedder(loadWordTable(WORD_VECTORS_PATH), mode);
      return async (texts) => texts.map(embed);
    },
  };
}

export const CANDIDATES: Candidate[] = [
  {
    id: 'lexical',
    label: `local-lexical-hash-v1 (feature hashing, ${LEXICAL_DIMENSIONS} d)`,
    dimensions: LEXICAL_DIMENSIONS,
    unavailable: () => undefined,
    async load() {
      return async (texts) => texts.map((t) => lexicalEmbedding(t, LEXICAL_DIMENSIONS));
    },
  },
  {
    id: 'use-lite',
    label: `${USE_LITE_MODEL} (Universal Sentence Encoder lite, TF.js wasm, ${USE_LITE_DIMENSIONS} d)`,
    dimensions: USE_LITE_DIMENSIONS,
    unavailable: () => undefined,
    async load() {
      return (texts) => useLiteEmbeddings(texts);
    },
  },
  wordVectors('mean', 'GloVe 6B 100d (wink), 50k words int8, mean without stopwords'),
  wordVectors('sif', 'GloVe 6B 100d (wink), 50k words int8, SIF-weighted mean'),
  wordVectors('sif-cc', 'GloVe 6B 100d (wink), 50k words int8, SIF + common direction removed'),
];

export function candidate(id: string): Candidate {
  const c = CANDIDATES.find((x) => x.id === id);
  if (!c) throw new Error(`unknown candidate ${JSON.stringify(id)} (expected one of ${CANDIDATES.map((x) => x.id).join(', ')})`);
  return c;
}
