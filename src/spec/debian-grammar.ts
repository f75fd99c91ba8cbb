/**
 * The grammar of the Debian values kjx hands to apt: package names (Debian policy
 * 5.6.1), versions (policy 5.6.12, as dpkg's parseversion accepts them),
 * architectures, archive paths (the `Filename` field of a Packages index) and
 * sha256 sums.
 *
 * kjx.lock arrives with a clone and is read before apt is asked anything, so each
 * value that reaches an apt command line or a file name must be plain data: a
 * name starting with "-" would be an option, a version with a space would be two
 * words in a log, and "../" in an archive path would climb out of a directory.
 * Every check returns what is wrong in words (for positioned errors), or
 * undefined when the value is fine.
 */

/** Policy 5.6.1: lowercase letters, digits, "+", "-", "."; at least two long; alphanumeric first. */
const NAME_RE = /^[a-z0-9][a-z0-9+.-]+$/;
const EPOCH_RE = /^[0-9]+$/;
const REVISION_RE = /^[A-Za-z0-9+.~]+$/;
const ARCH_RE = /^[a-z0-9][a-z0-9-]*$/;
const SHA256_RE = /^[0-9a-f]{64}$/;
/** Pool paths: pool/main/b/busybox/busybox_1.35.0-4+b3_amd64.deb (no "%", no spaces, no "\"). */
const ARCHIVE_PATH_RE = /^[A-Za-z0-9][A-Za-z0-9+._~/-]*$/;

/** dpkg caps nothing, but no real name or version comes near these; they keep messages and argv sane. */
const MAX_NAME = 128;
const MAX_VERSION = 256;
const MAX_PATH = 1024;

export function debNameProblem(name: string): string | undefined {
  if (name.length > MAX_NAME) return `a Debian package name of at most ${MAX_NAME} characters`;
  if (!NAME_RE.test(name))
    return 'a Debian package name (policy 5.6.1: lowercase letters, digits, "+", "-" and ".", at least two, starting with a letter or digit)';
  return undefined;
}

/**
 * `[epoch:]upstream[-revision]`: the epoch is digits; upstream starts with a digit
 * and holds letters, digits and ". + ~", plus "-" only when there is a revision and
 * ":" only when there is an epoch; the revision (after the last "-") holds letters,
 * digits and "+ . ~".
 */
export function debVersionProblem(version: string): string | undefined {
  const words =
    'a Debian version (policy 5.6.12: [epoch:]upstream[-revision], upstream starting with a digit, only letters, digits and ". + ~ - :")';
  if (version.length === 0 || version.length > MAX_VERSION) return words;
  const colon = version.indexOf(':');
  const hasEpoch = colon >= 0;
  if (hasEpoch && !EPOCH_RE.test(version.slice(0, colon))) return words;
  const rest = hasEpoch ? version.slice(colon + 1) : version;
  const dash = rest.lastIndexOf('-');
  const hasRevision = dash >= 0;
  const upstream = hasRevision ? rest.slice(0, dash) : rest;
  if (hasRevision && !REVISION_RE.test(rest.slice(dash + 1))) return words;
  const allowed = new RegExp(`^[0-9][A-Za-z0-9.+~${hasRevision ? '\\-' : ''}${hasEpoch ? ':' : ''}]*$`);
  if (!allowed.test(upstream)) return words;
  return undefined;
}

export function debArchProblem(arch: string): string | undefined {
  return arch.length <= 32 && ARCH_RE.test(arch) ? undefined : 'a Debian architecture like "amd64" or "all"';
}

/** A relative path below the archive root, without "." or ".." segments, ending in .deb. */
export function archivePathProblem(path: string): string | undefined {
  const words = 'a relative archive path like "pool/main/b/busybox/busybox_1.35.0-4_amd64.deb"';
  if (path.length > MAX_PATH || !ARCHIVE_PATH_RE.test(path) || !path.endsWith('.deb')) return words;
  if (path.split('/').some((s) => s === '' || s === '.' || s === '..')) return words;
  return undefined;
}

export function sha256Problem(sum: string): string | undefined {
  return SHA256_RE.test(sum) ? undefined : 'a sha256 sum of 64 lowercase hexadecimal digits';
}

/** `name` or `name=version`, as the roots of a spec and the arguments of apt are written. */
export function packageRefProblem(ref: string): string | undefined {
  const eq = ref.indexOf('=');
  if (eq < 0) return debNameProblem(ref);
  return debNameProblem(ref.slice(0, eq)) ?? debVersionProblem(ref.slice(eq + 1));
}
