// PM2: `pm2 start deploy/ecosystem.config.cjs` from the repository root (after `npm ci`).
// One worker process per app entry; scale with more machines or `instances`, since workers share the queue.
module.exports = {
  apps: [
    {
      name: 'rag-worker',
      script: 'bin/rag-worker.mjs',
      args: 'start',
      cwd: __dirname + '/..',
      exec_mode: 'fork',
      instances: 1,
      autorestart: true,
      // Stop: PM2 sends SIGINT, then SIGKILL after kill_timeout; longer than RAG_SHUTDOWN_GRACE_MS (20 s).
      kill_timeout: 30000,
      // Signal the worker only, not its thread pool's process tree: a second signal means "stop at once".
      treekill: false,
      max_memory_restart: '1G',
      env: {
        NODE_ENV: 'production',
        PORT: '8080',
        RAG_LOG_FORMAT: 'json',
        // Chosen here, so the launcher runs the worker in this very process (see bin/rag-worker.mjs).
        NODE_OPTIONS: '--max-semi-space-size=4',
      },
    },
  ],
};
