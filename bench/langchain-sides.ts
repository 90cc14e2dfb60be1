/**
 * Scenario f's two sides, each run as its own process by scenario-langchain.ts:
 *   node bench/langchain-sides.ts '{"side":"langchain"|"rag-worker", ...}'
 * Both regenerate the same seeded transcripts, time only the ingestion (set-up, table creation and the
 * verification afterwards are outside the timed region), and print one {"result": ...} line.
 *
 * langchain: what a team writes instead of a worker — for each transcript in turn: the text (`Speaker: text`
 * lines, from the already-parsed segments: no parsing is timed on this side), RecursiveCharacterTextSplitter
 * (1,200 characters, no overlap: our chunker's RAG_EMBEDDING_CHAR_LIMIT and no overlap), OpenAIEmbeddings
 * against the simulated endpoint (configuration.baseURL; LangChain's defaults: batchSize 512, maxConcurrency 2,
 * its AsyncCaller's 6 retries with exponential backoff honouring retry-after), PGVectorStore.addDocuments into
 * its own table (created by PGVectorStore.initialize, plus createHnswIndex so both sides maintain an HNSW index).
 * rag-worker: the real worker in this process (openWorker as the other scenarios), no RAG_EMBEDDING_RPM/TPM:
 * enqueue every transcript, then coordinator.run({ once: true }).
 */
import pg from 'pg';
import { childResult, cpuMsSince } from './child-process.ts';
import { chunkCount, enqueueAll, openWorker, statusCounts, workerEnv } from './harness.ts';
import { backendCpu, backendCpuDelta, functionTimes, trackFunctions, type FunctionTime } from './pg-cpu.ts';
import { generateTranscripts } from './synthetic-transcripts.ts';

export interface SideParams {
  side: 'langchain' | 'rag-worker';
  databaseUrl: string;
  baseURL: string;
  transcripts: number;
  segments: number;
  prefix: string;
  model: string;
  dimensions: number;
  query: string;
  /**
   * rag-worker: other processes work the same queue (the shared-account run). A process ends when nothing is
   * left to claim, while its own jobs may still run elsewhere, so completeness is checked by the parent.
   */
  sharedQueue?: boolean;
  /** rag-worker: settings added to its environment. */
  workerSettings?: Record<string, string>;
}

export interface SideResult {
  side: SideParams['side'];
  completed: boolean;
  error?: string;
  wallMs: number;
  cpu: { userMs: number; systemMs: number; totalMs: number };
  pgCpuMs: number | null;
  /** Chunks the side meant to store (splitter output / the worker's chunks_total) and rows found afterwards. */
  expectedChunks: number;
  storedRows: number;
  transcriptsDone: number;
  searchRows: number;
  /** rag-worker: SQL functions by self time (pg_stat_user_functions, track_functions = all). */
  topFunctions?: FunctionTime[];
  /** rag-worker: time to start its chunking threads before the clock started. */
  warmupMs?: number;
}

export const LANGCHAIN_TABLE = 'langchain_chunks';

function messageOf(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return text.replace(/\s+/g, ' ').slice(0, 300);
}

async function runLangChain(p: SideParams): Promise<SideResult> {
  const [{ OpenAIEmbeddings }, { PGVectorStore }, { RecursiveCharacterTextSplitter }] = await Promise.all([
    import('@langchain/openai'),
    import('@langchain/community/vectorstores/pgvector'),
    import('@langchain/textsplitters'),
  ]);
  const transcripts = generateTranscripts(p.transcripts, p.segments, { prefix: p.prefix });
  const embeddings = new OpenAIEmbeddings({ model: p.model, dimensions: p.dimensions, apiKey: 'bench', configuration: { baseURL: p.baseURL } });
  const store = await PGVectorStore.initialize(embeddings, {
    postgresConnectionOptions: { connectionString: p.databaseUrl },
    tableName: LANGCHAIN_TABLE,
    dimensions: p.dimensions,
    distanceStrategy: 'cosine',
  });
  await store.createHnswIndex({ dimensions: p.dimensions });
  const splitter = new RecursiveCharacterTextSplitter({ chunkSize: 1200, chunkOverlap: 0 });
  const probe = new pg.Client({ connectionString: p.databaseUrl });
  await probe.connect();
  let expected = 0;
  let done = 0;
  let error: string | undefined;
  const pgBefore = await backendCpu(probe);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  try {
    for (const t of transcripts) {
      const text = t.segments.map((s) => `${s.speaker}: ${s.text}`).join('\n');
      const docs = await splitter.createDocuments([text], [{ document_id: t.documentId, title: t.title }]);
      expected += docs.length;
      await store.addDocuments(docs);
      done++;
    }
  } catch (e) {
    error = messageOf(e);
  }
  const wallMs = performance.now() - t0;
  const cpu = cpuMsSince(cpu0);
  const pgCpuMs = backendCpuDelta(pgBefore, await backendCpu(probe));
  const storedRows = Number((await probe.query<{ n: string }>(`select count(*) as n from ${LANGCHAIN_TABLE}`)).rows[0].n);
  await probe.end();
  let searchRows = 0;
  if (!error) searchRows = (await store.similaritySearch(p.query, 3)).length;
  await store.end();
  return { side: 'langchain', completed: !error && done === transcripts.length, error, wallMs, cpu, pgCpuMs, expectedChunks: expected, storedRows, transcriptsDone: done, searchRows };
}

