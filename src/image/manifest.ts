/**
 * The build manifest: every path of the image with its type, mode, owner, size,
 * sha256 and where it came from (package + version, or the spec input).
 */
import { type EntrySource, fileHash, sortedEntries, type Tree } from '../rootfs/tree.js';

export interface ManifestFile {
  path: string;
  type: string;
  mode: string;
  uid: number;
  gid: number;
  size: number;
  sha256?: string;
  target?: string;
  device?: string;
  source: string;
}

export interface Manifest {
  name: string;
  version: string;
  buildId: string;
  sourceDateEpoch: number;
  kernel: { version: string; source: string; modules: string[]; builtin: string[] };
  packages: { name: string; version: string; sha256: string; root: boolean }[];
  artifacts: { name: string; size: number; sha256: string }[];
  files: ManifestFile[];
}

export function sourceLabel(s: EntrySource): string {
  switch (s.kind) {
    case 'deb':
      return `deb:${s.package}=${s.version}`;
    case 'input':
      return `input:${s.ref}`;
    case 'generated':
      return `generated:${s.by}`;
  }
}

export function manifestFiles(tree: Tree): ManifestFile[] {
  return sortedEntries(tree).map((e) => {
    const m: ManifestFile = {
      path: e.path,
      type: e.type,
      mode: `0${e.mode.toString(8).padStart(3, '0')}`,
      uid: e.uid,
      gid: e.gid,
      size: e.type === 'file' ? e.data.length : 0,
      source: sourceLabel(e.source),
    };
    if (e.type === 'file') m.sha256 = fileHash(e);
    if (e.type === 'symlink' || e.type === 'hardlink') m.target = e.target;
    if (e.type === 'char' || e.type === 'block') m.device = `${e.major}:${e.minor}`;
    return m;
  });
}
