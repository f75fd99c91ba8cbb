import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseModinfo } from '../../src/rootfs/modinfo.js';
import {
  editDistance,
  globToRegExp,
  moduleClosure,
  normalizeModuleName,
} from '../../src/rootfs/module-closure.js';
import { decompressModule } from '../../src/rootfs/module-decompress.js';
import { type FileEntry, mk, newTree, type Tree } from '../../src/rootfs/tree.js';
import { KjxError, type Warning } from '../../src/util/errors.js';
import {
  buildKernelTree,
  buildKo,
  FIXTURE_SOURCE,
  FIXTURE_VERSION,
  type FixtureModule,
} from '../fixtures/ko-fixtures.js';
import { debianCloudKernel } from '../helpers/debian-kernel.js';
import { treeFromHostDir } from '../helpers/host-tree.js';
import { assertKjxError, kjxError } from '../helpers/kjx-error.js';
import { needs } from '../helpers/prereq.js';

const DIR = `/lib/modules/${FIXTURE_VERSION}`;

/** A small kernel: a chain, a diamond, a built-in dependency, a dashed name, an xz module, a softdep. */
const MODS: FixtureModule[] = [
  { rel: 'kernel/a/a.ko', name: 'a', depends: ['b'], alias: ['acpi*:A0001:*'] },
  { rel: 'kernel/b/b.ko', name: 'b', depends: ['c'] },
  { rel: 'kernel/c/c.ko', name: 'c', alias: ['c-alias', 'pci:v00001234d*sv*sd*bc*sc*i*'] },
  // diamond: top -> left, right; left -> right; both -> base
  { rel: 'kernel/d/top.ko', name: 'top', depends: ['left', 'right'] },
  { rel: 'kernel/d/left.ko', name: 'left', depends: ['right', 'base'] },
  { rel: 'kernel/d/right.ko', name: 'right', depends: ['base'] },
  { rel: 'kernel/d/base.ko', name: 'base' },
  // depends on a built-in module (virtio is compiled in)
  {
    rel: 'kernel/drivers/net/virtio_net.ko',
    name: 'virtio_net',
    depends: ['virtio', 'net_failover'],
    alias: ['virtio:d00000001v*'],
  },
  { rel: 'kernel/drivers/net/net_failover.ko', name: 'net_failover', depends: ['failover'] },
  { rel: 'kernel/net/core/failover.ko', name: 'failover' },
  // file name with '-', module name with '_'
  { rel: 'kernel/drivers/char/hw_random/virtio-rng.ko', name: 'virtio_rng', depends: ['virtio'] },
  { rel: 'kernel/drivers/uses-rng.ko', name: 'uses_rng', depends: ['virtio_rng'] },
  // compressed
  { rel: 'kernel/fs/zfs/zzz.ko.xz', name: 'zzz', depends: ['b'], xz: true },
  // soft dependency on an alias provided by another module
  { rel: 'kernel/fs/ext4/ext4.ko', name: 'ext4', depends: ['base'], softdep: ['pre: crc32c'] },
  { rel: 'kernel/arch/x86/crypto/crc32c-intel.ko', name: 'crc32c_intel', alias: ['crypto-crc32c', 'crc32c'] },
  { rel: 'kernel/fs/odd.ko', name: 'odd', softdep: ['pre: nosuchthing post: base'] },
];
const BUILTIN = ['kernel/drivers/virtio/virtio.ko', 'kernel/drivers/virtio/virtio_ring.ko'];

function kernel(mods: FixtureModule[] = MODS, builtin: string[] = BUILTIN): Tree {
  return buildKernelTree(mods, builtin);
}

function text(tree: Tree, path: string): string {
  const e = tree.get(path);
  assert.ok(e && e.type === 'file', `${path} missing`);
  return e.data.toString('utf8');
}

function depOf(tree: Tree, rel: string): string {
  const line = text(tree, `${DIR}/modules.dep`)
    .split('\n')
    .find((l) => l.startsWith(`${rel}:`));
  assert.ok(line !== undefined, `no modules.dep line for ${rel}`);
  return line;
}

