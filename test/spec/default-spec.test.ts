/** The kjx.yaml that `kjx init` writes is the defaults, and its commented examples are valid. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_SPEC_YAML } from '../../src/spec/default-spec.js';
import { parseSpec } from '../../src/spec/load.js';
import { defaultSpec } from '../../src/spec/schema.js';

test('the init template parses to the defaults', () => {
  assert.deepEqual(parseSpec(DEFAULT_SPEC_YAML, '/srv/kjx.yaml'), { ...defaultSpec(), specDir: '/srv' });
});

test('the init template names every top-level field', () => {
  const keys = Object.keys(defaultSpec()).filter((k) => k !== 'specDir');
  for (const key of [...keys, 'sourceDateEpoch']) {
    assert.match(DEFAULT_SPEC_YAML, new RegExp(`^#? ?${key}:`, 'm'), key);
  }
});

test('the commented examples in the template are valid', () => {
  // Uncomment the examples: list items under packages/files, the kernel image lines
  // (instead of package) and sourceDateEpoch.
  const text = DEFAULT_SPEC_YAML.replace('packages: []', 'packages:')
    .replace('files: []', 'files:')
    .replace('sysctls: {}', 'sysctls:')
    .replace('users: []', 'users:')
    .replace('services: {}', 'services:')
    .replace('tasks: []', 'tasks:')
    .replace('  package: linux-image-cloud-amd64\n', '')
    .replace(/^#( {2}[- a-z].*)$/gm, '$1')
    .replace(/^ {2}# (image|modulesDir): (\S+).*$/gm, '  $1: $2')
    .replace('# sourceDateEpoch:', 'sourceDateEpoch:');
  const spec = parseSpec(text, '/srv/kjx.yaml');
  assert.equal(spec.kernel.kind, 'image');
  assert.equal(spec.packages.length, 4);
  assert.equal(spec.files.length, 4);
  assert.equal(spec.sourceDateEpoch, 1700000000);
  assert.deepEqual(spec.sysctls, { 'net.ipv4.ip_forward': '1', 'kernel.perf_event_paranoid': '-1' });
  assert.deepEqual(Object.keys(spec.network), ['eth0', 'eth1']);
  assert.equal(spec.network.eth1?.kind, 'static');
  assert.equal(spec.users.length, 1);
  assert.deepEqual(Object.keys(spec.services), ['tracer', 'workload']);
  assert.equal(spec.services.tracer?.ready.kind, 'signal');
  assert.deepEqual(spec.services.workload?.needs, ['tracer']);
  assert.equal(spec.tasks.length, 2);
});
