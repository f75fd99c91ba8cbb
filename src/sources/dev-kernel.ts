/**
 * A developer's own kernel, as `kjx run|boot --kernel PATH [--modules DIR]` names it
 * (docs/dev-kernel.md): a built kernel tree (the source tree, or the directory of an
 * out-of-tree `make O=DIR` build), or a bzImage file with, optionally, the
 * `lib/modules/<release>` directory `make modules_install` wrote. This module finds
 * what such a kernel is made of on the host, refuses (with the make line to run) a
 * tree that is not built, and reads its modules into a Tree laid out as
 * /lib/modules/<release>/, which the module closure (rootfs/module-closure.ts) reads.
 *
 * A built tree, as kbuild leaves it: `arch/x86/boot/bzImage`, `.config`,
 * `include/config/kernel.release`, `modules.order` (one module per line relative to
 * the tree, `drivers/net/vxlan/vxlan.ko`; `….o` since Linux 6.2), `modules.builtin`
 * (`kernel/….ko` lines), `modules.builtin.modinfo`, and each module's `.ko` beside
 * its objects. `make modules_install` puts a module at `kernel/<that path>`, which is
 * where the Tree has it too.
 */
import { existsSync, lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, posix, resolve } from 'node:path';
import { bzImagePayload, bzImageRelease } from '../rootfs/bzimage.js';
import { moduleCompression, parseModinfo, parseSoftdep } from '../rootfs/modinfo.js';
import { normalizeModuleName } from '../rootfs/module-closure.js';
import { decompressModule } from '../rootfs/module-decompress.js';
import { type EntrySource, mk, newTree, type Tree } from '../rootfs/tree.js';
import { KjxError } from '../util/errors.js';

/** Where kbuild leaves the x86 kernel image in a built tree. */
export const TREE_BZIMAGE = 'arch/x86/boot/bzImage';
/** The release `uname -r` prints, as kbuild writes it for the tree's configuration. */
export const TREE_RELEASE = 'include/config/kernel.release';

/** The largest kernel image read (a bzImage of a kernel with everything built in is ~60 MiB). */
const BZIMAGE_MAX = 256 << 20;
/** The largest `.config`, module list or built-in list read (real ones are below 2 MiB). */
const LIST_MAX = 16 << 20;
/** The largest single module read (an unstripped one with debug info may pass 100 MiB). */
const MODULE_MAX = 512 << 20;

const MODULE_FILE = /\.ko(\.(xz|zst|gz))?$/;

/** A kernel's modules on the host, by where the guest will have them. */
export interface DevModules {
  /** The directory they come from (a tree, or a `lib/modules/<release>` directory), for messages. */
  dir: string;
  /** Each module file by its path under /lib/modules/<release> (`kernel/drivers/x.ko`), to its host path. */
  files: Map<string, string>;
  /** modules.order as installed (`kernel/….ko` lines): the kernel's link order. */
  order: string[];
  /** modules.builtin and modules.builtin.modinfo, when the kernel has them. */
  builtin?: Buffer;
  builtinModinfo?: Buffer;
}

/** A developer's kernel: what boots and what its modules are. */
export interface DevKernel {
  kind: 'tree' | 'image';
  /** The path as given, made absolute. */
  path: string;
  /** The bzImage QEMU (or kjx's PVH unpacking) gets. */
  bzImage: string;
  /** What `uname -r` prints in the guest: /lib/modules/<release> is where modprobe looks. */
  release: string;
  /** A tree's `.config` (option without `CONFIG_` to its value); absent for a bzImage file. */
  config?: Map<string, string>;
  /** Absent for a bzImage given without `--modules`. */
  modules?: DevModules;
}

/** A path as a shell word, for the make lines hints show. */
function shellWord(s: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The command that builds what `kjx run --kernel` boots from a tree. */
export function makeLine(tree: string, targets = 'bzImage modules'): string {
  return `make -C ${shellWord(tree)} -j$(nproc) ${targets}`;
}

/** `CONFIG_X=y` lines to a map X -> y; `# CONFIG_X is not set` lines leave X out. */
export function parseKernelConfig(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^CONFIG_([A-Za-z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1]!, m[2]!.replace(/^"(.*)"$/, '$1'));
  }
  return out;
}

