/**
 * Which VmMedia boots an artifact: the ISO as a CD-ROM (or, asked for, as a
 * disk: it is isohybrid), raw/qcow2/vmdk as a disk. Decided from the bytes, not
 * the file name, so a renamed artifact still boots the right way. For
 * `kjx boot|run --artifact`.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { KjxError } from '../util/errors.js';
import type { VmMedia } from './qemu-args.js';

/** The medium for an artifact file; `as: 'disk'` attaches an ISO as a disk instead of a CD. */
export function vmMediaFor(path: string, as?: 'cdrom' | 'disk'): VmMedia {
  const head = Buffer.alloc(0x8006);
  let n: number;
  try {
    const fd = openSync(path, 'r');
    try {
      n = readSync(fd, head, 0, head.length, 0);
    } finally {
      closeSync(fd);
    }
  } catch (cause) {
    throw new KjxError('USAGE', `cannot read ${path}`, {
      cause,
      hint: 'give the path of an artifact kjx built',
    });
  }
  const b = head.subarray(0, n);
  if (b.length >= 0x8006 && b.toString('latin1', 0x8001, 0x8006) === 'CD001') {
    return as === 'disk'
      ? { kind: 'disk', path, format: 'raw', readonly: true }
      : { kind: 'cdrom', path, format: 'raw' };
  }
  if (as === 'cdrom')
    throw new KjxError('USAGE', `${path} is not an ISO image; only an ISO boots as a CD-ROM`);
  if (b.toString('latin1', 0, 4) === 'QFI\xfb') return { kind: 'disk', path, format: 'qcow2' };
  if (b.toString('latin1', 0, 4) === 'KDMV') return { kind: 'disk', path, format: 'vmdk' };
  if (b.length >= 512 && b[510] === 0x55 && b[511] === 0xaa) return { kind: 'disk', path, format: 'raw' };
  throw new KjxError('ARTIFACT_UNKNOWN', `${path} is not a bootable medium (ISO, raw, qcow2 or vmdk disk)`, {
    hint: 'build one with `outputs: [iso]` or `[raw]`, `[qcow2]`, `[vmdk]` in kjx.yaml',
  });
}
