/**
 * The schema of a component file: a component of the user's own, named in
 * kjx.yaml's `components:` by its path (`./components/mytool.yaml`). It has the
 * shape of a built-in data component (src/components/data.ts): Debian packages,
 * files from the host (each pinned by its sha256), services with readiness (the
 * schema of kjx.yaml's `services:`), kernel modules, stage-1 lines, smoke checks
 * and the guest memory it needs. Like kjx.yaml's, this zod schema is the single
 * source of the types, the messages and the published JSON Schema
 * (schema/kjx-component.schema.json, docs/components.md).
 */
import { z } from 'zod';
import { expected } from './messages.js';
import type { SpecSource } from './positions.js';
import {
  type AptPackageSpec,
  DEB_NAME_RE,
  guestPath,
  hostPath,
  MODULE_RE,
  modeSchema,
  packageItem,
  SERVICE_NAME_RE,
  type ServiceSpec,
  serviceObject,
} from './schema.js';

/** A file from the build host, taken only when its content has the pinned sha256. */
export interface ComponentHostFile {
  kind: 'host';
  /** Absolute guest path. */
  path: string;
  mode: number;
  /** Absolute host path after loading (relative ones are relative to the component file). */
  from: string;
  /** As written in the component file. */
  fromRef: string;
  sha256: string;
}

/** A file with its content written in the component file. */
export interface ComponentInlineFile {
  kind: 'inline';
  path: string;
  mode: number;
  content: string;
}

export type ComponentFileEntry = ComponentHostFile | ComponentInlineFile;

/** A kernel module the component needs; an optional one is taken when the kernel has it. */
export interface ComponentModuleSpec {
  name: string;
  optional: boolean;
}

/** The validated content of a component file. */
export interface ComponentFileSpec {
  name: string;
  description?: string;
  packages: AptPackageSpec[];
  files: ComponentFileEntry[];
  services: Record<string, ServiceSpec>;
  modules: ComponentModuleSpec[];
  stage1: string[];
  /** Smoke check name -> its shell script body (`kjx test` runs it in the guest). */
  checks: Record<string, string>;
  /** Guest memory in MiB that `kjx run`, `boot` and `test` give the image at least. */
  memory?: number;
  pivotRoot: boolean;
}

/** A component file as `loadSpec` read it: its content and where it came from. */
export interface LoadedComponentFile extends ComponentFileSpec {
  /** The `components:` entry as written in kjx.yaml. */
  ref: string;
  /** Its index in `components:`, for messages pointing at the entry. */
  index: number;
  /** Absolute path of the component file. */
  path: string;
  /** sha256 of the file's text: part of the build's cache keys. */
  sha256: string;
  source: SpecSource;
}

const SHA256_RE = /^[0-9a-f]{64}$/;
/** Check names end up on `kjx test`'s command line and in its @@check lines. */
const CHECK_NAME_RE = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
/** Default mode of a component's files: what kjx.yaml's `files:` uses. */
const FILE_MODE = 0o644;

const fileItem = z
  .object({
    path: guestPath.describe('Absolute path inside the guest, e.g. /usr/local/bin/mytool.'),
    from: hostPath
      .optional()
      .describe('Host file to copy, relative to the directory of this component file. Needs sha256.'),
    sha256: z
      .string()
      .regex(SHA256_RE, {
        error: (iss) => expected('a sha256 of 64 lowercase hex digits (as `sha256sum` prints it)', iss.input),
      })
      .optional()
      .describe(
        'The sha256 the host file must have (as `sha256sum FILE` prints it): a file that differs is refused, so what the image holds is what was pinned.',
      ),
    content: z.string().optional().describe('Contents of the file, inline. Exactly one of content or from.'),
    mode: modeSchema
      .optional()
      .describe('Permission bits: an octal string like "0755" or a number. Default: 0644.'),
  })
  .strict()
  .superRefine((f, ctx) => {
    if (f.from !== undefined && f.content !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['content'],
        message: 'give either "content" or "from", not both',
      });
    else if (f.from === undefined && f.content === undefined)
      ctx.addIssue({ code: 'custom', message: 'a file needs "content" or "from" (with "sha256")' });
    if (f.from !== undefined && f.sha256 === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['from'],
        message: 'a file from the host needs "sha256": the sum `sha256sum` prints for it',
      });
    if (f.from === undefined && f.sha256 !== undefined)
      ctx.addIssue({ code: 'custom', path: ['sha256'], message: '"sha256" pins a file given by "from"' });
  })
  .transform((f): ComponentFileEntry => {
    const mode = f.mode ?? FILE_MODE;
    if (f.content !== undefined) return { kind: 'inline', path: f.path, mode, content: f.content };
    // `from` stays as written here; loading resolves it against the component file's directory
    const from = f.from ?? '';
    return { kind: 'host', path: f.path, mode, from, fromRef: from, sha256: f.sha256 ?? '' };
  })
  .describe('One file the component puts into the guest: from the host (pinned by sha256) or inline.');

const moduleName = z.string().regex(MODULE_RE, {
  error: (iss) => expected('a module name (letters, digits, "_" and "-"), like "virtio_net"', iss.input),
});

