/**
 * `kernel.config` of a kernel kjx builds from source: a kjx profile to start from,
 * then fragments (files of `CONFIG_X=y` lines, or single lines written inline),
 * merged in order (src/kernel/config.ts, src/kernel/build.ts). The spec layer only
 * tells the three kinds of entry apart and checks each one's shape.
 */

/**
 * Where a configuration starts: `vm` (kjx's own: allnoconfig plus what kjx's
 * features use, src/kernel/profiles/vm.config), or the kernel's own `defconfig`
 * and `tinyconfig` (merged over the way merge_config.sh does).
 */
export const KERNEL_PROFILES = ['vm', 'defconfig', 'tinyconfig'] as const;
export type KernelProfile = (typeof KERNEL_PROFILES)[number];
export const DEFAULT_KERNEL_PROFILE: KernelProfile = 'vm';

/** The Debian package whose tarball `source: debian` builds: the packaged kernel's version. */
export const DEBIAN_KERNEL_SOURCE_PACKAGE = 'linux-source-6.1';

export type KernelConfigEntry =
  | { kind: 'profile'; name: KernelProfile }
  /** A fragment file; `path` absolute after loadSpec, `pathRef` as written. */
  | { kind: 'file'; path: string; pathRef: string }
  | { kind: 'line'; name: string; value: string };

export const CONFIG_SET_RE = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/;
export const CONFIG_NOT_SET_RE = /^# (CONFIG_[A-Za-z0-9_]+) is not set$/;
/** What Kconfig reads as a value: a tristate, a number (decimal or hex), or a quoted string. */
export const CONFIG_VALUE_RE = /^(?:[ymn]|-?\d+|0[xX][0-9a-fA-F]+|"(?:[^"\\]|\\.)*")$/;

/** `CONFIG_X=v` or `# CONFIG_X is not set` as name and value (`n`), or undefined. */
export function configLine(text: string): { name: string; value: string } | undefined {
  const notSet = CONFIG_NOT_SET_RE.exec(text);
  if (notSet) return { name: notSet[1]!, value: 'n' };
  const set = CONFIG_SET_RE.exec(text);
  return set && CONFIG_VALUE_RE.test(set[2]!) ? { name: set[1]!, value: set[2]! } : undefined;
}

const isProfile = (s: string): s is KernelProfile => (KERNEL_PROFILES as readonly string[]).includes(s);

/** What an entry is, or why it is none: a profile, a config line, or a fragment file's path. */
export function kernelConfigEntry(text: string): KernelConfigEntry | { problem: string } {
  if (isProfile(text)) return { kind: 'profile', name: text };
  const line = configLine(text);
  if (line) return { kind: 'line', ...line };
  if (text.startsWith('CONFIG_') || text.startsWith('# CONFIG_'))
    return { problem: 'a config line like CONFIG_NAME=y, =m, =n, a number or a "quoted string"' };
  if ((text.includes('/') || text.endsWith('.config')) && !text.includes('\0'))
    return { kind: 'file', path: text, pathRef: text };
  return {
    problem: `a profile (${KERNEL_PROFILES.join(', ')}), a fragment file like ./extra.config, or a line like CONFIG_KCSAN=n`,
  };
}
