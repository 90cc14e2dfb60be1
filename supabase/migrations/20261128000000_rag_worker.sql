-- rag-worker schema: the ingestion queue, the vector store, and every state transition as a SQL function.
-- Schema version 1. The migrations are numbered files applied once each, in file-name order, by `rag-worker migrate`
-- (which records them in rag_schema_migrations) or unchanged as Supabase migrations; each is also safe to apply
-- again. The embedding dimension is a parameter: the setting rag.embedding_dimensions (`rag-worker migrate` sets
-- it from RAG_EMBEDDING_DIMENSIONS; 1536 when unset, e.g. `alter database postgres set rag.embedding_dimensions =
-- '768'` before `supabase db push`).
--
-- Fencing: a claim hands out (worker_id, lease_token). Every write on behalf of a job passes both; a worker
-- whose lease was taken over (or whose job was cancelled) gets SQLSTATE RW001 and must stop.

create extension if not exists vector;

-- ───────────────────────────── queue ─────────────────────────────
create table if not exists rag_ingestion_queue (
  id               uuid primary key default gen_random_uuid(),
  status           text not null default 'queued'
                   check (status in ('queued', 'processing', 'complete', 'failed', 'cancelled')),
  document_id      text not null,
  version          text not null default '1',
  title            text,
  format           text not null default 'auto',   -- auto or a format of the README's Transcript formats table (validated by the worker)
  payload          jsonb not null,                  -- {"text": "..."} or {"segments": [...]}
  metadata         jsonb not null default '{}'::jsonb,
  priority         integer not null default 0,      -- higher runs first
  submitted_at     timestamptz not null default now(),
  updated_at       timestamptz not null default now(),
  started_at       timestamptz,
  completed_at     timestamptz,
  attempts         integer not null default 0,      -- counted at claim
  max_attempts     integer,                         -- null: the worker's RAG_MAX_ATTEMPTS
  run_at           timestamptz not null default now(), -- not before
  worker_id        text,
  lease_token      uuid,
  lease_expires_at timestamptz,
  segments_total   integer,
  segments_done    integer not null default 0,
  chunks_total     integer,
  chunks_done      integer not null default 0,
  chunks_reused    integer not null default 0,
  tokens_embedded  bigint not null default 0,
  chunking_signature text,
  error_detail     text,
  last_error_category text,
  attempt_history  jsonb not null default '[]'::jsonb
);
-- 'direct': a first ingestion of a document version writes its chunks straight into rag_chunks (hidden from
-- rag_match_chunks until the job completes); 'staged': a re-ingestion writes to rag_chunk_staging and swaps at the end.
alter table rag_ingestion_queue add column if not exists publish_mode text;
-- The lease length the claiming worker asked for: every save renews the lease by it (a save is proof of life).
alter table rag_ingestion_queue add column if not exists lease_seconds integer;

create index if not exists rag_ingestion_queue_runnable_idx
  on rag_ingestion_queue (priority desc, run_at, submitted_at) where status = 'queued';
create index if not exists rag_ingestion_queue_leases_idx
  on rag_ingestion_queue (lease_expires_at) where status = 'processing';
create index if not exists rag_ingestion_queue_processing_doc_idx
  on rag_ingestion_queue (document_id, version) where status = 'processing';
-- One queued job per document version: a second enqueue updates the queued one (see the trigger below).
create unique index if not exists rag_ingestion_queue_one_queued_per_version
  on rag_ingestion_queue (document_id, version) where status = 'queued';

-- ───────────────────────────── output ─────────────────────────────
create table if not exists rag_documents (
  document_id     text not null,
  version         text not null,
  title           text,
  metadata        jsonb not null default '{}'::jsonb,
  chunk_count     integer not null,
  embedding_model text,
  job_id          uuid,
  ingested_at     timestamptz not null default now(),
  primary key (document_id, version)
);

-- rag_chunks.embedding has the dimension of rag.embedding_dimensions (default 1536).
do $$
begin
  execute format($sql$
create table if not exists rag_chunks (
  id                bigint generated always as identity primary key,
  document_id       text not null,
  version           text not null,
  chunk_index       integer not null,
  content           text not null,
  token_count       integer not null,
  segment_seq_start integer,
  segment_seq_end   integer,
  start_ms          bigint,
  end_ms            bigint,
  speakers          text[] not null default '{}',
  embedding         vector(%s) not null,
  embedding_model   text not null,
  content_hash      text not null,
  metadata          jsonb not null default '{}'::jsonb,
  job_id            uuid,
  created_at        timestamptz not null default now(),
  unique (document_id, version, chunk_index)
)
$sql$, coalesce(nullif(current_setting('rag.embedding_dimensions', true), ''), '1536')::integer);
end $$;
create index if not exists rag_chunks_embedding_hnsw_idx
  on rag_chunks using hnsw (embedding vector_cosine_ops);
create index if not exists rag_chunks_reuse_idx
  on rag_chunks (document_id, content_hash);

-- Chunks of a job in flight. They become visible in rag_chunks all at once when the job completes,
-- so readers never see a mix of an old and a new ingestion of one document version.
create table if not exists rag_chunk_staging (
  job_id            uuid not null references rag_ingestion_queue (id) on delete cascade,
  chunk_index       integer not null,
  content           text not null,
  token_count       integer not null,
  segment_seq_start integer,
  segment_seq_end   integer,
  start_ms          bigint,
  end_ms            bigint,
  speakers          text[] not null default '{}',
  embedding         vector not null,
  embedding_model   text not null,
  content_hash      text not null,
  metadata          jsonb not null default '{}'::jsonb,
  primary key (job_id, chunk_index)
);

