/**
 * Test helper: the real Debian 12 cloud kernel package, downloaded once and kept
 * in /tmp/kjx-test-kernel across runs (~27 MB). Uses host apt and dpkg-deb, which
 * is fine in tests only; kjx itself never does.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export const KERNEL_CACHE = '/tmp/kjx-test-kernel';

export interface DebianKernel {
  /** e.g. linux-image-6.1.0-56-cloud-amd64 */
  package: string;
  /** Debian version of the package, e.g. 6.1.192-2 */
  debVersion: string;
  /** Kernel release, e.g. 6.1.0-56-cloud-amd64 */
  kernelVersion: string;
  /** Host directory the package is extracted into. */
  root: string;
}

/**
 * Resolve linux-image-cloud-amd64 to its versioned package, fetch and extract
 * it (once). Returns a reason string instead when apt is not usable here.
 */
export function debianCloudKernel(): DebianKernel | string {
  let pkg: string;
  try {
    const deps = execFileSync('apt-cache', ['depends', 'linux-image-cloud-amd64'], { encoding: 'utf8' });
    const m = /Depends: (linux-image-[0-9][^\s]*-cloud-amd64)\b/.exec(deps);
    if (!m) return `apt-cache depends linux-image-cloud-amd64 names no linux-image-*-cloud-amd64:\n${deps}`;
    pkg = m[1]!;
  } catch (e) {
    return `apt-cache is not usable: ${(e as Error).message}`;
  }
  mkdirSync(KERNEL_CACHE, { recursive: true });
  const find = () => readdirSync(KERNEL_CACHE).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  let deb = find();
  if (!deb) {
    try {
      execFileSync('apt-get', ['download', pkg], { cwd: KERNEL_CACHE, stdio: 'pipe' });
    } catch (e) {
      return `apt-get download ${pkg} failed: ${(e as Error).message}`;
    }
    deb = find();
    if (!deb) return `apt-get download ${pkg} left no .deb in ${KERNEL_CACHE}`;
  }
  const debPath = join(KERNEL_CACHE, deb);
  const root = join(KERNEL_CACHE, deb.replace(/\.deb$/, ''));
  if (!existsSync(root)) {
    // Extract next to the final name and rename, so an interrupted run leaves no half tree.
    const tmp = `${root}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    execFileSync('dpkg-deb', ['-x', debPath, tmp]);
    renameSync(tmp, root);
  }
  const debVersion = execFileSync('dpkg-deb', ['-f', debPath, 'Version'], { encoding: 'utf8' }).trim();
  return { package: pkg, debVersion, kernelVersion: pkg.replace(/^linux-image-/, ''), root };
}
