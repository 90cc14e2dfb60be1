'use client';
/**
 * The browser's Supabase client: the project's anon (publishable) key plus the signed-in user's session, so every
 * read goes through row-level security. It never holds the service-role key.
 *
 * Environment (inlined into the browser bundle by Next.js): NEXT_PUBLIC_SUPABASE_URL and
 * NEXT_PUBLIC_SUPABASE_ANON_KEY. An app that already has a browser client (e.g. createBrowserClient from
 * @supabase/ssr, which keeps the session in cookies) passes that one to useJobProgress instead.
 */
import { createClient, type SupabaseClient } from '@supabase/supabase-js';

let client: SupabaseClient | undefined;

export function supabaseBrowser(): SupabaseClient {
  if (client) return client;
  const url = process.env.NEXT_PUBLIC_SUPABASE_URL;
  const anonKey = process.env.NEXT_PUBLIC_SUPABASE_ANON_KEY;
  if (!url || !anonKey) throw new Error('NEXT_PUBLIC_SUPABASE_URL and NEXT_PUBLIC_SUPABASE_ANON_KEY must be set');
  client = createClient(url, anonKey);
  return client;
}
