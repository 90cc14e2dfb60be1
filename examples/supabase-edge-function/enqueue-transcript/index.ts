/**
 * Supabase Edge Function `enqueue-transcript`: queues an uploaded transcript for rag-worker and answers at once.
 *
 * The same contract as the Next.js route (examples/nextjs/app/api/transcripts/route.ts), and the same checks
 * (../_shared/transcript-upload.ts): POST multipart/form-data (`file`, optional `document_id`, `version`, `title`,
 * `format`, `owner_id`, `metadata`) or application/json (`document_id`, `content`, ...) → 202 `{"job_id",
 * "document_id", "version", "status": "queued"}`; bad input → 400 (403, 413, 415) `{"error", "field"?}`, nothing
 * queued. The function only inserts the queue row (`rag_enqueue`, with the service-role key): ingesting a long
 * transcript here would run into the Edge Functions' wall-clock limit, which is why rag-worker exists.
 *
 * Environment: SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY, which Supabase sets for every function (nothing to
 * configure when deployed). CORS_ALLOW_ORIGIN (default `*`) for browsers calling it directly.
 *
 * Deploy: copy `enqueue-transcript/` and `_shared/` into your project's `supabase/functions/`, then
 * `supabase functions deploy enqueue-transcript`. Locally: `supabase functions serve`, or
 * `deno run --allow-net --allow-env index.ts` with the two variables set.
 */
import { createClient } from 'npm:@supabase/supabase-js@2.119.0';
import { UploadError, enqueueArgs, jsonResponse, readTranscriptUpload, uploadErrorResponse } from '../_shared/transcript-upload.ts';

const cors = {
  'Access-Control-Allow-Origin': Deno.env.get('CORS_ALLOW_ORIGIN') || '*',
  'Access-Control-Allow-Headers': 'authorization, x-client-info, apikey, content-type',
  'Access-Control-Allow-Methods': 'POST, OPTIONS',
};

const url = Deno.env.get('SUPABASE_URL');
const serviceRoleKey = Deno.env.get('SUPABASE_SERVICE_ROLE_KEY');
const supabase = url && serviceRoleKey
  ? createClient(url, serviceRoleKey, { auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false } })
  : undefined;

Deno.serve(async (request: Request): Promise<Response> => {
  if (request.method === 'OPTIONS') return new Response(null, { status: 204, headers: cors });
  if (request.method !== 'POST') return jsonResponse(405, { error: 'use POST' }, { ...cors, Allow: 'POST, OPTIONS' });
  if (!supabase) {
    console.error('[enqueue-transcript] SUPABASE_URL or SUPABASE_SERVICE_ROLE_KEY is not set');
    return jsonResponse(500, { error: 'the function is not configured to queue transcripts' }, cors);
  }

  let upload;
  try {
    // Who the transcript belongs to. Supabase checks the caller's JWT before the function runs (verify_jwt, on by
    // default), but this example takes owner_id from the request. To bind it to the signed-in user instead:
    //   const token = request.headers.get('authorization')?.replace(/^Bearer /i, '') ?? '';
    //   const { data: { user } } = await supabase.auth.getUser(token);
    //   if (!user) return jsonResponse(401, { error: 'sign in first' }, cors);
    //   upload = await readTranscriptUpload(request, { ownerId: user.id });
    upload = await readTranscriptUpload(request);
  } catch (error) {
    if (error instanceof UploadError) return uploadErrorResponse(error, cors);
    throw error;
  }

  const { data, error } = await supabase.rpc('rag_enqueue', enqueueArgs(upload));
  if (error || typeof data !== 'string') {
    // PGRST202: the rag-worker migrations are not applied to this project.
    console.error('[enqueue-transcript] rag_enqueue failed', error ? { code: error.code, message: error.message, hint: error.hint } : { data });
    return jsonResponse(502, { error: 'the transcript could not be queued; try again later' }, cors);
  }
  return jsonResponse(202, { job_id: data, document_id: upload.documentId, version: upload.version, status: 'queued' }, cors);
});
