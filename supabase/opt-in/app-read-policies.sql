-- rag-worker, opt-in, Supabase only: the app's signed-in users read their own jobs' progress and their own chunks.
--
-- Not a migration: `rag-worker migrate` never applies it (it is not in supabase/migrations). Apply it once the
-- schema is at version 5 or later, as the database owner:
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -1 -f supabase/opt-in/app-read-policies.sql
-- or paste it into the SQL editor, or copy it into your project's supabase/migrations under a name that sorts after
-- the rag-worker files. Safe to apply again.
--
-- Ownership: a job belongs to the user whose id (auth.uid(), as text: a lowercase UUID) is its metadata.owner_id,
-- and a published document version to the owner_id of the job that published it (rag_complete_job copies the job's
-- metadata to rag_documents). The server that enqueues sets owner_id from the user it has authenticated; the browser
-- cannot enqueue (authenticated may not insert) and cannot change it. Jobs and documents without owner_id are
-- nobody's. document_id is one namespace for all users: a document id that two users can both enqueue is published
-- to whichever job completes last, so make it unique per user (e.g. prefixed with the user's id).
--
-- What the role authenticated gets, for its own rows only (RLS policies with (select auth.uid())):
--   rag_ingestion_queue  SELECT of the progress columns (granted in rag_app_read_privileges below); never payload,
--                        metadata, worker_id, lease_token, lease_expires_at, attempt_history, usage, analysis.
--   rag_documents        SELECT of document_id, version, title, chunk_count, job_id, ingested_at.
--   rag_chunks           SELECT of the chunks of its published document versions (not content_hash, context_key,
--                        metadata); chunks of a job still in flight stay invisible, as they are to the search.
--   rag_match_chunks, rag_hybrid_chunks
--                        EXECUTE. Both are SECURITY INVOKER (checked below): they read rag_chunks and rag_documents
--                        with the caller's rights, so RLS limits them to the caller's chunks. Same arguments, same
--                        columns as for the service role.
-- Nothing else: no INSERT, UPDATE or DELETE anywhere, no other table, view or rag_* function. anon gets nothing.
-- Select the columns by name (`select *` on rag_ingestion_queue or rag_chunks fails with 42501: some are not granted).
--
-- Realtime: rag_ingestion_queue joins the publication supabase_realtime (when the database has one, as every
-- Supabase project does), so the app's client can follow a job with postgres_changes. Realtime checks each change
-- against these policies as the subscriber's role and sends only the columns that role may select.

-- ───────────────────────────── preconditions ─────────────────────────────
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'authenticated') or to_regprocedure('auth.uid()') is null then
    raise exception 'app-read-policies.sql is for Supabase: it needs the role authenticated and the function auth.uid()';
  end if;
  if to_regprocedure('rag_schema_version()') is null then
    raise exception 'app-read-policies.sql: apply the rag-worker schema first (rag-worker migrate, or supabase/migrations)';
  end if;
  -- Version 5 re-applies these grants whenever it re-applies the privileges (rag_apply_privileges calls
  -- rag_app_read_privileges); an older schema would revoke them at the next `rag-worker migrate`.
  if rag_schema_version() < 5 then
    raise exception 'app-read-policies.sql needs rag-worker schema version 5 or later, this database has %: run rag-worker migrate first',
      rag_schema_version();
  end if;
end $$;

-- ───────────────────────────── policies ─────────────────────────────
-- auth.uid() wrapped in a select is evaluated once per statement, not once per row (Supabase's linter, auth_rls_initplan).
drop policy if exists rag_app_read_own_jobs on rag_ingestion_queue;
create policy rag_app_read_own_jobs on rag_ingestion_queue for select to authenticated
  using (metadata ->> 'owner_id' = (select auth.uid())::text);

drop policy if exists rag_app_read_own_documents on rag_documents;
create policy rag_app_read_own_documents on rag_documents for select to authenticated
  using (metadata ->> 'owner_id' = (select auth.uid())::text);

-- A chunk is visible when it is published (its job is the one rag_documents records) and its document version is
-- visible to the caller: the subquery reads rag_documents with the caller's rights, so the policy above applies.
drop policy if exists rag_app_read_own_chunks on rag_chunks;
create policy rag_app_read_own_chunks on rag_chunks for select to authenticated
  using (exists (select 1 from rag_documents d
                  where d.document_id = rag_chunks.document_id and d.version = rag_chunks.version
                    and d.job_id = rag_chunks.job_id));

-- The policies' lookups ("my jobs", "my documents") by index.
create index if not exists rag_ingestion_queue_owner_idx on rag_ingestion_queue ((metadata ->> 'owner_id'));
create index if not exists rag_documents_owner_idx on rag_documents ((metadata ->> 'owner_id'));

-- ───────────────────────────── grants ─────────────────────────────
-- rag_apply_privileges() revokes every privilege of authenticated on every rag_* object, then calls this function:
-- the grants below survive every `rag-worker migrate` and every later migration. To let the app read another
-- column, add it here and apply this file again.
create or replace function rag_app_read_privileges() returns void
language plpgsql as $$
declare
  f regprocedure;
begin
  -- A SECURITY DEFINER search function would read with its owner's rights and bypass RLS: every user's chunks.
  if exists (select 1 from pg_proc p where p.pronamespace = current_schema()::regnamespace
                and p.proname in ('rag_match_chunks', 'rag_hybrid_chunks') and p.prosecdef) then
    raise exception 'rag_app_read_privileges: rag_match_chunks or rag_hybrid_chunks is SECURITY DEFINER; granting it to authenticated would bypass RLS';
  end if;
  grant select (id, document_id, version, title, format, status, submitted_at, updated_at, started_at, completed_at,
                run_at, attempts, max_attempts, segments_total, segments_done, chunks_total, chunks_done, chunks_reused,
                tokens_embedded, error_detail, last_error_category)
    on rag_ingestion_queue to authenticated;
  grant select (document_id, version, title, chunk_count, job_id, ingested_at) on rag_documents to authenticated;
  -- id, embedding, search_tsv and job_id: what the search functions read (with the caller's rights).
  grant select (id, document_id, version, chunk_index, content, token_count, segment_seq_start, segment_seq_end,
                start_ms, end_ms, speakers, embedding, embedding_model, job_id, created_at, context, search_tsv)
    on rag_chunks to authenticated;
  for f in select p.oid::regprocedure from pg_proc p
            where p.pronamespace = current_schema()::regnamespace and p.proname in ('rag_match_chunks', 'rag_hybrid_chunks')
  loop
    execute format('grant execute on function %s to authenticated', f);
  end loop;
end $$;

-- Pins the new function's search_path, revokes it from the browser roles like every rag_* function, and applies
-- the grants above.
select rag_apply_privileges();

-- ───────────────────────────── Realtime ─────────────────────────────
-- Supabase Realtime sends postgres_changes only for the tables of the publication supabase_realtime, which every
-- Supabase project has. A plain PostgreSQL has no Realtime and no such publication: nothing to do then (this file
-- does not create it). A publication FOR ALL TABLES already includes the queue.
do $$
begin
  if exists (select 1 from pg_publication where pubname = 'supabase_realtime' and not puballtables)
     and not exists (select 1 from pg_publication_rel r join pg_publication p on p.oid = r.prpubid
                      where p.pubname = 'supabase_realtime' and r.prrelid = 'rag_ingestion_queue'::regclass) then
    alter publication supabase_realtime add table rag_ingestion_queue;
  end if;
end $$;
