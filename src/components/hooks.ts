/**
 * The optional hooks of components (component.ts), gathered for the pipeline: the
 * kernel modules they need, their services, stage-1 lines and write-time files,
 * whether the root must be pivotable, and the guest memory they want.
 */

import type { GuestService } from '../guest/services.js';
import type { ComponentGuest } from '../guest/system.js';
import { mergeTrees, type Tree } from '../rootfs/tree.js';
import { NO_MODULES_DIR } from '../sources/kernel.js';
import type { Spec } from '../spec/schema.js';
import { KjxError } from '../util/errors.js';
import type { GuestContext } from './component.js';
import { componentsOf } from './index.js';

/** Guest memory (MiB) `kjx run`, `boot` and `test` use when not told: enough for the components. */
export const BASE_MEMORY_MIB = 512;

export interface ComponentModules {
  /** Must be in the kernel (loadable or built in). */
  required: string[];
  /** Taken when the kernel has them (the component falls back otherwise). */
  optional: string[];
  /** module -> the components asking for it, for messages. */
  askedBy: Map<string, string[]>;
}

/** The kernel modules the spec's components ask for, deduplicated, in component order. */
export function componentModules(spec: Spec): ComponentModules {
  const required: string[] = [];
  const optional: string[] = [];
  const askedBy = new Map<string, string[]>();
  for (const c of componentsOf(spec)) {
    for (const m of c.kernelModules?.(spec) ?? []) {
      askedBy.set(m.name, [...(askedBy.get(m.name) ?? []), c.name]);
      if (m.optional) {
        if (!optional.includes(m.name) && !required.includes(m.name)) optional.push(m.name);
      } else if (!required.includes(m.name)) {
        required.push(m.name);
        const at = optional.indexOf(m.name);
        if (at >= 0) optional.splice(at, 1);
      }
    }
  }
  return { required, optional, askedBy };
}

/**
 * A MODULE_MISSING error of the kernel stage, said again naming the component that
 * asked for the module (other errors pass through unchanged).
 */
export function explainModuleError(e: unknown, spec: Spec): unknown {
  if (!(e instanceof KjxError) || e.code !== 'MODULE_MISSING') return e;
  const { askedBy, required } = componentModules(spec);
  const fromComponents = required.filter((m) => !spec.kernel.modules.includes(m));
  if (fromComponents.length > 0 && e.reason === NO_MODULES_DIR) {
    const by = [...new Set(fromComponents.flatMap((m) => askedBy.get(m) ?? []))];
    return new KjxError(
      'MODULE_MISSING',
      `the ${by.join(', ')} component${by.length > 1 ? 's need' : ' needs'} kernel modules (${fromComponents.join(', ')}), but kernel.image has no kernel.modulesDir to take them from`,
      {
        hint: 'set kernel.modulesDir to the lib/modules/<version> directory of that kernel, use a kernel package, or leave the component out',
        cause: e,
      },
    );
  }
  const hit = [...askedBy].find(([m]) =>
    new RegExp(`(^|[^A-Za-z0-9_])${m}([^A-Za-z0-9_]|$)`).test(e.message),
  );
  if (!hit || spec.kernel.modules.includes(hit[0])) return e;
  const [module, by] = hit;
  return new KjxError(
    'MODULE_MISSING',
    `the ${by.join(' and ')} component${by.length > 1 ? 's need' : ' needs'} kernel module "${module}": ${e.message}`,
    {
      hint:
        spec.kernel.kind === 'image'
          ? 'give kernel.modulesDir with a kernel built with it (or built in), or leave the component out'
          : 'use a kernel package that has it (linux-image-amd64 or linux-image-cloud-amd64), or leave the component out',
      cause: e,
    },
  );
}

/**
 * Add a component's stage-1 lines under a `# <component>` header. A line another
 * component already added is not repeated (bridge networking's, for one), and
 * the header is left out when nothing is left under it.
 */
export function appendStage1(stage1: string[], component: string, lines: string[]): void {
  const fresh = lines.filter((l, i) => !stage1.includes(l) && lines.indexOf(l) === i);
  if (fresh.length > 0) stage1.push(`# ${component}`, ...fresh);
}

export function componentGuest(ctx: GuestContext): ComponentGuest {
  const services: GuestService[] = [];
  const stage1: string[] = [];
  const trees: Tree[] = [];
  let pivotRoot = false;
  for (const c of componentsOf(ctx.spec)) {
    for (const s of c.services?.(ctx) ?? []) if (!services.some((x) => x.name === s.name)) services.push(s);
    appendStage1(stage1, c.name, c.stage1?.(ctx) ?? []);
    if (c.files) trees.push(c.files(ctx));
    pivotRoot ||= c.pivotRoot === true;
  }
  return { services, stage1, files: mergeTrees(trees), pivotRoot };
}

/** The guest memory the spec's components want, at least BASE_MEMORY_MIB. */
export function defaultMemoryMiB(spec: Spec): number {
  return Math.max(BASE_MEMORY_MIB, ...componentsOf(spec).map((c) => c.memoryMiB ?? 0));
}
