/**
 * Container image references ("kjx/smoke:0.1.0") as Docker reads them: the
 * grammar of distribution/reference (reference/regexp.go, "Grammar") and Docker's
 * normalization to a fully qualified name. Pure and dependency-free, so the spec
 * schema can validate `images:` without loading the image writers.
 */

// distribution/reference grammar (docker/distribution reference/regexp.go)
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const DOMAIN_LABEL = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_RE = new RegExp(`^${DOMAIN_LABEL}(?:\\.${DOMAIN_LABEL})*(?::[0-9]+)?$`);
const PATH_RE = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/**
 * Why `name:tag` is not a valid image reference, or undefined when it is. Names are
 * lowercase path components ("kjx/smoke") with an optional registry in front.
 */
export function imageReferenceProblem(name: string, tag: string): string | undefined {
  // like Docker, the first component is a registry only if it looks like a host
  const slash = name.indexOf('/');
  const first = slash < 0 ? '' : name.slice(0, slash);
  const host = looksLikeHost(first);
  const valid = host ? DOMAIN_RE.test(first) && PATH_RE.test(name.slice(slash + 1)) : PATH_RE.test(name);
  if (!valid || name.length > 255)
    return `image name ${JSON.stringify(name)} is not a repository name like "kjx/smoke" (lowercase letters, digits, ".", "_", "-" between "/")`;
  if (!TAG_RE.test(tag))
    return `image tag ${JSON.stringify(tag)} is not a tag (up to 128 letters, digits, "_", "." and "-", not starting with "." or "-")`;
  return undefined;
}

/**
 * The name as Docker normalizes it: a registry in front (docker.io unless the
 * first component looks like a host), "library/" for single-component names on
 * docker.io (also when docker.io or index.docker.io is given). "busybox" and
 * "docker.io/busybox" -> "docker.io/library/busybox", "kjx/x" -> "docker.io/kjx/x".
 */
export function fullImageName(name: string): string {
  const slash = name.indexOf('/');
  const first = slash < 0 ? '' : name.slice(0, slash);
  if (looksLikeHost(first)) {
    if (first !== 'docker.io' && first !== 'index.docker.io') return name;
    const path = name.slice(slash + 1);
    return path.includes('/') ? `docker.io/${path}` : `docker.io/library/${path}`;
  }
  return slash < 0 ? `docker.io/library/${name}` : `docker.io/${name}`;
}

function looksLikeHost(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost';
}

/**
 * The reference of a build's `oci` output: kjx/<name>:<version>, with the
 * characters a version may have and a tag may not ("+", "~") written as "_".
 */
export function ociOutputReference(name: string, version: string): { name: string; tag: string } {
  return { name: `kjx/${name}`, tag: version.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 128) };
}

/**
 * Split "name[:tag]" (tag "latest" when none is given), or say what is wrong.
 * A digest ("@sha256:...") is not a name kjx can give an image it builds.
 */
export function parseImageReference(ref: string): { name: string; tag: string } | string {
  if (ref.includes('@')) return `image reference ${JSON.stringify(ref)} names a digest; give name:tag`;
  const colon = ref.lastIndexOf(':');
  const hasTag = colon > ref.lastIndexOf('/');
  const name = hasTag ? ref.slice(0, colon) : ref;
  const tag = hasTag ? ref.slice(colon + 1) : 'latest';
  return imageReferenceProblem(name, tag) ?? { name, tag };
}