-- What jobs in flight have saved and not yet published: staged chunks, and direct-mode chunks whose job is not
-- (yet) the one recorded in rag_documents. For monitoring and tests.
create or replace view rag_unpublished_chunks with (security_invoker = true) as
  select s.job_id, s.chunk_index, s.content, s.token_count, s.segment_seq_start, s.segment_seq_end, s.start_ms, s.end_ms,
         s.speakers, s.embedding, s.embedding_model, s.content_hash, s.metadata
    from rag_chunk_staging s
  union all
  select c.job_id, c.chunk_index, c.content, c.token_count, c.segment_seq_start, c.segment_seq_end, c.start_ms, c.end_ms,
         c.speakers, c.embedding::vector, c.embedding_model, c.content_hash, c.metadata
    from rag_chunks c
   where c.job_id is not null
     and not exists (select 1 from rag_documents d where d.document_id = c.document_id and d.version = c.version and d.job_id = c.job_id);

-- Supabase: tables are reachable through PostgREST; only the service role (which bypasses RLS) may touch them.
alter table rag_ingestion_queue enable row level security;
alter table rag_documents enable row level security;
alter table rag_chunks enable row level security;
alter table rag_chunk_staging enable row level security;

-- ───────────────────────────── triggers ─────────────────────────────
-- Serialises everything that may put a job of one document version into 'queued' (enqueue, retry, release),
-- so that there is never more than one queued job per document version, even under concurrent enqueues.
-- The lock is one of 1,024 per-transaction advisory locks chosen by hashing the document version: a single
-- INSERT of 20,000 rows takes at most 1,024 locks, well inside PostgreSQL's shared lock table
-- (max_locks_per_transaction × max_connections), where one lock per row ran out of shared memory. Two document
-- versions sharing a slot only wait for each other's short enqueue.
create or replace function rag_lock_document_version(p_document_id text, p_version text)
returns void language sql as $$
  select pg_advisory_xact_lock(7261128, (hashtextextended(p_document_id || chr(31) || p_version, 7261128) & 1023)::integer);
$$;

-- A plain INSERT of a document version that is already queued does not create a second job:
-- the queued job takes the new payload, title, format, metadata and priority (latest wins), and the insert
-- is skipped (INSERT ... RETURNING returns no row; use rag_enqueue() to get the job id back).
create or replace function rag_queue_before_insert() returns trigger
language plpgsql as $$
begin
  if new.status = 'queued' then
    perform rag_lock_document_version(new.document_id, new.version);
    update rag_ingestion_queue q
       set payload = new.payload, title = new.title, format = new.format, metadata = new.metadata,
           priority = new.priority, run_at = least(q.run_at, new.run_at), updated_at = now()
     where q.document_id = new.document_id and q.version = new.version and q.status = 'queued';
    if found then
      return null;
    end if;
  end if;
  return new;
end $$;

drop trigger if exists rag_queue_before_insert on rag_ingestion_queue;
create trigger rag_queue_before_insert before insert on rag_ingestion_queue
  for each row execute function rag_queue_before_insert();

-- Wakes idle workers listening on channel rag_ingestion_queue.
create or replace function rag_queue_notify() returns trigger
language plpgsql as $$
begin
  if new.status = 'queued' then
    perform pg_notify('rag_ingestion_queue', new.id::text);
  end if;
  return null;
end $$;

drop trigger if exists rag_queue_notify on rag_ingestion_queue;
create trigger rag_queue_notify after insert or update of status, run_at on rag_ingestion_queue
  for each row execute function rag_queue_notify();

-- ───────────────────────────── helpers ─────────────────────────────
-- Locks and returns the job row when (worker, token) still hold it; raises RW001 otherwise.
create or replace function rag_fenced_job(p_job_id uuid, p_worker_id text, p_lease_token uuid)
returns rag_ingestion_queue
language plpgsql as $$
declare
  j rag_ingestion_queue;
begin
  select * into j from rag_ingestion_queue where id = p_job_id for update;
  if not found then
    raise exception using errcode = 'RW001', message = format('rag-worker: job %s no longer exists', p_job_id);
  end if;
  if j.status <> 'processing' or j.worker_id is distinct from p_worker_id or j.lease_token is distinct from p_lease_token then
    raise exception using errcode = 'RW001',
      message = format('rag-worker: lease lost on job %s (status %s, held by %s)', p_job_id, j.status, coalesce(j.worker_id, 'nobody'));
  end if;
  return j;
end $$;

-- Drops what a job that will not complete has written: its staged chunks and its unpublished direct chunks.
-- Every lookup goes through the document version's keys (rag_chunks has no index on job_id, and needs none):
-- the cost is that version's rows, never a scan of the whole table.
create or replace function rag_discard_job_chunks(p_job_id uuid)
returns void language sql as $$
  delete from rag_chunk_staging where job_id = p_job_id;
  delete from rag_chunks c
   using rag_ingestion_queue q
   where q.id = p_job_id and c.document_id = q.document_id and c.version = q.version and c.job_id = p_job_id
     and not exists (select 1 from rag_documents d where d.document_id = q.document_id and d.version = q.version and d.job_id = p_job_id);
$$;

create or replace function rag_history_entry(p_attempt integer, p_worker_id text, p_outcome text, p_detail text)
returns jsonb language sql stable as $$
  select jsonb_build_object('attempt', p_attempt, 'worker_id', p_worker_id, 'at', now(),
                            'outcome', p_outcome, 'detail', left(p_detail, 300));
