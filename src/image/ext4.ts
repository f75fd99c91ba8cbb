/**
 * The ext4 root file system of a disk image, written without root.
 *
 * e2fsprogs 1.47.0 (Debian 12) fills a new file system from a directory
 * (`mke2fs -d`) but not from a tarball, and a directory written by an ordinary
 * user can hold neither other owners nor device nodes. So:
 *
 * 1. the Tree's files, directories, symlinks and hard links are staged in a
 *    scratch directory (modes the builder can read, owners whatever they are),
 *    never through a link (host-staging.ts);
 * 2. `mke2fs -t ext4 -d staging` writes them into the image at the partition's
 *    offset, with a fixed UUID, hash seed, label and `E2FSPROGS_FAKE_TIME` for
 *    the superblock and the directories it creates;
 * 3. one `debugfs -w` script then makes the inodes say what the Tree says:
 *    `mknod` for devices and fifos, `sif` for every entry's mode, uid, gid and
 *    times (mtime from the Tree, clamped to SOURCE_DATE_EPOCH by the
 *    reproducibility pass, rootfs/reproducible.ts; atime, ctime and crtime the same).
 *
 * mke2fs's own configuration is ours too (MKE2FS_CONFIG), so the features and
 * geometry do not depend on the host's /etc/mke2fs.conf. debugfs exits 0 even
 * when a command fails, so its stderr is checked line by line.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ReproducibleTree } from '../rootfs/reproducible.js';
import type { Tree, TreeEntry } from '../rootfs/tree.js';
import { KjxError } from '../util/errors.js';
import { run } from '../util/exec.js';
import { stageTreeOnHost } from './host-staging.js';

const TYPE_BITS: Record<Exclude<TreeEntry['type'], 'hardlink'>, number> = {
  file: 0o100000,
  dir: 0o040000,
  symlink: 0o120000,
  char: 0o020000,
  block: 0o060000,
  fifo: 0o010000,
};

/**
 * Our mke2fs.conf: ext4 features every Linux since 4.x and GRUB read
 * (no orphan_file, no metadata_csum_seed), 4 KiB blocks, 256-byte inodes.
 */
export const MKE2FS_CONF = `[defaults]
	base_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
	default_mntopts = acl,user_xattr
	enable_periodic_fsck = 0
	blocksize = 4096
	inode_size = 256
	inode_ratio = 16384
	reserved_ratio = 5.0
	lazy_itable_init = false
	lazy_journal_init = false

[fs_types]
	ext4 = {
		features = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
	}
`;

export interface Ext4Options {
  /** Image file the file system goes into (it must exist). */
  image: string;
  /** Byte offset of the partition. */
  offset: number;
  /** Size of the partition in bytes (the file system gets whole 4 KiB blocks of it). */
  size: number;
  /** The file system's tree; its epoch dates what mke2fs makes. */
  root: ReproducibleTree;
  uuid: string;
  hashSeed: string;
  label: string;
  workDir: string;
}

/** Quote a path for debugfs's command parser (double quotes; `""` is a literal quote). */
function dq(path: string): string {
  if (path.includes('\n') || path.includes('\0'))
    throw new KjxError(
      'TREE_INVALID',
      `${JSON.stringify(path)}: a newline in a path cannot go into ext4 here`,
    );
  return `"${path.replace(/"/g, '""')}"`;
}

function parentAndName(path: string): { parent: string; name: string } {
  const at = path.lastIndexOf('/');
  return { parent: at <= 0 ? '/' : path.slice(0, at), name: path.slice(at + 1) };
}

/**
 * The debugfs script that gives the staged file system the Tree's devices,
 * fifos, modes, owners and times. Pure; exported for tests.
 */