function readCapped(path: string, max: number, what: string): Buffer {
  const size = statSync(path).size;
  if (size > max)
    throw new KjxError('KERNEL_INVALID', `${what}: ${path} is ${size} bytes, more than kjx reads (${max})`, {
      hint: 'is it the file you meant?',
    });
  return readFileSync(path);
}

function notFound(flag: string, path: string): KjxError {
  return new KjxError('INPUT_NOT_FOUND', `${flag} ${path}: no such file or directory`, {
    hint:
      flag === '--kernel'
        ? 'give a built kernel tree (the directory with arch/x86/boot/bzImage, or the O= directory of an out-of-tree build) or a bzImage file'
        : 'give the lib/modules/<release> directory `make modules_install` wrote (INSTALL_MOD_PATH=DIR writes DIR/lib/modules/<release>)',
  });
}

/**
 * What `--kernel PATH [--modules DIR]` names, checked: cheap (it reads the bzImage,
 * the lists and `.config`, no module), so a wrong path fails before any build work.
 */
export function openDevKernel(path: string, modulesDir?: string): DevKernel {
  const abs = resolve(path);
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(abs);
  } catch {
    throw notFound('--kernel', path);
  }
  if (st.isDirectory()) {
    if (modulesDir !== undefined)
      throw new KjxError(
        'USAGE',
        `--modules ${modulesDir}: --kernel ${path} is a kernel tree, whose modules kjx takes from the tree`,
        {
          hint: 'leave out --modules, or give --kernel the bzImage file that goes with these modules',
        },
      );
    return openTree(abs, path);
  }
  const bz = readBzImage(abs, path);
  const release = bzImageRelease(bz);
  if (modulesDir === undefined) {
    if (!release)
      throw new KjxError(
        'KERNEL_INVALID',
        `--kernel ${path}: the bzImage names no kernel release in its header`,
        {
          hint: 'give --modules lib/modules/<release> of the same build, whose name is the release',
        },
      );
    return { kind: 'image', path: abs, bzImage: abs, release };
  }
  const dirRelease = basename(resolve(modulesDir));
  if (release && release !== dirRelease && existsSync(modulesDir)) {
    const guess = [
      join(modulesDir, 'lib', 'modules', release),
      join(dirname(resolve(modulesDir)), release),
    ].find((d) => existsSync(d));
    throw new KjxError(
      'KERNEL_INVALID',
      `--modules ${modulesDir}: modules of release ${dirRelease}, but --kernel ${path} is release ${release}`,
      {
        hint: guess
          ? `did you mean --modules ${guess}?`
          : `give the lib/modules/${release} directory of the same build (make modules_install INSTALL_MOD_PATH=DIR writes DIR/lib/modules/${release})`,
        reason: 'release-mismatch',
      },
    );
  }
  const modules = openModulesDir(resolve(modulesDir), modulesDir);
  return { kind: 'image', path: abs, bzImage: abs, release: release ?? dirRelease, modules };
}

/** The bytes of a bzImage file, or KERNEL_INVALID saying what it is not. */
function readBzImage(abs: string, given: string): Buffer {
  const data = readCapped(abs, BZIMAGE_MAX, `--kernel ${given}`);
  try {
    bzImagePayload(data, given);
  } catch (e) {
    const elf = data.length >= 4 && data.readUInt32BE(0) === 0x7f454c46;
    const why = (e as Error).message.replace(`${given}: `, '');
    throw new KjxError('KERNEL_INVALID', `--kernel ${given}: not an x86 bzImage (${why})`, {
      hint: elf
        ? 'this is an ELF file (vmlinux?): give arch/x86/boot/bzImage of the same build, or the build directory'
        : 'give the arch/x86/boot/bzImage your build wrote, or the build directory itself',
      reason: 'not-bzimage',
      cause: e,
    });
  }
  return data;
}

