/**
 * The Debian host tools kjx calls, which package ships each, and what needs it.
 * `kjx doctor` reports them; the README's two commands install what is missing.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';

/**
 * `bpf`: compiling tracing.programs (src/bpf/toolchain.ts picks what a spec needs);
 * `kernel`: building a kernel from source (kernel.source, kernel.tree; src/kernel/).
 */
export type ToolUse = 'build' | 'boot' | 'test' | 'bpf' | 'kernel';

export interface HostTool {
  command: string;
  /** Debian package that ships it. */
  package: string;
  /** Arguments that print a version (first line is shown). */
  versionArgs: string[];
  why: string;
  needFor: ToolUse[];
  /** A data file rather than a command (firmware, a static library): present when one of these paths exists. */
  files?: string[];
  /** What `kjx doctor` shows for a present data file (default "present"). */
  fileNote?: string;
}

export const HOST_TOOLS: HostTool[] = [
  {
    command: 'apt-get',
    package: 'apt',
    versionArgs: ['--version'],
    why: 'download Debian packages',
    needFor: ['build', 'test'],
  },
  {
    command: 'apt-cache',
    package: 'apt',
    versionArgs: ['--version'],
    why: 'resolve Debian packages',
    needFor: ['build', 'test'],
  },
  {
    command: 'xz',
    package: 'xz-utils',
    versionArgs: ['--version'],
    why: 'xz initramfs compression',
    needFor: ['build', 'test'],
  },
  {
    command: 'zstd',
    package: 'zstd',
    versionArgs: ['--version'],
    why: 'zstd initramfs compression; snapshots of VMs at ready (compressed migration streams)',
    needFor: ['build', 'boot', 'test'],
  },
  {
    command: 'qemu-system-x86_64',
    package: 'qemu-system-x86',
    versionArgs: ['--version'],
    why: 'boot images',
    needFor: ['boot', 'test'],
  },
  {
    command: 'vde_switch',
    package: 'vde2',
    versionArgs: ['--version'],
    why: 'the virtual LAN of `kjx cluster` (a switch as the user: no root, no host interface)',
    needFor: ['boot', 'test'],
  },
  {
    command: 'wirefilter',
    package: 'vde2',
    versionArgs: ['--help'],
    why: "delay and loss on a cluster node's link (`kjx cluster netem`)",
    needFor: ['boot', 'test'],
  },
  {
    command: 'openssl',
    package: 'openssl',
    versionArgs: ['version'],
    why: "the per-cluster CA and node certificates of `kjx cluster` (etcd's TLS)",
    needFor: ['boot', 'test'],
  },
  {
    command: 'setpriv',
    package: 'util-linux',
    versionArgs: ['--version'],
    why: "end a cluster's QEMUs and switch with its supervisor (--pdeathsig)",
    needFor: ['boot', 'test'],
  },
  {
    command: 'cpio',
    package: 'cpio',
    versionArgs: ['--version'],
    why: 'cross-check archives in tests',
    needFor: ['test'],
  },
  {
    command: 'time',
    package: 'time',
    versionArgs: ['--version'],
    why: 'measure the peak memory of kjx reading hostile images in tests',
    needFor: ['test'],
  },
  {
    command: 'prlimit',
    package: 'util-linux',
    versionArgs: ['--version'],
    why: 'run kjx under a memory limit in tests',
    needFor: ['test'],
  },
  {
    command: 'xorriso',
    package: 'xorriso',
    versionArgs: ['-version'],
    why: 'write ISO images (outputs: iso)',
    needFor: ['build', 'test'],
  },
  {
    command: 'grub-mkimage',
    package: 'grub-common',
    versionArgs: ['--version'],
    why: 'link GRUB boot images from the grub-pc-bin/grub-efi-amd64-bin packages (iso, disks)',
    needFor: ['build', 'test'],
  },
  {
    command: 'mformat',
    package: 'mtools',
    versionArgs: ['--version'],
    why: 'write FAT EFI partitions without mounting (iso, disks)',
    needFor: ['build', 'test'],
  },
  {
    command: 'mke2fs',
    package: 'e2fsprogs',
    versionArgs: ['-V'],
    why: 'write the ext4 root of disk images',
    needFor: ['build', 'test'],
  },
  {
    command: 'debugfs',
    package: 'e2fsprogs',
    versionArgs: ['-V'],
    why: 'set owners, modes and device nodes in ext4 without root',
    needFor: ['build', 'test'],
  },
  {
    command: 'qemu-img',
    package: 'qemu-utils',
    versionArgs: ['--version'],
    why: 'write and read qcow2 and vmdk disk images',
    needFor: ['build', 'test'],
  },
  {
    command: 'OVMF.fd',
    package: 'ovmf',
    versionArgs: [],
    why: 'UEFI firmware for booting media with --firmware uefi',
    needFor: ['boot', 'test'],
    files: ['/usr/share/ovmf/OVMF.fd', '/usr/share/OVMF/OVMF.fd', '/usr/share/qemu/OVMF.fd'],
  },
  {
    command: 'sfdisk',
    package: 'fdisk',
    versionArgs: ['--version'],
    why: 'cross-check partition tables in tests',
    needFor: ['test'],
  },
  {
    command: 'gcc',
    package: 'gcc',
    versionArgs: ['--version'],
    why: 'build the C daemon of examples/user-component (gcc -static) in tests; compile kernels (kernel.source)',
    needFor: ['test', 'kernel'],
  },
  {
    command: 'make',
    package: 'make',
    versionArgs: ['--version'],
    why: 'run the Makefile of examples/user-component in tests; drive kernel builds (kernel.source)',
    needFor: ['test', 'kernel'],
  },
  // kernels built from source (src/kernel/): what the kernel's own build calls
  {
    command: 'flex',
    package: 'flex',
    versionArgs: ['--version'],
    why: "Kconfig's lexer, when a kernel is built from source (kernel.source, kernel.tree)",
    needFor: ['kernel', 'test'],
  },
  {
    command: 'bison',
    package: 'bison',
    versionArgs: ['--version'],
    why: "Kconfig's parser, when a kernel is built from source",
    needFor: ['kernel', 'test'],
  },
  {
    command: 'bc',
    package: 'bc',
    versionArgs: ['--version'],
    why: "the kernel build's timer constants (kernel/time/timeconst.bc)",
    needFor: ['kernel', 'test'],
  },
  {
    command: 'pahole',
    package: 'dwarves',
    versionArgs: ['--version'],
    why: 'BTF for a kernel built from source (CONFIG_DEBUG_INFO_BTF: bpftrace, libbpf-tools, tracing.programs)',
    needFor: ['kernel', 'test'],
  },
  {
    command: 'libelf.h',
    package: 'libelf-dev',
    versionArgs: [],
    why: "objtool and resolve_btfids, built by the kernel's build",
    needFor: ['kernel', 'test'],
    files: ['/usr/include/libelf.h'],
  },
  {
    command: 'openssl/ssl.h',
    package: 'libssl-dev',
    versionArgs: [],
    why: "the kernel build's certificate tools (extract-cert, sign-file) where a config asks for them",
    needFor: ['kernel', 'test'],
    files: ['/usr/include/openssl/ssl.h'],
  },
  {
    command: 'libc.a',
    package: 'libc6-dev',
    versionArgs: [],
    why: 'the static C library gcc -static links (examples/user-component, in tests)',
    needFor: ['test'],
    files: ['/usr/lib/x86_64-linux-gnu/libc.a'],
  },
  {
    command: 'busybox',
    package: 'busybox',
    versionArgs: ['--help'],
    why: 'run the guest scripts in tests under the shell the guest has (busybox sh)',
    needFor: ['test'],
  },
  {
    command: 'shellcheck',
    package: 'shellcheck',
    versionArgs: ['--version'],
    why: 'lint the guest scripts (npm run lint, npm test)',
    needFor: ['test'],
  },
  {
    command: 'chromium',
    package: 'chromium',
    versionArgs: ['--version'],
    why: 'render trace SVGs (flame graphs, histograms, boot timelines) to pixels in tests',
    needFor: ['test'],
  },
  // tracing.programs: the eBPF toolchain (src/bpf/toolchain.ts); tests compile real programs
  {
    command: 'clang',
    package: 'clang',
    versionArgs: ['--version'],
    why: 'compile eBPF programs (tracing.programs) with -target bpf',
    needFor: ['bpf', 'test'],
  },
  {
    command: 'llvm-strip',
    package: 'llvm',
    versionArgs: ['--version'],
    why: 'strip DWARF from eBPF objects, keeping their BTF (tracing.programs)',
    needFor: ['bpf', 'test'],
  },
  {
    command: 'bpftool',
    package: 'bpftool',
    versionArgs: ['version'],
    why: "vmlinux.h from the image kernel's BTF, and skeletons for C loaders (tracing.programs)",
    needFor: ['bpf', 'test'],
  },
  {
    command: 'gcc',
    package: 'gcc',
    versionArgs: ['--version'],
    why: 'link C loaders and kjx-bpf-run, the generic loader (tracing.programs)',
    needFor: ['bpf', 'test'],
  },
  {
    command: 'libc6-dev',
    package: 'libc6-dev',
    versionArgs: [],
    why: 'C library headers for loaders (tracing.programs)',
    needFor: ['bpf', 'test'],
    files: ['/usr/include/stdio.h'],
    fileNote: 'headers',
  },
  {
    command: 'libbpf.a',
    package: 'libbpf-dev',
    versionArgs: [],
    why: "libbpf's headers (bpf_helpers.h) and static library (tracing.programs)",
    needFor: ['bpf', 'test'],
    files: ['/usr/lib/x86_64-linux-gnu/libbpf.a'],
    fileNote: 'static library',
  },
  {
    command: 'libelf.a',
    package: 'libelf-dev',
    versionArgs: [],
    why: 'libelf for static libbpf loaders (tracing.programs)',
    needFor: ['bpf', 'test'],
    files: ['/usr/lib/x86_64-linux-gnu/libelf.a'],
    fileNote: 'static library',
  },
  {
    command: 'libz.a',
    package: 'zlib1g-dev',
    versionArgs: [],
    why: 'zlib for static libbpf loaders (tracing.programs)',
    needFor: ['bpf', 'test'],
    files: ['/usr/lib/x86_64-linux-gnu/libz.a'],
    fileNote: 'static library',
  },
  {
    command: 'go',
    package: 'golang-go',
    versionArgs: ['version'],
    why: 'build Go loaders (tracing.programs with go:), offline in GOPATH mode',
    needFor: ['bpf', 'test'],
  },
  {
    command: 'cilium/ebpf',
    package: 'golang-github-cilium-ebpf-dev',
    versionArgs: [],
    why: 'the cilium/ebpf Go library for Go loaders (tracing.programs with go:)',
    needFor: ['bpf', 'test'],
    files: ['/usr/share/gocode/src/github.com/cilium/ebpf/collection.go'],
    fileNote: 'Go sources',
  },
];

