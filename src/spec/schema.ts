/**
 * The schema of kjx.yaml: the single source of the Spec types, their defaults, the
 * validation messages and (through `json-schema.ts`) the published JSON Schema.
 *
 * Every object is strict, so a typo is an error rather than a silently ignored key,
 * and every field carries `.describe()`, which becomes its JSON Schema description.
 * Inputs are forgiving where YAML makes that cheap (a package is a string or a
 * mapping, a mode a number or an octal string); outputs are normalized into plain
 * discriminated unions so later stages never re-parse strings.
 */
import { posix } from 'node:path';
import { z } from 'zod';
import { expected } from './messages.js';

/** Components kjx knows how to add. A new component adds one name here. */
export const COMPONENTS = ['busybox', 'busybox-static', 'runit', 'dropbear'] as const;
/** What an image has when the spec names no components. */
export const DEFAULT_COMPONENTS: Component[] = ['busybox', 'runit', 'dropbear'];
export type Component = (typeof COMPONENTS)[number];

/** Artifact formats kjx writes. Later: 'iso', 'raw', 'qcow2', 'vmdk', 'tar', 'oci'. */
export const OUTPUTS = ['initramfs'] as const;
export type OutputFormat = (typeof OUTPUTS)[number];

/** Compression of the initramfs (and, later, of other stream artifacts). */
export const COMPRESSIONS = ['gzip', 'zstd', 'xz', 'none'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

export const FILE_TYPES = ['file', 'dir', 'symlink'] as const;
export type FileType = (typeof FILE_TYPES)[number];

export const DEFAULT_KERNEL_PACKAGE = 'linux-image-cloud-amd64';
export const DEFAULT_CMDLINE = 'console=ttyS0 quiet';
/** Enough for a QEMU guest: the PCI transport (no virtio device appears without it), network, disk, console, entropy and vsock. */
export const DEFAULT_MODULES = [
  'virtio_pci',
  'virtio_net',
  'virtio_blk',
  'virtio_console',
  'virtio_rng',
  'vmw_vsock_virtio_transport',
] as const;

/*
 * Normalized shapes of the fields a transform rewrites. They are the contract with
 * later stages; `Spec` (below) is still `z.output` of the schema, which returns them.
 */

/** A package apt resolves and downloads. Without `paths`: every file except documentation. */
export interface AptPackageSpec {
  kind: 'apt';
  name: string;
  /** Exact version asked for; absent means what apt resolves (then pinned in kjx.lock). */
  version?: string;
  /** Globs of guest paths to take. */
  paths?: string[];
}

/** A .deb file on the host. */
export interface LocalPackageSpec {
  kind: 'local';
  /** Absolute after loadSpec/parseSpec. */
  path: string;
  /** As written in kjx.yaml, for messages. */
  pathRef: string;
  paths?: string[];
}

export type PackageSpec = AptPackageSpec | LocalPackageSpec;

/** File owner; numeric ids as numbers, "root" as 0, other names resolved against the guest's users. */
export interface Owner {
  user: number | string;
  group: number | string;
}

interface FileSpecBase {
  /** Absolute, normalized guest path. */
  path: string;
  /** Permission bits (0o7777). */
  mode: number;
  owner: Owner;
  /** May replace an entry a package or component put at the same path. */
  override: boolean;
}

export interface InlineFileSpec extends FileSpecBase {
  type: 'file';
  content: string;
}

export interface HostFileSpec extends FileSpecBase {
  type: 'file';
  /** Absolute host path after loadSpec/parseSpec. */
  from: string;
  /** As written in kjx.yaml, for messages. */
  fromRef: string;
}

export interface DirSpec extends FileSpecBase {
  type: 'dir';
}

export interface SymlinkSpec extends FileSpecBase {
  type: 'symlink';
  target: string;
}

export type FileSpec = InlineFileSpec | HostFileSpec | DirSpec | SymlinkSpec;

interface KernelSpecBase {
  cmdline: string;
  modules: string[];
}

/** Kernel and modules from a Debian package. */
export interface PackageKernelSpec extends KernelSpecBase {
  kind: 'package';
  package: string;
}

/** A kernel image (and optionally its modules) from the host. */
export interface ImageKernelSpec extends KernelSpecBase {
  kind: 'image';
  /** Absolute host path after loadSpec/parseSpec. */
  image: string;
  imageRef: string;
  /** Host lib/modules/<version> directory; absolute after loadSpec/parseSpec. */
  modulesDir?: string;
  modulesDirRef?: string;
}

export type KernelSpec = PackageKernelSpec | ImageKernelSpec;

/** Modes by entry type when `mode` is not given: executables must say so. */
const DEFAULT_MODES: Record<FileType, number> = { file: 0o644, dir: 0o755, symlink: 0o777 };

const NAME_RE = /^[a-z0-9][a-z0-9._-]*$/;
const VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9.+~_-]*$/;
/** RFC 1123 label: 1–63 letters, digits and hyphens, no hyphen at either end. */
const HOSTNAME_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const MODULE_RE = /^[A-Za-z0-9_-]+$/;
/** Debian policy 5.6.1: lowercase, at least two characters, starting alphanumeric. */
const DEB_NAME_RE = /^[a-z0-9][a-z0-9+.-]+$/;
/** Debian policy 5.6.12, loosely: [epoch:]upstream[-revision]. */
const DEB_VERSION_RE = /^[0-9][A-Za-z0-9.+~:-]*$/;
/** chmod-style octal: "644", "0755", "04755", "0o755". */
const OCTAL_MODE_RE = /^(?:0o?)?[0-7]{3,4}$/;
const OWNER_PART = '(?:[0-9]+|[a-z_][a-z0-9_-]*\\$?)';
const OWNER_RE = new RegExp(`^(${OWNER_PART})(?::(${OWNER_PART}))?$`);

