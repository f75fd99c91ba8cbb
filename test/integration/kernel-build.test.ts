/**
 * A kernel kjx builds itself (docs/kernels.md): Debian's linux-source-6.1 with the
 * `vm` profile, compiled for real (several minutes on two cores), then booted
 * under TCG through every output: the initramfs, the ISO (BIOS and UEFI) and a
 * disk, and on the microvm machine 50 times in a row. A changed configuration
 * rebuilds incrementally. Then the trace lab and every container runtime on it.
 * (That a second cache directory builds the same bytes is `npm run bench kernel`'s:
 * a second whole build here took 15 minutes of the CI run on two cores.)
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TraceSummary } from '../../src/trace/collect.js';
import { removeAll, runKjx, SHARED_CACHE, workspace } from '../helpers/kjx.js';
import { needsTool } from '../helpers/prereq.js';

/** A first build compiles the whole kernel: 6-8 minutes here, more on a busy host. */
const BUILD_MS = 45 * 60_000;

export const BUILT_KERNEL_SPEC = `name: kbuild
kernel:
  source: debian
  modules: [virtio_pci, virtio_net, virtio_blk, virtio_console, virtio_rng, vmw_vsock_virtio_transport, vxlan]
outputs: [initramfs, iso, qcow2]
`;

const stepsOfLastBuild = (log: string) => {
  const last = log.lastIndexOf(' bzImage modules\n');
  return (log.slice(last).match(/^ {2}CC /gm) ?? []).length;
};

