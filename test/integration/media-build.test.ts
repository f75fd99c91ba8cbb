/**
 * Media outputs end to end, without booting: every format built by an ordinary
 * user (uid 65534 when the tests run as root) from real Debian packages, read
 * back by `kjx inspect` as an ordinary user, rebuilt elsewhere byte for byte,
 * compared with `kjx diff`, and bad inputs refused with clear errors.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { KJX, removeAll } from '../helpers/kjx.js';
import { buildAs, copyProject, kjxAsNobody, mediaProject, sha256Of } from '../helpers/media.js';

const OUTPUTS = ['initramfs', 'iso', 'raw', 'qcow2', 'vmdk', 'tar'];
const ARTIFACTS = ['initramfs.cpio.gz', 'kjx.iso', 'kjx.img', 'kjx.qcow2', 'kjx.vmdk', 'kjx.tar'];
const MOTD = `
files:
  - path: /etc/motd
    content: "one more file\\n"
`;

interface Entry {
  path: string;
  type: string;
  mode: string;
  uid: number;
  gid: number;
  user?: string;
  group?: string;
  device?: string;
}

describe('media outputs built as an ordinary user', () => {
  let ws: string;
  const cleanup: string[] = [];
  const dist = (name: string) => join(ws, 'dist', name);

  before(() => {
    ws = mediaProject('media', OUTPUTS);
    cleanup.push(dirname(ws));
    const r = buildAs(ws, { nobody: true });
    cleanup.push(r.cache);
    assert.equal(r.code, 0, `kjx build failed:\n${r.stderr}`);
  });
  after(() => removeAll(...cleanup));

  test('writes every format, owned by the builder, listed in the manifest', () => {
    const manifest = JSON.parse(readFileSync(dist('manifest.json'), 'utf8'));
    assert.deepEqual(
      manifest.artifacts.map((a: { name: string }) => a.name),
      ['vmlinuz', ...ARTIFACTS],
    );
    for (const a of manifest.artifacts) assert.equal(statSync(dist(a.name)).size, a.size, a.name);
    if (process.getuid?.() === 0) assert.equal(statSync(dist('kjx.img')).uid, 65534, 'built as nobody');
    assert.equal(statSync(dist('kjx.img')).size, 256 * 1024 * 1024, 'disk.size');
  });

  test('qemu-img info reports qcow2 and vmdk, and finds nothing wrong in them', () => {
    for (const [file, format] of [
      ['kjx.qcow2', 'qcow2'],
      ['kjx.vmdk', 'vmdk'],
      ['kjx.img', 'raw'],
    ]) {
      const info = JSON.parse(
        spawnSync('qemu-img', ['info', '--output=json', dist(file!)], { encoding: 'utf8' }).stdout,
      );
      assert.equal(info.format, format);
      assert.equal(info['virtual-size'], 256 * 1024 * 1024);
    }
    const check = spawnSync('qemu-img', ['check', dist('kjx.qcow2')], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stdout + check.stderr);
  });

  test('the raw disk: a sound GPT (sfdisk) with a clean ext4 root (e2fsck)', () => {
    const verify = spawnSync('sfdisk', ['--verify', dist('kjx.img')], { encoding: 'utf8' });
    assert.match(verify.stdout, /No errors detected/, verify.stdout + verify.stderr);
    const j = JSON.parse(spawnSync('sfdisk', ['--json', dist('kjx.img')], { encoding: 'utf8' }).stdout);
    const parts = j.partitiontable.partitions as { start: number; size: number; type: string }[];
    assert.deepEqual(
      parts.map((p) => p.type),
      [
        '21686148-6449-6E6F-744E-656564454649',
        'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
        '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709',
      ],
    );
    const root = parts[2]!;
    const fs = join(dirname(ws), 'root.ext4');
    cleanup.push(fs);
    const dd = spawnSync('dd', [
      `if=${dist('kjx.img')}`,
      `of=${fs}`,
      'bs=512',
      `skip=${root.start}`,
      `count=${root.size}`,
      'status=none',
    ]);
    assert.equal(dd.status, 0);
    const fsck = spawnSync('e2fsck', ['-fn', fs], { encoding: 'utf8' });
    assert.equal(fsck.status, 0, fsck.stdout + fsck.stderr);
    rmSync(fs);
  });

  for (const artifact of ARTIFACTS) {
    test(`kjx inspect ${artifact} as an ordinary user: root-owned /etc/passwd 0644, /dev/console, /sbin/runit`, () => {
      const r = kjxAsNobody(['inspect', '--json', dist(artifact)], ws);
      assert.equal(r.code, 0, r.stderr);
      const j = JSON.parse(r.stdout) as { format: string; entries: Entry[] };
      const at = (p: string) => j.entries.find((e) => e.path === p);
      assert.deepEqual(
        [at('/etc/passwd')?.type, at('/etc/passwd')?.mode, at('/etc/passwd')?.user, at('/etc/passwd')?.group],
        ['file', '0644', 'root', 'root'],
      );
      assert.deepEqual(
        [at('/dev/console')?.type, at('/dev/console')?.device, at('/dev/console')?.uid],
        ['char', '5:1', 0],
      );
      assert.equal(at('/sbin/runit')?.type, 'file');
      assert.equal(at('/tmp')?.mode, '01777');
      const notRoot = j.entries.filter((e) => e.uid !== 0 || e.gid !== 0).map((e) => e.path);
      assert.deepEqual(notRoot, [], 'every file of the default image is root-owned');
    });
  }

  test('kjx inspect PATH prints the file from inside a disk image, text listing shows ls-style lines', () => {
    const r = kjxAsNobody(['inspect', dist('kjx.vmdk'), '/etc/hostname'], ws);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'kjx\n');
    const l = kjxAsNobody(['inspect', dist('kjx.iso')], ws);
    assert.match(l.stdout, /^-rw-r--r-- root +root +\d+ \/etc\/passwd$/m);
    assert.match(l.stdout, /^crw------- root +root +5, 1 \/dev\/console$/m);
  });

  test('kjx inspect piped into head: an early close of the pipe is no error', () => {
    const r = spawnSync(
      'bash',
      [
        '-c',
        `set -o pipefail; "${process.execPath}" "${KJX}" inspect "${dist('kjx.img')}" /bin/busybox | head -c 4`,
      ],
      {
        encoding: 'latin1',
      },
    );
    assert.equal(r.stdout, '\x7fELF');
    assert.equal(r.stderr, '', 'nothing on stderr (an unhandled EPIPE crashed here once)');
    assert.equal(r.status, 0);
  });

  test('the same project built again elsewhere (as root, another TZ, cold cache): byte-identical ISO, tar and disks', async () => {
    const again = copyProject(ws, 'media-again');
    cleanup.push(dirname(again));
    const r = buildAs(again, { nobody: false, env: { TZ: 'Pacific/Kiritimati' }, out: 'out' });
    cleanup.push(r.cache);
    assert.equal(r.code, 0, r.stderr);
    for (const a of ['kjx.iso', 'kjx.tar', 'kjx.img', 'kjx.qcow2', 'kjx.vmdk']) {
      assert.equal(
        await sha256Of(join(again, 'out', a)),
        await sha256Of(dist(a)),
        `${a} differs between builds`,
      );
    }
  });

  test('kjx diff of two builds that differ by one files: entry shows exactly that change, in every format', () => {
    const other = copyProject(ws, 'media-motd');
    cleanup.push(dirname(other));
    writeFileSync(
      join(other, 'kjx.yaml'),
      readFileSync(join(other, 'kjx.yaml'), 'utf8').replace(/^files: \[\]$/m, '') + MOTD,
    );
    const r = buildAs(other, { nobody: true });
    cleanup.push(r.cache);
    assert.equal(r.code, 0, r.stderr);
    for (const a of ['kjx.img', 'kjx.iso', 'kjx.tar', 'kjx.qcow2']) {
      const d = kjxAsNobody(['diff', '--json', dist(a), join(other, 'dist', a)], ws);
      assert.equal(d.code, 1, `diff exits 1 when there are differences: ${d.stderr}`);
      const j = JSON.parse(d.stdout);
      assert.deepEqual([j.added, j.removed, j.changed], [['/etc/motd'], [], []], a);
      assert.ok(j.buildIdOnly.includes('/etc/os-release'), 'the build id files are set apart');
    }
    const text = kjxAsNobody(['diff', dist('kjx.tar'), join(other, 'dist', 'kjx.tar')], ws);
    assert.match(text.stdout, /^\+ \/etc\/motd {2}\(file 0644 0:0\)$/m);
    assert.match(text.stdout, /^1 added, 0 removed, 0 changed; \d+ more differ only by the build id/m);
    // the build directories compare through their initramfs
    const dirs = kjxAsNobody(['diff', '--json', join(ws, 'dist'), join(other, 'dist')], ws);
    assert.deepEqual(JSON.parse(dirs.stdout).added, ['/etc/motd']);
  });

  test('one build in two formats is the same tree: kjx diff tar disk finds nothing', () => {
    const d = kjxAsNobody(['diff', dist('kjx.tar'), dist('kjx.vmdk')], ws);
    assert.equal(d.code, 0, d.stdout + d.stderr);
    assert.match(d.stdout, /^0 added, 0 removed, 0 changed$/m);
    const iso = kjxAsNobody(['diff', dist('kjx.iso'), dist('initramfs.cpio.gz')], ws);
    assert.equal(iso.code, 0, iso.stdout);
  });

  describe('bad input: a clear error, exit status 5, no stack trace', () => {
    const bad = (name: string, data: Buffer): string => {
      const p = join(dirname(ws), name);
      writeFileSync(p, data);
      spawnSync('chmod', ['a+r', p]);
      return p;
    };
    const expectError = (path: string, re: RegExp) => {
      const r = kjxAsNobody(['inspect', path], ws);
      assert.equal(r.code, 5, r.stderr);
      assert.match(r.stderr, re);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      assert.doesNotMatch(r.stderr, /internal error/i);
    };

    test('an artifact of unknown format', () => {
      expectError(join(ws, 'kjx.yaml'), /kjx\.yaml: is not in a format kjx reads\n {2}hint: kjx reads cpio/);
    });

    test('a truncated ISO', () => {
      const iso = readFileSync(dist('kjx.iso'));
      expectError(bad('truncated.iso', iso.subarray(0, Math.floor(iso.length * 0.6))), /truncated/);
    });

    test('a disk image whose partition table is corrupt', () => {
      const head = Buffer.from(readFileSync(dist('kjx.img')).subarray(0, 4 * 1024 * 1024));
      head.fill(0x5a, 512 + 16, 512 + 80); // primary GPT header
      const p = bad('corrupt.img', head); // and, cut short, no backup at the end
      expectError(p, /corrupt GPT: GPT header at LBA 1 fails its CRC32 check/);
    });
  });
});
