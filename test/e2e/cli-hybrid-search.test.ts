/**
 * `rag-worker search --hybrid` on the embedded backend (real PGlite + pgvector, offline embedder): vector and
 * keyword rankings fused, which ranking found each chunk shown, a chunk's context printed and searchable; and the
 * same call through the control socket while `start` holds the database.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createPgliteClient } from '../../src/main/stores/pglite-client.ts';
import { cliEnv, runCli, startCli, waitForEvent } from '../support/cli.ts';

const EXAMPLES = fileURLToPath(new URL('../../examples/transcripts/', import.meta.url));
const exampleFiles = fs.readdirSync(EXAMPLES).filter((f) => !f.endsWith('.md')).map((f) => path.join(EXAMPLES, f));
const CONTEXT = 'From a biology lecture: the professor explains the carbon-fixing enzyme, a zymologist favourite.';
let cwd: string;
let env: NodeJS.ProcessEnv;

interface Hit {
  document_id: string;
  chunk_index: number;
  content: string;
  score: number;
  context: string | null;
  vector_rank: number | null;
  text_rank: number | null;
}

const rrf = (h: Hit) => (h.vector_rank === null ? 0 : 1 / (60 + h.vector_rank)) + (h.text_rank === null ? 0 : 1 / (60 + h.text_rank));

before(async () => {
  cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'rw-hybrid-'));
  env = cliEnv({ RAG_THREADS: '1', RAG_POLL_INTERVAL_MS: '200' });
  const ingest = await runCli(['ingest', ...exampleFiles, '--json'], env, cwd);
  assert.equal(ingest.code, 0, ingest.stderr);
  // A context as Claude would write it, on the lecture's RuBisCO chunk (no Claude key here: set in the database).
  const sql = await createPgliteClient(path.join(cwd, '.rag-worker'));
  try {
    const rows = await sql.query<{ chunk_index: number }>(
      `update rag_chunks set context = $1 where (document_id, chunk_index) =
         (select document_id, min(chunk_index) from rag_chunks where document_id = 'lecture-notes.txt' and content like '%RuBisCO%' group by document_id)
       returning chunk_index`,
      [CONTEXT],
    );
    assert.equal(rows.length, 1);
  } finally {
    await sql.close();
  }
});
after(() => fs.rmSync(cwd, { recursive: true, force: true }));

test('search --hybrid --json: both rankings, their RRF score, and the context', async () => {
  const search = await runCli(['search', 'zymologist', '--hybrid', '-k', '3', '--json'], env, cwd);
  assert.equal(search.code, 0, search.stderr);
  const hits = JSON.parse(search.stdout) as Hit[];
  assert.equal(hits.length, 3);
  assert.deepEqual([hits[0].document_id, hits[0].text_rank, hits[0].context], ['lecture-notes.txt', 1, CONTEXT], 'a word only in the context');
  assert.match(hits[0].content, /RuBisCO/);
  for (const h of hits) assert.ok(Math.abs(h.score - rrf(h)) < 1e-12, JSON.stringify(h));
  assert.ok(hits.slice(1).every((h) => h.text_rank === null && h.vector_rank !== null), 'the others come from the vector ranking');

  const plain = JSON.parse((await runCli(['search', 'zymologist', '-k', '3', '--json'], env, cwd)).stdout) as Record<string, unknown>[];
  assert.ok(!plain.some((h) => h.document_id === 'lecture-notes.txt' && String(h.content).includes('RuBisCO')), 'vector search alone does not find it');
  assert.deepEqual(Object.keys(plain[0]).sort(), ['chunk_index', 'content', 'document_id', 'end_ms', 'score', 'speakers', 'start_ms', 'version'], 'plain search output unchanged');

  const billing = JSON.parse((await runCli(['search', 'billing database read replica', '--hybrid', '-k', '2', '--json'], env, cwd)).stdout) as Hit[];
  assert.equal(billing[0].document_id, 'product-meeting.vtt');
  assert.ok(billing[0].vector_rank !== null && billing[0].text_rank !== null, 'found by both');
});

test('search --hybrid prints which ranking found each chunk and the context line', async () => {
  const search = await runCli(['search', 'zymologist enzyme', '--hybrid', '-k', '3'], env, cwd);
  assert.equal(search.code, 0, search.stderr);
  const lines = search.stdout.split('\n');
  assert.match(lines[0], /^1\. lecture-notes\.txt \(v1\) #\d+ {2}\S+–\S+.* {2}score 0\.\d{4} {2}vector #\d+ · text #1$/);
  assert.equal(lines[1], `   context: ${CONTEXT}`);
  const first = lines.slice(2, lines.indexOf('', 2));
  assert.ok(first.every((l) => l.startsWith('   ')) && first.some((l) => l.includes('RuBisCO')), first.join('\n'));
  assert.match(search.stdout, /\n\d\. .* score 0\.\d{4} {2}(vector #\d+|text #\d+|vector #\d+ · text #\d+)\n/);
  const help = await runCli(['search', '--help'], env, cwd);
  assert.match(help.stdout, /--hybrid/);
});

test('search --hybrid goes through the control socket while start holds the embedded database', async () => {
  const worker = startCli(['start'], env, cwd);
  try {
    await waitForEvent(worker, 'worker_ready', undefined, 30_000);
    const search = await runCli(['search', 'zymologist', '--hybrid', '-k', '2', '--json'], env, cwd);
    assert.equal(search.code, 0, search.stderr);
    const [hit] = JSON.parse(search.stdout) as Hit[];
    assert.deepEqual([hit.document_id, hit.text_rank, hit.context], ['lecture-notes.txt', 1, CONTEXT]);
  } finally {
    worker.kill('SIGTERM');
    await worker.result;
  }
});
