/**
 * Detached VMs (`kjx boot --detach`): one state directory per name under
 * `<state>/vms/<name>` holding `vm.json`, the QMP socket, the console log and QEMU's
 * stderr. A VM is live while its pid runs QEMU; stale directories are pruned.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { KjxError } from '../util/errors.js';
import { stateRoot } from './state.js';

export interface HostKey {
  type: string;
  sha256: string;
  /** The public key itself (base64 blob), when the guest printed it. */
  key?: string;
}

/** What machine a detached VM is, so a snapshot of it says what it can be restored as. */
export interface MachineIdentity {
  /** snapshots.ts snapshotKey over the VM's argv (per-VM parts as placeholders), artifacts, QEMU, accel. */
  key: string;
  qemuVersion: string;
  accel: 'kvm' | 'tcg';
  /** sha256 of what QEMU loads (kernel, initrd). */
  artifacts: Record<string, string>;
  /** The guest port dropbear listens on. */
  sshPort: number;
}

export interface VmRecord {
  name: string;
  pid: number;
  dir: string;
  qmp: string;
  consoleLog: string;
  /** Forwarded ports, host side (always on 127.0.0.1). */
  ports: { ssh?: number };
  kernel: string;
  initrd: string;
  spec: string;
  accel: 'kvm' | 'tcg';
  startedAt: string;
  buildId?: string;
  hostKeys: HostKey[];
  /** Private key for `kjx ssh`/`exec` (on the host, never in an artifact). */
  identity?: string;
  /** The machine it is (absent for VMs of a kjx before snapshots of detached VMs). */
  machine?: MachineIdentity;
  /** The snapshot file it was restored from. */
  restoredFrom?: string;
}

export const NAME_RE = /^[a-z0-9][a-z0-9_.-]{0,39}$/;

export function vmsRoot(): string {
  return join(stateRoot(), 'vms');
}

export function vmDir(name: string): string {
  if (!NAME_RE.test(name)) {
    throw new KjxError('USAGE', `VM name "${name}" is not valid`, {
      hint: 'use lowercase letters, digits, ".", "_" and "-" (at most 40 characters)',
    });
  }
  return join(vmsRoot(), name);
}

/** Is this pid a running QEMU (not a zombie, not a recycled pid of something else)? */
export function isQemuPid(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z') return false;
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]!.includes('qemu-system');
  } catch {
    return false;
  }
}

export function writeRecord(r: VmRecord): void {
  mkdirSync(r.dir, { recursive: true, mode: 0o700 });
  writeFileAtomic(join(r.dir, 'vm.json'), `${JSON.stringify(r, null, 2)}\n`, 0o600);
}

export function readRecord(name: string): VmRecord | undefined {
  const p = join(vmDir(name), 'vm.json');
  if (!existsSync(p)) return undefined;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as VmRecord;
  } catch {
    return undefined;
  }
}

/** A live VM by name, or a USAGE error listing the live ones. */
export function requireVm(name: string): VmRecord {
  const r = readRecord(name);
  if (r && isQemuPid(r.pid)) return r;
  const names = listVms().map((v) => v.name);
  throw new KjxError('USAGE', `no running VM named "${name}"`, {
    hint: names.length ? `running: ${names.join(', ')}` : 'start one with `kjx boot --detach --name NAME`',
  });
}

/** Live VMs; directories of VMs that are gone are removed. */
export function listVms(): VmRecord[] {
  const root = vmsRoot();
  if (!existsSync(root)) return [];
  const out: VmRecord[] = [];
  for (const name of readdirSync(root).sort()) {
    if (!NAME_RE.test(name)) continue;
    const r = readRecord(name);
    if (r && isQemuPid(r.pid)) out.push(r);
    else if (!existsSync(join(root, name, 'starting')))
      rmSync(join(root, name), { recursive: true, force: true });
  }
  return out;
}

export function removeVm(r: VmRecord): void {
  rmSync(r.dir, { recursive: true, force: true });
}
