/** SqlClient over the embedded PGlite database (WASM PostgreSQL with pgvector), persisted in a directory. */
import fs from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite/vector';
import { WorkerFatalError } from '../../shared/errors.ts';
import { classifyDbError, type SqlClient } from './sql-client.ts';

/**
 * Opens (creating if needed) the embedded database. One process at a time may open a data directory:
 * a lock file holds the owner's pid, and a second process gets a clear error instead of a corrupted database.
 */
export async function createPgliteClient(dataDir: string | undefined): Promise<SqlClient> {
  let releaseLock = () => {};
  if (dataDir !== undefined) {
    fs.mkdirSync(dataDir, { recursive: true });
    releaseLock = lockDataDir(dataDir);
  }
  let db: PGlite;
  try {
    db = await PGlite.create(dataDir ?? 'memory://', { extensions: { vector } });
  } catch (error) {
    releaseLock();
    throw error;
  }
  return {
    kind: 'embedded',
    crossProcessNotify: false,
    async query<T>(sql: string, params: unknown[] = []) {
      try {
        const result = await db.query<T>(sql, params);
        return result.rows;
      } catch (error) {
        throw classifyDbError(error);
      }
    },
    async exec(sql: string) {
      try {
        await db.exec(sql);
      } catch (error) {
        throw classifyDbError(error);
      }
    },
    async listen(channel, onNotify) {
      const unsubscribe = await db.listen(channel, (payload) => onNotify(payload));
      return async () => unsubscribe();
    },
    async close() {
      if (!db.closed) await db.close();
      releaseLock();
    },
  };
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
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
        throw new WorkerFatalError(
          `the embedded database in ${dataDir} is in use by process ${owner}; the embedded backend serves one process at a time ` +
            '(stop that process, or set DATABASE_URL to share a PostgreSQL queue between processes)',
        );
      }
      fs.rmSync(lockPath, { force: true }); // stale lock of a dead process
    }
  }
  throw new WorkerFatalError(`could not lock the embedded database in ${dataDir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