$$;

-- ───────────────────────────── transitions ─────────────────────────────
-- Enqueue (or update the already-queued job of this document version). Returns the job id.
create or replace function rag_enqueue(
  p_document_id text, p_version text, p_title text, p_format text, p_payload jsonb,
  p_metadata jsonb default '{}'::jsonb, p_priority integer default 0, p_max_attempts integer default null)
returns uuid
language plpgsql as $$
declare
  v_id uuid;
begin
  insert into rag_ingestion_queue (document_id, version, title, format, payload, metadata, priority, max_attempts)
  values (p_document_id, coalesce(p_version, '1'), p_title, coalesce(p_format, 'auto'), p_payload,
          coalesce(p_metadata, '{}'::jsonb), coalesce(p_priority, 0), p_max_attempts)
  returning id into v_id;
  if v_id is null then
    select id into v_id from rag_ingestion_queue
     where document_id = p_document_id and version = coalesce(p_version, '1') and status = 'queued';
  end if;
  return v_id;
end $$;

-- Claim up to p_limit runnable jobs: queued and due, or processing with an expired lease (its worker died).
-- Never two jobs of one document version at once (at most one is queued, and a queued one waits while another
-- of its version is processing). Attempts are counted here, so a job that kills its worker
-- every time still ends failed: an expired job that has used all its attempts is failed instead of claimed.
create or replace function rag_claim_jobs(
  p_worker_id text, p_limit integer, p_lease_seconds integer, p_default_max_attempts integer default 5)
returns setof rag_ingestion_queue
language plpgsql
-- A claim touches a handful of rows: JIT compilation (on by default above jit_above_cost) only adds latency.
set jit = off
as $$
declare
  v_lost uuid[];
begin
  with lost as (
  update rag_ingestion_queue q
     set status = 'failed', completed_at = now(), updated_at = now(), lease_token = null, lease_expires_at = null,
         last_error_category = 'worker_lost',
         error_detail = format('worker %s stopped responding (lease expired) on attempt %s of %s; giving up after %s attempts%s',
                               q.worker_id, q.attempts, coalesce(q.max_attempts, p_default_max_attempts), q.attempts,
                               case when q.error_detail is not null then '; last error: ' || q.error_detail else '' end),
         attempt_history = q.attempt_history || rag_history_entry(q.attempts, q.worker_id, 'lease_expired', 'worker stopped responding')
   where q.id in (select e.id from rag_ingestion_queue e
                   where e.status = 'processing' and e.lease_expires_at < now()
                     and e.attempts >= coalesce(e.max_attempts, p_default_max_attempts)
                   for update skip locked)
  returning q.id)
  select array_agg(id) into v_lost from lost;
  perform rag_discard_job_chunks(x) from unnest(v_lost) as x;

  -- Two index scans instead of one OR (which no partial index can serve, so it seq-scanned the whole queue):
  -- queued-and-due jobs in claim order from rag_ingestion_queue_runnable_idx, and expired leases from
  -- rag_ingestion_queue_leases_idx. Each locks at most p_limit rows; the best p_limit of both are claimed
  -- (the rest are unlocked at commit).
  return query
  with due as (
    select c.id, c.priority, c.run_at, c.submitted_at from rag_ingestion_queue c
     where c.status = 'queued' and c.run_at <= now()
       -- one run per document version: a queued job waits while another job of its version is processing
       -- (an expired one included: that one is reclaimed or failed first)
       and not exists (
                select 1 from rag_ingestion_queue o
                 where o.document_id = c.document_id and o.version = c.version and o.status = 'processing')
     order by c.priority desc, c.run_at, c.submitted_at
     limit greatest(p_limit, 0)
     for update of c skip locked
  ), expired as (
    select c.id, c.priority, c.run_at, c.submitted_at from rag_ingestion_queue c
     where c.status = 'processing' and c.lease_expires_at < now()
     order by c.lease_expires_at
     limit greatest(p_limit, 0)
     for update skip locked
  ), candidates as (
    select x.id from (select * from due union all select * from expired) x
     order by x.priority desc, x.run_at, x.submitted_at
     limit greatest(p_limit, 0)
  )
  update rag_ingestion_queue q
     set attempt_history = case when q.status = 'processing'
                                then q.attempt_history || rag_history_entry(q.attempts, q.worker_id, 'lease_expired', 'worker stopped responding')
                                else q.attempt_history end,
         status = 'processing', worker_id = p_worker_id, lease_token = gen_random_uuid(),
         lease_expires_at = now() + make_interval(secs => p_lease_seconds), lease_seconds = p_lease_seconds,
         attempts = q.attempts + 1, started_at = coalesce(q.started_at, now()), updated_at = now()
    from candidates
   where q.id = candidates.id
  returning q.*;
end $$;

-- Heartbeat: extend the leases this worker still holds. Returns one row per job with held = false when the
-- lease was lost (taken over, cancelled, released): the worker must stop working on it.
create or replace function rag_extend_leases(
  p_worker_id text, p_job_ids uuid[], p_lease_tokens uuid[], p_lease_seconds integer)
