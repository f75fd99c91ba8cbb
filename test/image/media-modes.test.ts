/**
 * Artifacts that hold a private key are written 0600 (src/image/media.ts): the
 * formats made of a tree with `ssh.hostKeyFiles` in it, and disk images always
 * (their first boot stores the generated host keys in them).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DISK_FORMATS, MEDIA_FORMATS, mediaFileMode, writeMedia } from '../../src/image/media.js';
import { makeReproducible } from '../../src/rootfs/reproducible.js';
import { mk, newTree } from '../../src/rootfs/tree.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test('mediaFileMode: 0600 for disks and for whatever holds a private key, 0644 otherwise', () => {
  for (const f of MEDIA_FORMATS) {
    assert.equal(mediaFileMode(f, true), 0o600, f);
    assert.equal(mediaFileMode(f, false), DISK_FORMATS.includes(f) ? 0o600 : 0o644, f);
  }
});

test('the rootfs tar of a tree holding a host key is written 0600, without one 0644', async () => {
  const src = { kind: 'generated', by: 'test' } as const;
  const tree = newTree();
  tree.set('/etc', mk.dir('/etc', src));
  tree.set('/etc/dropbear', mk.dir('/etc/dropbear', src, 0o700));
  tree.set('/etc/dropbear/given_host_key_0', mk.file('/etc/dropbear/given_host_key_0', 'secret', src, 0o600));
  for (const holdsPrivateKey of [true, false]) {
    const outDir = mkdtempSync(join(tmpdir(), 'kjx-modes-'));
    dirs.push(outDir);
    const [tar] = await writeMedia({
      name: 'm',
      version: '1',
      buildId: 'abc123def456',
      formats: ['tar'],
      image: makeReproducible(tree, 0),
      vmlinuz: Buffer.alloc(0),
      initramfs: Buffer.alloc(0),
      initramfsName: 'initramfs.cpio.gz',
      cmdline: '',
      diskSize: 0,
      grubDebs: new Map(),
      outDir,
      workDir: join(outDir, 'work'),
      holdsPrivateKey,
    });
    assert.equal(statSync(tar!.path).mode & 0o777, holdsPrivateKey ? 0o600 : 0o644);
  }
});
