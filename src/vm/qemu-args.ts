/**
 * The one QEMU argv builder: a VmConfig in, an argv out. Nothing else in kjx
 * formats QEMU arguments. Always `-no-reboot` and `panic=-1`, so a guest reboot
 * or panic ends QEMU instead of looping; a minimal device model (`-nodefaults`)
 * with only what the config asks for.
 *
 * Boot speed (measured under TCG, docs/boot-time.md): a direct kernel boot uses
 * qboot instead of SeaBIOS, the kernel gets BOOT_SPEED_CMDLINE, and TCG a CPU model
 * without AVX and 5-level paging (TCG_CPU). `microvm` (`--machine microvm`: virtio
 * devices on virtio-mmio, an RTC) is not the default: it boots no medium, its kernel
 * needs virtio_mmio, and under TCG it needs the host's TSC rate on the command line
 * (tsc-rate.ts, added by prepare.ts), else the kernel's TSC calibration fails now and
 * then and, with no HPET or PM timer to fall back on, the kernel hangs.
 */
import { NONCE_FW_CFG_NAME } from '../guest/markers.js';
import { KjxError } from '../util/errors.js';

export interface PortForward {
  /** Port on the host's 127.0.0.1; 0 lets QEMU bind a free one (`forwards.ts` reads which). */
  host: number;
  guest: number;
}

/**
 * User-mode networking (slirp). The guest reaches the host's loopback through
 * 10.0.2.2 and, through the host, whatever the host can reach; `restrict` cuts
 * both (QEMU `restrict=on`: no packet from the guest leaves slirp, DHCP still
 * answers) while the forwards keep working (docs/security.md).
 */
export interface UserNet {
  forwards: PortForward[];
  restrict?: boolean;
}

export interface VmConfig {
  /** QEMU binary (default qemu-system-x86_64). */
  qemu?: string;
  accel: 'kvm' | 'tcg';
  /**
   * Machine type (default q35). `microvm` puts virtio devices on virtio-mmio: the
   * guest needs the `virtio_mmio` module, and cannot boot a CD-ROM.
   */
  machine?: 'q35' | 'pc' | 'microvm';
  memoryMiB: number;
  cpus: number;
  /** Kernel image for a direct boot; not used when `media` is given (pass ''). */
  kernel: string;
  initrd?: string;
  /** Kernel command line from the spec; console and panic settings are added. Not used with `media`. */
  cmdline: string;
  /** Boot a medium kjx built through its boot loader instead of `-kernel` (media.ts in src/image). */
  media?: VmMedia;
  /**
   * Firmware: SeaBIOS (QEMU's default), qboot (a minimal BIOS that only loads
   * `-kernel`; the default for a direct kernel boot on q35 and pc), or UEFI from an
   * OVMF image (see firmware.ts). Media boots default to SeaBIOS, microvm to its own.
   */
  firmware?: { kind: 'bios' } | { kind: 'qboot' } | { kind: 'uefi'; path: string };
  /** Where the serial console goes: our stdio pipe, or a log file. */
  console:
    | {
        kind: 'stdio' /** QEMU's mux: Ctrl-A X quits, Ctrl-A C the monitor (interactive use) */;
        mux?: boolean;
      }
    | { kind: 'file'; path: string };
  qmpSocket?: string;
  /**
   * virtio-serial ports, each connected to a unix socket the host listens on
   * (QEMU connects as a client at start-up, so no byte is written before we listen).
   */
  ports?: { name: string; socket: string }[];
  /** User-mode networking with these forwards (always bound to 127.0.0.1). */
  net?: UserNet;
  /**
   * A second NIC on a VDE switch (a cluster's LAN, src/cluster/): the switch's
   * socket directory, this VM's port on it, and the NIC's MAC (the guest finds the
   * NIC by it).
   */
  lan?: VdeLan;
  /** Files the guest reads from /sys/firmware/qemu_fw_cfg/by_name/NAME/raw (`-fw_cfg`). */
  fwCfg?: { name: string; file: string }[];
  /**
   * This boot's marker nonce (src/guest/markers.ts), handed to the guest over
   * fw_cfg: root-only in the guest, and no part of any image.
   */
  nonce?: string;
  /**
   * Start paused and load a saved VM from this migration URI (`-incoming`), e.g.
   * `exec:zstd -dc FILE` (src/vm/snapshots.ts); the rest of the config must be the
   * saving VM's.
   */
  incoming?: string;
}

export interface VdeLan {
  socket: string;
  /** The switch port; any free one when not given. */
  port?: number;
  mac: string;
}

/**
 * A boot medium: the ISO as a CD-ROM (AHCI), or a disk image (the ISO too: it is
 * isohybrid) on virtio-blk, which SeaBIOS and OVMF both boot from.
 */