const PACKAGE_REF_WORDS =
  'a Debian package name like "curl" or "curl=7.88.1-10", or a path to a local file ending in .deb';

/** A list whose items must differ; the duplicate points at its second occurrence. */
function uniqueList<T extends z.ZodType>(item: T, field: string) {
  return z.array(item).superRefine((list, ctx) => {
    const firstAt = new Map<unknown, number>();
    list.forEach((value, i) => {
      const first = firstAt.get(value);
      if (first === undefined) firstAt.set(value, i);
      else
        ctx.addIssue({
          code: 'custom',
          path: [i],
          input: value,
          message: `${JSON.stringify(value)} is listed twice (first as ${field}[${first}])`,
        });
    });
  });
}

/** A path on the build host; relative ones are relative to the spec file's directory. */
const hostPath = z.string().min(1);

/** An absolute path inside the guest, normalized ("/etc//motd/" → "/etc/motd"). */
const guestPath = z
  .string()
  .superRefine((p, ctx) => {
    let problem: string | undefined;
    if (!p.startsWith('/')) problem = 'an absolute guest path starting with "/"';
    else if (p.split('/').includes('..')) problem = 'a guest path without ".." segments';
    else if (p.includes('\0')) problem = 'a guest path without NUL characters';
    else if (posix.normalize(p) === '/') problem = 'a path below "/" (the root itself cannot be replaced)';
    if (problem !== undefined) ctx.addIssue({ code: 'custom', input: p, message: expected(problem, p) });
  })
  .transform((p) => posix.normalize(p).replace(/\/+$/, ''));

/** A Debian package reference as written in `packages`: `name`, `name=version` or `path.deb`. */
type PackageRef = { kind: 'apt'; name: string; version?: string } | { kind: 'local'; path: string };

/** Parse a package reference, or say what is wrong with it. */
function parsePackageRef(ref: string): PackageRef | string {
  if (ref.endsWith('.deb')) {
    return ref.length > '.deb'.length ? { kind: 'local', path: ref } : expected(PACKAGE_REF_WORDS, ref);
  }
  const eq = ref.indexOf('=');
  const name = eq < 0 ? ref : ref.slice(0, eq);
  const version = eq < 0 ? undefined : ref.slice(eq + 1);
  if (!DEB_NAME_RE.test(name)) return expected(PACKAGE_REF_WORDS, ref);
  if (version !== undefined && !DEB_VERSION_RE.test(version)) {
    return expected('a Debian version after "=" (starting with a digit)', ref);
  }
  return version === undefined ? { kind: 'apt', name } : { kind: 'apt', name, version };
}

