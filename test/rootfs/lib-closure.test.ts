import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ElfInfo, EM, ET } from '../../src/rootfs/elf.js';
import { addLibraryClosure, defaultLibraryDirs, multiarchTriplet } from '../../src/rootfs/lib-closure.js';
import {
  type EntrySource,
  type FileEntry,
  mk,
  resolveInTree,
  type Tree,
  type TreeEntry,
} from '../../src/rootfs/tree.js';
import { isKjxError, type KjxError, type Warning } from '../../src/util/errors.js';
import { buildElf, type ElfFixtureOptions } from '../fixtures/elf-fixtures.js';

const deb = (pkg: string): EntrySource => ({ kind: 'deb', package: pkg, version: '1.0-1' });
const INTERP = '/lib64/ld-linux-x86-64.so.2';

/** An ELF file entry; the SONAME defaults to the file name, as for a real library. */
function elf(path: string, pkg: string, o: ElfFixtureOptions = {}): FileEntry {
  const soname = o.soname ?? (path.includes('.so') ? path.slice(path.lastIndexOf('/') + 1) : undefined);
  return {
    ...mk.file(path, buildElf({ ...o, ...(soname ? { soname } : {}) }), deb(pkg), 0o755),
    mtime: 1700000000,
  };
}
const link = (path: string, target: string, pkg: string) => mk.symlink(path, target, deb(pkg));
const tree = (...entries: TreeEntry[]): Tree => new Map(entries.map((e) => [e.path, e]));

/** A bookworm-like libc6: split /usr, /lib64/ld-linux-x86-64.so.2 an absolute link into /lib. */
function libc6(): TreeEntry[] {
  return [
    mk.dir('/lib', deb('libc6')),
    mk.dir('/lib/x86_64-linux-gnu', deb('libc6')),
    mk.dir('/lib64', deb('libc6')),
    elf('/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', 'libc6', { soname: 'ld-linux-x86-64.so.2' }),
    link(INTERP, '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', 'libc6'),
    elf('/lib/x86_64-linux-gnu/libc.so.6', 'libc6', { interp: INTERP, needed: ['ld-linux-x86-64.so.2'] }),
  ];
}
const app = (path: string, o: ElfFixtureOptions = {}) =>
  elf(path, 'app', { interp: INTERP, needed: ['libc.so.6'], type: ET.DYN, ...o });

function closure(image: Tree, staging: Tree, warnings: Warning[] = [], extra = {}) {
  return addLibraryClosure(image, staging, { warn: (w) => warnings.push(w), ...extra }).added;
}

/** Where the guest's loader would land for `path` in the image: the real file. */
function landsOn(image: Tree, path: string): string | undefined {
  const r = resolveInTree(image, path);
  return r?.entry.type === 'file' ? r.path : undefined;
}

function throwsKjx(fn: () => unknown, check: (e: KjxError) => void): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(isKjxError(caught), `expected a KjxError, got ${String(caught)}`);
  check(caught);
}

