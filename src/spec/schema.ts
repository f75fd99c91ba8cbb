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
import { COMPRESSIONS, type Compression } from '../util/compression.js';
import type { SourcePosition } from '../util/errors.js';
import type { LoadedComponentFile } from './component-file.js';
import { debVersionProblem } from './debian-grammar.js';
import { imagesList } from './images.js';
import {
  DEBIAN_KERNEL_SOURCE_PACKAGE,
  DEFAULT_KERNEL_PROFILE,
  type KernelConfigEntry,
  kernelConfigEntry,
} from './kernel-config.js';
import { expected } from './messages.js';
import { DEFAULT_OUTPUTS, OUTPUTS, type OutputFormat } from './outputs.js';
import type { SpecSource } from './positions.js';
import { tracingObject } from './tracing.js';
import { DEFAULT_READY_TIMEOUT, isComponentPath } from './values.js';

/**
 * What an image has when the spec names no components: a shell, the init and
 * the SSH server. Which components exist, what they bring along and what they
 * add is theirs to say (src/components/); the spec only names them.
 */
export const DEFAULT_COMPONENTS: ComponentRef[] = ['busybox', 'runit', 'dropbear'];
/**
 * The component `ssh:` configures: the SSH server is on by default when the spec
 * lists it, and asking for SSH without it is an error.
 */
export const SSH_COMPONENT = 'dropbear';
/**
 * An entry of `components:`: the name of a built-in component ("busybox") or a
 * path to a component file ("./components/mytool.yaml", relative to kjx.yaml).
 */
export type ComponentRef = string;

/** A name of a built-in component. */
const COMPONENT_NAME_RE = /^[a-z0-9][a-z0-9._+-]*$/;

// the outputs and their files and writers: one catalogue (outputs.ts)
export { DEFAULT_OUTPUTS, OUTPUTS, type OutputFormat };
/** Disk image size when `disk.size` is not given. */
export const DEFAULT_DISK_SIZE = '1G';

/** Compression of the initramfs: the formats of util/compression.ts. */
export { COMPRESSIONS, type Compression };

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

export { MICROVM_MODULE } from './machine.js';

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
  /**
   * Where kjx.yaml gives the entry (set by parseSpec), for messages about it.
   * Never part of a cache key or build id: moving a line must not rebuild.
   */
  position?: SourcePosition;
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

/** A kernel kjx builds from source: Debian's linux-source package or a tree on the host. */
export interface BuildKernelSpec extends KernelSpecBase {
  kind: 'build';
  source:
    | { kind: 'debian'; package: string }
    /** `path` absolute after loadSpec/parseSpec, `pathRef` as written. */
    | { kind: 'tree'; path: string; pathRef: string };
  /** A profile first, then fragments in order (spec/kernel-config.ts). */
  config: KernelConfigEntry[];
}

export type KernelSpec = PackageKernelSpec | ImageKernelSpec | BuildKernelSpec;

/*
 * The guest system: services, boot tasks, networking, users and SSH. How they map
 * onto runit is told in docs/services.md; the generators live in src/guest/.
 */

export const RESTART_POLICIES = ['always', 'on-failure', 'never'] as const;
export type RestartPolicy = (typeof RESTART_POLICIES)[number];
/** Signals `sv down`/`sv term` may deliver instead of TERM (libbpf-tools print their results on INT). */
export const STOP_SIGNALS = ['TERM', 'INT', 'HUP', 'QUIT', 'USR1', 'USR2', 'KILL'] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];
export const HOST_KEY_TYPES = ['ed25519', 'ecdsa', 'rsa'] as const;
export type HostKeyType = (typeof HOST_KEY_TYPES)[number];
export const CONSOLE_MODES = ['shell', 'none'] as const;
export type ConsoleMode = (typeof CONSOLE_MODES)[number];

/** How kjx knows a service is ready; dependents start only after that. */
export type ReadySpec = { timeout: number } & (
  | { kind: 'started' } // as soon as its program is started
  | { kind: 'signal' } // the program sends SIGUSR1 to its parent
  | { kind: 'file'; path: string } // a file appears
  | { kind: 'port'; port: number } // a TCP port is listening
  | { kind: 'check'; command: string } // a command succeeds
);

export interface RestartSpec {
  policy: RestartPolicy;
  /** Seconds before the first restart; doubled after each quick failure. */
  delay: number;
  /** The longest wait between restarts. */
  maxDelay: number;
}

/** svlogd into /var/log/NAME, rotated at `size` bytes, `keep` old files kept. */
export interface LogSpec {
  size: number;
  keep: number;
}

export interface ServiceSpec {
  /** Command line (sh syntax). */
  run: string;
  needs: string[];
  /**
   * Services of components (or of the spec) that must not start before this one is
   * ready: the reverse of `needs`, for services the spec does not write itself.
   */
  before?: string[];
  ready: ReadySpec;
  restart: RestartSpec;
  user: string;
  env: Record<string, string>;
  /** null: output goes to the console. */
  log: LogSpec | null;
  /** Command run after the service stopped. */
  finish?: string;
  stopSignal: StopSignal;
}

