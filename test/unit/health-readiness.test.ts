/**
 * /health's liveness rules (HealthProbe, with a stubbed claim loop and a real event loop) and /ready's checks
 * (Readiness on a real PGlite: missing schema, an old schema, a dimension mismatch, a fault).
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { HealthProbe } from '../../src/main/http/health.ts';
import { Readiness } from '../../src/main/http/readiness.ts';
import type { LoopLiveness } from '../../src/main/coordinator/coordinator.ts';
import { inspectSchema, migrate, SCHEMA_VERSION } from '../../src/main/stores/migrate.ts';
import { createPgliteClient } from '../../src/main/stores/pglite-client.ts';
import type { SqlClient } from '../../src/main/stores/sql-client.ts';

const opened: SqlClient[] = [];
after(async () => {
  for (const sql of opened) await sql.close();
});

function probeWith(live: Partial<LoopLiveness>, maxEventLoopDelayMs = 10_000): HealthProbe {
  const state: LoopLiveness = { loopBusyMs: null, heartbeatAgeMs: 0, activeJobs: 0, phase: 'running', ...live };
  return new HealthProbe({ liveness: () => state, stallMs: 60_000, heartbeatMs: 1000, maxEventLoopDelayMs });
}

test('health: ok while starting, or while the loop sleeps or moves; stuck loop, stopped heartbeats with jobs, or a stopped loop fail with the reason', () => {
  assert.deepEqual(probeWith({}).report().reasons, []);
  assert.equal(probeWith({ loopBusyMs: 59_000 }).report().ok, true);
  assert.match(probeWith({ loopBusyMs: 61_000 }).report().reasons.join(), /claim loop has been stuck in one step for 61\.0 s/);
  assert.equal(probeWith({ heartbeatAgeMs: 120_000, activeJobs: 0 }).report().ok, true, 'no job, no heartbeat needed');
  assert.match(probeWith({ heartbeatAgeMs: 62_000, activeJobs: 2 }).report().reasons.join(), /no heartbeat for 62\.0 s with 2 job\(s\) in flight/);
  assert.match(probeWith({ phase: 'stopped' }).report().reasons.join(), /claim loop has stopped/);
  assert.equal(probeWith({ phase: 'starting' }).report().ok, true, 'start-up (before the loop runs) is not a stall');
});

test('health: a blocked event loop fails', async () => {
  const probe = probeWith({}, 100);
  probe.start();
  try {
    await new Promise((r) => setTimeout(r, 50)); // the monitor's first tick
    const until = performance.now() + 300;
    while (performance.now() < until); // block the loop
    await new Promise((r) => setTimeout(r, 50)); // let the delay monitor record it
    const report = probe.report();
    assert.equal(report.ok, false);
    assert.match(report.reasons.join(), /event loop was blocked for 0\.[3-9] s/);
  } finally {
    probe.stop();
  }
});

async function embedded(): Promise<SqlClient> {
  const sql = await createPgliteClient(undefined);
  opened.push(sql);
  return sql;
}

test('ready: each check names what is wrong and how to fix it', async () => {
  const sql = await embedded();
  const fault: { current?: { error: string; setting?: string } } = {};
  const readiness = (dimensions: number) => new Readiness({ inspect: () => inspectSchema(sql), kind: sql.kind, dimensions, fault: () => fault.current, stopping: () => false, secrets: [], cacheMs: 0 });
  const failing = async (dimensions: number) => (await readiness(dimensions).check()).checks.filter((c) => !c.ok);

  const missing = await failing(8);
  assert.deepEqual(missing.map((c) => c.name), ['pgvector', 'schema']);
  assert.match(missing[0].detail, /the vector extension is not installed: run `rag-worker migrate`/);
  await sql.exec('create extension if not exists vector');
  const noSchema = await failing(8);
  assert.deepEqual(noSchema.map((c) => c.name), ['schema']);
  assert.match(noSchema[0].detail, /schema is missing: run `rag-worker migrate`/);

  await migrate(sql, 8);
  assert.deepEqual(await failing(8), []);
  const dims = await failing(16);
  assert.deepEqual(dims.map((c) => c.name), ['dimensions']);
  assert.match(dims[0].detail, /RAG_EMBEDDING_DIMENSIONS=16 but rag_chunks\.embedding is vector\(8\)/);

  await sql.exec('drop function rag_schema_version()');
  const old = await failing(8);
  assert.deepEqual(old.map((c) => c.name), ['schema']);
  assert.match(old[0].detail, new RegExp(`schema is version 0, older than this worker's ${SCHEMA_VERSION}: run \`rag-worker migrate\``));
  await migrate(sql, 8);

  fault.current = { error: 'embedding provider rejected the credentials (401): check OPENAI_API_KEY', setting: 'OPENAI_API_KEY' };
  const faulty = await failing(8);
  assert.deepEqual(faulty.map((c) => c.name), ['worker']);
  assert.match(faulty[0].detail, /^worker-level fault \(check OPENAI_API_KEY\)/);
});
