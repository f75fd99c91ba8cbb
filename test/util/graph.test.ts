/** Dependency graphs: cycles found and reported as the loop that closes, levels respect every edge. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { dependencyLevels, dependentsOf, findCycle, longestChain } from '../../src/util/graph.js';

const g = (o: Record<string, string[]>) => new Map(Object.entries(o));

test('findCycle: none in a DAG, the closing loop otherwise, self loops included', () => {
  assert.equal(findCycle(g({ a: [], b: ['a'], c: ['a', 'b'] })), undefined);
  assert.deepEqual(findCycle(g({ a: ['b'], b: ['c'], c: ['a'] })), ['a', 'b', 'c', 'a']);
  assert.deepEqual(findCycle(g({ x: [], a: ['a'] })), ['a', 'a']);
  assert.deepEqual(findCycle(g({ a: ['b'], b: ['c'], c: ['b'] })), ['b', 'c', 'b']);
  // unknown names are the schema's business, not a cycle
  assert.equal(findCycle(g({ a: ['nope'] })), undefined);
});

test('dependencyLevels: dependencies on lower levels, map order within one', () => {
  assert.deepEqual(dependencyLevels(g({ w: ['t'], t: [], ssh: [], x: ['w', 'ssh'] })), [
    ['t', 'ssh'],
    ['w'],
    ['x'],
  ]);
  assert.throws(() => dependencyLevels(g({ a: ['b'], b: ['a'] })), /cycle/);
});

test('dependencyLevels respects every edge of random DAGs', () => {
  fc.assert(
    fc.property(fc.array(fc.array(fc.nat(30), { maxLength: 4 }), { minLength: 1, maxLength: 30 }), (deps) => {
      // node i may only depend on nodes before it: acyclic by construction
      const graph = new Map(deps.map((d, i) => [`n${i}`, d.filter((j) => j < i).map((j) => `n${j}`)]));
      assert.equal(findCycle(graph), undefined);
      const level = new Map<string, number>();
      dependencyLevels(graph).forEach((names, l) => {
        for (const n of names) level.set(n, l);
      });
      assert.equal(level.size, graph.size);
      for (const [n, ds] of graph)
        for (const d of ds) assert.ok(level.get(d)! < level.get(n)!, `${d} before ${n}`);
    }),
  );
});

test('dependentsOf and longestChain', () => {
  const graph = g({ t: [], w: ['t'], x: ['t', 'w'], y: [] });
  assert.deepEqual(dependentsOf(graph, 't'), ['w', 'x']);
  assert.deepEqual(dependentsOf(graph, 'y'), []);
  assert.equal(
    longestChain(graph, (n) => ({ t: 10, w: 5, x: 1, y: 30 })[n] ?? 0),
    30,
  );
  assert.equal(
    longestChain(graph, () => 2),
    6,
  );
});
