/** Options shared by the commands that start VMs. */
import { KjxError } from '../util/errors.js';

export interface AccelChoice {
  accel: 'kvm' | 'tcg';
  reason: string;
}

/** `--accel auto|kvm|tcg` to a concrete accelerator (auto probes once per host and kernel). */
export async function resolveAccel(requested: string, kernel: string): Promise<AccelChoice> {
  if (requested !== 'auto' && requested !== 'kvm' && requested !== 'tcg') {
    throw new KjxError('USAGE', `--accel ${requested}: expected auto, kvm or tcg`);
  }
  if (requested === 'tcg') return { accel: 'tcg', reason: 'requested' };
  const { chooseAccel } = await import('../vm/accel.js');
  const { openCache } = await import('../sources/cache.js');
  const c = await chooseAccel(requested, { kernel, cacheDir: openCache().root });
  return { accel: c.accel, reason: c.reason + (c.cached ? ' (cached verdict)' : '') };
}

export interface BuiltImage {
  kernel: string;
  initrd: string;
  manifest: import('../image/manifest.js').Manifest;
  cmdline: string;
  buildId: string;
  specPath: string;
}

/** Bring the image up to date (a no-op when nothing changed) and return what boots it. */
export async function builtImage(specPath: string, outDir: string): Promise<BuiltImage> {
  const { readFileSync } = await import('node:fs');
  const { resolve } = await import('node:path');
  const { build } = await import('../pipeline/build.js');
  const { loadSpec } = await import('../spec/load.js');
  const built = await build({ specPath, outDir });
  const path = (pred: (n: string) => boolean) => built.artifacts.find((a) => pred(a.name))!.path;
  return {
    kernel: path((n) => n === 'vmlinuz'),
    initrd: path((n) => n.startsWith('initramfs')),
    manifest: JSON.parse(
      readFileSync(
        path((n) => n === 'manifest.json'),
        'utf8',
      ),
    ),
    cmdline: loadSpec(specPath).kernel.cmdline,
    buildId: built.buildId,
    specPath: resolve(specPath),
  };
}

/** Parse a numeric option, or a USAGE error naming it. */
export function numberOption(name: string, value: unknown, min: number): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min)
    throw new KjxError('USAGE', `--${name} must be a number >= ${min}, got "${value}"`);
  return n;
}
