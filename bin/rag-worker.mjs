#!/usr/bin/env node
// Launcher for `npx rag-worker` / the `rag-worker` bin. rag-worker runs its TypeScript sources directly with
// Node's type stripping (Node >= 22.18). When started by an older Node (the system's Node 20, say), re-run
// with the Node 24 that `npm install` put in node_modules (the `node` npm package).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const cli = fileURLToPath(new URL('../src/main/cli.ts', import.meta.url));
const [major, minor] = process.versions.node.split('.').map(Number);
if (major > 22 || (major === 22 && minor >= 18)) {
  await import(pathToFileURL(cli).href);
} else {
  const local = fileURLToPath(new URL('../node_modules/node/bin/node', import.meta.url));
  if (!existsSync(local)) {
    console.error(`rag-worker needs Node.js >= 22.18 (this is ${process.version}); run \`npm install\` to get the bundled Node 24.`);
    process.exit(1);
  }
  const child = spawn(local, [cli, ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + ({ SIGINT: 2, SIGTERM: 15, SIGKILL: 9 }[signal] ?? 1) : 1)));
}
