/**
 * The kernel stage: `vmlinuz` and the wanted modules (with their module closure and
 * generated modules.dep) from a Debian linux-image package, or from a local bzImage
 * and modules directory.
 */
import { posix } from 'node:path';
import { moduleClosure } from '../rootfs/module-closure.js';
import type { Tree } from '../rootfs/tree.js';
import { KjxError } from '../util/errors.js';
import { readDeb } from './deb.js';
import { stageDeb } from './stage.js';

export interface KernelResult {
  version: string;
  vmlinuz: Buffer;
  /** Modules and their index files under /lib/modules/<version>. */
  modules: Tree;
  /** Load order (dependencies first). */
  order: string[];
  builtin: string[];
}

/** The kernel release named by the tree's single /lib/modules/<version> directory. */
export function kernelVersionOf(tree: Tree, what: string): string {
  const versions = [...tree.keys()]
    .map((p) => /^\/lib\/modules\/([^/]+)$/.exec(p)?.[1])
    .filter((v): v is string => !!v);
  if (versions.length !== 1) {
    throw new KjxError(
      'MODULE_MISSING',
      `${what}: expected one /lib/modules/<version> directory, found ${versions.length}`,
    );
  }
  return versions[0]!;
}

export async function kernelFromDeb(
  data: Buffer,
  pkg: { name: string; version: string },
  wanted: string[],
  optional: string[] = [],
): Promise<KernelResult> {
  const { dataEntries } = await readDeb(data, `${pkg.name}_${pkg.version}.deb`);
  const tree = stageDeb(dataEntries, pkg);
  const version = kernelVersionOf(tree, pkg.name);
  const img = tree.get(`/boot/vmlinuz-${version}`);
  if (img?.type !== 'file')
    throw new KjxError('MODULE_MISSING', `${pkg.name} has no /boot/vmlinuz-${version}`);
  const mc = moduleClosure(tree, version, [...wanted, ...optional], { optional });
  return { version, vmlinuz: img.data, modules: mc.tree, order: mc.order, builtin: mc.builtin };
}

/** KjxError `reason` of the MODULE_MISSING kernelFromLocal throws when modules are wanted but no modulesDir is given. */
export const NO_MODULES_DIR = 'no-modules-dir';

/** A local kernel: the bzImage bytes and a tree holding `<modulesDir>` at /lib/modules/<basename>. */
export function kernelFromLocal(
  vmlinuz: Buffer,
  modules: Tree | undefined,
  modulesDirName: string | undefined,
  wanted: string[],
  optional: string[] = [],
): KernelResult {
  if (!modules || !modulesDirName) {
    // what the kernel has built in cannot be known without its modules directory
    if (wanted.length > 0) {
      throw new KjxError(
        'MODULE_MISSING',
        `kernel.modules lists ${wanted.join(', ')} but kernel.modulesDir is not set`,
        {
          hint: 'set kernel.modulesDir to the lib/modules/<version> directory of your kernel build, or set `modules: []`',
          reason: NO_MODULES_DIR,
        },
      );
    }
    return { version: 'local', vmlinuz, modules: new Map(), order: [], builtin: [] };
  }
  const version = posix.basename(modulesDirName);
  const mc = moduleClosure(modules, version, [...wanted, ...optional], { optional });
  return { version, vmlinuz, modules: mc.tree, order: mc.order, builtin: mc.builtin };
}
