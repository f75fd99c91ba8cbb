/**
 * Test helper: the guest's shell, Debian's busybox (the same package kjx puts in
 * images), downloaded once into /tmp/kjx-test-busybox and run on the host as
 * `busybox sh`. Host apt and dpkg-deb, as in debian-kernel.ts: fine in tests only.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

export const BUSYBOX_CACHE = '/tmp/kjx-test-busybox';

/** The path of Debian's busybox binary, or why it cannot be had here. */
export function debianBusybox(): { path: string } | { why: string } {
  mkdirSync(BUSYBOX_CACHE, { recursive: true });
  const find = () => readdirSync(BUSYBOX_CACHE).find((f) => /^busybox_.*\.deb$/.test(f));
  let deb = find();
  if (!deb) {
    try {
      execFileSync('apt-get', ['download', 'busybox'], { cwd: BUSYBOX_CACHE, stdio: 'pipe' });
    } catch (e) {
      return { why: `apt-get download busybox failed: ${(e as Error).message}` };
    }
    deb = find();
    if (!deb) return { why: `apt-get download busybox left no .deb in ${BUSYBOX_CACHE}` };
  }
  const root = join(BUSYBOX_CACHE, deb.replace(/\.deb$/, ''));
  if (!existsSync(root)) {
    // extracted next to the final name and renamed: an interrupted run leaves no half tree
    const tmp = `${root}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    execFileSync('dpkg-deb', ['-x', join(BUSYBOX_CACHE, deb), tmp]);
    renameSync(tmp, root);
  }
  const path = join(root, 'bin', 'busybox');
  return existsSync(path) ? { path } : { why: `${deb} has no /bin/busybox` };
}

/**
 * Debian's busybox for a test, or the test is skipped with the reason (it fails
 * instead under CI, where a missing prerequisite is a broken host).
 */
export function busyboxFor(t: TestContext): string | undefined {
  const b = debianBusybox();
  if ('path' in b) return b.path;
  if (process.env.CI === 'true' || process.env.CI === '1')
    throw new Error(`Debian's busybox is needed: ${b.why}`);
  t.skip(b.why);
  return undefined;
}
