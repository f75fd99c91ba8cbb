import assert from 'node:assert/strict';
import { test } from 'node:test';
import { kernelCmdline, qemuArgv, type VmConfig } from '../../src/vm/qemu-args.js';

const base: VmConfig = {
  accel: 'tcg',
  memoryMiB: 256,
  cpus: 2,
  kernel: '/k',
  initrd: '/i',
  cmdline: 'quiet panic=10',
  console: { kind: 'stdio' },
};

const after = (argv: string[], flag: string): string[] =>
  argv.flatMap((a, i) => (a === flag ? [argv[i + 1]!] : []));

test('always -nodefaults, -no-reboot and panic=-1 (replacing a spec panic=)', () => {
  const argv = qemuArgv(base);
  assert.ok(argv.includes('-nodefaults'));
  assert.ok(argv.includes('-no-reboot'));
  const append = after(argv, '-append')[0]!;
  assert.match(append, /(^| )panic=-1( |$)/);
  assert.doesNotMatch(append, /panic=10/);
  assert.match(append, /console=ttyS0/);
  assert.equal(
    kernelCmdline({ ...base, accel: 'kvm', cmdline: 'console=hvc0' }),
    'console=hvc0 cryptomgr.notests noreplace-smp panic=-1',
  );
});

test('forwarded ports bind to 127.0.0.1 only', () => {
  const argv = qemuArgv({
    ...base,
    net: {
      forwards: [
        { host: 2222, guest: 22 },
        { host: 8080, guest: 80 },
      ],
    },
  });
  const netdev = after(argv, '-netdev')[0]!;
  assert.equal(netdev, 'user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=tcp:127.0.0.1:8080-:80');
  for (const m of netdev.matchAll(/hostfwd=tcp:([^:]*):/g)) assert.equal(m[1], '127.0.0.1');
});

test('virtio-serial ports connect to host sockets by name; QMP is a server socket', () => {
  const argv = qemuArgv({
    ...base,
    qmpSocket: '/s/qmp.sock',
    ports: [{ name: 'kjx.stdout', socket: '/s/out.sock' }],
  });
  assert.deepEqual(after(argv, '-qmp'), ['unix:/s/qmp.sock,server=on,wait=off']);
  assert.ok(after(argv, '-chardev').includes('socket,id=port0,path=/s/out.sock'));
  assert.ok(
    after(argv, '-device').includes('virtserialport,bus=vser0.0,chardev=port0,name=kjx.stdout,id=vport0'),
  );
});

test('interactive console multiplexes the monitor; file console for detached VMs', () => {
  const mux = qemuArgv({ ...base, console: { kind: 'stdio', mux: true } });
  assert.ok(after(mux, '-chardev').some((c) => c.startsWith('stdio,') && c.includes('mux=on')));
  assert.ok(after(mux, '-mon').length === 1);
  const file = qemuArgv({ ...base, console: { kind: 'file', path: '/s/console.log' } });
  assert.ok(after(file, '-chardev').includes('file,id=con0,path=/s/console.log'));
});

test('accelerator and sizes reach the argv', () => {
  const argv = qemuArgv({ ...base, accel: 'kvm' });
  assert.ok(after(argv, '-machine')[0]!.includes('accel=kvm'));
  assert.deepEqual(after(argv, '-m'), ['256']);
  assert.deepEqual(after(argv, '-smp'), ['2']);
});

// boot speed: docs/boot-time.md has the measurements behind these defaults

test('a direct kernel boot on q35 (the default) or pc uses qboot; -bios names it', () => {
  assert.deepEqual(after(qemuArgv(base), '-bios'), ['qboot.rom']);
  assert.match(after(qemuArgv(base), '-machine')[0]!, /^q35,/);
  assert.deepEqual(after(qemuArgv({ ...base, machine: 'pc' }), '-bios'), ['qboot.rom']);
  // SeaBIOS when asked, and for media (qboot boots nothing but -kernel)
  assert.deepEqual(after(qemuArgv({ ...base, firmware: { kind: 'bios' } }), '-bios'), []);
  const iso = qemuArgv({ ...base, media: { kind: 'disk', path: '/d/kjx.iso', format: 'raw' } });
  assert.deepEqual(after(iso, '-bios'), []);
});

test('boot-speed kernel parameters are added unless the spec sets them itself', () => {
  assert.match(kernelCmdline({ ...base, accel: 'kvm' }), /(^| )cryptomgr\.notests noreplace-smp panic=-1$/);
  const kept = kernelCmdline({ ...base, cmdline: 'cryptomgr.notests=0' });
  assert.match(kept, /cryptomgr\.notests=0/);
  assert.equal(kept.match(/cryptomgr\.notests/g)?.length, 1);
});

test('under TCG only, no ASLR for guest processes, unless the spec keeps it', () => {
  const aslrOff = 'sysctl.kernel.randomize_va_space=0';
  assert.match(
    kernelCmdline(base),
    /(^| )cryptomgr\.notests noreplace-smp sysctl\.kernel\.randomize_va_space=0 panic=-1$/,
  );
  assert.doesNotMatch(kernelCmdline({ ...base, accel: 'kvm' }), /randomize_va_space|norandmaps/);
  assert.ok(after(qemuArgv(base), '-append')[0]!.includes(aslrOff));
  // the spec's own value, in either sysctl spelling, or norandmaps, wins and stays alone
  for (const own of [
    'sysctl.kernel.randomize_va_space=2',
    'sysctl.kernel/randomize_va_space=1',
    'norandmaps',
  ]) {
    const line = kernelCmdline({ ...base, cmdline: own });
    assert.ok(line.includes(own), line);
    assert.ok(!line.includes(aslrOff), line);
  }
});