returns table (job_id uuid, held boolean, status text)
language plpgsql as $$
begin
  return query
  with mine as (
    select t.job_id, t.lease_token from unnest(p_job_ids, p_lease_tokens) as t(job_id, lease_token)
  ), lockable as (
    -- skip rows locked by a long write (e.g. this worker publishing a big job): never wait behind them
    select q.id from rag_ingestion_queue q join mine on q.id = mine.job_id and q.lease_token = mine.lease_token
     where q.worker_id = p_worker_id and q.status = 'processing'
       for update of q skip locked
  ), extended as (
    update rag_ingestion_queue q
       set lease_expires_at = now() + make_interval(secs => p_lease_seconds), updated_at = now()
      from lockable
     where q.id = lockable.id
    returning q.id
  )
  select mine.job_id,
         coalesce(extended.id is not null
          or (q.status = 'processing' and q.worker_id = p_worker_id and q.lease_token = mine.lease_token), false),
         coalesce(q.status, 'missing')
    from mine
    left join extended on extended.id = mine.job_id
    left join rag_ingestion_queue q on q.id = mine.job_id;
end $$;

-- Called once parsing and chunking are done: records totals and returns the chunk index to resume from.
-- Chunks saved by an earlier attempt are kept when the chunking signature (options + input) is unchanged.
-- On a fresh start it picks the publish mode: 'direct' when nothing of this document version is stored yet
-- (chunks go straight to rag_chunks, hidden until completion), else 'staged' (atomic swap at completion).
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
    perform rag_discard_job_chunks(p_job_id);
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

-- Embeddings already published for this document (any version) with the same content hash and model.
create or replace function rag_lookup_embeddings(p_document_id text, p_embedding_model text, p_content_hashes text[])
returns table (content_hash text, embedding text)
language sql stable as $$
  select distinct on (c.content_hash) c.content_hash, c.embedding::text
    from rag_chunks c
    join rag_documents d on d.document_id = c.document_id and d.version = c.version and d.job_id = c.job_id
   where c.document_id = p_document_id and c.embedding_model = p_embedding_model
     and c.content_hash = any (p_content_hashes);
$$;

-- The rows of a save batch (chunks as jsonb, embeddings as pgvector text literals, same order) from p_from on.
drop function if exists rag_batch_rows(jsonb, text[], integer);

-- Save a batch of chunks and the job's progress in one transaction, only while the caller holds the lease.
-- p_chunks: jsonb array of {chunk_index, content, token_count, segment_seq_start, segment_seq_end, start_ms,
-- end_ms, speakers, content_hash, metadata}; p_embeddings: pgvector text literals, same order.
-- Batches must arrive in order: the first new chunk_index must equal chunks_done. Chunks below chunks_done
-- (a batch resent after a lost acknowledgement) are ignored. Returns the new chunks_done.
-- One job's batch through rag_save_chunk_batches: the checks and the insert live there.
create or replace function rag_save_chunks(
  p_job_id uuid, p_worker_id text, p_lease_token uuid, p_embedding_model text,
  p_chunks jsonb, p_embeddings text[], p_segments_done integer, p_tokens_embedded bigint, p_chunks_reused integer default 0)
returns integer
language plpgsql as $$
declare
  r record;
begin
  if jsonb_array_length(p_chunks) <> coalesce(array_length(p_embeddings, 1), 0) then
    raise exception 'rag_save_chunks: % chunks but % embeddings', jsonb_array_length(p_chunks), coalesce(array_length(p_embeddings, 1), 0);
  end if;
  select * into r from rag_save_chunk_batches(p_worker_id, p_embedding_model,
    jsonb_build_array(jsonb_build_object('job_id', p_job_id, 'lease_token', p_lease_token, 'offset', 0, 'chunks', p_chunks,
                                         'segments_done', p_segments_done, 'tokens_embedded', p_tokens_embedded,
                                         'chunks_reused', coalesce(p_chunks_reused, 0))),
    p_embeddings);
  if r.error_code = 'RW001' then
    raise exception using errcode = 'RW001', message = r.error_message;
  elsif r.error_code is not null then
    raise exception '%', r.error_message;
  end if;
  return r.chunks_done;
end $$;

-- Save one batch for each of several jobs of one worker in one transaction, with one INSERT per destination table:
-- HNSW insertion costs far less per row in one statement than in many small concurrent ones. Each batch is checked
-- and fenced exactly as rag_save_chunks does; a batch that fails its checks is reported, not saved, and the others
-- are saved. p_batches: jsonb array of {job_id, lease_token, offset, chunks, segments_done, tokens_embedded,
-- chunks_reused}, chunks as for rag_save_chunks, one batch per job; offset: 0-based position in p_embeddings of the
-- batch's first embedding. Returns one row per batch: the new chunks_done, or error_code 'RW001' (lease lost) or
-- 'RW002' (batch out of order) with error_message.
create or replace function rag_save_chunk_batches(
  p_worker_id text, p_embedding_model text, p_batches jsonb, p_embeddings text[])
returns table (job_id uuid, chunks_done integer, error_code text, error_message text)
language plpgsql as $$
declare
  b record;
  j rag_ingestion_queue;
  v_first integer;
  v_gap boolean;
  v_batches integer[] := '{}';  -- positions (1-based) in p_batches of the accepted batches
  v_from integer[] := '{}';
  v_seen uuid[] := '{}';
