/**
 * The components of a spec, merged once: each `components:` entry (a built-in
 * name or a component file) becomes a Component, what they require comes along,
 * and their fragments (packages, kernel modules and who asked for them,
 * services, stage-1 lines, write-time hooks, checks, memory, cache-key inputs)
 * are merged into one ComponentPlan. The cross-field rules that involve
 * components are checked here, with positions in kjx.yaml or in the component
 * file: names that exist, components that exclude each other, a shell and an
 * init, and how services relate (`needs:` names, reserved names, users, cycles).
 *
 * Pure: no apt, no file system (component files were read by `loadSpec`).
 */
import type { Component, GuestContext, ModuleNeed, WholeTake } from '../components/component.js';
import { builtinComponent, COMPONENT_NAMES } from '../components/index.js';
import { userComponent } from '../components/user.js';
import { type GuestService, guestServices, withBefore } from '../guest/services.js';
import { mergeTrees, type Tree } from '../rootfs/tree.js';
import { NO_MODULES_DIR } from '../sources/kernel.js';
import type { LoadedComponentFile } from '../spec/component-file.js';
import { didYouMean, expected } from '../spec/messages.js';
import { type FieldProblem, problemsError, type SpecSource, withSource } from '../spec/positions.js';
import type { Spec } from '../spec/schema.js';
import { ACPID_SERVICE, CONSOLE_SERVICE, isComponentPath, SSH_SERVICE } from '../spec/values.js';
import { KjxError } from '../util/errors.js';
import { findCycle } from '../util/graph.js';

/** Guest memory (MiB) `kjx run`, `boot`, `test` and `trace` use when not told: enough for the components. */
export const BASE_MEMORY_MIB = 512;

/** One component of the image and where the spec names it. */
export interface PlannedComponent {
  component: Component;
  /** The `components:` entry (name or path), or the name for one another component requires. */
  ref: string;
  /** Its index in `components:`; absent when another component brought it along. */
  index?: number;
  /** The component file it was read from. */
  file?: LoadedComponentFile;
  /** The component that required it. */
  requiredBy?: string;
}

export interface ComponentModules {
  /** Must be in the kernel (loadable or built in). */
  required: string[];
  /** Taken when the kernel has them (the component falls back otherwise). */
  optional: string[];
  /** module -> the components asking for it, for messages. */
  askedBy: Map<string, string[]>;
}

/** A write-time hook: files a component makes knowing the built kernel. */
export interface WriteTimeHook {
  component: string;
  files(ctx: GuestContext): Tree;
}

export interface ComponentPlan {
  /** The spec with `components` as the image has them: the listed ones, then what they require. */
  spec: Spec;
  components: PlannedComponent[];
  /** Root packages the components ask for, in component order. */
  packages: string[];
  /** Packages components take whole or by globs (component files' `packages:`). */
  whole: WholeTake[];
  modules: ComponentModules;
  /** Services components run, in component order. */
  services: GuestService[];
  /** Stage-1 lines, each component's under a `# NAME` header. */
  stage1: string[];
  writeTime: WriteTimeHook[];
  /** Smoke checks known before the build: check name -> component. */
  checks: Map<string, string>;
  pivotRoot: boolean;
  /** Guest memory for run, boot and test (MiB), at least BASE_MEMORY_MIB. */
  memoryMiB: number;
  /** Guest memory for trace (MiB), at least BASE_MEMORY_MIB. */
  traceMemoryMiB: number;
  /** What the components' base-stage files depend on besides their packages (cache key). */
  key: Record<string, unknown>;
}

/** The roles the guest cannot boot without, and what the error says when none fills one. */
const ROLES = [
  { role: 'shell', what: 'the guest init needs a shell' },
  { role: 'init', what: 'the guest needs an init (PID 1)' },
] as const;

/**
 * Add a component's stage-1 lines under a `# <component>` header. A line another
 * component already added is not repeated (bridge networking's, for one), and
 * the header is left out when nothing is left under it.
 */
export function appendStage1(stage1: string[], component: string, lines: string[]): void {
  const fresh = lines.filter((l, i) => !stage1.includes(l) && lines.indexOf(l) === i);
  if (fresh.length > 0) stage1.push(`# ${component}`, ...fresh);
}