export interface TaskSpec {
  name: string;
  run: string;
  /** A failed required task stops the boot (runit goes to stage 3 and powers off). */
  required: boolean;
}

export type InterfaceSpec =
  | { kind: 'dhcp' }
  | { kind: 'static'; address: string; prefix: number; gateway?: string; dns: string[] };

/** An authorized key: a literal OpenSSH public key line, or a host file of them. */
export type KeySource = { kind: 'literal'; key: string } | { kind: 'file'; path: string; pathRef: string };

export interface UserSpec {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
  authorizedKeys: KeySource[];
}

export interface HostKeyFile {
  /** Absolute host path after loadSpec/parseSpec. */
  path: string;
  pathRef: string;
}

export interface SshSpec {
  enabled: boolean;
  port: number;
  /** Host key types generated at first boot. */
  hostKeys: HostKeyType[];
  /** Host keys given instead (dropbear, or OpenSSH ed25519 converted); they land in the image. */
  hostKeyFiles: HostKeyFile[];
  /** root may log in (by key; passwords are never accepted). */
  rootLogin: boolean;
}

/** Modes by entry type when `mode` is not given: executables must say so. */
const DEFAULT_MODES: Record<FileType, number> = { file: 0o644, dir: 0o755, symlink: 0o777 };

const NAME_RE = /^[a-z0-9][a-z0-9._-]*$/;
/** A size: bytes, or a number with K, M, G or T (powers of 1024; "KiB", "MB" and so on also read as such). */
const SIZE_RE = /^([0-9]+)\s*([KMGT])?(?:i?B)?$/i;
const VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9.+~_-]*$/;
/** RFC 1123 label: 1–63 letters, digits and hyphens, no hyphen at either end. */
const HOSTNAME_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
export const MODULE_RE = /^[A-Za-z0-9_-]+$/;
/** Debian policy 5.6.1: lowercase, at least two characters, starting alphanumeric. */
export const DEB_NAME_RE = /^[a-z0-9][a-z0-9+.-]+$/;
/** chmod-style octal: "644", "0755", "04755", "0o755". */
const OCTAL_MODE_RE = /^(?:0o?)?[0-7]{3,4}$/;
const OWNER_PART = '(?:[0-9]+|[a-z_][a-z0-9_-]*\\$?)';
const OWNER_RE = new RegExp(`^(${OWNER_PART})(?::(${OWNER_PART}))?$`);
/** Service and task names become directory names: no "/" and nothing hidden. */
export const SERVICE_NAME_RE = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
/** useradd's default NAME_REGEX. */
const USER_NAME_RE = /^[a-z_][a-z0-9_-]{0,31}$/;
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** sysctl keys: dotted (net.ipv4.ip_forward) or slashed (net/ipv4/ip_forward). */
const SYSCTL_RE = /^[A-Za-z0-9_-]+(?:[./][A-Za-z0-9_:-]+)+$/;
/** Interface names as the kernel allows them (IFNAMSIZ 16, with the NUL). */
const IFNAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
const IPV4_OCTET = '(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
const IPV4_RE = new RegExp(`^${IPV4_OCTET}(?:\\.${IPV4_OCTET}){3}$`);
/** An OpenSSH public key line: type, base64 blob, optional comment. */
const PUBLIC_KEY_RE =
  /^(?:ssh-(?:ed25519|rsa|dss)|ecdsa-sha2-nistp(?:256|384|521)|sk-(?:ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/]+={0,3}(?: [^\n]*)?$/;
/** What a literal key starts with (anything else is a host path). */
const PUBLIC_KEY_START = /^(?:ssh-|ecdsa-|sk-)/;

const PACKAGE_REF_WORDS =
  'a Debian package name like "curl" or "curl=7.88.1-10", or a path to a local file ending in .deb';

/** A list whose items must differ; the duplicate points at its second occurrence. */
export function uniqueList<T extends z.ZodType>(item: T, field: string) {
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

const componentRefItem = z
  .string()
  .refine((ref) => (isComponentPath(ref) ? !ref.includes('\0') : COMPONENT_NAME_RE.test(ref)), {
    error: (iss) =>
      expected(
        'a component name like "busybox", or a path to a component file like "./components/mytool.yaml"',
        iss.input,
      ),
  })
  .describe('A built-in component by name, or a component file by path (relative to kjx.yaml).');

/** A path on the build host; relative ones are relative to the spec file's directory. */
export const hostPath = z.string().min(1);

/**
 * An absolute path inside the guest, normalized ("/etc//motd/" → "/etc/motd").
 * `inAccountFiles`: the path becomes a field of /etc/passwd or a line of
 * /etc/shells, where ":" splits fields and a newline starts another entry, so
 * both (and every other control character) are refused: a home of
 * "/x\nevil::0:0::/:/bin/sh" would otherwise add a root account.
 */
function guestPathOf(inAccountFiles: boolean) {
  return z
    .string()
    .superRefine((p, ctx) => {
      let problem: string | undefined;
      if (!p.startsWith('/')) problem = 'an absolute guest path starting with "/"';
      else if (p.split('/').includes('..')) problem = 'a guest path without ".." segments';
      else if (p.includes('\0')) problem = 'a guest path without NUL characters';
      else if (inAccountFiles && ACCOUNT_FIELD_BAD.test(p))
        problem = 'a path without ":", newlines or other control characters (it goes into /etc/passwd)';
      else if (posix.normalize(p) === '/') problem = 'a path below "/" (the root itself cannot be replaced)';
      if (problem !== undefined) ctx.addIssue({ code: 'custom', input: p, message: expected(problem, p) });
    })
    .transform((p) => posix.normalize(p).replace(/\/+$/, ''));
}

/** What no field of /etc/passwd, /etc/group or /etc/shells may hold: the separator and control characters. */
const ACCOUNT_FIELD_BAD = /[:\x00-\x1f\x7f-\x9f]/;

export const guestPath = guestPathOf(false);
/** A guest path that lands in /etc/passwd or /etc/shells (home, shell). */
const accountPath = guestPathOf(true);

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
  if (version !== undefined && debVersionProblem(version) !== undefined) {
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

/** A `files:` list gives each guest path once (the second is an error at its own index). */
export function uniqueFilePaths(files: readonly { path: string }[], ctx: z.RefinementCtx): void {
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
}

const packageObject = z
  .object({
    name: z.string().describe(`The package: ${PACKAGE_REF_WORDS}.`),
    version: z
      .string()
      .refine((v) => debVersionProblem(v) === undefined, {
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

export const packageItem = z
  .union([packageString, packageObject], {
    error: (iss) =>
      expected(`${PACKAGE_REF_WORDS}, or a mapping with "name" (and "version", "paths")`, iss.input, 'type'),
  })
  .describe('One extra package.');

export const modeSchema = z.union(
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

const kernelConfigItem = z
  .string()
  .transform((text, ctx) => {
    const e = kernelConfigEntry(text);
    if ('problem' in e) {
      ctx.addIssue({ code: 'custom', input: text, message: expected(e.problem, text) });
      return z.NEVER;
    }
    return e;
  })
  .describe(
    'A profile (vm, defconfig, tinyconfig), a fragment file of CONFIG_ lines (relative to kjx.yaml), or one line like CONFIG_KCSAN=n.',
  );

const kernelObject = z
  .object({
    package: z
      .string()
      .regex(DEB_NAME_RE, {
        error: (iss) => expected('a Debian package name like "linux-image-amd64"', iss.input),
      })
      .optional()
      .describe(
        `Debian package holding the kernel and its modules. Default: ${DEFAULT_KERNEL_PACKAGE} (unless image, source or tree is given).`,
      ),
    image: hostPath
      .optional()
      .describe('Host path to a kernel image (bzImage) to use instead of a package, relative to kjx.yaml.'),
    modulesDir: hostPath
      .optional()
      .describe(
        'Host path to the lib/modules/<version> directory that belongs to image, relative to kjx.yaml.',
      ),
    source: z
      .literal('debian', { error: (iss) => expected('"debian"', iss.input) })
      .optional()
      .describe(
        `Build the kernel from source: Debian's ${DEBIAN_KERNEL_SOURCE_PACKAGE} package, the version of the packaged kernel.`,
      ),
    tree: hostPath
      .optional()
      .describe(
        'Build the kernel from a kernel source tree on the host (relative to kjx.yaml); kjx builds out of tree.',
      ),
    config: z
      .array(kernelConfigItem)
      .optional()
      .describe(
        `How a kernel built from source is configured: a profile first (default ${DEFAULT_KERNEL_PROFILE}), then fragments merged in order, then olddefconfig.`,
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
    const given = (['package', 'image', 'source', 'tree'] as const).filter((f) => k[f] !== undefined);
    if (given.length > 1) {
      ctx.addIssue({
        code: 'custom',
        path: [given[1]!],
        message: `give one of "package" (a Debian kernel package), "image" (a kernel file on the host), "source: debian" or "tree" (a kernel kjx builds), not ${given.map((g) => `"${g}"`).join(' and ')}`,
      });
    }
    if (k.modulesDir !== undefined && k.image === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['modulesDir'],
        message:
          '"modulesDir" goes with "image"; a kernel package or a kernel kjx builds brings its own modules',
      });
    }
    if (k.config !== undefined && k.source === undefined && k.tree === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['config'],
        message: '"config" configures a kernel kjx builds: give "source: debian" or "tree" with it',
      });
    }
    k.config?.forEach((e, i) => {
      if (e.kind === 'profile' && i > 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['config', i],
          input: e.name,
          message: `the profile "${e.name}" must come first: fragments are merged over it in order`,
        });
      }
    });
  })
  .transform((k): KernelSpec => {
    const common = { cmdline: k.cmdline, modules: k.modules };
    if (k.source !== undefined || k.tree !== undefined) {
      const config = k.config ?? [];
      return {
        kind: 'build',
        // host paths stay as written here; loadSpec resolves them against the spec's directory
        source:
          k.tree !== undefined
            ? { kind: 'tree', path: k.tree, pathRef: k.tree }
            : { kind: 'debian', package: DEBIAN_KERNEL_SOURCE_PACKAGE },
        config:
          config[0]?.kind === 'profile'
            ? config
            : [{ kind: 'profile', name: DEFAULT_KERNEL_PROFILE }, ...config],
        ...common,
      };
    }
    if (k.image === undefined)
      return { kind: 'package', package: k.package ?? DEFAULT_KERNEL_PACKAGE, ...common };
    // Host paths stay as written here; loadSpec resolves them against the spec's directory.
    const image: ImageKernelSpec = { kind: 'image', image: k.image, imageRef: k.image, ...common };
    return k.modulesDir === undefined
      ? image
      : { ...image, modulesDir: k.modulesDir, modulesDirRef: k.modulesDir };
  });

/** A string, number or boolean written in YAML, as the text a shell or sysctl sees (true → "1"). */
const scalarText = z
  .union([z.string(), z.number(), z.boolean()], {
    error: (iss) => expected('a string, number or true/false', iss.input, 'type'),
  })
  .transform((v) => (typeof v === 'boolean' ? (v ? '1' : '0') : String(v)));

/** Whole seconds: the guest does its arithmetic in sh. */
const seconds = (what: string) =>
  z
    .number()
    .int()
    .min(0)
    .max(86400, { error: (iss) => expected(`${what} of at most 86400 seconds`, iss.input) });

const readyObject = z
  .object({
    signal: z
      .literal(true)
      .optional()
      .describe(
        'Ready when the program sends SIGUSR1 to its parent (a small shell kjx puts between runsv and the program; its pid is also in $KJX_NOTIFY_PID).',
      ),
    file: guestPath.optional().describe('Ready when this guest file exists.'),
    port: z.number().int().min(1).max(65535).optional().describe('Ready when this TCP port is listening.'),
    check: z.string().min(1).optional().describe('Ready when this command (sh syntax, run as root) exits 0.'),
    timeout: seconds('a timeout')
      .default(DEFAULT_READY_TIMEOUT)
      .describe(
        `Seconds the service may take to become ready before boot reports it as not ready (default ${DEFAULT_READY_TIMEOUT}).`,
      ),
  })
  .strict()
  .superRefine((r, ctx) => {
    const kinds = (['signal', 'file', 'port', 'check'] as const).filter((k) => r[k] !== undefined);
    for (const extra of kinds.slice(1))
      ctx.addIssue({
        code: 'custom',
        path: [extra],
        message: `give one way to know readiness, not both "${kinds[0]}" and "${extra}"`,
      });
  })
  .transform((r): ReadySpec => {
    const timeout = r.timeout;
    if (r.signal) return { kind: 'signal', timeout };
    if (r.file !== undefined) return { kind: 'file', path: r.file, timeout };
    if (r.port !== undefined) return { kind: 'port', port: r.port, timeout };
    if (r.check !== undefined) return { kind: 'check', command: r.check, timeout };
    return { kind: 'started', timeout };
  });

const readyItem = z
  .union(
    [
      z
        .literal('signal')
        .transform((): ReadySpec => ({ kind: 'signal', timeout: DEFAULT_READY_TIMEOUT }))
        .describe('Short for {signal: true}.'),
      readyObject,
    ],
    {
      error: (iss) =>
        expected(
          '"signal", or a mapping with one of signal, file, port, check (and timeout)',
          iss.input,
          'type',
        ),
    },
  )
  .describe(
    'How kjx knows the service is ready: "signal", {file: PATH}, {port: N}, {check: COMMAND}. Default: as soon as it is started.',
  );

const restartObject = z
  .object({
    policy: z
      .enum(RESTART_POLICIES)
      .default('always')
      .describe('always: restart whenever it stops; on-failure: unless it exited 0; never.'),
    delay: seconds('a delay')
      .default(1)
      .describe('Seconds before a restart; doubled after each failure within 10 s of starting.'),
    maxDelay: seconds('a delay').default(30).describe('The longest wait between two restarts, in seconds.'),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.maxDelay < r.delay)
      ctx.addIssue({
        code: 'custom',
        path: ['maxDelay'],
        input: r.maxDelay,
        message: expected(`at least "delay" (${r.delay})`, r.maxDelay),
      });
  });

const restartItem = z
  .union(
    [
      z
        .enum(RESTART_POLICIES)
        .transform((policy): RestartSpec => ({ policy, delay: 1, maxDelay: 30 }))
        .describe('A policy with the default backoff.'),
      restartObject,
    ],
    {
      error: (iss) =>
        expected(
          `one of ${RESTART_POLICIES.join(', ')}, or a mapping with policy, delay, maxDelay`,
          iss.input,
          'type',
        ),
    },
  )
  .describe('When runit restarts the service, with backoff.');

const logObject = z
  .object({
    size: z
      .number()
      .int()
      .min(4096)
      .default(1_000_000)
      .describe('Rotate the current log file at this many bytes (svlogd "s").'),
    keep: z.number().int().min(1).max(1000).default(5).describe('Old log files to keep (svlogd "n").'),
  })
  .strict();

const logItem = z
  .union(
    [z.boolean().transform((on): LogSpec | null => (on ? { size: 1_000_000, keep: 5 } : null)), logObject],
    { error: (iss) => expected('true, false, or a mapping with size and keep', iss.input, 'type') },
  )
  .describe(
    'svlogd writes the output to /var/log/NAME (timestamped, rotated). false: output goes to the console.',
  );

export const serviceObject = z
  .object({
    run: z
      .string()
      .min(1)
      .describe('The program and its arguments (sh syntax). It must stay in the foreground.'),
    needs: uniqueList(z.string().describe('Another service (or ssh, console).'), 'needs')
      .default(() => [])
      .describe(
        'Services that must be ready before this one starts; when one of them stops, this one is stopped too and starts again once it is ready.',
      ),
    before: uniqueList(
      z.string().describe("Another service, such as a component's (etcd, dockerd)."),
      'before',
    )
      .default(() => [])
      .describe(
        "Services that must not start before this one is ready: each of them needs this one. For services the spec does not write, such as a component's (a tracer before etcd or dockerd).",
      ),
    ready: readyItem.optional(),
    restart: restartItem.prefault('always'),
    user: z
      .string()
      .regex(USER_NAME_RE, { error: (iss) => expected('a user name', iss.input) })
      .default('root')
      .describe('Run as this user: root or one from `users`.'),
    env: z
      .record(
        z
          .string()
          .regex(ENV_NAME_RE, {
            error: (iss) => expected('an environment variable name like "LOG_LEVEL"', iss.input),
          })
          // kjx's service scripts and wrappers keep their state in these (KJX_NOTIFY_PID, kjx_*)
          .refine((k) => !/^kjx_/i.test(k), {
            error: (iss) =>
              expected('a name that does not start with "KJX_" or "kjx_" (kjx\'s own)', iss.input),
          }),
        scalarText,
      )
      .prefault(() => ({}))
      .describe(
        "Environment variables of the program, set just before it starts (kjx's own service code runs without them, so IFS, PATH or ENV here change only the program). Names starting with KJX_ or kjx_ are kjx's.",
      ),
    log: logItem.prefault(true),
    finish: z
      .string()
      .min(1)
      .optional()
      .describe('Command run after the service stopped (sh syntax, killed after 5 s).'),
    stopSignal: z
      .enum(STOP_SIGNALS)
      .default('TERM')
      .describe('Signal that stops it (sv down, sv term); INT for libbpf-tools, which print results on INT.'),
  })
  .strict()
  .transform(
    (s): ServiceSpec => ({
      run: s.run,
      needs: s.needs,
      ...(s.before.length > 0 ? { before: s.before } : {}),
      ready: s.ready ?? { kind: 'started', timeout: DEFAULT_READY_TIMEOUT },
      restart: s.restart,
      user: s.user,
      env: s.env,
      log: s.log,
      ...(s.finish === undefined ? {} : { finish: s.finish }),
      stopSignal: s.stopSignal,
    }),
  )
  .describe('A supervised service (one runit service directory).');

const taskObject = z
  .object({
    name: z
      .string()
      .regex(SERVICE_NAME_RE, {
        error: (iss) => expected('a name of lowercase letters, digits, ".", "_" and "-"', iss.input),
      })
      .describe('Name shown on the console and in markers.'),
    run: z.string().min(1).describe('Command (sh syntax), run as root in stage 1.'),
    required: z
      .boolean()
      .default(true)
      .describe('If it fails, stop booting (the guest powers off) instead of going on with a warning.'),
  })
  .strict()
  .describe('A one-shot command run at boot, before services start.');

const interfaceObject = z
  .object({
    dhcp: z.boolean().optional().describe('Configure by DHCP (busybox udhcpc).'),
    address: z.string().optional().describe('Static IPv4 address with prefix length, like "10.0.2.15/24".'),
    gateway: z
      .string()
      .regex(IPV4_RE, { error: (iss) => expected('an IPv4 address', iss.input) })
      .optional()
      .describe('Default route via this IPv4 address (static only).'),
    dns: z
      .array(z.string().regex(IPV4_RE, { error: (iss) => expected('an IPv4 address', iss.input) }))
      .optional()
      .describe('Name servers for /etc/resolv.conf (static only; DHCP brings its own).'),
  })
  .strict()
  .superRefine((i, ctx) => {
    if (i.address !== undefined) {
      const [ip, prefix, extra] = i.address.split('/');
      const n = Number(prefix);
      if (extra !== undefined || !IPV4_RE.test(ip ?? '') || !/^[0-9]{1,2}$/.test(prefix ?? '') || n > 32)
        ctx.addIssue({
          code: 'custom',
          path: ['address'],
          input: i.address,
          message: expected('an IPv4 address with prefix length, like "10.0.2.15/24"', i.address),
        });
      if (i.dhcp === true)
        ctx.addIssue({
          code: 'custom',
          path: ['dhcp'],
          message: 'give either "dhcp: true" or "address", not both',
        });
    } else {
      if (i.dhcp !== true)
        ctx.addIssue({ code: 'custom', message: 'an interface needs "dhcp: true" or an "address"' });
      for (const key of ['gateway', 'dns'] as const)
        if (i[key] !== undefined)
          ctx.addIssue({ code: 'custom', path: [key], message: `"${key}" goes with a static "address"` });
    }
  })
  .transform((i): InterfaceSpec => {
    if (i.address === undefined) return { kind: 'dhcp' };
    const [address = '', prefix = '0'] = i.address.split('/');
    const out: InterfaceSpec = { kind: 'static', address, prefix: Number(prefix), dns: i.dns ?? [] };
    return i.gateway === undefined ? out : { ...out, gateway: i.gateway };
  });

const interfaceItem = z
  .union([z.literal('dhcp').transform((): InterfaceSpec => ({ kind: 'dhcp' })), interfaceObject], {
    error: (iss) => expected('"dhcp", or a mapping with address (and gateway, dns)', iss.input, 'type'),
  })
  .describe('"dhcp", or a static {address, gateway, dns}.');

const keySource = z
  .string()
  .min(1)
  .superRefine((k, ctx) => {
    if (PUBLIC_KEY_START.test(k) && !PUBLIC_KEY_RE.test(k.trim()))
      ctx.addIssue({
        code: 'custom',
        input: k,
        message: expected('an OpenSSH public key line like "ssh-ed25519 AAAA... me@host"', k),
      });
  })
  .transform(
    (k): KeySource =>
      PUBLIC_KEY_START.test(k) ? { kind: 'literal', key: k.trim() } : { kind: 'file', path: k, pathRef: k },
  )
  .describe('A public key line ("ssh-ed25519 AAAA..."), or a host file of them (relative to kjx.yaml).');

const userObject = z
  .object({
    name: z
      .string()
      .regex(USER_NAME_RE, {
        error: (iss) =>
          expected('a user name: lowercase letters, digits, "_" and "-", at most 32', iss.input),
      })
      .describe('Login name.'),
    uid: z
      .number()
      .int()
      .min(0)
      .max(65533)
      .optional()
      .describe('User id. Default: 0 for root, otherwise the next free id from 1000.'),
    gid: z
      .number()
      .int()
      .min(0)
      .max(65533)
      .optional()
      .describe('Group id of its own group. Default: the uid.'),
    home: accountPath
      .optional()
      .describe(
        'Home directory (no ":" or control characters). Default: /root for root, /home/NAME otherwise.',
      ),
    shell: accountPath.default('/bin/sh').describe('Login shell (no ":" or control characters).'),
    authorizedKeys: z
      .array(keySource)
      .prefault(() => [])
      .describe('Public keys that may log in as this user over SSH.'),
  })
  .strict()
  .describe('An account. root always exists; list it to give it keys.');

const usersList = z
  .array(userObject)
  .superRefine((users, ctx) => {
    const names = new Map<string, number>();
    const uids = new Map<number, number>();
    users.forEach((u, i) => {
      const first = names.get(u.name);
      if (first !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: [i, 'name'],
          message: `${JSON.stringify(u.name)} is already given by users[${first}]`,
        });
      else names.set(u.name, i);
      if (u.name === 'root' && u.uid !== undefined && u.uid !== 0)
        ctx.addIssue({
          code: 'custom',
          path: [i, 'uid'],
          input: u.uid,
          message: expected('0 for root', u.uid),
        });
      const uid = u.name === 'root' ? 0 : u.uid;
      if (uid === undefined) return;
      const other = uids.get(uid);
      if (other !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: [i, u.uid === undefined ? 'name' : 'uid'],
          message: `uid ${uid} is already taken by users[${other}]`,
        });
      else uids.set(uid, i);
      if (uid === 0 && u.name !== 'root')
        ctx.addIssue({ code: 'custom', path: [i, 'uid'], message: 'uid 0 is root; give another uid' });
    });
  })
  .transform((users): UserSpec[] => {
    const taken = new Set(users.map((u) => (u.name === 'root' ? 0 : u.uid)).filter((u) => u !== undefined));
    let next = 1000;
    return users.map((u) => {
      let uid = u.name === 'root' ? 0 : u.uid;
      if (uid === undefined) {
        while (taken.has(next)) next++;
        uid = next;
        taken.add(uid);
      }
      return {
        name: u.name,
        uid,
        gid: u.gid ?? uid,
        home: u.home ?? (u.name === 'root' ? '/root' : `/home/${u.name}`),
        shell: u.shell,
        authorizedKeys: u.authorizedKeys,
      };
    });
  });