const packageString = z
  .string()
  .superRefine((ref, ctx) => {
    const parsed = parsePackageRef(ref);
    if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', input: ref, message: parsed });
  })
  .transform((ref): PackageSpec => toPackageSpec(parsePackageRef(ref) as PackageRef, undefined))
  .describe(
    'A Debian package name ("curl"), pinned to a version ("curl=7.88.1-10"), or a host path ending in .deb.',
  );

const globList = z
  .array(
    z
      .string()
      .refine((g) => g.startsWith('/'), {
        error: (iss) => expected('an absolute glob of guest paths like "/usr/bin/*"', iss.input),
      })
      .describe('A glob of guest paths, like "/usr/bin/strace" or "/usr/lib/x86_64-linux-gnu/*.so*".'),
  )
  .min(1);

const packageObject = z
  .object({
    name: z.string().describe(`The package: ${PACKAGE_REF_WORDS}.`),
    version: z
      .string()
      .regex(DEB_VERSION_RE, {
        error: (iss) => expected('a Debian version (starting with a digit)', iss.input),
      })
      .optional()
      .describe(
        'Exact Debian version to install (apt packages only). Default: what apt resolves, pinned in kjx.lock.',
      ),
    paths: globList
      .optional()
      .describe('Globs of guest paths to take from the package. Default: every file except documentation.'),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (p.name.includes('=')) {
      ctx.addIssue({
        code: 'custom',
        path: ['name'],
        input: p.name,
        message: expected('a package name without "=" (put the version in "version")', p.name),
      });
      return;
    }
    const parsed = parsePackageRef(p.name);
    if (typeof parsed === 'string')
      ctx.addIssue({ code: 'custom', path: ['name'], input: p.name, message: parsed });
    else if (parsed.kind === 'local' && p.version !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['version'],
        input: p.version,
        message: 'a local .deb carries its own version; remove "version"',
      });
    }
  })
  .transform((p): PackageSpec => {
    const ref = parsePackageRef(p.name) as PackageRef;
    return toPackageSpec(
      ref.kind === 'apt' && p.version !== undefined ? { ...ref, version: p.version } : ref,
      p.paths,
    );
  })
  .describe('A package with options: which version, which files to take.');

function toPackageSpec(ref: PackageRef, paths: string[] | undefined): PackageSpec {
  // Optional keys are left out rather than set to undefined, so specs compare equal
  // however they were written.
  const spec: PackageSpec =
    ref.kind === 'local'
      ? { kind: 'local', path: ref.path, pathRef: ref.path }
      : ref.version === undefined
        ? { kind: 'apt', name: ref.name }
        : { kind: 'apt', name: ref.name, version: ref.version };
  return paths === undefined ? spec : { ...spec, paths };
}

const packageItem = z
  .union([packageString, packageObject], {
    error: (iss) =>
      expected(`${PACKAGE_REF_WORDS}, or a mapping with "name" (and "version", "paths")`, iss.input, 'type'),
  })
  .describe('One extra package.');

const modeSchema = z.union(
  [
    z
      .number()
      .int()
      .min(0)
      .max(0o7777, { error: (iss) => expected('a mode up to 0o7777 (4095)', iss.input) }),
    z
      .string()
      .regex(OCTAL_MODE_RE, { error: (iss) => expected('an octal mode like "0644" or "0755"', iss.input) })
      .transform((s) => Number.parseInt(s.replace(/^0o/, ''), 8)),
  ],
  {
    error: (iss) =>
      expected('a mode: an octal string like "0755" or a number up to 0o7777', iss.input, 'type'),
  },
);

const ownerSchema = z
  .string()
  .regex(OWNER_RE, {
    error: (iss) =>
      expected('an owner like "root", "0:0" or "1000:1000" (user[:group], names or numbers)', iss.input),
  })
  .transform((s): Owner => {
    const [, user = '0', group = user] = OWNER_RE.exec(s) ?? [];
    return { user: ownerId(user), group: ownerId(group) };
  });

/** Numbers become ids; "root" is always 0, other names are resolved against the guest's users later. */
function ownerId(part: string): number | string {
  if (/^[0-9]+$/.test(part)) return Number(part);
  return part === 'root' ? 0 : part;
}

