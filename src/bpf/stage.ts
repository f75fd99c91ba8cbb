/**
 * What the `programs` stage of `kjx build` does (its entry in src/pipeline/stages.ts
 * only calls `programsTree`): the image kernel's BTF, the compiled programs
 * (compile.ts, cached by content) and the tree they add (image-layer.ts).
 */
import { unpackVmlinux } from '../rootfs/bzimage.js';
import type { Tree } from '../rootfs/tree.js';
import { blobExists, type Cache, getBlob, getRecord, putBlob, putRecord } from '../sources/cache.js';
import { KjxError, type WarnFn } from '../util/errors.js';
import { sha256 } from '../util/hash.js';
import { compilePrograms } from './compile.js';
import { programsLayer } from './image-layer.js';
import { kernelBtf } from './kernel-btf.js';
import type { ProgramsPlan } from './plan.js';

/** The kernel's raw BTF, read once per kernel image (unpacking it costs about a second). */
export async function cachedKernelBtf(
  cache: Cache,
  vmlinuz: Buffer,
  version: string,
): Promise<{ sha: string; data: () => Promise<Buffer> }> {
  const key = `bpf-kernel-btf-${sha256(vmlinuz)}`;
  const rec = getRecord<{ btf?: string; why?: string }>(cache, key);
  // on a hit the 4 MB of BTF are read only if vmlinux.h must be made again; a blob
  // found damaged then (the cache drops it) is unpacked from the kernel once more
  const sha = rec?.btf;
  if (sha && blobExists(cache, sha))
    return { sha, data: async () => getBlob(cache, sha) ?? (await fromKernel(cache, key, vmlinuz, version)) };
  if (!rec?.why) {
    const btf = await fromKernel(cache, key, vmlinuz, version);
    return { sha: sha256(btf), data: async () => btf };
  }
  throw noBtf(version, rec.why);
}

/** Unpack the kernel, take its BTF and cache it (or why it has none). */
async function fromKernel(cache: Cache, key: string, vmlinuz: Buffer, version: string): Promise<Buffer> {
  const elf = await vmlinuxOf(vmlinuz, `kernel ${version}`);
  const btf = elf.ok ? kernelBtf(elf.elf, `kernel ${version}`) : undefined;
  if (btf) {
    putRecord(cache, key, { btf: putBlob(cache, btf) });
    return btf;
  }
  const why = elf.ok
    ? 'it has no BTF (.BTF section; CONFIG_DEBUG_INFO_BTF)'
    : `kjx cannot unpack it: ${elf.why}`;
  putRecord(cache, key, { why });
  throw noBtf(version, why);
}

function noBtf(version: string, why: string): KjxError {
  return new KjxError(
    'BPF_COMPILE',
    `tracing.programs needs the BTF of the image kernel ${version}, and ${why}`,
    {
      hint: "CO-RE programs are compiled against the kernel's own types: use a kernel built with CONFIG_DEBUG_INFO_BTF=y (Debian's kernels are)",
    },
  );
}

/**
 * The kernel's ELF image. Debian's generic kernels compress it with xz and the x86
 * BCJ filter, which the host's xz undoes (util/compression.ts); the output is
 * bounded by the size the kernel's build appends to the payload.
 */
export async function vmlinuxOf(
  vmlinuz: Buffer,
  name: string,
): Promise<{ ok: true; elf: Buffer } | { ok: false; why: string }> {
  return unpackVmlinux(vmlinuz, name);
}

export interface ProgramsTreeInput {
  programs: ProgramsPlan;
  kernel: { vmlinuz: Buffer; version: string };
  /** The assembled base tree: the loaders' libraries (libc) are taken from it. */
  base: Tree;
  cache: Cache;
  progress?: (text: string) => void;
  warn: WarnFn;
}

/** Compile the programs and return the tree they add to the image. */
export async function programsTree(
  i: ProgramsTreeInput,
): Promise<{ tree: Tree; detail: string; cached: boolean }> {
  const { programs, specDir, toolchain } = i.programs;
  const btf = await cachedKernelBtf(i.cache, i.kernel.vmlinuz, i.kernel.version);
  const compiled = await compilePrograms({
    programs,
    specDir,
    toolchain,
    btf,
    cache: i.cache,
    ...(i.progress ? { progress: i.progress } : {}),
    warn: i.warn,
  });
  const tree = programsLayer(compiled, programs, i.base, i.warn);
  const fresh = compiled.programs.filter((p) => !p.cached).length;
  return {
    tree,
    cached: fresh === 0,
    detail: `${programs.length} program${programs.length === 1 ? '' : 's'}${fresh ? `, ${fresh} compiled` : ', from the cache'}`,
  };
}
