/**
 * POST /api/transcripts — queue an uploaded transcript for rag-worker.
 *
 * A route handler only checks the upload and inserts one queue row (`rag_enqueue`, through PostgREST with the
 * service-role key); the worker does the parsing, chunking and embedding outside the request, so a long transcript
 * never meets the platform's function timeout. Answers 202 `{"job_id", "document_id", "version", "status"}`; follow
 * the job with lib/use-job-progress.ts. Bad input is a 400 (403, 413, 415) `{"error", "field"?}` and queues nothing.
 *
 * Body: multipart/form-data (`file`, and optional `document_id`, `version`, `title`, `format`, `owner_id`,
 * `metadata`) or application/json (`document_id`, `content`, optional `version`, `title`, `format`, `owner_id`,
 * `metadata`); see lib/transcript-upload.ts.
 *
 * Enqueueing a document version that is still queued does not add a second job: the queued one takes the new
 * transcript and keeps its id, which is answered again.
 */
import { ServerConfigError, supabaseServer } from '../../../lib/supabase-server.ts';
import { UploadError, enqueueArgs, jsonResponse, readTranscriptUpload, uploadErrorResponse } from '../../../lib/transcript-upload.ts';

// The service-role client and the upload parsing need the Node.js runtime (the default), not the Edge runtime.
export const runtime = 'nodejs';

export async function POST(request: Request): Promise<Response> {
  let upload;
  try {
    // Who the transcript belongs to. This example takes owner_id from the request, which is only right behind
    // your own authentication. With Supabase Auth, verify the caller and pass the user's id instead, e.g.
    //   const token = request.headers.get('authorization')?.replace(/^Bearer /i, '') ?? '';
    //   const { data: { user } } = await supabaseServer().auth.getUser(token);
    //   if (!user) return jsonResponse(401, { error: 'sign in first' });
    //   upload = await readTranscriptUpload(request, { ownerId: user.id });
    upload = await readTranscriptUpload(request);
  } catch (error) {
    if (error instanceof UploadError) return uploadErrorResponse(error);
    throw error;
  }

  let supabase;
  try {
    supabase = supabaseServer();
  } catch (error) {
    if (!(error instanceof ServerConfigError)) throw error;
    console.error(`[api/transcripts] ${error.message}`);
    return jsonResponse(500, { error: 'the server is not configured to queue transcripts' });
  }

  const { data, error } = await supabase.rpc('rag_enqueue', enqueueArgs(upload));
  if (error || typeof data !== 'string') {
    // PGRST202 (function not found): the rag-worker migrations are not applied. 401/403: the key is not the
    // service-role key. The details stay in the server's log; the client learns only that queueing failed.
    console.error('[api/transcripts] rag_enqueue failed', error ? { code: error.code, message: error.message, hint: error.hint } : { data });
    return jsonResponse(502, { error: 'the transcript could not be queued; try again later' });
  }
  return jsonResponse(202, { job_id: data, document_id: upload.documentId, version: upload.version, status: 'queued' });
}
