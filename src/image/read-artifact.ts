/**
 * Open any artifact kjx writes (or a build's manifest) for `kjx inspect` and
 * `kjx diff`, without mounting and without root: recognize the format from its
 * bytes, then read the guest's root file system out of it.
 *
 *   cpio (plain, gzip, zstd, xz)  the initramfs itself
 *   tar (plain or compressed)     the rootfs tarball
 *   container image archive       its layers applied (docker save / OCI layout, oci-reader.ts)
 *   ISO 9660                      the initramfs the ISO boots (/boot/initramfs.cpio*)
 *   raw disk (GPT or MBR)         the ext4 root partition
 *   qcow2, vmdk                   converted to a temporary raw image by qemu-img
 *   ext4                          a bare file system image
 *   manifest.json, a build dir    the manifest's file list (no contents), or the
 *                                 dir's initramfs when there is one
 *
 * Unknown or damaged input is a KjxError (ARTIFACT_UNKNOWN, ARTIFACT_INVALID,
 * CPIO_INVALID) that names the file; nothing else escapes.
 *
 * An artifact may come from anyone: everything read out of it (decompressed
 * streams, file contents, entries) is charged to one budget per file
 * (util/budget.ts), by default proportional to the bytes the file occupies on
 * disk, so a bomb or forged sizes are refused before the memory is taken.
 */
import {
  closeSync,
  existsSync,
  fstatSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { Tree } from '../rootfs/tree.js';
import { parseTar } from '../sources/tar.js';
import { isInitramfsFileName, MANIFEST_FILE } from '../spec/outputs.js';
import { type Budget, charge, defaultBudget, newBudget } from '../util/budget.js';
import { type Compression, decompressAny, detectCompression } from '../util/compression.js';
import { isKjxError, KjxError } from '../util/errors.js';
import { run } from '../util/exec.js';
import { type ByteSource, pastEnd, sliceSource } from './byte-source.js';
import { cpioToTree, readCpio } from './cpio.js';
import { qcow2Problem, vmdkProblem } from './disk-container.js';
import { isExt4, readExt4 } from './ext4-reader.js';
import { hasMbrSignature, PART_TYPES, partitionTypeName, readPartitionTable, SECTOR } from './gpt.js';
import { isIso9660, readIso9660 } from './iso9660.js';
import type { Manifest, ManifestFile } from './manifest.js';
import { imageArchiveTree, isImageArchive } from './oci-reader.js';
import { tarToTree } from './tar-tree.js';

export type ArtifactFormat = 'cpio' | 'tar' | 'oci' | 'iso' | 'raw' | 'qcow2' | 'vmdk' | 'ext4' | 'manifest';

export interface LoadedArtifact {
  path: string;
  format: ArtifactFormat;
  /** Compression of a cpio or tar. */
  compression?: Compression;
  /** The guest's root file system; absent for a manifest. */
  tree?: Tree;
  /** The manifest's files, for a manifest. */
  manifestFiles?: ManifestFile[];
  /** The build id it carries (os-release BUILD_ID, or the manifest's). */
  buildId?: string;
  /** Format-specific facts: ISO volume and boot entries, partitions, file system. */
  details: Record<string, unknown>;
}

const unknownFormat = (path: string, what: string): KjxError =>
  new KjxError('ARTIFACT_UNKNOWN', `${path}: ${what}`, {
    hint: 'kjx reads cpio (initramfs), tar, ISO 9660, raw/qcow2/vmdk disk images, ext4 images and manifest.json',
  });

/** A ByteSource over an open file, read on demand. */
function fileSource(fd: number, size: number, name: string): ByteSource {
  return {
    size,
    name,
    read(offset, length) {
      if (offset < 0 || length < 0 || offset + length > size) throw pastEnd(name, offset, length, size);
      const b = Buffer.allocUnsafe(length);
      let got = 0;
      while (got < length) {
        const n = readSync(fd, b, got, length - got, offset + got);
        if (n === 0) throw pastEnd(name, offset, length, size);
        got += n;
      }
      return b;
    },
  };
}

/** The build id in /etc/os-release (BUILD_ID=...), if any. */
export function buildIdOf(tree: Tree): string | undefined {
  const e = tree.get('/etc/os-release');
  if (e?.type !== 'file') return undefined;
  const m = /^BUILD_ID="?([^"\n]*)"?$/m.exec(e.data.toString('utf8'));
  return m?.[1] || undefined;
}

