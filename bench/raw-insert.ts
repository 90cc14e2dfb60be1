/**
 * Raw bulk insert of precomputed chunk rows (precomputed vector literals) into rag_chunks: the ceiling the
 * worker's end-to-end rate is compared with in scenario b. Two ways, both timed: COPY through psql's \copy
 * (CSV on stdin) and multi-row INSERT … SELECT FROM unnest($arrays) in one transaction; each session first gets the
 * backend heap warm-up the worker's job connections get (pg-client.ts backendWarmupSql), untimed, so both sides
 * insert into HNSW at the same per-row cost.
 */
import { spawn, spawnSync } from 'node:child_process';
import pg from 'pg';
import { SETTINGS } from '../src/shared/config.ts';
import { backendWarmupSql } from '../src/main/stores/pg-client.ts';

const WARMUP_BYTES = Number(SETTINGS.pgHeapWarmupMb.default) * 1024 * 1024;

export interface ChunkRow {
  document_id: string;
  version: string;
  chunk_index: number;
  content: string;
  token_count: number;
  segment_seq_start: number | null;
  segment_seq_end: number | null;
  start_ms: string | null;
  end_ms: string | null;
  speakers: string;
  embedding: string;
  embedding_model: string;
  content_hash: string;
}

const COLUMNS = ['document_id', 'version', 'chunk_index', 'content', 'token_count', 'segment_seq_start', 'segment_seq_end', 'start_ms', 'end_ms', 'speakers', 'embedding', 'embedding_model', 'content_hash'] as const;

/** Every chunk row of a database as text, in insertion order. */
export async function readChunkRows(databaseUrl: string): Promise<ChunkRow[]> {
  const c = new pg.Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    const r = await c.query<ChunkRow>(
      `select document_id, version, chunk_index, content, token_count, segment_seq_start, segment_seq_end, start_ms::text, end_ms::text,
              speakers::text as speakers, embedding::text as embedding, embedding_model, content_hash
         from rag_chunks order by id`,
    );
    return r.rows;
  } finally {
    await c.end();
  }
}

function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = String(v);
  return `"${s.replace(/"/g, '""')}"`;
}

export function psqlAvailable(): boolean {
  return spawnSync('psql', ['--version'], { stdio: 'ignore' }).status === 0;
}

/**
 * COPY … FROM STDIN (CSV) via psql; resolves with the milliseconds it took (process start included).
 * parallel > 1 splits the rows into that many COPYs on as many connections, run at once.
 */
export async function copyRows(databaseUrl: string, rows: readonly ChunkRow[], parallel = 1): Promise<number> {
  const per = Math.ceil(rows.length / parallel);
  const parts = Array.from({ length: parallel }, (_, i) => rows.slice(i * per, (i + 1) * per)).filter((p) => p.length > 0);
  const csvs = parts.map((part) => part.map((r) => COLUMNS.map((k) => csvField(r[k])).join(',')).join('\n') + '\n');
  const started = performance.now();
  await Promise.all(csvs.map((csv) => psqlCopy(databaseUrl, csv)));
  return performance.now() - started;
}

function psqlCopy(databaseUrl: string, csv: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const child = spawn('psql', [databaseUrl, '-v', 'ON_ERROR_STOP=1', '-q', '-c', backendWarmupSql(WARMUP_BYTES), '-c', `\\copy rag_chunks (${COLUMNS.join(', ')}) from stdin with (format csv)`], {
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`psql \\copy exited ${code}: ${err.trim().slice(0, 300)}`))));
    child.stdin.end(csv);
  });
}

/** Multi-row INSERT … SELECT FROM unnest(arrays), `batch` rows per statement, all in one transaction. */
export async function insertRows(databaseUrl: string, rows: readonly ChunkRow[], batch = 500): Promise<number> {
  const c = new pg.Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    // The same backend heap warm-up the worker's job connections get (RAG_PG_HEAP_WARMUP_MB's default), untimed.
    await c.query(backendWarmupSql(WARMUP_BYTES));
    const started = performance.now();
    await c.query('begin');
    for (let i = 0; i < rows.length; i += batch) {
      const part = rows.slice(i, i + batch);
      const col = (k: (typeof COLUMNS)[number]) => part.map((r) => r[k]);
      await c.query(
        `insert into rag_chunks (${COLUMNS.join(', ')})
         select d, v, ci, co, tc, ss, se, sm, em, sp::text[], e::vector, m, h
           from unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::int[], $6::int[], $7::int[], $8::bigint[], $9::bigint[],
                       $10::text[], $11::text[], $12::text[], $13::text[]) as t(d, v, ci, co, tc, ss, se, sm, em, sp, e, m, h)`,
        COLUMNS.map(col),
      );
    }
    await c.query('commit');
    return performance.now() - started;
  } finally {
    await c.end();
  }
}
