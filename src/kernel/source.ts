/**
 * The source tree a kernel build reads: Debian's linux-source package unpacked once
 * into the cache (its tarball, checked by the package's sha256 like every .deb), or
 * a developer's tree on the host, which kjx only reads (it builds out of tree).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, realpathSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type Cache, cacheTempDir } from '../sources/cache.js';
import { readDeb } from '../sources/deb.js';
import { writeFileAtomic } from '../util/atomic.js';
import { KjxError } from '../util/errors.js';
import { run } from '../util/exec.js';
import { sha256 } from '../util/hash.js';

export interface KernelSource {
  /** The tree make runs in (`-C`). */
  dir: string;
  /** Names the source for caches and work directories: the package's sha256, or the tree's path. */
  id: string;
  /** For messages: `linux-source-6.1 6.1.x` or the tree as written in kjx.yaml. */
  what: string;
}

const COMPLETE = '.kjx-complete';

/** Debian's kernel source, unpacked into `kernel/src/<sha256 of the .deb>/linux` once. */
export async function debianSource(
  cache: Cache,
  deb: { name: string; version: string; sha256: string; data: () => Buffer },
  progress: (text: string) => void,
): Promise<KernelSource> {
  const base = join(cache.root, 'kernel', 'src', deb.sha256);
  const dir = join(base, 'linux');
  const what = `${deb.name} ${deb.version}`;
  if (existsSync(join(base, COMPLETE))) return { dir, id: deb.sha256, what };
  progress(`unpacking ${what}`);
  const { dataEntries } = readDeb(deb.data(), `${deb.name}_${deb.version}.deb`);
  const tarball = dataEntries.find((e) =>
    /^\.?\/?usr\/src\/linux-source-[^/]+\.tar\.(xz|gz|bz2|zst)$/.test(e.name),
  );
  if (!tarball || tarball.size === 0) {
    throw new KjxError('DEB_INVALID', `${what} has no usr/src/linux-source-*.tar.* tarball`, {
      hint: 'kernel.source: debian builds from a linux-source-<version> package',
    });
  }
  const tmp = cacheTempDir(cache, 'kernel-src');
  try {
    const file = join(tmp, 'source.tar');
    writeFileAtomic(file, tarball.data);
    // GNU tar keeps members inside the target (no absolute paths, no "..") and, as root,
    // would restore the archive's owners: --no-same-owner keeps them ours
    await run(`unpacking ${what}`, 'tar', [
      '-xf',
      file,
      '-C',
      tmp,
      '--no-same-owner',
      '--no-same-permissions',
    ]);
    rmSync(file);
    const top = readdirSync(tmp).filter((n) => n.startsWith('linux'));
    if (top.length !== 1 || !existsSync(join(tmp, top[0]!, 'Makefile'))) {
      throw new KjxError(
        'DEB_INVALID',
        `${what}: the tarball does not hold one kernel tree (found ${top.join(', ') || 'nothing'})`,
      );
    }
    mkdirSync(base, { recursive: true });
    rmSync(dir, { recursive: true, force: true });
    renameSync(join(tmp, top[0]!), dir);
    writeFileAtomic(join(base, COMPLETE), `${what}\n`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return { dir, id: deb.sha256, what };
}

/** A kernel tree on the host, checked to be one kjx can build out of tree. */
export function treeSource(path: string, ref: string): KernelSource {
  let dir: string;
  try {
    dir = realpathSync(path);
  } catch {
    throw new KjxError('INPUT_NOT_FOUND', `kernel.tree: ${ref} does not exist (looked at ${path})`, {
      hint: 'kernel.tree is a kernel source checkout, relative to kjx.yaml',
    });
  }
  if (
    !statSync(dir).isDirectory() ||
    !existsSync(join(dir, 'Makefile')) ||
    !existsSync(join(dir, 'Kconfig'))
  ) {
    throw new KjxError(
      'USAGE',
      `kernel.tree: ${ref} is not a kernel source tree (no Makefile and Kconfig in ${dir})`,
      {
        hint: 'point kernel.tree at the top of a Linux checkout',
      },
    );
  }
  // the kernel's own check (`make O=`): a configured source tree cannot be built out of tree
  if (existsSync(join(dir, '.config')) || existsSync(join(dir, 'include', 'config'))) {
    throw new KjxError(
      'USAGE',
      `kernel.tree: ${ref} has an in-tree build (.config); kjx builds out of tree and the kernel refuses a source tree that is not clean`,
      {
        hint: `save your .config if you need it (then list it in kernel.config), run \`make -C ${dir} mrproper\`, or boot the kernel you built yourself with \`kjx run --kernel ${dir}\``,
      },
    );
  }
  return { dir, id: sha256(`tree\0${dir}`), what: ref };
}

/**
 * What of a tree decides its build, cheaply: for a git checkout its HEAD and the
 * diff of what is changed or new; else the size and mtime of every file. make
 * itself still decides what to recompile; this only says whether to ask it.
 */
export function treeStamp(dir: string): string {
  const git = (args: string[]) =>
    spawnSync('git', ['-C', dir, ...args], { encoding: 'buffer', maxBuffer: 1 << 30 });
  const head = git(['rev-parse', 'HEAD']);
  if (head.status === 0) {
    const diff = git(['diff', 'HEAD', '--binary']);
    const untracked = git(['ls-files', '--others', '--exclude-standard', '-z']);
    if (diff.status === 0 && untracked.status === 0) {
      const files = untracked.stdout.toString('utf8').split('\0').filter(Boolean).sort();
      const stamps = files.map((f) => `${f}\0${statStamp(join(dir, f))}`).join('\n');
      return sha256(Buffer.concat([head.stdout, diff.stdout, Buffer.from(stamps)]));
    }
  }
  const lines: string[] = [];
  const walk = (d: string, rel: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.name === '.git') continue;
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p, `${rel}/${e.name}`);
      else lines.push(`${rel}/${e.name}\0${statStamp(p)}`);
    }
  };
  walk(dir, '');
  return sha256(lines.join('\n'));
}

function statStamp(p: string): string {
  try {
    const s = statSync(p);
    return `${s.size}:${s.mtimeMs}`;
  } catch {
    return 'gone';
  }
}
