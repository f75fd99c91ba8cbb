/**
 * The demo behind `npm run demo`: `kjx init` + `kjx build` in .kjx/demo, then boot
 * the result in QEMU, run a few commands on its console and power it off.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startVm } from '../src/vm/session.js';

const root = resolve(import.meta.dirname, '..');
const work = join(root, '.kjx', 'demo');
const kjx = (...args: string[]) =>
  execFileSync(process.execPath, [join(root, 'bin', 'kjx.js'), ...args], { cwd: work, stdio: 'inherit' });

mkdirSync(work, { recursive: true });
if (!existsSync(join(work, 'kjx.yaml'))) kjx('init');
console.log('\n$ kjx build');
kjx('build');

const accel = process.env.KJX_ACCEL === 'kvm' ? 'kvm' : 'tcg';
console.log(`\n$ booting dist/vmlinuz + dist/initramfs.cpio.gz in QEMU (${accel})\n`);
const vm = startVm({
  accel,
  memoryMiB: 512,
  cpus: 1,
  kernel: join(work, 'dist', 'vmlinuz'),
  initrd: join(work, 'dist', 'initramfs.cpio.gz'),
  cmdline: 'console=ttyS0 quiet',
  console: { kind: 'stdio' },
  net: { forwards: [] }, // user-mode networking: the guest's DHCP client gets 10.0.2.15
});
const t0 = performance.now();
try {
  const ready = await vm.waitForMarker('ready', 120_000);
  process.stdout.write(vm.console());
  console.log(
    `\n[demo] guest ready in ${((performance.now() - t0) / 1000).toFixed(2)} s (build ${ready.fields.build}, kernel ${ready.fields.kernel})\n`,
  );
  const cmds = [
    'uname -a',
    'cat /etc/os-release',
    'sv status /etc/service/*',
    'ip -4 addr show eth0',
    'lsmod | head -8',
    'echo "busybox applets: $(ls /bin | wc -l)"',
    'echo @@demo-done',
  ];
  const seen = vm.console().length;
  vm.write(`${cmds.join('; ')}\n`);
  await vm.waitForLine(/^@@demo-done/, 60_000);
  process.stdout.write(vm.console().slice(seen));
  vm.write('poweroff\n'); // through runit's stage 3: services stop in reverse dependency order
  const code = await Promise.race([
    vm.exited,
    new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 15_000)),
  ]);
  console.log(
    `\n[demo] guest powered off (${code === 'timeout' ? 'did not stop, killed' : `QEMU exit ${code}`})`,
  );
} finally {
  await vm.stop();
}
