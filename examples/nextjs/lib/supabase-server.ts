/**
 * The server's Supabase client, with the service-role key.
 *
 * The rag_* functions (rag_enqueue, rag_match_chunks, rag_hybrid_chunks, ...) are granted to service_role only,
 * never to anon or authenticated, and the service-role key bypasses row-level security: it must never reach a
 * browser. Import this module only from server code (route handlers, server actions, server components), never
 * from a 'use client' file, and never give the key a NEXT_PUBLIC_ name (Next.js inlines those into the browser
 * bundle). In your app, put `import 'server-only';` at the top of this file (`npm install server-only`): a client
 * component that imports it then fails the build instead of leaking the key.
 *
 * Environment (server only): SUPABASE_URL (or NEXT_PUBLIC_SUPABASE_URL, the same value) and
 * SUPABASE_SERVICE_ROLE_KEY (Project Settings → API → service_role).
 */
import { createClient, type SupabaseClient } from '@supabase/supabase-js';

/** A setting is missing: the route answers 500 and logs this message (it names the variable, never a value). */
export class ServerConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ServerConfigError';
  }
}

let cached: { url: string; key: string; client: SupabaseClient } | undefined;

/** One client per process (re-created only if the environment changes). */
export function supabaseServer(): SupabaseClient {
  const url = process.env.SUPABASE_URL || process.env.NEXT_PUBLIC_SUPABASE_URL;
  const key = process.env.SUPABASE_SERVICE_ROLE_KEY;
  if (!url) throw new ServerConfigError('SUPABASE_URL is not set (the project URL, https://<ref>.supabase.co)');
  if (!key) throw new ServerConfigError('SUPABASE_SERVICE_ROLE_KEY is not set (Project Settings → API → service_role; server side only)');
  if (cached && cached.url === url && cached.key === key) return cached.client;
  const client = createClient(url, key, {
    // A server has no user session to keep: no storage, no token refresh timer.
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  });
  cached = { url, key, client };
  return client;
}
