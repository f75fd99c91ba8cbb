/**
 * The host build of tracing.programs with the real toolchain (clang, bpftool, gcc,
 * Go: test host tools) against the BTF of Debian's cloud kernel: objects keep BTF
 * and lose DWARF, loaders need only libc, results come from the cache until a source
 * (or a header it includes) changes, builds in two caches give the same bytes, and
 * compile errors are BPF_COMPILE with the compiler's own positions.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type CompileOptions, compilePrograms, programSources } from '../../src/bpf/compile.js';
import { elfSection, kernelBtf } from '../../src/bpf/kernel-btf.js';
import { requireToolchain } from '../../src/bpf/toolchain.js';
import { unpackVmlinux } from '../../src/rootfs/bzimage.js';
import { parseElf } from '../../src/rootfs/elf.js';
import { openCache } from '../../src/sources/cache.js';
import type { ProgramSpec } from '../../src/spec/programs.js';
import { isKjxError } from '../../src/util/errors.js';
import { sha256 } from '../../src/util/hash.js';
import { debianCloudKernel } from '../helpers/debian-kernel.js';
import { REPO, SHARED_CACHE } from '../helpers/kjx.js';

const EXAMPLE = join(REPO, 'examples', 'bpf-programs');

describe('compilePrograms', () => {
  let dir: string;
  let btf: CompileOptions['btf'];
  const caches: string[] = [];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kjx-compile-'));
    cpSync(EXAMPLE, dir, { recursive: true });
    const k = debianCloudKernel();
    if (typeof k === 'string') throw new Error(k);
    const { readdirSync } = await import('node:fs');
    const vmlinuz = readdirSync(join(k.root, 'boot')).find((f) => f.startsWith('vmlinuz-'))!;
    const elf = await unpackVmlinux(readFileSync(join(k.root, 'boot', vmlinuz)));
    assert.ok(elf.ok);
    const data = kernelBtf(elf.elf)!;
    btf = { sha: sha256(data), data: async () => data };
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
    for (const c of caches) rmSync(c, { recursive: true, force: true });
  });
  const program = (name: string, bpf: string, loader?: string | string[], go?: string): ProgramSpec => ({
    name,
    bpf: join(dir, bpf),
    bpfRef: `./${bpf}`,
    loader: go
      ? { kind: 'go', dir: join(dir, go), dirRef: `./${go}` }
      : loader
        ? {
            kind: 'c',
            sources: [loader].flat().map((l) => join(dir, l)),
            sourceRefs: [loader].flat().map((l) => `./${l}`),
          }
        : { kind: 'generic' },
  });
  const freshCache = () => {
    const c = mkdtempSync(join(tmpdir(), 'kjx-compile-cache-'));
    caches.push(c);
    return openCache(c);
  };
  const compile = (programs: ProgramSpec[], cache = openCache(SHARED_CACHE)) =>
    compilePrograms({ programs, specDir: dir, toolchain: requireToolchain(programs), btf, cache });

  test('an object with BTF and CO-RE relocations but no DWARF; loaders that need only libc', async () => {
    const progs = [program('runqlat', 'runqlat.bpf.c'), program('syscount', 'syscount.bpf.c', 'syscount.c')];
    const c = await compile(progs);
    const [rq, sc] = c.programs;
    assert.ok(elfSection(rq!.object, '.BTF'), 'BTF kept');
    assert.ok(elfSection(rq!.object, '.BTF.ext'), 'CO-RE relocations and line info kept');
    assert.equal(elfSection(rq!.object, '.debug_info'), undefined, 'DWARF stripped');
    for (const bin of [c.genericLoader, sc!.loader!]) {
      const info = parseElf(bin, 'loader');
      assert.deepEqual(info.needed, ['libc.so.6']);
    }
    // the generic loader adds well under 1 MiB (its size budget; bench/ measures the image)
    assert.ok(c.genericLoader.length < 1024 * 1024, `${c.genericLoader.length} bytes`);
  });

  test('cached until a source or a header it includes changes', async () => {
    const nonce = randomBytes(6).toString('hex');
    writeFileSync(
      join(dir, 'syscount.h'),
      `${readFileSync(join(EXAMPLE, 'syscount.h'), 'utf8')}\n/* ${nonce} */\n`,
    );
    const progs = [program('syscount', 'syscount.bpf.c', 'syscount.c')];
    assert.ok(
      programSources(progs[0]!).some((s) => s.path.endsWith('syscount.h')),
      'the quoted include is part of the key',
    );
    const first = await compile(progs);
    assert.equal(first.programs[0]?.cached, false);
    const again = await compile(progs);
    assert.equal(again.programs[0]?.cached, true);
    assert.deepEqual(again.programs[0]?.object, first.programs[0]?.object);
    writeFileSync(join(dir, 'syscount.h'), `${readFileSync(join(dir, 'syscount.h'), 'utf8')}/* changed */\n`);
    assert.equal((await compile(progs)).programs[0]?.cached, false);
  });

  test('two caches (two machines) build the same bytes: no temporary path gets into them', async () => {
    const progs = [program('syscount', 'syscount.bpf.c', 'syscount.c')];
    const a = await compile(progs, freshCache());
    const b = await compile(progs, freshCache());
    assert.deepEqual(a.programs[0]?.object, b.programs[0]?.object);
    assert.deepEqual(a.programs[0]?.loader, b.programs[0]?.loader);
    assert.deepEqual(a.genericLoader, b.genericLoader);
    assert.ok(!a.programs[0]!.object.includes(Buffer.from('/tmp/')), 'no host path in the object');
  });

  test("a BPF compile error: BPF_COMPILE at the first error, with clang's lines", async () => {
    writeFileSync(
      join(dir, 'broken.bpf.c'),
      '#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n\nSEC("tp_btf/sched_switch")\nint f(void *ctx)\n{\n\treturn undefined_thing;\n}\n',
    );
    await assert.rejects(compile([program('broken', 'broken.bpf.c')]), (e) => {
      assert.ok(isKjxError(e) && e.code === 'BPF_COMPILE', String(e));
      assert.deepEqual(e.position, { file: 'broken.bpf.c', line: 7, column: 9 });
      assert.match(e.message, /^tracing\.programs broken: broken\.bpf\.c: 1 error\n/);
      assert.match(e.message, /broken\.bpf\.c:7:9: error: use of undeclared identifier 'undefined_thing'/);
      return true;
    });
  });

  test("a C loader error names the generated skeleton without kjx's work directory", async () => {
    mkdirSync(join(dir, 'bad'), { recursive: true });
    writeFileSync(
      join(dir, 'bad', 'loader.c'),
      '#include "syscount.skel.h"\nint main(void) { struct syscount_bpf *s = syscount_bpf__open(); return s->nope; }\n',
    );
    await assert.rejects(compile([program('syscount', 'syscount.bpf.c', 'bad/loader.c')]), (e) => {
      assert.ok(isKjxError(e) && e.code === 'BPF_COMPILE', String(e));
      assert.deepEqual(e.position, { file: 'bad/loader.c', line: 2, column: 73 });
      assert.match(e.message, /.struct syscount_bpf. has no member named .nope./);
      assert.doesNotMatch(e.message, /test-cache|kjx-compile-cache|\/tmp\//);
      return true;
    });
    // a link error has no file:line:col, and still no temporary path of kjx's
    writeFileSync(join(dir, 'bad', 'link.c'), 'int nope(void);\nint main(void) { return nope(); }\n');
    await assert.rejects(compile([program('syscount', 'syscount.bpf.c', 'bad/link.c')]), (e) => {
      assert.ok(isKjxError(e) && e.code === 'BPF_COMPILE', String(e));
      assert.match(e.message, /the C loader: failed \(exit code 1\):\n[\s\S]*undefined reference to `nope'/);
      assert.doesNotMatch(e.message, /test-cache|kjx-compile-cache/);
      return true;
    });
  });

  test('a Go loader builds offline against cilium/ebpf; its errors point into the package directory', async () => {
    const ok = await compile([program('gosyscount', 'syscount.bpf.c', undefined, 'gosyscount')]);
    const go = parseElf(ok.programs[0]!.loader!, 'gosyscount');
    assert.equal(go.interp, undefined, 'a static binary');
    mkdirSync(join(dir, 'gobad'), { recursive: true });
    writeFileSync(join(dir, 'gobad', 'main.go'), 'package main\n\nfunc main() {\n\tundefinedThing()\n}\n');
    await assert.rejects(compile([program('gobad', 'syscount.bpf.c', undefined, 'gobad')]), (e) => {
      assert.ok(isKjxError(e) && e.code === 'BPF_COMPILE', String(e));
      assert.deepEqual(e.position, { file: 'gobad/main.go', line: 4, column: 2 });
      assert.match(e.message, /undefined: undefinedThing/);
      return true;
    });
  });
});
