/**
 * The Supabase mode's store (SUPABASE_URL + SUPABASE_SERVICE_ROLE_KEY, no DATABASE_URL) and its schema check: the
 * schema must be applied beforehand (PostgREST cannot run DDL), so a missing or older one stops start-up saying
 * how to apply it.
 */
import type { Config } from '../../shared/config.ts';
import { SchemaError, WorkerFatalError } from '../../shared/errors.ts';
import { SCHEMA_VERSION, type SchemaFacts } from './migrate.ts';
import { SupabaseQueueStore } from './supabase-queue-store.ts';
import { createSupabaseRpc } from './supabase-rpc.ts';

export const SUPABASE_APPLY_ADVICE =
  'apply the migrations in supabase/migrations with the Supabase CLI (`supabase link --project-ref <ref>` then `supabase db push`), ' +
  'or paste each file, in file-name order, into the SQL editor of the Supabase dashboard';

export function openSupabaseStore(config: Config): SupabaseQueueStore {
  const rpc = createSupabaseRpc({ url: config.supabaseUrl!, serviceRoleKey: config.supabaseServiceRoleKey ?? '', timeoutMs: config.supabaseTimeoutMs });
  return new SupabaseQueueStore(rpc, { maxRequestBytes: config.supabaseMaxRequestBytes });
}

/** What the Supabase project's schema looks like, as the SQL backends' inspectSchema reports it. */
export async function inspectSupabase(store: SupabaseQueueStore): Promise<SchemaFacts> {
  try {
    const facts = await store.schemaFacts();
    return { pgvector: facts.pgvector, applied: true, version: facts.version, dimensions: facts.dimensions };
  } catch (error) {
    if (error instanceof SchemaError) return { pgvector: null, applied: false, version: null, dimensions: null };
    throw error;
  }
}

/** Throws unless the project's schema is applied, current, and of the configured dimension. */
export async function checkSupabaseSchema(store: SupabaseQueueStore, dimensions: number): Promise<void> {
  const facts = await inspectSupabase(store);
  if (!facts.applied) throw new SchemaError(`the rag-worker schema is not in the Supabase project at ${store.rpc.url}: ${SUPABASE_APPLY_ADVICE}`);
  if ((facts.version ?? 0) < SCHEMA_VERSION) {
    throw new SchemaError(`the rag-worker schema in the Supabase project at ${store.rpc.url} is version ${facts.version}, older than this worker's ${SCHEMA_VERSION}: ${SUPABASE_APPLY_ADVICE}`);
  }
  if (facts.dimensions !== null && facts.dimensions !== dimensions) {
    throw new WorkerFatalError(`RAG_EMBEDDING_DIMENSIONS=${dimensions} but rag_chunks.embedding in the Supabase project is vector(${facts.dimensions}): set RAG_EMBEDDING_DIMENSIONS=${facts.dimensions}`, {
      setting: 'RAG_EMBEDDING_DIMENSIONS',
    });
  }
}
