/**
 * Piscina thread entry for test/unit/use-embedding.test.ts: the semantic embedder inside a worker thread, with
 * fetch disabled in the thread so that loading the model can only read files.
 */
globalThis.fetch = () => Promise.reject(new Error('use-embed-thread: network access attempted'));

const { useLiteEmbeddings } = await import('../../src/shared/use-embedding.ts');

export default async function embed(texts: string[]): Promise<number[][]> {
  return (await useLiteEmbeddings(texts)).map((v) => Array.from(v));
}
