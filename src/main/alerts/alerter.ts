/**
 * Sends alerts to Slack / Discord webhooks without ever holding up a job: every send is queued per webhook and
 * delivered in the background, one at a time, with a timeout. A flood is summarised: per kind (job failures,
 * long jobs) the first RAG_ALERT burst of a window goes out as it happens, the rest become one summary at the
 * end of the window. A fault is announced once (again only if its message changes) and its recovery once.
 * Every text is redacted before it is queued; webhook URLs are secrets and never logged (only their host).
 */
import { messageOf } from '../../shared/errors.ts';
import { oneLine } from '../../shared/redact.ts';
import type { Logger } from '../logging/logger.ts';
import { formatOf, type Alert, type AlertFormat } from './alert.ts';
import { discordPayload, slackPayload } from './payloads.ts';

export interface AlerterOptions {
  urls: readonly string[];
  format: 'auto' | AlertFormat;
  worker: string;
  secrets: readonly string[];
  logger: Logger;
  /** Summary window (default one minute). */
  windowMs?: number;
  /** Alerts of one kind sent as they happen per window before the rest are summarised (default 3). */
  burst?: number;
  /** Timeout of one webhook call (default 5 s). */
  timeoutMs?: number;
  /** Undelivered messages kept per webhook; older ones are dropped beyond it (default 50). */
  maxPending?: number;
  /** close() waits at most this long for queued alerts (default 6 s). */
  closeDeadlineMs?: number;
}

export interface FailedJob {
  jobId: string;
  documentId: string;
  version: string;
  error: string;
  category?: string;
}

export interface LongJob {
  jobId: string;
  documentId: string;
  version: string;
  runningMs: number;
}

const EXAMPLES_IN_SUMMARY = 5;
const MAX_RETRY_AFTER_MS = 30_000;
/** close() waits this long at most for queued alerts, by default. */
const CLOSE_DEADLINE_MS = 6_000;

interface Webhook {
  url: string;
  label: string;
  format: AlertFormat;
  queue: Alert[];
  sending: Promise<void> | undefined;
  dropped: number;
}

interface Flood<T> {
  sent: number;
  held: T[];
}

export class Alerter {
  private readonly opts: Required<AlerterOptions>;
  private readonly hooks: Webhook[];
  private readonly failures: Flood<FailedJob> = { sent: 0, held: [] };
  private readonly longJobs: Flood<LongJob> = { sent: 0, held: [] };
  private lastFault: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Messages delivered / failed, over all webhooks (tests and logs). */
  readonly delivered = { ok: 0, failed: 0 };

  constructor(options: AlerterOptions) {
    this.opts = { windowMs: 60_000, burst: 3, timeoutMs: 5_000, maxPending: 50, closeDeadlineMs: CLOSE_DEADLINE_MS, ...options };
    this.hooks = options.urls.map((url, i) => ({
      url,
      label: `webhook ${i + 1} of ${options.urls.length} (${new URL(url).host})`,
      format: formatOf(url, options.format),
      queue: [],
      sending: undefined,
      dropped: 0,
    }));
    this.timer = setInterval(() => this.endWindow(), this.opts.windowMs);
    this.timer.unref();
  }

  jobFailed(job: FailedJob): void {
    this.flood(this.failures, job, () => this.failureAlert(job));
  }

  longJob(job: LongJob): void {
    this.flood(this.longJobs, job, () => this.longJobAlert(job));
  }

  fault(error: string, setting?: string): void {
    const text = this.clean(error);
    if (this.lastFault === text) return;
    this.lastFault = text;
    this.enqueue({
      kind: 'fault',
      title: `Worker-level fault: not claiming jobs${setting ? ` (check ${setting})` : ''}`,
      text,
      fields: setting ? [{ name: 'setting to fix', value: setting }] : [],
      severity: 'error',
      ...this.stamp(),
    });
  }

  faultCleared(): void {
    if (this.lastFault === undefined) return;
    this.lastFault = undefined;
    this.enqueue({ kind: 'fault_cleared', title: 'Worker-level fault cleared: claiming jobs again', text: '', fields: [], severity: 'ok', ...this.stamp() });
  }

  /** A crash: queued like any alert, and delivered before this resolves (within the timeout). */
  async crash(error: unknown): Promise<void> {
    this.enqueue({ kind: 'crash', title: 'rag-worker crashed', text: this.clean(messageOf(error)), fields: [], severity: 'error', ...this.stamp() });
    await this.idle();
  }

  /** Sends the held summaries now (end of a window). */
  endWindow(): void {
    this.summarise(this.failures, (held) => ({
      kind: 'jobs_failed',
      title: `${held.length} more job${held.length === 1 ? '' : 's'} failed in the last ${this.windowText()}`,
      text: examples(held.map((j) => `${j.documentId} (version ${j.version}): ${this.clean(j.error, 200)}`)),
      fields: categories(held),
      severity: 'error',
      ...this.stamp(),
    }));
    this.summarise(this.longJobs, (held) => ({
      kind: 'long_jobs',
      title: `${held.length} more job${held.length === 1 ? '' : 's'} running longer than expected`,
      text: examples(held.map((j) => `${j.documentId} (version ${j.version}): ${minutes(j.runningMs)}`)),
      fields: [],
      severity: 'warning',
      ...this.stamp(),
    }));
  }

  /** Resolves when every queued message has been delivered or has failed. */
  async idle(): Promise<void> {
    while (this.hooks.some((h) => h.sending || h.queue.length > 0)) {
      await Promise.all(this.hooks.map((h) => h.sending ?? this.pump(h)));
    }
  }

