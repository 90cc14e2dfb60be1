/** `rag-worker doctor [--json]`: the checks of src/main/doctor, printed with ✅ / ❌ / ➖ and the fix; exit 1 on any ❌. */
import { ConfigError } from '../../shared/config.ts';
import { runChecks, type CheckResult } from '../doctor/checks.ts';
import { loadConfig, makeLogger, printJson } from './context.ts';

const ICON = { ok: '✅', fail: '❌', skip: '➖' } as const;

export async function doctorCommand(argv: Record<string, unknown>): Promise<void> {
  let results: CheckResult[];
  try {
    const config = loadConfig(argv);
    results = await runChecks(config, makeLogger(config, true));
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    results = [{ check: 'settings', status: 'fail', detail: error.problems.join('; '), fix: 'correct the settings named above (environment, .env.local, .env or flags); `rag-worker config` lists them all' }];
  }
  const failed = results.filter((r) => r.status === 'fail').length;
  if (argv.json) {
    printJson({ ok: failed === 0, checks: results });
  } else {
    const width = Math.max(...results.map((r) => r.check.length));
    for (const r of results) {
      console.log(`${ICON[r.status]} ${r.check.padEnd(width)}  ${r.detail}`);
      if (r.fix) console.log(`   ${' '.repeat(width)}  fix: ${r.fix}`);
    }
    console.log(failed === 0 ? '\nAll checks passed.' : `\n${failed} check(s) failed.`);
  }
  if (failed > 0) process.exitCode = 1;
}
