import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GroupCommit } from '../../src/main/coordinator/group-commit.ts';

interface Item {
  id: string;
  fail?: boolean;
}

/** A many() whose calls stay open until released, recording what each call carried. */
function gatedBackend() {
  const calls: string[][] = [];
  const gates: (() => void)[] = [];
  const many = async (items: Item[]) => {
    calls.push(items.map((i) => i.id));
    await new Promise<void>((resolve) => gates.push(resolve));
    if (items.some((i) => i.fail)) throw new Error('call failed');
    return new Map(items.map((i) => [i.id, `many:${i.id}`]));
  };
  const one = async (item: Item) => {
    if (item.fail) throw new Error(`bad ${item.id}`);
    return `one:${item.id}`;
  };
  const releaseAll = async () => {
    while (gates.length) gates.shift()!();
    await new Promise((r) => setImmediate(r));
  };
  return { calls, many, one, releaseAll, gates };
}

describe('GroupCommit', () => {
  it('sends what arrives while a call is in flight together in the next call, up to maxItems', async () => {
    const g = gatedBackend();
    const gc = new GroupCommit<Item, string>({ many: g.many, one: g.one, key: (i) => i.id, what: 'm', maxItems: 3 });
    const all = ['a', 'b', 'c', 'd', 'e'].map((id) => gc.submit({ id }));
    for (let i = 0; i < 3; i++) await g.releaseAll();
    assert.deepEqual(await Promise.all(all), ['many:a', 'many:b', 'many:c', 'many:d', 'many:e']);
    assert.deepEqual(g.calls, [['a'], ['b', 'c', 'd'], ['e']]);
    assert.deepEqual(gc.stats, { calls: 3, items: 5, retriedAlone: 0 });
  });

  it('never puts one key twice in a call', async () => {
    const g = gatedBackend();
    const gc = new GroupCommit<Item, string>({ many: g.many, one: g.one, key: (i) => i.id, what: 'm' });
    const all = [gc.submit({ id: 'a' }), gc.submit({ id: 'b' }), gc.submit({ id: 'b' }), gc.submit({ id: 'c' })];
    for (let i = 0; i < 3; i++) await g.releaseAll();
    await Promise.all(all);
    assert.deepEqual(g.calls, [['a'], ['b', 'c'], ['b']]);
  });

  it('after a failed call of several, sends each item alone: only the bad one fails, with its own error', async () => {
    const g = gatedBackend();
    const gc = new GroupCommit<Item, string>({ many: g.many, one: g.one, key: (i) => i.id, what: 'm' });
    const first = gc.submit({ id: 'a' });
    const rest = Promise.allSettled([gc.submit({ id: 'b' }), gc.submit({ id: 'x', fail: true }), gc.submit({ id: 'c' })]);
    for (let i = 0; i < 3; i++) await g.releaseAll();
    assert.equal(await first, 'many:a');
    const settled = await rest;
    assert.deepEqual(settled.map((s) => (s.status === 'fulfilled' ? s.value : String(s.reason))), ['one:b', 'Error: bad x', 'one:c']);
    assert.equal(gc.stats.retriedAlone, 3);
  });

  it('a lone item whose call fails gets that error; a result missing from a call is an error naming the call', async () => {
    const gc = new GroupCommit<Item, string>({
      many: async (items) => {
        if (items[0].fail) throw new Error('its own');
        return new Map();
      },
      one: async () => 'unused',
      key: (i) => i.id,
      what: 'rag_things',
    });
    await assert.rejects(gc.submit({ id: 'a', fail: true }), /its own/);
    await assert.rejects(gc.submit({ id: 'b' }), /rag_things returned no result for b/);
  });

  it('runs up to maxInFlight calls at once', async () => {
    const g = gatedBackend();
    const gc = new GroupCommit<Item, string>({ many: g.many, one: g.one, key: (i) => i.id, what: 'm', maxInFlight: 2 });
    const all = ['a', 'b', 'c'].map((id) => gc.submit({ id }));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(g.calls, [['a'], ['b']], 'two calls open before either returns');
    for (let i = 0; i < 3; i++) await g.releaseAll();
    await Promise.all(all);
    assert.deepEqual(g.calls, [['a'], ['b'], ['c']]);
  });
});