async function fromArchiveBytes(
  path: string,
  data: Buffer,
  compression: Compression,
  budget: Budget,
): Promise<LoadedArtifact | undefined> {
  const source = { kind: 'input', ref: basename(path) } as const;
  const magic = data.toString('latin1', 0, 6);
  if (magic === '070701' || magic === '070702') {
    const tree = cpioToTree(readCpio(data, path, budget), source, budget);
    return {
      path,
      format: 'cpio',
      compression,
      tree,
      buildId: buildIdOf(tree),
      details: { entries: tree.size },
    };
  }
  if (data.length >= 512 && data.toString('latin1', 257, 262) === 'ustar') {
    let entries: ReturnType<typeof parseTar>;
    try {
      entries = parseTar(data, path);
    } catch (e) {
      if (isKjxError(e))
        throw new KjxError('ARTIFACT_INVALID', e.message, {
          cause: e,
          hint: 'the tar archive is truncated or damaged',
        });
      throw e;
    }
    if (isImageArchive(entries)) {
      const image = await imageArchiveTree(entries, path, source, { budget });
      return {
        path,
        format: 'oci',
        compression,
        tree: image.tree,
        buildId: buildIdOf(image.tree),
        details: { ...image.details, entries: image.tree.size },
      };
    }
    const tree = tarToTree(entries, path, source, budget);
    return {
      path,
      format: 'tar',
      compression,
      tree,
      buildId: buildIdOf(tree),
      details: { entries: tree.size },
    };
  }
  return undefined;
}

function loadManifest(path: string, text: string): LoadedArtifact {
  let m: Manifest;
  try {
    m = JSON.parse(text) as Manifest;
  } catch {
    throw unknownFormat(path, 'starts like JSON but is not valid JSON');
  }
  if (!m || !Array.isArray(m.files) || typeof m.buildId !== 'string')
    throw unknownFormat(path, 'is JSON but not a kjx manifest (no "files" and "buildId")');
  return {
    path,
    format: 'manifest',
    manifestFiles: m.files,
    buildId: m.buildId,
    details: { name: m.name, version: m.version, kernel: m.kernel?.version, entries: m.files.length },
  };
}

/** The ext4 root in a partitioned disk: the kjx root partition, else the first ext4 partition. */
function rootFromDisk(src: ByteSource, path: string, format: ArtifactFormat, budget: Budget): LoadedArtifact {
  const table = readPartitionTable(src);
  const parts = table.partitions.map((p, i) => ({ ...p, number: i + 1 }));
  const candidates = [
    ...parts.filter((p) => p.type === PART_TYPES.rootX86_64),
    ...parts.filter((p) => p.type === PART_TYPES.linuxData || p.type === 'mbr:0x83'),
    ...parts,
  ];
  for (const p of candidates) {
    const part = sliceSource(
      src,
      p.firstLba * SECTOR,
      (p.lastLba - p.firstLba + 1) * SECTOR,
      `${basename(path)} partition ${p.number}`,
    );
    if (!isExt4(part)) continue;
    const { info, tree } = readExt4(part, { kind: 'input', ref: basename(path) }, budget);
    return {
      path,
      format,
      tree,
      buildId: buildIdOf(tree),
      details: {
        partitionTable: table.kind,
        diskGuid: table.diskGuid || undefined,
        partitions: parts.map((q) => ({
          number: q.number,
          name: q.name,
          type: partitionTypeName(q.type),
          start: q.firstLba,
          sectors: q.lastLba - q.firstLba + 1,
          guid: q.guid || undefined,
        })),
        root: { partition: p.number, label: info.label, uuid: info.uuid, needsRecovery: info.needsRecovery },
        entries: tree.size,
      },
    };
  }
  throw new KjxError('ARTIFACT_INVALID', `${path}: no partition holds an ext4 file system`, {
    hint: 'is it a kjx disk image? `kjx inspect` reads the ext4 root partition',
  });
}

