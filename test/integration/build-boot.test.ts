/**
 * The foundation end to end: `kjx build` of the default spec from real Debian
 * packages, booted in real QEMU (TCG); reproducibility across checkouts; a build
 * as an ordinary user checked with GNU cpio; the dropbear library closure.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import {
  bootBuilt,
  coldCacheWithDebs,
  KJX,
  keepProjectKeyPrivate,
  kjxForOtherUsers,
  REPO,
  removeAll,
  runKjx,
  workspace,
} from '../helpers/kjx.js';

const sha = (p: string) => spawnSync('sha256sum', [p], { encoding: 'utf8' }).stdout.split(' ')[0];

describe('kjx build of the default spec', () => {
  let ws: string;
  const cleanup: string[] = [];

  before(() => {
    ws = workspace('default');
    cleanup.push(ws);
    const r = runKjx(['build'], { cwd: ws });
    assert.equal(r.code, 0, `kjx build failed:\n${r.stderr}`);
  });
  after(() => removeAll(...cleanup));

  test('writes vmlinuz, initramfs.cpio.gz, manifest.json and a table of them', () => {
    const manifest = JSON.parse(readFileSync(join(ws, 'dist', 'manifest.json'), 'utf8'));
    assert.deepEqual(
      manifest.artifacts.map((a: { name: string }) => a.name),
      ['vmlinuz', 'initramfs.cpio.gz'],
    );
    const paths = manifest.files.map((f: { path: string }) => f.path);
    for (const p of [
      '/init',
      '/bin/busybox',
      '/bin/sh',
      '/sbin/runit',
      '/usr/bin/runsvdir',
      '/usr/sbin/dropbear',
      '/dev/console',
    ]) {
      assert.ok(paths.includes(p), `${p} missing from the manifest`);
    }
    const lock = JSON.parse(readFileSync(join(ws, 'kjx.lock'), 'utf8'));
    assert.ok(lock.packages.busybox.sha256.match(/^[0-9a-f]{64}$/));
    assert.match(lock.kernel.name, /^linux-image-\d/);
  });

  test('an image with dropbear carries its whole library closure, libgmp.so.10 included', () => {
    const manifest = JSON.parse(readFileSync(join(ws, 'dist', 'manifest.json'), 'utf8'));
    const byPath = new Map(manifest.files.map((f: { path: string }) => [f.path, f]));
    for (const lib of [
      'libgmp.so.10',
      'libtomcrypt.so.1',
      'libtommath.so.1',
      'libz.so.1',
      'libcrypt.so.1',
      'libc.so.6',
    ]) {
      const hit = [...byPath.keys()].find((p) => (p as string).endsWith(`/${lib}`));
      assert.ok(hit, `${lib} is not in the image`);
    }
    assert.ok(byPath.has('/lib64/ld-linux-x86-64.so.2'), 'the ELF interpreter is not in the image');
  });

  test('boots in QEMU (TCG) to the guest marker, with the modules loaded', async () => {
    const vm = bootBuilt(ws);
    try {
      const ready = await vm.waitForMarker('ready', 90_000);
      const manifest = JSON.parse(readFileSync(join(ws, 'dist', 'manifest.json'), 'utf8'));
      assert.equal(ready.fields.build, manifest.buildId);
      assert.equal(ready.fields.kernel, manifest.kernel.version);
      vm.write('grep -c . /proc/modules; cat /etc/hostname; echo @@end\n');
      await vm.waitForLine(/^@@end/, 30_000);
      const out = vm.console();
      assert.match(out, /^kjx\r?$/m, 'hostname file');
      assert.doesNotMatch(out, /failed to load kernel modules/);
      assert.match(out, /^1[0-9]\r?$/m, 'number of loaded modules');
    } finally {
      await vm.stop();
    }
    assert.notEqual(vm.pid, -1);
    assert.throws(() => process.kill(vm.pid, 0), 'QEMU is still running');
  });

  test('a second build with nothing changed does no work', () => {
    const r = runKjx(['build', '--json'], { cwd: ws });
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout);
    assert.equal(res.noop, true);
  });

  test('two builds from two checkout paths, at different times, give byte-identical initramfs', () => {
    // a second copy of kjx itself at another path, a second project dir, a cold cache
    const other = mkdtempSync(join(tmpdir(), 'kjx-checkout-'));
    cleanup.push(other);
    for (const d of ['bin', 'src', 'package.json'])
      cpSync(join(REPO, d), join(other, d), { recursive: true });
    symlinkSync(join(REPO, 'node_modules'), join(other, 'node_modules'));
    const ws2 = mkdtempSync(join(tmpdir(), 'kjx-second-project-'));
    cleanup.push(ws2);
    cpSync(join(ws, 'kjx.yaml'), join(ws2, 'kjx.yaml'));
    cpSync(join(ws, 'kjx.lock'), join(ws2, 'kjx.lock'));
    // the project SSH key is an input like the lock: its public half is authorized in the image
    cpSync(join(ws, '.kjx', 'ssh'), join(ws2, '.kjx', 'ssh'), { recursive: true });
    const cache = coldCacheWithDebs();
    cleanup.push(cache);
    const r = spawnSync(process.execPath, [join(other, 'bin', 'kjx.js'), 'build', '-o', 'out'], {
      cwd: ws2,
      encoding: 'utf8',
      env: { ...process.env, CI: '1', KJX_CACHE_DIR: cache, TZ: 'Pacific/Kiritimati' },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(sha(join(ws2, 'out', 'initramfs.cpio.gz')), sha(join(ws, 'dist', 'initramfs.cpio.gz')));
    assert.equal(sha(join(ws2, 'out', 'manifest.json')), sha(join(ws, 'dist', 'manifest.json')));
  });

  test('built as an ordinary user, GNU cpio shows root-owned files, right modes and /dev/console c 5,1', (t) => {
    let uidArgs: string[] = [];
    if (process.getuid?.() === 0) {
      // as root, drop to nobody for the whole build
      uidArgs = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'];
    } else t.diagnostic('already an ordinary user');
    const base = mkdtempSync(join(tmpdir(), 'kjx-nonroot-'));
    cleanup.push(base);
    chmodSync(base, 0o777);
    const ws3 = join(base, 'project');
    cpSync(ws, ws3, { recursive: true, filter: (src) => !src.includes('/dist') });
    const cache = coldCacheWithDebs();
    cleanup.push(cache);
    spawnSync('chmod', ['-R', 'a+rwX', base, cache]);
    keepProjectKeyPrivate(ws3, uidArgs.length ? 65534 : undefined);
    const argv = [
      ...uidArgs,
      process.execPath,
      uidArgs.length ? kjxForOtherUsers() : KJX,
      'build',
      '-o',
      'dist',
    ];
    const r = spawnSync(argv[0]!, argv.slice(1), {
      cwd: ws3,
      encoding: 'utf8',
      env: { ...process.env, CI: '1', KJX_CACHE_DIR: cache, HOME: base },
    });
    assert.equal(r.status, 0, `non-root build failed: ${r.stderr}`);
    const owner = spawnSync('stat', ['-c', '%u', join(ws3, 'dist', 'initramfs.cpio.gz')], {
      encoding: 'utf8',
    }).stdout.trim();
    if (uidArgs.length) assert.equal(owner, '65534', 'the build did not run as nobody');
    const cpioFile = join(base, 'initramfs.cpio');
    writeFileSync(cpioFile, gunzipSync(readFileSync(join(ws3, 'dist', 'initramfs.cpio.gz'))));
    const list = spawnSync('sh', ['-c', `cpio -itv --quiet < ${cpioFile}`], { encoding: 'utf8' });
    assert.equal(list.status, 0, list.stderr);
    const lines = list.stdout.trim().split('\n');
    const line = (name: string) => lines.find((l) => l.endsWith(` ${name}`) || l.includes(` ${name} -> `));
    assert.match(line('dev/console') ?? '', /^crw------- +1 root +root +5, +1 /);
    assert.match(line('etc/passwd') ?? '', /^-rw-r--r-- +1 root +root /);
    assert.match(line('etc/shadow') ?? '', /^-rw------- +1 root +root /);
    assert.match(line('init') ?? '', /^-rwxr-xr-x +1 root +root /);
    assert.match(line('tmp') ?? '', /^drwxrwxrwt /);
    assert.match(line('bin/sh') ?? '', /^lrwxrwxrwx +1 root +root .* bin\/sh -> busybox$/);
    const notRoot = lines.filter((l) => !/^\S+ +\d+ root +root /.test(l));
    assert.deepEqual(notRoot, [], 'entries not owned by root');
  });
});