describe('a kernel built from linux-source-6.1 with the vm profile', { skip: needsTool('pahole') }, () => {
  let ws: string;
  let build: ReturnType<typeof runKjx>;
  const cleanup: string[] = [];
  const kjx = (args: string[], o: { cache?: string; timeoutMs?: number } = {}) =>
    runKjx(args, { cwd: ws, timeoutMs: 600_000, ...o });

  before(() => {
    ws = workspace('kbuild', BUILT_KERNEL_SPEC);
    cleanup.push(ws);
    build = kjx(['build'], { timeoutMs: BUILD_MS });
    assert.equal(build.code, 0, `kjx build failed:\n${build.stderr}`);
  });
  after(() => removeAll(...cleanup));

  test('builds with no option of the profile lost, its modules built in or beside it', () => {
    assert.doesNotMatch(build.stderr, /did not survive/);
    const lock = JSON.parse(readFileSync(join(ws, 'kjx.lock'), 'utf8'));
    assert.equal(lock.kernel.name, 'linux-source-6.1');
    const manifest = JSON.parse(readFileSync(join(ws, 'dist', 'manifest.json'), 'utf8'));
    assert.equal(manifest.kernel.source, `built:deb:linux-source-6.1=${lock.kernel.version}[vm]`);
    assert.equal(manifest.kernel.version, lock.kernel.version.split('-')[0]);
    // what the image loads (its modules, the disk's root drivers, fw_cfg, the power
    // button) is built in; vxlan and what it needs are modules
    for (const m of [
      'virtio_net',
      'virtio_blk',
      'virtio_scsi',
      'sd_mod',
      'ext4',
      'qemu_fw_cfg',
      'evdev',
      'button',
    ])
      assert.ok(manifest.kernel.builtin.includes(m), `${m} not built in`);
    assert.deepEqual(manifest.kernel.modules.slice(-1), ['vxlan']);
  });

  test('kjx run boots it: its release, BTF for the kernel and modules, a module loaded, its config', () => {
    const manifest = JSON.parse(readFileSync(join(ws, 'dist', 'manifest.json'), 'utf8'));
    const r = kjx([
      'run',
      '--accel',
      'tcg',
      '--',
      'sh',
      '-c',
      'uname -r; test -e /sys/kernel/btf/vmlinux && echo btf; modprobe vxlan && test -e /sys/kernel/btf/vxlan && echo vxlan-btf; zcat /proc/config.gz | grep -x CONFIG_PVH=y; exit 7',
    ]);
    assert.equal(r.code, 7, r.stderr);
    assert.equal(r.stdout, `${manifest.kernel.version}\nbtf\nvxlan-btf\nCONFIG_PVH=y\n`);
  });

  test('a second build does nothing', () => {
    const r = kjx(['build']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^up to date: build /m);
  });

  test('microvm: 50 boots in a row under TCG, each powered off, its devices on virtio-mmio and no PCI', () => {
    const microvm = (cmd: string[]) =>
      kjx([
        'run',
        '--machine',
        'microvm',
        '--accel',
        'tcg',
        '--cold',
        '--no-save',
        '--timeout',
        '90',
        '--json',
        '--',
        ...cmd,
      ]);
    // a cached rate that is not one (torn, foreign) is measured again, not trusted
    const accel = join(SHARED_CACHE, 'accel');
    const rates = () => (existsSync(accel) ? readdirSync(accel) : []).filter((f) => /^tsc-.*\.json$/.test(f));
    for (const f of rates()) writeFileSync(join(accel, f), '{"format":1,"khz":"fast"');
    const first = microvm([
      'sh',
      '-c',
      'for d in /sys/bus/virtio/devices/*; do readlink -f "$d"; done; ls /sys/bus/pci/devices | wc -l; cat /proc/cmdline',
    ]);
    assert.equal(first.code, 0, first.stderr);
    const lines = (JSON.parse(first.stdout) as { stdout: string }).stdout.trim().split('\n');
    const cmdline = lines.pop()!;
    assert.equal(lines.pop(), '0', 'no PCI device');
    // the run's console ports and entropy, announced through microvm's ACPI table
    assert.ok(
      lines.length >= 2 && lines.every((l) => /^\/sys\/devices\/platform\/LNRO0005:\d+\/virtio\d+$/.test(l)),
      lines.join('\n'),
    );
    // the TSC rate measured once on this host: the kernel skips the calibration that hangs microvm
    const khz = Number(/(?:^| )tsc_early_khz=(\d{6,8})(?: |$)/.exec(cmdline)?.[1]);
    assert.ok(khz > 0, cmdline);
    const cachedKhz = (f: string) => {
      try {
        return JSON.parse(readFileSync(join(accel, f), 'utf8')).khz;
      } catch {
        return undefined;
      }
    };
    // (files of earlier host boots stay, as garbage now; this boot's is written anew)
    assert.ok(
      rates().some((f) => cachedKhz(f) === khz),
      'the measured rate is cached for this host boot',
    );
    const failed: string[] = [];
    for (let i = 1; i < 50; i++) {
      const r = microvm(['true']);
      const p =
        r.code === 0
          ? (JSON.parse(r.stdout) as { phases: { commandDone?: number; qemuExit?: number } }).phases
          : undefined;
      // poweroff ended QEMU itself: kjx stops a QEMU that outlives its guest's command by 10 s
      const off =
        p?.commandDone !== undefined && p.qemuExit !== undefined ? p.qemuExit - p.commandDone : undefined;
      if (off === undefined || off > 5)
        failed.push(
          `boot ${i + 1}: exit ${r.code}, QEMU ended ${off ?? '?'} s after the command\n${r.stderr.slice(-2000)}`,
        );
    }
    assert.deepEqual(failed, []);
  });

  test('every output boots it: the ISO with BIOS and UEFI, the disk', () => {
    for (const args of [
      ['--artifact', 'iso'],
      ['--artifact', 'iso', '--firmware', 'uefi'],
      ['--artifact', 'qcow2', '--firmware', 'uefi'],
    ]) {
      const r = kjx(['run', ...args, '--accel', 'tcg', '--', 'uname', '-r']);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, /^6\.1\.\d+\n$/, args.join(' '));
    }
  });

  test('a configuration change recompiles only what it touches', () => {
    writeFileSync(
      join(ws, 'kjx.yaml'),
      BUILT_KERNEL_SPEC.replace(
        '  source: debian\n',
        '  source: debian\n  config: [vm, CONFIG_DUMMY=m]\n',
      ).replace('vxlan]', 'vxlan, dummy]'),
    );
    const r = kjx(['build'], { timeoutMs: BUILD_MS });
    assert.equal(r.code, 0, r.stderr);
    // one object tree per source: the package's
    const deb = JSON.parse(readFileSync(join(ws, 'kjx.lock'), 'utf8')).kernel.sha256;
    const log = readFileSync(join(SHARED_CACHE, 'kernel', 'work', deb, 'build.log'), 'utf8');
    const steps = stepsOfLastBuild(log);
    assert.ok(steps > 0 && steps < 100, `the change compiled ${steps} files`);
    const run = kjx([
      'run',
      '--accel',
      'tcg',
      '--',
      'sh',
      '-c',
      'modprobe dummy && ip link add d0 type dummy && echo ok',
    ]);
    assert.equal(run.stdout, 'ok\n', run.stderr);
  });
});

