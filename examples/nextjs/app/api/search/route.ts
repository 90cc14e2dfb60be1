/**
 * POST /api/search (or GET /api/search?q=...) — the transcript passages that best answer a question.
 *
 * The question is embedded with the model and dimensions the worker embedded the chunks with (RAG_EMBEDDING_MODEL,
 * default text-embedding-3-small; RAG_EMBEDDING_DIMENSIONS, default 1536: set both as on the worker, or the
 * scores mean nothing), then `rag_match_chunks` (cosine similarity) or, with `hybrid`, `rag_hybrid_chunks`
 * (vector and keyword rankings fused) is called through PostgREST with the service-role key.
 *
 * Body: `{"query": "...", "match_count"?: 1-50 (default 5), "document_id"?, "version"?, "hybrid"?: boolean}`;
 * GET takes `q`, `k`, `document_id`, `version`, `hybrid=1`. Answers 200 `{"query", "chunks": [{document_id,
 * version, title, chunk_index, content, speakers, start_ms, end_ms, start, end, score, ...}]}` where `start` and
 * `end` are `hh:mm:ss`; with `hybrid` each chunk also has `context`, `vector_rank` and `text_rank`.
 *
 * With the service-role key the search sees every user's published documents. To search only the caller's, apply
 * supabase/opt-in/app-read-policies.sql (it grants rag_match_chunks and rag_hybrid_chunks to authenticated, and
 * row-level security then limits them to documents whose job's metadata.owner_id is the user) and make the same
 * .rpc() call with a client that carries the user's access token instead of supabaseServer(), e.g.
 *   createClient(url, anonKey, { global: { headers: { Authorization: `Bearer ${accessToken}` } } })
 */
import OpenAI from 'openai';
import { ServerConfigError, supabaseServer } from '../../../lib/supabase-server.ts';

export const runtime = 'nodejs';

const MAX_MATCHES = 50;
const MAX_QUERY_CHARS = 2000;

interface SearchRequest {
  query: string;
  matchCount: number;
  documentId?: string;
  version?: string;
  hybrid: boolean;
}

interface ChunkRow {
  document_id: string;
  version: string;
  chunk_index: number;
  content: string;
  start_ms: number | null;
  end_ms: number | null;
  speakers: string[];
  segment_seq_start: number | null;
  segment_seq_end: number | null;
  title: string | null;
  score: number;
  context?: string | null;
  vector_rank?: number | null;
  text_rank?: number | null;
}

class BadRequest extends Error {
  readonly field: string | undefined;
  constructor(message: string, field?: string) {
    super(message);
    this.field = field;
  }
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json; charset=utf-8' } });
}

