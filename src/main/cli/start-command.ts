/**
 * `rag-worker start [--once]`: the long-running worker.
 *
 * Start-up: `start` waits for an unreachable database (or one with no free connection slots), retrying with
 * backoff and logging each retry, so a worker started before its database comes up when the database does;
 * `start --once` fails at once instead (exit 1). Worker-level faults found at start-up (credentials or
 * database name in DATABASE_URL, schema, damaged RAG_DATA_DIR) exit 3 in both modes.
 */
import type { Coordinator } from '../coordinator/coordinator.ts';
import { createCoordinator, describeRuntime, listenForJobs, OFFLINE_EMBEDDER_NOTICE, openRuntime, type Runtime } from '../runtime.ts';
import { loadConfig, makeLogger, onCrash } from './context.ts';
import { startWorkerAlerts, type WorkerAlerts } from '../alerts/worker-alerts.ts';
import { startWorkerHttp, type WorkerHttp } from '../http/worker-http.ts';

export async function startCommand(argv: Record<string, unknown>): Promise<void> {
  const config = loadConfig(argv);
  const once = Boolean(argv.once);
  const logger = makeLogger(config).child({ workerId: config.workerId });
  logger.info('🚀 RAG Background Worker starting...', { workerId: config.workerId });

  // Signals are handled from the start: a worker still waiting for its database stops at once.
  let coordinator: Coordinator | undefined;
  const startup = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      logger.warn(`Second ${signal}: exiting now (leases will return unfinished jobs to the queue)`);
      process.exit(130);
    }
    logger.info(`Received ${signal}`, { event: 'signal', signal });
    if (coordinator) void coordinator.stop(config.shutdownGraceMs);
    else startup.abort(new Error(`${signal} during start-up`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const stoppedBeforeReady = () => {
    logger.info('👋 Worker stopped', { event: 'worker_stopped', completed: 0, failed: 0, requeued: 0, released: 0 });
    process.exit(0);
  };

  let rt: Runtime;
  try {
    rt = await openRuntime(config, logger, { waitForDatabase: !once, signal: startup.signal });
  } catch (error) {
    if (startup.signal.aborted) stoppedBeforeReady();
    throw error;
  }
  if (startup.signal.aborted) {
    await rt.close();
    stoppedBeforeReady();
  }
  if (!rt.provider.remote) logger.warn(OFFLINE_EMBEDDER_NOTICE);
  coordinator = createCoordinator(rt);
  const unlisten = await listenForJobs(rt, coordinator);
  let http: WorkerHttp | undefined;
  try {
    http = await startWorkerHttp(rt, coordinator, logger);
  } catch (error) {
    await unlisten();
    await rt.close();
    throw error;
  }
  const alerts: WorkerAlerts | undefined = startWorkerAlerts(config, coordinator, logger);
  if (alerts) onCrash((error) => alerts.alerter.crash(error));

  logger.info('✅ Worker ready. Polling for jobs...', { event: 'worker_ready', ...describeRuntime(rt) });
  const others = (await rt.store.storedModels().catch(() => [])).filter((m) => m.model !== rt.provider.model);
  if (others.length > 0) {
    logger.warn(
      `Stored documents were embedded with other models (${others.map((m) => `${m.model}: ${m.documents}`).join(', ')}); this worker embeds with ${rt.provider.model}. ` +
        'Searches compare a query with one model only: re-ingest those documents, or keep their settings',
      { event: 'embedding_models_mixed', models: others },
    );
  }
  const summary = await coordinator.run({ once });
  await unlisten();
  await http?.close();
  onCrash(undefined);
  await alerts?.close();
  const unfinished = once ? (await rt.store.getJobs(coordinator.touchedJobs)).filter((j) => j.status !== 'complete') : [];
  await rt.close();
  logger.info('👋 Worker stopped', { event: 'worker_stopped', ...summary });
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  if (summary.fatal) process.exit(3);
  if (unfinished.length > 0) {
    logger.error(`${unfinished.length} job(s) did not complete`, { jobs: unfinished.map((j) => ({ id: j.id, status: j.status, error: j.error_detail })) });
    process.exit(1);
  }
  process.exit(0);
}