/**
 * What kjx's own features need of a kernel, on the `vm` profile: the tracers (BPF
 * with BTF, kprobes, tracepoints, perf events) and every container runtime
 * (namespaces, cgroup v2, overlayfs, netfilter, bridge, veth). The kernel is the
 * one built above (same source and configuration: found in the cache).
 */
describe('the trace lab and the container runtimes on the vm-profile kernel', {
  skip: needsTool('pahole'),
}, () => {
  let ws: string;
  let checks: {
    outcome: string;
    exitCode: number;
    checks: { name: string; pass: boolean; output: string[] }[];
  };
  let testStderr = '';
  const trace = (args: string[]): TraceSummary => {
    const r = runKjx(['trace', '--accel', 'tcg', '--json', ...args], { cwd: ws, timeoutMs: 300_000 });
    assert.equal(r.code, 0, `kjx trace ${args.join(' ')} failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
    return JSON.parse(r.stdout) as TraceSummary;
  };

  before(() => {
    ws = workspace(
      'kbuild-labs',
      `name: labs
compression: zstd
kernel:
  source: debian
components: [busybox, runit, dropbear, ftrace, libbpf-tools, bpftrace, runc, crun, gvisor, containerd, podman, docker]
`,
    );
    const b = runKjx(['build'], { cwd: ws, timeoutMs: BUILD_MS });
    assert.equal(b.code, 0, `kjx build failed:\n${b.stderr}`);
    assert.doesNotMatch(b.stderr, /did not survive/);
    const r = runKjx(['test', '--json', '--accel', 'tcg'], { cwd: ws, timeoutMs: 900_000 });
    testStderr = r.stderr;
    assert.ok(r.stdout.trim().startsWith('{'), `kjx test printed no JSON (exit ${r.code}):\n${r.stderr}`);
    checks = JSON.parse(r.stdout);
  });
  after(() => removeAll(ws));

  test('kjx test: every runtime check passes (runc, crun, gVisor, containerd, podman and docker, bridges too)', () => {
    const names = checks.checks.map((c) => c.name).sort();
    for (const n of [
      'runc',
      'crun',
      'gvisor',
      'containerd',
      'podman',
      'podman-bridge',
      'docker',
      'docker-bridge',
    ])
      assert.ok(names.includes(n), `no check ${n} in ${names.join(' ')}\n${testStderr}`);
    const failed = checks.checks.filter((c) => !c.pass).map((c) => `${c.name}:\n${c.output.join('\n')}`);
    assert.deepEqual(failed, []);
    assert.equal(checks.exitCode, 0);
  });

  test('kjx trace runqlat, offcpu and funccount (libbpf-tools), profile (bpftrace)', () => {
    const q = trace(['runqlat', '--duration', '3', '--', 'sh', '-c', 'while :; do :; done']);
    assert.ok((q.histograms?.[0]?.total ?? 0) > 0, `no run queue events: ${JSON.stringify(q)}`);
    const o = trace(['offcpu', '--', 'sleep', '1']);
    assert.match(readFileSync(o.files.folded!, 'utf8'), /^sleep;.* \d+$/m);
    const f = trace(['funccount', 'vfs_read', '--', 'cat', '/etc/os-release']);
    assert.ok(Number(f.top?.find((r) => r.function === 'vfs_read')?.count) > 0, JSON.stringify(f.top));
    const p = trace(['profile', '--duration', '2', '--', 'sh', '-c', 'while :; do :; done']);
    assert.equal(p.via, 'bpftrace profile:hz:99');
    assert.match(readFileSync(p.files.folded!, 'utf8'), /^sh;/m);
  });
});