export async function POST(request: Request): Promise<Response> {
  let body: unknown;
  try {
    body = await request.json();
  } catch {
    return json(400, { error: 'the body is not valid JSON' });
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return json(400, { error: 'expected a JSON object' });
  const b = body as Record<string, unknown>;
  return search(() => parse({ query: b.query, matchCount: b.match_count, documentId: b.document_id, version: b.version, hybrid: b.hybrid }));
}

export async function GET(request: Request): Promise<Response> {
  const q = new URL(request.url).searchParams;
  const hybrid = q.get('hybrid');
  return search(() =>
    parse({
      query: q.get('q') ?? undefined,
      matchCount: q.get('k') ?? undefined,
      documentId: q.get('document_id') ?? undefined,
      version: q.get('version') ?? undefined,
      hybrid: hybrid === null ? undefined : hybrid === '' || hybrid === '1' || hybrid === 'true',
    }),
  );
}

function parse(raw: { query: unknown; matchCount: unknown; documentId: unknown; version: unknown; hybrid: unknown }): SearchRequest {
  if (typeof raw.query !== 'string' || raw.query.trim() === '') throw new BadRequest('missing: the question to search for', 'query');
  const query = raw.query.trim();
  if (query.length > MAX_QUERY_CHARS) throw new BadRequest(`may have at most ${MAX_QUERY_CHARS} characters`, 'query');
  const count = raw.matchCount === undefined || raw.matchCount === null || raw.matchCount === '' ? 5 : Number(raw.matchCount);
  if (!Number.isInteger(count) || count < 1 || count > MAX_MATCHES) throw new BadRequest(`expected a whole number from 1 to ${MAX_MATCHES}`, 'match_count');
  const optional = (value: unknown, field: string): string | undefined => {
    if (value === undefined || value === null || value === '') return undefined;
    if (typeof value !== 'string' && typeof value !== 'number') throw new BadRequest('expected a string', field);
    return String(value);
  };
  if (raw.hybrid !== undefined && raw.hybrid !== null && typeof raw.hybrid !== 'boolean') throw new BadRequest('expected true or false', 'hybrid');
  return {
    query,
    matchCount: count,
    documentId: optional(raw.documentId, 'document_id'),
    version: optional(raw.version, 'version'),
    hybrid: raw.hybrid === true,
  };
}

/** The embedding settings, as the worker reads them (src/shared/config.ts). */
function embeddingSettings(): { client: OpenAI; model: string; dimensions: number } {
  const apiKey = process.env.OPENAI_API_KEY;
  const baseURL = process.env.OPENAI_BASE_URL || undefined;
  if (!apiKey && !baseURL) throw new ServerConfigError('OPENAI_API_KEY is not set (or OPENAI_BASE_URL for an OpenAI-compatible server)');
  const model = process.env.RAG_EMBEDDING_MODEL || 'text-embedding-3-small';
  const dimensions = Number(process.env.RAG_EMBEDDING_DIMENSIONS || 1536);
  if (!Number.isInteger(dimensions) || dimensions < 1 || dimensions > 2000) throw new ServerConfigError('RAG_EMBEDDING_DIMENSIONS must be a whole number from 1 to 2000');
  // Local OpenAI-compatible servers often need no key; the SDK insists on one.
  return { client: new OpenAI({ apiKey: apiKey || 'not-needed', baseURL, maxRetries: 2, timeout: 20_000 }), model, dimensions };
}

async function search(read: () => SearchRequest): Promise<Response> {
  let req: SearchRequest;
  try {
    req = read();
  } catch (error) {
    if (error instanceof BadRequest) return json(400, error.field === undefined ? { error: error.message } : { error: error.message, field: error.field });
    throw error;
  }

  let embedding: number[];
  let supabase;
  try {
    const { client, model, dimensions } = embeddingSettings();
    supabase = supabaseServer();
    try {
      // Only text-embedding-3-* take `dimensions`; the worker sends it for those alone, and so does this.
      const result = await client.embeddings.create({ model, input: req.query, ...(/^text-embedding-3/.test(model) ? { dimensions } : {}) });
      embedding = result.data[0].embedding;
    } catch (error) {
      console.error('[api/search] embedding the query failed', error instanceof Error ? error.message : error);
      return json(502, { error: 'the question could not be embedded; try again later' });
    }
  } catch (error) {
    if (!(error instanceof ServerConfigError)) throw error;
    console.error(`[api/search] ${error.message}`);
    return json(500, { error: 'the server is not configured to search' });
  }

  const args = { p_query_embedding: embedding, p_match_count: req.matchCount, p_document_id: req.documentId, p_version: req.version };
  const { data, error } = req.hybrid
    ? await supabase.rpc('rag_hybrid_chunks', { p_query_text: req.query, ...args })
    : await supabase.rpc('rag_match_chunks', args);
  if (error || !Array.isArray(data)) {
    // "different vector dimensions": RAG_EMBEDDING_DIMENSIONS differs from the worker's.
    console.error('[api/search] search failed', error ? { code: error.code, message: error.message } : { data });
    return json(502, { error: 'the search failed; try again later' });
  }
  const chunks = (data as ChunkRow[]).map((row) => ({
    document_id: row.document_id,
    version: row.version,
    title: row.title,
    chunk_index: row.chunk_index,
    content: row.content,
    speakers: row.speakers,
    start_ms: row.start_ms,
    end_ms: row.end_ms,
    start: clock(row.start_ms),
    end: clock(row.end_ms),
    score: row.score,
    ...(req.hybrid ? { context: row.context ?? null, vector_rank: row.vector_rank ?? null, text_rank: row.text_rank ?? null } : {}),
  }));
  return json(200, { query: req.query, chunks });
}

/** 3723004 → "01:02:03". */
function clock(ms: number | null): string | null {
  if (ms === null || ms === undefined) return null;
  const s = Math.floor(ms / 1000);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
}
