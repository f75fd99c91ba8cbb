/**
 * Dependency graphs of named nodes (services and their `needs`): cycle finding and
 * ordering. Pure functions over plain maps; the spec schema uses them for positioned
 * errors, the guest generator for start and stop order.
 */

/** name -> the names it depends on. Every dependency must itself be a key. */
export type DependencyGraph = ReadonlyMap<string, readonly string[]>;

/**
 * A cycle, as the path that closes it (`['a', 'b', 'a']`), or undefined. Nodes are
 * visited in map order and dependencies in list order, so the cycle reported is
 * stable: the one reached first from the first node in the file.
 */
export function findCycle(graph: DependencyGraph): string[] | undefined {
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): string[] | undefined => {
    const s = state.get(node);
    if (s === 'done') return undefined;
    if (s === 'visiting') return [...stack.slice(stack.indexOf(node)), node];
    state.set(node, 'visiting');
    stack.push(node);
    for (const dep of graph.get(node) ?? []) {
      if (!graph.has(dep)) continue;
      const cycle = visit(dep);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(node, 'done');
    return undefined;
  };
  for (const node of graph.keys()) {
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return undefined;
}

/**
 * Levels of an acyclic graph: level 0 holds the nodes with no dependencies, level n
 * the nodes whose deepest dependency is on level n-1. Starting level by level (or
 * stopping in reverse) respects every edge; nodes of one level are independent.
 * Within a level, nodes keep map order. Throws on a cycle (validate first).
 */
export function dependencyLevels(graph: DependencyGraph): string[][] {
  const depth = new Map<string, number>();
  const onPath = new Set<string>();
  const level = (node: string): number => {
    const known = depth.get(node);
    if (known !== undefined) return known;
    if (onPath.has(node)) throw new Error(`dependency cycle through ${node}`);
    onPath.add(node);
    let d = 0;
    for (const dep of graph.get(node) ?? []) if (graph.has(dep)) d = Math.max(d, level(dep) + 1);
    onPath.delete(node);
    depth.set(node, d);
    return d;
  };
  const levels: string[][] = [];
  for (const node of graph.keys()) {
    const d = level(node);
    while (levels.length <= d) levels.push([]);
  }
  for (const node of graph.keys()) levels[depth.get(node)!]!.push(node);
  return levels;
}

/** The nodes that depend on `node` directly, in map order. */
export function dependentsOf(graph: DependencyGraph, node: string): string[] {
  return [...graph.keys()].filter((n) => (graph.get(n) ?? []).includes(node));
}

/**
 * The longest path through the graph when each node costs `weight(node)`: how long
 * the last of them may take to become ready if each waits for its dependencies.
 */
export function longestChain(graph: DependencyGraph, weight: (node: string) => number): number {
  const memo = new Map<string, number>();
  const cost = (node: string): number => {
    const known = memo.get(node);
    if (known !== undefined) return known;
    let before = 0;
    for (const dep of graph.get(node) ?? []) if (graph.has(dep)) before = Math.max(before, cost(dep));
    const c = before + weight(node);
    memo.set(node, c);
    return c;
  };
  let max = 0;
  for (const node of graph.keys()) max = Math.max(max, cost(node));
  return max;
}
