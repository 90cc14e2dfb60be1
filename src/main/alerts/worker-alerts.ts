/**
 * Alerts of a running worker (`start` with RAG_ALERT_WEBHOOK_URL): a job's final failure, a worker-level fault
 * and its recovery, a job running longer than RAG_LONG_JOB_MS (once per job), and a crash. Start-up failures
 * are not alerted: a platform restarting a misconfigured worker would send one per restart (its logs have them).
 */
import type { Config } from '../../shared/config.ts';
import { secretsOf } from '../../shared/config.ts';
import type { Coordinator } from '../coordinator/coordinator.ts';
import type { Logger } from '../logging/logger.ts';
import { Alerter } from './alerter.ts';

export interface WorkerAlerts {
  alerter: Alerter;
  close(): Promise<void>;
}

export function startWorkerAlerts(config: Config, coordinator: Coordinator, logger: Logger): WorkerAlerts | undefined {
  if (config.alertWebhookUrls.length === 0) return undefined;
  const alerter = new Alerter({ urls: config.alertWebhookUrls, format: config.alertFormat, worker: config.workerId, secrets: secretsOf(config), logger });
  const onJob = (e: { jobId: string; documentId: string; version: string; status: string; error?: string; category?: string }) => {
    if (e.status === 'failed') alerter.jobFailed({ jobId: e.jobId, documentId: e.documentId, version: e.version, error: e.error ?? 'no detail', category: e.category });
  };
  const onFault = (e: { error: string; setting?: string }) => alerter.fault(e.error, e.setting);
  const onCleared = () => alerter.faultCleared();
  coordinator.on('job', onJob);
  coordinator.on('fault', onFault);
  coordinator.on('fault_cleared', onCleared);

  const alerted = new Set<string>();
  const watch = setInterval(() => {
    const now = Date.now();
    const running = coordinator.inFlight();
    for (const job of running) {
      const runningMs = now - job.startedAt;
      if (runningMs < config.longJobMs || alerted.has(job.jobId)) continue;
      alerted.add(job.jobId);
      alerter.longJob({ jobId: job.jobId, documentId: job.documentId, version: job.version, runningMs });
    }
    const ids = new Set(running.map((j) => j.jobId));
    for (const id of alerted) if (!ids.has(id)) alerted.delete(id);
  }, Math.min(10_000, Math.max(250, config.longJobMs / 4)));
  watch.unref();
  logger.info(`🔔 Alerts to ${config.alertWebhookUrls.length} webhook(s)`, { event: 'alerts_enabled', webhooks: config.alertWebhookUrls.length });

  return {
    alerter,
    async close() {
      clearInterval(watch);
      coordinator.off('job', onJob);
      coordinator.off('fault', onFault);
      coordinator.off('fault_cleared', onCleared);
      await alerter.close();
    },
  };
}
