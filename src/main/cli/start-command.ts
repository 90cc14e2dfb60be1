/** `rag-worker start [--once]`: the long-running worker. */
import { createCoordinator, describeRuntime, listenForJobs, OFFLINE_EMBEDDER_NOTICE, openRuntime } from '../runtime.ts';
import { loadConfig, makeLogger } from './context.ts';

export async function startCommand(argv: Record<string, unknown>): Promise<void> {
  const config = loadConfig(argv);
  const logger = makeLogger(config).child({ workerId: config.workerId });
  logger.info('🚀 RAG Background Worker starting...', { workerId: config.workerId });
  if (config.enableClaudeAnalysis) logger.warn('RAG_ENABLE_CLAUDE_ANALYSIS=true: Claude analysis is not part of this version; chunks are embedded without it');
  const rt = await openRuntime(config, logger);
  if (!rt.provider.remote) logger.warn(OFFLINE_EMBEDDER_NOTICE);
  const coordinator = createCoordinator(rt);
  const unlisten = await listenForJobs(rt, coordinator);

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      logger.warn(`Second ${signal}: exiting now (leases will return unfinished jobs to the queue)`);
      process.exit(130);
    }
    logger.info(`Received ${signal}`);
    void coordinator.stop(config.shutdownGraceMs);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  logger.info('✅ Worker ready. Polling for jobs...', describeRuntime(rt));
  const summary = await coordinator.run({ once: Boolean(argv.once) });
  await unlisten();
  const unfinished = argv.once ? (await rt.store.getJobs(coordinator.touchedJobs)).filter((j) => j.status !== 'complete') : [];
  await rt.close();
  logger.info('👋 Worker stopped', { ...summary });
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  if (summary.fatal) process.exit(3);
  if (unfinished.length > 0) {
    logger.error(`${unfinished.length} job(s) did not complete`, { jobs: unfinished.map((j) => ({ id: j.id, status: j.status, error: j.error_detail })) });
    process.exit(1);
  }
  process.exit(0);
}
