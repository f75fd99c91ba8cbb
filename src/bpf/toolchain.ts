/**
 * The host toolchain `tracing.programs` needs, found before any work starts: clang
 * and llvm-strip for the BPF object, bpftool for vmlinux.h and skeletons, gcc with
 * Debian's static libbpf, libelf and zlib for C loaders and kjx-bpf-run, and Go with
 * Debian's cilium/ebpf for Go loaders. What is missing is one HOST_TOOL_MISSING error
 * with the exact apt-get line; `kjx doctor --install --for bpf` installs it all.
 *
 * The toolchain's identity (each tool's resolved path, size and mtime) is part of
 * every compile cache key: an upgraded clang recompiles, and telling that costs a
 * stat per tool rather than starting each one.
 */
import { realpathSync, statSync } from 'node:fs';
import type { ProgramSpec } from '../spec/programs.js';
import { KjxError } from '../util/errors.js';
import { hashValue } from '../util/hash.js';
import { aptInstallLine, HOST_TOOLS, type HostTool, probeTool, type ToolStatus } from '../util/host-tools.js';

/** Debian's GOPATH tree of Go library packages (golang-*-dev install their sources there). */
export const DEBIAN_GOPATH = '/usr/share/gocode';

export interface Toolchain {
  clang: string;
  llvmStrip: string;
  bpftool: string;
  cc: string;
  /** Set when a program has a Go loader. */
  go?: string;
  /** Hash of what the tools are, for cache keys. */
  id: string;
}

const byCommand = (c: string): HostTool => {
  const t = HOST_TOOLS.find((x) => x.command === c);
  if (!t) throw new KjxError('INTERNAL', `no host tool ${c}`);
  return t;
};

/** The host tools these programs need (kjx-bpf-run, always built, needs the C ones). */
export function neededTools(programs: ProgramSpec[]): HostTool[] {
  const names = ['clang', 'llvm-strip', 'bpftool', 'gcc', 'libc6-dev', 'libbpf.a', 'libelf.a', 'libz.a'];
  if (programs.some((p) => p.loader.kind === 'go')) names.push('go', 'cilium/ebpf');
  return names.map(byCommand);
}

function identity(path: string): string {
  try {
    const real = realpathSync(path);
    const st = statSync(real);
    return `${real}:${st.size}:${Math.trunc(st.mtimeMs)}`;
  } catch {
    return `${path}:?`;
  }
}

/**
 * Find the toolchain for these programs, or throw HOST_TOOL_MISSING naming every
 * missing tool and the apt-get line that installs them.
 */
export function requireToolchain(programs: ProgramSpec[]): Toolchain {
  const status: ToolStatus[] = neededTools(programs).map((t) => {
    // data files need no version; commands are found on PATH without being started
    return t.files ? probeTool(t) : { tool: t, path: which(t.command), version: undefined };
  });
  const missing = status.filter((s) => !s.path);
  if (missing.length > 0) {
    const names = missing.map((m) => `${m.tool.command} (${m.tool.package})`).join(', ');
    throw new KjxError('HOST_TOOL_MISSING', `tracing.programs needs host tools that are missing: ${names}`, {
      hint: `install them with: ${aptInstallLine(missing)}\n(or all of the eBPF toolchain: kjx doctor --install --for bpf)`,
    });
  }
  const path = (c: string) => status.find((s) => s.tool.command === c)?.path;
  const go = path('go');
  return {
    clang: path('clang')!,
    llvmStrip: path('llvm-strip')!,
    bpftool: path('bpftool')!,
    cc: path('gcc')!,
    ...(go ? { go } : {}),
    id: hashValue(status.map((s) => identity(s.path!))),
  };
}

/** A command on PATH, without running it. */
function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir) continue;
    try {
      const p = `${dir}/${cmd}`;
      if (statSync(p).isFile()) return p;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}
