/**
 * kjx's kernel build driven against a fake kernel tree (test/fixtures/fake-kernel-tree.ts):
 * the steps, the reproducible environment, the caches, the warnings and the errors.
 * Real kernels are built in test/integration/kernel-build.test.ts.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { buildKernel, type KernelBuildRequest } from '../../src/kernel/build.js';
import { treeSource } from '../../src/kernel/source.js';
import { openCache } from '../../src/sources/cache.js';
import type { KernelConfigEntry } from '../../src/spec/kernel-config.js';
import type { Warning } from '../../src/util/errors.js';
import { fakeKernelTree } from '../fixtures/fake-kernel-tree.js';
import { kjxError } from '../helpers/kjx-error.js';
import { needsTool } from '../helpers/prereq.js';

const dirs: string[] = [];
const temp = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  dirs.push(d);
  return d;
};

function request(tree: string, config: KernelConfigEntry[], over: Partial<KernelBuildRequest> = {}) {
  const warnings: Warning[] = [];
  const progress: string[] = [];
  const req: KernelBuildRequest = {
    source: treeSource(tree, './linux'),
    config: [{ kind: 'profile', name: 'vm' }, ...config],
    epoch: 1700000000,
    cache: openCache(temp('kjx-kcache-')),
    warn: (w) => warnings.push(w),
    progress: (t) => progress.push(t),
    jobs: 2,
    ...over,
  };
  return { req, warnings, progress };
}

describe('kernel build (fake tree)', { skip: needsTool('flex') || needsTool('pahole') }, () => {
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test('configures, builds, installs the modules and keeps the result; the same config is not built again', async () => {
    const tree = fakeKernelTree();
    dirs.push(tree);
    const { req, warnings } = request(tree, [{ kind: 'line', name: 'CONFIG_EXTRA', value: 'y' }]);
    const built = await buildKernel(req);
    assert.equal(built.cached, false);
    assert.equal(built.release, '6.1.0-fake');
    assert.deepEqual(warnings, []);
    // the reproducible environment and flags reached make
    assert.equal(readFileSync(built.bzImage, 'utf8'), 'bz @1700000000 kjx kjx 1\n');
    const vmlinux = readFileSync(built.vmlinux, 'utf8');
    assert.match(vmlinux, new RegExp(`-fdebug-prefix-map=${tree}=/usr/src/linux `));
    assert.match(vmlinux, /^CONFIG_EXTRA=y$/m);
    assert.match(vmlinux, /^CONFIG_BPF_SYSCALL=y$/m, 'the vm profile is merged in');
    assert.match(vmlinux, /^CONFIG_FW_CFG_SYSFS=y$/m, 'kjx.config is merged in');
    assert.doesNotMatch(vmlinux.split('\n')[0]!, /(^|\s)-j(\s|$)/, 'pahole runs without -j');
    assert.ok(existsSync(join(built.modulesDir, 'modules.builtin')));
    assert.equal(
      existsSync(join(built.modulesDir, 'source')),
      false,
      'links into the object tree are dropped',
    );

    // the same inputs again: configured, found in the cache, not built
    const again = await buildKernel({ ...req, warn: () => {} });
    assert.equal(again.cached, true);
    assert.equal(again.bzImage, built.bzImage);
    const log = readFileSync(join(req.cache.root, 'kernel', 'work', req.source.id, 'build.log'), 'utf8');
    assert.equal(log.match(/ bzImage modules\n/g)?.length, 1, 'make bzImage ran once');
  });

  test('an option that does not survive is a warning naming it, its value and where it was asked for', async () => {
    const tree = fakeKernelTree(['CONFIG_KALLSYMS_ALL=', 'CONFIG_NOT_HERE=']);
    dirs.push(tree);
    const frag = join(temp('kjx-frag-'), 'extra.config');
    writeFileSync(frag, '# mine\nCONFIG_NOT_HERE=m\n');
    const { req, warnings, progress } = request(tree, [
      { kind: 'file', path: frag, pathRef: './extra.config' },
      { kind: 'line', name: 'CONFIG_IPV6', value: 'n' },
    ]);
    await buildKernel(req);
    assert.deepEqual(
      warnings.map((w) => w.message.replace(/vm\.config:\d+/, 'vm.config:N')),
      [
        'kernel config: CONFIG_KALLSYMS_ALL=y (vm.config:N) did not survive, the kernel has CONFIG_KALLSYMS_ALL=n: it does not exist in this kernel or an option it depends on is off',
        'kernel config: CONFIG_NOT_HERE=m (./extra.config:2) did not survive, the kernel has CONFIG_NOT_HERE=n: it does not exist in this kernel or an option it depends on is off',
      ],
    );
    assert.ok(warnings.every((w) => w.code === 'kernel-config-lost'));
    // a fragment replacing the profile's value is shown, not warned about
    assert.ok(
      progress.some((p) => /^CONFIG_IPV6=n \(kernel\.config\[2\]\) replaces y \(vm\.config:\d+\)$/.test(p)),
    );
  });

  test("a compiler error fails with the compiler's own line and the log", async () => {
    const tree = fakeKernelTree();
    dirs.push(tree);
    const { req } = request(tree, [{ kind: 'line', name: 'CONFIG_BREAK', value: 'y' }]);
    await assert.rejects(
      buildKernel(req),
      kjxError('KERNEL_BUILD', {
        message:
          /^building the kernel: make failed \(exit status 2\)\n.*drivers\/broken\.c:3:\d+: error: 'undeclared_thing' undeclared/s,
        hint: /the whole output is in .*build\.log$/,
      }),
    );
    // nothing half-written: no result in the cache
    assert.equal(existsSync(join(req.cache.root, 'kernel', 'built')), false);
  });

  test('bad inputs: a missing fragment, a tree that is not one, a configured tree, a build already running', async () => {
    const tree = fakeKernelTree();
    dirs.push(tree);
    const missing = request(tree, [{ kind: 'file', path: '/nonexistent/x.config', pathRef: './x.config' }]);
    await assert.rejects(
      buildKernel(missing.req),
      kjxError('INPUT_NOT_FOUND', /^kernel\.config\[1\]: the fragment \.\/x\.config does not exist/),
    );
    const bad = temp('kjx-frag-');
    writeFileSync(join(bad, 'bad.config'), 'CONFIG_A=y\nhello\n');
    await assert.rejects(
      buildKernel(
        request(tree, [{ kind: 'file', path: join(bad, 'bad.config'), pathRef: './bad.config' }]).req,
      ),
      kjxError('SPEC_INVALID', /^\.\/bad\.config:2: not a kernel config line: "hello"/),
    );
    assert.throws(
      () => treeSource('/nonexistent/linux', '../linux'),
      kjxError('INPUT_NOT_FOUND', /kernel\.tree: \.\.\/linux does not exist/),
    );
    assert.throws(() => treeSource(bad, './frag'), kjxError('USAGE', /is not a kernel source tree/));
    writeFileSync(join(tree, '.config'), 'CONFIG_A=y\n');
    assert.throws(
      () => treeSource(tree, './linux'),
      kjxError('USAGE', { message: /has an in-tree build/, hint: /mrproper.*kjx run --kernel/ }),
    );
    rmSync(join(tree, '.config'));
    const { req } = request(tree, []);
    const work = join(req.cache.root, 'kernel', 'work', req.source.id);
    mkdirSync(work, { recursive: true });
    // pid 1 is alive and is not us
    writeFileSync(join(work, 'lock'), '1\n');
    await assert.rejects(
      buildKernel(req),
      kjxError('USAGE', /another kjx \(pid 1\) is building this kernel/),
    );
    // a lock left by a process that is gone is taken over
    writeFileSync(join(work, 'lock'), '999999999\n');
    assert.equal((await buildKernel(req)).release, '6.1.0-fake');
    assert.equal(existsSync(join(work, 'lock')), false);
  });
});
