/**
 * The one QEMU argv builder: a VmConfig in, an argv out. Nothing else in kjx
 * formats QEMU arguments. Always `-no-reboot` and `panic=-1`, so a guest reboot
 * or panic ends QEMU instead of looping; a minimal device model (`-nodefaults`)
 * with only what the config asks for.
 */

export interface PortForward {
  host: number;
  guest: number;
}

export interface VmConfig {
  /** QEMU binary (default qemu-system-x86_64). */
  qemu?: string;
  accel: 'kvm' | 'tcg';
  machine?: 'q35' | 'pc' | 'microvm';
  memoryMiB: number;
  cpus: number;
  kernel: string;
  initrd?: string;
  /** Kernel command line from the spec; console and panic settings are added. */
  cmdline: string;
  /** Where the serial console goes: our stdio pipe, or a log file. */
  console: { kind: 'stdio' } | { kind: 'file'; path: string };
  qmpSocket?: string;
  /** User-mode networking with these forwards (always bound to 127.0.0.1). */
  net?: { forwards: PortForward[] };
}

/** Kernel command line: the spec's, with the serial console and panic=-1 guaranteed. */
export function kernelCmdline(c: VmConfig): string {
  const parts = c.cmdline.split(/\s+/).filter(Boolean);
  if (!parts.some((p) => p.startsWith('console='))) parts.push('console=ttyS0');
  const rest = parts.filter((p) => !p.startsWith('panic='));
  rest.push('panic=-1');
  return rest.join(' ');
}

export function qemuArgv(c: VmConfig): string[] {
  const argv = [c.qemu ?? 'qemu-system-x86_64'];
  const machine = c.machine ?? 'q35';
  argv.push('-nodefaults', '-no-reboot', '-no-user-config', '-display', 'none');
  argv.push('-machine', `${machine},accel=${c.accel}`);
  if (c.accel === 'kvm') argv.push('-cpu', 'host');
  else argv.push('-cpu', 'max');
  argv.push('-m', String(c.memoryMiB), '-smp', String(c.cpus));
  argv.push('-kernel', c.kernel);
  if (c.initrd) argv.push('-initrd', c.initrd);
  argv.push('-append', kernelCmdline(c));
  if (c.console.kind === 'stdio')
    argv.push('-chardev', 'stdio,id=con0,signal=off', '-serial', 'chardev:con0');
  else argv.push('-chardev', `file,id=con0,path=${c.console.path}`, '-serial', 'chardev:con0');
  if (c.qmpSocket) argv.push('-qmp', `unix:${c.qmpSocket},server=on,wait=off`);
  if (c.net) {
    const fwd = c.net.forwards.map((f) => `,hostfwd=tcp:127.0.0.1:${f.host}-:${f.guest}`).join('');
    argv.push('-netdev', `user,id=net0${fwd}`, '-device', 'virtio-net-pci,netdev=net0,romfile=');
  }
  argv.push('-device', 'virtio-rng-pci');
  return argv;
}
