// Which CLI the `rag-worker` bin runs: the JavaScript that `npm install` compiles into dist/ (the `prepare`
// script), or — when dist/ is missing or older than a file under src/ (someone is editing the sources), or
// RAG_WORKER_FROM_SOURCE=1 — the TypeScript sources directly with Node's type stripping. Shared by the launcher
// and by the bench that reports what it ran.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** dist/main/cli.js when it is newer than every file under src/, else src/main/cli.ts (absolute paths). */
export function chooseEntry() {
  const source = fileURLToPath(new URL('../src/main/cli.ts', import.meta.url));
  const compiled = fileURLToPath(new URL('../dist/main/cli.js', import.meta.url));
  if (process.env.RAG_WORKER_FROM_SOURCE === '1' || !existsSync(compiled)) return source;
  const builtAt = statSync(compiled).mtimeMs;
  const srcDir = fileURLToPath(new URL('../src/', import.meta.url));
  for (const name of readdirSync(srcDir, { recursive: true })) {
    if (statSync(srcDir + name).mtimeMs > builtAt) return source;
  }
  return compiled;
}
