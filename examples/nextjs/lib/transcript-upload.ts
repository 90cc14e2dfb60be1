/**
 * Reads a transcript upload from an HTTP request, checks it, and builds the arguments of `rag_enqueue`.
 *
 * Web APIs only (Request, FormData, File, TextDecoder, Response), so the same file runs in a Next.js route handler
 * (Node) and in a Supabase Edge Function (Deno). rag-worker keeps an identical copy in
 * examples/supabase-edge-function/_shared/transcript-upload.ts (a test checks that the two stay the same).
 *
 * Two shapes of request are accepted:
 *
 * - `multipart/form-data`: the transcript file in the field `file`, plus optional text fields `document_id` (default:
 *   the file name), `version`, `title` (default: the file name without its extension), `format`, `owner_id` and
 *   `metadata` (a JSON object, as text).
 * - `application/json`: `{"document_id", "content", "version"?, "title"?, "format"?, "metadata"?, "owner_id"?}`,
 *   where `content` is the transcript as a string (or a speech-to-text service's JSON response as an object).
 *
 * Every job carries `metadata.owner_id` (given as `owner_id` or inside `metadata`): the user the transcript belongs
 * to, for the app's own checks and row-level security. Anything wrong is an UploadError with the HTTP status to
 * answer (400, 403, 413, 415) and the field at fault; nothing is queued.
 */

/** The formats the worker reads (README, "Transcript formats"); `auto` detects the format from the content. */
export const TRANSCRIPT_FORMATS = [
  'auto',
  'segments',
  'vtt',
  'srt',
  'whisper',
  'text',
  'words',
  'deepgram',
  'assemblyai',
  'aws-transcribe',
  'revai',
  'google-speech',
  'azure-speech',
] as const;
export type TranscriptFormat = (typeof TRANSCRIPT_FORMATS)[number];

/**
 * The largest transcript accepted, in bytes of UTF-8 (10 MiB, about 200 hours of plain-text speech). Hosting
 * platforms have their own ceilings on a request body (Vercel functions: 4.5 MB); keep this at or below yours.
 */
export const MAX_TRANSCRIPT_BYTES = 10 * 1024 * 1024;
/** Room for the multipart framing and the other fields beside the file. */
const FORM_OVERHEAD_BYTES = 64 * 1024;
const MAX_METADATA_BYTES = 64 * 1024;
const MAX_ID_CHARS = 200;
const MAX_TITLE_CHARS = 500;

export interface TranscriptUpload {
  documentId: string;
  version: string;
  title: string | null;
  format: TranscriptFormat;
  /** The transcript, storable as jsonb: without NUL characters and lone UTF-16 surrogates. */
  text: string;
  /** The job's metadata: always with `owner_id`; `source_file` for a file upload. */
  metadata: Record<string, unknown> & { owner_id: string };
}

export interface UploadOptions {
  /** Largest transcript in bytes (default MAX_TRANSCRIPT_BYTES). */
  maxBytes?: number;
  /**
   * The owner as your own authentication established it (the signed-in user's id). When given, it becomes
   * `metadata.owner_id`, and a request naming another owner is refused with 403. Without it, the request's
   * `owner_id` is taken as given: only right when something in front of this code has checked it.
   */
  ownerId?: string;
}

export class UploadError extends Error {
  /** The HTTP status to answer: 400 bad input, 403 another owner, 413 too large, 415 unsupported content type. */
  readonly status: number;
  /** The request field at fault, when there is one. */
  readonly field: string | undefined;

  constructor(status: number, message: string, field?: string) {
    super(message);
    this.name = 'UploadError';
    this.status = status;
    this.field = field;
  }
}

/** What `rag_enqueue(p_document_id, p_version, p_title, p_format, p_payload, p_metadata)` takes, by name. */
export interface EnqueueArgs {
  p_document_id: string;
  p_version: string;
  p_title: string | null;
  p_format: TranscriptFormat;
  p_payload: { text: string };
  p_metadata: Record<string, unknown>;
}

export function enqueueArgs(upload: TranscriptUpload): EnqueueArgs {
  return {
    p_document_id: upload.documentId,
    p_version: upload.version,
    p_title: upload.title,
    p_format: upload.format,
    p_payload: { text: upload.text },
    p_metadata: upload.metadata,
  };
}

/** A JSON response (errors as `{"error": "...", "field"?: "..."}`). */
export function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json; charset=utf-8', ...headers } });
}

export function uploadErrorResponse(error: UploadError, headers: Record<string, string> = {}): Response {
  return jsonResponse(error.status, error.field === undefined ? { error: error.message } : { error: error.message, field: error.field }, headers);
}