export interface VmMedia {
  kind: 'cdrom' | 'disk';
  path: string;
  format: 'raw' | 'qcow2' | 'vmdk';
  /** Attach read-only (a CD always is). */
  readonly?: boolean;
  /** Guest writes go to a temporary overlay, not the file (`snapshot=on`). */
  snapshot?: boolean;
}

export const DEFAULT_MACHINE = 'q35';

/** qboot, from QEMU's data directory (Debian: qemu-system-data). */
export const QBOOT_ROM = 'qboot.rom';

/**
 * Kernel parameters added for a faster boot unless the spec's command line sets the
 * same parameter (measured under TCG in docs/boot-time.md):
 * - `cryptomgr.notests`: the crypto self-tests take ~0.3 s under TCG. They guard
 *   against broken cipher implementations, which FIPS mode must check; a kjx VM is
 *   no FIPS system (`cryptomgr.notests=0` in the spec brings them back).
 * - `noreplace-smp`: with one CPU the kernel rewrites every `lock` prefix in its
 *   text to a no-op, one text_poke each, ~0.13 s under TCG. Keeping them is correct
 *   (a locked instruction on one CPU only costs a little); with more CPUs nothing
 *   is rewritten anyway.
 */
export const BOOT_SPEED_CMDLINE = ['cryptomgr.notests', 'noreplace-smp'];

/**
 * Added under TCG only, unless the spec's command line sets the same sysctl (or
 * `norandmaps`): no address-space randomization for the guest's processes. TCG keys
 * the code it has translated by virtual address, so with ASLR the dynamic loader,
 * libc and every PIE binary land elsewhere in each new process and are translated
 * afresh: an exec of the dynamically linked busybox costs ~30 ms, without ASLR ~5 ms,
 * and a boot is some hundred execs (docs/boot-time.md). The kernel applies `sysctl.`
 * parameters just before it runs /init. Under KVM nothing is translated, and ASLR
 * stays; `sysctl.kernel.randomize_va_space=2` in kernel.cmdline keeps it under TCG.
 */
export const TCG_CMDLINE = ['sysctl.kernel.randomize_va_space=0'];

/**
 * The CPU model under TCG: qemu64 (AMD vendor, so no Meltdown page-table isolation)
 * raised to x86-64-v2 (SSSE3, SSE4.1/4.2, POPCNT; CX16 and LAHF it has), so
 * binaries built for v2 run. Not `max`: its AVX2 (which glibc then prefers, and TCG
 * emulates slowly) and 5-level paging cost ~0.2 s of kernel boot and ~0.3 s to ready.
 * Under KVM the guest gets the host CPU.
 */
export const TCG_CPU = 'qemu64,+ssse3,+sse4.1,+sse4.2,+popcnt';

/**
 * Kernel command line: the spec's, with the serial console and panic=-1 guaranteed,
 * and the BOOT_SPEED_CMDLINE (and under TCG the TCG_CMDLINE) parameters the spec
 * does not set itself.
 */
