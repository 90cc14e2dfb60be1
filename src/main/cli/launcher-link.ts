/**
 * The CLI's side of bin/rag-worker.mjs. Started by an older Node, the launcher re-runs the CLI with the bundled
 * Node in its own process group, with an IPC channel whose only job is to end when the launcher does. If the
 * launcher dies, even by SIGKILL, the CLI stops as on SIGTERM (the worker drains: in-flight jobs finish within
 * the grace period or go back to the queue without using an attempt) instead of running on as an orphan.
 * Run directly (no launcher, no IPC channel) this does nothing.
 */

/** Message the launcher sends before it forwards a signal (the CLI is then already stopping). */
export interface LauncherSignalMessage {
  type: 'rag-worker:signal';
  signal: NodeJS.Signals;
}

function isSignalMessage(m: unknown): m is LauncherSignalMessage {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'rag-worker:signal';
}

export function followLauncher(): void {
  const channel = process.channel;
  const launcherPid = Number(process.env.RAG_WORKER_LAUNCHER_PID);
  delete process.env.RAG_WORKER_LAUNCHER_PID;
  // Only under our launcher: an IPC channel opened by anything else (a fork() by some other program) is left alone.
  if (!channel || !launcherPid) return;

  let forwarded = false;
  let gone = false;
  const onGone = () => {
    if (gone) return;
    gone = true;
    // A signal the launcher forwarded already started the shutdown; another one would mean "exit now".
    if (!forwarded) process.kill(process.pid, 'SIGTERM');
  };
  process.on('message', (m: unknown) => {
    if (isSignalMessage(m)) forwarded = true;
  });
  process.once('disconnect', onGone);
  // Listening refs the channel; unref it so it never keeps the process alive (commands end by returning).
  channel.unref();
  // The launcher may have died before the listener was added (this process was then handed to another parent).
  if (!process.connected || process.ppid !== launcherPid) onGone();
}
