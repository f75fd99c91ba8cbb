/**
 * What an ephemeral run adds to the image, in two cpio archives. The hook payload is
 * appended to the image's initramfs at boot time (the kernel unpacks concatenated
 * archives in order, so nothing is rebuilt): the run hook and the reseed helper, the
 * same bytes for every run, so a snapshot taken while the hook waits serves them all.
 * The run archive travels in the run request (run-hook.ts) after ready: the command
 * script and `--mount`ed host files.
 */
import { statSync } from 'node:fs';
import { checkPrepareScript } from '../guest/checks.js';
import { reseedElf } from '../guest/reseed-elf.js';
import {
  PREPARE_PATH,
  RESEED_PATH,
  RUN_CMD_PATH,
  RUN_HOOK_PATH,
  type RunCommand,
  runCommandScript,
  runHook,
} from '../guest/run-hook.js';
import { writeCpio } from '../image/cpio.js';
import { makeReproducible } from '../rootfs/reproducible.js';
import {
  addEntry,
  type EntrySource,
  ensureParents,
  mk,
  newTree,
  normalizePath,
  type Tree,
} from '../rootfs/tree.js';
import { readHostDir, readHostFile } from '../sources/host-files.js';
import { KjxError } from '../util/errors.js';

export interface Mount {
  host: string;
  guest: string;
}

/** Parse `HOST:GUEST` (GUEST absolute). */
export function parseMount(s: string): Mount {
  const at = s.lastIndexOf(':');
  const host = s.slice(0, at);
  const guest = s.slice(at + 1);
  if (at <= 0 || !guest.startsWith('/')) {
    throw new KjxError('USAGE', `--mount ${s}: expected HOST:GUEST with an absolute guest path`, {
      hint: 'for example --mount ./data:/data',
    });
  }
  return { host, guest: normalizePath(guest) };
}

/**
 * Host files and directories as a tree at their guest paths (what `--mount` and a
 * Guest's `copyIn` send): modes as on the host, owned by root.
 */
export function mountTree(mounts: Mount[]): Tree {
  const tree = newTree();
  for (const m of mounts) {
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(m.host);
    } catch {
      throw new KjxError('INPUT_NOT_FOUND', `--mount: ${m.host} does not exist`);
    }
    if (st.isDirectory())
      for (const e of readHostDir(m.host, m.guest, m.host).values()) addEntry(tree, { ...e, override: true });
    else
      addEntry(tree, {
        ...mk.file(
          m.guest,
          readHostFile(m.host, '--mount'),
          { kind: 'input', ref: m.host },
          st.mode & 0o7777,
        ),
        override: true,
      });
  }
  return tree;
}

/** A file the payload carries besides the hook and the command. */
export interface PayloadFile {
  path: string;
  data: string | Buffer;
  mode: number;
}

/**
 * A tree as newc bytes to unpack over the image, leaving out the directories the
 * image has (see hookPayload); also the module overlay of a developer's kernel
 * (dev-kernel.ts).
 */
export function overlayArchive(tree: Tree, imagePaths: Set<string>, src: EntrySource, mtime: number): Buffer {
  ensureParents(tree, src);
  for (const [path, e] of tree) if (e.type === 'dir' && imagePaths.has(path)) tree.delete(path);
  return writeCpio(makeReproducible(tree, mtime));
}

/**
 * The hook payload (uncompressed newc; it is small): the run hook, the reseed helper
 * and, for `kjx test`, the preparations of the checks in `prepare` (checks.ts).
 * `imagePaths` are the paths the image already has: the payload leaves those
 * directories out, because the kernel applies an archive's mode and owner to a
 * directory that exists. Dated 0, so it is the same bytes for every run of a kjx
 * with the same preparations (and a snapshot saved with them is keyed by them).
 */
export function hookPayload(imagePaths: Set<string>, prepare: string[] = []): Buffer {
  const src: EntrySource = { kind: 'generated', by: 'kjx run' };
  const tree = newTree();
  addEntry(tree, mk.file(RUN_HOOK_PATH, runHook(), src, 0o755));
  addEntry(tree, mk.file(RESEED_PATH, reseedElf(), src, 0o755));
  if (prepare.length > 0) addEntry(tree, mk.file(PREPARE_PATH, checkPrepareScript(prepare), src, 0o644));
  return overlayArchive(tree, imagePaths, src, 0);
}

/**
 * One run's archive, unpacked at / by the hook: the command script, the `extra`
 * files and the mounts (as with the hook payload, directories the image has are left
 * out: busybox cpio too sets an existing directory's mode).
 */
export function runArchive(
  cmd: RunCommand,
  mounts: Mount[],
  imagePaths: Set<string>,
  extra: PayloadFile[] = [],
): Buffer {
  const src: EntrySource = { kind: 'generated', by: 'kjx run' };
  const tree = newTree();
  addEntry(tree, mk.file(RUN_CMD_PATH, runCommandScript(cmd), src, 0o755));
  for (const f of extra) addEntry(tree, mk.file(f.path, Buffer.from(f.data), src, f.mode));
  for (const e of mountTree(mounts).values()) addEntry(tree, e);
  // the archive is made per run and never kept: now is as good a date as any
  return overlayArchive(tree, imagePaths, src, Math.floor(Date.now() / 1000));
}

/** The initrd QEMU gets: the image's, zero-padded to 4 bytes, then the payload. */
export function appendPayload(initrd: Buffer, payload: Buffer): Buffer {
  const pad = (4 - (initrd.length % 4)) % 4;
  return Buffer.concat([initrd, Buffer.alloc(pad), payload]);
}
