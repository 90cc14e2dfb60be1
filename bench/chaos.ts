/**
 * bench/chaos — `npm run chaos [-- --quick] [--jobs M] [--workers K] [--seconds S]`
 *
 * Runs M jobs across K real worker processes on one PostgreSQL queue, SIGKILLs a random worker every 0.5–2 s
 * (and starts a replacement) for S seconds, then lets the survivors finish, and checks the invariants:
 *   - every job ends complete;
 *   - each document's chunk count equals a clean single-worker chunking of the same input;
 *   - no duplicate and no gap in chunk_index; rag_documents.chunk_count agrees; nothing left in staging;
 *   - embedding inputs sent to the provider ≤ 1.25 × chunks stored (resume skips committed batches).
 * Prints one table; exits 1 when an invariant does not hold.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { chunkTranscript } from '../src/threads/chunk-worker.ts';
import { startFakeOpenAI } from '../test/support/fake-openai.ts';
import { createTestDatabase } from '../test/support/test-db.ts';
import { generateTranscripts, mulberry32 } from './synthetic-transcripts.ts';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const quick = args.includes('--quick');
const JOBS = flag('jobs', quick ? 12 : 40);
const WORKERS = flag('workers', 3);
const SECONDS = flag('seconds', quick ? 12 : 40);
const SEGMENTS = flag('segments', quick ? 60 : 120);
const DIMS = 64;
const CLI = fileURLToPath(new URL('../src/main/cli.ts', import.meta.url));
const KEY = 'sk-chaos-0123456789abcdef';
const CHUNKING = { maxTokens: 128, charLimit: 400, encoding: 'cl100k_base' };

const rng = mulberry32(7);
const db = await createTestDatabase(DIMS);
// Slow enough that kills land mid-job: every request takes 40 ms + 2 ms per 1k tokens.
const provider = await startFakeOpenAI({ apiKey: KEY, dimensions: DIMS, latency: { baseMs: 40, perKTokensMs: 2 }, record: false });
const pool = new pg.Pool({ connectionString: db.url, max: 2 });
pool.on('error', () => {}); // the final drop terminates idle connections
const workers = new Set<ChildProcess>();
let kills = 0;
let started = 0;

function startWorker(): void {
  const child = spawn(process.execPath, [CLI, 'start'], {
    stdio: ['ignore', 'ignore', 'ignore'],
    env: {
      PATH: process.env.PATH,
      DATABASE_URL: db.url,
      OPENAI_API_KEY: KEY,
      OPENAI_BASE_URL: provider.url,
      RAG_EMBEDDING_DIMENSIONS: String(DIMS),
      RAG_CHUNK_MAX_TOKENS: String(CHUNKING.maxTokens),
      RAG_EMBEDDING_CHAR_LIMIT: String(CHUNKING.charLimit),
      RAG_EMBEDDING_BATCH: '8',
      RAG_MAX_CONCURRENT_JOBS: '3',
      RAG_LEASE_SECONDS: '3',
      RAG_POLL_INTERVAL_MS: '250',
      RAG_RETRY_BASE_MS: '100',
      RAG_THREADS: '1',
      RAG_MAX_ATTEMPTS: '50',
      RAG_LOG_FORMAT: 'json',
      RAG_LOG_LEVEL: 'warn',
    },
  });
  started++;
  workers.add(child);
  child.on('exit', () => workers.delete(child));
}

const transcripts = generateTranscripts(JOBS, SEGMENTS, { seed: 11, prefix: 'chaos' });
const expected = new Map<string, number>();
for (const t of transcripts) {
  const r = chunkTranscript({ format: t.format, payload: t.payload, options: CHUNKING });
  if (!r.ok) throw new Error(r.message);
  expected.set(t.documentId, r.chunks.length);
  await pool.query('select rag_enqueue($1, $2, $3, $4, $5::jsonb)', [t.documentId, '1', t.title, t.format, JSON.stringify(t.payload)]);
}
const expectedChunks = [...expected.values()].reduce((a, b) => a + b, 0);

const t0 = performance.now();
for (let i = 0; i < WORKERS; i++) startWorker();
const chaosUntil = t0 + SECONDS * 1000;
const countDone = async () => (await pool.query(`select count(*)::int as n from rag_ingestion_queue where status in ('complete', 'failed', 'cancelled')`)).rows[0].n as number;
while (performance.now() < chaosUntil && (await countDone()) < JOBS) {
  await new Promise((r) => setTimeout(r, 500 + rng() * 1500));
  const victims = [...workers];
  const victim = victims[Math.floor(rng() * victims.length)];
  if (victim) {
    victim.kill('SIGKILL');
    kills++;
    setTimeout(startWorker, 200);
  }
}
const chaosSeconds = (performance.now() - t0) / 1000;
while ((await countDone()) < JOBS) await new Promise((r) => setTimeout(r, 250));
const wallSeconds = (performance.now() - t0) / 1000;
for (const w of workers) w.kill('SIGTERM');
await Promise.all([...workers].map((w) => new Promise((r) => w.once('exit', r))));

const statuses = (await pool.query(`select status, count(*)::int as n from rag_ingestion_queue group by status`)).rows as { status: string; n: number }[];
const perDoc = (await pool.query(`select document_id, count(*)::int as n, count(distinct chunk_index)::int as distinct_n,
                                         min(chunk_index) as lo, max(chunk_index) as hi from rag_chunks group by document_id`)).rows;
const docs = (await pool.query(`select document_id, chunk_count from rag_documents`)).rows as { document_id: string; chunk_count: number }[];
const staging = (await pool.query(`select count(*)::int as n from rag_unpublished_chunks`)).rows[0].n as number;
const attempts = (await pool.query(`select sum(attempts)::int as n, max(attempts)::int as mx from rag_ingestion_queue`)).rows[0];
const stored = perDoc.reduce((a, r) => a + r.n, 0);
const inputs = provider.stats().inputs;

const problems: string[] = [];
const complete = statuses.find((s) => s.status === 'complete')?.n ?? 0;
if (complete !== JOBS) problems.push(`only ${complete}/${JOBS} jobs complete: ${JSON.stringify(statuses)}`);
for (const r of perDoc) {
  const want = expected.get(r.document_id);
  if (r.n !== want) problems.push(`${r.document_id}: ${r.n} chunks, a clean run gives ${want}`);
  if (r.distinct_n !== r.n) problems.push(`${r.document_id}: duplicate chunk_index`);
  if (r.lo !== 0 || r.hi !== r.n - 1) problems.push(`${r.document_id}: gap in chunk_index (${r.lo}..${r.hi} for ${r.n})`);
}
for (const d of docs) if (d.chunk_count !== expected.get(d.document_id)) problems.push(`${d.document_id}: rag_documents.chunk_count ${d.chunk_count}`);
if (staging !== 0) problems.push(`${staging} unpublished chunks left (rag_unpublished_chunks)`);
const ratio = inputs / Math.max(1, stored);
if (ratio > 1.25) problems.push(`embedding inputs ${inputs} = ${ratio.toFixed(2)}× chunks stored`);

const rows: [string, string][] = [
  ['jobs × segments', `${JOBS} × ${SEGMENTS}`],
  ['worker processes (at once / started)', `${WORKERS} / ${started}`],
  ['SIGKILLs', `${kills} over ${chaosSeconds.toFixed(1)} s`],
  ['wall time to all done', `${wallSeconds.toFixed(1)} s`],
  ['jobs complete', `${complete} / ${JOBS}`],
  ['attempts (sum / max per job)', `${attempts.n} / ${attempts.mx}`],
  ['chunks stored / clean run', `${stored} / ${expectedChunks}`],
  ['duplicate or missing chunk_index', `${problems.filter((p) => /duplicate|gap/.test(p)).length}`],
  ['embedding inputs ÷ chunks (target ≤ 1.25)', `${ratio.toFixed(3)}`],
  ['invariants', problems.length === 0 ? 'all hold' : `${problems.length} violated`],
];
console.log('\nbench/chaos');
for (const [k, v] of rows) console.log(`  ${k.padEnd(44)} ${v}`);
for (const p of problems) console.log(`  ✖ ${p}`);

await pool.end();
await provider.close();
await db.drop();
process.exit(problems.length === 0 ? 0 : 1);