const fileObject = z
  .object({
    path: guestPath.describe('Absolute path inside the guest, e.g. /etc/motd.'),
    type: z
      .enum(FILE_TYPES)
      .default('file')
      .describe('What to create: a regular file, a directory or a symbolic link.'),
    content: z.string().optional().describe('Contents of the file, inline. Exactly one of content or from.'),
    from: hostPath
      .optional()
      .describe('Host file to copy, relative to the directory of kjx.yaml. Exactly one of content or from.'),
    target: z.string().min(1).optional().describe('Where a symlink points (required for type: symlink).'),
    mode: modeSchema
      .optional()
      .describe(
        'Permission bits: an octal string like "0755" or a number. Default: 0644 for files ' +
          '(also for executable host files), 0755 for directories; symlinks are always 0777.',
      ),
    owner: ownerSchema
      .prefault('0:0')
      .describe('Owner as user[:group], names or numeric ids: "root", "0:0", "1000:1000". Default: 0:0.'),
    override: z
      .boolean()
      .default(false)
      .describe(
        'Replace a file that a package or component already puts at this path (otherwise a conflict).',
      ),
  })
  .strict()
  .superRefine((f, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    const has = (key: 'content' | 'from' | 'target') => f[key] !== undefined;
    if (f.type === 'file') {
      if (has('content') && has('from')) issue('from', 'give either "content" or "from", not both');
      if (!has('content') && !has('from'))
        ctx.addIssue({ code: 'custom', message: 'a file needs "content" or "from"' });
      if (has('target')) issue('target', '"target" is only for type: symlink');
    } else {
      const extra = (['content', 'from'] as const).filter(has);
      for (const key of extra) issue(key, `a ${f.type} has no ${JSON.stringify(key)}`);
      if (f.type === 'dir' && has('target')) issue('target', '"target" is only for type: symlink');
      if (f.type === 'symlink' && !has('target'))
        ctx.addIssue({ code: 'custom', message: 'a symlink needs "target"' });
      if (f.type === 'symlink' && f.mode !== undefined)
        issue('mode', 'a symlink has no mode of its own (always 0777)');
    }
  })
  .transform((f): FileSpec => {
    const common = {
      path: f.path,
      mode: f.mode ?? DEFAULT_MODES[f.type],
      owner: f.owner,
      override: f.override,
    };
    if (f.type === 'dir') return { type: 'dir', ...common };
    if (f.type === 'symlink') return { type: 'symlink', ...common, target: f.target ?? '' };
    if (f.content !== undefined) return { type: 'file', ...common, content: f.content };
    // `from` stays as written here; loadSpec resolves it against the spec's directory.
    const from = f.from ?? '';
    return { type: 'file', ...common, from, fromRef: from };
  })
  .describe('One file, directory or symlink in the guest.');

const kernelObject = z
  .object({
    package: z
      .string()
      .regex(DEB_NAME_RE, {
        error: (iss) => expected('a Debian package name like "linux-image-amd64"', iss.input),
      })
      .optional()
      .describe(
        `Debian package holding the kernel and its modules. Default: ${DEFAULT_KERNEL_PACKAGE} (unless image is given).`,
      ),
    image: hostPath
      .optional()
      .describe('Host path to a kernel image (bzImage) to use instead of a package, relative to kjx.yaml.'),
    modulesDir: hostPath
      .optional()
      .describe(
        'Host path to the lib/modules/<version> directory that belongs to image, relative to kjx.yaml.',
      ),
    cmdline: z.string().default(DEFAULT_CMDLINE).describe('Kernel command line used when booting.'),
    modules: uniqueList(
      z
        .string()
        .regex(MODULE_RE, {
          error: (iss) =>
            expected('a module name (letters, digits, "_" and "-"), like "virtio_net"', iss.input),
        })
        .describe('A module name as modprobe knows it, like "virtio_net".'),
      'kernel.modules',
    )
      .default(() => [...DEFAULT_MODULES])
      .describe('Kernel modules to include and load at boot; the modules they depend on come along.'),
  })
  .strict()
  .superRefine((k, ctx) => {
    if (k.package !== undefined && k.image !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['image'],
        message:
          'give either "package" (a Debian kernel package) or "image" (a kernel file on the host), not both',
      });
    }
    if (k.modulesDir !== undefined && k.image === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['modulesDir'],
        message: '"modulesDir" goes with "image"; a kernel package brings its own modules',
      });
    }
  })
  .transform((k): KernelSpec => {
    const common = { cmdline: k.cmdline, modules: k.modules };
    if (k.image === undefined)
      return { kind: 'package', package: k.package ?? DEFAULT_KERNEL_PACKAGE, ...common };
    // Host paths stay as written here; loadSpec resolves them against the spec's directory.
    const image: ImageKernelSpec = { kind: 'image', image: k.image, imageRef: k.image, ...common };
    return k.modulesDir === undefined
      ? image
      : { ...image, modulesDir: k.modulesDir, modulesDirRef: k.modulesDir };
  });

