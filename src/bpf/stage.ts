/**
 * The `programs` stage of `kjx build`: the image kernel's BTF, the compiled programs
 * (compile.ts, cached by content) and the tree they add (image-layer.ts). Kept apart
 * from the pipeline so that the build only calls `programsStage` and keys with
 * `programsKeyInput`.
 */
import { bzImagePayload, unpackVmlinux } from '../rootfs/bzimage.js';
import type { Tree } from '../rootfs/tree.js';
import { blobExists, type Cache, getBlob, getRecord, putBlob, putRecord } from '../sources/cache.js';
import type { ProgramSpec } from '../spec/programs.js';
import { KjxError, type WarnFn } from '../util/errors.js';
import { run } from '../util/exec.js';
import { sha256 } from '../util/hash.js';
import { compilePrograms } from './compile.js';
import { programsLayer } from './image-layer.js';
import { kernelBtf } from './kernel-btf.js';
import type { Toolchain } from './toolchain.js';

/** The kernel's raw BTF, read once per kernel image (unpacking it costs about a second). */
export async function cachedKernelBtf(
  cache: Cache,
  vmlinuz: Buffer,
  version: string,
): Promise<{ sha: string; data: () => Buffer }> {
  const key = `bpf-kernel-btf-${sha256(vmlinuz)}`;
  const rec = getRecord<{ btf?: string; why?: string }>(cache, key);
  // on a hit the 4 MB of BTF are read only if vmlinux.h must be made again
  const sha = rec?.btf;
  if (sha && blobExists(cache, sha))
    return {
      sha,
      data: () => {
        const b = getBlob(cache, sha);
        if (!b) throw new KjxError('INTERNAL', `the kernel BTF ${sha} left the cache`);
        return b;
      },
    };
  let why = rec?.why;
  if (!why) {
    const elf = await vmlinuxOf(vmlinuz, `kernel ${version}`);
    const btf = elf.ok ? kernelBtf(elf.elf, `kernel ${version}`) : undefined;
    if (btf) {
      const sha = putBlob(cache, btf);
      putRecord(cache, key, { btf: sha });
      return { sha, data: () => btf };
    }
    why = elf.ok ? 'it has no BTF (.BTF section; CONFIG_DEBUG_INFO_BTF)' : `kjx cannot unpack it: ${elf.why}`;
    putRecord(cache, key, { why });
  }
  throw new KjxError(
    'BPF_COMPILE',
    `tracing.programs needs the BTF of the image kernel ${version}, and ${why}`,
    {
      hint: "CO-RE programs are compiled against the kernel's own types: use a kernel built with CONFIG_DEBUG_INFO_BTF=y (Debian's kernels are)",
    },
  );
}

/**
 * The kernel's ELF image. Debian's generic kernels compress it with xz and the x86
 * BCJ filter, which kjx's xz reader (@napi-rs/lzma) lacks: those go through the
 * host's xz (a build host tool), which ignores the size the kernel build appends.
 */
export async function vmlinuxOf(
  vmlinuz: Buffer,
  name: string,
): Promise<{ ok: true; elf: Buffer } | { ok: false; why: string }> {
  try {
    return await unpackVmlinux(vmlinuz, name);
  } catch (e) {
    if (e instanceof KjxError || bzImagePayload(vmlinuz, name).format !== 'xz') throw e;
    const r = await run(`${name}: unpack the xz payload`, 'xz', ['-dc', '--single-stream'], {
      input: bzImagePayload(vmlinuz, name).payload,
      binary: true,
    });
    return { ok: true, elf: r.stdoutBytes };
  }
}

export interface ProgramsStageInput {
  programs: ProgramSpec[];
  specDir: string;
  toolchain: Toolchain;
  kernel: { vmlinuz: Buffer; version: string };
  base: Tree;
  cache: Cache;
  progress?: (text: string) => void;
  warn: WarnFn;
}

/** Compile the programs and return the tree they add to the image. */
export async function programsStage(
  i: ProgramsStageInput,
): Promise<{ tree: Tree; detail: string; cached: boolean }> {
  const btf = await cachedKernelBtf(i.cache, i.kernel.vmlinuz, i.kernel.version);
  const compiled = await compilePrograms({
    programs: i.programs,
    specDir: i.specDir,
    toolchain: i.toolchain,
    btf,
    cache: i.cache,
    ...(i.progress ? { progress: i.progress } : {}),
    warn: i.warn,
  });
  const tree = programsLayer(compiled, i.programs, i.base, i.warn);
  const fresh = compiled.programs.filter((p) => !p.cached).length;
  return {
    tree,
    cached: fresh === 0,
    detail: `${i.programs.length} program${i.programs.length === 1 ? '' : 's'}${fresh ? `, ${fresh} compiled` : ', from the cache'}`,
  };
}