const moduleItem = z
  .union(
    [
      moduleName
        .transform((name): ComponentModuleSpec => ({ name, optional: false }))
        .describe('A module name as modprobe knows it, like "overlay": the build fails without it.'),
      z
        .object({
          name: moduleName.describe('The module name, like "overlay".'),
          optional: z
            .boolean()
            .default(false)
            .describe('Taken when the kernel has it, skipped otherwise (the component copes without it).'),
        })
        .strict()
        .describe('A module with options.'),
    ],
    {
      error: (iss) => expected('a module name, or a mapping with "name" (and "optional")', iss.input, 'type'),
    },
  )
  .describe('A kernel module the component needs; the modules it depends on come along.');

/** What a component file may hold. Parse with `load.ts` for positions and friendly messages. */
export const componentFileSchema = z
  .object({
    name: z
      .string()
      .regex(DEB_NAME_RE, {
        error: (iss) =>
          expected('a lowercase name of letters, digits, "+", "." and "-" (at least two)', iss.input),
      })
      .describe('Name of the component, for messages, the manifest and stage 1; unlike any built-in one.'),
    description: z.string().optional().describe('What the component is, for people reading the file.'),
    packages: z
      .array(packageItem)
      .superRefine((list, ctx) => {
        list.forEach((p, i) => {
          if (p.kind === 'local')
            ctx.addIssue({
              code: 'custom',
              path: [i],
              input: p.pathRef,
              message:
                'a component takes Debian packages by name; give a local .deb in kjx.yaml\'s "packages"',
            });
        });
      })
      .transform((list) => list as AptPackageSpec[])
      .prefault(() => [])
      .describe(
        'Debian packages, resolved and pinned in kjx.lock like every package: "name", "name=version" or {name, version, paths}. Without paths, every file except documentation; libraries the binaries need come along either way.',
      ),
    files: z
      .array(fileItem)
      .superRefine((files, ctx) => {
        const firstAt = new Map<string, number>();
        files.forEach((f, i) => {
          const first = firstAt.get(f.path);
          if (first === undefined) firstAt.set(f.path, i);
          else
            ctx.addIssue({
              code: 'custom',
              path: [i, 'path'],
              message: `${JSON.stringify(f.path)} is already given by files[${first}]`,
            });
        });
      })
      .prefault(() => [])
      .describe('Files the component puts into the guest: host files pinned by sha256, or inline content.'),
    services: z
      .record(z.string(), serviceObject)
      .superRefine((services, ctx) => {
        for (const name of Object.keys(services))
          if (!SERVICE_NAME_RE.test(name))
            ctx.addIssue({
              code: 'custom',
              path: [name],
              message: expected('a service name of lowercase letters, digits, ".", "_" and "-"', name),
            });
      })
      .prefault(() => ({}))
      .describe(
        "Services the component runs under runit, by name: the schema of kjx.yaml's services (run, needs, ready, restart, user, env, log, finish, stopSignal). kjx.yaml's services may need them.",
      ),
    modules: z
      .array(moduleItem)
      .superRefine((list, ctx) => {
        const firstAt = new Map<string, number>();
        list.forEach((m, i) => {
          const first = firstAt.get(m.name);
          if (first === undefined) firstAt.set(m.name, i);
          else
            ctx.addIssue({
              code: 'custom',
              path: [i],
              message: `${JSON.stringify(m.name)} is listed twice (first as modules[${first}])`,
            });
        });
      })
      .prefault(() => [])
      .describe('Kernel modules the component needs, loaded at boot: "name" or {name, optional}.'),
    stage1: z
      .array(z.string().min(1).describe('One line of sh, run as root.'))
      .prefault(() => [])
      .describe(
        'Lines of runit stage 1 (mounts, directories, sysctls), run after networking and before the boot tasks and services.',
      ),
    checks: z
      .record(
        z.string().regex(CHECK_NAME_RE, {
          error: (iss) => expected('a check name of lowercase letters, digits, ".", "_" and "-"', iss.input),
        }),
        z.string().min(1).describe('The check: sh lines; exit 0 for pass.'),
      )
      .prefault(() => ({}))
      .describe(
        'Smoke checks by name: shell scripts `kjx test` runs in a booted guest (/usr/lib/kjx/checks/NAME), passing when they exit 0.',
      ),
    memory: z
      .number()
      .int()
      .min(64)
      .max(1024 * 1024)
      .optional()
      .describe('Guest memory in MiB that kjx run, boot and test give the image at least.'),
    pivotRoot: z
      .boolean()
      .default(false)
      .describe(
        'The component calls pivot_root(2) (container runtimes do): an initramfs root is made pivotable at boot.',
      ),
  })
  .strict()
  .transform(
    (c): ComponentFileSpec => ({
      name: c.name,
      ...(c.description === undefined ? {} : { description: c.description }),
      packages: c.packages,
      files: c.files,
      services: c.services,
      modules: c.modules,
      stage1: c.stage1,
      checks: c.checks,
      ...(c.memory === undefined ? {} : { memory: c.memory }),
      pivotRoot: c.pivotRoot,
    }),
  )
  .describe(
    'A kjx component file: packages, pinned host files, services, kernel modules, stage-1 lines and smoke checks of one component (docs/components.md).',
  );

/** What may be written in a component file. */
export type ComponentFileInput = z.input<typeof componentFileSchema>;
