/**
 * Component files (`components: [./components/x.yaml]`): read with kjx.yaml, their
 * problems positioned in them (file:line:col), host files pinned by sha256, and
 * what they declare merged by the plan like a built-in component's fragment.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { planComponents } from '../../src/plan/components.js';
import { loadSpec } from '../../src/spec/load.js';
import { isKjxError, type KjxError } from '../../src/util/errors.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const BIN = Buffer.from('#!/bin/sh\necho hello\n');
const BIN_SUM = createHash('sha256').update(BIN).digest('hex');

/** A project: kjx.yaml naming ./components/tool.yaml, that file, and a host binary under bin/. */
function project(component: string, yaml = 'components: [busybox, runit, ./components/tool.yaml]\n'): string {
  const dir = mkdtempSync(join(tmpdir(), 'kjx-compfile-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'components'));
  mkdirSync(join(dir, 'bin'));
  writeFileSync(join(dir, 'bin', 'tool'), BIN);
  writeFileSync(join(dir, 'components', 'tool.yaml'), component);
  writeFileSync(join(dir, 'kjx.yaml'), `ssh: {enabled: false}\n${yaml}`);
  return dir;
}

/** Load and plan the project; the KjxError it raises. */
function failure(dir: string): KjxError {
  try {
    planComponents(loadSpec(join(dir, 'kjx.yaml')));
  } catch (e) {
    assert.ok(isKjxError(e), String(e));
    assert.equal(e.code, 'SPEC_INVALID', e.message);
    return e;
  }
  assert.fail('expected the project to be refused');
}

const GOOD = `name: tool
packages: [socat]
files:
  - {path: /usr/local/bin/tool, from: ../bin/tool, sha256: ${BIN_SUM}, mode: "0755"}
services:
  tool:
    run: /usr/local/bin/tool
    ready: {port: 7000}
modules: [nbd, {name: overlay, optional: true}]
stage1: [mkdir -p /run/tool]
checks:
  tool-answers: echo hi | nc 127.0.0.1 7000
memory: 640
`;

describe('component files', () => {
  test('a good one is merged like a built-in fragment: packages, modules with askers, services, checks, memory', () => {
    const dir = project(GOOD);
    const spec = loadSpec(join(dir, 'kjx.yaml'));
    const p = planComponents(spec);
    assert.deepEqual(
      p.components.map((c) => c.component.name),
      ['busybox', 'runit', 'tool'],
    );
    assert.ok(p.packages.includes('socat'));
    assert.deepEqual(p.whole, [{ package: 'socat' }]);
    assert.deepEqual(p.modules.required, ['nbd']);
    assert.deepEqual(p.modules.optional, ['overlay']);
    assert.deepEqual(p.modules.askedBy.get('nbd'), ['tool']);
    assert.deepEqual(
      p.services.map((s) => [s.name, s.spec.ready]),
      [['tool', { kind: 'port', port: 7000, timeout: p.services[0]!.spec.ready.timeout }]],
    );
    assert.deepEqual(p.stage1, ['# tool', 'mkdir -p /run/tool']);
    assert.equal(p.checks.get('tool-answers'), 'tool');
    assert.equal(p.memoryMiB, 640);
    // the base stage's key holds the file's content and the pins
    const key = p.key['component:tool'] as { file: string; pinned: string[][] };
    assert.match(key.file, /^[0-9a-f]{64}$/);
    assert.deepEqual(key.pinned, [['/usr/local/bin/tool', BIN_SUM]]);
    // the component's files: the pinned binary and its check
    const tree = p.components[2]!.component.assemble({
      spec: p.spec,
      staged: () => assert.fail('a component file takes no exact paths'),
      warn: () => {},
    });
    assert.ok(tree.has('/usr/local/bin/tool'));
    assert.ok(tree.has('/usr/lib/kjx/checks/tool-answers'));
  });

  test('the cache key changes with the component file, even by a comment', () => {
    const a = planComponents(loadSpec(join(project(GOOD), 'kjx.yaml'))).key;
    const b = planComponents(loadSpec(join(project(`# v2\n${GOOD}`), 'kjx.yaml'))).key;
    assert.notDeepEqual(a, b);
  });

  test('a wrong sha256 is refused at its line, with the sum the file has', () => {
    const e = failure(project(GOOD.replace(BIN_SUM, 'a'.repeat(64))));
    assert.match(
      e.message,
      new RegExp(
        `components/tool\\.yaml:4:60: files\\[0\\]\\.sha256: \\.\\./bin/tool has sha256 ${BIN_SUM}, not the pinned a{64}`,
      ),
    );
    assert.match(e.hint ?? '', /kjx-component\.schema\.json/);
  });

  test('a host file that does not exist is refused at its from', () => {
    const e = failure(project(GOOD.replace('../bin/tool', '../bin/nothere')));
    assert.match(
      e.message,
      /components\/tool\.yaml:4:39: files\[0\]\.from: \.\.\/bin\/nothere does not exist/,
    );
  });

  test('a component file that does not exist is refused at its entry in kjx.yaml', () => {
    const dir = project(GOOD, 'components: [busybox, runit, ./components/nope.yaml]\n');
    const e = failure(dir);
    assert.match(
      e.message,
      /kjx\.yaml:2:30: components\[2\]: component file \.\/components\/nope\.yaml does not exist/,
    );
  });

  test('an unknown field says what was meant', () => {
    const e = failure(project(GOOD.replace('memory: 640', 'memroy: 640')));
    assert.match(
      e.message,
      /components\/tool\.yaml:13:1: memroy: unknown key "memroy" \(did you mean "memory"\?\)/,
    );
  });

  test('a bad service is refused in the component file with the services schema', () => {
    const e = failure(project(GOOD.replace('ready: {port: 7000}', 'ready: {port: 70000}')));
    assert.match(e.message, /components\/tool\.yaml:8:19: services\.tool\.ready\.port: /);
  });

  test('a service that needs one no one has is refused in the component file, with a suggestion', () => {
    const e = failure(project(GOOD.replace('    ready: {port: 7000}', '    needs: [consol]')));
    assert.match(
      e.message,
      /components\/tool\.yaml:8:13: services\.tool\.needs\[0\]: unknown service "consol" \(did you mean "console"\?\)/,
    );
  });

  test('a host file without a pin, and a built-in name, are refused', () => {
    const unpinned = failure(project(GOOD.replace(`, sha256: ${BIN_SUM}`, '')));
    assert.match(unpinned.message, /tool\.yaml:4:.*needs "sha256"/);
    const clash = failure(project(GOOD.replace('name: tool', 'name: runc')));
    assert.match(clash.message, /tool\.yaml:1:7: name: "runc" is the name of a built-in component/);
  });

  test('kjx.yaml services may need a component file service', () => {
    const dir = project(
      GOOD,
      'components: [busybox, runit, ./components/tool.yaml]\nservices:\n  app: {run: app, needs: [tool]}\n',
    );
    const p = planComponents(loadSpec(join(dir, 'kjx.yaml')));
    assert.deepEqual(p.spec.services.app?.needs, ['tool']);
  });
});
