/**
 * The deploy recipes in deploy/ (and the root .dockerignore) parse, and agree with the CLI: each starts
 * `rag-worker start` through bin/rag-worker.mjs, serves on the port it health-checks, checks the path the worker
 * serves, gives the worker longer to stop than its shutdown grace, and signals the worker process only. No Docker
 * engine runs on these machines, so the Dockerfile is checked as text, not built (the README says so).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { parse as parseToml } from 'smol-toml';
import { parse as parseYaml } from 'yaml';
import { SETTINGS } from '../../src/shared/config.ts';
import { HEALTH_PATH } from '../../src/main/http/worker-http.ts';

const root = new URL('../../', import.meta.url);
const read = (file: string) => fs.readFileSync(new URL(file, root), 'utf8');
const START = 'node bin/rag-worker.mjs start';
const GRACE_S = Number(SETTINGS.shutdownGraceMs.default) / 1000;
const cli = read('src/main/cli.ts');

test('the start command and the health path exist in the CLI and the HTTP server', () => {
  assert.match(cli, /\.command\('start'/);
  assert.ok(fs.existsSync(new URL('bin/rag-worker.mjs', root)));
  assert.equal(HEALTH_PATH, '/health');
});

/** Dockerfile instructions, continuation lines joined, comments dropped. */
function dockerInstructions(text: string): { op: string; args: string }[] {
  return text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: op.toUpperCase(), args: rest.join(' ') };
    });
}

test('Dockerfile: multi-stage on Node 24, non-root, tini as PID 1, health check on /health at PORT, the start command', () => {
  const steps = dockerInstructions(read('deploy/Dockerfile'));
  const froms = steps.filter((s) => s.op === 'FROM');
  assert.ok(froms.length >= 2, 'multi-stage');
  for (const f of froms) assert.match(f.args, /^node:24[-.\w]*/);
  const runtimeStart = steps.lastIndexOf(froms.at(-1)!);
  const runtime = steps.slice(runtimeStart);
  assert.ok(runtime.some((s) => s.op === 'COPY' && /--from=build/.test(s.args)), 'the runtime stage copies the build');
  const user = runtime.find((s) => s.op === 'USER');
  assert.ok(user && user.args !== 'root' && user.args !== '0', 'runs as a non-root user');
  assert.deepEqual(JSON.parse(runtime.find((s) => s.op === 'ENTRYPOINT')!.args), ['/usr/bin/tini', '--']);
  assert.equal((JSON.parse(runtime.find((s) => s.op === 'CMD')!.args) as string[]).join(' '), START);
  const env = runtime.filter((s) => s.op === 'ENV').map((s) => s.args).join(' ');
  assert.match(env, /PORT=8080/);
  assert.match(env, /NODE_OPTIONS=--max-semi-space-size=4/, 'the launcher runs the worker in PID 1\'s child, one process');
  assert.ok(runtime.some((s) => s.op === 'EXPOSE' && s.args === '8080'));
  const health = runtime.find((s) => s.op === 'HEALTHCHECK')!;
  assert.ok(health.args.includes(HEALTH_PATH) && /PORT/.test(health.args), 'health check on /health at $PORT');
});

test('.dockerignore keeps secrets, local data and build output out of the context', () => {
  const lines = read('.dockerignore').split('\n').map((l) => l.trim());
  for (const entry of ['node_modules', '.env', '.env.*', '.rag-worker', '.git', 'dist']) assert.ok(lines.includes(entry), entry);
});

test('railway.json: the Dockerfile, the start command, the health path, restart on failure', () => {
  const config = JSON.parse(read('deploy/railway.json'));
  assert.equal(config.build.builder, 'DOCKERFILE');
  assert.ok(fs.existsSync(new URL(config.build.dockerfilePath, root)));
  assert.equal(config.deploy.startCommand, START);
  assert.equal(config.deploy.healthcheckPath, HEALTH_PATH);
  assert.equal(config.deploy.restartPolicyType, 'ON_FAILURE');
});

test('render.yaml: a Docker background worker with the start command and its secrets left to the dashboard', () => {
  const blueprint = parseYaml(read('deploy/render.yaml')) as { services: Record<string, unknown>[] };
  const [worker] = blueprint.services;
  assert.equal(worker.type, 'worker');
  assert.equal(worker.runtime, 'docker');
  assert.ok(fs.existsSync(new URL(String(worker.dockerfilePath), root)));
  assert.equal(worker.dockerCommand, START);
  const vars = worker.envVars as { key: string; sync?: boolean; value?: string }[];
  for (const key of ['DATABASE_URL', 'OPENAI_API_KEY']) assert.equal(vars.find((v) => v.key === key)?.sync, false, `${key} is not in the file`);
  assert.equal(vars.find((v) => v.key === 'PORT')?.value, '8080');
});

test('fly.toml: the start command, a machine check on /health at PORT, a kill timeout longer than the grace', () => {
  const fly = parseToml(read('deploy/fly.toml')) as Record<string, any>;
  assert.ok(fs.existsSync(new URL(`deploy/${fly.build.dockerfile}`, root)));
  assert.equal(fly.processes.app, START);
  assert.equal(fly.kill_signal, 'SIGTERM');
  assert.ok(parseInt(fly.kill_timeout, 10) > GRACE_S);
  const check = fly.checks.health;
  assert.equal(check.type, 'http');
  assert.equal(check.path, HEALTH_PATH);
  assert.equal(String(check.port), fly.env.PORT);
});

test('PM2: bin start, signals to the worker only, kill timeout longer than the grace, one process', () => {
  const require = createRequire(import.meta.url);
  const { apps } = require('../../deploy/ecosystem.config.cjs') as { apps: Record<string, any>[] };
  const [app] = apps;
  assert.equal(`node ${app.script} ${app.args}`, START);
  assert.ok(fs.existsSync(new URL(app.script, new URL(`file://${app.cwd}/`))));
  assert.equal(app.treekill, false);
  assert.ok(app.kill_timeout / 1000 > GRACE_S);
  assert.equal(app.env.NODE_OPTIONS, '--max-semi-space-size=4');
  assert.equal(app.env.PORT, '8080');
});

test('systemd unit: the start command, SIGTERM to the worker alone (KillMode=mixed), a stop timeout longer than the grace', () => {
  const unit: Record<string, Record<string, string>> = {};
  let section = '';
  for (const line of read('deploy/rag-worker.service').split('\n')) {
    const l = line.trim();
    if (!l || l.startsWith('#')) continue;
    const header = /^\[(\w+)\]$/.exec(l);
    if (header) section = header[1];
    else {
      const [key, ...value] = l.split('=');
      (unit[section] ??= {})[key] = value.join('=');
    }
  }
  assert.equal(unit.Service.ExecStart, `/usr/bin/env ${START}`);
  assert.equal(unit.Service.KillMode, 'mixed');
  assert.equal(unit.Service.KillSignal, 'SIGTERM');
  assert.ok(Number(unit.Service.TimeoutStopSec) > GRACE_S);
  assert.equal(unit.Service.Restart, 'on-failure');
  assert.match(unit.Service.Environment, /PORT=8080/);
  assert.ok(unit.Service.User && unit.Service.User !== 'root');
  assert.equal(unit.Install.WantedBy, 'multi-user.target');
});
