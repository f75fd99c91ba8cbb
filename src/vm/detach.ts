/**
 * `kjx boot --detach`: start QEMU in the background (its console to a log file, a QMP
 * socket, SSH forwarded to 127.0.0.1), follow the console log until the guest says
 * ready, record it, and return. `stopVm` ends one: ACPI power-off through QMP with a
 * deadline, then QMP quit, then SIGKILL.
 *
 * The host keys pinned for `kjx exec`/`ssh` come only from `hostkey` markers that
 * carry this boot's nonce (src/guest/markers.ts); the nonce lives in this process
 * only, never in the VM's record.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isNoncelessInit, newNonce, parseMarker } from '../guest/markers.js';
import { KjxError } from '../util/errors.js';
import { tail } from '../util/exec.js';
import { connectQmpOnceUp, forwardedPort } from './forwards.js';
import { qemuArgv, type VmConfig } from './qemu-args.js';
import { connectQmp } from './qmp.js';
import {
  type HostKey,
  isQemuPid,
  readRecord,
  removeVm,
  type VmRecord,
  vmDir,
  writeRecord,
} from './registry.js';
import { nonceMissingError, PANIC_PATTERNS, type TimedMarker } from './session.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface DetachOptions {
  name: string;
  vm: Omit<VmConfig, 'console' | 'qmpSocket' | 'net' | 'nonce'>;
  /** The guest port dropbear listens on (`ssh.port`), forwarded from a free port on 127.0.0.1. */
  sshPort: number;
  /** Isolate the guest from the host and its network (`vm.restrict`; the SSH forward stays). */
  restrict?: boolean;
  spec: string;
  timeoutS: number;
  buildId?: string;
  identity?: string;
}

/** A host key as the ssh marker gives it: a known type and an unpadded base64 SHA256. */
const HOST_KEY_TYPE = /^(?:ed25519|ecdsa|rsa|dss)$/;
const SHA256_B64 = /^[A-Za-z0-9+/]{43}$/;

/** A detached VM once ready, and its boot as the runner sees one (for `--timing`). */
export interface DetachedBoot {
  rec: VmRecord;
  /** performance.now() when QEMU was spawned. */
  startedAt: number;
  /** Console markers with their host arrival times (the log is polled every 100 ms). */
  markers: TimedMarker[];
}

