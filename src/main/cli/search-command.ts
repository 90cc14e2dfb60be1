/**
 * `rag-worker search <query>`: embed the query with the configured provider and print the best chunks. With
 * --hybrid, the vector ranking is fused with a full-text ranking of the chunks' context + content (rag_hybrid_chunks).
 */
import { WorkerFatalError } from '../../shared/errors.ts';
import { checkSearchModel } from '../../shared/model-consistency.ts';
import { inlineLexicalRunner } from '../providers/local-provider.ts';
import { createProvider } from '../runtime.ts';
import { formatMs, loadConfig, makeLogger, printJson } from './context.ts';
import { openQueue } from './open-queue.ts';
import type { HybridRow, MatchRow } from '../stores/queue-store.ts';

/** Which of the hybrid rankings a chunk is in: `vector #3 · text #1`. */
function listsOf(r: HybridRow): string {
  return [r.vector_rank !== null ? `vector #${r.vector_rank}` : '', r.text_rank !== null ? `text #${r.text_rank}` : ''].filter(Boolean).join(' · ');
}

export async function searchCommand(argv: Record<string, unknown>): Promise<void> {
  const config = loadConfig(argv);
  const logger = makeLogger(config, true);
  const queue = await openQueue(config, logger);
  try {
    // One query: the offline embedder runs right here (starting a chunking thread would cost more than the query).
    const provider = await createProvider(config, inlineLexicalRunner);
    const models = checkSearchModel(await queue.store.storedModels(), provider.model);
    if (!models.ok) throw new WorkerFatalError(models.error, { setting: 'RAG_EMBEDDING_MODEL' });
    if ('warning' in models) console.error(`Warning: ${models.warning}\n`);
    const query = String(argv.query);
    const [embedding] = (await provider.embed([query])).vectors;
    const count = Number(argv.k ?? 5);
    const [documentId, version] = [argv.documentId as string | undefined, argv.docVersion as string | undefined];
    const hybrid = Boolean(argv.hybrid);
    const rows: (MatchRow | HybridRow)[] = hybrid
      ? await queue.store.hybridChunks(query, embedding, count, documentId, version)
      : await queue.store.matchChunks(embedding, count, documentId, version);
    const isHybrid = (r: MatchRow | HybridRow): r is HybridRow => 'vector_rank' in r;
    if (argv.json) {
      return printJson(rows.map((r) => ({
        document_id: r.document_id, version: r.version, chunk_index: r.chunk_index, content: r.content, start_ms: r.start_ms, end_ms: r.end_ms, speakers: r.speakers, score: r.score,
        ...(isHybrid(r) ? { context: r.context, vector_rank: r.vector_rank, text_rank: r.text_rank } : {}),
      })));
    }
    if (!provider.remote) console.error('(offline lexical embedder: results match shared words, not meaning)\n');
    if (rows.length === 0) console.log('No chunks stored yet.');
    rows.forEach((r, i) => {
      const speakers = r.speakers.length ? `  ${r.speakers.join(', ')}` : '';
      // Fused scores are small (at most 2 / (60 + 1)): a fourth digit tells neighbours apart.
      const score = isHybrid(r) ? `score ${r.score.toFixed(4)}  ${listsOf(r)}` : `score ${r.score.toFixed(3)}`;
      console.log(`${i + 1}. ${r.document_id} (v${r.version}) #${r.chunk_index}  ${formatMs(r.start_ms)}–${formatMs(r.end_ms)}${speakers}  ${score}`);
      if (isHybrid(r) && r.context) console.log(`   context: ${r.context.replace(/\n/g, ' ')}`);
      console.log(`   ${r.content.replace(/\n/g, '\n   ')}\n`);
    });
  } finally {
    await queue.close();
  }
}
