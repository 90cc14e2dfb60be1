/** Which stored embedding models a search may be compared with (src/shared/model-consistency.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkSearchModel } from '../../src/shared/model-consistency.ts';

test('no documents, or all of the query model: fine; none of it: refused naming what to do; some: a warning', () => {
  assert.deepEqual(checkSearchModel([], 'text-embedding-3-small'), { ok: true });
  assert.deepEqual(checkSearchModel([{ model: 'text-embedding-3-small', documents: 4 }], 'text-embedding-3-small'), { ok: true });
  const refused = checkSearchModel([{ model: 'local-lexical-hash-v1', documents: 3 }], 'text-embedding-3-small');
  assert.equal(refused.ok, false);
  assert.match((refused as { error: string }).error, /embedded with local-lexical-hash-v1 \(3 documents\), but this search would embed the query with text-embedding-3-small/);
  assert.match((refused as { error: string }).error, /RAG_EMBEDDING_MODEL/);
  const mixed = checkSearchModel([{ model: 'a', documents: 2 }, { model: 'b', documents: 1 }], 'a');
  assert.ok(mixed.ok && 'warning' in mixed);
  assert.match(mixed.warning, /^1 of 3 stored documents were embedded with another model \(b \(1 document\)\)/);
});