export async function bootDetached(o: DetachOptions): Promise<DetachedBoot> {
  const dir = vmDir(o.name);
  const old = readRecord(o.name);
  if (old && isQemuPid(old.pid)) {
    throw new KjxError('USAGE', `a VM named "${o.name}" is already running (pid ${old.pid})`, {
      hint: `stop it with \`kjx stop ${o.name}\`, or choose another --name`,
    });
  }
  rmSync(dir, { recursive: true, force: true });
  const rec: VmRecord = {
    name: o.name,
    pid: -1,
    dir,
    qmp: join(dir, 'qmp.sock'),
    consoleLog: join(dir, 'console.log'),
    ports: {},
    kernel: o.vm.kernel,
    initrd: o.vm.initrd ?? '',
    spec: o.spec,
    accel: o.vm.accel,
    startedAt: new Date().toISOString(),
    hostKeys: [],
    ...(o.buildId ? { buildId: o.buildId } : {}),
    ...(o.identity ? { identity: o.identity } : {}),
  };
  writeRecord(rec);
  writeFileSync(join(dir, 'starting'), '');
  writeFileSync(rec.consoleLog, '');
  const nonce = newNonce();
  const argv = qemuArgv({
    ...o.vm,
    console: { kind: 'file', path: rec.consoleLog },
    qmpSocket: rec.qmp,
    // port 0: QEMU binds a free port itself, so no other process can take it first
    net: { forwards: [{ host: 0, guest: o.sshPort }], ...(o.restrict ? { restrict: true } : {}) },
    nonce,
  });
  const errFd = openSync(join(dir, 'qemu.log'), 'w');
  const startedAt = performance.now();
  const markers: TimedMarker[] = [];
  const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', 'ignore', errFd] });
  closeSync(errFd);
  child.unref();
  rec.pid = child.pid ?? -1;
  writeRecord(rec);
  try {
    const qmp = await connectQmpOnceUp(rec.qmp, () => isQemuPid(rec.pid), 30_000);
    try {
      rec.ports.ssh = await forwardedPort(qmp, o.sshPort);
    } finally {
      qmp.close();
    }
    writeRecord(rec);
    await followUntilReady(rec, o.timeoutS, markers, nonce);
  } catch (e) {
    try {
      process.kill(rec.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    const qemuErr = existsSync(join(dir, 'qemu.log')) ? tail(readText(join(dir, 'qemu.log'))) : '';
    removeVm(rec);
    if (e instanceof KjxError && qemuErr) e.details.push(`QEMU: ${qemuErr}`);
    throw e;
  }
  rmSync(join(dir, 'starting'), { force: true });
  writeRecord(rec);
  return { rec, startedAt, markers };
}

function readText(path: string): string {
  try {
    const fd = openSync(path, 'r');
    const buf = Buffer.alloc(1 << 20);
    const n = readSync(fd, buf, 0, buf.length, 0);
    closeSync(fd);
    return buf.subarray(0, n).toString('utf8');
  } catch {
    return '';
  }
}

/** Read the console log as it grows until the ready marker (collecting host keys). */
async function followUntilReady(
  rec: VmRecord,
  timeoutS: number,
  markers: TimedMarker[],
  nonce: string,
): Promise<void> {
  const deadline = performance.now() + timeoutS * 1000;
  const fd = openSync(rec.consoleLog, 'r');
  let pos = 0;
  let pending = '';
  let all = '';
  const buf = Buffer.alloc(64 * 1024);
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n > 0) {
        pos += n;
        const s = buf.subarray(0, n).toString('utf8');
        all += s;
        pending += s;
        let nl = pending.indexOf('\n');
        while (nl >= 0) {
          const line = pending.slice(0, nl).replace(/\r$/, '');
          pending = pending.slice(nl + 1);
          nl = pending.indexOf('\n');
          if (PANIC_PATTERNS.some((p) => p.test(line))) {
            throw new KjxError('GUEST_PANIC', `guest kernel failed while booting: ${line.trim()}`, {
              details: [tail(all, 30)],
            });
          }
          const m = parseMarker(line, nonce);
          if (m) markers.push({ ...m, at: performance.now() });
          else if (markers.length === 0 && isNoncelessInit(line)) throw nonceMissingError(line);
          const type = m?.fields.type ?? '';
          const sha256 = m?.fields.sha256 ?? '';
          if (m?.event === 'hostkey' && HOST_KEY_TYPE.test(type) && SHA256_B64.test(sha256)) {
            const k: HostKey = { type, sha256 };
            if (m.fields.key) k.key = m.fields.key;
            rec.hostKeys.push(k);
          }
          if (m?.event === 'ready') {
            if (m.fields.build) rec.buildId = m.fields.build;
            return;
          }
        }
        continue;
      }
      if (!isQemuPid(rec.pid)) {
        throw new KjxError('VM_START', `QEMU exited while the guest was booting`, {
          details: [tail(all, 20)],
        });
      }
      if (performance.now() > deadline) {
        throw new KjxError('VM_TIMEOUT', `the guest did not become ready within ${timeoutS}s`, {
          details: [tail(all, 30)],
        });
      }
      await sleep(100);
    }
  } finally {
    closeSync(fd);
  }
}

export interface StopResult {
  name: string;
  how: 'powerdown' | 'quit' | 'kill' | 'gone';
  seconds: number;
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (!isQemuPid(pid)) return true;
    await sleep(100);
  }
  return !isQemuPid(pid);
}

/** Stop a detached VM: ACPI power button (guest shuts down cleanly), then quit, then kill. */
export async function stopVm(rec: VmRecord, deadlineS: number): Promise<StopResult> {
  const t0 = performance.now();
  const done = (how: StopResult['how']): StopResult => {
    removeVm(rec);
    return { name: rec.name, how, seconds: (performance.now() - t0) / 1000 };
  };
  if (!isQemuPid(rec.pid)) return done('gone');
  try {
    const qmp = await connectQmp(rec.qmp, 3000);
    try {
      await qmp.execute('system_powerdown');
      if (await waitGone(rec.pid, deadlineS * 1000)) return done('powerdown');
      await qmp.execute('quit').catch(() => {});
      if (await waitGone(rec.pid, 3000)) return done('quit');
    } finally {
      qmp.close();
    }
  } catch {
    // QMP unusable: fall through to the signal
  }
  try {
    process.kill(rec.pid, 'SIGKILL');
  } catch {
    // gone meanwhile
  }
  await waitGone(rec.pid, 3000);
  return done('kill');
}