export interface ToolStatus {
  tool: HostTool;
  path: string | undefined;
  version: string | undefined;
}

function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir) continue;
    try {
      accessSync(`${dir}/${cmd}`, constants.X_OK);
      return `${dir}/${cmd}`;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

export function probeTool(tool: HostTool): ToolStatus {
  if (tool.files) {
    const found = tool.files.find((f) => existsSync(f));
    return { tool, path: found, version: found ? (tool.fileNote ?? 'present') : undefined };
  }
  const path = which(tool.command);
  if (!path) return { tool, path: undefined, version: undefined };
  // some tools (mke2fs -V) print their version on stderr
  const r = spawnSync(path, tool.versionArgs, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 10_000,
  });
  const version = `${r.stdout ?? ''}\n${r.stderr ?? ''}`
    .split('\n')
    .find((l) => l.trim())
    ?.trim();
  return { tool, path, version };
}

export function probeTools(uses: ToolUse[]): ToolStatus[] {
  return HOST_TOOLS.filter((t) => t.needFor.some((u) => uses.includes(u))).map(probeTool);
}

/** The exact apt line that installs what is missing ('' when nothing is). */
export function aptInstallLine(missing: ToolStatus[]): string {
  const pkgs = [...new Set(missing.map((m) => m.tool.package))].sort();
  return pkgs.length ? `apt-get install -y --no-install-recommends ${pkgs.join(' ')}` : '';
}