begin
  -- The embeddings are the batches' chunks in order: each batch's offset is the chunk count of the batches before it.
  if exists (select 1 from (
               select (x.value ->> 'offset')::integer as off,
                      coalesce(sum(jsonb_array_length(x.value -> 'chunks')) over (order by x.ord rows between unbounded preceding and 1 preceding), 0) as expected
                 from jsonb_array_elements(p_batches) with ordinality as x(value, ord)) o
             where o.off is distinct from o.expected::integer)
     or (select coalesce(sum(jsonb_array_length(x.value -> 'chunks')), 0) from jsonb_array_elements(p_batches) x)
        <> coalesce(array_length(p_embeddings, 1), 0) then
    raise exception 'rag_save_chunk_batches: % chunks but % embeddings, or an offset out of step with the batches',
      (select coalesce(sum(jsonb_array_length(x.value -> 'chunks')), 0) from jsonb_array_elements(p_batches) x),
      coalesce(array_length(p_embeddings, 1), 0);
  end if;
  -- in job id order, so that two workers' calls lock their (distinct) rows without deadlock-prone interleaving
  for b in select x.value as batch, (x.value ->> 'job_id')::uuid as id, x.ord
             from jsonb_array_elements(p_batches) with ordinality as x(value, ord) order by (x.value ->> 'job_id')::uuid, x.ord
  loop
    if b.id = any (v_seen) then
      return query select b.id, null::integer, 'RW002'::text, format('rag_save_chunk_batches: job %s appears twice', b.id);
      continue;
    end if;
    v_seen := v_seen || b.id;
    begin
      j := rag_fenced_job(b.id, p_worker_id, (b.batch ->> 'lease_token')::uuid);
    exception when sqlstate 'RW001' then
      return query select b.id, null::integer, 'RW001'::text, sqlerrm;
      continue;
    end;
    select min((c.value ->> 'chunk_index')::integer) into v_first
      from jsonb_array_elements(b.batch -> 'chunks') c where (c.value ->> 'chunk_index')::integer >= j.chunks_done;
    if v_first is null then
      return query select b.id, j.chunks_done, null::text, null::text;  -- everything in this batch was already saved
      continue;
    end if;
    select exists (select 1 from (
             select (c.value ->> 'chunk_index')::integer as idx,
                    row_number() over (order by (c.value ->> 'chunk_index')::integer) - 1 as pos
               from jsonb_array_elements(b.batch -> 'chunks') c
              where (c.value ->> 'chunk_index')::integer >= j.chunks_done) n
           where n.idx <> j.chunks_done + n.pos) into v_gap;
    if v_first <> j.chunks_done then
      return query select b.id, null::integer, 'RW002'::text,
        format('rag_save_chunks: job %s expects chunk_index %s next, got %s', b.id, j.chunks_done, v_first);
      continue;
    end if;
    if v_gap then
      return query select b.id, null::integer, 'RW002'::text,
        format('rag_save_chunks: job %s batch has a gap or a duplicate in chunk_index (must be consecutive from %s)', b.id, j.chunks_done);
      continue;
    end if;
    v_batches := v_batches || b.ord::integer;
    v_from := v_from || j.chunks_done;
  end loop;
  if cardinality(v_batches) = 0 then
    return;
  end if;

  -- One statement: the rows of every accepted batch, inserted into rag_chunks (first ingestions) or the staging
  -- table (re-ingestions), and each job's progress.
  return query
  with pending as (
    select q.id as job_id, q.publish_mode, q.document_id, q.version, (c.value ->> 'chunk_index')::integer as chunk_index,
           c.value ->> 'content' as content, (c.value ->> 'token_count')::integer as token_count,
           (c.value ->> 'segment_seq_start')::integer as segment_seq_start, (c.value ->> 'segment_seq_end')::integer as segment_seq_end,
           (c.value ->> 'start_ms')::bigint as start_ms, (c.value ->> 'end_ms')::bigint as end_ms,
           coalesce(array(select jsonb_array_elements_text(c.value -> 'speakers')), '{}') as speakers,
           p_embeddings[(bt.value ->> 'offset')::integer + c.ord::integer] as embedding, c.value ->> 'content_hash' as content_hash,
           coalesce(c.value -> 'metadata', '{}'::jsonb) as metadata
      from jsonb_array_elements(p_batches) with ordinality as bt(value, ord)
      join unnest(v_batches, v_from) as a(ord, from_index) on a.ord = bt.ord
      join rag_ingestion_queue q on q.id = (bt.value ->> 'job_id')::uuid
      cross join lateral jsonb_array_elements(bt.value -> 'chunks') with ordinality as c(value, ord)
     where (c.value ->> 'chunk_index')::integer >= a.from_index
  ), direct as (
    insert into rag_chunks (document_id, version, chunk_index, content, token_count, segment_seq_start, segment_seq_end,
                            start_ms, end_ms, speakers, embedding, embedding_model, content_hash, metadata, job_id)
    select r.document_id, r.version, r.chunk_index, r.content, r.token_count, r.segment_seq_start, r.segment_seq_end,
           r.start_ms, r.end_ms, r.speakers, r.embedding::vector, p_embedding_model, r.content_hash, r.metadata, r.job_id
      from pending r where r.publish_mode = 'direct'
    returning 1
  ), staged as (
    insert into rag_chunk_staging (job_id, chunk_index, content, token_count, segment_seq_start, segment_seq_end,
                                   start_ms, end_ms, speakers, embedding, embedding_model, content_hash, metadata)
    select r.job_id, r.chunk_index, r.content, r.token_count, r.segment_seq_start, r.segment_seq_end,
           r.start_ms, r.end_ms, r.speakers, r.embedding::vector, p_embedding_model, r.content_hash, r.metadata
      from pending r where r.publish_mode is distinct from 'direct'
    returning 1
  ), counts as (
    select r.job_id as id, count(*)::integer as n from pending r group by r.job_id
  ), batch as (
    select (bt.value ->> 'job_id')::uuid as id, bt.value as v, jsonb_array_length(bt.value -> 'chunks') as len
      from jsonb_array_elements(p_batches) with ordinality as bt(value, ord)
     where bt.ord = any (v_batches)
  )
  update rag_ingestion_queue q
     set chunks_done = q.chunks_done + c.n,
         segments_done = greatest(q.segments_done, (b2.v ->> 'segments_done')::integer),
         tokens_embedded = q.tokens_embedded + (coalesce((b2.v ->> 'tokens_embedded')::bigint, 0) * c.n / greatest(b2.len, 1)),
         chunks_reused = q.chunks_reused + coalesce((b2.v ->> 'chunks_reused')::integer, 0),
         lease_expires_at = greatest(q.lease_expires_at, now() + make_interval(secs => coalesce(q.lease_seconds, 30))),
         updated_at = now()
    from counts c join batch b2 on b2.id = c.id
   where q.id = c.id  -- (the inserts above run to completion whether or not their output is read)
  returning q.id, q.chunks_done, null::text, null::text;
