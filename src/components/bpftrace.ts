/**
 * bpftrace from Debian's `bpftrace` (0.17): the front end only; its libraries
 * (LLVM 14, clang, libbpfcc, ...) arrive through the ELF closure, about 277 MiB.
 * Fine on a disk image; in an initramfs the guest needs about 2 GiB of memory,
 * which `kjx trace` gives an image with bpftrace.
 */
import { dataComponent } from './data.js';
import { bpfReadyTree } from './libbpf-tools.js';

export const BPFTRACE_FILES = ['/usr/bin/bpftrace'];

export const bpftrace = dataComponent({
  name: 'bpftrace',
  take: [{ package: 'bpftrace', paths: BPFTRACE_FILES }],
  generated: bpfReadyTree,
  traceMemoryMiB: 2048,
  probe: BPFTRACE_FILES,
});
