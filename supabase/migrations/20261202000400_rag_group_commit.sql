-- rag-worker schema version 6: a worker starts and completes the jobs it runs in group commits — one statement
-- (one transaction, one WAL flush) for every job that reached that step while the previous call was in flight —
-- instead of one statement per job. Measured on 2 cores, 1,000 claimed jobs: rag_start_job one per statement
-- 1.0 PostgreSQL CPU-ms and 3.5 ms wall per job, eight per statement 0.36 CPU-ms and 0.53 ms wall.
-- Each job keeps its own fencing (rag_start_job, rag_complete_job, called per job inside). An error in any job
-- aborts the whole call, and the worker then repeats that call's jobs one statement each, so a bad job fails
-- alone with its own error. Applied once, after 20261202000300_rag_privileges.sql. Safe to apply again.

-- A job that never started (publish_mode null) has written nothing: it has no chunks to discard.
create or replace function rag_start_job(
  p_job_id uuid, p_worker_id text, p_lease_token uuid,
  p_segments_total integer, p_chunks_total integer, p_chunking_signature text)
returns integer
language plpgsql as $$
declare
  j rag_ingestion_queue;
begin
  j := rag_fenced_job(p_job_id, p_worker_id, p_lease_token);
  if j.chunking_signature is distinct from p_chunking_signature or j.publish_mode is null then
    if j.publish_mode is not null then
      perform rag_discard_job_chunks(p_job_id);
    end if;
    update rag_ingestion_queue
       set publish_mode = case when exists (select 1 from rag_chunks c where c.document_id = j.document_id and c.version = j.version)
                                 or exists (select 1 from rag_documents d where d.document_id = j.document_id and d.version = j.version)
                               then 'staged' else 'direct' end,
           chunking_signature = p_chunking_signature, segments_total = p_segments_total, chunks_total = p_chunks_total,
           segments_done = 0, chunks_done = 0, chunks_reused = 0, tokens_embedded = 0, updated_at = now()
     where id = p_job_id;
    return 0;
  end if;
  update rag_ingestion_queue
     set segments_total = p_segments_total, chunks_total = coalesce(p_chunks_total, chunks_total), updated_at = now()
   where id = p_job_id;
  return j.chunks_done;
end $$;

-- rag_start_job for several jobs of one worker, in job id order. p_jobs: [{job_id, lease_token, segments_total,
-- chunks_total, chunking_signature}]. reusable: the document has a published version, so stored embeddings of its
-- unchanged chunks may be reused (rag_lookup_embeddings finds nothing otherwise, and need not be asked).
create or replace function rag_start_jobs(p_worker_id text, p_jobs jsonb)
returns table (job_id uuid, resume_from integer, reusable boolean)
language plpgsql as $$
declare
  x record;
begin
  for x in select (e ->> 'job_id')::uuid as id, (e ->> 'lease_token')::uuid as token, (e ->> 'segments_total')::integer as segments,
                  (e ->> 'chunks_total')::integer as chunks, e ->> 'chunking_signature' as signature
             from jsonb_array_elements(p_jobs) e order by 1
  loop
    job_id := x.id;
    resume_from := rag_start_job(x.id, p_worker_id, x.token, x.segments, x.chunks, x.signature);
    reusable := exists (select 1 from rag_documents d join rag_ingestion_queue q on q.document_id = d.document_id where q.id = x.id);
    return next;
  end loop;
end $$;

-- rag_complete_job for several jobs of one worker, in job id order. p_jobs: [{job_id, lease_token, chunks_total}].
create or replace function rag_complete_jobs(p_worker_id text, p_jobs jsonb)
returns table (job_id uuid, chunks integer)
language plpgsql as $$
declare
  x record;
begin
  for x in select (e ->> 'job_id')::uuid as id, (e ->> 'lease_token')::uuid as token, (e ->> 'chunks_total')::integer as total
             from jsonb_array_elements(p_jobs) e order by 1
  loop
    job_id := x.id;
    chunks := rag_complete_job(x.id, p_worker_id, x.token, x.total);
    return next;
  end loop;
end $$;

create or replace function rag_schema_version() returns integer
language sql immutable as $$ select 6 $$;

select rag_apply_privileges();
insert into rag_schema_migrations (version, name) values (6, '20261202000400_rag_group_commit') on conflict (version) do nothing;
