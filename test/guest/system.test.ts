/**
 * The generated guest system: runit's stages, poweroff through runit, accounts
 * without passwords, networking lines, identity; every script parses under busybox
 * sh, and stage 3 stops services level by level (run by busybox sh in a PID namespace
 * of its own, with its commands stubbed).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { networkLines } from '../../src/guest/network.js';
import { bootReadyScript, powerScript, stage1Script, stage3Script } from '../../src/guest/stages.js';
import { guestSystem, interactiveBuiltins } from '../../src/guest/system.js';
import { accounts, groupFile, passwdFile, shadowFile, shellsFile } from '../../src/guest/users.js';
import type { FileEntry, Tree } from '../../src/rootfs/tree.js';
import { parseSpec } from '../../src/spec/load.js';
import { KjxError } from '../../src/util/errors.js';
import { busyboxParses, needsBusybox } from '../helpers/busybox.js';
import { needs } from '../helpers/prereq.js';

const skipBusybox = needsBusybox();
/** stage 3 ends with `kill -1`: it runs only where a PID namespace of its own can hold it. */
const skipPidNs =
  skipBusybox ||
  needs(
    'a PID namespace (unshare -r -fp --mount-proc)',
    spawnSync('unshare', ['-r', '-fp', '--mount-proc', 'true']).status === 0
      ? undefined
      : 'unshare -r -fp failed here (user and PID namespaces)',
  );

