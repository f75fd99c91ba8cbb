/** The media part of the QEMU argv builder: CD-ROM and disk boots, SeaBIOS and OVMF. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { vmMediaFor } from '../../src/vm/boot-media.js';
import { findOvmf } from '../../src/vm/firmware.js';
import { qemuArgv, type VmConfig } from '../../src/vm/qemu-args.js';
import { kjxError } from '../helpers/kjx-error.js';

const base: VmConfig = {
  accel: 'tcg',
  memoryMiB: 512,
  cpus: 1,
  kernel: '',
  cmdline: '',
  console: { kind: 'stdio' },
};

function after(argv: string[], flag: string): string[] {
  return argv.flatMap((a, i) => (a === flag ? [argv[i + 1]!] : []));
}

test('an ISO as a CD-ROM: read-only, first in the boot order, no -kernel', () => {
  const argv = qemuArgv({ ...base, media: { kind: 'cdrom', path: '/d/kjx.iso', format: 'raw' } });
  assert.deepEqual(after(argv, '-drive'), [
    'file=/d/kjx.iso,if=none,id=boot0,media=cdrom,readonly=on,format=raw',
  ]);
  assert.deepEqual(after(argv, '-device').slice(0, 1), ['ide-cd,drive=boot0,bootindex=0']);
  for (const f of ['-kernel', '-initrd', '-append', '-bios']) assert.ok(!argv.includes(f), f);
});

test('a qcow2 disk on virtio-blk with UEFI firmware', () => {
  const argv = qemuArgv({
    ...base,
    media: { kind: 'disk', path: '/d/a,b.qcow2', format: 'qcow2' },
    firmware: { kind: 'uefi', path: '/usr/share/ovmf/OVMF.fd' },
  });
  assert.deepEqual(after(argv, '-bios'), ['/usr/share/ovmf/OVMF.fd']);
  assert.deepEqual(after(argv, '-drive'), ['file=/d/a,,b.qcow2,if=none,id=boot0,format=qcow2']);
  assert.ok(after(argv, '-device').includes('virtio-blk-pci,drive=boot0,bootindex=0'));
});

test('a read-only raw disk (the isohybrid ISO booted as a disk)', () => {
  const argv = qemuArgv({
    ...base,
    media: { kind: 'disk', path: '/d/kjx.iso', format: 'raw', readonly: true },
  });
  assert.deepEqual(after(argv, '-drive'), ['file=/d/kjx.iso,if=none,id=boot0,format=raw,readonly=on']);
});

test('without media the direct kernel boot is unchanged', () => {
  const argv = qemuArgv({ ...base, kernel: '/d/vmlinuz', cmdline: 'quiet' });
  assert.deepEqual(after(argv, '-kernel'), ['/d/vmlinuz']);
  assert.ok(!argv.includes('-drive'));
});

test('findOvmf: the first firmware file that exists, or HOST_TOOL_MISSING naming the package', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kjx-ovmf-'));
  try {
    const fd = join(dir, 'OVMF.fd');
    writeFileSync(fd, 'x');
    assert.equal(findOvmf([join(dir, 'missing.fd'), fd]), fd);
    assert.throws(
      () => findOvmf([join(dir, 'missing.fd')]),
      kjxError('HOST_TOOL_MISSING', { hint: /apt-get install ovmf/ }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('vmMediaFor picks the medium from the bytes, whatever the file is called', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kjx-media-'));
  try {
    const iso = Buffer.alloc(0x9000);
    iso.write('CD001', 0x8001, 'latin1');
    const file = (name: string, data: Buffer) => {
      writeFileSync(join(dir, name), data);
      return join(dir, name);
    };
    const a = file('a.bin', iso);
    assert.deepEqual(vmMediaFor(a), { kind: 'cdrom', path: a, format: 'raw' });
    assert.deepEqual(vmMediaFor(a, 'disk'), { kind: 'disk', path: a, format: 'raw', readonly: true });
    const q = file('b.bin', Buffer.from('QFI\xfb\0\0\0\x03', 'latin1'));
    assert.equal(vmMediaFor(q).format, 'qcow2');
    const v = file('c.bin', Buffer.from('KDMV\x01\0\0\0', 'latin1'));
    assert.equal(vmMediaFor(v).format, 'vmdk');
    const mbr = Buffer.alloc(1024);
    mbr.writeUInt16LE(0xaa55, 510);
    const r = file('d.bin', mbr);
    assert.deepEqual(vmMediaFor(r), { kind: 'disk', path: r, format: 'raw' });
    assert.throws(() => vmMediaFor(r, 'cdrom'), /not an ISO/);
    assert.throws(() => vmMediaFor(file('e.txt', Buffer.from('hello'))), kjxError('ARTIFACT_UNKNOWN'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('kjx run with a medium: the disk under snapshot=on, the payload as a fw_cfg file', () => {
  const argv = qemuArgv({
    ...base,
    media: { kind: 'disk', path: '/d/kjx.img', format: 'raw', snapshot: true },
    fwCfg: [{ name: 'opt/kjx/run.cpio', file: '/run/a,b/run.cpio' }],
  });
  assert.deepEqual(after(argv, '-drive'), ['file=/d/kjx.img,if=none,id=boot0,format=raw,snapshot=on']);
  assert.deepEqual(after(argv, '-fw_cfg'), ['name=opt/kjx/run.cpio,file=/run/a,,b/run.cpio']);
  assert.deepEqual(after(qemuArgv(base), '-fw_cfg'), []);
});
