/**
 * The Supabase mode's wake-up without LISTEN: a Supabase Realtime `postgres_changes` subscription on
 * public.rag_ingestion_queue, made with the official supabase-js client, whose events nudge the claim loop the
 * way a NOTIFY does on a direct connection. Polling every RAG_POLL_INTERVAL_MS stays on as the safety net, and
 * is the only wake-up while the subscription is down.
 *
 * What is subscribed: INSERT and UPDATE of rows whose new status is 'queued' (the same changes the table's
 * NOTIFY trigger reports: a new job, a merged enqueue, a released or retried job), with only the columns the
 * wake-up needs (id, status, run_at), so transcripts never travel over Realtime. A job whose run_at is still in
 * the future (a retry backing off, a delayed enqueue) wakes nothing: polling finds it once it is due.
 *
 * Reconnect: realtime-js reconnects the socket itself (with the backoff given here). The subscription is owned
 * here: any status other than SUBSCRIBED (CHANNEL_ERROR, TIMED_OUT, CLOSED — a refused join, a dropped socket, a
 * server that closed the channel, a `system` error for postgres_changes) retires that channel and, after an
 * exponential backoff with jitter, subscribes a fresh one. Each new SUBSCRIBED wakes the loop once, for whatever
 * was enqueued while the subscription was down, and resets the backoff.
 *
 * Logged events: realtime_starting (info), realtime_subscribed (info), realtime_unsubscribed (warn on the first
 * failure after start-up or after a subscription was live, debug while retrying), realtime_change (debug). The
 * service-role key is never logged: realtime-js gets no logger (its own log lines carry the socket URL with the
 * key), and every error text is redacted.
 */
import { createClient, type RealtimeChannel, type SupabaseClient } from '@supabase/supabase-js';
import { backoffDelayMs, type BackoffPolicy } from '../../shared/backoff.ts';
import { messageOf } from '../../shared/errors.ts';
import { oneLine } from '../../shared/redact.ts';
import type { Logger } from '../logging/logger.ts';

export const REALTIME_SCHEMA = 'public';
export const REALTIME_TABLE = 'rag_ingestion_queue';

/** Backoff of both the socket's reconnects and the re-subscriptions: 0.5–1 s at first, at most 15–30 s. */
export const REALTIME_BACKOFF: BackoffPolicy = { baseMs: 1000, maxMs: 30_000 };

/** How long close() waits for the server to acknowledge leaving before it drops the socket anyway. */
const CLOSE_DEADLINE_MS = 2000;

/** A job due this far in the future (DB clock against ours) is left to polling. */
const FUTURE_SLACK_MS = 1000;

export type RealtimeLossStatus = 'CHANNEL_ERROR' | 'TIMED_OUT' | 'CLOSED';

export interface RealtimeWakeOptions {
  /** SUPABASE_URL: Realtime is reached at <url>/realtime/v1. */
  url: string;
  serviceRoleKey: string;
  /** Called for every change that makes a job runnable now, and once on every (re-)subscription. */
  onWake: () => void;
  logger: Logger;
  /** Values to redact from error texts (secretsOf(config)). */
  secrets: readonly string[];
  /** The idle poll interval, for the log lines. */
  pollIntervalMs: number;
  backoff?: BackoffPolicy;
  random?: () => number;
}

export interface RealtimeWake {
  /** Whether a subscription is live now. */
  readonly subscribed: boolean;
  /** Leaves the channel and closes the socket (bounded: never waits long for an unresponsive server). */
  close(): Promise<void>;
}

interface QueueChange {
  id?: string;
  status?: string;
  run_at?: string;
}