/** A problem at a field of kjx.yaml. */
function inSpec(spec: Spec, path: PropertyKey[], message: string, atKey = false): FieldProblem {
  return { source: spec.source, path, message, atKey };
}

/** The components `components:` names, each found, in order; unknown names and clashes as problems. */
function findComponents(spec: Spec, problems: FieldProblem[]): PlannedComponent[] {
  const out: PlannedComponent[] = [];
  const files = new Map((spec.componentFiles ?? []).map((f) => [f.index, f]));
  spec.components.forEach((ref, index) => {
    if (isComponentPath(ref)) {
      const file = files.get(index);
      if (!file) {
        problems.push(inSpec(spec, ['components', index], `component file ${ref} was not read`));
        return;
      }
      const clash = builtinComponent(file.name)
        ? `"${file.name}" is the name of a built-in component; give this one another name`
        : out.some((c) => c.component.name === file.name)
          ? `"${file.name}" is already the name of another component in components`
          : undefined;
      if (clash) problems.push({ source: file.source, path: ['name'], message: clash });
      out.push({ component: userComponent(file, spec.specDir), ref, index, file });
      return;
    }
    const component = builtinComponent(ref);
    if (!component) {
      problems.push(
        inSpec(
          spec,
          ['components', index],
          `${expected(`one of ${COMPONENT_NAMES.join(', ')}`, ref)}${didYouMean(ref, COMPONENT_NAMES)}`,
        ),
      );
      return;
    }
    out.push({ component, ref, index });
  });
  // what they bring along, after the listed ones (each required one's requirements too)
  for (let i = 0; i < out.length; i++) {
    for (const name of out[i]!.component.requires ?? []) {
      if (out.some((c) => c.component.name === name)) continue;
      const component = builtinComponent(name);
      if (component) out.push({ component, ref: name, requiredBy: out[i]!.component.name });
    }
  }
  return out;
}

/** Where a problem about a component points: its entry in kjx.yaml, or the one that brought it. */
function entryOf(spec: Spec, list: PlannedComponent[], c: PlannedComponent): PropertyKey[] {
  if (c.index !== undefined) return ['components', c.index];
  const by = list.find((x) => x.component.name === c.requiredBy);
  return by ? entryOf(spec, list, by) : ['components'];
}

function checkExcludes(spec: Spec, list: PlannedComponent[], problems: FieldProblem[]): void {
  const seen = new Set<string>();
  for (const c of list) {
    for (const other of c.component.excludes ?? []) {
      const o = list.find((x) => x.component.name === other);
      const pair = [c.component.name, other].sort().join(' ');
      if (!o || seen.has(pair)) continue;
      seen.add(pair);
      // the one listed later is the one to point at
      const [first, later] = list.indexOf(o) < list.indexOf(c) ? [o, c] : [c, o];
      problems.push(
        inSpec(
          spec,
          entryOf(spec, list, later),
          `${first.component.name} and ${later.component.name} exclude each other; keep one`,
        ),
      );
    }
  }
}

function checkRoles(spec: Spec, list: PlannedComponent[], problems: FieldProblem[]): void {
  for (const { role, what } of ROLES) {
    if (list.some((c) => c.component.provides?.includes(role))) continue;
    const providers = COMPONENT_NAMES.filter((n) => builtinComponent(n)?.provides?.includes(role));
    problems.push(inSpec(spec, ['components'], `${what}: add the ${providers.join(' or ')} component`, true));
  }
}

/** A service of the image and where it is written (nowhere, for built-in ones). */
interface ServiceOrigin {
  service: GuestService;
  /** 'spec', 'builtin', or the component's name. */
  from: string;
  source?: SpecSource | undefined;
}

/**
 * How the image's services relate: names taken twice, `needs:` that name no
 * service, users that do not exist, dependency cycles. Spec services are
 * checked in kjx.yaml, component files' services in their files.
 */
