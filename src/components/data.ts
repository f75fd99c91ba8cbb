/**
 * Components that are only data: which files to take from which Debian package,
 * files kjx writes for them, and the plain facts the plan merges (kernel
 * modules, services, stage-1 lines, smoke checks, memory, a pivotable root). Most
 * of the built-in components are declared this way (runit, dropbear, bpftool,
 * ftrace, runc, ...), and so are the ones users write in component files
 * (user.ts). A component with logic (busybox reads its applets from the binary)
 * implements the Component hooks itself.
 *
 * Adding a data component is one file and one line in the registry (index.ts);
 * docs/ARCHITECTURE.md has a worked example.
 */
import type { GuestService } from '../guest/services.js';
import { mergeTrees, type Tree } from '../rootfs/tree.js';
import type { Spec } from '../spec/schema.js';
import type { AssembleContext, Component, ModuleNeed, Role, Take, WholeTake } from './component.js';
import { takeFiles } from './component.js';

/**
 * A piece of assembly several components share (the container runtimes' check
 * root): the packages it reads and how it makes its files. Two components that
 * both use it get the same files, which merge.
 */
export interface SharedPart {
  packages: readonly string[];
  assemble(ctx: AssembleContext): Tree;
}

export interface ComponentData {
  name: string;
  /** Files taken from Debian packages, in order: exact guest paths of each package. */
  take?: readonly Take[];
  /** Packages taken whole or by globs (component files' `packages:`). */
  whole?: readonly WholeTake[];
  /** Shared pieces, assembled after the taken files. */
  with?: readonly SharedPart[];
  /** Files kjx writes for the component (helpers, checks), made when the base stage runs. */
  generated?: () => Tree;
  modules?: readonly ModuleNeed[];
  services?: readonly GuestService[];
  stage1?: readonly string[];
  /** Names of the smoke checks its files hold. */
  checks?: readonly string[];
  pivotRoot?: boolean;
  memoryMiB?: number;
  traceMemoryMiB?: number;
  requires?: readonly string[];
  excludes?: readonly string[];
  provides?: readonly Role[];
  /** Spec sections its files depend on (see Component.keyOf), by name: `['tracing']`. */
  keySections?: readonly (keyof Spec)[];
  probe?: readonly string[];
}

/** The Component a data declaration stands for. */
export function dataComponent(d: ComponentData): Component {
  const packages = [
    ...new Set([
      ...(d.take ?? []).map((t) => t.package),
      ...(d.whole ?? []).map((t) => t.package),
      ...(d.with ?? []).flatMap((p) => p.packages),
    ]),
  ];
  const c: Component = {
    name: d.name,
    packages: () => [...packages],
    assemble: (ctx) =>
      mergeTrees([
        ...(d.take ?? []).map((t) => takeFiles(t.package, ctx.staged(t.package), [...t.paths])),
        ...(d.with ?? []).map((p) => p.assemble(ctx)),
        ...(d.generated ? [d.generated()] : []),
      ]),
  };
  if (d.whole?.length) c.wholePackages = () => d.whole!.map((t) => ({ ...t }));
  if (d.modules?.length) c.kernelModules = () => d.modules!.map((m) => ({ ...m }));
  if (d.services?.length) c.services = () => [...d.services!];
  if (d.stage1?.length) c.stage1 = () => [...d.stage1!];
  if (d.checks?.length) c.checks = () => [...d.checks!];
  if (d.keySections?.length) c.keyOf = (spec) => Object.fromEntries(d.keySections!.map((k) => [k, spec[k]]));
  if (d.pivotRoot) c.pivotRoot = true;
  if (d.memoryMiB !== undefined) c.memoryMiB = d.memoryMiB;
  if (d.traceMemoryMiB !== undefined) c.traceMemoryMiB = d.traceMemoryMiB;
  if (d.requires?.length) c.requires = d.requires;
  if (d.excludes?.length) c.excludes = d.excludes;
  if (d.provides?.length) c.provides = d.provides;
  if (d.probe?.length) c.probe = d.probe;
  return c;
}
