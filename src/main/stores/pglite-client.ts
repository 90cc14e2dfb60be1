/** SqlClient over the embedded PGlite database (WASM PostgreSQL with pgvector), persisted in a directory. */
import fs from 'node:fs';
import path from 'node:path';
import { messages, PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite/vector';
import { EmbeddedInUseError, StorageCorruptionError, WorkerFatalError } from '../../shared/errors.ts';
import { classifyDbError, damagedDataDirAdvice, reasonOf, type DbErrorContext, type SqlClient } from './sql-client.ts';
import { isProcessAlive } from '../process-alive.ts';

/**
 * Opens (creating if needed) the embedded database. One process at a time may open a data directory:
 * a lock file holds the owner's pid, and a second process gets a clear error instead of a corrupted database.
 *
 * Damaged storage is a worker-level fault (StorageCorruptionError naming RAG_DATA_DIR and its path), never a
 * job's failure: the engine failing to start on an existing data directory (missing WAL, unreadable control
 * file, damaged catalog), the engine aborting (a WebAssembly RuntimeError: the instance is dead from then on),
 * or PostgreSQL reporting damaged or missing relation files (XX001, XX002, 58P01, …).
 */
export async function createPgliteClient(dataDir: string | undefined): Promise<SqlClient> {
  let releaseLock = () => {};
  const dir = dataDir === undefined ? undefined : path.resolve(dataDir);
  if (dir !== undefined) {
    fs.mkdirSync(dir, { recursive: true });
    releaseLock = lockDataDir(dir);
  }
  // An existing cluster (PG_VERSION is written by initdb): if it cannot start, its files are damaged.
  const existing = dir !== undefined && fs.existsSync(path.join(dir, 'PG_VERSION'));
  let db: PGlite;
  const exitCode = process.exitCode;
  try {
    db = await PGlite.create(dir ?? 'memory://', { extensions: { vector } });
  } catch (error) {
    process.exitCode = exitCode; // the WASM runtime's abort sets it; the CLI decides the exit code
    releaseLock();
    if (existing && (isWasmAbort(error) || !isSystemError(error))) {
      // The WebAssembly abort's own text ("Aborted(). Build with -sASSERTIONS…") says nothing to an operator.
      const why = isWasmAbort(error) ? 'it aborted while starting' : reasonOf(error);
      throw new StorageCorruptionError(`${damagedDataDirAdvice(dir)} (the embedded PostgreSQL could not start: ${why})`, {
        cause: error,
        setting: 'RAG_DATA_DIR',
      });
    }
    if (isSystemError(error)) {
      throw new WorkerFatalError(`cannot use RAG_DATA_DIR (${dir}): ${reasonOf(error)}`, { cause: error, setting: 'RAG_DATA_DIR' });
    }
    throw error;
  }
  const context: DbErrorContext = { phase: 'query', storage: 'embedded', setting: 'RAG_DATA_DIR', target: dir ?? 'memory://' };
  /** Set once the engine aborted: every later call fails with the same fault instead of touching a dead instance. */
  let dead: StorageCorruptionError | undefined;

  const classify = (error: unknown): unknown => {
    if (dead) return dead;
    if (isWasmAbort(error)) {
      dead = new StorageCorruptionError(
        `${damagedDataDirAdvice(dir ?? 'memory://')} (the embedded PostgreSQL aborted during a query; restart rag-worker once the directory is dealt with)`,
        { cause: error, setting: 'RAG_DATA_DIR' },
      );
      return dead;
    }
    const sqlstate = error instanceof messages.DatabaseError && typeof error.code === 'string' ? error.code : undefined;
    return classifyDbError(error, { ...context, sqlstate });
  };

  return {
    kind: 'embedded',
    crossProcessNotify: false,
    async query<T>(sql: string, params: unknown[] = []) {
      if (dead) throw dead;
      const exitCode = process.exitCode;
      try {
        const result = await db.query<T>(sql, params);
        return result.rows;
      } catch (error) {
        // The WASM runtime's abort sets process.exitCode: the process's exit code is not the engine's to decide.
        if (isWasmAbort(error)) process.exitCode = exitCode;
        throw classify(error);
      }
    },
    async exec(sql: string) {
      if (dead) throw dead;
      const exitCode = process.exitCode;
      try {
        await db.exec(sql);
      } catch (error) {
        if (isWasmAbort(error)) process.exitCode = exitCode;
        const classified = classify(error);
        // A failed script leaves its transaction aborted on the one connection there is: end it.
        if (!dead) await db.exec('rollback').catch(() => {});
        throw classified;
      }
    },
    async listen(channel, onNotify) {
      if (dead) throw dead;
      const unsubscribe = await db.listen(channel, (payload) => onNotify(payload));
      return async () => unsubscribe();
    },
    async close() {
      // Closing ends PGlite's WASM runtime, which resets process.exitCode to 0: keep the caller's.
      const exitCode = process.exitCode;
      try {
        if (!db.closed && !dead) await db.close();
      } catch (error) {
        if (!dead) throw classify(error);
      } finally {
        process.exitCode = exitCode;
        releaseLock();
      }
    },
  };
}

/** The WebAssembly runtime's own error (an `Aborted()`, an out-of-bounds access): the engine instance is dead. */
const WasmRuntimeError = (globalThis as unknown as { WebAssembly: { RuntimeError: new () => Error } }).WebAssembly.RuntimeError;
function isWasmAbort(error: unknown): boolean {
  return error instanceof WasmRuntimeError;
}

/** A Node file-system error (EACCES, ENOSPC, EROFS, …): the directory's environment, not its contents. */
function isSystemError(error: unknown): boolean {
  const e = error as { code?: unknown; syscall?: unknown } | null;
  return typeof e?.code === 'string' && typeof e.syscall === 'string';
}

function lockDataDir(dataDir: string): () => void {
  const lockPath = path.join(dataDir, 'rag-worker.lock');
  for (let tries = 0; tries < 2; tries++) {
    try {
      fs.writeFileSync(lockPath, String(process.pid), { flag: 'wx' });
      return () => fs.rmSync(lockPath, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number(fs.readFileSync(lockPath, 'utf8').trim());
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isProcessAlive(owner)) {
        throw new EmbeddedInUseError(
          `the embedded database in ${dataDir} is in use by process ${owner}; the embedded backend serves one process at a time ` +
            '(stop that process, or set DATABASE_URL to share a PostgreSQL queue between processes)',
          { ownerPid: owner, dataDir },
        );
      }
      fs.rmSync(lockPath, { force: true }); // stale lock of a dead process
    }
  }
  throw new WorkerFatalError(`could not lock the embedded database in ${dataDir}`);
}