  /**
   * Sends held summaries and waits for delivery, at most CLOSE_DEADLINE_MS in all (a dead webhook must not hold up
   * a worker's shutdown past its platform's stop timeout); what is still queued then is dropped, and logged.
   */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.endWindow();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), this.opts.closeDeadlineMs)));
    const outcome = await Promise.race([this.idle().then(() => 'done' as const), deadline]);
    clearTimeout(timer);
    if (outcome === 'late') {
      const left = this.hooks.reduce((n, h) => n + h.queue.length, 0);
      for (const h of this.hooks) h.queue.length = 0;
      this.opts.logger.warn(`Stopping with ${left} alert(s) undelivered: the webhooks did not answer within ${this.opts.closeDeadlineMs / 1000} s`, { event: 'alert_failed', kind: 'shutdown' });
    }
  }

  private flood<T>(flood: Flood<T>, item: T, alert: () => Alert): void {
    if (flood.sent < this.opts.burst) {
      flood.sent++;
      this.enqueue(alert());
    } else {
      flood.held.push(item);
    }
  }

  private summarise<T>(flood: Flood<T>, alert: (held: T[]) => Alert): void {
    const held = flood.held;
    flood.sent = 0;
    flood.held = [];
    if (held.length > 0) this.enqueue(alert(held));
  }

  private failureAlert(job: FailedJob): Alert {
    return {
      kind: 'job_failed',
      title: `Job failed: ${job.documentId} (version ${job.version})`,
      text: this.clean(job.error),
      fields: [
        { name: 'document', value: job.documentId },
        { name: 'version', value: job.version },
        { name: 'job', value: job.jobId },
        ...(job.category ? [{ name: 'category', value: job.category }] : []),
      ],
      severity: 'error',
      ...this.stamp(),
    };
  }

  private longJobAlert(job: LongJob): Alert {
    return {
      kind: 'long_job',
      title: `Job running for ${minutes(job.runningMs)}: ${job.documentId} (version ${job.version})`,
      text: 'Still running (RAG_LONG_JOB_MS); a long transcript, a slow provider or rate limits can make it so. Progress: the status page or `rag-worker status <job-id>`.',
      fields: [
        { name: 'document', value: job.documentId },
        { name: 'job', value: job.jobId },
      ],
      severity: 'warning',
      ...this.stamp(),
    };
  }

  private stamp(): { worker: string; at: Date } {
    return { worker: this.opts.worker, at: new Date() };
  }

  private clean(text: string, max = 1000): string {
    return oneLine(text, this.opts.secrets, max);
  }

  private windowText(): string {
    const s = Math.round(this.opts.windowMs / 1000);
    return s % 60 === 0 ? `${s / 60} min` : `${s} s`;
  }

  private enqueue(alert: Alert): void {
    for (const hook of this.hooks) {
      hook.queue.push(alert);
      if (hook.queue.length > this.opts.maxPending) {
        hook.queue.shift();
        hook.dropped++;
      }
      void this.pump(hook);
    }
  }

  private pump(hook: Webhook): Promise<void> {
    hook.sending ??= (async () => {
      while (hook.queue.length > 0) {
        const alert = hook.queue.shift()!;
        await this.deliver(hook, alert);
      }
    })().finally(() => (hook.sending = undefined));
    return hook.sending;
  }

  private async deliver(hook: Webhook, alert: Alert): Promise<void> {
    if (hook.dropped > 0) {
      alert = { ...alert, fields: [...alert.fields, { name: 'dropped', value: `${hook.dropped} earlier alert(s) were dropped: the webhook was too slow` }] };
      hook.dropped = 0;
    }
    const body = JSON.stringify(hook.format === 'discord' ? discordPayload(alert) : slackPayload(alert));
    for (let attempt = 1; attempt <= 2; attempt++) {
      try {
        const res = await fetch(hook.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(this.opts.timeoutMs) });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) {
          this.delivered.ok++;
          return;
        }
        const retryAfter = Number(res.headers.get('retry-after'));
        if (attempt === 1 && (res.status === 429 || res.status >= 500)) {
          await new Promise((r) => setTimeout(r, Math.min(MAX_RETRY_AFTER_MS, Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : 1000)));
          continue;
        }
        this.fail(hook, alert, `HTTP ${res.status}`);
        return;
      } catch (error) {
        if (attempt === 2) this.fail(hook, alert, oneLine(messageOf(error), [...this.opts.secrets, hook.url], 200));
      }
    }
  }

  private fail(hook: Webhook, alert: Alert, why: string): void {
    this.delivered.failed++;
    this.opts.logger.warn(`Alert not delivered to ${hook.label}: ${why}`, { event: 'alert_failed', kind: alert.kind });
  }
}

function examples(lines: string[]): string {
  const shown = lines.slice(0, EXAMPLES_IN_SUMMARY).map((l) => `• ${l}`);
  if (lines.length > EXAMPLES_IN_SUMMARY) shown.push(`… and ${lines.length - EXAMPLES_IN_SUMMARY} more (rag-worker jobs list --status failed)`);
  return shown.join('\n');
}

function categories(jobs: FailedJob[]): { name: string; value: string }[] {
  const counts = new Map<string, number>();
  for (const j of jobs) counts.set(j.category ?? 'unknown', (counts.get(j.category ?? 'unknown') ?? 0) + 1);
  return [...counts].map(([name, n]) => ({ name, value: String(n) }));
}

function minutes(ms: number): string {
  const m = Math.floor(ms / 60_000);
  const s = Math.round((ms % 60_000) / 1000);
  return m > 0 ? `${m} min ${s} s` : `${s} s`;
}
