/** Which DATABASE_URLs go through a transaction-mode pooler (no LISTEN there): src/shared/pooler.ts. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { transactionPoolerOf } from '../../src/shared/pooler.ts';

test("Supabase's transaction pooler (port 6543) and pgbouncer=true are transaction poolers", () => {
  assert.match(transactionPoolerOf('postgresql://postgres.abcd:pw@aws-0-eu-central-1.pooler.supabase.com:6543/postgres')!.why, /port 6543/);
  assert.match(transactionPoolerOf('postgres://app:pw@pgbouncer.internal:6432/app?pgbouncer=true&sslmode=require')!.why, /pgbouncer=true/);
});

test('the session pooler (5432), direct connections, other ports and unparsable strings are not', () => {
  assert.equal(transactionPoolerOf('postgresql://postgres.abcd:pw@aws-0-eu-central-1.pooler.supabase.com:5432/postgres'), undefined);
  assert.equal(transactionPoolerOf('postgresql://postgres:pw@db.abcd.supabase.co:5432/postgres'), undefined);
  assert.equal(transactionPoolerOf('postgres://localhost/app'), undefined);
  assert.equal(transactionPoolerOf('postgres://app@host:6432/app?pgbouncer=false'), undefined);
  assert.equal(transactionPoolerOf('not a url'), undefined);
});