export function startRealtimeWake(options: RealtimeWakeOptions): RealtimeWake {
  const { logger, onWake, secrets } = options;
  const backoff = options.backoff ?? REALTIME_BACKOFF;
  const random = options.random ?? Math.random;
  const pollS = options.pollIntervalMs / 1000;
  const client: SupabaseClient = createClient(options.url, options.serviceRoleKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    realtime: { reconnectAfterMs: (tries: number) => backoffDelayMs(tries, backoff, random) },
  });

  /** The channel of the current attempt; callbacks of a retired channel find it replaced and do nothing. */
  let current: RealtimeChannel | undefined;
  let seq = 0;
  let subscribed = false;
  let everSubscribed = false;
  /** Failed attempts since the last SUBSCRIBED. */
  let failures = 0;
  let retryTimer: NodeJS.Timeout | undefined;
  let stopped = false;

  const reasonOf = (error: unknown) => oneLine(messageOf(error), secrets);

  const subscribe = () => {
    retryTimer = undefined;
    if (stopped) return;
    seq++;
    const change = { schema: REALTIME_SCHEMA, table: REALTIME_TABLE, filter: 'status=eq.queued', select: ['id', 'status', 'run_at'] };
    // `wait`: SUBSCRIBED only once the server has the postgres_changes subscription running (servers that do
    // not know the option answer at once, as before).
    const channel = client.channel(`rag-worker:${REALTIME_TABLE}:${seq}`, { config: { postgres_changes_options: { wait: true } } });
    current = channel;
    channel
      .on<QueueChange>('postgres_changes', { event: 'INSERT', ...change }, (payload) => onChange(channel, payload.eventType, payload.new))
      .on<QueueChange>('postgres_changes', { event: 'UPDATE', ...change }, (payload) => onChange(channel, payload.eventType, payload.new))
      .on('system', {}, (payload: { extension?: string; status?: string; message?: string }) => {
        // A server that answered the join before its postgres_changes subscription was up reports failure here.
        if (payload?.extension === 'postgres_changes' && payload.status === 'error') lost(channel, 'CHANNEL_ERROR', payload.message ?? 'postgres_changes subscription failed');
      })
      .subscribe((status, error) => {
        if (status === 'SUBSCRIBED') onSubscribed(channel);
        else lost(channel, status as RealtimeLossStatus, error);
      });
  };

  const onSubscribed = (channel: RealtimeChannel) => {
    if (stopped || channel !== current) return;
    const again = everSubscribed;
    const attempts = failures + 1;
    subscribed = true;
    everSubscribed = true;
    failures = 0;
    logger.info(
      again
        ? '⚡ Supabase Realtime re-subscribed: new jobs wake the worker at once again'
        : `⚡ Supabase Realtime subscribed: new jobs wake the worker at once (they reach it only when ${REALTIME_TABLE} is in the supabase_realtime publication; polling every ${pollS}s finds them otherwise)`,
      { event: 'realtime_subscribed', resubscribed: again, attempts },
    );
    // Whatever was enqueued while nothing was subscribed is claimed now.
    onWake();
  };

  const lost = (channel: RealtimeChannel, status: RealtimeLossStatus, error: unknown) => {
    if (stopped || channel !== current) return;
    current = undefined;
    const wasSubscribed = subscribed;
    subscribed = false;
    failures++;
    // Leaving also stops realtime-js's own rejoin timer for this channel: the fresh channel below replaces it.
    void client.removeChannel(channel).catch(() => {});
    const delayMs = backoffDelayMs(failures, backoff, random);
    const reason = error === undefined ? status.toLowerCase().replace('_', ' ') : reasonOf(error);
    const fields = { event: 'realtime_unsubscribed', status, error: reason, attempt: failures, retryInMs: delayMs, wasSubscribed };
    if (wasSubscribed || (failures === 1 && !everSubscribed)) {
      logger.warn(
        `⚡ Supabase Realtime ${wasSubscribed ? 'subscription lost' : 'subscription failed'} (${status}: ${reason}); ` +
          `new jobs are found by polling every ${pollS}s (RAG_POLL_INTERVAL_MS) until it is back; re-subscribing in ${delayMs} ms`,
        fields,
      );
    } else {
      logger.debug(`Supabase Realtime subscription failed again (${status}: ${reason}); re-subscribing in ${delayMs} ms`, fields);
    }
    retryTimer = setTimeout(subscribe, delayMs);
    retryTimer.unref();
  };

  const onChange = (channel: RealtimeChannel, type: string, row: QueueChange | undefined) => {
    if (stopped || channel !== current) return;
    const runAt = Date.parse(row?.run_at ?? '');
    const future = Number.isFinite(runAt) && runAt > Date.now() + FUTURE_SLACK_MS;
    logger.debug('Supabase Realtime change on the queue', { event: 'realtime_change', type, jobId: row?.id, due: !future });
    if (!future) onWake();
  };

  logger.info(
    `⚡ Supabase mode: subscribing to new jobs through Supabase Realtime (postgres_changes on ${REALTIME_SCHEMA}.${REALTIME_TABLE}); ` +
      `polling every ${pollS}s (RAG_POLL_INTERVAL_MS) stays as the safety net. RAG_SUPABASE_REALTIME=false: polling only.`,
    { event: 'realtime_starting', mode: 'supabase', table: `${REALTIME_SCHEMA}.${REALTIME_TABLE}` },
  );
  subscribe();

  return {
    get subscribed() {
      return subscribed;
    },
    async close() {
      if (stopped) return;
      stopped = true;
      subscribed = false;
      current = undefined;
      if (retryTimer) clearTimeout(retryTimer);
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'deadline'>((resolve) => {
        timer = setTimeout(() => resolve('deadline'), CLOSE_DEADLINE_MS);
        timer.unref();
      });
      // removeAllChannels leaves every channel, then disconnects the socket.
      const left = await Promise.race([client.removeAllChannels().then(() => 'left' as const, () => 'left' as const), deadline]);
      clearTimeout(timer);
      if (left === 'deadline') void client.realtime.disconnect().catch(() => {});
    },
  };
}
