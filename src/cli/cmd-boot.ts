/**
 * `kjx boot [-f spec] [--detach] [--name N] [--timing] [--artifact KIND] [--firmware bios|uefi]`: boot the image with an
 * interactive serial console (Ctrl-A X quits QEMU, Ctrl-A C its monitor), or in the
 * background with a state directory (`--detach`) for `kjx ps/exec/ssh/stop`.
 */
import type { Command } from 'commander';
import { KjxError } from '../util/errors.js';
import type { ConsoleVm } from '../vm/launch.js';
import { buildWarn } from './build-warnings.js';
import type { GlobalOptions } from './main.js';
import { addLimitOptions, addVmOptions, limitFlags, prepareFromFlags } from './vm-options.js';

export function registerBoot(program: Command, globals: () => GlobalOptions): void {
  addLimitOptions(
    addVmOptions(
      program
        .command('boot')
        .description('boot the image: interactive console (Ctrl-A X quits), or --detach into the background'),
    )
      .option('-d, --detach', 'run in the background; use kjx ps, exec, ssh and stop')
      .option('-n, --name <name>', 'name of the detached VM', 'kjx')
      .option(
        '--restore <file>',
        'start the detached VM from a file `kjx snapshot` wrote (implies --detach)',
      ),
    { timeout: '300', silence: '0' },
    'the guest is ready (with --detach)',
  )
    .option('--timing', 'print the boot phases once the guest is ready and draw them into boot-timeline.svg')
    .option('--json', 'with --detach: print the VM record as JSON')
    .action(async (o: Record<string, string | boolean | undefined>) => {
      if (o.restore) o.detach = true;
      if (o.detach) {
        // a bad name, a name in use or a bad snapshot fail before any build work
        const { vmDir, readRecord, isQemuPid } = await import('../vm/registry.js');
        vmDir(String(o.name));
        const old = readRecord(String(o.name));
        if (old && isQemuPid(old.pid))
          throw new KjxError('USAGE', `a VM named "${o.name}" is already running (pid ${old.pid})`, {
            hint: `stop it with \`kjx stop ${o.name}\`, or choose another --name`,
          });
      }
      const limits = limitFlags(o);
      const p = await prepareFromFlags(o, buildWarn(globals().strict));
      const { launch, launchConsole } = await import('../vm/launch.js');
      const { timingReport } = await import('./cmd-run.js');
      const { writeBootTimeline } = await import('./timeline-file.js');
      if (o.detach) {
        const t0 = performance.now();
        const guest = await launch(p, {
          detached: { name: String(o.name), ...limits },
          ...(o.restore ? { restore: String(o.restore) } : {}),
        });
        const rec = guest.record;
        let timeline: string | undefined;
        if (o.timing) {
          const boot = guest.timing();
          timeline = writeBootTimeline(rec.dir, boot, {
            title: `${p.image.name} boot timeline (kjx boot --detach --name ${rec.name})`,
            accel: p.accel.accel,
          });
          if (!o.json) console.error(`${timingReport(boot, p.accel)}\nboot timeline: ${timeline}`);
        }
        if (o.json) console.log(JSON.stringify(timeline ? { ...rec, bootTimeline: timeline } : rec, null, 2));
        else {
          console.log(
            `${rec.name}: running (pid ${rec.pid}, ${p.accel.accel}), ${o.restore ? 'restored' : 'ready'} in ${((performance.now() - t0) / 1000).toFixed(2)} s`,
          );
          console.log(`  ssh port 127.0.0.1:${rec.ports.ssh}; console log ${rec.consoleLog}`);
          console.log(
            `  next: kjx exec ${rec.name} -- uname -a | kjx ssh ${rec.name} | kjx stop ${rec.name}`,
          );
        }
        return;
      }
      const vm = await launchConsole(p);
      await interactive(vm, !!o.timing, p.image.name, p.accel.accel);
    });
}

/** Our terminal on the VM's console until QEMU exits; with `timing`, the boot's phases once ready. */
async function interactive(vm: ConsoleVm, timing: boolean, name: string, accel: string): Promise<void> {
  const s = vm.session;
  const { bootTiming } = await import('../vm/boot-phases.js');
  const { formatPhases, formatServices } = await import('./cmd-run.js');
  process.stderr.write(`kjx: booting (${accel}); ssh on 127.0.0.1:${vm.sshPort}; press Ctrl-A X to quit\n`);
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
        const boot = bootTiming({ startedAt: s.startedAt, markers: s.markers() });
        let svg: string;
        try {
          svg = `boot timeline: ${writeBootTimeline(vm.stateDir, boot, { title: `${name} boot timeline (kjx boot)`, accel })}`;
        } catch (e) {
          svg = `kjx: warning: could not write the boot timeline: ${e instanceof Error ? e.message : String(e)}`;
        }
        process.stderr.write(
          `\r\n${[formatPhases(boot.phases), formatServices(boot.services), svg]
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
