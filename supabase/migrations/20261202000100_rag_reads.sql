-- rag-worker schema version 3: the reads a worker and the CLI make, as functions, so that a worker that reaches
-- the database only through Supabase's REST API (supabase-js `.rpc()`, SUPABASE_URL + SUPABASE_SERVICE_ROLE_KEY)
-- needs nothing but these functions. Applied once, after 20261202000000_rag_claude.sql. Safe to apply again.
-- Jobs come back as jsonb rows without their payload (status polling must not re-read megabytes of transcript).

create or replace function rag_get_jobs(p_job_ids uuid[])
returns setof jsonb
language sql stable as $$
  select to_jsonb(q) - 'payload' from rag_ingestion_queue q where q.id = any (p_job_ids);
$$;

-- Jobs newest first, optionally of one status and one document (status page, `jobs list`).
create or replace function rag_list_jobs(p_status text default null, p_document_id text default null, p_limit integer default 50)
returns setof jsonb
language sql stable as $$
  select to_jsonb(q) - 'payload' from rag_ingestion_queue q
   where (p_status is null or q.status = p_status) and (p_document_id is null or q.document_id = p_document_id)
   order by coalesce(q.completed_at, q.started_at, q.submitted_at) desc, q.submitted_at desc
   limit greatest(1, least(p_limit, 10000));
$$;

-- Jobs by status: {"queued": n, "processing": n, ...} (every status present, 0 when none).
create or replace function rag_queue_counts()
returns jsonb
language sql stable as $$
  select jsonb_build_object('queued', 0, 'processing', 0, 'complete', 0, 'failed', 0, 'cancelled', 0)
         || coalesce((select jsonb_object_agg(status, n) from (select status, count(*)::int as n from rag_ingestion_queue group by status) c), '{}'::jsonb);
$$;

-- What `start --once` waits for, and when the next queued job is due (ms; null when nothing is queued).
create or replace function rag_queue_due()
returns table (runnable boolean, ms_until_next_due double precision)
language sql stable as $$
  select exists (select 1 from rag_ingestion_queue
                  where (status = 'queued' and run_at <= now()) or (status = 'processing' and lease_expires_at < now())),
         (select case when min(run_at) is null then null else greatest(0, extract(epoch from (min(run_at) - now())) * 1000)::float8 end
            from rag_ingestion_queue where status = 'queued');
$$;

-- Published document versions by the embedding model their chunks were stored with.
create or replace function rag_stored_models()
returns table (model text, documents integer)
language sql stable as $$
  select coalesce(embedding_model, '(unknown)'), count(*)::int from rag_documents group by embedding_model order by 2 desc;
$$;

-- Usage of every job in the queue table, added up key by key.
create or replace function rag_usage_totals()
returns jsonb
language sql stable as $$
  select coalesce(jsonb_object_agg(key, total), '{}'::jsonb) from (
    select u.key, round(sum((u.value #>> '{}')::numeric), 9) as total
      from rag_ingestion_queue q cross join lateral jsonb_each(q.usage) u
     where jsonb_typeof(u.value) = 'number' group by u.key) t;
$$;

-- A published document version (the newest when p_version is null), or nothing.
create or replace function rag_get_document(p_document_id text, p_version text default null)
returns setof jsonb
language sql stable as $$
  select to_jsonb(d) from rag_documents d
   where d.document_id = p_document_id and (p_version is null or d.version = p_version)
   order by d.ingested_at desc limit 1;
$$;

-- What a worker checks before it starts: pgvector's version and the embedding dimension (the schema version is
-- rag_schema_version()).
create or replace function rag_schema_facts()
returns jsonb
language sql stable as $$
  select jsonb_build_object(
    'pgvector', (select extversion from pg_extension where extname = 'vector'),
    'dimensions', (select a.atttypmod from pg_attribute a
                    where a.attrelid = 'rag_chunks'::regclass and a.attname = 'embedding' and not a.attisdropped));
$$;

create or replace function rag_schema_version() returns integer
language sql immutable as $$ select 3 $$;

select rag_apply_privileges();
insert into rag_schema_migrations (version, name) values (3, '20261202000100_rag_reads') on conflict (version) do nothing;