const BUDGET_HINT =
  'if the image is honest and only that large, raise the limit with --max-memory SIZE (e.g. --max-memory 4G)';

/** Options for `loadArtifact`. */
export interface LoadOptions {
  /** Bytes reading one artifact may hold; default: util/budget.ts `defaultLimit` of its size on disk. */
  maxBytes?: number;
}

async function loadFile(path: string, opts: LoadOptions): Promise<LoadedArtifact> {
  const fd = openSync(path, 'r');
  try {
    const st = fstatSync(fd);
    const size = st.size;
    // a sparse file claims more than it holds: what it occupies on disk is what was given
    const onDisk = Math.min(size, st.blocks * 512);
    const budget =
      opts.maxBytes !== undefined
        ? newBudget(path, opts.maxBytes, 'ARTIFACT_INVALID', BUDGET_HINT)
        : defaultBudget(path, onDisk, 'ARTIFACT_INVALID', BUDGET_HINT);
    const src = fileSource(fd, size, basename(path));
    const head = src.read(0, Math.min(size, 4096));
    if (size === 0) throw unknownFormat(path, 'is empty');
    const first = head.toString('latin1', 0, Math.min(head.length, 64)).trimStart();
    if (first.startsWith('{')) {
      charge(budget, size * 4, 'parsing the manifest');
      return loadManifest(path, readFileSync(path, 'utf8'));
    }
    if (head.toString('latin1', 0, 4) === 'QFI\xfb') return await viaQemuImg(src, path, 'qcow2', budget);
    if (head.toString('latin1', 0, 4) === 'KDMV' || first.startsWith('# Disk DescriptorFile'))
      return await viaQemuImg(src, path, 'vmdk', budget);
    if (isIso9660(src)) return await loadIso(src, path, budget);
    const compression = detectCompression(head);
    if (
      compression !== 'none' ||
      /^07070[12]/.test(head.toString('latin1', 0, 6)) ||
      head.toString('latin1', 257, 262) === 'ustar'
    ) {
      charge(budget, size, 'reading it');
      const whole = readFileSync(path);
      const data = compression === 'none' ? whole : await decompressAny(whole, path, budget);
      const r = await fromArchiveBytes(path, data, compression, budget);
      if (r) return r;
      throw unknownFormat(path, `is ${compression}-compressed, but what is inside is neither cpio nor tar`);
    }
    if (hasMbrSignature(src) && !isExt4(src)) return rootFromDisk(src, path, 'raw', budget);
    if (isExt4(src)) {
      const { info, tree } = readExt4(src, { kind: 'input', ref: basename(path) }, budget);
      return {
        path,
        format: 'ext4',
        tree,
        buildId: buildIdOf(tree),
        details: { ...info, entries: tree.size },
      };
    }
    throw unknownFormat(path, 'is not in a format kjx reads');
  } finally {
    closeSync(fd);
  }
}

async function loadIso(src: ByteSource, path: string, budget: Budget): Promise<LoadedArtifact> {
  const { info, tree: isoTree } = readIso9660(src, { kind: 'input', ref: basename(path) }, budget);
  const name = [...isoTree.keys()].find((p) => p.startsWith('/boot/') && isInitramfsFileName(p.slice(6)));
  const details: Record<string, unknown> = {
    volumeId: info.volumeId,
    rockRidge: info.rockRidge,
    joliet: info.joliet,
    boot: info.boot.map((b) => b.platform),
    files: [...isoTree.values()]
      .filter((e) => e.type === 'file')
      .map((e) => ({ path: e.path, size: e.type === 'file' ? e.data.length : 0 })),
  };
  if (!name) {
    throw new KjxError('ARTIFACT_INVALID', `${path}: the ISO has no /boot/initramfs.cpio*`, {
      hint: 'is it a kjx ISO? kjx inspects the initramfs it boots',
    });
  }
  const entry = isoTree.get(name)!;
  if (entry.type !== 'file') throw new KjxError('ARTIFACT_INVALID', `${path}: ${name} is not a file`);
  const data = await decompressAny(entry.data, `${path}:${name}`, budget);
  const inner = await fromArchiveBytes(`${path}:${name}`, data, detectCompression(entry.data), budget);
  if (!inner?.tree) throw new KjxError('ARTIFACT_INVALID', `${path}: ${name} is not a cpio archive`);
  return {
    path,
    format: 'iso',
    tree: inner.tree,
    buildId: inner.buildId,
    details: { ...details, initramfs: name, entries: inner.tree.size },
  };
}