const sshObject = z
  .object({
    enabled: z
      .boolean()
      .optional()
      .describe(
        'Run the SSH server (dropbear, key login only). Default: on when the dropbear component is included.',
      ),
    port: z.number().int().min(1).max(65535).default(22).describe('TCP port dropbear listens on.'),
    hostKeys: uniqueList(z.enum(HOST_KEY_TYPES).describe('A host key type.'), 'ssh.hostKeys')
      .default(() => ['ed25519' as const])
      .describe(
        'Host key types generated at first boot; each fingerprint is printed on the console as `@@kjx:hostkey`.',
      ),
    hostKeyFiles: z
      .array(
        hostPath.describe(
          'A host private key file: dropbear format, or an unencrypted OpenSSH ed25519 key (converted).',
        ),
      )
      .prefault(() => [])
      .describe(
        'Host keys to use instead of generating them (relative to kjx.yaml). They land in the image (initramfs and media; never in the oci container image).',
      ),
    rootLogin: z
      .boolean()
      .default(true)
      .describe('Whether root may log in (by key; no account can log in by password).'),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.hostKeys.length === 0 && s.hostKeyFiles.length === 0)
      ctx.addIssue({
        code: 'custom',
        path: ['hostKeys'],
        message: 'give at least one host key type or file',
      });
  })
  .transform((s) => ({
    ...s,
    hostKeyFiles: s.hostKeyFiles.map((p): HostKeyFile => ({ path: p, pathRef: p })),
  }));

