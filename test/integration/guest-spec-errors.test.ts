/**
 * `needs` problems are caught by `kjx build` before any work: exit 3, the
 * file:line:col of the offending entry, nothing written (no artifacts, no key).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { removeAll, runKjx, workspace } from '../helpers/kjx.js';

const made: string[] = [];
after(() => removeAll(...made));

const cases = [
  {
    name: 'a cycle',
    yaml: 'services:\n  tracer:\n    run: t\n    needs: [workload]\n  workload:\n    run: w\n    needs: [tracer]\n',
    says: 'kjx.yaml:4:13: services.tracer.needs[0]: "workload" makes a dependency cycle: tracer → workload → tracer',
  },
  {
    name: 'an unknown service',
    yaml: 'services:\n  tracer:\n    run: t\n  workload:\n    run: w\n    needs: [tracr]\n',
    says: 'kjx.yaml:6:13: services.workload.needs[0]: unknown service "tracr" (did you mean "tracer"?)',
  },
];

for (const c of cases) {
  test(`needs: ${c.name} is rejected at build time with its position`, () => {
    const ws = workspace('needs', c.yaml);
    made.push(ws);
    const r = runKjx(['build'], { cwd: ws });
    assert.equal(r.code, 3, r.stderr);
    assert.ok(r.stderr.includes(c.says), `expected "${c.says}" in:\n${r.stderr}`);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(existsSync(join(ws, 'dist')), false, 'nothing built');
    assert.equal(existsSync(join(ws, '.kjx')), false, 'no key made for a spec that failed');
  });
}