/**
 * qemu-img's view of one image file and nothing else: the driver named (no
 * probing), the protocol fixed to a local file (a name like "nbd://..." stays a
 * file name) and no backing file, as a json: pseudo-filename so no character of
 * the path needs escaping.
 */
export function qemuImgTarget(path: string, format: 'qcow2' | 'vmdk'): string {
  return `json:${JSON.stringify({ driver: format, file: { driver: 'file', filename: path }, backing: null })}`;
}

/**
 * qcow2 and vmdk: refused unless the file holds the whole image (disk-container.ts,
 * read before anything opens it), then `qemu-img convert` to a sparse raw file in
 * a private temporary directory.
 */
async function viaQemuImg(
  src: ByteSource,
  path: string,
  format: 'qcow2' | 'vmdk',
  budget: Budget,
): Promise<LoadedArtifact> {
  const problem = format === 'qcow2' ? qcow2Problem(src) : vmdkProblem(src);
  if (problem) {
    throw new KjxError(
      'ARTIFACT_INVALID',
      `${path} ${problem}; kjx reads only images held whole in one file`,
      {
        hint: `on a host where what it names is trusted, make a self-contained copy first: qemu-img convert -O ${format} ${basename(path)} copy.${format}`,
        reason: 'external-reference',
      },
    );
  }
  const target = qemuImgTarget(path, format);
  const dir = mkdtempSync(join(tmpdir(), 'kjx-inspect-'));
  try {
    const raw = join(dir, 'disk.raw');
    try {
      // qemu-img convert reads a damaged image as zeros; check says what is wrong (3: only leaks)
      await run(`checking the ${format} image`, 'qemu-img', ['check', '-q', target], { okCodes: [3] });
      await run(`reading the ${format} image`, 'qemu-img', ['convert', '-O', 'raw', target, raw]);
    } catch (e) {
      if (isKjxError(e) && e.code === 'SUBPROCESS') {
        throw new KjxError(
          'ARTIFACT_INVALID',
          `${path}: qemu-img cannot read it as ${format}: ${e.message}`,
          {
            cause: e,
            hint: 'the image is truncated or damaged; `qemu-img check` says more',
          },
        );
      }
      throw e;
    }
    const fd = openSync(raw, 'r');
    try {
      const src = fileSource(fd, fstatSync(fd).size, basename(path));
      const r = rootFromDisk(src, path, format, budget);
      const info = await run('reading the image format', 'qemu-img', ['info', '--output=json', target]);
      const j = JSON.parse(info.stdout) as { format?: string; 'virtual-size'?: number };
      return { ...r, details: { ...r.details, imageFormat: j.format, virtualSize: j['virtual-size'] } };
    } finally {
      closeSync(fd);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Open an artifact file, a manifest.json, or a build output directory. */
export async function loadArtifact(path: string, opts: LoadOptions = {}): Promise<LoadedArtifact> {
  if (!existsSync(path)) {
    throw new KjxError('USAGE', `${path} does not exist`, { hint: 'give the path of an artifact kjx built' });
  }
  if (statSync(path).isDirectory()) {
    const names = readdirSync(path);
    const initramfs = names.find(isInitramfsFileName);
    if (initramfs) return loadFile(join(path, initramfs), opts);
    if (names.includes(MANIFEST_FILE)) return loadFile(join(path, MANIFEST_FILE), opts);
    throw unknownFormat(path, 'is a directory without an initramfs or a manifest.json');
  }
  return loadFile(path, opts);
}