end $$;

-- Publish the job's chunks and mark it complete. Direct mode: the chunks are already in rag_chunks; recording the
-- job in rag_documents makes them visible. Staged mode: replace the earlier ingestion of this document version
-- with the staged chunks in this one transaction.
-- p_chunks_total: how many chunks the job has (the worker learns it only once the last chunk is cut); when given
-- it is recorded and must match what was saved.
drop function if exists rag_complete_job(uuid, text, uuid);
create or replace function rag_complete_job(p_job_id uuid, p_worker_id text, p_lease_token uuid, p_chunks_total integer default null)
returns integer
language plpgsql as $$
declare
  j rag_ingestion_queue;
  v_count integer;
  v_model text;
begin
  j := rag_fenced_job(p_job_id, p_worker_id, p_lease_token);
  j.chunks_total := coalesce(p_chunks_total, j.chunks_total);
  if j.publish_mode = 'direct' then
    select count(*), min(embedding_model) into v_count, v_model from rag_chunks
     where document_id = j.document_id and version = j.version and job_id = p_job_id;
  else
    select count(*), min(embedding_model) into v_count, v_model from rag_chunk_staging where job_id = p_job_id;
  end if;
  if j.chunks_total is not null and v_count <> j.chunks_total then
    raise exception 'rag_complete_job: job % has % of % chunks saved', p_job_id, v_count, j.chunks_total;
  end if;

  if j.publish_mode is distinct from 'direct' then
    delete from rag_chunks where document_id = j.document_id and version = j.version;
    insert into rag_chunks (document_id, version, chunk_index, content, token_count, segment_seq_start, segment_seq_end,
                            start_ms, end_ms, speakers, embedding, embedding_model, content_hash, metadata, job_id)
    select j.document_id, j.version, s.chunk_index, s.content, s.token_count, s.segment_seq_start, s.segment_seq_end,
           s.start_ms, s.end_ms, s.speakers, s.embedding, s.embedding_model, s.content_hash, s.metadata, p_job_id
      from rag_chunk_staging s where s.job_id = p_job_id order by s.chunk_index;
    delete from rag_chunk_staging where job_id = p_job_id;
  end if;

  insert into rag_documents (document_id, version, title, metadata, chunk_count, embedding_model, job_id, ingested_at)
  values (j.document_id, j.version, j.title, j.metadata, v_count, v_model, p_job_id, now())
  on conflict (document_id, version) do update
     set title = excluded.title, metadata = excluded.metadata, chunk_count = excluded.chunk_count,
         embedding_model = excluded.embedding_model, job_id = excluded.job_id, ingested_at = excluded.ingested_at;

  update rag_ingestion_queue
     set status = 'complete', completed_at = now(), updated_at = now(), lease_token = null, lease_expires_at = null,
         error_detail = null, chunks_total = v_count,
         attempt_history = attempt_history || rag_history_entry(attempts, p_worker_id, 'complete', null)
   where id = p_job_id;
  return v_count;
end $$;

-- A job that would go back to the queue while a newer enqueue of its document version is already queued is
-- superseded by it (the newer payload wins): it ends 'cancelled' and its staged chunks are dropped.
create or replace function rag_supersede(p_job_id uuid, p_history jsonb)
returns void
language plpgsql as $$
declare
  v_newer uuid;
  j rag_ingestion_queue;
begin
  select * into j from rag_ingestion_queue where id = p_job_id;
  select id into v_newer from rag_ingestion_queue
   where document_id = j.document_id and version = j.version and status = 'queued' and id <> p_job_id;
  perform rag_discard_job_chunks(p_job_id);
  update rag_ingestion_queue
     set status = 'cancelled', completed_at = now(), updated_at = now(), lease_token = null, lease_expires_at = null,
         last_error_category = 'superseded', attempt_history = p_history,
         error_detail = format('superseded by job %s, a newer enqueue of this document version', v_newer)
   where id = p_job_id;
end $$;

-- Fail an attempt. With p_retry_in_ms and attempts left, the job goes back to queued at now() + p_retry_in_ms
-- (chunks saved so far are kept for the next attempt); otherwise it ends failed (saved chunks are dropped).
-- Returns the resulting status ('queued', 'failed', or 'cancelled' when superseded by a newer queued job).
create or replace function rag_fail_job(
  p_job_id uuid, p_worker_id text, p_lease_token uuid, p_error_detail text, p_error_category text,
  p_retry_in_ms integer default null, p_default_max_attempts integer default 5)
returns text
language plpgsql as $$
declare
  j rag_ingestion_queue;
  v_final boolean;
  v_history jsonb;
