/**
 * Names, defaults and small helpers of the spec that the plan, the components, the
 * guest's generators and the BPF compiler use at run time, apart from the zod schema: a `kjx run` whose spec was
 * validated before (pipeline/spec-cache.ts) then loads no zod at all.
 */

import { basename } from 'node:path';
import type { ImageSpec } from './images.js';
import type { ProgramSpec } from './programs.js';

/** A `components:` entry that names a component file rather than a built-in component. */
export function isComponentPath(ref: string): boolean {
  return ref.includes('/') || /\.ya?ml$/.test(ref);
}

/** Services kjx adds itself; a spec service may not take their names while they are on. */
export const SSH_SERVICE = 'ssh';
export const CONSOLE_SERVICE = 'console';
/** Handles the ACPI power button (src/guest/power-button.ts). */
export const ACPID_SERVICE = 'acpid';

/** Seconds a service may take to become ready before boot reports it as not ready. */
export const DEFAULT_READY_TIMEOUT = 60;

/** The Debian packages the spec's built images need (the build plans them like components' packages). */
export function imagePackages(images: readonly ImageSpec[]): string[] {
  return [...new Set(images.flatMap((i) => (i.kind === 'build' ? [i.from] : [])))].sort();
}

/** The stem of a BPF source: `top.bpf.c` -> `top` (its object is `top.bpf.o`, its skeleton `top.skel.h`). */
export function bpfStem(bpfPath: string): string {
  return basename(bpfPath).replace(/(\.bpf)?\.c$/, '');
}

/** The program as it bears on the image: host paths as written. */
export function portableProgram(p: ProgramSpec): unknown {
  return {
    name: p.name,
    bpf: p.bpfRef,
    loader:
      p.loader.kind === 'c'
        ? { kind: 'c', sources: p.loader.sourceRefs }
        : p.loader.kind === 'go'
          ? { kind: 'go', dir: p.loader.dirRef }
          : p.loader,
  };
}