export function debugfsScript(image: ReproducibleTree): string {
  const lines: string[] = [];
  const entries = image.entries;
  for (const e of entries) {
    if (e.type === 'char' || e.type === 'block' || e.type === 'fifo') {
      const { parent, name } = parentAndName(e.path);
      lines.push(`cd ${dq(parent)}`);
      if (e.type === 'fifo') lines.push(`mknod ${dq(name)} p`);
      else if (e.major <= 0xffff && e.minor <= 0xffff)
        lines.push(`mknod ${dq(name)} ${e.type === 'char' ? 'c' : 'b'} ${e.major} ${e.minor}`);
      else {
        // debugfs's mknod stops at 65535; write the kernel's new_encode_dev() into i_block[1] ourselves
        const dev = ((e.minor & 0xff) | (e.major << 8) | ((e.minor & ~0xff) << 12)) >>> 0;
        lines.push(`mknod ${dq(name)} ${e.type === 'char' ? 'c' : 'b'} 0 0`);
        lines.push(`sif ${dq(name)} block[0] 0`, `sif ${dq(name)} block[1] ${dev}`);
      }
    }
  }
  lines.push('cd /');
  for (const e of entries) {
    if (e.type === 'hardlink') continue; // the inode's attributes come from the entry it links to
    const p = dq(e.path);
    lines.push(`sif ${p} mode 0${(TYPE_BITS[e.type] | e.mode).toString(8)}`);
    lines.push(`sif ${p} uid ${e.uid}`);
    lines.push(`sif ${p} gid ${e.gid}`);
    for (const t of ['atime', 'mtime', 'ctime', 'crtime']) lines.push(`sif ${p} ${t} @${e.mtime}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Bytes the tree needs on ext4 with 4 KiB blocks, before journal and metadata. */
export function ext4ContentBytes(tree: Tree): number {
  let n = 0;
  for (const e of tree.values()) {
    n += 256; // inode
    if (e.type === 'file') n += Math.ceil(e.data.length / 4096) * 4096;
    else if (e.type === 'dir') n += 4096;
    else if (e.type === 'symlink' && e.target.length >= 60) n += 4096;
  }
  return n;
}

export async function writeExt4(o: Ext4Options): Promise<void> {
  const staging = join(o.workDir, 'ext4-root');
  mkdirSync(staging, { recursive: true });
  stageTreeOnHost(o.root, staging);
  const conf = join(o.workDir, 'mke2fs.conf');
  writeFileSync(conf, MKE2FS_CONF);
  const env = {
    ...(process.env as Record<string, string>),
    MKE2FS_CONFIG: conf,
    E2FSPROGS_FAKE_TIME: String(o.root.epoch),
    TZ: 'UTC',
  };
  const blocks = Math.floor(o.size / 4096);
  try {
    await run(
      'creating the ext4 root file system',
      'mke2fs',
      [
        '-q',
        '-F',
        '-t',
        'ext4',
        '-b',
        '4096',
        '-L',
        o.label,
        '-U',
        o.uuid,
        '-E',
        `hash_seed=${o.hashSeed},root_owner=0:0,offset=${o.offset}`,
        '-d',
        staging,
        o.image,
        String(blocks),
      ],
      { env },
    );
  } catch (e) {
    const text = e instanceof Error ? e.message : String(e);
    if (/Could not allocate block|No space left|Could not allocate inode/i.test(text)) {
      throw new KjxError(
        'DISK_TOO_SMALL',
        `the root file system (${(o.size / 2 ** 20).toFixed(0)} MiB) is too small for the image's files`,
        { hint: 'give a larger `disk.size` in kjx.yaml', cause: e },
      );
    }
    throw e;
  }
  const script = join(o.workDir, 'debugfs.cmds');
  writeFileSync(script, debugfsScript(o.root));
  const r = await run(
    'setting owners, modes and device nodes in ext4',
    'debugfs',
    ['-w', '-f', script, `${o.image}?offset=${o.offset}`],
    { env },
  );
  const problems = r.stderr
    .split('\n')
    .filter((l) => l.trim() !== '' && !/^debugfs \d+\.\d+/.test(l) && !/^Allocated inode: \d+$/.test(l));
  if (problems.length > 0) {
    throw new KjxError(
      'SUBPROCESS',
      `setting owners and modes in ext4: debugfs said:\n${problems.slice(0, 12).join('\n')}`,
    );
  }
}