begin
  j := rag_fenced_job(p_job_id, p_worker_id, p_lease_token);
  v_final := p_retry_in_ms is null or j.attempts >= coalesce(j.max_attempts, p_default_max_attempts);
  v_history := j.attempt_history || rag_history_entry(j.attempts, p_worker_id, p_error_category, p_error_detail);
  if v_final then
    perform rag_discard_job_chunks(p_job_id);
    update rag_ingestion_queue
       set status = 'failed', completed_at = now(), updated_at = now(), lease_token = null, lease_expires_at = null,
           last_error_category = p_error_category, attempt_history = v_history,
           error_detail = case when p_retry_in_ms is null then p_error_detail
                               else format('%s (gave up after %s attempts)', p_error_detail, j.attempts) end
     where id = p_job_id;
    return 'failed';
  end if;
  perform rag_lock_document_version(j.document_id, j.version);
  if exists (select 1 from rag_ingestion_queue o where o.document_id = j.document_id and o.version = j.version
                and o.status = 'queued' and o.id <> p_job_id) then
    perform rag_supersede(p_job_id, v_history);
    return 'cancelled';
  end if;
  update rag_ingestion_queue
     set status = 'queued', run_at = now() + make_interval(secs => p_retry_in_ms / 1000.0), updated_at = now(),
         lease_token = null, lease_expires_at = null, worker_id = null,
         last_error_category = p_error_category, error_detail = p_error_detail, attempt_history = v_history
   where id = p_job_id;
  return 'queued';
end $$;

-- Give jobs back without using up an attempt (shutdown, or a worker-level fault such as a bad API key).
-- Saved chunks are kept: the next worker resumes after them (unless a newer enqueue of the same document version
-- is queued: then the released job is superseded). Returns the number released.
create or replace function rag_release_jobs(
  p_worker_id text, p_job_ids uuid[], p_lease_tokens uuid[], p_reason text)
returns integer
language plpgsql as $$
declare
  v_count integer := 0;
  j rag_ingestion_queue;
  v_history jsonb;
begin
  for j in
    select q.* from rag_ingestion_queue q
      join unnest(p_job_ids, p_lease_tokens) as t(job_id, lease_token) on q.id = t.job_id and q.lease_token = t.lease_token
     where q.worker_id = p_worker_id and q.status = 'processing'
     order by q.id
       for update of q
  loop
    perform rag_lock_document_version(j.document_id, j.version);
    v_history := j.attempt_history || rag_history_entry(j.attempts, p_worker_id, 'released', p_reason);
    if exists (select 1 from rag_ingestion_queue o where o.document_id = j.document_id and o.version = j.version
                  and o.status = 'queued' and o.id <> j.id) then
      perform rag_supersede(j.id, v_history);
    else
      update rag_ingestion_queue
         set status = 'queued', attempts = greatest(attempts - 1, 0), run_at = now(), updated_at = now(),
             worker_id = null, lease_token = null, lease_expires_at = null, attempt_history = v_history
       where id = j.id;
    end if;
    v_count := v_count + 1;
  end loop;
  return v_count;
end $$;

-- Cancel a queued or processing job. A worker processing it notices at its next heartbeat (or save) and stops;
-- its staged chunks are dropped, and the chunks already published for that document version stay as they were.
create or replace function rag_cancel_job(p_job_id uuid)
returns text
language plpgsql as $$
declare
  v_status text;
begin
  update rag_ingestion_queue
     set status = 'cancelled', completed_at = now(), updated_at = now(), lease_token = null, lease_expires_at = null
   where id = p_job_id and status in ('queued', 'processing')
  returning status into v_status;
  if v_status is null then
    select status into v_status from rag_ingestion_queue where id = p_job_id;
    return coalesce(v_status, 'missing');
  end if;
  perform rag_discard_job_chunks(p_job_id);
  return v_status;
end $$;

-- Re-queue failed (or cancelled) jobs with a fresh set of attempts. p_job_ids null: every failed job.
-- A job whose document version already has a queued job is left as it is. Returns the ids re-queued.
create or replace function rag_retry_jobs(p_job_ids uuid[] default null)
returns setof uuid
language plpgsql as $$
declare
  j rag_ingestion_queue;
begin
  -- newest first: when a document version failed several times, its latest job is the one re-queued
  for j in
    select q.* from rag_ingestion_queue q
     where (p_job_ids is null and q.status = 'failed')
        or (p_job_ids is not null and q.id = any (p_job_ids) and q.status in ('failed', 'cancelled'))
     order by q.submitted_at desc, q.id
  loop
    perform rag_lock_document_version(j.document_id, j.version);
    continue when exists (select 1 from rag_ingestion_queue o
                           where o.document_id = j.document_id and o.version = j.version and o.status = 'queued');
    update rag_ingestion_queue q
       set status = 'queued', attempts = 0, run_at = now(), updated_at = now(), completed_at = null,
           error_detail = null, last_error_category = null, worker_id = null, lease_token = null, lease_expires_at = null,
           attempt_history = q.attempt_history || rag_history_entry(q.attempts, null, 'retried', 'retried by request')
     where q.id = j.id and q.status in ('failed', 'cancelled');
    if found then
      return next j.id;
    end if;
  end loop;
end $$;

-- ───────────────────────────── retrieval ─────────────────────────────
-- The best chunks for a query embedding (cosine), optionally within one document (and version).
-- Only published chunks (those of the job recorded in rag_documents) are returned.
create or replace function rag_match_chunks(
  p_query_embedding vector, p_match_count integer default 5,
  p_document_id text default null, p_version text default null)
returns table (document_id text, version text, chunk_index integer, content text, start_ms bigint, end_ms bigint,
               speakers text[], segment_seq_start integer, segment_seq_end integer, title text, score double precision)
