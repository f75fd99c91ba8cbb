/**
 * bpftrace from Debian's `bpftrace` (0.17): the front end only; its libraries
 * (LLVM 14, clang, libbpfcc, ...) arrive through the ELF closure, about 277 MiB.
 * Fine on a disk image; in an initramfs the guest needs about 2 GiB of memory
 * (`kjx trace` gives it that when the image has bpftrace).
 */
import { type Component, takeFiles } from './component.js';
import { addBpfReady } from './libbpf-tools.js';

export const BPFTRACE_FILES = ['/usr/bin/bpftrace'];

export const bpftrace: Component = {
  name: 'bpftrace',
  packages: () => ['bpftrace'],
  assemble: (ctx) =>
    addBpfReady(takeFiles('bpftrace', ctx.staged('bpftrace'), BPFTRACE_FILES), 'tracing components'),
};
