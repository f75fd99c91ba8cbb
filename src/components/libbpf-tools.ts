/**
 * libbpf-tools from Debian's `libbpf-tools` (0.26): BPF CO-RE programs (runqlat,
 * execsnoop, offcputime, ...) that need only libc, libelf and zlib, and the
 * kernel's BTF (/sys/kernel/btf/vmlinux, which the Debian kernels have). The
 * spec's `tracing.libbpfTools` picks which ones (about 350 KB each), so the
 * component's files depend on that section (its cache key says so).
 */
import { BPF_READY, BPF_READY_LINK, bpfReadyScript } from '../guest/bpf-ready.js';
import { addEntry, ensureParents, mk, newTree, type Tree } from '../rootfs/tree.js';
import { LIBBPF_TOOLS } from '../spec/libbpf-tools.js';
import { type Component, takeFiles } from './component.js';

/** Where the package installs its tools. */
export const LIBBPF_TOOLS_DIR = '/usr/sbin';

/**
 * `kjx-bpf-ready CMD...`: runs a BPF tool as a service and reports it ready once it
 * is attached (src/guest/bpf-ready.ts). The bpftrace component adds the same file.
 */
export function bpfReadyTree(): Tree {
  const src = { kind: 'generated', by: 'tracing components' } as const;
  const tree = newTree();
  addEntry(tree, mk.file(BPF_READY, bpfReadyScript(), src, 0o755));
  addEntry(tree, mk.symlink(BPF_READY_LINK, BPF_READY, src));
  ensureParents(tree, src);
  return tree;
}

export const libbpfTools: Component = {
  name: 'libbpf-tools',
  packages: () => ['libbpf-tools'],
  assemble(ctx) {
    const tree = takeFiles(
      'libbpf-tools',
      ctx.staged('libbpf-tools'),
      ctx.spec.tracing.libbpfTools.map((t) => `${LIBBPF_TOOLS_DIR}/${t}`),
    );
    for (const e of bpfReadyTree().values()) if (!tree.has(e.path)) addEntry(tree, e);
    return tree;
  },
  // only the tools: tracing.programs are built by a stage of their own
  keyOf: (spec) => ({ tracing: { libbpfTools: spec.tracing.libbpfTools } }),
  probe: LIBBPF_TOOLS.map((t) => `${LIBBPF_TOOLS_DIR}/${t}`),
};
