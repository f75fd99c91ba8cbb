/**
 * `kjx inspect ARTIFACT [PATH] [--json]`: the files of an initramfs, ISO, disk
 * image (raw, qcow2, vmdk), rootfs tar or manifest — type, mode, owner, size,
 * link target — without mounting and without root. With PATH: a file's content
 * on stdout (symlinks followed inside the image, in every component of PATH), a
 * directory's listing.
 */
import type { Command } from 'commander';
import { lookupImagePath } from '../image/image-path.js';
import type { LoadedArtifact, LoadOptions } from '../image/read-artifact.js';
import { type FileFacts, factsFromManifest, factsFromTree, octalMode } from '../image/tree-diff.js';
import { normalizePath, type Tree } from '../rootfs/tree.js';
import { parseSize } from '../util/budget.js';
import { KjxError } from '../util/errors.js';
import { printable } from '../util/printable.js';

const TYPE_CHAR: Record<string, string> = {
  file: '-',
  dir: 'd',
  symlink: 'l',
  hardlink: 'h',
  char: 'c',
  block: 'b',
  fifo: 'p',
};

/** `ls -l` style permissions: "-rw-r--r--", with setuid/setgid/sticky. */
export function lsMode(type: string, mode: number): string {
  const rwx = (bits: number, special: boolean, ch: string): string =>
    `${bits & 4 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${bits & 1 ? (special ? ch : 'x') : special ? ch.toUpperCase() : '-'}`;
  return (
    (TYPE_CHAR[type] ?? '?') +
    rwx((mode >> 6) & 7, (mode & 0o4000) !== 0, 's') +
    rwx((mode >> 3) & 7, (mode & 0o2000) !== 0, 's') +
    rwx(mode & 7, (mode & 0o1000) !== 0, 't')
  );
}

/** uid -> name and gid -> name from the image's own /etc/passwd and /etc/group. */
export function idNames(tree: Tree | undefined): { users: Map<number, string>; groups: Map<number, string> } {
  const read = (path: string): Map<number, string> => {
    const m = new Map<number, string>();
    const e = tree?.get(path);
    if (e?.type !== 'file') return m;
    for (const line of e.data.toString('utf8').split('\n')) {
      const [name, , id] = line.split(':');
      if (name && id !== undefined && /^\d+$/.test(id) && !m.has(Number(id))) m.set(Number(id), name);
    }
    return m;
  };
  return { users: read('/etc/passwd'), groups: read('/etc/group') };
}

interface Row extends FileFacts {
  user?: string;
  group?: string;
}

function rows(a: LoadedArtifact): Row[] {
  const facts = a.tree ? factsFromTree(a.tree) : factsFromManifest(a.manifestFiles ?? []);
  const { users, groups } = idNames(a.tree);
  return [...facts.values()].map((f) => {
    const r: Row = { ...f };
    const u = users.get(f.uid);
    const g = groups.get(f.gid);
    if (u !== undefined) r.user = u;
    if (g !== undefined) r.group = g;
    return r;
  });
}

export function renderRows(list: Row[]): string {
  // names, link targets and the image's own user and group names are someone else's text
  const cols = list.map((r) => [
    lsMode(r.type, r.mode),
    printable(r.user ?? String(r.uid)),
    printable(r.group ?? String(r.gid)),
    r.device ? r.device.replace(':', ', ') : String(r.size),
    printable(r.path) +
      (r.type === 'symlink'
        ? ` -> ${printable(r.target ?? '')}`
        : r.type === 'hardlink'
          ? ` link to ${printable(r.target ?? '')}`
          : ''),
  ]);
  const w = [0, 1, 2, 3].map((i) => Math.max(0, ...cols.map((c) => c[i]!.length)));
  return cols
    .map((c) => `${c[0]} ${c[1]!.padEnd(w[1]!)} ${c[2]!.padEnd(w[2]!)} ${c[3]!.padStart(w[3]!)} ${c[4]}`)
    .join('\n');
}

function jsonRow(r: Row): Record<string, unknown> {
  return { ...r, mode: octalMode(r.mode) };
}

export const MAX_MEMORY_HELP =
  'most memory reading one artifact may take, like 4G (default: 16 times its size on disk, at least 256M); past it the artifact is refused';

/** `--max-memory` as loadArtifact options. */
export function loadOptions(maxMemory: string | undefined): LoadOptions {
  if (maxMemory === undefined) return {};
  const maxBytes = parseSize(maxMemory);
  if (maxBytes === undefined)
    throw new KjxError('USAGE', `--max-memory ${printable(maxMemory)} is not a size`, {
      hint: 'give bytes or a number with K, M, G or T, like 4G',
    });
  return { maxBytes };
}

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description(
      'list the files of an artifact (initramfs, ISO, raw/qcow2/vmdk disk, tar, manifest), or print one file',
    )
    .argument('<artifact>', 'artifact file, manifest.json or build output directory')
    .argument('[path]', 'a path inside the image: print the file, or list the directory')
    .option('--json', 'print JSON')
    .option('--max-memory <size>', MAX_MEMORY_HELP)
    .action(async (artifact: string, path: string | undefined, o: { json?: boolean; maxMemory?: string }) => {
      // read-artifact pulls in the decompressors: load it only when the command runs
      const { loadArtifact } = await import('../image/read-artifact.js');
      const a = await loadArtifact(artifact, loadOptions(o.maxMemory));
      const all = rows(a);
      if (path === undefined) {
        if (o.json) {
          const out = {
            artifact: a.path,
            format: a.format,
            compression: a.compression,
            buildId: a.buildId,
            details: a.details,
            entries: all.map(jsonRow),
          };
          process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
        } else process.stdout.write(`${renderRows(all)}\n`);
        return;
      }
      let p: string;
      try {
        p = normalizePath(path.startsWith('/') ? path : `/${path}`);
      } catch {
        throw new KjxError('USAGE', `"${path}" is not a path inside the image`);
      }
      // symlinks inside the image are followed in every component (and hard links to their file)
      const found = a.tree ? lookupImagePath(a.tree, p, artifact) : undefined;
      const own = all.find((r) => r.path === (found?.path ?? p));
      if (!own) {
        throw new KjxError('USAGE', `${printable(p)} is not in ${printable(artifact)}`, {
          hint: `\`kjx inspect ${artifact}\` lists what is there`,
        });
      }
      const target = found?.target?.entry;
      if (target?.type === 'dir' || own.type === 'dir') {
        const dir = target?.type === 'dir' ? found!.target!.path : own.path;
        const prefix = dir === '/' ? '/' : `${dir}/`;
        const below = all.filter((r) => r.path === dir || r.path.startsWith(prefix));
        if (o.json) process.stdout.write(`${JSON.stringify(below.map(jsonRow), null, 2)}\n`);
        else process.stdout.write(`${renderRows(below)}\n`);
        return;
      }
      if (o.json) {
        process.stdout.write(`${JSON.stringify(jsonRow(own), null, 2)}\n`);
        return;
      }
      if (target?.type === 'file') {
        process.stdout.write(target.data);
        return;
      }
      if (!a.tree) {
        throw new KjxError('USAGE', `${artifact} is a manifest: it lists files but holds no contents`, {
          hint: 'inspect the initramfs, ISO, disk image or tar instead',
        });
      }
      process.stdout.write(`${renderRows([own])}\n`);
    });
}
