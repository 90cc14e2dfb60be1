-- rag-worker schema version 5: rag_apply_privileges() covers every rag_* object the catalog has, not a list written
-- into it. Applied once, after 20261202000200_rag_rate_shares.sql. Safe to apply again.
--
-- Supabase serves every table, view and function of `public` over its REST API (and pg_graphql) to anyone holding
-- the project's anon key, and its default privileges grant them all to anon, authenticated and service_role.
-- Nothing of this schema is for the browser. For each object of this schema named rag_*:
--   tables         RLS enabled (no policies here: only roles that bypass RLS — the owner, service_role — see rows);
--   views          security_invoker (they read with their caller's rights, so the tables' RLS applies);
--   tables, views, sequences
--                  every privilege revoked from PUBLIC, anon and authenticated; all granted to service_role;
--   functions      search_path pinned to this schema and pgvector's; EXECUTE revoked from PUBLIC, anon and
--                  authenticated, granted to service_role and to the role rag_worker (the README's worker role).
-- Roles that do not exist are skipped (a plain PostgreSQL has none of Supabase's). Every migration file ends by
-- calling it and `rag-worker migrate` calls it again, so what a later file adds is covered too.
--
-- Opt-in grants: when supabase/opt-in/app-read-policies.sql has been applied it defines rag_app_read_privileges(),
-- the few grants that let the app's signed-in users read their own rows; this function calls it last, so that
-- re-applying the privileges (every `rag-worker migrate`, every later migration) keeps them instead of revoking
-- them. A later file that redefines rag_apply_privileges() must keep that call.
create or replace function rag_apply_privileges() returns void
language plpgsql as $$
declare
  v_schema regnamespace := current_schema()::regnamespace;
  v_path text;
  v_role text;
  v_browser text[] := array['public'];
  v_server text[] := '{}';
  o record;
begin
  foreach v_role in array array['anon', 'authenticated'] loop
    if exists (select 1 from pg_roles where rolname = v_role) then
      v_browser := v_browser || quote_ident(v_role);
    end if;
  end loop;
  foreach v_role in array array['service_role', 'rag_worker'] loop
    if exists (select 1 from pg_roles where rolname = v_role) then
      v_server := v_server || quote_ident(v_role);
    end if;
  end loop;

  select quote_ident(current_schema()) || coalesce(', ' || quote_ident(e.extnamespace::regnamespace::text), '') into v_path
    from (select 1) one
    left join pg_extension e on e.extname = 'vector' and e.extnamespace <> v_schema;

  -- Functions and procedures.
  for o in select p.oid::regprocedure as f from pg_proc p
            where p.pronamespace = v_schema and p.proname like 'rag\_%' and p.prokind in ('f', 'p')
  loop
    execute format('alter routine %s set search_path = %s, pg_temp', o.f, v_path);
    execute format('revoke all on routine %s from %s', o.f, array_to_string(v_browser, ', '));
    if cardinality(v_server) > 0 then
      execute format('grant execute on routine %s to %s', o.f, array_to_string(v_server, ', '));
    end if;
  end loop;

  -- Tables (plain and partitioned), views, materialized views, foreign tables, sequences.
  for o in select c.oid::regclass as rel, c.relkind from pg_class c
            where c.relnamespace = v_schema and c.relname like 'rag\_%' and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
  loop
    if o.relkind in ('r', 'p') then
      execute format('alter table %s enable row level security', o.rel);
    elsif o.relkind = 'v' then
      execute format('alter view %s set (security_invoker = true)', o.rel);
    end if;
    if o.relkind = 'S' then
      execute format('revoke all on sequence %s from %s', o.rel, array_to_string(v_browser, ', '));
    else
      execute format('revoke all on table %s from %s', o.rel, array_to_string(v_browser, ', '));
    end if;
    if 'service_role' = any (v_server) then
      execute format('grant all on %s %s to service_role', case when o.relkind = 'S' then 'sequence' else 'table' end, o.rel);
    end if;
  end loop;

  -- The opt-in app-read grants, when applied (see above).
  if to_regprocedure(format('%I.rag_app_read_privileges()', current_schema())) is not null then
    execute format('select %I.rag_app_read_privileges()', current_schema());
  end if;
end $$;

create or replace function rag_schema_version() returns integer
language sql immutable as $$ select 5 $$;

select rag_apply_privileges();
insert into rag_schema_migrations (version, name) values (5, '20261202000300_rag_privileges') on conflict (version) do nothing;