/** Reads and checks the upload; throws UploadError for anything the worker would refuse or a user got wrong. */
export async function readTranscriptUpload(request: Request, options: UploadOptions = {}): Promise<TranscriptUpload> {
  const maxBytes = options.maxBytes ?? MAX_TRANSCRIPT_BYTES;
  const declared = Number(request.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes + FORM_OVERHEAD_BYTES) {
    throw new UploadError(413, `the request is ${declared} bytes; a transcript may have at most ${maxBytes} bytes`);
  }
  const type = (request.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase();
  if (type === 'multipart/form-data') return readForm(request, maxBytes, options);
  if (type === 'application/json' || type.endsWith('+json')) return readJson(request, maxBytes, options);
  throw new UploadError(415, `unsupported Content-Type ${JSON.stringify(type || 'none')}: send multipart/form-data with the transcript in the field "file", or application/json with "content"`);
}

async function readForm(request: Request, maxBytes: number, options: UploadOptions): Promise<TranscriptUpload> {
  let form: FormData;
  try {
    form = await request.formData();
  } catch {
    throw new UploadError(400, 'the multipart/form-data body could not be read');
  }
  const file = form.get('file');
  if (file === null) throw new UploadError(400, 'missing: send the transcript as the form field "file"', 'file');
  if (typeof file === 'string') throw new UploadError(400, 'expected a file upload, got a text field (send text as JSON "content")', 'file');
  if (file.size > maxBytes) throw new UploadError(413, `the file is ${file.size} bytes; a transcript may have at most ${maxBytes} bytes`, 'file');
  const text = decodeTranscript(new Uint8Array(await file.arrayBuffer()), 'file');
  const field = (name: string): string | undefined => {
    const value = form.get(name);
    if (value === null) return undefined;
    if (typeof value !== 'string') throw new UploadError(400, 'expected a text field, got a file', name);
    return value;
  };
  const metadataText = field('metadata');
  let metadata: unknown;
  if (metadataText !== undefined && metadataText.trim() !== '') {
    try {
      metadata = JSON.parse(metadataText);
    } catch {
      throw new UploadError(400, 'expected a JSON object', 'metadata');
    }
  }
  const fileName = file.name || 'transcript';
  return finish(
    {
      document_id: field('document_id') || fileName,
      version: field('version'),
      title: field('title') ?? fileName.replace(/\.[^.]+$/, ''),
      format: field('format') || undefined,
      owner_id: field('owner_id'),
      metadata,
    },
    text,
    { source_file: fileName },
    options,
  );
}

async function readJson(request: Request, maxBytes: number, options: UploadOptions): Promise<TranscriptUpload> {
  let body: unknown;
  try {
    body = await request.json();
  } catch {
    throw new UploadError(400, 'the body is not valid JSON');
  }
  if (!isRecord(body)) throw new UploadError(400, `expected a JSON object, got ${describe(body)}`);
  const content = body.content;
  let raw: string;
  if (typeof content === 'string') raw = content;
  else if (content !== null && typeof content === 'object') raw = JSON.stringify(content); // a speech-to-text JSON response
  else throw new UploadError(400, `expected the transcript as a string (or a speech-to-text JSON response), got ${describe(content)}`, 'content');
  const bytes = new TextEncoder().encode(raw);
  if (bytes.length > maxBytes) throw new UploadError(413, `the transcript is ${bytes.length} bytes; it may have at most ${maxBytes}`, 'content');
  return finish(body, checkText(raw, 'content'), {}, options);
}

interface Fields {
  document_id?: unknown;
  version?: unknown;
  title?: unknown;
  format?: unknown;
  owner_id?: unknown;
  metadata?: unknown;
}

function finish(fields: Fields, text: string, extra: Record<string, unknown>, options: UploadOptions): TranscriptUpload {
  const documentId = requiredText(fields.document_id, 'document_id', MAX_ID_CHARS);
  const version = fields.version === undefined || fields.version === null || fields.version === '' ? '1' : requiredText(fields.version, 'version', MAX_ID_CHARS);
  const title = fields.title === undefined || fields.title === null || fields.title === '' ? null : requiredText(fields.title, 'title', MAX_TITLE_CHARS);
  const format = fields.format === undefined || fields.format === null ? 'auto' : fields.format;
  if (typeof format !== 'string' || !(TRANSCRIPT_FORMATS as readonly string[]).includes(format)) {
    throw new UploadError(400, `unknown format ${JSON.stringify(format)}: expected one of ${TRANSCRIPT_FORMATS.join(', ')}`, 'format');
  }
  if (fields.metadata !== undefined && fields.metadata !== null && !isRecord(fields.metadata)) {
    throw new UploadError(400, `expected a JSON object, got ${describe(fields.metadata)}`, 'metadata');
  }
  const metadata: Record<string, unknown> = { ...(fields.metadata ?? {}), ...extra };
  if (new TextEncoder().encode(JSON.stringify(metadata)).length > MAX_METADATA_BYTES) {
    throw new UploadError(400, `metadata may have at most ${MAX_METADATA_BYTES} bytes of JSON`, 'metadata');
  }

  const present = (v: unknown) => v !== undefined && v !== null && v !== '';
  const ownerField = present(fields.owner_id) ? requiredText(fields.owner_id, 'owner_id', MAX_ID_CHARS) : undefined;
  const ownerInMetadata = present(metadata.owner_id) ? requiredText(metadata.owner_id, 'metadata.owner_id', MAX_ID_CHARS) : undefined;
  if (ownerField !== undefined && ownerInMetadata !== undefined && ownerField !== ownerInMetadata) {
    throw new UploadError(400, 'owner_id and metadata.owner_id name different owners', 'owner_id');
  }
  let owner = ownerField ?? ownerInMetadata;
  if (options.ownerId !== undefined) {
    if (owner !== undefined && owner !== options.ownerId) throw new UploadError(403, 'the transcript names another owner than the signed-in user', 'owner_id');
    owner = options.ownerId;
  }
  if (owner === undefined) throw new UploadError(400, 'missing: the user the transcript belongs to (owner_id, or metadata.owner_id)', 'owner_id');
  metadata.owner_id = owner;
  checkSpeakerNames(metadata.speaker_names);

  return { documentId, version, title, format: format as TranscriptFormat, text, metadata: metadata as TranscriptUpload['metadata'] };
}

/** A non-empty one-line string (numbers are taken as their text), trimmed, at most `max` characters. */
function requiredText(value: unknown, field: string, max: number): string {
  const text = typeof value === 'number' && Number.isFinite(value) ? String(value) : value;
  if (typeof text !== 'string') throw new UploadError(400, value === undefined ? 'missing' : `expected a string, got ${describe(value)}`, field);
  const trimmed = text.trim();
  if (trimmed === '') throw new UploadError(400, 'must not be empty', field);
  if (trimmed.length > max) throw new UploadError(400, `may have at most ${max} characters`, field);
  if (/[\u0000-\u001f\u007f]/.test(trimmed)) throw new UploadError(400, 'must be one line without control characters', field);
  return trimmed;
}

/** Speaker names are applied before chunking; a malformed map would fail the job, so it is refused here. */
function checkSpeakerNames(value: unknown): void {
  if (value === undefined || value === null) return;
  if (!isRecord(value)) throw new UploadError(400, `expected an object like {"spk_0": "Ann"}, got ${describe(value)}`, 'metadata.speaker_names');
  for (const [key, name] of Object.entries(value)) {
    if (typeof name !== 'string' || name.trim() === '') {
      throw new UploadError(400, `${JSON.stringify(key)}: expected a non-empty name, got ${describe(name)}`, 'metadata.speaker_names');
    }
  }
}

/** UTF-8 bytes to text (a BOM is dropped); invalid bytes decode to U+FFFD, which checkText counts. */
function decodeTranscript(bytes: Uint8Array, field: string): string {
  if (bytes.length === 0) throw new UploadError(400, 'the file is empty', field);
  return checkText(new TextDecoder('utf-8').decode(bytes), field);
}

const BINARY_CHARS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffd]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
/** NUL, or (with the u flag, so well-formed pairs are one code point) a lone surrogate: jsonb refuses both. */
const UNSTORABLE = /\u0000|\p{Cs}/gu;
const INVISIBLE_ONLY = /^[\s\p{Cf}\p{Default_Ignorable_Code_Point}]*$/u;

/**
 * The worker's rules, applied before anything is queued: a file of which more than 10% (and at least 8) of the
 * characters are control or replacement characters is binary or not UTF-8 (UTF-16, say) and is refused; stray
 * NULs and lone surrogates are removed (jsonb cannot hold them); text with nothing visible is empty.
 */
function checkText(raw: string, field: string): string {
  const bad = raw.match(BINARY_CHARS)?.length ?? 0;
  if (raw.length > 0 && bad >= 8 && bad / raw.length > 0.1) {
    throw new UploadError(400, `looks binary or is not UTF-8 text (${Math.round((bad / raw.length) * 100)}% of its characters are control or invalid characters)`, field);
  }
  const text = raw.replace(UNSTORABLE, '');
  if (INVISIBLE_ONLY.test(text)) throw new UploadError(400, 'the transcript has no text', field);
  return text;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