async function runRagWorker(p: SideParams): Promise<SideResult> {
  const transcripts = generateTranscripts(p.transcripts, p.segments, { prefix: p.prefix });
  // Diagnostics: time per SQL function (pg_stat_user_functions), for this database's new connections.
  await trackFunctions(p.databaseUrl);
  const worker = await openWorker(workerEnv(p.databaseUrl, { OPENAI_API_KEY: 'bench', OPENAI_BASE_URL: p.baseURL, ...p.workerSettings }), 'f-rag-worker');
  // The chunking threads start on first use and then live as long as the process (tokenizer load, TypeScript
  // stripping of their modules): start them before the clock, as LangChain's imports are before its clock.
  const w0 = performance.now();
  const tiny = { format: 'segments', payload: { segments: [{ seq: 1, speaker: 'Ann', text: 'Warm-up.' }] }, options: { maxTokens: 512, charLimit: 1200, encoding: 'cl100k_base' } };
  await Promise.all(Array.from({ length: worker.rt.pool.threads }, () => worker.rt.pool.chunk(tiny)));
  const warmupMs = performance.now() - w0;
  const probe = new pg.Client({ connectionString: p.databaseUrl });
  await probe.connect();
  let error: string | undefined;
  const pgBefore = await backendCpu(probe);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  try {
    await enqueueAll(worker.rt, transcripts);
    await worker.coordinator.run({ once: true });
  } catch (e) {
    error = messageOf(e);
  }
  const wallMs = performance.now() - t0;
  const cpu = cpuMsSince(cpu0);
  const pgCpuMs = backendCpuDelta(pgBefore, await backendCpu(probe));
  const counts = await statusCounts(worker.rt);
  const storedRows = await chunkCount(worker.rt);
  const expected = Number((await probe.query<{ n: string | null }>('select sum(chunks_total) as n from rag_ingestion_queue')).rows[0].n ?? 0);
  await probe.end();
  const complete = counts.complete ?? 0;
  if (!error && !p.sharedQueue && complete < transcripts.length) error = `jobs not complete: ${JSON.stringify(counts)}`;
  let searchRows = 0;
  try {
    // Through the scheduler, as the worker's own requests go: a shared account may answer 429 here too.
    const [vector] = await worker.rt.scheduler.embed('search', 0, [{ text: p.query, tokens: 16 }]);
    searchRows = (await worker.rt.store.matchChunks(vector, 3)).length;
  } catch (e) {
    error ??= `search: ${messageOf(e)}`;
  }
  await worker.close();
  const topFunctions = await functionTimes(p.databaseUrl);
  return { topFunctions, side: 'rag-worker', completed: !error, error, wallMs, cpu, pgCpuMs, expectedChunks: expected, storedRows, transcriptsDone: complete, searchRows, warmupMs };
}

async function main(): Promise<void> {
  const p = JSON.parse(process.argv[2] ?? '{}') as SideParams;
  const result = p.side === 'langchain' ? await runLangChain(p) : await runRagWorker(p);
  childResult(result);
}

main().catch((error: unknown) => {
  process.stderr.write(`langchain-sides: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(2);
});
