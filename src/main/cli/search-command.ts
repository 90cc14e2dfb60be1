/** `rag-worker search <query>`: embed the query with the configured provider and print the best chunks. */
import { WorkerFatalError } from '../../shared/errors.ts';
import { checkSearchModel } from '../../shared/model-consistency.ts';
import { inlineLexicalRunner } from '../providers/local-provider.ts';
import { createProvider } from '../runtime.ts';
import { formatMs, loadConfig, makeLogger, printJson } from './context.ts';
import { openQueue } from './open-queue.ts';

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
    const [embedding] = (await provider.embed([String(argv.query)])).vectors;
    const rows = await queue.store.matchChunks(embedding, Number(argv.k ?? 5), argv.documentId as string | undefined, argv.docVersion as string | undefined);
    if (argv.json) {
      return printJson(rows.map((r) => ({ document_id: r.document_id, version: r.version, chunk_index: r.chunk_index, content: r.content, start_ms: r.start_ms, end_ms: r.end_ms, speakers: r.speakers, score: r.score })));
    }
    if (!provider.remote) console.error('(offline lexical embedder: results match shared words, not meaning)\n');
    if (rows.length === 0) console.log('No chunks stored yet.');
    rows.forEach((r, i) => {
      const speakers = r.speakers.length ? `  ${r.speakers.join(', ')}` : '';
      console.log(`${i + 1}. ${r.document_id} (v${r.version}) #${r.chunk_index}  ${formatMs(r.start_ms)}–${formatMs(r.end_ms)}${speakers}  score ${r.score.toFixed(3)}`);
      console.log(`   ${r.content.replace(/\n/g, '\n   ')}\n`);
    });
  } finally {
    await queue.close();
  }
}
