/**
 * Connection poolers in transaction mode (Supabase's Supavisor on port 6543, PgBouncer with pool_mode =
 * transaction) lend a server connection per transaction: session state does not survive, so LISTEN never
 * delivers a notification, and named prepared statements may land on a connection that never saw them.
 * Told apart from session poolers and direct connections by what DATABASE_URL says. Pure.
 */
export interface TransactionPooler {
  /** What gave it away, for the log line. */
  why: string;
}

/** Supabase's transaction pooler listens on 6543 (its session pooler and direct connections on 5432). */
export const SUPABASE_TRANSACTION_POOLER_PORT = '6543';

export function transactionPoolerOf(databaseUrl: string): TransactionPooler | undefined {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    return undefined;
  }
  // The convention Prisma and others use to mark a PgBouncer URL in transaction mode.
  if (url.searchParams.get('pgbouncer') === 'true') return { why: 'pgbouncer=true in DATABASE_URL' };
  if (url.port === SUPABASE_TRANSACTION_POOLER_PORT) return { why: `port ${SUPABASE_TRANSACTION_POOLER_PORT}, Supabase's transaction pooler` };
  return undefined;
}
