/**
 * The Debian host tools kjx calls, which package ships each, and what needs it.
 * `kjx doctor` reports them; the README's two commands install what is missing.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';

export type ToolUse = 'build' | 'boot' | 'test';

export interface HostTool {
  command: string;
  /** Debian package that ships it. */
  package: string;
  /** Arguments that print a version (first line is shown). */
  versionArgs: string[];
  why: string;
  needFor: ToolUse[];
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
    why: 'zstd initramfs compression',
    needFor: ['build', 'test'],
  },
  {
    command: 'qemu-system-x86_64',
    package: 'qemu-system-x86',
    versionArgs: ['--version'],
    why: 'boot images',
    needFor: ['boot', 'test'],
  },
  {
    command: 'cpio',
    package: 'cpio',
    versionArgs: ['--version'],
    why: 'cross-check archives in tests',
    needFor: ['test'],
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
  const path = which(tool.command);
  if (!path) return { tool, path: undefined, version: undefined };
  let version: string | undefined;
  try {
    const out = execFileSync(path, tool.versionArgs, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 10_000,
    });
    version = out
      .split('\n')
      .find((l) => l.trim())
      ?.trim();
  } catch {
    version = undefined;
  }
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