describe('addLibraryClosure', () => {
  it('adds the interpreter, libc and their links with the staged metadata', () => {
    const image = tree(app('/usr/bin/hello'));
    const staging = tree(...libc6());
    const added = closure(image, staging);
    assert.deepEqual(added, [
      '/',
      '/lib',
      '/lib/x86_64-linux-gnu',
      '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2',
      '/lib/x86_64-linux-gnu/libc.so.6',
      '/lib64',
      INTERP,
    ]);
    for (const p of added) assert.deepEqual(image.get(p), staging.get(p) ?? image.get(p));
    assert.equal(image.get('/lib/x86_64-linux-gnu/libc.so.6')?.mtime, 1700000000);
    assert.equal(image.get('/lib/x86_64-linux-gnu/libc.so.6')?.source.kind, 'deb');
    assert.equal(image.get(INTERP)?.type, 'symlink');
    assert.equal(landsOn(image, INTERP), '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2');
  });

  it('copies entries, not references into the staging tree', () => {
    const image = tree(app('/usr/bin/hello'));
    const staging = tree(...libc6());
    closure(image, staging);
    const p = '/lib/x86_64-linux-gnu/libc.so.6';
    assert.notEqual(image.get(p), staging.get(p));
    image.get(p)!.mtime = 0;
    assert.equal(staging.get(p)?.mtime, 1700000000);
  });

  it('follows PT_INTERP through a symlinked directory (merged /usr: /lib64 -> usr/lib64)', () => {
    const image = tree(app('/usr/bin/hello'));
    const staging = tree(
      link('/lib64', 'usr/lib64', 'base-files'),
      link('/usr/lib64/ld-linux-x86-64.so.2', '../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', 'libc6'),
      elf('/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', 'libc6'),
      elf('/usr/lib/x86_64-linux-gnu/libc.so.6', 'libc6', { needed: ['ld-linux-x86-64.so.2'] }),
    );
    const added = closure(image, staging);
    for (const p of [
      '/lib64',
      '/usr/lib64/ld-linux-x86-64.so.2',
      '/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2',
    ]) {
      assert.ok(added.includes(p), p);
    }
    assert.equal(image.get('/lib64')?.type, 'symlink');
    assert.equal(landsOn(image, INTERP), '/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2');
    // the parents no package named explicitly are made up, root-owned 0755
    assert.deepEqual(image.get('/usr/lib64'), mk.dir('/usr/lib64', { kind: 'generated', by: 'lib-closure' }));
  });

  it('names the missing merged-/usr link when the interpreter is staged under /usr only', () => {
    const image = tree(app('/usr/bin/hello', { needed: [] }));
    const staging = tree(elf('/usr/lib64/ld-linux-x86-64.so.2', 'libc6'));
    throwsKjx(
      () => closure(image, staging),
      (e) => {
        assert.equal(e.code, 'LIB_MISSING');
        assert.match(
          e.message,
          /^\/usr\/bin\/hello needs \/lib64\/ld-linux-x86-64\.so\.2, which is in no staged package/,
        );
        assert.match(e.hint ?? '', /\/lib64 -> usr\/lib64/);
      },
    );
  });

  it('brings every link of a chain of two symlinks and the real file', () => {
    const image = tree(app('/usr/bin/calc', { needed: ['libgmp.so.10'] }));
    const staging = tree(
      ...libc6(),
      link('/usr/lib/x86_64-linux-gnu/libgmp.so.10', 'libgmp.so.10.4', 'libgmp10'),
      link(
        '/usr/lib/x86_64-linux-gnu/libgmp.so.10.4',
        '/usr/lib/x86_64-linux-gnu/libgmp.so.10.4.1',
        'libgmp10',
      ),
      elf('/usr/lib/x86_64-linux-gnu/libgmp.so.10.4.1', 'libgmp10', { soname: 'libgmp.so.10' }),
      link('/usr/lib/x86_64-linux-gnu/libgmp.so', 'libgmp.so.10', 'libgmp-dev'),
    );
    const added = closure(image, staging);
    for (const p of ['libgmp.so.10', 'libgmp.so.10.4', 'libgmp.so.10.4.1']) {
      assert.ok(added.includes(`/usr/lib/x86_64-linux-gnu/${p}`), p);
    }
    assert.ok(!image.has('/usr/lib/x86_64-linux-gnu/libgmp.so'), 'the -dev link is not needed');
    assert.equal(
      landsOn(image, '/usr/lib/x86_64-linux-gnu/libgmp.so.10'),
      '/usr/lib/x86_64-linux-gnu/libgmp.so.10.4.1',
    );
  });

  it('follows the closure transitively (app -> liba -> libb -> libc)', () => {
    const image = tree(app('/usr/bin/a', { needed: ['liba.so.1'] }));
    const staging = tree(
      ...libc6(),
      elf('/usr/lib/x86_64-linux-gnu/liba.so.1', 'liba1', { needed: ['libb.so.2'] }),
      elf('/lib/x86_64-linux-gnu/libb.so.2', 'libb2', { needed: ['libc.so.6'] }),
    );
    const added = closure(image, staging);
    for (const p of [
      '/usr/lib/x86_64-linux-gnu/liba.so.1',
      '/lib/x86_64-linux-gnu/libb.so.2',
      '/lib/x86_64-linux-gnu/libc.so.6',
    ]) {
      assert.ok(added.includes(p), p);
    }
  });

  it('DT_RUNPATH $ORIGIN/../lib: /opt/app/bin/app finds /opt/app/lib/libfoo.so.1', () => {
    // Both spellings glibc accepts; the braced one is a plain string, not a template.
    for (const runpath of ['$ORIGIN/../lib', '$' + '{ORIGIN}/../lib']) {
      const image = tree(app('/opt/app/bin/app', { needed: ['libfoo.so.1'], runpath }));
      const staging = tree(
        ...libc6(),
        elf('/opt/app/lib/libfoo.so.1', 'app-libs'),
        elf('/usr/lib/x86_64-linux-gnu/libfoo.so.1', 'libfoo1'), // a default dir comes later
      );
      const added = closure(image, staging);
      assert.ok(added.includes('/opt/app/lib/libfoo.so.1'), runpath);
      assert.ok(!added.includes('/usr/lib/x86_64-linux-gnu/libfoo.so.1'), runpath);
    }
  });

  it('$ORIGIN of a library is where it was found, before following its symlinks', () => {
    // glibc sets l_origin from the opened name, not the link target.
    const image = tree(app('/usr/bin/app', { needed: ['libplug.so.1'] }));
    const staging = tree(
      ...libc6(),
      link('/usr/lib/x86_64-linux-gnu/libplug.so.1', '/opt/vendor/real/libplug.so.1', 'plug'),
      elf('/opt/vendor/real/libplug.so.1', 'plug', { needed: ['libhelper.so.1'], runpath: '$ORIGIN/plug' }),
      elf('/usr/lib/x86_64-linux-gnu/plug/libhelper.so.1', 'plug'),
    );
    assert.ok(closure(image, staging).includes('/usr/lib/x86_64-linux-gnu/plug/libhelper.so.1'));
  });

  it('ignores DT_RPATH when DT_RUNPATH is present', () => {
    const image = tree(
      app('/usr/bin/app', { needed: ['libfoo.so.1'], rpath: '/opt/bad', runpath: '/opt/good' }),
    );
    const staging = tree(
      ...libc6(),
      elf('/opt/bad/libfoo.so.1', 'bad'),
      elf('/opt/good/libfoo.so.1', 'good'),
    );
    const added = closure(image, staging);
    assert.ok(added.includes('/opt/good/libfoo.so.1'));
    assert.ok(!added.includes('/opt/bad/libfoo.so.1'));
  });

  it('searches DT_RPATH before the default directories when there is no DT_RUNPATH', () => {
    const image = tree(app('/usr/bin/app', { needed: ['libfoo.so.1'], rpath: '/opt/r1:/opt/r2' }));
    const staging = tree(
      ...libc6(),
      elf('/opt/r2/libfoo.so.1', 'r2'),
      elf('/usr/lib/x86_64-linux-gnu/libfoo.so.1', 'libfoo1'),
    );
    const added = closure(image, staging);
    assert.ok(added.includes('/opt/r2/libfoo.so.1'));
    assert.ok(!added.includes('/usr/lib/x86_64-linux-gnu/libfoo.so.1'));
  });

  it("inherits the executable's DT_RPATH into its libraries, but never a DT_RUNPATH", () => {
    const staging = tree(
      ...libc6(),
      elf('/opt/app/lib/libfoo.so.1', 'app', { needed: ['libbar.so.1'] }),
      elf('/opt/app/lib/libbar.so.1', 'app'),
    );
    const withRpath = tree(app('/opt/app/bin/app', { needed: ['libfoo.so.1'], rpath: '$ORIGIN/../lib' }));
    assert.ok(closure(withRpath, staging).includes('/opt/app/lib/libbar.so.1'));

    const withRunpath = tree(app('/opt/app/bin/app', { needed: ['libfoo.so.1'], runpath: '$ORIGIN/../lib' }));
    throwsKjx(
      () => closure(withRunpath, staging),
      (e) => {
        assert.equal(e.code, 'LIB_MISSING');
        assert.match(
          e.message,
          /^\/opt\/app\/lib\/libfoo\.so\.1 needs libbar\.so\.1, .*loaded by \/opt\/app\/bin\/app/,
        );
      },
    );
  });

  it('a library already in the image is used, not copied again', () => {
    const image = tree(app('/usr/bin/hello'), ...libc6());
    const staging = tree(...libc6().map((e) => ({ ...e, mtime: 5 })));
    assert.deepEqual(closure(image, staging), []);
  });

  it('a library that only an executable finds (through its DT_RPATH) is not judged alone', () => {
    const image = tree(
      app('/opt/app/bin/app', { needed: ['libfoo.so.1', 'libc.so.6'], rpath: '/opt/app/lib' }),
      elf('/opt/app/lib/libfoo.so.1', 'app', { needed: ['libbar.so.1'] }),
      elf('/opt/app/lib/libbar.so.1', 'app'),
    );
    // libfoo alone would not find libbar; loaded by app it does, so no LIB_MISSING.
    assert.ok(closure(image, tree(...libc6())).includes('/lib/x86_64-linux-gnu/libc.so.6'));
  });

  it('names the binary and the library when a library is missing', () => {
    const image = tree(app('/usr/bin/hello', { needed: ['libc.so.6', 'libnope.so.3'] }));
    throwsKjx(
      () => closure(image, tree(...libc6())),
      (e) => {
        assert.equal(e.code, 'LIB_MISSING');
        assert.equal(
          e.message,
          '/usr/bin/hello needs libnope.so.3, which is in no staged package (searched: /lib/x86_64-linux-gnu, ' +
            '/usr/lib/x86_64-linux-gnu, /lib64, /lib, /usr/lib)',
        );
        assert.equal(e.hint, 'add the Debian package that ships libnope.so.3 to `packages:` in kjx.yaml');
      },
    );
  });

  it('collects every missing library into one error', () => {
    const image = tree(
      app('/usr/bin/a', { needed: ['libc.so.6', 'libx.so.1'] }),
      app('/usr/bin/b', { needed: ['liby.so.2', 'libx.so.1'] }),
    );
    throwsKjx(
      () => closure(image, tree(...libc6())),
      (e) => {
        assert.equal(e.code, 'LIB_MISSING');
        assert.match(e.message, /^3 needed libraries are in no staged package: libx\.so\.1, liby\.so\.2$/);
        assert.equal(e.details.length, 3);
        assert.ok(e.details.some((d) => d.startsWith('/usr/bin/b needs liby.so.2, ')));
        assert.match(e.hint ?? '', /packages that ship libx\.so\.1, liby\.so\.2/);
      },
    );
  });

  it('never falls back to the host: an empty staging area finds nothing', () => {
    throwsKjx(
      () => closure(tree(app('/usr/bin/hello')), new Map()),
      (e) => {
        assert.equal(e.code, 'LIB_MISSING');
        assert.ok(e.details.some((d) => d.includes('needs libc.so.6')));
        assert.ok(e.details.some((d) => d.includes(`needs ${INTERP}`)));
      },
    );
  });

  it('skips a candidate of the wrong class or machine and keeps searching', () => {
    const image = tree(app('/usr/bin/app', { needed: ['libfoo.so.1'] }));
    const staging = tree(
      ...libc6(),
      elf('/lib/x86_64-linux-gnu/libfoo.so.1', 'lib32foo', { class: 32, machine: EM.I386 }),
      elf('/usr/lib/x86_64-linux-gnu/libfoo.so.1', 'libfoo-arm', { machine: EM.AARCH64 }),
      elf('/lib64/libfoo.so.1', 'libfoo1'),
    );
    const added = closure(image, staging);
    assert.ok(added.includes('/lib64/libfoo.so.1'));
    assert.ok(!added.includes('/lib/x86_64-linux-gnu/libfoo.so.1'));
    assert.ok(!added.includes('/usr/lib/x86_64-linux-gnu/libfoo.so.1'));
  });

  it('reports a library that exists only in the wrong class as missing', () => {
    const image = tree(app('/usr/bin/app', { needed: ['libfoo.so.1'] }));
    const staging = tree(...libc6(), elf('/lib/x86_64-linux-gnu/libfoo.so.1', 'lib32foo', { class: 32 }));
    throwsKjx(
      () => closure(image, staging),
      (e) => assert.match(e.message, /^\/usr\/bin\/app needs libfoo\.so\.1,/),
    );
  });

  it('an image directory shadows a staged directory symlink, and the search moves on', () => {
    // The image already has a real /lib (say for /lib/modules); staging is merged-/usr.
    const image = tree(app('/usr/bin/hello', { interp: '/usr/lib64/ld-linux-x86-64.so.2' }));
    image.set('/lib', mk.dir('/lib', { kind: 'generated', by: 'test' }));
    image.set('/lib/modules', mk.dir('/lib/modules', { kind: 'generated', by: 'test' }));
    const staging = tree(
      link('/lib', 'usr/lib', 'base-files'),
      elf('/usr/lib64/ld-linux-x86-64.so.2', 'libc6'),
      elf('/usr/lib/x86_64-linux-gnu/libc.so.6', 'libc6'),
    );
    const added = closure(image, staging);
    assert.equal(image.get('/lib')?.type, 'dir');
    assert.ok(added.includes('/usr/lib/x86_64-linux-gnu/libc.so.6'));
  });

  it('an image symlink leads into staged files (image over staging)', () => {
    const image = tree(app('/usr/bin/hello'), link('/lib64', 'usr/lib64', 'base-files'));
    const staging = tree(
      elf('/usr/lib64/ld-linux-x86-64.so.2', 'libc6'),
      elf('/usr/lib/x86_64-linux-gnu/libc.so.6', 'libc6'),
    );
    const added = closure(image, staging);
    assert.ok(added.includes('/usr/lib64/ld-linux-x86-64.so.2'));
    assert.equal(landsOn(image, INTERP), '/usr/lib64/ld-linux-x86-64.so.2');
  });

  it('resolves a library that is a hard link, bringing its target too', () => {
    const image = tree(app('/usr/bin/hello', { needed: ['libc.so.6', 'libfoo.so.1'] }));
    const staging = tree(...libc6(), elf('/usr/lib/real/libfoo.so.1', 'libfoo1'), {
      ...mk.file('/lib/x86_64-linux-gnu/libfoo.so.1', '', deb('libfoo1')),
      type: 'hardlink',
      target: '/usr/lib/real/libfoo.so.1',
    } as unknown as TreeEntry);
    const added = closure(image, staging);
    assert.ok(added.includes('/lib/x86_64-linux-gnu/libfoo.so.1'));
    assert.ok(added.includes('/usr/lib/real/libfoo.so.1'));
  });

  it('a needed SONAME that an already loaded object carries is not searched for', () => {
    // The interpreter sits outside every default dir; libc's DT_NEEDED still finds it.
    const image = tree(app('/usr/bin/hello', { interp: '/opt/rt/ld.so' }));
    const staging = tree(
      elf('/opt/rt/ld.so', 'rt', { soname: 'ld-rt.so.1' }),
      elf('/lib/x86_64-linux-gnu/libc.so.6', 'libc6', { needed: ['ld-rt.so.1'] }),
    );
    assert.ok(closure(image, staging).includes('/opt/rt/ld.so'));
  });

  it('a static binary needs nothing', () => {
    const image = tree(elf('/bin/busybox', 'busybox-static', { type: ET.EXEC }));
    assert.deepEqual(closure(image, tree(...libc6())), []);
  });

  it('picks the multiarch directory from e_machine', () => {
    const arm64 = (p: string, o: ElfFixtureOptions = {}) => elf(p, 'x', { machine: EM.AARCH64, ...o });
    const image = tree(
      arm64('/usr/bin/hello', { interp: '/lib/ld-linux-aarch64.so.1', needed: ['libc.so.6'] }),
    );
    const staging = tree(
      arm64('/lib/ld-linux-aarch64.so.1'),
      elf('/lib/x86_64-linux-gnu/libc.so.6', 'libc6-amd64'),
      arm64('/usr/lib/aarch64-linux-gnu/libc.so.6'),
    );
    const added = closure(image, staging);
    assert.ok(added.includes('/usr/lib/aarch64-linux-gnu/libc.so.6'));
    assert.ok(!added.includes('/lib/x86_64-linux-gnu/libc.so.6'));
  });

  it('takes the default directories as a parameter', () => {
    const image = tree(app('/usr/bin/hello', { interp: undefined, needed: ['libc.so.6'] }));
    const staging = tree(
      elf('/usr/lib/x86_64-linux-gnu/libc.so.6', 'libc6'),
      elf('/custom/libc.so.6', 'custom'),
    );
    const added = closure(image, staging, [], { defaultDirs: ['/custom'] });
    assert.deepEqual(
      added.filter((p) => p.endsWith('libc.so.6')),
      ['/custom/libc.so.6'],
    );
    const seen: ElfInfo[] = [];
    const image2 = tree(app('/usr/bin/hello', { interp: undefined, needed: ['libc.so.6'] }));
    const defaultDirs = (r: ElfInfo) => {
      seen.push(r);
      return ['/custom'];
    };
    closure(image2, staging, [], { defaultDirs });
    assert.equal(seen[0]?.machine, EM.X86_64);
  });

  it('warns about, and skips, an unreadable ELF file in the image', () => {
    const broken = elf('/usr/share/corpus/broken.elf', 'corpus', { needed: ['x'] });
    const warnings: Warning[] = [];
    const image = tree({ ...broken, data: broken.data.subarray(0, 80) });
    assert.deepEqual(closure(image, new Map(), warnings), []);
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]?.code, 'ELF_INVALID');
    assert.match(warnings[0]?.message ?? '', /^\/usr\/share\/corpus\/broken\.elf: /);
  });

  it('warns about RPATH entries it cannot expand and goes on', () => {
    const warnings: Warning[] = [];
    const image = tree(app('/usr/bin/app', { runpath: '$LIB/x:relative/dir:/opt/ok' }));
    closure(image, tree(...libc6()), warnings);
    assert.deepEqual(warnings.map((w) => w.code).sort(), ['LIB_RPATH_RELATIVE', 'LIB_RPATH_TOKEN']);
  });

  it('$ORIGIN climbing above the root stays at the root, as the kernel does', () => {
    const image = tree(app('/bin/app', { needed: ['libfoo.so.1'], runpath: '$ORIGIN/../../../../opt' }));
    const added = closure(image, tree(...libc6(), elf('/opt/libfoo.so.1', 'foo')));
    assert.ok(added.includes('/opt/libfoo.so.1'));
  });

  it('is deterministic: same inputs, same image', () => {
    const run = () => {
      const image = tree(app('/usr/bin/b', { needed: ['libc.so.6', 'libz.so.1'] }), app('/usr/bin/a'));
      const added = closure(image, tree(...libc6(), elf('/usr/lib/x86_64-linux-gnu/libz.so.1', 'zlib1g')));
      return { added, keys: [...image.keys()].sort() };
    };
    assert.deepEqual(run(), run());
  });
});

describe('defaultLibraryDirs', () => {
  const abi = (machine: number, cls: 32 | 64 = 64) => ({
    machine,
    class: cls,
    endian: 'little' as const,
    flags: 0,
  });
  it('puts the multiarch directories first', () => {
    assert.deepEqual(defaultLibraryDirs(abi(EM.X86_64)), [
      '/lib/x86_64-linux-gnu',
      '/usr/lib/x86_64-linux-gnu',
      '/lib64',
      '/lib',
      '/usr/lib',
    ]);
    assert.equal(multiarchTriplet(abi(EM.AARCH64)), 'aarch64-linux-gnu');
    assert.equal(multiarchTriplet(abi(EM.I386, 32)), 'i386-linux-gnu');
    assert.equal(multiarchTriplet({ ...abi(EM.ARM, 32), flags: 0x5000400 }), 'arm-linux-gnueabihf');
    assert.deepEqual(defaultLibraryDirs(abi(9999)), ['/lib64', '/lib', '/usr/lib']);
  });
});
