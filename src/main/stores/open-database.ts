/** Opening the configured database (PostgreSQL or the embedded PGlite) and preparing the embedded one's schema. */
import type { Config } from '../../shared/config.ts';
import { SchemaError, WorkerFatalError } from '../../shared/errors.ts';
import type { Logger } from '../logging/logger.ts';
import { checkSchema, migrate } from './migrate.ts';
import type { SqlClient } from './sql-client.ts';

/** Job-lane connections beyond one per concurrent job (claims, the status reads, a job's overlapping lookups). */
const EXTRA_JOB_CONNECTIONS = 3;

export async function openDatabase(config: Config, logger: Logger): Promise<SqlClient> {
  // Each driver is loaded only when used: a short command on one backend does not pay for the other.
  if (config.store === 'supabase') {
    throw new WorkerFatalError(
      'this command needs a SQL connection, which SUPABASE_URL / SUPABASE_SERVICE_ROLE_KEY (the REST API) do not give: set DATABASE_URL to the ' +
        "Supabase database's connection string (Project Settings → Database → Connection string)",
      { setting: 'DATABASE_URL' },
    );
  }
  if (config.store === 'postgres') {
    // Budget: this pool + 1 control connection + 1 LISTEN connection (see pg-client.ts and the README).
    const { createPgClient } = await import('./pg-client.ts');
    return createPgClient({
      connectionString: config.databaseUrl!,
      maxConnections: config.maxConcurrentJobs + EXTRA_JOB_CONNECTIONS,
      logger,
      applicationName: `rag-worker ${config.workerId}`,
      backendWarmupBytes: config.pgHeapWarmupMb * 1024 * 1024,
    });
  }
  const { createPgliteClient } = await import('./pglite-client.ts');
  return createPgliteClient(config.dataDir);
}

/** Embedded databases are migrated on first use (zero setup); PostgreSQL needs an explicit `rag-worker migrate`. */
export async function ensureSchema(sql: SqlClient, config: Config, logger: Logger): Promise<void> {
  if (sql.kind === 'embedded') {
    try {
      await checkSchema(sql, config.embeddingDimensions);
      return;
    } catch (error) {
      // Only a missing schema is ours to create; damaged storage or a dimension mismatch is reported as it is.
      if (!(error instanceof SchemaError)) throw error;
      logger.info(`🗄️  Preparing the embedded database in ${config.dataDir}`);
      await migrate(sql, config.embeddingDimensions);
      return;
    }
  }
  await checkSchema(sql, config.embeddingDimensions);
}