function missing(name: string, hint?: RegExp) {
  return (e: unknown) => {
    assertKjxError(e, 'MODULE_MISSING');
    assert.match(e.message, new RegExp(`"${name}"`));
    if (hint) assert.match(e.hint ?? '', hint);
    return true;
  };
}

describe('moduleClosure', () => {
  it('closes a -> b -> c in load order and writes depmod lines', () => {
    const r = moduleClosure(kernel(), FIXTURE_VERSION, ['a']);
    assert.deepEqual(r.order, ['c', 'b', 'a']);
    assert.deepEqual(r.builtin, []);
    assert.equal(depOf(r.tree, 'kernel/a/a.ko'), 'kernel/a/a.ko: kernel/b/b.ko kernel/c/c.ko');
    assert.equal(depOf(r.tree, 'kernel/b/b.ko'), 'kernel/b/b.ko: kernel/c/c.ko');
    assert.equal(depOf(r.tree, 'kernel/c/c.ko'), 'kernel/c/c.ko:');
    assert.deepEqual([...r.tree.keys()].sort(), [
      `${DIR}/kernel/a/a.ko`,
      `${DIR}/kernel/b/b.ko`,
      `${DIR}/kernel/c/c.ko`,
      `${DIR}/modules.alias`,
      `${DIR}/modules.builtin`,
      `${DIR}/modules.dep`,
      `${DIR}/modules.order`,
    ]);
  });

  it('writes modules.dep exactly in depmod format (sorted lines, last dependency loads first)', () => {
    const r = moduleClosure(kernel(), FIXTURE_VERSION, ['top', 'a']);
    assert.equal(
      text(r.tree, `${DIR}/modules.dep`),
      [
        'kernel/a/a.ko: kernel/b/b.ko kernel/c/c.ko',
        'kernel/b/b.ko: kernel/c/c.ko',
        'kernel/c/c.ko:',
        'kernel/d/base.ko:',
        'kernel/d/left.ko: kernel/d/right.ko kernel/d/base.ko',
        'kernel/d/right.ko: kernel/d/base.ko',
        'kernel/d/top.ko: kernel/d/left.ko kernel/d/right.ko kernel/d/base.ko',
        '',
      ].join('\n'),
    );
  });

  it('loads shared dependencies once, each after everything it needs', () => {
    const r = moduleClosure(kernel(), FIXTURE_VERSION, ['top', 'ext4', 'left']);
    assert.equal(new Set(r.order).size, r.order.length);
    assert.deepEqual(r.order, ['base', 'right', 'left', 'top', 'crc32c_intel', 'ext4']);
    // Replaying modprobe: for every line, loading right to left never loads a module before its deps.
    for (const line of text(r.tree, `${DIR}/modules.dep`).trim().split('\n')) {
      const [, deps = ''] = line.split(':');
      const loadSeq = deps.trim().split(' ').filter(Boolean).reverse();
      const loaded = new Set<string>();
      for (const rel of loadSeq) {
        const m = r.modules.find((c) => c.path === `${DIR}/${rel}`)!;
        for (const d of m.depends) assert.ok(loaded.has(d), `${m.name} before ${d} in "${line}"`);
        loaded.add(m.name);
      }
    }
  });

  it('treats a built-in dependency as satisfied and reports wanted built-ins', () => {
    const r = moduleClosure(kernel(), FIXTURE_VERSION, ['virtio_net', 'virtio', 'virtio-ring']);
    assert.deepEqual(r.order, ['failover', 'net_failover', 'virtio_net']);
    assert.deepEqual(r.builtin, ['virtio', 'virtio_ring']);
    assert.equal(
      depOf(r.tree, 'kernel/drivers/net/virtio_net.ko'),
      'kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko',
    );
    assert.deepEqual(r.modules.find((m) => m.name === 'virtio_net')?.depends, ['net_failover']);
    // modules.builtin is copied whole, with its package source.
    const b = r.tree.get(`${DIR}/modules.builtin`) as FileEntry;
    assert.equal(b.data.toString(), BUILTIN.map((l) => `${l}\n`).join(''));
    assert.deepEqual(b.source, FIXTURE_SOURCE);
  });

  it('skips optional names the kernel lacks and lists them as missing (a --kernel boot warns about them)', () => {
    const r = moduleClosure(kernel(), FIXTURE_VERSION, ['b', 'nosuch', 'virtio', 'gone', 'nosuch'], {
      optional: ['nosuch', 'virtio', 'gone'],
    });
    assert.deepEqual(r.order, ['c', 'b']);
    assert.deepEqual(r.builtin, ['virtio']);
    assert.deepEqual(r.missing, ['nosuch', 'gone']);
    assert.deepEqual(moduleClosure(kernel(), FIXTURE_VERSION, ['b']).missing, []);
  });

  it('names an unknown module and suggests the closest one', () => {
    assert.throws(
      () => moduleClosure(kernel(), FIXTURE_VERSION, ['virtio_nett']),
      missing('virtio_nett', /did you mean "virtio_net"\?/),
    );
    assert.throws(
      () => moduleClosure(kernel(), FIXTURE_VERSION, ['virtio-ringg']),
      missing('virtio-ringg', /"virtio_ring"/),
    );
    assert.throws(
      () => moduleClosure(kernel(), FIXTURE_VERSION, ['completely_unrelated_driver']),
      missing('completely_unrelated_driver', /modules\.order/),
    );
    try {
      moduleClosure(kernel(), FIXTURE_VERSION, ['nope']);
    } catch (e) {
      assert.equal(
        (e as Error).message,
        `kernel module "nope" is not in linux-image-${FIXTURE_VERSION} ${FIXTURE_VERSION}`,
      );
    }
  });

  it("treats '-' and '_' as the same in wanted names and depends=", () => {
    for (const w of ['virtio_rng', 'virtio-rng']) {
      const r = moduleClosure(kernel(), FIXTURE_VERSION, [w]);
      assert.deepEqual(r.order, ['virtio_rng']);
      assert.ok(r.tree.has(`${DIR}/kernel/drivers/char/hw_random/virtio-rng.ko`));
    }
    const r = moduleClosure(kernel(), FIXTURE_VERSION, ['uses-rng']);
    assert.deepEqual(r.order, ['virtio_rng', 'uses_rng']);
    assert.equal(
      depOf(r.tree, 'kernel/drivers/uses-rng.ko'),
      'kernel/drivers/uses-rng.ko: kernel/drivers/char/hw_random/virtio-rng.ko',
    );
    assert.equal(normalizeModuleName('virtio-rng.ko.xz'), 'virtio_rng');
  });

  it('decompresses .ko.xz modules to plain .ko and records where they came from', () => {
    const r = moduleClosure(kernel(), FIXTURE_VERSION, ['zzz']);
    assert.deepEqual(r.order, ['c', 'b', 'zzz']);
    const z = r.modules.find((m) => m.name === 'zzz')!;
    assert.equal(z.path, `${DIR}/kernel/fs/zfs/zzz.ko`);
    assert.equal(z.from, `${DIR}/kernel/fs/zfs/zzz.ko.xz`);
    assert.equal(z.compression, 'xz');
    const e = r.tree.get(z.path) as FileEntry;
    assert.equal(e.data.readUInt32BE(0), 0x7f454c46);
    assert.equal(parseModinfo(e.data, z.path).name, 'zzz');
    assert.ok(!r.tree.has(z.from));
    assert.equal(depOf(r.tree, 'kernel/fs/zfs/zzz.ko'), 'kernel/fs/zfs/zzz.ko: kernel/b/b.ko kernel/c/c.ko');
    assert.equal(
      text(r.tree, `${DIR}/modules.order`),
      'kernel/b/b.ko\nkernel/c/c.ko\nkernel/fs/zfs/zzz.ko\n',
    );
  });

  it('pulls softdep pre: modules (by alias) in before the module, and warns about missing ones', () => {
    const warnings: Warning[] = [];
    const r = moduleClosure(kernel(), FIXTURE_VERSION, ['ext4', 'odd'], { warn: (w) => warnings.push(w) });
    assert.deepEqual(r.order, ['crc32c_intel', 'base', 'ext4', 'odd']);
    assert.deepEqual(r.modules.find((m) => m.name === 'ext4')?.softdepPre, ['crc32c_intel']);
    assert.equal(depOf(r.tree, 'kernel/fs/ext4/ext4.ko'), 'kernel/fs/ext4/ext4.ko: kernel/d/base.ko');
    assert.equal(
      text(r.tree, `${DIR}/modules.softdep`),
      '# Soft dependencies extracted from modules themselves.\n' +
        'softdep ext4 pre: crc32c\n' +
        'softdep odd pre: nosuchthing post: base\n',
    );
    assert.deepEqual(
      warnings.map((w) => w.code),
      ['MODULE_SOFTDEP_MISSING'],
    );
    assert.match(warnings[0]!.message, /"nosuchthing"/);
    const noSoft = moduleClosure(kernel(), FIXTURE_VERSION, ['ext4'], { softdeps: false });
    assert.deepEqual(noSoft.order, ['base', 'ext4']);
  });

  it('resolves a wanted alias to the modules that provide it', () => {
    assert.deepEqual(moduleClosure(kernel(), FIXTURE_VERSION, ['crc32c']).order, ['crc32c_intel']);
    assert.deepEqual(
      moduleClosure(kernel(), FIXTURE_VERSION, ['pci:v00001234d00005678sv0sd0bc1sc2i3']).order,
      ['c'],
    );
  });

  it('writes modules.alias sorted, one line per alias', () => {
    const r = moduleClosure(kernel(), FIXTURE_VERSION, ['virtio_net', 'a']);
    assert.equal(
      text(r.tree, `${DIR}/modules.alias`),
      '# Aliases extracted from modules themselves.\n' +
        'alias acpi*:A0001:* a\n' +
        'alias c-alias c\n' +
        'alias pci:v00001234d*sv*sd*bc*sc*i* c\n' +
        'alias virtio:d00000001v* virtio_net\n',
    );
    assert.ok(!r.tree.has(`${DIR}/modules.softdep`));
  });

  it('gives every file root ownership, 0644 and the right source', () => {
    const r = moduleClosure(kernel(), FIXTURE_VERSION, ['virtio_net', 'zzz']);
    for (const e of r.tree.values()) {
      assert.equal(e.type, 'file');
      assert.equal(e.mode, 0o644);
      assert.equal(e.uid, 0);
      assert.equal(e.gid, 0);
      const generated = /modules\.(dep|alias|order|softdep)$/.test(e.path);
      assert.deepEqual(e.source, generated ? { kind: 'generated', by: 'depmod' } : FIXTURE_SOURCE, e.path);
    }
  });

  it('is deterministic regardless of the kernel tree order', () => {
    const a = moduleClosure(kernel(), FIXTURE_VERSION, ['top', 'virtio_net', 'ext4', 'zzz']);
    const b = moduleClosure(kernel([...MODS].reverse()), FIXTURE_VERSION, [
      'top',
      'virtio_net',
      'ext4',
      'zzz',
    ]);
    assert.deepEqual(a.order, b.order);
    for (const name of ['modules.dep', 'modules.alias', 'modules.softdep']) {
      assert.equal(text(a.tree, `${DIR}/${name}`), text(b.tree, `${DIR}/${name}`));
    }
    assert.deepEqual([...a.tree.keys()].sort(), [...b.tree.keys()].sort());
  });

  it('fails on a dependency that is neither a module nor built in', () => {
    const mods: FixtureModule[] = [{ rel: 'kernel/x.ko', name: 'x', depends: ['ghost'] }];
    assert.throws(() => moduleClosure(kernel(mods), FIXTURE_VERSION, ['x']), missing('ghost'));
    assert.throws(() => moduleClosure(kernel(mods), FIXTURE_VERSION, ['x']), /needed by x/);
  });

  it('fails on a dependency cycle with MODULE_INVALID', () => {
    const mods: FixtureModule[] = [
      { rel: 'kernel/p.ko', name: 'p', depends: ['q'] },
      { rel: 'kernel/q.ko', name: 'q', depends: ['p'] },
    ];
    assert.throws(
      () => moduleClosure(kernel(mods), FIXTURE_VERSION, ['p']),
      kjxError('MODULE_INVALID', /p -> q -> p/),
    );
  });

  it('names the kernel versions it has when the wanted version is absent', () => {
    assert.throws(
      () => moduleClosure(kernel(), '5.10.0-1-amd64', ['a']),
      kjxError('MODULE_MISSING', { hint: new RegExp(FIXTURE_VERSION.replace(/[.+]/g, '\\$&')) }),
    );
  });

  it('finds modules under /usr/lib/modules and through a /lib -> usr/lib symlink', () => {
    const moved = newTree();
    for (const [p, e] of kernel()) moved.set(`/usr${p}`, { ...e, path: `/usr${p}` });
    moved.set('/lib', mk.symlink('/lib', 'usr/lib', FIXTURE_SOURCE));
    moved.set(
      `/usr/lib/modules/${FIXTURE_VERSION}`,
      mk.dir(`/usr/lib/modules/${FIXTURE_VERSION}`, FIXTURE_SOURCE),
    );
    const r = moduleClosure(moved, FIXTURE_VERSION, ['a']);
    assert.ok(r.tree.has(`/usr/lib/modules/${FIXTURE_VERSION}/modules.dep`));
    assert.deepEqual(r.order, ['c', 'b', 'a']);
  });

  it('property: a corrupted needed module gives only MODULE_INVALID', () => {
    const good = buildKo({ name: 'b', depends: ['c'], vermagic: FIXTURE_VERSION, license: 'GPL' });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 6,
        }),
        fc.nat(good.length),
        (flips, cut) => {
          const bad = Buffer.from(good);
          for (const [at, v] of flips) bad[at] = v;
          const tree = kernel();
          const path = `${DIR}/kernel/b/b.ko`;
          tree.set(path, mk.file(path, bad.subarray(0, cut), FIXTURE_SOURCE));
          try {
            moduleClosure(tree, FIXTURE_VERSION, ['a']);
          } catch (e) {
            assert.ok(e instanceof KjxError, String(e));
            // A flipped byte can rename a dependency: then it is missing, not invalid.
            assert.ok(e.code === 'MODULE_INVALID' || e.code === 'MODULE_MISSING', e.code);
            if (e.code === 'MODULE_INVALID')
              assert.ok(e.message.includes('b.ko') || e.message.includes('cycle'));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('reports a corrupt .ko.xz as MODULE_INVALID naming the file', () => {
    const tree = kernel();
    const path = `${DIR}/kernel/fs/zfs/zzz.ko.xz`;
    const data = Buffer.from((tree.get(path) as FileEntry).data);
    data.fill(0, 20, 60);
    tree.set(path, mk.file(path, data, FIXTURE_SOURCE));
    assert.throws(
      () => moduleClosure(tree, FIXTURE_VERSION, ['zzz']),
      kjxError('MODULE_INVALID', new RegExp(`^${path.replace(/[.+]/g, '\\$&')}: `)),
    );
  });
});

describe('helpers', () => {
  it('globToRegExp follows fnmatch', () => {
    assert.ok(globToRegExp('virtio:d00000001v*').test('virtio:d00000001v00001AF4'));
    assert.ok(!globToRegExp('virtio:d00000001v*').test('virtio:d00000002v00001AF4'));
    assert.ok(globToRegExp('of:N*T*Cfoo?bar').test('of:NxTyCfooXbar'));
    assert.ok(globToRegExp('a[0-9]b').test('a5b'));
    assert.ok(globToRegExp('a[!0-9]b').test('axb'));
    assert.ok(!globToRegExp('a[!0-9]b').test('a5b'));
    assert.ok(globToRegExp('x.y+z(1)').test('x.y+z(1)'));
    assert.ok(globToRegExp('open[bracket').test('open[bracket'));
  });

  it('editDistance', () => {
    assert.equal(editDistance('virtio_nett', 'virtio_net'), 1);
    assert.equal(editDistance('', 'abc'), 3);
    assert.equal(editDistance('kitten', 'sitting'), 3);
  });
});

describe('real Debian 12 cloud kernel', () => {
  const k = debianCloudKernel();
  const skip = needs('the Debian cloud kernel package from apt', typeof k === 'string' && k);
  const WANTED = ['virtio_net', 'virtio_blk', 'virtio_console', 'virtio_rng', 'vmw_vsock_virtio_transport'];

  it('closes the virtio drivers the way modprobe would', { skip }, () => {
    if (typeof k === 'string') return;
    const tree = treeFromHostDir(k.root, { kind: 'deb', package: k.package, version: k.debVersion });
    const dir = `/lib/modules/${k.kernelVersion}`;
    const r = moduleClosure(tree, k.kernelVersion, WANTED);
    const dep = text(r.tree, `${dir}/modules.dep`);
    console.log(`${k.package} ${k.debVersion}`);
    console.log(`builtin: ${JSON.stringify(r.builtin)}`);
    console.log(`load order: ${r.order.join(' ')}`);
    console.log(`compressed: ${JSON.stringify(r.modules.filter((m) => m.compression).map((m) => m.from))}`);
    console.log(
      dep
        .trim()
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n'),
    );

    for (const w of WANTED) assert.ok(r.order.includes(w) || r.builtin.includes(w), w);
    // virtio_net -> net_failover -> failover, loaded in that reverse order.
    assert.ok(r.order.indexOf('failover') < r.order.indexOf('net_failover'));
    assert.ok(r.order.indexOf('net_failover') < r.order.indexOf('virtio_net'));
    const vnet = dep.split('\n').find((l) => l.startsWith('kernel/drivers/net/virtio_net.ko:'))!;
    assert.match(vnet, /kernel\/drivers\/net\/net_failover\.ko.* kernel\/net\/core\/failover\.ko/);
    // The file is virtio-rng.ko; the module is virtio_rng.
    assert.ok(r.tree.has(`${dir}/kernel/drivers/char/hw_random/virtio-rng.ko`));
    // Everything we chose parses, and its vermagic names this kernel.
    for (const m of r.modules) {
      assert.ok(m.info.vermagic?.startsWith(`${k.kernelVersion} `), `${m.name}: ${m.info.vermagic}`);
      assert.equal(m.info.name, m.name);
    }
    for (const m of r.modules)
      for (const d of m.depends) assert.ok(r.order.indexOf(d) < r.order.indexOf(m.name));
  });

  it('reads the .modinfo of every module in the package', { skip }, () => {
    if (typeof k === 'string') return;
    const tree = treeFromHostDir(k.root, { kind: 'deb', package: k.package, version: k.debVersion });
    let n = 0;
    const kinds = new Map<string, number>();
    for (const [p, e] of tree) {
      if (e.type !== 'file' || !/\.ko(\.(xz|zst|gz))?$/.test(p)) continue;
      const kind = p.match(/\.ko(\.\w+)?$/)![0];
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      const info = parseModinfo(decompressModule(e.data, p), p);
      assert.equal(info.name, normalizeModuleName(p.split('/').pop()!), p);
      n++;
    }
    console.log(`${n} modules, file endings: ${JSON.stringify(Object.fromEntries(kinds))}`);
    assert.ok(n > 500);
  });
});