/** A built kernel tree, or KERNEL_INVALID with the make line that builds it. */
function openTree(abs: string, given: string): DevKernel {
  const at = (p: string) => join(abs, p);
  const looksLikeKernel = ['Makefile', 'Kconfig', '.config', 'Kbuild'].some((f) => existsSync(at(f)));
  const configured = existsSync(at('.config'));
  const notBuilt = (what: string, targets = 'bzImage modules') =>
    new KjxError('KERNEL_INVALID', `--kernel ${given}: the kernel tree is not built (${what})`, {
      hint: configured
        ? `build it first: ${makeLine(given, targets)}`
        : `configure and build it first (make -C ${shellWord(given)} defconfig && ${makeLine(given, targets)}); if you built it out of tree (make O=DIR), give --kernel DIR`,
      reason: 'not-built',
    });
  if (!existsSync(at(TREE_BZIMAGE))) {
    if (!looksLikeKernel)
      throw new KjxError(
        'KERNEL_INVALID',
        `--kernel ${given}: neither a kernel tree (no Makefile, no ${TREE_BZIMAGE}) nor a bzImage file`,
        {
          hint: 'give a built kernel tree, the O= directory of an out-of-tree build, or a bzImage file (with --modules lib/modules/<release>)',
          reason: 'not-a-kernel',
        },
      );
    throw notBuilt(`no ${TREE_BZIMAGE}`);
  }
  if (!existsSync(at(TREE_RELEASE))) throw notBuilt(`no ${TREE_RELEASE}`);
  const release = readCapped(at(TREE_RELEASE), LIST_MAX, `--kernel ${given}`).toString('utf8').trim();
  if (!/^[A-Za-z0-9][A-Za-z0-9._+~-]*$/.test(release))
    throw new KjxError('KERNEL_INVALID', `--kernel ${given}: ${TREE_RELEASE} holds no kernel release`, {
      hint: `build it again: ${makeLine(given)}`,
    });
  const bzImage = at(TREE_BZIMAGE);
  const imageRelease = bzImageRelease(readBzImage(bzImage, join(given, TREE_BZIMAGE)));
  if (imageRelease && imageRelease !== release)
    throw new KjxError(
      'KERNEL_INVALID',
      `--kernel ${given}: ${TREE_BZIMAGE} is release ${imageRelease}, but the tree is configured for ${release} (changed since its last build)`,
      { hint: `build it again: ${makeLine(given)}`, reason: 'not-built' },
    );
  const config = configured
    ? parseKernelConfig(readCapped(at('.config'), LIST_MAX, `--kernel ${given}`).toString('utf8'))
    : undefined;
  const k: DevKernel = { kind: 'tree', path: abs, bzImage, release, ...(config ? { config } : {}) };
  if (config && config.get('MODULES') !== 'y') return k;
  if (!existsSync(at('modules.order')))
    throw notBuilt('no modules.order: its modules are not built', 'modules');
  const order: string[] = [];
  const files = new Map<string, string>();
  for (const line of readCapped(at('modules.order'), LIST_MAX, `--kernel ${given}`)
    .toString('utf8')
    .split('\n')) {
    const rel = line.trim().replace(/\.o$/, '.ko');
    if (rel === '' || !MODULE_FILE.test(rel)) continue;
    // names from a file of the tree: nothing may climb out of it
    const norm = posix.normalize(rel);
    if (norm.startsWith('../') || norm.startsWith('/'))
      throw new KjxError('KERNEL_INVALID', `--kernel ${given}: modules.order names ${rel}, outside the tree`);
    const host = at(norm);
    if (!existsSync(host)) throw notBuilt(`modules.order names ${norm}, which is not built`, 'modules');
    const installed = `kernel/${norm}`;
    order.push(installed);
    files.set(installed, host);
  }
  return {
    ...k,
    modules: {
      dir: abs,
      files,
      order,
      ...optionalList(at('modules.builtin'), 'builtin', given),
      ...optionalList(at('modules.builtin.modinfo'), 'builtinModinfo', given),
    },
  };
}

function optionalList<K extends 'builtin' | 'builtinModinfo'>(
  path: string,
  key: K,
  given: string,
): Partial<Record<K, Buffer>> {
  if (!existsSync(path)) return {};
  return { [key]: readCapped(path, LIST_MAX, given) } as Partial<Record<K, Buffer>>;
}