/**
 * Cross-field checks of the guest system that need nothing but the spec: service
 * names and the SSH server. How services relate (`needs`, the names built-in and
 * component services take, their users) is checked by the plan (src/plan/), which
 * knows every component's services.
 */
function checkGuestSystem(
  s: {
    components: ComponentRef[];
    ssh: { enabled?: boolean | undefined };
    services: Record<string, ServiceSpec>;
  },
  ctx: z.core.$RefinementCtx,
): void {
  const sshOn = s.ssh.enabled ?? s.components.includes(SSH_COMPONENT);
  if (sshOn && !s.components.includes(SSH_COMPONENT))
    ctx.addIssue({
      code: 'custom',
      path: ['ssh', 'enabled'],
      message: `the SSH server is the ${SSH_COMPONENT} component: add ${SSH_COMPONENT} to components, or set enabled: false`,
    });
  for (const name of Object.keys(s.services)) {
    if (!SERVICE_NAME_RE.test(name))
      ctx.addIssue({
        code: 'custom',
        path: ['services', name],
        message: expected('a service name of lowercase letters, digits, ".", "_" and "-"', name),
      });
  }
}

const MiB = 1024 * 1024;
const MIN_DISK = 128 * MiB;
const MAX_DISK = 2 * 1024 * 1024 * MiB;

