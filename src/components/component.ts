/**
 * A component is a named piece of the guest (busybox, runit, dropbear, ...): which
 * Debian packages it needs and which of their files it takes. Components are plain
 * values; the plan merges what they ask for, the assembler calls `assemble`.
 */

import type { GuestService } from '../guest/services.js';
import { addEntry, ensureParents, newTree, resolveInTree, type Tree } from '../rootfs/tree.js';
import type { Spec } from '../spec/schema.js';
import { KjxError, type WarnFn } from '../util/errors.js';

export interface AssembleContext {
  spec: Spec;
  /** The staged files of one downloaded package (throws if the package was not planned). */
  staged(pkg: string): Tree;
  warn: WarnFn;
}

/** A kernel module a component asks for. */
export interface ModuleNeed {
  name: string;
  /**
   * Used when the kernel has it, skipped otherwise; the component then falls back
   * (containerd's native snapshotter without `overlay`). A missing required module
   * is a build error naming the component.
   */
  optional?: boolean;
}

/**
 * What the write-time hooks see: the spec, the kernel that was built (so a
 * component can choose what works with it) and the assembled packages.
 */
export interface GuestContext {
  spec: Spec;
  /** SOURCE_DATE_EPOCH of the build. */
  epoch: number;
  kernel: {
    /** Modules in the image, load order. */
    modules: string[];
    /** Wanted modules that are built into the kernel. */
    builtin: string[];
  };
  /** The base tree: every component's and package's files (read only). */
  base: Tree;
  warn: WarnFn;
}

/** Whether the built kernel has `module`, loadable or built in. */
export function kernelHas(ctx: Pick<GuestContext, 'kernel'>, module: string): boolean {
  const n = module.replace(/-/g, '_');
  return ctx.kernel.modules.includes(n) || ctx.kernel.builtin.includes(n);
}

export interface Component {
  name: string;
  /** Debian packages to download (their Depends are resolved for library closure). */
  packages(spec: Spec): string[];
  /** The files this component puts into the image (base stage: the packages' files). */
  assemble(ctx: AssembleContext): Tree;
  /**
   * Kernel modules it needs: merged into the kernel stage's list like
   * `kernel.modules`, so they and their dependencies are in the image and loaded by
   * stage 1.
   */
  kernelModules?(spec: Spec): ModuleNeed[];
  /** Services it runs under runit (names listed in COMPONENT_SERVICES of the schema). */
  services?(ctx: GuestContext): GuestService[];
  /** Lines of runit stage 1 (mounts, directories, sysctls), after networking, before boot tasks. */
  stage1?(ctx: GuestContext): string[];
  /** Files generated at write time, knowing the kernel (config files, check images). */
  files?(ctx: GuestContext): Tree;
  /**
   * Its containers call pivot_root(2): an initramfs root is made pivotable early
   * in /init (src/guest/stages.ts), which the rootfs itself never is.
   */
  pivotRoot?: boolean;
  /** Guest memory in MiB that `kjx run`, `boot` and `test` give the image at least. */
  memoryMiB?: number;
}

/**
 * Take exact paths from a staged package: each path must exist; symlinks along the way
 * arrive as symlinks and their targets as files (so `/bin/sh -> busybox` style chains keep working).
 */
export function takeFiles(pkgName: string, pkg: Tree, paths: string[]): Tree {
  const out = newTree();
  for (const p of paths) {
    let cur = p;
    for (let hops = 0; hops < 40; hops++) {
      const e = pkg.get(cur);
      if (!e) {
        const r = resolveInTree(pkg, cur);
        if (!r) {
          throw new KjxError('TREE_INVALID', `package ${pkgName} has no ${p}`, {
            hint: 'the Debian package layout changed; report this to kjx',
          });
        }
        addEntry(out, r.entry);
        break;
      }
      addEntry(out, e);
      if (e.type !== 'symlink') break;
      cur = e.target.startsWith('/') ? e.target : `${cur.slice(0, cur.lastIndexOf('/'))}/${e.target}`;
    }
  }
  ensureParents(out);
  return out;
}
