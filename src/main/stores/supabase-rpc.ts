/**
 * Calls of the rag_* SQL functions through Supabase's REST API (PostgREST) with the official supabase-js client:
 * the transport of the Supabase mode (SUPABASE_URL + SUPABASE_SERVICE_ROLE_KEY, no DATABASE_URL). Errors are
 * classified once, here, into the worker's error types, as classifyDbError does for a direct connection:
 * - no answer, a timeout, 5xx and PostgREST's connection errors (PGRST000–PGRST003) → DatabaseConnectionError
 *   (transient: waited for and retried);
 * - 401/403 and JWT errors (PGRST301, PGRST302), and a role without the grants (42501) → DatabaseAuthError naming
 *   SUPABASE_SERVICE_ROLE_KEY;
 * - a function the schema cache does not know (PGRST202), or an undefined function/table → SchemaError (apply
 *   the migrations);
 * - a request body larger than the gateway accepts (413) → RequestTooLargeError, which the store answers by
 *   splitting the call;
 * - SQLSTATEs raised by the functions keep their meaning: RW001 is LeaseLostError; others come back as an Error
 *   carrying `code` (the SQLSTATE), as the SQL transports pass them on.
 */
import { createClient, type SupabaseClient } from '@supabase/supabase-js';
import { DatabaseAuthError, DatabaseConnectionError, LeaseLostError, SchemaError } from '../../shared/errors.ts';
import { redactUrlCredentials } from '../../shared/redact.ts';

/** The call's body was larger than the REST gateway accepts: send less per call. */
export class RequestTooLargeError extends Error {
  readonly bytes: number;
  constructor(message: string, bytes: number) {
    super(message);
    this.name = 'RequestTooLargeError';
    this.bytes = bytes;
  }
}

/** An error the database raised in a function (a SQLSTATE with no rule of its own), with its code. */
export class SupabaseFunctionError extends Error {
  readonly code: string;
  readonly details: string | null;
  readonly hint: string | null;
  constructor(message: string, code: string, details: string | null, hint: string | null) {
    super(message);
    this.name = 'SupabaseFunctionError';
    this.code = code;
    this.details = details;
    this.hint = hint;
  }
}

export interface SupabaseRpcOptions {
  url: string;
  serviceRoleKey: string;
  timeoutMs: number;
}

export interface SupabaseRpc {
  /** Calls a function with named arguments; resolves with what PostgREST answered (rows, or a scalar). */
  call<T = unknown>(fn: string, args?: Record<string, unknown>): Promise<T>;
  readonly url: string;
}

const CONNECTION_CODES = new Set(['PGRST000', 'PGRST001', 'PGRST002', 'PGRST003']);
const JWT_CODES = new Set(['PGRST300', 'PGRST301', 'PGRST302']);

export function createSupabaseRpc(options: SupabaseRpcOptions): SupabaseRpc {
  const shownUrl = redactUrlCredentials(options.url, { allUserinfo: true });
  const client: SupabaseClient = createClient(options.url, options.serviceRoleKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    global: {
      // Every call gets its own deadline: a REST call that hangs is a connection problem, retried by the caller.
      fetch: (input, init) => fetch(input, { ...init, signal: init?.signal ?? AbortSignal.timeout(options.timeoutMs) }),
    },
  });
  return {
    url: shownUrl,
    async call<T>(fn: string, args: Record<string, unknown> = {}): Promise<T> {
      let result: { data: unknown; error: { code?: string; message: string; details?: string | null; hint?: string | null } | null; status: number };
      try {
        result = (await client.rpc(fn, args)) as typeof result;
      } catch (error) {
        throw new DatabaseConnectionError(`cannot reach Supabase at ${shownUrl} (SUPABASE_URL): ${(error as Error).message}`, { cause: error });
      }
      if (result.error) throw classifySupabaseError(result.error, result.status, fn, shownUrl, JSON.stringify(args).length);
      return result.data as T;
    },
  };
}

/** PostgREST's error (with the HTTP status) → the worker's error types. Exported for tests. */
export function classifySupabaseError(
  error: { code?: string; message: string; details?: string | null; hint?: string | null },
  status: number,
  fn: string,
  url: string,
  bytes = 0,
): Error {
  const code = error.code ?? '';
  const said = `${error.message}${code ? ` (${code})` : ''}`;
  if (code === 'RW001') return new LeaseLostError(error.message);
  if (status === 413) return new RequestTooLargeError(`Supabase refused a ${bytes}-byte call of ${fn}: ${said}`, bytes);
  if (status === 0 || status >= 500 || CONNECTION_CODES.has(code) || code.startsWith('08') || ['57P01', '57P03', '53300', '53000'].includes(code)) {
    // supabase-js reports a network failure or a timeout as status 0 with the fetch error's message.
    return new DatabaseConnectionError(`Supabase at ${url} (SUPABASE_URL) did not serve ${fn}: ${said}${status ? ` [HTTP ${status}]` : ''}`, { code: code || undefined });
  }
  if (status === 401 || status === 403 || JWT_CODES.has(code) || code === '42501') {
    return new DatabaseAuthError(
      `Supabase at ${url} refused the key for ${fn}: ${said} [HTTP ${status}]: set SUPABASE_SERVICE_ROLE_KEY to the project's service_role key (Project Settings → API)`,
      { setting: 'SUPABASE_SERVICE_ROLE_KEY' },
    );
  }
  if (code === 'PGRST202' || code === '42883' || code === '42P01') {
    return new SchemaError(
      `the rag-worker schema is missing or outdated in the Supabase project at ${url} (${fn}: ${said}): apply supabase/migrations with \`supabase db push\` (or paste each file, in order, into the SQL editor)`,
    );
  }
  return new SupabaseFunctionError(`${fn}: ${error.message}`, code, error.details ?? null, error.hint ?? null);
}
