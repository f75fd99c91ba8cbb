/**
 * The kernel stage's result for a kernel built from source: the source (Debian's
 * package or a tree), the build (build.ts), then the same module closure a
 * packaged kernel gets, read from what modules_install wrote.
 */
import { readFileSync } from 'node:fs';
import type { Cache } from '../sources/cache.js';
import { readHostDir } from '../sources/host-files.js';
import { type KernelResult, kernelFromLocal } from '../sources/kernel.js';
import type { BuildKernelSpec } from '../spec/schema.js';
import { KjxError, type WarnFn } from '../util/errors.js';
import { buildKernel } from './build.js';
import { debianSource, treeSource } from './source.js';

export interface FromSourceInputs {
  kernel: BuildKernelSpec;
  /** The linux-source package (kernel.source: debian) and its bytes on demand. */
  deb?: { name: string; version: string; sha256: string; data: () => Promise<Buffer> };
  cache: Cache;
  epoch: number;
  warn: WarnFn;
  progress(text: string): void;
  required: string[];
  optional: string[];
}

export async function kernelFromSource(i: FromSourceInputs): Promise<KernelResult> {
  const { kernel } = i;
  let source: Awaited<ReturnType<typeof debianSource>>;
  if (kernel.source.kind === 'debian') {
    if (!i.deb) throw new KjxError('INTERNAL', 'kernel.source: debian without a resolved source package');
    const bytes = await i.deb.data();
    source = await debianSource(i.cache, { ...i.deb, data: () => bytes }, i.progress);
  } else {
    source = treeSource(kernel.source.path, kernel.source.pathRef);
  }
  const built = await buildKernel({
    source,
    config: kernel.config,
    epoch: i.epoch,
    cache: i.cache,
    warn: i.warn,
    progress: i.progress,
  });
  i.progress(`${built.release}${built.cached ? ' (built before)' : ''}`);
  const modules = readHostDir(built.modulesDir, `/lib/modules/${built.release}`, built.modulesDir);
  return kernelFromLocal(readFileSync(built.bzImage), modules, built.modulesDir, i.required, i.optional);
}
