/**
 * The built-in offline embedder: lexical feature hashing (src/shared/lexical-embedding.ts), computed in the
 * thread pool so the main thread stays free. Lexical, NOT semantic: it matches shared words, not meaning.
 * It exists so that rag-worker runs with zero setup; set OPENAI_API_KEY (or OPENAI_BASE_URL) for real embeddings.
 */
import { lexicalEmbedding } from '../../shared/lexical-embedding.ts';
import { toVectorLiteral } from '../../shared/vector-literal.ts';
import type { EmbeddingProvider, EmbedResult } from './embedding-provider.ts';

export const LOCAL_MODEL = 'local-lexical-hash-v1';

export interface LexicalEmbedRunner {
  embedLexical(inputs: string[], dimensions: number): Promise<string[]>;
}

export function createLocalProvider(dimensions: number, runner: LexicalEmbedRunner): EmbeddingProvider {
  return {
    name: 'local-lexical',
    model: LOCAL_MODEL,
    dimensions,
    remote: false,
    async embed(inputs: string[]): Promise<EmbedResult> {
      return { vectors: await runner.embedLexical(inputs, dimensions) };
    },
  };
}

/** For a few inputs (a search query): embed on the calling thread, with no thread pool to start. */
export const inlineLexicalRunner: LexicalEmbedRunner = {
  async embedLexical(inputs, dimensions) {
    return inputs.map((text) => toVectorLiteral(lexicalEmbedding(text, dimensions)));
  },
};
