/**
 * `kjx boot [-f spec] [--detach] [--name N] [--timing] [--artifact KIND] [--firmware bios|uefi]`: boot the image with an
 * interactive serial console (Ctrl-A X quits QEMU, Ctrl-A C its monitor), or in the
 * background with a state directory (`--detach`) for `kjx ps/exec/ssh/stop`.
 */
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Command } from 'commander';
import { KjxError } from '../util/errors.js';
import type { VmConfig } from '../vm/qemu-args.js';
import { buildWarn } from './build-warnings.js';
import type { GlobalOptions } from './main.js';
import {
  addVmOptions,
  bootTarget,
  builtImage,
  checkBootChoice,
  memoryOption,
  numberOption,
  resolveAccel,
} from './vm-options.js';

export function registerBoot(program: Command, globals: () => GlobalOptions): void {
  addVmOptions(
    program
      .command('boot')
      .description('boot the image: interactive console (Ctrl-A X quits), or --detach into the background'),
  )
    .option('-d, --detach', 'run in the background; use kjx ps, exec, ssh and stop')
    .option('-n, --name <name>', 'name of the detached VM', 'kjx')
    .option('--timeout <seconds>', 'with --detach: how long to wait for the guest to be ready', '300')
    .option('--timing', 'print the boot phases once the guest is ready and draw them into boot-timeline.svg')
    .option('--json', 'with --detach: print the VM record as JSON')
    .action(async (o: Record<string, string | boolean | undefined>) => {
      if (o.detach) (await import('../vm/registry.js')).vmDir(String(o.name)); // a bad name fails before any work
      const kind = await checkBootChoice(String(o.file), String(o.artifact), String(o.firmware));
      const img = await builtImage(String(o.file), String(o.out), buildWarn(globals().strict));
      const accel = await resolveAccel(String(o.accel), img.kernel);
      const { artifact: _, ...target } = await bootTarget(img, kind, String(o.firmware));
      // `kjx run` does the same in runInVm: the PVH vmlinux skips the emulated decompression
      // (src/vm/direct-boot.ts); OVMF cannot load it, and media boot through GRUB
      if (target.kernel && target.firmware?.kind !== 'uefi') {
        const { directKernel } = await import('../vm/direct-boot.js');
        target.kernel = (await directKernel(target.kernel, img.kernelSha256)).path;
      }
      const vm = {
        accel: accel.accel,
        memoryMiB: memoryOption(o.memory, img),
        cpus: numberOption('cpus', o.cpus, 1),
        ...target,
      };
      if (o.detach) {
        const { bootDetached } = await import('../vm/detach.js');
        const { projectKeyPath } = await import('../guest/ssh-keys.js');
        const key = projectKeyPath(dirname(img.specPath));
        const t0 = performance.now();
        const { rec, startedAt, markers } = await bootDetached({
          name: String(o.name),
          vm,
          sshPort: img.sshPort,
          restrict: img.restrict,
          spec: img.specPath,
          timeoutS: numberOption('timeout', o.timeout, 1),
          buildId: img.buildId,
          ...(existsSync(key) ? { identity: key } : {}),
        });
        let timeline: string | undefined;
        if (o.timing) {
          const { phasesOf, serviceEvents } = await import('../vm/run.js');
          const { timingReport } = await import('./cmd-run.js');
          const { writeBootTimeline } = await import('./timeline-file.js');
          const boot = { phases: phasesOf({ startedAt, markers }), services: serviceEvents(markers) };
          timeline = writeBootTimeline(rec.dir, boot.phases, boot.services, {
            title: `${img.name} boot timeline (kjx boot --detach --name ${rec.name})`,
            accel: accel.accel,
          });
          if (!o.json) console.error(`${timingReport(boot, accel)}\nboot timeline: ${timeline}`);
        }
        if (o.json) console.log(JSON.stringify(timeline ? { ...rec, bootTimeline: timeline } : rec, null, 2));
        else {
          console.log(
            `${rec.name}: running (pid ${rec.pid}, ${accel.accel}), ready in ${((performance.now() - t0) / 1000).toFixed(2)} s`,
          );
          console.log(`  ssh port 127.0.0.1:${rec.ports.ssh}; console log ${rec.consoleLog}`);
          console.log(
            `  next: kjx exec ${rec.name} -- uname -a | kjx ssh ${rec.name} | kjx stop ${rec.name}`,
          );
        }
        return;
      }
      await interactive(vm, !!o.timing, img);
    });
}

async function interactive(
  vm: Omit<VmConfig, 'console'>,
  timing: boolean,
  img: { name: string; sshPort: number; restrict: boolean },
): Promise<void> {
  const { name } = img;
  const { startVm } = await import('../vm/session.js');
  const { phasesOf, serviceEvents } = await import('../vm/run.js');
  const { formatPhases, formatServices } = await import('./cmd-run.js');
  const { newRunDir } = await import('../vm/state.js');
  const { connectQmpOnceUp, forwardedPort } = await import('../vm/forwards.js');
  const { join } = await import('node:path');
  const { isQemuPid } = await import('../vm/registry.js');
  // QEMU binds the SSH forward on a free port itself (port 0); QMP tells which
  const qmpSocket = join(newRunDir(), 'qmp.sock');
  const s = startVm({
    ...vm,
    console: { kind: 'stdio', mux: true },
    qmpSocket,
    net: { forwards: [{ host: 0, guest: img.sshPort }], ...(img.restrict ? { restrict: true } : {}) },
  });
  let ssh: number;
  try {
    const qmp = await connectQmpOnceUp(qmpSocket, () => isQemuPid(s.pid), 30_000);
    try {
      ssh = await forwardedPort(qmp, img.sshPort);
    } finally {
      qmp.close();
    }
  } catch (e) {
    await s.stop();
    throw e;
  }
  process.stderr.write(`kjx: booting (${vm.accel}); ssh on 127.0.0.1:${ssh}; press Ctrl-A X to quit\n`);
  const tty = process.stdin.isTTY;
  if (tty) process.stdin.setRawMode(true);
  process.stdin.on('data', (b) => s.write(b.toString('binary')));
  process.stdin.resume();
  let shown = 0;
  const pump = setInterval(() => {
    const out = s.console();
    if (out.length > shown) {
      process.stdout.write(out.slice(shown));
      shown = out.length;
    }
  }, 20);
  if (timing) {
    const { writeBootTimeline } = await import('./timeline-file.js');
    void s.waitForMarker('ready', 600_000).then(
      () => {
        const phases = phasesOf({ startedAt: s.startedAt, markers: s.markers() });
        const services = serviceEvents(s.markers());
        let svg: string;
        try {
          svg = `boot timeline: ${writeBootTimeline(newRunDir(), phases, services, { title: `${name} boot timeline (kjx boot)`, accel: vm.accel })}`;
        } catch (e) {
          svg = `kjx: warning: could not write the boot timeline: ${e instanceof Error ? e.message : String(e)}`;
        }
        process.stderr.write(
          `\r\n${[formatPhases(phases), formatServices(services), svg]
            .filter(Boolean)
            .join('\n')
            .replace(/\n/g, '\r\n')}\r\n`,
        );
      },
      () => {},
    );
  }
  const code = await s.exited;
  clearInterval(pump);
  process.stdout.write(s.console().slice(shown));
  if (tty) process.stdin.setRawMode(false);
  process.stdin.pause();
  if (code !== 0 && code !== null) {
    throw new KjxError('VM_START', `QEMU exited with status ${code}`, { details: [s.stderr()] });
  }
}