function checkServices(spec: Spec, list: PlannedComponent[], problems: FieldProblem[]): ServiceOrigin[] {
  const builtins: ServiceOrigin[] = guestServices({ ...spec, services: {} }).map((service) => ({
    service,
    from: 'builtin',
  }));
  const fromSpec: ServiceOrigin[] = Object.entries(spec.services).map(([name, s]) => ({
    service: { name, spec: s },
    from: 'spec',
    source: spec.source,
  }));
  const fromComponents: ServiceOrigin[] = [];
  for (const c of list) {
    for (const service of c.component.services?.(spec) ?? []) {
      const taken =
        builtins.find((b) => b.service.name === service.name) ??
        fromComponents.find((o) => o.service.name === service.name);
      if (taken && c.file)
        problems.push({
          source: c.file.source,
          path: ['services', service.name],
          message:
            taken.from === 'builtin'
              ? `"${service.name}" is the name of a built-in service; rename this one`
              : `"${service.name}" is also a service of the ${taken.from} component; rename this one`,
        });
      if (!taken) fromComponents.push({ service, from: c.component.name, source: c.file?.source });
    }
  }
  for (const o of fromSpec) {
    const name = o.service.name;
    const message =
      name === SSH_SERVICE
        ? '"ssh" is the built-in SSH service; rename this one, or set ssh.enabled: false'
        : name === CONSOLE_SERVICE
          ? '"console" is the built-in console shell; rename this one, or set console: none'
          : name === ACPID_SERVICE
            ? '"acpid" is the built-in power button service; rename this one'
            : undefined;
    const component = fromComponents.find((c) => c.service.name === name);
    if (builtins.some((b) => b.service.name === name) && message)
      problems.push(inSpec(spec, ['services', name], message));
    else if (component)
      problems.push(
        inSpec(
          spec,
          ['services', name],
          `"${name}" is the service of the ${component.from} component; rename this one`,
        ),
      );
  }
  const names = [...fromSpec, ...builtins, ...fromComponents].map((o) => o.service.name);
  const uniqueNames = [...new Set(names)];
  const users = ['root', ...spec.users.map((u) => u.name)];
  const written = [...fromSpec, ...fromComponents.filter((o) => o.source !== undefined)];
  for (const o of written) {
    const { name, spec: s } = o.service;
    s.needs.forEach((dep, i) => {
      if (!uniqueNames.includes(dep))
        problems.push({
          source: o.source,
          path: ['services', name, 'needs', i],
          message: `unknown service ${JSON.stringify(dep)}${didYouMean(dep, uniqueNames)}; known: ${uniqueNames.join(', ') || 'none'}`,
        });
    });
    (s.before ?? []).forEach((target, i) => {
      const where = { source: o.source, path: ['services', name, 'before', i] };
      if (target === name)
        problems.push({ ...where, message: `a service cannot start before itself; remove "${name}"` });
      else if (!uniqueNames.includes(target))
        problems.push({
          ...where,
          message: `unknown service ${JSON.stringify(target)}${didYouMean(target, uniqueNames)}; known: ${uniqueNames.join(', ') || 'none'}`,
        });
    });
    if (!users.includes(s.user))
      problems.push({
        source: o.source,
        path: ['services', name, 'user'],
        message: `unknown user ${JSON.stringify(s.user)}${didYouMean(s.user, users)}; add it to users${o.from === 'spec' ? '' : ' in kjx.yaml'}`,
      });
  }
  // `before` edges count as the `needs` they become (withBefore), on any service they name
  const all = withBefore([...written, ...builtins, ...fromComponents].map((o) => o.service));
  const graph = new Map(all.map((sv) => [sv.name, sv.spec.needs]));
  const cycle = findCycle(graph);
  if (cycle) {
    const [from = '', to = ''] = cycle;
    // point at the spec's own edge in the cycle: a `needs` it wrote, else a `before`
    const pairs = cycle.slice(0, -1).map((f, i) => [f, cycle[i + 1]!] as const);
    const need = pairs
      .map(([f, t]) => ({ o: written.find((x) => x.service.name === f), f, t }))
      .find((p) => p.o?.service.spec.needs.includes(p.t));
    const bef = pairs
      .map(([f, t]) => ({ o: written.find((x) => x.service.name === t), f, t }))
      .find((p) => p.o?.service.spec.before?.includes(p.f));
    const at = need?.o
      ? { o: need.o, path: ['services', need.f, 'needs', need.o.service.spec.needs.indexOf(need.t)] }
      : bef?.o
        ? { o: bef.o, path: ['services', bef.t, 'before', bef.o.service.spec.before!.indexOf(bef.f)] }
        : { o: written.find((x) => x.service.name === from)!, path: ['services', from] };
    problems.push({
      source: at.o?.source,
      path: at.path,
      message: `${JSON.stringify(to)} makes a dependency cycle: ${cycle.join(' → ')}`,
    });
  }
  return fromComponents;
}

