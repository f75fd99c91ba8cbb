/** Defaults and the normalized shapes the schema hands to later stages. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { COMPONENT_NAMES } from '../../src/components/index.js';
import { parseSpec } from '../../src/spec/load.js';
import {
  COMPRESSIONS,
  DEFAULT_COMPONENTS,
  DEFAULT_MODULES,
  defaultSpec,
  OUTPUTS,
  type Spec,
  type SpecInput,
  specSchema,
} from '../../src/spec/schema.js';

const parse = (input: SpecInput): Spec => specSchema.parse(input);

test('defaults', () => {
  assert.deepEqual(defaultSpec(), {
    name: 'kjx',
    version: '0.1.0',
    hostname: 'kjx',
    kernel: {
      kind: 'package',
      package: 'linux-image-cloud-amd64',
      cmdline: 'console=ttyS0 quiet',
      modules: [
        'virtio_pci',
        'virtio_net',
        'virtio_blk',
        'virtio_console',
        'virtio_rng',
        'vmw_vsock_virtio_transport',
      ],
    },
    components: ['busybox', 'runit', 'dropbear'],
    packages: [],
    files: [],
    outputs: ['initramfs'],
    disk: { size: 1024 * 1024 * 1024 },
    images: [],
    compression: 'gzip',
    sysctls: {},
    network: { eth0: { kind: 'dhcp' } },
    users: [],
    ssh: { enabled: true, port: 22, hostKeys: ['ed25519'], hostKeyFiles: [], rootLogin: true },
    services: {},
    tasks: [],
    tracing: { libbpfTools: ['runqlat', 'execsnoop', 'offcputime', 'syscount', 'biolatency'], programs: [] },
    vm: { restrict: false },
    console: 'shell',
    specDir: '.',
  });
  assert.equal('sourceDateEpoch' in defaultSpec(), false);
});

test('the name lists are the enums', () => {
  // the base system, then the tracing components (other groups follow)
  assert.deepEqual(COMPONENT_NAMES.slice(0, 8), [
    'busybox',
    'busybox-static',
    'runit',
    'dropbear',
    'ftrace',
    'libbpf-tools',
    'bpftrace',
    'bpftool',
  ]);
  assert.deepEqual(OUTPUTS, ['initramfs', 'iso', 'raw', 'qcow2', 'vmdk', 'tar', 'oci']);
  assert.deepEqual(COMPRESSIONS, ['gzip', 'zstd', 'xz', 'none']);
});

test('defaults are fresh values: changing one spec does not change the next', () => {
  const a = defaultSpec();
  a.components.pop();
  a.kernel.modules.push('e1000');
  const b = defaultSpec();
  assert.deepEqual(b.components, [...DEFAULT_COMPONENTS]);
  assert.deepEqual(b.kernel.modules, [...DEFAULT_MODULES]);
});

test('a kernel with only cmdline keeps the default package', () => {
  assert.deepEqual(parse({ kernel: { cmdline: 'console=ttyS0' } }).kernel, {
    kind: 'package',
    package: 'linux-image-cloud-amd64',
    cmdline: 'console=ttyS0',
    modules: [...DEFAULT_MODULES],
  });
});

test('packages: every written form becomes {kind, ...}', () => {
  const spec = parse({
    packages: [
      'curl',
      'jq=1.6-2.1',
      'debs/tool_1.0_amd64.deb',
      { name: 'strace', version: '6.1-0.1', paths: ['/usr/bin/strace'] },
      { name: 'iproute2' },
    ],
  });
  assert.deepEqual(spec.packages, [
    { kind: 'apt', name: 'curl' },
    { kind: 'apt', name: 'jq', version: '1.6-2.1' },
    { kind: 'local', path: 'debs/tool_1.0_amd64.deb', pathRef: 'debs/tool_1.0_amd64.deb' },
    { kind: 'apt', name: 'strace', version: '6.1-0.1', paths: ['/usr/bin/strace'] },
    { kind: 'apt', name: 'iproute2' },
  ]);
});

test('package globs must be absolute guest paths', () => {
  assert.throws(() => parseSpec('packages:\n  - {name: strace, paths: [usr/bin/strace]}\n', 'kjx.yaml'), {
    code: 'SPEC_INVALID',
    message:
      'kjx.yaml:2:28: packages[0].paths[0]: expected an absolute glob of guest paths like "/usr/bin/*", got "usr/bin/strace"',
  });
});

test('files: defaults by type, normalized paths, owners', () => {
  const spec = parse({
    files: [
      { path: '/etc//motd', content: 'hi\n' },
      { path: '/srv/data/', type: 'dir', owner: '1000:1000' },
      { path: '/bin/sh', type: 'symlink', target: 'busybox', override: true },
      { path: '/usr/local/bin/hello', from: 'hello.sh', mode: '0755', owner: 'root' },
      { path: '/home/alice/.profile', content: '', mode: 0o600, owner: 'alice' },
    ],
  });
  const owner0 = { user: 0, group: 0 };
  assert.deepEqual(spec.files, [
    { type: 'file', path: '/etc/motd', mode: 0o644, owner: owner0, override: false, content: 'hi\n' },
    { type: 'dir', path: '/srv/data', mode: 0o755, owner: { user: 1000, group: 1000 }, override: false },
    { type: 'symlink', path: '/bin/sh', mode: 0o777, owner: owner0, override: true, target: 'busybox' },
    {
      type: 'file',
      path: '/usr/local/bin/hello',
      mode: 0o755,
      owner: owner0,
      override: false,
      from: 'hello.sh',
      fromRef: 'hello.sh',
    },
    {
      type: 'file',
      path: '/home/alice/.profile',
      mode: 0o600,
      owner: { user: 'alice', group: 'alice' },
      override: false,
      content: '',
    },
  ]);
});

test('a number mode is the mode itself (JSON input), an octal string is read as octal', () => {
  const spec = parse({
    files: [
      { path: '/a', content: '', mode: 493 },
      { path: '/b', content: '', mode: '4755' },
    ],
  });
  assert.deepEqual(
    spec.files.map((f) => f.mode),
    [0o755, 0o4755],
  );
});

test('a symlink may not set a mode', () => {
  const r = specSchema.safeParse({ files: [{ path: '/a', type: 'symlink', target: 'b', mode: '0755' }] });
  assert.equal(r.success, false);
  assert.deepEqual(r.error?.issues[0]?.path, ['files', 0, 'mode']);
});

test('sourceDateEpoch is a whole number of seconds', () => {
  assert.equal(parse({ sourceDateEpoch: 1700000000 }).sourceDateEpoch, 1700000000);
  assert.equal(specSchema.safeParse({ sourceDateEpoch: 1.5 }).success, false);
  assert.equal(specSchema.safeParse({ sourceDateEpoch: 2 ** 32 }).success, false);
});

test('names: hostname is an RFC 1123 label, name is lowercase', () => {
  for (const hostname of ['kjx', 'a', 'lab-01', 'A1', 'x'.repeat(63)]) {
    assert.equal(specSchema.safeParse({ hostname }).success, true, hostname);
  }
  for (const hostname of ['', '-lab', 'lab-', 'lab.local', 'lab_1', 'x'.repeat(64)]) {
    assert.equal(specSchema.safeParse({ hostname }).success, false, hostname);
  }
  assert.equal(specSchema.safeParse({ name: 'my-distro.v2' }).success, true);
  assert.equal(specSchema.safeParse({ name: 'My Distro' }).success, false);
});
