/**
 * A damaged embedded data directory (RAG_DATA_DIR) is a worker-level fault, reported as such: missing WAL
 * files, garbage in global/pg_control, a corrupted table page. Each is made on a copy of a directory a real
 * run created (`rag-worker ingest`), then opened in-process and through the CLI: StorageCorruptionError /
 * exit 3, naming RAG_DATA_DIR and its path and saying what to do, without a WebAssembly abort text or stack.
 * Damage met by a running job releases the job untouched (no attempt used) instead of failing it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { StorageCorruptionError } from '../../src/shared/errors.ts';
import { checkSchema } from '../../src/main/stores/migrate.ts';
import { createPgliteClient } from '../../src/main/stores/pglite-client.ts';
import { QueueStore } from '../../src/main/stores/queue-store.ts';
import { cliEnv, runCli, type CliResult } from '../support/cli.ts';
import { mulberry32 } from '../support/prng.ts';

const EXAMPLE = fileURLToPath(new URL('../../examples/transcripts/lecture-notes.txt', import.meta.url));
const DIMS = 64;
let base: string;
let pristine: string;
/** Relation files (relative to the data directory) of the queue table, and of rag_chunks with its indexes. */
let queueFile: string;
let chunkFiles: string[];

function env(dataDir: string): NodeJS.ProcessEnv {
  return cliEnv({ RAG_DATA_DIR: dataDir, RAG_EMBEDDING_DIMENSIONS: String(DIMS), RAG_THREADS: '1', RAG_POLL_INTERVAL_MS: '200' });
}

function copyOf(name: string): string {
  const dir = path.join(base, name);
  fs.cpSync(pristine, dir, { recursive: true });
  return dir;
}

function garbage(bytes: number, seed: number): Buffer {
  const random = mulberry32(seed);
  return Buffer.from(Array.from({ length: bytes }, () => Math.floor(random() * 256)));
}

function overwrite(file: string, offset: number, data: Buffer): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, data, 0, data.length, offset);
  } finally {
    fs.closeSync(fd);
  }
}

const DAMAGE: Record<string, (dir: string) => void> = {
  'missing WAL files': (dir) => {
    const wal = path.join(dir, 'pg_wal');
    const segments = fs.readdirSync(wal).filter((f) => /^[0-9A-F]{24}$/.test(f));
    assert.ok(segments.length > 0, 'precondition: the directory has WAL segments');
    for (const f of segments) fs.rmSync(path.join(wal, f));
  },
  'garbage in global/pg_control': (dir) => fs.writeFileSync(path.join(dir, 'global', 'pg_control'), garbage(8192, 1)),
  'a corrupted page of the queue table': (dir) => overwrite(path.join(dir, queueFile), 0, garbage(8192, 2)),
};

function assertReported(output: string, dir: string, what: string): void {
  assert.match(output, /RAG_DATA_DIR/, `${what}: names the setting`);
  assert.ok(output.includes(dir), `${what}: names the directory ${dir}:\n${output}`);
  assert.match(output, /damaged/, what);
  assert.match(output, /move the directory aside .* re-ingest, or restore it from a backup/, `${what}: says what to do`);
  for (const noise of ['Aborted()', 'ASSERTIONS', 'wasm://', 'RuntimeError', 'wasm-function']) {
    assert.ok(!output.includes(noise), `${what}: no WebAssembly abort text or stack (${noise}):\n${output}`);
  }
}

function outputOf(r: CliResult): string {
  return r.stderr + r.stdout;
}

before(async () => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'rw-damage-'));
  pristine = path.join(base, 'pristine');
  const ingest = await runCli(['ingest', EXAMPLE, '--json'], env(pristine), base);
  assert.equal(ingest.code, 0, ingest.stderr);
  const sql = await createPgliteClient(pristine);
  try {
    const [row] = await sql.query<{ queue: string; chunks: string[] }>(
      `select pg_relation_filepath('rag_ingestion_queue') as queue,
              array(select pg_relation_filepath(c.oid) from pg_class c
                     where c.oid = 'rag_chunks'::regclass
                        or c.oid in (select indexrelid from pg_index where indrelid = 'rag_chunks'::regclass)) as chunks`,
    );
    queueFile = row.queue;
    chunkFiles = row.chunks;
  } finally {
    await sql.close();
  }
  assert.ok(fs.statSync(path.join(pristine, queueFile)).size >= 8192, 'precondition: the queue table has a page');
});