/** The value a script's header gives NAME (kjx writes NAME=VALUE, the value quoted for sh). */
function headerValue(script: string, name: string): string {
  const r = spawnSync('busybox', ['sh', '-c', `${script.split(/\n(?=[^K#])/)[0]}\nprintf %s "$${name}"`], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMbRchLS+2HwsJIVseQl+Emdzd0wsYMSTiFJtRBJtjHq me@host';

const SPEC = `
name: lab
version: 1.2.3
hostname: lab1
sysctls:
  net.ipv4.ip_forward: 1
  net/ipv4/conf/eth0.100/rp_filter: 0
network:
  eth0: dhcp
  eth1: {address: 10.0.3.2/24, gateway: 10.0.3.1, dns: [10.0.3.1, 1.1.1.1]}
users:
  - name: dev
    shell: /bin/ash
services:
  tracer: {run: tracer, ready: signal}
  workload: {run: workload, needs: [tracer]}
  web: {run: web, needs: [workload]}
tasks:
  - {name: prep, run: "mkdir -p /srv"}
  - {name: warm, run: "warm || true", required: false}
`;

function system() {
  const spec = parseSpec(SPEC, '/srv/kjx.yaml');
  return {
    spec,
    ...guestSystem({
      spec,
      buildId: 'abc123def456',
      modules: ['virtio_pci', 'virtio_net'],
      ssh: {
        authorizedKeys: new Map([
          ['dev', [KEY]],
          ['root', [KEY]],
        ]),
        hostKeys: [],
      },
    }),
  };
}
const text = (t: Tree, p: string) => (t.get(p) as FileEntry).data.toString('utf8');

describe('runit stages', () => {
  const { tree, overrides, spec } = system();

  test('/init hands over to runit; stages 1, 2, 3 and ctrlaltdel are executable', () => {
    const init = text(tree, '/init');
    assert.match(
      init,
      /^read -r kjx_nonce 2>\/dev\/null <\/sys\/firmware\/qemu_fw_cfg\/by_name\/opt\/kjx\/nonce\/raw$/m,
    );
    assert.match(init, /^echo "\n@@kjx:\$kjx_nonce:init"\n(?:#.*\n)?exec \/sbin\/runit$/m);
    assert.doesNotMatch(init, /export/, 'the nonce is never exported');
    for (const p of ['/init', '/etc/runit/1', '/etc/runit/2', '/etc/runit/3', '/etc/runit/ctrlaltdel'])
      assert.equal(tree.get(p)?.mode, 0o755, p);
  });

  test('stage 1: kernel filesystems, runit flags, modules, hostname, sysctls, network, then tasks in order', () => {
    const s1 = text(tree, '/etc/runit/1');
    const order = [
      'mount -t proc',
      'mount -a',
      '(umask 777 && : >"$KJX_STOPIT" && : >"$KJX_REBOOT")',
      'mkdir -p $KJX_STATE_DIRS',
      'mkfifo -m 600 "$KJX_STATE/tick"',
      'umask 077; echo "$kjx_nonce" >"$KJX_NONCE_FILE"; umask 022',
      'modprobe -a $(cat /etc/kjx/modules)',
      '[ -r "$KJX_RUN_CPIO" ] && (cd / && cpio -idmu <"$KJX_RUN_CPIO" 2>/dev/null)',
      // after the per-boot payload, which gives a cluster node its hostname and LAN
      'echo "$kjx_h" >/proc/sys/kernel/hostname',
      'ip -4 addr add "$kjx_addr" dev "$kjx_lan"',
      'if [ -n "$KJX_RUN_SKIP" ] && [ -x "$KJX_RUN_HOOK" ]; then',
      'echo 1 2>/dev/null >/proc/sys/net/ipv4/ip_forward',
      'echo 0 2>/dev/null >/proc/sys/net/ipv4/conf/eth0.100/rp_filter',
      'ip link set lo up',
      "kjx_task prep 1 'mkdir -p /srv'",
      "kjx_task warm 0 'warm || true'",
    ];
    let at = 0;
    for (const line of order) {
      const i = s1.indexOf(line, at);
      assert.ok(i >= 0, `"${line}" missing or out of order`);
      at = i;
    }
    assert.match(s1, /exit 100/, 'a failed required task ends the boot');
    assert.ok(s1.endsWith('\nexit 0\n'));
    for (const [type, dir] of [
      ['tracefs', '/sys/kernel/tracing'],
      ['debugfs', '/sys/kernel/debug'],
      ['securityfs', '/sys/kernel/security'],
      ['cgroup2', '/sys/fs/cgroup'],
      ['devpts', '/dev/pts'],
      ['tmpfs', '/run'],
      ['tmpfs', '/tmp'],
    ])
      assert.match(text(tree, '/etc/fstab'), new RegExp(`^${type}\\t${dir}\\t${type}\\t`, 'm'));
    assert.doesNotMatch(
      stage1Script({ spec: { ...spec, tasks: [] }, services: [], superviseDirs: [] }),
      /^kjx_task /m,
    );
  });

  test('stage 1 gets its paths, state directories and what a run VM leaves out through its header', {
    skip: skipBusybox,
  }, () => {
    const s1 = text(tree, '/etc/runit/1');
    const v = (name: string) => headerValue(s1, name);
    assert.equal(v('KJX_STOPIT'), '/run/runit.stopit');
    assert.equal(v('KJX_REBOOT'), '/run/runit.reboot');
    assert.equal(v('KJX_STATE'), '/run/kjx');
    assert.equal(v('KJX_NONCE_RAW'), '/sys/firmware/qemu_fw_cfg/by_name/opt/kjx/nonce/raw');
    assert.equal(v('KJX_NONCE_FILE'), '/run/kjx/nonce');
    assert.equal(v('KJX_RUN_CPIO'), '/sys/firmware/qemu_fw_cfg/by_name/opt/kjx/run.cpio/raw');
    assert.equal(v('KJX_RUN_HOOK'), '/usr/lib/kjx/run-hook');
    assert.equal(v('KJX_RUN_SKIP'), 'console acpid ssh');
    const dirs = v('KJX_STATE_DIRS').split(' ');
    for (const d of [
      '/run/kjx/ready',
      '/run/kjx/svc/web',
      '/run/runit/supervise/ssh',
      '/run/runit/supervise/ssh.log',
    ])
      assert.ok(dirs.includes(d), d);
  });

  test('stage 2 prints the stage2 marker and execs runsvdir; boot-ready waits for all, then the run hook', () => {
    const s2 = text(tree, '/etc/runit/2');
    assert.match(
      s2,
      /^read -r kjx_nonce 2>\/dev\/null <"\$KJX_NONCE_FILE"\necho "\n@@kjx:\$kjx_nonce:stage2 uptime=\$up"$/m,
    );
    assert.match(s2, /^KJX_NONCE_FILE=\/run\/kjx\/nonce$/m);
    assert.match(s2, /^exec env - PATH="\$PATH" runsvdir -P "\$KJX_SV" /m);
    assert.match(s2, /^KJX_SV=\/etc\/service$/m);
    const ready = text(tree, '/usr/lib/kjx/boot-ready');
    assert.match(ready, /^KJX_SERVICES='tracer ssh console acpid workload web'$/m);
    assert.match(ready, /^ {2}for s in \$KJX_SERVICES; do$/m);
    assert.match(text(tree, '/etc/acpi/PWRF/00000080'), /^exec \/sbin\/poweroff$/m);
    assert.match(ready, /^KJX_BUILD_ID=abc123def456$/m);
    assert.match(ready, /^kjx_say "ready build=\$KJX_BUILD_ID kernel=\$\(uname -r\)/m);
    assert.match(ready, /^KJX_RUN_HOOK=\/usr\/lib\/kjx\/run-hook$/m);
    assert.match(ready, /^\[ -x "\$KJX_RUN_HOOK" \] && exec "\$KJX_RUN_HOOK"$/m);
    assert.match(bootReadyScript({ buildId: 'x', services: ['a'], timeout: 7 }), /^KJX_TIMEOUT=7$/m);
  });

  test('stage 3 stops dependents first, level by level, then ends runsv and the rest', {
    skip: skipPidNs,
  }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'kjx-stage3-'));
    try {
      const log = join(dir, 'log');
      // every command stage 3 runs, as a function that writes down its arguments
      const stubs = ['sv', 'usleep', 'kill', 'sync', 'umount']
        .map((c) => `${c}() { echo "${c} $*" >>${log}; }`)
        .concat('stat() { echo 000; }')
        .join('\n');
      const r = spawnSync(
        'unshare',
        ['-r', '-fp', '--mount-proc', 'busybox', 'sh', '-c', `${stubs}\n${text(tree, '/etc/runit/3')}`],
        { encoding: 'utf8', timeout: 20_000 },
      );
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, 'kjx: stage 3: stopping services (poweroff)\nkjx: poweroff\n');
      assert.deepEqual(
        readFileSync(log, 'utf8')
          .trim()
          .split('\n')
          .map((l) => l.trimEnd()),
        [
          'sv -w 5 force-stop /etc/service/web',
          'sv -w 5 force-stop /etc/service/workload',
          'sv -w 5 force-stop /etc/service/tracer /etc/service/ssh /etc/service/console /etc/service/acpid',
          'sv exit /etc/service/*',
          'usleep 200000',
          'kill -s TERM -1',
          'usleep 300000',
          'kill -s KILL -1',
          'sync',
          'umount -a -r',
          'sync',
        ],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a service name that is not a plain word never reaches the stage scripts (the schema checks names)', () => {
    assert.throws(
      () => stage3Script([['a'], ['b c']]),
      (e: unknown) =>
        e instanceof KjxError && e.code === 'INTERNAL' && /"b c" is not a plain word/.test(e.message),
    );
  });

  test('poweroff, reboot and halt go through runit, replacing the busybox applets', () => {
    for (const a of ['poweroff', 'reboot', 'halt'])
      for (const d of ['/sbin', '/bin']) {
        const e = overrides.get(`${d}/${a}`);
        assert.equal(e?.type, 'file');
        assert.equal(e.override, true);
      }
    assert.match(powerScript('poweroff'), /chmod 100 \/run\/runit\.stopit/);
    assert.match(powerScript('poweroff'), /chmod 000 \/run\/runit\.reboot/);
    assert.match(powerScript('reboot'), /chmod 100 \/run\/runit\.reboot/);
    assert.match(powerScript('halt'), /exec busybox halt -f/);
    assert.match(powerScript('poweroff'), /^kill -s CONT 1$/m);
  });

  test('every generated script parses under busybox sh', { skip: skipBusybox }, () => {
    for (const t of [tree, overrides])
      for (const [path, e] of t) {
        if (e.type !== 'file' || !e.data.subarray(0, 9).equals(Buffer.from('#!/bin/sh'))) continue;
        const r = busyboxParses(e.data);
        assert.ok(r.ok, `${path}: ${r.error}`);
      }
  });
});

describe('an ephemeral run VM', () => {
  const svc = (name: string, needs: string[] = []) => ({ name, spec: { needs } }) as never;

  test('leaves out the console shell, the power button and SSH unless a service needs one, also through another', () => {
    const builtins = [svc('console'), svc('acpid'), svc('ssh')];
    assert.deepEqual(interactiveBuiltins(builtins), ['console', 'acpid', 'ssh']);
    assert.deepEqual(interactiveBuiltins([...builtins, svc('web', ['ssh'])]), ['console', 'acpid']);
    assert.deepEqual(interactiveBuiltins([...builtins, svc('a', ['b']), svc('b', ['acpid'])]), [
      'console',
      'ssh',
    ]);
    assert.deepEqual(interactiveBuiltins([svc('console'), svc('web')]), ['console']);
  });
});

describe('accounts', () => {
  const { tree, spec } = system();

  test('root, the spec users and nobody; nobody has a password, none is empty', () => {
    const users = accounts(spec);
    assert.deepEqual(
      users.map((u) => u.name),
      ['root', 'dev', 'nobody'],
    );
    assert.equal(
      passwdFile(users),
      'root:x:0:0:root:/root:/bin/sh\ndev:x:1000:1000:dev:/home/dev:/bin/ash\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
    );
    for (const line of shadowFile(users).trim().split('\n')) assert.equal(line.split(':')[1], '*', line);
    for (const line of passwdFile(users).trim().split('\n')) assert.equal(line.split(':')[1], 'x', line);
    assert.equal(groupFile(users), 'root:x:0:\ntty:x:5:\ndev:x:1000:\nnogroup:x:65534:\n');
    assert.equal(shellsFile(users), '/bin/sh\n/bin/ash\n');
    assert.equal(tree.get('/etc/shadow')?.mode, 0o600);
  });

  test('homes and authorized_keys belong to their user, private modes', () => {
    const home = tree.get('/home/dev');
    assert.deepEqual([home?.type, home?.mode, home?.uid, home?.gid], ['dir', 0o700, 1000, 1000]);
    const ssh = tree.get('/home/dev/.ssh');
    assert.deepEqual([ssh?.mode, ssh?.uid], [0o700, 1000]);
    const keys = tree.get('/home/dev/.ssh/authorized_keys');
    assert.deepEqual([keys?.mode, keys?.uid, keys?.gid], [0o600, 1000, 1000]);
    assert.equal(text(tree, '/home/dev/.ssh/authorized_keys'), `${KEY}\n`);
    assert.equal(text(tree, '/root/.ssh/authorized_keys'), `${KEY}\n`);
  });
});

describe('network and identity', () => {
  const { tree, spec } = system();

  test('dhcp runs udhcpc with our script; static sets address, route and resolv.conf', () => {
    const lines = networkLines(spec).join('\n');
    assert.match(lines, /udhcpc -i eth0 -s \/usr\/lib\/kjx\/udhcpc\.script -q -n /);
    assert.match(lines, /ip -4 addr add 10\.0\.3\.2\/24 dev eth1/);
    assert.match(lines, /ip -4 route add default via 10\.0\.3\.1 dev eth1/);
    assert.match(
      lines,
      /echo "nameserver 10\.0\.3\.1" >>\/run\/resolv\.conf\n.*echo "nameserver 1\.1\.1\.1" >>\/run\/resolv\.conf/,
    );
    assert.equal(tree.get('/etc/resolv.conf')?.type, 'symlink');
    assert.match(
      text(tree, '/usr/lib/kjx/udhcpc.script'),
      /ip -4 addr add "\$ip\/\$\{mask:-24\}" dev "\$interface"/,
    );
  });

  test('os-release, hostname, hosts, banner', () => {
    const os = text(tree, '/etc/os-release');
    for (const l of ['NAME="kjx"', 'ID=kjx', 'VERSION="1.2.3"', 'BUILD_ID="abc123def456"', 'IMAGE_ID="lab"'])
      assert.ok(os.split('\n').includes(l), l);
    assert.equal(text(tree, '/etc/hostname'), 'lab1\n');
    assert.match(text(tree, '/etc/hosts'), /^127\.0\.1\.1\tlab1$/m);
    assert.match(text(tree, '/etc/kjx/banner'), /lab 1\.2\.3 \(build abc123def456\)/);
  });
});