/** Bytes of a size written as a number or "512M", "2G", rounded up to a whole MiB. */
function parseSize(v: number | string): number | string {
  if (typeof v === 'number') return Math.ceil(v / MiB) * MiB;
  const m = SIZE_RE.exec(v.trim());
  if (!m)
    return expected('a size like "512M" or "2G" (K, M, G, T are powers of 1024), or a number of bytes', v);
  const unit = { '': 1, K: 1024, M: MiB, G: 1024 * MiB, T: 1024 * 1024 * MiB }[(m[2] ?? '').toUpperCase()]!;
  return Math.ceil((Number(m[1]) * unit) / MiB) * MiB;
}

const sizeSchema = z
  .union([z.number().int().positive(), z.string()], {
    error: (iss) => expected('a size like "512M" or "2G", or a number of bytes', iss.input, 'type'),
  })
  .superRefine((v, ctx) => {
    const n = parseSize(v);
    if (typeof n === 'string') ctx.addIssue({ code: 'custom', input: v, message: n });
    else if (n < MIN_DISK || n > MAX_DISK)
      ctx.addIssue({ code: 'custom', input: v, message: expected('a size from 128M to 2T', v) });
  })
  .transform((v) => parseSize(v) as number);

const diskObject = z
  .object({
    size: sizeSchema
      .prefault(DEFAULT_DISK_SIZE)
      .describe(
        `Size of the whole disk: bytes, or a number with K, M, G or T (powers of 1024), like "2G"; rounded up to a whole MiB. The ext4 root gets what the boot partitions leave. Default: ${DEFAULT_DISK_SIZE}.`,
      ),
  })
  .strict();

