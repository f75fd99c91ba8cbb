/**
 * `kjx run --kernel TREE` with a real built kernel tree (docs/dev-kernel.md): the
 * default image, built with Debian's kernel, boots the tree's kernel under TCG without
 * a rebuild; the guest runs the tree's release, loads the tree's modules with modprobe,
 * and never restores a snapshot saved with another kernel.
 *
 * The tree is KJX_TEST_KERNEL_TREE when set (a tree or `make O=` directory built with
 * `bzImage modules`); otherwise the one kjx builds itself: Debian's linux-source-6.1
 * with the `vm` profile (`kernel: {source: debian}`), whose object directory in the
 * cache is a built `make O=` tree (the first test file to need the kernel compiles
 * it, test/integration/kernel-build.test.ts finds it cached). A tree that cannot be
 * had skips these tests, saying why; under CI it fails the run (prereq.ts).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { removeAll, runKjx, SHARED_CACHE, workspace } from '../helpers/kjx.js';
import { needs, needsTool } from '../helpers/prereq.js';

/** The object directory of the kernel kjx builds from linux-source-6.1 (vm profile), built now if need be. */
function kjxBuiltTree(): { tree?: string; problem?: string } {
  const ws = workspace('devk-tree', 'name: devktree\nkernel:\n  source: debian\n');
  try {
    const r = runKjx(['build'], { cwd: ws, timeoutMs: 45 * 60_000 });
    if (r.code !== 0)
      return { problem: `kjx build of kernel.source: debian failed (${r.code}):\n${r.stderr}` };
    const deb = JSON.parse(readFileSync(join(ws, 'kjx.lock'), 'utf8')).kernel.sha256 as string;
    return { tree: join(SHARED_CACHE, 'kernel', 'work', deb, 'obj') };
  } finally {
    removeAll(ws);
  }
}

const given = process.env.KJX_TEST_KERNEL_TREE;
// building one needs the kernel's host tools (kjx doctor --install --for kernel)
const noTools = given ? false : needsTool('pahole');
const found: { tree?: string; problem?: string } = given ? { tree: given } : noTools ? {} : kjxBuiltTree();
const TREE = found.tree;

const skip =
  noTools ||
  needs(
    'a built kernel tree',
    found.problem ??
      (TREE && existsSync(join(TREE, 'arch/x86/boot/bzImage'))
        ? undefined
        : `${TREE} is no built kernel tree (no arch/x86/boot/bzImage)`),
  );

/** The tree's release, and a module to load: vxlan where it is one (kjx's vm profile), else the first. */
function treeInfo(tree: string): { release: string; module: string | undefined } {
  const order = existsSync(join(tree, 'modules.order'))
    ? readFileSync(join(tree, 'modules.order'), 'utf8')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) =>
          basename(l.trim())
            .replace(/\.k?o$/, '')
            .replace(/-/g, '_'),
        )
    : [];
  return {
    release: readFileSync(join(tree, 'include/config/kernel.release'), 'utf8').trim(),
    module: order.includes('vxlan') ? 'vxlan' : order[0],
  };
}
const info = skip ? { release: '', module: undefined } : treeInfo(TREE!);
const { release, module } = info;

const made: string[] = [];
after(() => removeAll(...made));

interface RunJson {
  stdout: string;
  stderr: string;
  exitCode: number;
  start?: { how: 'booted' | 'restored'; key?: string };
}

describe('kjx run --kernel (a real kernel tree)', { skip }, () => {
  let ws: string;
  let state: string;
  const run = (args: string[]) =>
    runKjx(['run', '--accel', 'tcg', ...args], {
      cwd: ws,
      env: { KJX_STATE_DIR: state },
      timeoutMs: 240_000,
    });
  const runJson = (args: string[]): RunJson => {
    const r = run(['--json', ...args]);
    assert.ok(r.stdout.startsWith('{'), `kjx run ${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout) as RunJson;
  };

  before(() => {
    ws = workspace('dev-kernel');
    state = mkdtempSync(join(tmpdir(), 'kjx-state-'));
    made.push(ws, state);
    const b = runKjx(['build'], { cwd: ws });
    assert.equal(b.code, 0, b.stderr);
  });

  test("the guest runs the tree's release, never from a snapshot saved with the packaged kernel", () => {
    // the packaged kernel first: its run saves (or restores) the image's snapshot at ready
    const packaged = runJson(['--', 'uname', '-r']);
    assert.equal(packaged.exitCode, 0, packaged.stderr);
    assert.notEqual(packaged.stdout.trim(), release);
    const mine = runJson(['--kernel', TREE!, '--', 'uname', '-r']);
    assert.equal(mine.exitCode, 0, mine.stderr);
    assert.equal(mine.stdout, `${release}\n`);
    assert.ok(
      mine.start?.key && mine.start.key !== packaged.start?.key,
      JSON.stringify([packaged.start, mine.start]),
    );
    // the next run restores the snapshot of its own kernel (saved by the one before)
    const again = runJson(['--kernel', TREE!, '--', 'uname', '-r']);
    assert.equal(again.stdout, `${release}\n`);
    assert.deepEqual(again.start, { how: 'restored', key: mine.start.key });
  });

  test("modprobe loads a module of the tree, lsmod shows it, and the command's status comes back", {
    skip: module === undefined ? 'the tree has no modules' : false,
  }, () => {
    const r = run([
      '--cold',
      '--no-save',
      '--kernel',
      TREE!,
      '--',
      'sh',
      '-c',
      `modprobe ${module} && lsmod | grep -q '^${module} ' && echo loaded; exit 7`,
    ]);
    assert.equal(r.code, 7, r.stderr);
    assert.equal(r.stdout, 'loaded\n');
  });

  test('a path that is no kernel, and --kernel with a boot medium, fail before any VM starts', () => {
    const missing = run(['--kernel', join(ws, 'no-such-linux'), '--', 'true']);
    assert.equal(missing.code, 3, missing.stderr);
    assert.match(missing.stderr, /--kernel .*no-such-linux: no such file or directory/);
    const notBuilt = run(['--kernel', ws, '--', 'true']);
    assert.equal(notBuilt.code, 3, notBuilt.stderr);
    assert.match(notBuilt.stderr, /neither a kernel tree .* nor a bzImage file/);
    const medium = run(['--kernel', TREE!, '--artifact', 'iso', '--', 'true']);
    assert.equal(medium.code, 2, medium.stderr);
    assert.match(medium.stderr, /--kernel with --artifact iso: a boot medium boots the kernel inside it/);
  });
});