language sql stable as $$
  select c.document_id, c.version, c.chunk_index, c.content, c.start_ms, c.end_ms, c.speakers,
         c.segment_seq_start, c.segment_seq_end, d.title, 1 - (c.embedding <=> p_query_embedding) as score
    from rag_chunks c
    join rag_documents d on d.document_id = c.document_id and d.version = c.version and d.job_id = c.job_id
   where (p_document_id is null or c.document_id = p_document_id)
     and (p_version is null or c.version = p_version)
   order by c.embedding <=> p_query_embedding
   limit greatest(p_match_count, 1);
$$;

-- ───────────────────────────── housekeeping ─────────────────────────────
-- Finished jobs by completion time: what rag_prune_jobs deletes, oldest first.
create index if not exists rag_ingestion_queue_finished_idx
  on rag_ingestion_queue (completed_at) where status in ('complete', 'failed', 'cancelled');

-- Deletes up to p_limit finished jobs (complete, failed, cancelled: those in p_statuses) that finished more than
-- p_older_than ago, oldest first; returns how many. Chunks and documents are never touched: rag_chunks keeps
-- every stored chunk (its job_id then names a job that is gone). Call it until it returns 0; each call is one
-- short transaction, and rows locked by someone else are skipped.
create or replace function rag_prune_jobs(
  p_older_than interval,
  p_statuses text[] default array['complete', 'failed', 'cancelled'],
  p_limit integer default 1000
) returns integer
language plpgsql as $$
declare
  v_deleted integer;
begin
  if p_statuses is null or cardinality(p_statuses) = 0
     or exists (select 1 from unnest(p_statuses) s where s is null or s not in ('complete', 'failed', 'cancelled')) then
    raise exception 'rag_prune_jobs: only finished jobs can be pruned (complete, failed, cancelled), got %', p_statuses
      using errcode = '22023';
  end if;
  if p_older_than is null or p_older_than < interval '0' then
    raise exception 'rag_prune_jobs: p_older_than must be a non-negative interval, got %', p_older_than using errcode = '22023';
  end if;
  with doomed as (
    select id from rag_ingestion_queue
     where status = any (p_statuses) and completed_at < now() - p_older_than
     order by completed_at
     limit greatest(1, p_limit)
     for update skip locked
  )
  delete from rag_ingestion_queue q using doomed where q.id = doomed.id;
  get diagnostics v_deleted = row_count;
  return v_deleted;
end $$;

-- ───────────────────────────── version ─────────────────────────────
-- The schema's version: a worker checks it at start-up (and /ready, `rag-worker doctor`) and asks for
-- `rag-worker migrate` when the database is older than the worker. Raised whenever this file changes what a
-- worker relies on.
create or replace function rag_schema_version() returns integer
language sql immutable as $$ select 1 $$;


-- ───────────────────────────── migrations ─────────────────────────────
-- Which numbered migrations this database has had (each file records itself at its end).
create table if not exists rag_schema_migrations (
  version    integer primary key,
  name       text not null,
  applied_at timestamptz not null default now()
);
alter table rag_schema_migrations enable row level security;

-- ───────────────────────────── privileges ─────────────────────────────
-- Supabase serves every table, view and function of `public` over its REST API to anyone holding the project's anon
-- key, and its default privileges grant them all to anon, authenticated and service_role. Nothing here is for the
-- browser: the tables have RLS on and no policies (only roles that bypass RLS — the owner, service_role — see
-- rows), the view runs with its caller's rights (security_invoker), and every rag_* function is executable only by
-- its owner, service_role and the rag_worker role when those exist (not by PUBLIC, anon or authenticated).
-- Each function's search_path is pinned to this schema and pgvector's, so no caller's search_path can change
-- what its statements refer to. Every migration file ends by calling rag_apply_privileges(), and `rag-worker migrate` calls it again, so functions
-- added later get the same treatment.
create or replace function rag_apply_privileges() returns void
language plpgsql as $$
declare
  f regprocedure;
  v_path text;
  v_role text;
begin
  select quote_ident(current_schema()) || coalesce(', ' || quote_ident(e.extnamespace::regnamespace::text), '') into v_path
    from (select 1) one
    left join pg_extension e on e.extname = 'vector' and e.extnamespace <> current_schema()::regnamespace;
  for f in select p.oid::regprocedure from pg_proc p
            where p.pronamespace = current_schema()::regnamespace and p.proname like 'rag\_%' and p.prokind = 'f'
  loop
    execute format('alter function %s set search_path = %s, pg_temp', f, v_path);
    execute format('revoke all on function %s from public', f);
    foreach v_role in array array['anon', 'authenticated'] loop
      if exists (select 1 from pg_roles where rolname = v_role) then
        execute format('revoke all on function %s from %I', f, v_role);
      end if;
    end loop;
    foreach v_role in array array['service_role', 'rag_worker'] loop
      if exists (select 1 from pg_roles where rolname = v_role) then
        execute format('grant execute on function %s to %I', f, v_role);
      end if;
    end loop;
  end loop;
  foreach v_role in array array['anon', 'authenticated'] loop
    if exists (select 1 from pg_roles where rolname = v_role) then
      execute format('revoke all on rag_ingestion_queue, rag_documents, rag_chunks, rag_chunk_staging, rag_unpublished_chunks, rag_schema_migrations from %I', v_role);
    end if;
  end loop;
end $$;

select rag_apply_privileges();
insert into rag_schema_migrations (version, name) values (1, '20261128000000_rag_worker') on conflict (version) do nothing;