const vmObject = z
  .object({
    restrict: z
      .boolean()
      .default(false)
      .describe(
        "Isolate the guest from the host (QEMU user networking with restrict=on): it cannot reach the host's services through 10.0.2.2 nor anything beyond the host; DHCP still answers, DNS does not, and the SSH forward still works.",
      ),
  })
  .strict();

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
    components: uniqueList(componentRefItem, 'components')
      .default(() => [...DEFAULT_COMPONENTS])
      .describe(
        'Components to include: built-in ones by name (a shell, the init, the SSH server, tracing tools, container runtimes; the names are listed in docs/components.md), or component files of your own by path (a .yaml file relative to kjx.yaml). Default: busybox, runit, dropbear.',
      ),
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
      .superRefine(uniqueFilePaths)
      .prefault(() => [])
      .describe('Files, directories and symlinks to add to the image.'),
    outputs: uniqueList(z.enum(OUTPUTS).describe('An artifact format.'), 'outputs')
      .min(1)
      .default(() => [...DEFAULT_OUTPUTS])
      .describe(
        `Artifacts to write: ${OUTPUTS.join(', ')}. initramfs: vmlinuz + initramfs; iso: hybrid BIOS/UEFI ISO; raw, qcow2, vmdk: GPT disk images with a persistent ext4 root; tar: rootfs tarball; oci: <name>-oci.tar, the image as a container image (OCI layout and docker-save in one tar) named kjx/<name>:<version>.`,
      ),
    disk: diskObject.prefault({}).describe('Disk images (outputs raw, qcow2, vmdk): their size.'),
    images: imagesList
      .prefault(() => [])
      .describe(
        'Container image archives baked into the guest at /usr/share/kjx/images/<name>.tar, for runtimes to load without a registry: host archives (archive:) or images kjx builds (from: busybox-static). See docs/containers.md.',
      ),
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
    sysctls: z
      .record(
        z.string().regex(SYSCTL_RE, {
          error: (iss) => expected('a sysctl key like "net.ipv4.ip_forward"', iss.input),
        }),
        scalarText,
      )
      .prefault(() => ({}))
      .describe('Kernel parameters set at boot (sysctl -w KEY=VALUE), before networking and services.'),
    network: z
      .record(
        z
          .string()
          .regex(IFNAME_RE, { error: (iss) => expected('an interface name like "eth0"', iss.input) })
          .refine((n) => n !== 'lo', { error: 'the loopback interface is always up; leave "lo" out' }),
        interfaceItem,
      )
      .prefault(() => ({ eth0: 'dhcp' as const }))
      .describe('Network interfaces by name: "dhcp" or a static address. Loopback is always up.'),
    users: usersList
      .prefault(() => [])
      .describe('Accounts besides root (list root to give it keys). No account has a password.'),
    ssh: sshObject
      .prefault({})
      .describe(
        'The SSH server: dropbear as a supervised service, key login only. Without any authorized key, kjx creates a project key in .kjx/ssh/ next to kjx.yaml and authorizes it for root.',
      ),
    services: z
      .record(z.string(), serviceObject)
      .prefault(() => ({}))
      .describe(
        'Supervised services by name (runit), started once what they need is ready. See docs/services.md.',
      ),
    tasks: z
      .array(taskObject)
      .superRefine((tasks, ctx) => {
        const firstAt = new Map<string, number>();
        tasks.forEach((t, i) => {
          const first = firstAt.get(t.name);
          if (first === undefined) firstAt.set(t.name, i);
          else
            ctx.addIssue({
              code: 'custom',
              path: [i, 'name'],
              message: `${JSON.stringify(t.name)} is already given by tasks[${first}]`,
            });
        });
      })
      .prefault(() => [])
      .describe('One-shot commands run in order at boot (runit stage 1), after networking, before services.'),
    tracing: tracingObject
      .prefault({})
      .describe('Tracing: which libbpf-tools to install, and your own eBPF programs (docs/tracing.md).'),
    vm: vmObject
      .prefault({})
      .describe(
        'How `kjx boot` runs the guest: what its user-mode network lets it reach (docs/security.md). `kjx run` VMs have no network at all.',
      ),
    console: z
      .enum(CONSOLE_MODES)
      .default('shell')
      .describe(
        'What the serial console offers once booted: a root shell (the console belongs to whoever runs the VM), or nothing.',
      ),
  })
  .strict()
  .superRefine(checkGuestSystem)
  // Where relative host paths point; '.' (the working directory) until loadSpec sets it.
  .transform((s) => ({
    ...s,
    ssh: { ...s.ssh, enabled: s.ssh.enabled ?? s.components.includes(SSH_COMPONENT) } satisfies SshSpec,
    specDir: '.',
  }))
  .describe(
    'kjx.yaml: what kjx builds — kernel, components, packages, files, services, network, users and artifacts.',
  );

/**
 * The validated, defaulted spec. Host paths are absolute after `loadSpec`/`parseSpec`,
 * which also keep the text it was read from (`source`, not enumerable: for
 * positions in problems found later, by the plan; see positions.ts) and the
 * component files `components:` names by path (the build keys them by content).
 */
export type Spec = z.output<typeof specSchema> & {
  source?: SpecSource;
  componentFiles?: LoadedComponentFile[];
};
/** What may be written in kjx.yaml (every field optional). */
export type SpecInput = z.input<typeof specSchema>;

/** The spec of an empty kjx.yaml: every default. */
export function defaultSpec(): Spec {
  return specSchema.parse({});
}