/** Checks of user component files must not take a name another component's check has. */
function mergeChecks(spec: Spec, list: PlannedComponent[], problems: FieldProblem[]): Map<string, string> {
  const checks = new Map<string, string>();
  for (const c of list) {
    for (const name of c.component.checks?.(spec) ?? []) {
      const other = checks.get(name);
      if (other !== undefined && c.file)
        problems.push({
          source: c.file.source,
          path: ['checks', name],
          message: `the ${other} component has a check "${name}" too; rename this one`,
          atKey: true,
        });
      else if (other === undefined) checks.set(name, c.component.name);
    }
  }
  return checks;
}

function mergeModules(spec: Spec, list: PlannedComponent[]): ComponentModules {
  const required: string[] = [];
  const optional: string[] = [];
  const askedBy = new Map<string, string[]>();
  for (const { component: c } of list) {
    for (const m of c.kernelModules?.(spec) ?? ([] as ModuleNeed[])) {
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
 * Merge the components of a spec into one plan, checking the rules that involve
 * them. All problems are reported at once, positioned like the schema's.
 * @throws KjxError SPEC_INVALID
 */
export function planComponents(spec: Spec): ComponentPlan {
  const problems: FieldProblem[] = [];
  const list = findComponents(spec, problems);
  checkExcludes(spec, list, problems);
  checkRoles(spec, list, problems);
  const services = checkServices(spec, list, problems).map((o) => o.service);
  const checks = mergeChecks(spec, list, problems);
  if (problems.length > 0) throw problemsError(problems);

  const planned: Spec = withSource({ ...spec, components: list.map((c) => c.ref) }, spec.source);
  const stage1: string[] = [];
  const key: Record<string, unknown> = {};
  for (const { component: c } of list) {
    appendStage1(stage1, c.name, c.stage1?.(planned) ?? []);
    Object.assign(key, c.keyOf?.(planned));
  }
  const max = (of: (c: Component) => number | undefined) =>
    Math.max(BASE_MEMORY_MIB, ...list.map((c) => of(c.component) ?? 0));
  return {
    spec: planned,
    components: list,
    packages: [...new Set(list.flatMap((c) => c.component.packages(planned)))],
    whole: list.flatMap((c) => c.component.wholePackages?.(planned) ?? []),
    modules: mergeModules(planned, list),
    services,
    stage1,
    writeTime: list.flatMap(({ component: c }) =>
      c.files ? [{ component: c.name, files: c.files.bind(c) }] : [],
    ),
    checks,
    pivotRoot: list.some((c) => c.component.pivotRoot === true),
    memoryMiB: max((c) => c.memoryMiB),
    traceMemoryMiB: max((c) => c.traceMemoryMiB),
    key,
  };
}

/** The files the write-time hooks make for the built kernel, merged in component order. */
export function writeTimeFiles(plan: Pick<ComponentPlan, 'writeTime' | 'spec'>, ctx: GuestContext): Tree {
  return mergeTrees(plan.writeTime.map((h) => h.files({ ...ctx, spec: plan.spec })));
}

/** What components add to the generated guest system at write time. */
export interface ComponentGuest {
  services: GuestService[];
  stage1: string[];
  files: Tree;
  /** Some component's containers need pivot_root(2). */
  pivotRoot: boolean;
}

/** The components' part of the guest system for a built kernel (`ctx.spec` as loaded). */
export function componentGuest(ctx: GuestContext): ComponentGuest {
  const p = planComponents(ctx.spec);
  return { services: p.services, stage1: p.stage1, files: writeTimeFiles(p, ctx), pivotRoot: p.pivotRoot };
}

/** The kernel modules the spec's components ask for, deduplicated, in component order. */
export function componentModules(spec: Spec): ComponentModules {
  return planComponents(spec).modules;
}

/** The guest memory the spec's components want, at least BASE_MEMORY_MIB. */
export function defaultMemoryMiB(spec: Spec): number {
  return planComponents(spec).memoryMiB;
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
          : spec.kernel.kind === 'build'
            ? "add the module's CONFIG_ option (=y or =m) to kernel.config, or leave the component out"
            : 'use a kernel package that has it (linux-image-amd64 or linux-image-cloud-amd64), or leave the component out',
      cause: e,
    },
  );
}
