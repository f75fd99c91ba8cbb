/**
 * The eBPF toolchain check: what each kind of program needs, and a missing tool as
 * HOST_TOOL_MISSING with the exact apt-get line (here: a PATH without clang).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { neededTools, requireToolchain } from '../../src/bpf/toolchain.js';
import type { ProgramSpec } from '../../src/spec/programs.js';
import { KjxError } from '../../src/util/errors.js';
import { probeTool } from '../../src/util/host-tools.js';

const generic: ProgramSpec = {
  name: 'a',
  bpf: '/x/a.bpf.c',
  bpfRef: './a.bpf.c',
  loader: { kind: 'generic' },
};
const go: ProgramSpec = { ...generic, name: 'g', loader: { kind: 'go', dir: '/x/g', dirRef: './g' } };

test('C programs need clang, llvm-strip, bpftool, gcc and the static libraries; Go ones Go and cilium/ebpf too', () => {
  const c = neededTools([generic]).map((t) => t.package);
  assert.deepEqual(c, [
    'clang',
    'llvm',
    'bpftool',
    'gcc',
    'libc6-dev',
    'libbpf-dev',
    'libelf-dev',
    'zlib1g-dev',
  ]);
  assert.deepEqual(
    neededTools([generic, go])
      .map((t) => t.package)
      .slice(-2),
    ['golang-go', 'golang-github-cilium-ebpf-dev'],
  );
});

test('the toolchain is found, with an identity for cache keys', () => {
  const t = requireToolchain([generic]);
  assert.match(t.clang, /clang$/);
  assert.match(t.id, /^[0-9a-f]{64}$/);
  assert.equal(t.go, undefined);
});

test('a PATH without clang: HOST_TOOL_MISSING naming it, with the exact apt-get line', () => {
  const bin = mkdtempSync(join(tmpdir(), 'kjx-noclang-'));
  const saved = process.env.PATH;
  try {
    for (const c of ['llvm-strip', 'bpftool', 'gcc']) {
      const p = probeTool({ command: c, package: c, versionArgs: [], why: '', needFor: [] }).path;
      assert.ok(p, `${c} must be installed for this test`);
      symlinkSync(p, join(bin, c));
    }
    process.env.PATH = bin;
    assert.throws(
      () => requireToolchain([generic]),
      (e: unknown) =>
        e instanceof KjxError &&
        e.code === 'HOST_TOOL_MISSING' &&
        e.message === 'tracing.programs needs host tools that are missing: clang (clang)' &&
        (e.hint ?? '').startsWith('install them with: apt-get install -y --no-install-recommends clang\n'),
    );
  } finally {
    process.env.PATH = saved;
    rmSync(bin, { recursive: true, force: true });
  }
});
