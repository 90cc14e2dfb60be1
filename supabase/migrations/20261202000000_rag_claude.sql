-- rag-worker schema version 2: Claude's contexts and analysis, the cost of every job, hybrid search.
-- Applied once, after 20261128000000_rag_worker.sql (by `rag-worker migrate`, or as a Supabase migration in
-- file-name order). Safe to apply again.

-- ───────────────────────────── columns ─────────────────────────────
-- Claude (RAG_ENABLE_CLAUDE_ANALYSIS): a chunk's context is a short text situating it in its transcript, written by
-- Claude; it is prepended to the chunk for embedding and full-text search, while `content` stays as spoken.
-- context_key identifies what the context was computed from (model, prompt, the transcript window): a re-ingestion
-- with the same key reuses the context and the embedding.
alter table rag_chunks add column if not exists context text;
alter table rag_chunks add column if not exists context_key text;
alter table rag_chunk_staging add column if not exists context text;
alter table rag_chunk_staging add column if not exists context_key text;
-- Full-text search over context + content (rag_hybrid_chunks fuses it with vector search).
alter table rag_chunks add column if not exists search_tsv tsvector
  generated always as (to_tsvector('english', coalesce(context, '') || ' ' || content)) stored;
create index if not exists rag_chunks_search_tsv_idx on rag_chunks using gin (search_tsv);
-- What a job spent (embedding and Claude tokens, USD at the worker's price table), summed over its attempts;
-- copied to rag_documents at completion. Keys: see rag_usage_add.
alter table rag_ingestion_queue add column if not exists usage jsonb not null default '{}'::jsonb;
-- The document's analysis (summary, topics, decisions, action items, quotes, speakers), computed during the job
-- and published with its chunks; analysis_key identifies what it was computed from (model, prompt, transcript).
alter table rag_ingestion_queue add column if not exists analysis jsonb;
alter table rag_ingestion_queue add column if not exists analysis_key text;
alter table rag_documents add column if not exists analysis jsonb;
alter table rag_documents add column if not exists analysis_key text;
alter table rag_documents add column if not exists usage jsonb not null default '{}'::jsonb;

-- ───────────────────────────── usage ─────────────────────────────
-- Adds two usage objects key by key: numbers are summed, other values of b replace a's. Keys the worker writes:
-- embedding_tokens, embedding_usd, claude_requests, claude_input_tokens, claude_cache_write_tokens,
-- claude_cache_read_tokens, claude_output_tokens, claude_usd, cost_usd.
create or replace function rag_usage_add(a jsonb, b jsonb)
returns jsonb
language sql immutable as $$
  select coalesce(a, '{}'::jsonb)
         || coalesce((select jsonb_object_agg(k.key, k.value) from jsonb_each(coalesce(b, '{}'::jsonb)) k
                       where jsonb_typeof(k.value) <> 'number'), '{}'::jsonb)
         || coalesce((select jsonb_object_agg(k.key, coalesce((a ->> k.key)::numeric, 0) + (k.value #>> '{}')::numeric)
                        from jsonb_each(coalesce(b, '{}'::jsonb)) k
                       where jsonb_typeof(k.value) = 'number'), '{}'::jsonb);
$$;

-- ───────────────────────────── reuse ─────────────────────────────
-- Embeddings already published for this document (any version) with the same content hash and model, and the same
-- context key (p_context_keys, parallel to p_content_hashes; null or a null entry: a chunk embedded without context).
-- A chunk with context comes back with its context, so a re-ingestion reuses both.
drop function if exists rag_lookup_embeddings(text, text, text[]);
create or replace function rag_lookup_embeddings(p_document_id text, p_embedding_model text, p_content_hashes text[],
                                                 p_context_keys text[] default null)
returns table (content_hash text, context_key text, embedding text, context text)
language sql stable as $$
  select distinct on (c.content_hash, c.context_key) c.content_hash, c.context_key, c.embedding::text, c.context
    from unnest(p_content_hashes, coalesce(p_context_keys, array_fill(null::text, array[cardinality(p_content_hashes)]))) as w(hash, ctx_key)
    join rag_chunks c on c.document_id = p_document_id and c.content_hash = w.hash and c.context_key is not distinct from w.ctx_key
    join rag_documents d on d.document_id = c.document_id and d.version = c.version and d.job_id = c.job_id
   where c.embedding_model = p_embedding_model
   order by c.content_hash, c.context_key;
$$;

-- ───────────────────────────── saves ─────────────────────────────
-- Save one batch for each of several jobs of one worker in one transaction, with one INSERT per destination table:
-- HNSW insertion costs far less per row in one statement than in many small concurrent ones. Each batch is checked
-- and fenced exactly as rag_save_chunks does; a batch that fails its checks is reported, not saved, and the others
-- are saved. p_batches: jsonb array of {job_id, lease_token, offset, chunks, segments_done, tokens_embedded,
-- chunks_reused, usage}, usage (optional) added to the job's usage (rag_usage_add), chunks as for rag_save_chunks, one batch per job; offset: 0-based position in p_embeddings of the
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
           coalesce(c.value -> 'metadata', '{}'::jsonb) as metadata,
           c.value ->> 'context' as context, c.value ->> 'context_key' as context_key
      from jsonb_array_elements(p_batches) with ordinality as bt(value, ord)
      join unnest(v_batches, v_from) as a(ord, from_index) on a.ord = bt.ord
      join rag_ingestion_queue q on q.id = (bt.value ->> 'job_id')::uuid
      cross join lateral jsonb_array_elements(bt.value -> 'chunks') with ordinality as c(value, ord)
     where (c.value ->> 'chunk_index')::integer >= a.from_index
  ), direct as (
    insert into rag_chunks (document_id, version, chunk_index, content, token_count, segment_seq_start, segment_seq_end,
                            start_ms, end_ms, speakers, embedding, embedding_model, content_hash, metadata, job_id, context, context_key)
    select r.document_id, r.version, r.chunk_index, r.content, r.token_count, r.segment_seq_start, r.segment_seq_end,
           r.start_ms, r.end_ms, r.speakers, r.embedding::vector, p_embedding_model, r.content_hash, r.metadata, r.job_id,
           r.context, r.context_key
      from pending r where r.publish_mode = 'direct'
    returning 1
  ), staged as (
    insert into rag_chunk_staging (job_id, chunk_index, content, token_count, segment_seq_start, segment_seq_end,
                                   start_ms, end_ms, speakers, embedding, embedding_model, content_hash, metadata, context, context_key)
    select r.job_id, r.chunk_index, r.content, r.token_count, r.segment_seq_start, r.segment_seq_end,
           r.start_ms, r.end_ms, r.speakers, r.embedding::vector, p_embedding_model, r.content_hash, r.metadata,
           r.context, r.context_key
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
         usage = rag_usage_add(q.usage, b2.v -> 'usage'),
         lease_expires_at = greatest(q.lease_expires_at, now() + make_interval(secs => coalesce(q.lease_seconds, 30))),
         updated_at = now()
    from counts c join batch b2 on b2.id = c.id
   where q.id = c.id  -- (the inserts above run to completion whether or not their output is read)
  returning q.id, q.chunks_done, null::text, null::text;
end $$;

-- ───────────────────────────── analysis ─────────────────────────────
-- Records the document's analysis on the job (published with the chunks at completion) and what computing it cost.
-- p_analysis null: only the usage is added (an analysis that was skipped still cost its requests).
create or replace function rag_save_analysis(p_job_id uuid, p_worker_id text, p_lease_token uuid,
                                             p_analysis jsonb, p_analysis_key text, p_usage jsonb default null)
returns void
language plpgsql as $$
begin
  perform rag_fenced_job(p_job_id, p_worker_id, p_lease_token);
  update rag_ingestion_queue
     set analysis = coalesce(p_analysis, analysis),
         analysis_key = case when p_analysis is null then analysis_key else p_analysis_key end,
         usage = rag_usage_add(usage, p_usage), updated_at = now()
   where id = p_job_id;
end $$;

-- An analysis already computed from the same input (p_analysis_key): on this job (an earlier attempt), or published
-- for this document (any version). null when there is none. A skipped analysis is never reused.
create or replace function rag_lookup_analysis(p_job_id uuid, p_document_id text, p_analysis_key text)
returns jsonb
language sql stable as $$
  select coalesce(
    (select q.analysis from rag_ingestion_queue q
      where q.id = p_job_id and q.analysis_key = p_analysis_key and q.analysis ->> 'status' = 'complete'),
    (select d.analysis from rag_documents d
      where d.document_id = p_document_id and d.analysis_key = p_analysis_key and d.analysis ->> 'status' = 'complete'
      order by d.ingested_at desc limit 1));
$$;

-- ───────────────────────────── publishing ─────────────────────────────
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
                            start_ms, end_ms, speakers, embedding, embedding_model, content_hash, metadata, job_id, context, context_key)
    select j.document_id, j.version, s.chunk_index, s.content, s.token_count, s.segment_seq_start, s.segment_seq_end,
           s.start_ms, s.end_ms, s.speakers, s.embedding, s.embedding_model, s.content_hash, s.metadata, p_job_id,
           s.context, s.context_key
      from rag_chunk_staging s where s.job_id = p_job_id order by s.chunk_index;
    delete from rag_chunk_staging where job_id = p_job_id;
  end if;

  insert into rag_documents (document_id, version, title, metadata, chunk_count, embedding_model, job_id, ingested_at,
                             analysis, analysis_key, usage)
  values (j.document_id, j.version, j.title, j.metadata, v_count, v_model, p_job_id, now(), j.analysis, j.analysis_key, j.usage)
  on conflict (document_id, version) do update
     set title = excluded.title, metadata = excluded.metadata, chunk_count = excluded.chunk_count,
         embedding_model = excluded.embedding_model, job_id = excluded.job_id, ingested_at = excluded.ingested_at,
         analysis = excluded.analysis, analysis_key = excluded.analysis_key, usage = excluded.usage;

  update rag_ingestion_queue
     set status = 'complete', completed_at = now(), updated_at = now(), lease_token = null, lease_expires_at = null,
         error_detail = null, chunks_total = v_count,
         attempt_history = attempt_history || rag_history_entry(attempts, p_worker_id, 'complete', null)
   where id = p_job_id;
  return v_count;
end $$;

-- ───────────────────────────── retrieval ─────────────────────────────
-- Hybrid search: rag_match_chunks' vector ranking fused with a full-text ranking of search_tsv (context + content)
-- by reciprocal-rank fusion. Each list holds the top p_candidates published chunks (at least p_match_count), within
-- the same document / version filters: by cosine distance to p_query_embedding, and by ts_rank_cd among the chunks
-- matching websearch_to_tsquery('english', p_query_text) (quoted phrases, `or`, `-word`). A chunk's score is the
-- sum over the lists it is in of 1 / (p_rrf_k + its rank there), ranks from 1: a chunk both lists agree on beats
-- one only a single list ranks high, and a keyword hit (a name, a code, a rare term) ranks in even when its
-- embedding is far from the query's. vector_rank / text_rank: the chunk's rank in each list, null when not in it.
-- A query without lexemes (empty, only stop words) matches no text: vector results only. Ties: the nearer vector.
-- p_rrf_k below 0 counts as 0; null p_rrf_k / p_candidates take the defaults.
create or replace function rag_hybrid_chunks(
  p_query_text text, p_query_embedding vector, p_match_count integer default 5,
  p_document_id text default null, p_version text default null,
  p_rrf_k integer default 60, p_candidates integer default 50)
returns table (document_id text, version text, chunk_index integer, content text, start_ms bigint, end_ms bigint,
               speakers text[], segment_seq_start integer, segment_seq_end integer, title text, score double precision,
               context text, vector_rank integer, text_rank integer)
language sql stable as $$
  with vector_hits as (
    select v.id, (row_number() over (order by v.distance, v.id))::integer as rank
      from (select c.id, c.embedding <=> p_query_embedding as distance
              from rag_chunks c
              join rag_documents d on d.document_id = c.document_id and d.version = c.version and d.job_id = c.job_id
             where (p_document_id is null or c.document_id = p_document_id)
               and (p_version is null or c.version = p_version)
             order by c.embedding <=> p_query_embedding
             limit greatest(coalesce(p_candidates, 50), p_match_count, 1)) v
  ),
  text_hits as (
    select t.id, (row_number() over (order by t.relevance desc, t.id))::integer as rank
      from (select c.id, ts_rank_cd(c.search_tsv, websearch_to_tsquery('english', coalesce(p_query_text, ''))) as relevance
              from rag_chunks c
              join rag_documents d on d.document_id = c.document_id and d.version = c.version and d.job_id = c.job_id
             where c.search_tsv @@ websearch_to_tsquery('english', coalesce(p_query_text, ''))
               and (p_document_id is null or c.document_id = p_document_id)
               and (p_version is null or c.version = p_version)
             order by relevance desc, c.id
             limit greatest(coalesce(p_candidates, 50), p_match_count, 1)) t
  ),
  fused as (
    select coalesce(v.id, t.id) as id, v.rank as vector_rank, t.rank as text_rank,
           coalesce(1 / (greatest(coalesce(p_rrf_k, 60), 0)::double precision + v.rank), 0)
             + coalesce(1 / (greatest(coalesce(p_rrf_k, 60), 0)::double precision + t.rank), 0) as score
      from vector_hits v
      full join text_hits t on t.id = v.id
  )
  select c.document_id, c.version, c.chunk_index, c.content, c.start_ms, c.end_ms, c.speakers,
         c.segment_seq_start, c.segment_seq_end, d.title, f.score, c.context, f.vector_rank, f.text_rank
    from fused f
    join rag_chunks c on c.id = f.id
    join rag_documents d on d.document_id = c.document_id and d.version = c.version and d.job_id = c.job_id
   order by f.score desc, c.embedding <=> p_query_embedding, c.id
   limit greatest(p_match_count, 1);
$$;

-- ───────────────────────────── version ─────────────────────────────
create or replace function rag_schema_version() returns integer
language sql immutable as $$ select 2 $$;

select rag_apply_privileges();
insert into rag_schema_migrations (version, name) values (2, '20261202000000_rag_claude') on conflict (version) do nothing;