/** A `lib/modules/<release>` directory as `make modules_install` writes it. */
function openModulesDir(abs: string, given: string): DevModules {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(abs);
  } catch {
    throw notFound('--modules', given);
  }
  if (!st.isDirectory())
    throw new KjxError('KERNEL_INVALID', `--modules ${given}: not a directory`, {
      hint: 'give the lib/modules/<release> directory `make modules_install` wrote',
    });
  const files = new Map<string, string>();
  // symlinks (build, source: back into the kernel tree) are never followed
  const walk = (dir: string, rel: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const host = join(dir, name);
      const r = rel === '' ? name : `${rel}/${name}`;
      const l = lstatSync(host);
      if (l.isDirectory()) walk(host, r);
      else if (l.isFile() && MODULE_FILE.test(name)) files.set(r, host);
    }
  };
  walk(abs, '');
  const orderFile = join(abs, 'modules.order');
  const hasLists = existsSync(orderFile) || existsSync(join(abs, 'modules.builtin'));
  if (!hasLists && files.size === 0)
    throw new KjxError('KERNEL_INVALID', `--modules ${given}: holds no kernel modules and no modules.order`, {
      hint: 'give the lib/modules/<release> directory `make modules_install` wrote (INSTALL_MOD_PATH=DIR writes DIR/lib/modules/<release>)',
    });
  const order = existsSync(orderFile)
    ? readCapped(orderFile, LIST_MAX, `--modules ${given}`)
        .toString('utf8')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '')
    : [...files.keys()];
  return {
    dir: abs,
    files,
    order,
    ...optionalList(join(abs, 'modules.builtin'), 'builtin', `--modules ${given}`),
    ...optionalList(join(abs, 'modules.builtin.modinfo'), 'builtinModinfo', `--modules ${given}`),
  };
}

/** Bytes of every module file together, as they are on the host. */
export function devModulesSize(m: DevModules): number {
  let n = 0;
  for (const host of m.files.values()) n += statSync(host).size;
  return n;
}

/**
 * The modules as a Tree at /lib/modules/<release>/ (with modules.order and the
 * built-in lists): every one, or those `names` need (their `depends=` and `softdep=`
 * `pre:` modules, followed by module name; a name that is only an alias of a module is
 * not found this way, as finding it would mean reading every module).
 */
export function readDevModules(m: DevModules, release: string, names: string[] | 'all'): Tree {
  const byName = new Map<string, string>();
  for (const rel of [...m.files.keys()].sort()) {
    const n = normalizeModuleName(posix.basename(rel));
    if (!byName.has(n) || rel.startsWith('updates/')) byName.set(n, rel);
  }
  const dir = `/lib/modules/${release}`;
  const tree = newTree();
  const add = (rel: string, data: Buffer, ref: string) => {
    const src: EntrySource = { kind: 'input', ref };
    tree.set(`${dir}/${rel}`, mk.file(`${dir}/${rel}`, data, src, 0o644));
  };
  const take = (rel: string): Buffer => {
    const host = m.files.get(rel)!;
    const data = readCapped(host, MODULE_MAX, `module ${rel}`);
    add(rel, data, host);
    return data;
  };
  if (names === 'all') for (const rel of m.files.keys()) take(rel);
  else {
    const queue = names.map(normalizeModuleName);
    const seen = new Set<string>();
    while (queue.length > 0) {
      const n = queue.shift()!;
      if (seen.has(n)) continue;
      seen.add(n);
      const rel = byName.get(n);
      if (!rel) continue;
      const raw = take(rel);
      const data = moduleCompression(raw) ? decompressModule(raw, m.files.get(rel)!) : raw;
      const info = parseModinfo(data, m.files.get(rel)!);
      queue.push(...info.depends.map(normalizeModuleName));
      for (const s of info.softdep) queue.push(...parseSoftdep(s).pre.map(normalizeModuleName));
    }
  }
  const lists: EntrySource = { kind: 'input', ref: m.dir };
  tree.set(
    `${dir}/modules.order`,
    mk.file(`${dir}/modules.order`, m.order.map((l) => `${l}\n`).join(''), lists, 0o644),
  );
  if (m.builtin)
    tree.set(`${dir}/modules.builtin`, mk.file(`${dir}/modules.builtin`, m.builtin, lists, 0o644));
  if (m.builtinModinfo)
    tree.set(
      `${dir}/modules.builtin.modinfo`,
      mk.file(`${dir}/modules.builtin.modinfo`, m.builtinModinfo, lists, 0o644),
    );
  return tree;
}
