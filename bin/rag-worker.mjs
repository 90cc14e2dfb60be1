#!/usr/bin/env node
// Launcher for `npx rag-worker` / the `rag-worker` bin. It runs the JavaScript that `npm install` compiles into
// dist/ (the `prepare` script), or — when dist/ is missing or older than a file under src/ (someone is editing
// the sources) — the TypeScript sources directly with Node's type stripping (Node >= 22.18). Compiled code starts
// faster and uses less memory per isolate (main thread and each chunking thread): `npm run bench -- --only i`.
// When started by an older Node (the system's Node 20, say), re-run with the Node 24 that `npm install` put in
// node_modules (the `node` npm package); `start` and the short database commands are re-run with a V8 flag
// (below) in any case.
//
// Signals, when re-running: the CLI runs in its own process group (`detached`, so a new session), so a
// terminal's Ctrl-C, which signals the whole foreground group, reaches only this launcher, and the launcher
// forwards each SIGINT/SIGTERM/SIGHUP it gets exactly once (a second SIGINT tells the worker to stop at once,
// skipping its drain). The IPC channel is there only so the CLI notices when this launcher dies, even by
// SIGKILL: it then stops as on SIGTERM (src/main/cli/launcher-link.ts). The CLI never reads stdin, so being
// outside the terminal's foreground group costs nothing; it still writes to the inherited stdout/stderr.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chooseEntry } from './choose-entry.mjs';

const cli = chooseEntry();

// `start` runs for days: its main isolate gets a small young generation. V8 otherwise grows a busy isolate's
// semi-spaces to 64 MB each while the worker's live young objects are a few MB (bench d: new space at 128 MB, a
// third of the peak RSS). The flag only works at process start, so `start` is re-run with it unless
// NODE_OPTIONS or the command line already chose a size. Short commands run in this process.
const SEMI_SPACE_FLAG = '--max-semi-space-size=4';
const givenFlags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
const semiSpaceGiven = givenFlags.some((arg) => /^--max[-_]semi[-_]space[-_]size\b/.test(arg));
// Short commands that open the database run the embedded PostgreSQL (a 20 MB WebAssembly module) for a second:
// with V8's defaults, the process then spends two more seconds and 350 MB at exit, optimising that module in the
// background (`status` took 3.8 s and 650 MB; with Liftoff only, 1.1 s and 260 MB; queries run as fast). The
// flag works only at process start, so these commands are re-run with it. `start` and `ingest` run long enough
// for the optimised code to pay off.
const LIFTOFF_FLAG = '--liftoff-only';
const SHORT_DB_COMMANDS = new Set(['status', 'search', 'enqueue', 'cancel', 'retry', 'jobs', 'prune', 'migrate', 'doctor', 'show']);
const liftoffGiven = givenFlags.some((arg) => /^--(no-)?liftoff/.test(arg));
const command = process.argv[2];
const nodeFlags = [
  ...(command === 'start' && !semiSpaceGiven ? [SEMI_SPACE_FLAG] : []),
  ...(SHORT_DB_COMMANDS.has(command) && !liftoffGiven ? [LIFTOFF_FLAG] : []),
];

const [major, minor] = process.versions.node.split('.').map(Number);
const modern = major > 22 || (major === 22 && minor >= 18);
if (modern && nodeFlags.length === 0) {
  await import(pathToFileURL(cli).href);
} else {
  const local = modern ? process.execPath : fileURLToPath(new URL('../node_modules/node/bin/node', import.meta.url));
  if (!existsSync(local)) {
    console.error(`rag-worker needs Node.js >= 22.18 (this is ${process.version}); run \`npm install\` to get the bundled Node 24.`);
    process.exit(1);
  }
  const child = spawn(local, [...nodeFlags, cli, ...process.argv.slice(2)], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    detached: true, // not unref'd: the launcher waits for the CLI and exits with its code
    env: { ...process.env, RAG_WORKER_LAUNCHER_PID: String(process.pid) },
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      // Tell the CLI first that this stop was asked for, so that if the launcher is then killed (a process
      // manager's SIGKILL after its timeout) the CLI goes on draining instead of taking that as a second signal.
      if (child.connected) child.send({ type: 'rag-worker:signal', signal }, () => {});
      child.kill(signal);
    });
  }
  child.on('error', (error) => {
    console.error(`rag-worker: could not start ${local}: ${error.message}`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 1)));
}
