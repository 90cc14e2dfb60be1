/**
 * The newcomer path on the embedded backend (real PGlite + pgvector, offline embedder), as the README shows it:
 * ingest the bundled examples, search finds the right passage; re-ingesting reuses stored embeddings;
 * every real-world fixture file ingests.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { OFFLINE_EMBEDDER_NOTICE } from '../../src/main/runtime.ts';
import { cliEnv, parseLogLines, runCli } from '../support/cli.ts';

const EXAMPLES = fileURLToPath(new URL('../../examples/transcripts/', import.meta.url));
const FIXTURES = fileURLToPath(new URL('../../../shared/fixtures/', import.meta.url));
const STT_FIXTURES = fileURLToPath(new URL('../../../shared/fixtures-stt/', import.meta.url));
const OWN_STT = fileURLToPath(new URL('../fixtures/stt/', import.meta.url));
const exampleFiles = fs.readdirSync(EXAMPLES).filter((f) => !f.endsWith('.md')).map((f) => path.join(EXAMPLES, f));
let cwd: string;
let env: NodeJS.ProcessEnv;

before(() => {
  cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'rw-embedded-'));
  env = cliEnv({ RAG_THREADS: '2' });
});
after(() => fs.rmSync(cwd, { recursive: true, force: true }));

test('ingest the bundled examples on the embedded default, then search finds the passage', async () => {
  const ingest = await runCli(['ingest', ...exampleFiles, '--json'], env, cwd);
  assert.equal(ingest.code, 0, ingest.stderr);
  const jobs = JSON.parse(ingest.stdout) as { document_id: string; status: string; chunks: number }[];
  assert.equal(jobs.length, exampleFiles.length);
  for (const j of jobs) {
    assert.equal(j.status, 'complete', j.document_id);
    assert.ok(j.chunks > 0);
  }
  assert.ok(fs.existsSync(path.join(cwd, '.rag-worker')), 'data kept under ./.rag-worker');
  // No event marks the notice yet: compare with the notice itself, so its wording can still change freely.
  const notice = parseLogLines(ingest.stderr).find((l) => l.msg === OFFLINE_EMBEDDER_NOTICE);
  assert.ok(notice, `the offline embedder is announced:\n${ingest.stderr.slice(-2000)}`);
  assert.equal(notice.level, 'warn');

  const search = await runCli(['search', 'migrating the billing database to a read replica', '-k', '3', '--json'], env, cwd);
  assert.equal(search.code, 0, search.stderr);
  const hits = JSON.parse(search.stdout) as { document_id: string; content: string; score: number }[];
  assert.equal(hits[0].document_id, 'product-meeting.vtt');
  assert.match(hits[0].content, /billing database to a read replica/);

  const lecture = await runCli(['search', 'Calvin cycle', '-k', '1', '--json', '--document-id', 'lecture-notes.txt'], env, cwd);
  const [hit] = JSON.parse(lecture.stdout) as { document_id: string; content: string }[];
  assert.equal(hit.document_id, 'lecture-notes.txt');
  assert.match(hit.content, /Calvin cycle/i);
});

test('re-ingesting an unchanged document reuses every stored embedding', async () => {
  const file = exampleFiles.find((f) => f.endsWith('.vtt'))!;
  const again = await runCli(['ingest', file, '--version', '2', '--json'], env, cwd);
  assert.equal(again.code, 0, again.stderr);
  const [job] = JSON.parse(again.stdout) as { status: string; chunks: number; reused: number }[];
  assert.equal(job.status, 'complete');
  assert.equal(job.reused, job.chunks, 'all chunks reused from version 1');
  const status = await runCli(['status', '--json'], env, cwd);
  const counts = JSON.parse(status.stdout) as Record<string, number>;
  assert.equal(counts.complete, exampleFiles.length + 1);
});

test('every real-world fixture file ingests (../shared/fixtures)', async (t) => {
  if (!fs.existsSync(FIXTURES)) {
    t.skip('../shared/fixtures absent: real-file ingest test skipped');
    return;
  }
  const files = fs.readdirSync(FIXTURES).filter((f) => !f.endsWith('.tsv')).map((f) => path.join(FIXTURES, f));
  const ingest = await runCli(['ingest', ...files, '--json'], env, cwd);
  assert.equal(ingest.code, 0, ingest.stderr);
  const jobs = JSON.parse(ingest.stdout) as { document_id: string; status: string; chunks: number; segments: number }[];
  for (const j of jobs) {
    assert.equal(j.status, 'complete', j.document_id);
    assert.ok(j.segments > 1 && j.chunks > 1, `${j.document_id}: ${j.segments} segments, ${j.chunks} chunks`);
  }
});

test('every real speech-to-text file ingests (../shared/fixtures-stt), with its speakers on the chunks', async (t) => {
  if (!fs.existsSync(STT_FIXTURES)) {
    t.skip('../shared/fixtures-stt absent: real speech-to-text ingest test skipped');
    return;
  }
  const files = fs.readdirSync(STT_FIXTURES).filter((f) => !f.endsWith('.tsv')).map((f) => path.join(STT_FIXTURES, f));
  const ingest = await runCli(['ingest', ...files, '--json'], env, cwd);
  assert.equal(ingest.code, 0, ingest.stderr);
  const jobs = JSON.parse(ingest.stdout) as { document_id: string; status: string; chunks: number; segments: number }[];
  assert.equal(jobs.length, files.length);
  for (const j of jobs) {
    assert.equal(j.status, 'complete', j.document_id);
    assert.ok(j.segments >= 1 && j.chunks >= 1, `${j.document_id}: ${j.segments} segments, ${j.chunks} chunks`);
  }
  const search = await runCli(['search', 'space walk power switches', '-k', '1', '--json', '--document-id', 'deepgram-diarized-1.json'], env, cwd);
  assert.equal(search.code, 0, search.stderr);
  const [hit] = JSON.parse(search.stdout) as { speakers: string[]; start_ms: number }[];
  assert.ok(hit.speakers.every((s) => /^Speaker [0-2]$/.test(s)) && hit.speakers.length > 0, hit.speakers.join(', '));
});

test('--speaker-names renames the labels a speech-to-text file gives; a bad map is refused before anything is queued', async () => {
  const file = path.join(OWN_STT, 'aws-transcribe.json');
  const ingest = await runCli(['ingest', file, '--document-id', 'named-call', '--speaker-names', '{"spk_0": "Ann", "spk_1": "Bo"}', '--json'], env, cwd);
  assert.equal(ingest.code, 0, ingest.stderr);
  const [job] = JSON.parse(ingest.stdout) as { status: string }[];
  assert.equal(job.status, 'complete');
  const search = await runCli(['search', 'rolling back the build', '-k', '5', '--json', '--document-id', 'named-call'], env, cwd);
  const hits = JSON.parse(search.stdout) as { speakers: string[] }[];
  assert.deepEqual([...new Set(hits.flatMap((h) => h.speakers))].sort(), ['Ann', 'Bo']);

  const before = JSON.parse((await runCli(['status', '--json'], env, cwd)).stdout) as Record<string, number>;
  const bad = await runCli(['ingest', file, '--document-id', 'bad-names', '--speaker-names', '{"spk_0": 7}'], env, cwd);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /--speaker-names\["spk_0"\]: expected a non-empty name, got a number \(7\)/);
  const after = JSON.parse((await runCli(['status', '--json'], env, cwd)).stdout) as Record<string, number>;
  assert.deepEqual(after, before, 'nothing was queued');
});

test('search with another embedding model than the stored chunks is refused, naming the setting', async () => {
  // The chunks above were embedded offline; a key switches the query to OpenAI (refused before any request).
  const search = await runCli(['search', 'billing database', '--json'], { ...env, OPENAI_API_KEY: 'sk-other-model-0123456789abcdef' }, cwd);
  assert.equal(search.code, 3, search.stderr);
  assert.match(search.stderr, /stored chunks were embedded with local-lexical-hash-v1 \(\d+ documents\), but this search would embed the query with text-embedding-3-small/);
  assert.ok(!search.stderr.includes('sk-other-model'), 'the key is not shown');
});