after(() => {
  if (base) fs.rmSync(base, { recursive: true, force: true });
});

describe('a damaged data directory is a worker-level fault naming RAG_DATA_DIR', () => {
  for (const [kind, damage] of Object.entries(DAMAGE)) {
    test(`${kind}: StorageCorruptionError at open; start --once exits 3`, async () => {
      const dir = copyOf(kind.replaceAll(/\W+/g, '-'));
      damage(dir);

      let error: unknown;
      try {
        const sql = await createPgliteClient(dir);
        try {
          await checkSchema(sql, DIMS);
        } finally {
          await sql.close().catch(() => {});
        }
      } catch (e) {
        error = e;
      }
      assert.ok(error instanceof StorageCorruptionError, `${kind}: ${String(error)}`);
      assert.equal(error.setting, 'RAG_DATA_DIR');
      assert.equal(error.category, 'worker_fatal');
      assertReported(error.message, dir, kind);
      assert.ok(!fs.existsSync(path.join(dir, 'rag-worker.lock')), 'the lock is released');

      // The worker, and (once: the same open path) a one-shot command. One process at a time: the directory is locked while open.
      if (kind === 'missing WAL files') {
        const status = await runCli(['status'], env(dir), base);
        assert.equal(status.code, 3, `status, ${kind}: ${outputOf(status)}`);
        assertReported(outputOf(status), dir, `status, ${kind}`);
      }
      const once = await runCli(['start', '--once'], env(dir), base);
      assert.equal(once.code, 3, `start --once, ${kind}: ${outputOf(once)}`);
      assertReported(outputOf(once), dir, `start --once, ${kind}`);
    });
  }

  test('damaged chunk storage met by a job: the job is released untouched (no attempt used), start --once exits 3', async () => {
    const dir = copyOf('chunks');
    const setup = await createPgliteClient(dir);
    let jobId: string;
    try {
      jobId = await new QueueStore(setup).enqueue({ documentId: 'lecture-notes', version: '2', format: 'text', payload: { text: 'Budget review. The replica freeze is lifted.' } });
    } finally {
      await setup.close();
    }
    for (const file of chunkFiles) {
      const size = fs.statSync(path.join(dir, file)).size;
      if (size > 0) overwrite(path.join(dir, file), 0, garbage(size, 3));
    }

    const once = await runCli(['start', '--once'], env(dir), base);
    assert.equal(once.code, 3, outputOf(once));
    assertReported(outputOf(once), dir, 'start --once');

    const sql = await createPgliteClient(dir);
    try {
      const [job] = await sql.query<{ status: string; attempts: number; last_error_category: string | null }>(
        'select status, attempts, last_error_category from rag_ingestion_queue where id = $1',
        [jobId],
      );
      assert.equal(job.status, 'queued', `the job is handed back, not failed: ${JSON.stringify(job)}`);
      assert.equal(job.attempts, 0, 'no attempt used');
    } finally {
      await sql.close();
    }
  });

  test('the engine aborting during a query (WebAssembly RuntimeError): StorageCorruptionError, and the dead instance is not used again', async () => {
    const dir = copyOf('abort-at-query');
    const sql = await createPgliteClient(dir);
    const original = PGlite.prototype.query;
    let calls = 0;
    PGlite.prototype.query = async function () {
      calls++;
      throw new (globalThis as unknown as { WebAssembly: { RuntimeError: new (m: string) => Error } }).WebAssembly.RuntimeError('Aborted(). Build with -sASSERTIONS for more info.');
    } as typeof original;
    try {
      const first = await sql.query('select 1').catch((e: unknown) => e);
      assert.ok(first instanceof StorageCorruptionError, String(first));
      assert.equal(first.setting, 'RAG_DATA_DIR');
      assertReported(first.message, dir, 'abort at query time');
      const second = await sql.query('select 1').catch((e: unknown) => e);
      assert.equal(second, first, 'later calls fail with the same fault');
      assert.equal(calls, 1, 'the aborted instance is not called again');
    } finally {
      PGlite.prototype.query = original;
      await sql.close();
    }
    assert.ok(!fs.existsSync(path.join(dir, 'rag-worker.lock')), 'close() releases the lock of an aborted instance');
  });
});