export function kernelCmdline(c: VmConfig): string {
  const parts = c.cmdline.split(/\s+/).filter(Boolean);
  if (!parts.some((p) => p.startsWith('console='))) parts.push('console=ttyS0');
  const rest = parts.filter((p) => !p.startsWith('panic='));
  // sysctl.kernel/x and sysctl.kernel.x are one parameter; norandmaps says randomize_va_space=0
  const key = (p: string) =>
    p === 'norandmaps' ? 'sysctl.kernel.randomize_va_space' : (p.split('=')[0] ?? '').replace(/\//g, '.');
  const knobs = c.accel === 'tcg' ? [...BOOT_SPEED_CMDLINE, ...TCG_CMDLINE] : BOOT_SPEED_CMDLINE;
  for (const knob of knobs) if (!rest.some((p) => key(p) === key(knob))) rest.push(knob);
  rest.push('panic=-1');
  return rest.join(' ');
}

/** Device names on the machine's virtio transport: PCI on q35 and pc, MMIO on microvm. */
function virtio(machine: string, device: 'blk' | 'net' | 'rng' | 'serial'): string {
  return `virtio-${device}-${machine === 'microvm' ? 'device' : 'pci'}`;
}

/**
 * A value inside a QEMU option list (`-drive file=...,if=none`): QEMU splits at
 * commas, and a doubled comma stands for one. Every path placed in such a value
 * goes through here; `-kernel`, `-initrd` and `-bios` take their argument whole.
 */
export function optValue(s: string): string {
  return s.replace(/,/g, ',,');
}

function mediaArgs(m: VmMedia, machine: string): string[] {
  const file = `file=${optValue(m.path)}`;
  if (m.kind === 'cdrom') {
    return [
      '-drive',
      `${file},if=none,id=boot0,media=cdrom,readonly=on,format=${m.format}`,
      '-device',
      'ide-cd,drive=boot0,bootindex=0',
    ];
  }
  const ro = (m.readonly ? ',readonly=on' : '') + (m.snapshot ? ',snapshot=on' : '');
  return [
    '-drive',
    `${file},if=none,id=boot0,format=${m.format}${ro}`,
    '-device',
    `${virtio(machine, 'blk')},drive=boot0,bootindex=0`,
  ];
}

export function qemuArgv(c: VmConfig): string[] {
  const argv = [c.qemu ?? 'qemu-system-x86_64'];
  const machine = c.machine ?? DEFAULT_MACHINE;
  if (machine === 'microvm' && c.media?.kind === 'cdrom') {
    throw new KjxError('USAGE', 'the microvm machine has no CD-ROM drive', {
      hint: 'boot the ISO as a disk, or use the q35 machine',
    });
  }
  argv.push('-nodefaults', '-no-reboot', '-no-user-config', '-display', 'none');
  // microvm without an RTC: the kernel spends a second looking for a clock
  argv.push('-machine', `${machine},accel=${c.accel}${machine === 'microvm' ? ',rtc=on' : ''}`);
  argv.push('-cpu', c.accel === 'kvm' ? 'host' : TCG_CPU);
  argv.push('-m', String(c.memoryMiB), '-smp', String(c.cpus));
  const firmware = c.firmware ?? (c.media || machine === 'microvm' ? undefined : { kind: 'qboot' });
  if (firmware?.kind === 'uefi') argv.push('-bios', firmware.path);
  else if (firmware?.kind === 'qboot') argv.push('-bios', QBOOT_ROM);
  if (c.media) argv.push(...mediaArgs(c.media, machine));
  else {
    argv.push('-kernel', c.kernel);
    if (c.initrd) argv.push('-initrd', c.initrd);
    argv.push('-append', kernelCmdline(c));
  }
  if (c.console.kind === 'stdio' && c.console.mux) {
    argv.push(
      '-chardev',
      'stdio,id=con0,mux=on,signal=off',
      '-serial',
      'chardev:con0',
      '-mon',
      'chardev=con0,mode=readline',
    );
  } else if (c.console.kind === 'stdio') {
    argv.push('-chardev', 'stdio,id=con0,signal=off', '-serial', 'chardev:con0');
  } else argv.push('-chardev', `file,id=con0,path=${optValue(c.console.path)}`, '-serial', 'chardev:con0');
  if (c.qmpSocket) argv.push('-qmp', `unix:${optValue(c.qmpSocket)},server=on,wait=off`);
  if (c.ports?.length) {
    argv.push('-device', `${virtio(machine, 'serial')},id=vser0`);
    c.ports.forEach((p, i) => {
      argv.push('-chardev', `socket,id=port${i},path=${optValue(p.socket)}`);
      // an id, so QMP's VSERPORT_CHANGE says which port the guest opened
      argv.push('-device', `virtserialport,bus=vser0.0,chardev=port${i},name=${p.name},id=vport${i}`);
    });
  }
  if (c.net) {
    const fwd = c.net.forwards.map((f) => `,hostfwd=tcp:127.0.0.1:${f.host}-:${f.guest}`).join('');
    const restrict = c.net.restrict ? ',restrict=on' : '';
    // romfile= : no iPXE option ROM to load (and no time spent on it) for a -kernel boot
    const rom = machine === 'microvm' ? '' : ',romfile=';
    argv.push(
      '-netdev',
      `user,id=net0${restrict}${fwd}`,
      '-device',
      `${virtio(machine, 'net')},netdev=net0${rom}`,
    );
  }
  if (c.lan) {
    if (!/^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/.test(c.lan.mac) || !Number.isInteger(c.lan.port ?? 0))
      throw new KjxError('INTERNAL', 'a LAN NIC needs a lowercase MAC and an integer switch port');
    const rom = machine === 'microvm' ? '' : ',romfile=';
    argv.push(
      '-netdev',
      `vde,id=lan0,sock=${optValue(c.lan.socket)}${c.lan.port ? `,port=${c.lan.port}` : ''}`,
      '-device',
      `${virtio(machine, 'net')},netdev=lan0,mac=${c.lan.mac}${rom}`,
    );
  }
  for (const f of c.fwCfg ?? []) argv.push('-fw_cfg', `name=${f.name},file=${optValue(f.file)}`);
  if (c.nonce !== undefined) {
    if (!/^[0-9a-f]+$/.test(c.nonce)) throw new KjxError('INTERNAL', 'a boot nonce is lowercase hex');
    argv.push('-fw_cfg', `name=${NONCE_FW_CFG_NAME},string=${c.nonce}`);
  }
  argv.push('-device', virtio(machine, 'rng'));
  if (c.incoming !== undefined) argv.push('-incoming', c.incoming);
  return argv;
}