test('TCG gets an x86-64-v2 qemu64 (no AVX, no 5-level paging), KVM the host CPU', () => {
  assert.deepEqual(after(qemuArgv(base), '-cpu'), ['qemu64,+ssse3,+sse4.1,+sse4.2,+popcnt']);
  assert.deepEqual(after(qemuArgv({ ...base, accel: 'kvm' }), '-cpu'), ['host']);
});

test('microvm: an RTC, virtio on MMIO, no option ROM setting, its own firmware, no CD-ROM', () => {
  const argv = qemuArgv({
    ...base,
    machine: 'microvm',
    ports: [{ name: 'kjx.stdout', socket: '/s/out.sock' }],
    net: { forwards: [{ host: 2222, guest: 22 }] },
  });
  assert.equal(after(argv, '-machine')[0], 'microvm,accel=tcg,rtc=on');
  const devices = after(argv, '-device');
  assert.ok(devices.includes('virtio-rng-device'));
  assert.ok(devices.includes('virtio-serial-device,id=vser0'));
  assert.ok(devices.includes('virtio-net-device,netdev=net0'));
  assert.ok(!devices.some((d) => d.includes('-pci')), devices.join(' '));
  assert.deepEqual(after(argv, '-bios'), []);
  const disk = qemuArgv({
    ...base,
    machine: 'microvm',
    media: { kind: 'disk', path: '/d/x.img', format: 'raw' },
  });
  assert.ok(after(disk, '-device').includes('virtio-blk-device,drive=boot0,bootindex=0'));
  assert.throws(
    () =>
      qemuArgv({ ...base, machine: 'microvm', media: { kind: 'cdrom', path: '/d/x.iso', format: 'raw' } }),
    /no CD-ROM/,
  );
});

test('q35 and pc keep virtio on PCI and the NIC without its option ROM', () => {
  for (const machine of ['q35', 'pc'] as const) {
    const devices = after(qemuArgv({ ...base, machine, net: { forwards: [] } }), '-device');
    assert.ok(devices.includes('virtio-rng-pci'));
    assert.ok(devices.includes('virtio-net-pci,netdev=net0,romfile='));
  }
});

test('the boot nonce goes over fw_cfg, never on the kernel command line', () => {
  const nonce = 'a'.repeat(32);
  const argv = qemuArgv({ ...base, nonce });
  assert.ok(after(argv, '-fw_cfg').includes(`name=opt/kjx/nonce,string=${nonce}`));
  assert.doesNotMatch(after(argv, '-append')[0]!, /nonce|a{32}/);
  assert.throws(() => qemuArgv({ ...base, nonce: 'x,y' }), /lowercase hex/);
  assert.equal(after(qemuArgv(base), '-fw_cfg').length, 0);
});

test('every path in a QEMU option list has its commas doubled (a state directory named "a,b")', () => {
  const d = '/state/a,b';
  const argv = qemuArgv({
    ...base,
    kernel: `${d}/k`,
    initrd: `${d}/initrd`,
    console: { kind: 'file', path: `${d}/console.log` },
    qmpSocket: `${d}/qmp.sock`,
    ports: [{ name: 'kjx.stdout', socket: `${d}/out.sock` }],
    fwCfg: [{ name: 'opt/kjx/run.cpio', file: `${d}/run.cpio` }],
  });
  assert.deepEqual(after(argv, '-qmp'), ['unix:/state/a,,b/qmp.sock,server=on,wait=off']);
  assert.ok(after(argv, '-chardev').includes('file,id=con0,path=/state/a,,b/console.log'));
  assert.ok(after(argv, '-chardev').includes('socket,id=port0,path=/state/a,,b/out.sock'));
  assert.ok(after(argv, '-fw_cfg').includes('name=opt/kjx/run.cpio,file=/state/a,,b/run.cpio'));
  // these take their argument whole: doubling would name another file
  assert.deepEqual(after(argv, '-kernel'), [`${d}/k`]);
  assert.deepEqual(after(argv, '-initrd'), [`${d}/initrd`]);
  const disk = qemuArgv({ ...base, media: { kind: 'disk', path: `${d}/x.img`, format: 'raw' } });
  assert.match(after(disk, '-drive')[0]!, /^file=\/state\/a,,b\/x\.img,/);
});

test('user networking: QEMU picks the host port (0), restrict=on isolates the guest', () => {
  const argv = qemuArgv({ ...base, net: { forwards: [{ host: 0, guest: 2200 }], restrict: true } });
  assert.deepEqual(after(argv, '-netdev'), ['user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:0-:2200']);
  assert.deepEqual(after(qemuArgv({ ...base, net: { forwards: [] } }), '-netdev'), ['user,id=net0']);
});

test('a cluster LAN NIC: a vde netdev on its switch port with its MAC; bad MACs refused', () => {
  const argv = qemuArgv({
    ...base,
    net: { forwards: [{ host: 0, guest: 22 }] },
    lan: { socket: '/s/a,b/switch', port: 3, mac: '52:54:00:4b:00:03' },
  });
  assert.deepEqual(after(argv, '-netdev'), [
    'user,id=net0,hostfwd=tcp:127.0.0.1:0-:22',
    'vde,id=lan0,sock=/s/a,,b/switch,port=3',
  ]);
  assert.ok(after(argv, '-device').includes('virtio-net-pci,netdev=lan0,mac=52:54:00:4b:00:03,romfile='));
  assert.equal(
    after(qemuArgv({ ...base, lan: { socket: '/s', mac: '52:54:00:4b:00:03' } }), '-netdev')[0],
    'vde,id=lan0,sock=/s',
    'any free port when none is given',
  );
  assert.throws(
    () => qemuArgv({ ...base, lan: { socket: '/s', port: 1, mac: '52:54:00:4b:00:03,x=y' } }),
    /lowercase MAC/,
  );
});
