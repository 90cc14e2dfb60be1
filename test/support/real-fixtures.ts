/**
 * The real third-party files in ../shared/<folder> (read in place, never copied). Where the folder is absent
 * (a checkout without ../shared), each test that needs one is skipped, saying so.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { TestContext } from 'node:test';

export interface RealFixtures {
  url: URL;
  present: boolean;
  /** The file's text, or null after skipping the test when the folder is absent. */
  read(t: TestContext, name: string): string | null;
}

export function realFixtures(folder: 'fixtures' | 'fixtures-stt', what: string): RealFixtures {
  const url = new URL(`../../../shared/${folder}/`, import.meta.url);
  const present = existsSync(url);
  return {
    url,
    present,
    read(t, name) {
      if (!present) {
        t.diagnostic(`WARNING: ${url.pathname} not found`);
        t.skip(`../shared/${folder} absent: ${what} skipped`);
        return null;
      }
      return readFileSync(new URL(name, url), 'utf8');
    },
  };
}
