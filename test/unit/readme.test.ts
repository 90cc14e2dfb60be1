/** Keeps the README true: every setting and every CLI command a user can touch is documented there. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { SETTINGS } from '../../src/shared/config.ts';

const readme = fs.readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const cli = fs.readFileSync(new URL('../../src/main/cli.ts', import.meta.url), 'utf8');

test('every setting is in the README configuration table with its default', () => {
  for (const spec of Object.values(SETTINGS)) {
    const row = readme.split('\n').find((line) => line.startsWith(`| \`${spec.env}\` |`));
    assert.ok(row, `${spec.env} missing from the README configuration table`);
    if (spec.default !== '') assert.ok(row.includes(`\`${spec.default}\``), `${spec.env}: README default differs from ${spec.default}`);
  }
});

test('every CLI command is in the README', () => {
  const commands = [...cli.matchAll(/\.command\(\s*'([a-z-]+)/g)].map((m) => m[1]);
  assert.ok(commands.length >= 8);
  // A subcommand ("list" of "jobs") appears after its parent: "| `jobs list".
  for (const command of commands) assert.match(readme, new RegExp(`\\| \`(?:[a-z]+ )?${command}\\b`), `command ${command} missing from the README CLI table`);
});

test('the README names the test command and the embedded quick start', () => {
  assert.match(readme, /\nnpm test\n/);
  assert.match(readme, /npm install && npx rag-worker ingest examples\/transcripts\/\*/);
});
