/**
 * A component is a named piece of the guest (busybox, runit, dropbear, ...): which
 * Debian packages it needs, which of their files it takes, and what else it adds
 * (kernel modules, services, stage-1 lines, files written knowing the kernel,
 * smoke checks, memory). A component is a plain value; the plan (src/plan/) asks
 * each one for its fragment of the image and merges them once. A component that
 * is only data is declared with `dataComponent` (data.ts); one with logic
 * implements the hooks itself.
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

/** What the guest needs some component to be: the shell /init runs, and PID 1 after it. */
export type Role = 'shell' | 'init';

export interface Component {
  name: string;
  /** Debian packages to download (their Depends are resolved for library closure). */
  packages(spec: Spec): string[];
  /** The files this component puts into the image (base stage: the packages' files). */
  assemble(ctx: AssembleContext): Tree;
  /** Packages whose files it takes whole or by globs (the base stage takes them, as kjx.yaml's `packages:`). */
  wholePackages?(spec: Spec): WholeTake[];
  /**
   * Kernel modules it needs: merged into the kernel stage's list like
   * `kernel.modules`, so they and their dependencies are in the image and loaded by
   * stage 1.
   */
  kernelModules?(spec: Spec): ModuleNeed[];
  /** Services it runs under runit; known before the build, so spec services may `needs:` them. */
  services?(spec: Spec): GuestService[];
  /** Lines of runit stage 1 (mounts, directories, sysctls), after networking, before boot tasks. */
  stage1?(spec: Spec): string[];
  /** Files generated at write time, knowing the kernel (config files, check images). */
  files?(ctx: GuestContext): Tree;
  /**
   * Its containers call pivot_root(2): an initramfs root is made pivotable early
   * in /init (src/guest/stages.ts), which the rootfs itself never is.
   */
  pivotRoot?: boolean;
  /** Guest memory in MiB that `kjx run`, `boot` and `test` give the image at least. */
  memoryMiB?: number;
  /** Guest memory in MiB that `kjx trace` gives the image at least (tracers it runs are large). */
  traceMemoryMiB?: number;
  /** Components it brings along (listed after the ones the spec names, in this order). */
  requires?: readonly string[];
  /** Components it cannot share an image with (two that ship the same binary). */
  excludes?: readonly string[];
  /** What the guest needs that it is: the plan refuses a spec without a shell or an init. */
  provides?: readonly Role[];
  /**
   * What its base-stage files depend on besides the packages (a spec section
   * that picks them), for the cache key: `{ tracing: spec.tracing }`.
   */
  keyOf?(spec: Spec): Record<string, unknown>;
  /** Smoke checks it ships (names under /usr/lib/kjx/checks), as far as known before the build. */
  checks?(spec: Spec): string[];
  /** Guest paths whose presence shows an image has it (`kjx trace --vm` probes a running guest). */
  probe?: readonly string[];
}

/** Files a component takes from one Debian package, by exact path (symlinks along the way come along). */
export interface Take {
  package: string;
  paths: readonly string[];
}

/**
 * Packages taken whole (every file but documentation) or by globs of paths, as
 * kjx.yaml's `packages:` entries and component files' `packages:` are; the base
 * stage takes them after the components' own files.
 */
export interface WholeTake {
  package: string;
  globs?: readonly string[];
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
