/**
 * The tracing components: which files each takes from its (synthetic) package, the
 * generated helpers, and `tracing.libbpfTools` choosing the tools.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AssembleContext } from '../../src/components/component.js';
import { COMPONENTS } from '../../src/components/index.js';
import { BPF_READY, BPF_READY_LINK } from '../../src/guest/bpf-ready.js';
import { FTRACE_HELPER, FTRACE_HELPER_LINK } from '../../src/guest/ftrace-helper.js';
import { addEntry, mk, newTree, type Tree } from '../../src/rootfs/tree.js';
import { DEFAULT_LIBBPF_TOOLS, LIBBPF_TOOLS } from '../../src/spec/libbpf-tools.js';
import { parseSpec } from '../../src/spec/load.js';
import { isKjxError } from '../../src/util/errors.js';
import { kjxError } from '../helpers/kjx-error.js';

const SRC = { kind: 'deb', package: 'fixture', version: '1' } as const;

/** A staged package with these files (symlinks as `path -> target`). */
function pkg(paths: string[]): Tree {
  const t = newTree();
  for (const p of paths) {
    const [path, target] = p.split(' -> ') as [string, string | undefined];
    addEntry(t, target ? mk.symlink(path, target, SRC) : mk.file(path, `bin ${path}`, SRC, 0o755));
  }
  return t;
}

const libbpfPkg = pkg([
  ...LIBBPF_TOOLS.filter((t) => !/^(btrfs|ext4|nfs|xfs)/.test(t) && t !== 'killsnoop').map(
    (t) => `/usr/sbin/${t}`,
  ),
  '/usr/sbin/ext4dist -> fsdist',
  '/usr/sbin/killsnoop -> sigsnoop',
  '/usr/share/doc/libbpf-tools/copyright',
]);

function ctx(yaml: string, staged: Record<string, Tree>): AssembleContext {
  return {
    spec: parseSpec(yaml, 'kjx.yaml'),
    staged: (name) => {
      const t = staged[name];
      if (!t) throw new Error(`not staged: ${name}`);
      return t;
    },
    warn: () => {},
  };
}

const files = (t: Tree) =>
  [...t.values()]
    .filter((e) => e.type !== 'dir')
    .map((e) => e.path)
    .sort();

describe('libbpf-tools component', () => {
  test('takes the default tools and the kjx-bpf-ready wrapper, nothing else', () => {
    const c = COMPONENTS['libbpf-tools'];
    assert.deepEqual(c.packages(parseSpec('', 'kjx.yaml')), ['libbpf-tools']);
    const out = c.assemble(ctx('components: [busybox, runit, libbpf-tools]', { 'libbpf-tools': libbpfPkg }));
    assert.deepEqual(
      files(out),
      [...DEFAULT_LIBBPF_TOOLS.map((t) => `/usr/sbin/${t}`), BPF_READY, BPF_READY_LINK].sort(),
    );
    const ready = out.get(BPF_READY);
    assert.equal(ready?.type === 'file' && ready.mode, 0o755);
  });

  test('tracing.libbpfTools picks them; an alias arrives as the link with its target', () => {
    const out = COMPONENTS['libbpf-tools'].assemble(
      ctx('components: [libbpf-tools]\ntracing:\n  libbpfTools: [ext4dist, tcplife]', {
        'libbpf-tools': libbpfPkg,
      }),
    );
    assert.deepEqual(
      files(out),
      ['/usr/sbin/ext4dist', '/usr/sbin/fsdist', '/usr/sbin/tcplife', BPF_READY, BPF_READY_LINK].sort(),
    );
    assert.equal(out.get('/usr/sbin/ext4dist')?.type, 'symlink');
  });

  test('a tool the package lost fails the build with the package named', () => {
    assert.throws(
      () =>
        COMPONENTS['libbpf-tools'].assemble(
          ctx('components: [libbpf-tools]', { 'libbpf-tools': pkg(['/usr/sbin/runqlat']) }),
        ),
      kjxError('TREE_INVALID', /package libbpf-tools has no \/usr\/sbin\/execsnoop/),
    );
  });
});

describe('tracing.libbpfTools in kjx.yaml', () => {
  const problems = (yaml: string) => {
    try {
      parseSpec(yaml, 'kjx.yaml');
    } catch (e) {
      assert.ok(isKjxError(e));
      return e.details.join('\n');
    }
    assert.fail('parsed');
  };
  test('defaults to runqlat, execsnoop, offcputime, syscount, biolatency', () => {
    assert.deepEqual(parseSpec('', 'kjx.yaml').tracing.libbpfTools, [
      'runqlat',
      'execsnoop',
      'offcputime',
      'syscount',
      'biolatency',
    ]);
  });
  test('an unknown tool names the field and suggests the near one', () => {
    const p = problems('tracing:\n  libbpfTools: [runqlat, opensnop]');
    assert.match(p, /tracing\.libbpfTools\[1\]/);
    assert.match(p, /did you mean "opensnoop"\?/);
  });
  test('a tool listed twice, and an empty list, are errors', () => {
    assert.match(problems('tracing:\n  libbpfTools: [runqlat, runqlat]'), /listed twice/);
    assert.match(problems('tracing:\n  libbpfTools: []'), /at least 1 item/);
  });
});

describe('ftrace, bpftool and bpftrace components', () => {
  test('ftrace: the kjx-ftrace helper and its PATH link, no package', () => {
    const c = COMPONENTS.ftrace;
    assert.deepEqual(c.packages(parseSpec('', 'kjx.yaml')), []);
    const out = c.assemble(ctx('components: [busybox, runit, ftrace]', {}));
    assert.deepEqual(files(out), [FTRACE_HELPER, FTRACE_HELPER_LINK].sort());
    const h = out.get(FTRACE_HELPER);
    assert.ok(h?.type === 'file' && h.mode === 0o755);
    assert.match(h.data.toString(), /^#!\/bin\/sh\n/);
  });
  test('bpftool: /usr/sbin/bpftool only (no completions, no man pages)', () => {
    const out = COMPONENTS.bpftool.assemble(
      ctx('components: [bpftool]', {
        bpftool: pkg([
          '/usr/sbin/bpftool',
          '/usr/share/bash-completion/completions/bpftool',
          '/usr/share/man/man8/bpftool.8.gz',
        ]),
      }),
    );
    assert.deepEqual(files(out), ['/usr/sbin/bpftool']);
  });
  test('bpftrace: the binary and the same kjx-bpf-ready as libbpf-tools (both components together do not conflict)', () => {
    const c = ctx('components: [libbpf-tools, bpftrace]', {
      bpftrace: pkg(['/usr/bin/bpftrace', '/usr/bin/bpftrace-aotrt', '/usr/sbin/runqlat.bt']),
      'libbpf-tools': libbpfPkg,
    });
    const bt = COMPONENTS.bpftrace.assemble(c);
    assert.deepEqual(files(bt), ['/usr/bin/bpftrace', BPF_READY, BPF_READY_LINK].sort());
    const both = newTree();
    for (const t of [COMPONENTS['libbpf-tools'].assemble(c), bt])
      for (const e of t.values()) addEntry(both, e);
    assert.ok(both.has('/usr/bin/bpftrace') && both.has('/usr/sbin/runqlat'));
  });
});
