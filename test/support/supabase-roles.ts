/**
 * A test database set up the way a Supabase project is, as far as the rag schema's exposure goes: the roles anon,
 * authenticated and service_role (BYPASSRLS), Supabase's default privileges granting every new table, sequence and
 * function in `public` to all three, and a minimal `auth` schema with Supabase's own auth.uid() (the JWT's `sub`,
 * from the settings PostgREST and Realtime set). The roles are cluster-wide: created NOLOGIN when missing and left in
 * place (they grant nothing by themselves); everything else lives in the test database.
 */
import type pg from 'pg';

export const SUPABASE_ROLES = ['anon', 'authenticated', 'service_role'] as const;

/** Run before `migrate`: the default privileges apply to the objects created afterwards, as on Supabase. */
export async function setUpSupabaseRoles(owner: pg.ClientBase): Promise<void> {
  // Two test files may create the roles at once: the loser of the race gets duplicate_object or unique_violation.
  for (const [role, options] of [['anon', 'nologin noinherit'], ['authenticated', 'nologin noinherit'], ['service_role', 'nologin noinherit bypassrls']]) {
    await owner.query(`do $$ begin
      if not exists (select 1 from pg_roles where rolname = '${role}') then create role ${role} ${options}; end if;
    exception when duplicate_object or unique_violation then null;
    end $$`);
  }
  await owner.query(`grant usage on schema public to anon, authenticated, service_role;
    alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
    alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
    alter default privileges in schema public grant all on sequences to anon, authenticated, service_role`);
  // Supabase's definition (supabase/auth): the request's JWT subject, from request.jwt.claim.sub (older PostgREST)
  // or request.jwt.claims (PostgREST 9+, and Realtime's RLS checks).
  await owner.query(`create schema if not exists auth;
    create or replace function auth.uid() returns uuid language sql stable as $$
      select coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
      )::uuid
    $$;
    grant usage on schema auth to anon, authenticated, service_role;
    grant execute on function auth.uid() to anon, authenticated, service_role`);
}

export type AsResult = { rows: Record<string, unknown>[] } | { code: string };

/**
 * Runs `statement` as `role` in a rolled-back transaction on `owner`, with the JWT claims PostgREST would set for
 * it (`claims`: request.jwt.claims, e.g. {sub, role}; `sub`: the older request.jwt.claim.sub). Resolves with the
 * rows, or the SQLSTATE it failed with.
 */
export async function asRole(
  owner: pg.ClientBase,
  role: string,
  statement: string,
  options: { params?: unknown[]; claims?: Record<string, unknown>; sub?: string } = {},
): Promise<AsResult> {
  await owner.query('begin');
  try {
    if (options.claims) await owner.query(`select set_config('request.jwt.claims', $1, true)`, [JSON.stringify(options.claims)]);
    if (options.sub) await owner.query(`select set_config('request.jwt.claim.sub', $1, true)`, [options.sub]);
    await owner.query(`set local role ${role}`);
    return { rows: (await owner.query(statement, options.params)).rows };
  } catch (error) {
    return { code: (error as { code?: string }).code ?? String(error) };
  } finally {
    await owner.query('rollback');
  }
}
