/**
 * FAT file systems (the EFI system partition of a disk, the El Torito EFI image
 * of an ISO) through mtools, which writes into an image file at an offset
 * without mounting anything or needing root.
 *
 * Reproducible: a fixed volume serial number and label, every timestamp at
 * SOURCE_DATE_EPOCH (mtools honours it for what it creates, and `mcopy -m` keeps
 * the mtime we set on the source files), TZ=UTC because FAT stores local time,
 * and no user or system mtools configuration.
 */
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { run } from '../util/exec.js';

export interface FatFile {
  /** Absolute path inside the file system, e.g. "/EFI/BOOT/BOOTX64.EFI". */
  path: string;
  data: Buffer;
}

export interface MakeFatOptions {
  /** Image file (must exist and be large enough). */
  image: string;
  /** Byte offset of the file system in the image (a partition's start). */
  offset: number;
  /** Size of the file system in 512-byte sectors. */
  sectors: number;
  /** Up to 11 characters. */
  label: string;
  /** 32-bit volume serial number. */
  serial: number;
  /** FAT32 (an ESP on a disk) or let mformat choose by size (small El Torito images). */
  fat32: boolean;
  files: FatFile[];
  epoch: number;
  /** Scratch directory for the source files. */
  workDir: string;
}

function env(epoch: number): Record<string, string> {
  return {
    ...(process.env as Record<string, string>),
    SOURCE_DATE_EPOCH: String(epoch),
    TZ: 'UTC',
    MTOOLSRC: '/dev/null',
    MTOOLS_SKIP_CHECK: '1',
    LC_ALL: 'C',
  };
}

/** Format a FAT file system in `image` at `offset` and copy `files` into it. */
export async function makeFat(o: MakeFatOptions): Promise<void> {
  const target = `${o.image}@@${o.offset}`;
  const e = env(o.epoch);
  await run(
    'formatting the FAT file system',
    'mformat',
    [
      '-i',
      target,
      ...(o.fat32 ? ['-F'] : []),
      '-T',
      String(o.sectors),
      '-h',
      '64',
      '-s',
      '32',
      '-H',
      String(o.offset / 512),
      '-N',
      o.serial.toString(16).padStart(8, '0'),
      '-v',
      o.label,
      '::',
    ],
    { env: e },
  );
  const dirs = new Set<string>();
  for (const f of o.files) {
    for (let d = posix.dirname(f.path); d !== '/'; d = posix.dirname(d)) dirs.add(d);
  }
  const sortedDirs = [...dirs].sort((a, b) => a.split('/').length - b.split('/').length || (a < b ? -1 : 1));
  if (sortedDirs.length > 0)
    await run('creating FAT directories', 'mmd', ['-i', target, ...sortedDirs.map((d) => `::${d}`)], {
      env: e,
    });
  const staged = join(o.workDir, `fat-${o.offset}`);
  for (const f of [...o.files].sort((a, b) => (a.path < b.path ? -1 : 1))) {
    const src = join(staged, f.path);
    mkdirSync(dirname(src), { recursive: true });
    writeFileSync(src, f.data);
    utimesSync(src, o.epoch, o.epoch);
    await run(
      `copying ${f.path} into the FAT file system`,
      'mcopy',
      ['-i', target, '-m', src, `::${f.path}`],
      {
        env: e,
      },
    );
  }
}