/** The whole kjx.yaml. Parse with `load.ts` for positions and friendly messages. */
export const specSchema = z
  .object({
    name: z
      .string()
      .regex(NAME_RE, {
        error: (iss) => expected('a lowercase name of letters, digits, ".", "_" and "-"', iss.input),
      })
      .default('kjx')
      .describe('Name of the system; artifact file names start with it.'),
    version: z
      .string()
      .regex(VERSION_RE, {
        error: (iss) => expected('a version of letters, digits, ".", "+", "~", "_" and "-"', iss.input),
      })
      .default('0.1.0')
      .describe('Version of the system, recorded in the manifest and artifact names.'),
    hostname: z
      .string()
      .regex(HOSTNAME_RE, {
        error: (iss) =>
          expected(
            'a host name (RFC 1123: up to 63 letters, digits and "-", not starting or ending with "-")',
            iss.input,
          ),
      })
      .default('kjx')
      .describe('Host name the guest sets at boot.'),
    kernel: kernelObject
      .prefault({})
      .describe(
        'The kernel: a Debian package (default) or a kernel image from the host, its command line and modules.',
      ),
    components: uniqueList(z.enum(COMPONENTS).describe('A component name.'), 'components')
      .superRefine((list, ctx) => {
        // both ship /bin/busybox; one image has one
        const at = list.indexOf('busybox-static');
        if (at >= 0 && list.includes('busybox')) {
          ctx.addIssue({
            code: 'custom',
            path: [at],
            input: list[at],
            message: 'busybox and busybox-static exclude each other; keep one',
          });
        }
      })
      .default(() => [...DEFAULT_COMPONENTS])
      .describe(`Built-in components to include: ${COMPONENTS.join(', ')}.`),
    packages: z
      .array(packageItem)
      // prefault, not default: for a list of transformed items the input-side JSON
      // Schema only shows a default given this way.
      .prefault(() => [])
      .describe(
        'Extra Debian packages: "name", "name=version", a path to a local .deb, or {name, version, paths}.',
      ),
    files: z
      .array(fileObject)
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
      .describe('Files, directories and symlinks to add to the image.'),
    outputs: uniqueList(z.enum(OUTPUTS).describe('An artifact format.'), 'outputs')
      .min(1)
      .default(() => [...OUTPUTS])
      .describe(`Artifacts to write: ${OUTPUTS.join(', ')}.`),
    compression: z.enum(COMPRESSIONS).default('gzip').describe('Compression of the initramfs.'),
    sourceDateEpoch: z
      .number()
      .int()
      .min(0)
      .max(0xffffffff)
      .optional()
      .describe(
        'Timestamp (seconds since 1970) given to every file, for reproducible builds. Overrides the default epoch (SOURCE_DATE_EPOCH).',
      ),
  })
  .strict()
  // Where relative host paths point; '.' (the working directory) until loadSpec sets it.
  .transform((s) => ({ ...s, specDir: '.' }))
  .describe('kjx.yaml: what kjx builds — kernel, components, packages, files and artifacts.');

/** The validated, defaulted spec. Host paths are absolute after `loadSpec`/`parseSpec`. */
export type Spec = z.output<typeof specSchema>;
/** What may be written in kjx.yaml (every field optional). */
export type SpecInput = z.input<typeof specSchema>;

/** The spec of an empty kjx.yaml: every default. */
export function defaultSpec(): Spec {
  return specSchema.parse({});
}
