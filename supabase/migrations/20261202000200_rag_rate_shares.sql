-- rag-worker schema version 4: workers that embed (or call Claude) through one provider account split its rate
-- limit. Each worker with work for an account keeps a row here fresh (a few times a second) and takes 1/N of the
-- limit the provider's headers show, N being the rows of that account seen within the last few seconds; a worker
-- that stops (or dies) drops out within that time and the others take its share back. Applied once, after
-- 20261202000100_rag_reads.sql. Safe to apply again.
-- `account` is a fingerprint of the provider endpoint and key (a truncated SHA-256), never the key itself.

create table if not exists rag_rate_shares (
  account   text not null,
  worker_id text not null,
  seen_at   timestamptz not null default now(),
  primary key (account, worker_id)
);
alter table rag_rate_shares enable row level security;

-- Records (p_active) or withdraws this worker's claim on the account's limit, forgets workers not seen for
-- p_ttl_seconds, and returns how many workers share the account now (this one included when active).
create or replace function rag_rate_share(p_account text, p_worker_id text, p_active boolean, p_ttl_seconds real default 5)
returns integer
language plpgsql as $$
declare
  v_count integer;
begin
  if p_active then
    insert into rag_rate_shares (account, worker_id, seen_at) values (p_account, p_worker_id, clock_timestamp())
    on conflict (account, worker_id) do update set seen_at = excluded.seen_at;
  else
    delete from rag_rate_shares where account = p_account and worker_id = p_worker_id;
  end if;
  delete from rag_rate_shares
   where account = p_account and seen_at < clock_timestamp() - make_interval(secs => greatest(1, p_ttl_seconds));
  select count(*) into v_count from rag_rate_shares where account = p_account;
  return v_count;
end $$;

do $$
declare
  v_role text;
begin
  foreach v_role in array array['anon', 'authenticated'] loop
    if exists (select 1 from pg_roles where rolname = v_role) then
      execute format('revoke all on rag_rate_shares from %I', v_role);
    end if;
  end loop;
end $$;

create or replace function rag_schema_version() returns integer
language sql immutable as $$ select 4 $$;

select rag_apply_privileges();
insert into rag_schema_migrations (version, name) values (4, '20261202000200_rag_rate_shares') on conflict (version) do nothing;
