/**
 * The default image (`kjx init`) as a real system, in real QEMU (TCG): runit as
 * PID 1, every service `run`, DHCP on QEMU's user network, SSH by key only on a
 * port forwarded to 127.0.0.1 with the host key pinned from the console, password
 * and empty-password logins refused, and `poweroff` through runit ending QEMU.
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { decodePrivateKey } from '../../src/guest/openssh-key.js';
import type { Session } from '../../src/vm/session.js';
import { bootBuilt, consoleWithoutNonce, removeAll, runKjx, workspace } from '../helpers/kjx.js';
import { freePort, sshExec, tryPassword } from '../helpers/ssh.js';

describe('the default image over SSH', () => {
  let ws: string;
  let vm: Session | undefined;
  let port: number;
  let key: Buffer;
  let hostKey: string;
  let readyMs: number;

  before(async () => {
    ws = workspace('guest-ssh');
    const r = runKjx(['build'], { cwd: ws });
    assert.equal(r.code, 0, `kjx build failed:\n${r.stderr}`);
    key = readFileSync(join(ws, '.kjx', 'ssh', 'id_ed25519'));
    port = await freePort();
    const t0 = Date.now();
    vm = bootBuilt(ws, { sshPort: port });
    const ready = await vm.waitForMarker('ready', 120_000);
    readyMs = Date.now() - t0;
    assert.equal(ready.fields.notready, undefined, 'every service became ready');
    // printed before ready, so already seen; the bound is only for a guest that never prints it
    hostKey = (await vm.waitForMarker('hostkey', 30_000)).fields.sha256!;
  });
  after(async () => {
    await vm?.stop();
    removeAll(ws);
  });

  const ssh = (command: string) => sshExec({ port, username: 'root', privateKey: key, hostKey }, command);

  test('kjx created a project key pair next to kjx.yaml, private 0600, and it is in no artifact', (t) => {
    t.diagnostic(`boot to @@kjx:ready: ${readyMs} ms`);
    const priv = join(ws, '.kjx', 'ssh', 'id_ed25519');
    assert.equal(statSync(priv).mode & 0o777, 0o600);
    const { seed } = decodePrivateKey(readFileSync(priv, 'utf8'), priv);
    const image = gunzipSync(readFileSync(join(ws, 'dist', 'initramfs.cpio.gz')));
    const pem = readFileSync(priv, 'utf8').split('\n')[1]!;
    for (const a of ['vmlinuz', 'manifest.json']) {
      const bytes = readFileSync(join(ws, 'dist', a));
      assert.equal(bytes.includes(seed), false, `the private seed is in ${a}`);
    }
    assert.equal(image.includes(seed), false, 'the private seed is in the initramfs');
    assert.equal(image.includes(pem), false, 'the private key file is in the initramfs');
    assert.ok(
      image.includes(readFileSync(`${priv}.pub`, 'utf8').split(' ')[1]!),
      'the public key is authorized',
    );
  });

  test('key login works, and the host key the client saw is the one printed on the console', async () => {
    const r = await ssh('id -u; cat /etc/os-release; cat /proc/1/comm');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.hostKey, hostKey);
    const [uid, ...rest] = r.stdout.trim().split('\n');
    assert.equal(uid, '0');
    assert.ok(rest.includes('ID=kjx'));
    assert.match(rest.join('\n'), /^BUILD_ID="[0-9a-f]{12}"$/m);
    assert.equal(rest.at(-1), 'runit', 'PID 1 is runit');
  });

  test('a pinned host key that does not match is refused', async () => {
    await assert.rejects(
      sshExec({ port, username: 'root', privateKey: key, hostKey: 'AAAA' + hostKey.slice(4) }, 'true'),
      /host|verif/i,
    );
  });

  test('sv status shows every service run (with its log)', async () => {
    const r = await ssh('sv status /etc/service/*');
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.deepEqual(
      lines.map((l) => /^(\w+): \/etc\/service\/([^:]+):/.exec(l)?.slice(1)),
      [
        ['run', 'acpid'],
        ['run', 'console'],
        ['run', 'ssh'],
      ],
    );
    assert.match(lines[2]!, /; run: log: \(pid \d+\)/);
  });

  test('password and empty-password logins are refused; the server offers only publickey', async () => {
    for (const password of ['kjx', '']) {
      for (const username of ['root', 'nobody']) {
        const r = await tryPassword({ port, username, hostKey }, password);
        assert.equal(r.accepted, false, `${username} with password "${password}" got in`);
        assert.match(r.message, /authentication methods failed/);
        assert.deepEqual(r.methods, ['publickey']);
      }
    }
    const shadow = await ssh('cat /etc/shadow; cat /etc/passwd');
    for (const line of shadow.stdout.trim().split('\n')) {
      const pw = line.split(':')[1];
      assert.ok(pw === '*' || pw === 'x', `an account with a password or an empty one: ${line}`);
    }
  });

  test('DHCP configured eth0 from QEMU user networking: 10.0.2.15/24, via 10.0.2.2, dns 10.0.2.3', async () => {
    const r = await ssh('ip -4 -o addr show dev eth0; ip -4 route; cat /etc/resolv.conf');
    assert.match(r.stdout, /eth0\s+inet 10\.0\.2\.15\/24 /);
    assert.match(r.stdout, /^default via 10\.0\.2\.2 dev eth0/m);
    assert.match(r.stdout, /^nameserver 10\.0\.2\.3$/m);
    assert.match(vm!.console(), /kjx: eth0: dhcp 10\.0\.2\.15\/24 router 10\.0\.2\.2/);
  });

  test('stage markers arrived in order and the kernel filesystems are mounted', async () => {
    const out = consoleWithoutNonce(vm!);
    const at = (s: string) => out.indexOf(s);
    assert.ok(at('@@kjx:init') >= 0 && at('@@kjx:init') < at('@@kjx:stage2 uptime='));
    assert.ok(at('@@kjx:stage2') < at('@@kjx:service name=ssh state=ready'));
    assert.ok(at('@@kjx:service name=ssh state=ready') < at('@@kjx:ready build='));
    const m = await ssh('cut -d" " -f2,3 /proc/mounts');
    for (const mount of [
      '/proc proc',
      '/sys sysfs',
      '/dev devtmpfs',
      '/dev/pts devpts',
      '/run tmpfs',
      '/tmp tmpfs',
      '/sys/kernel/tracing tracefs',
      '/sys/kernel/debug debugfs',
      '/sys/kernel/security securityfs',
      '/sys/fs/cgroup cgroup2',
    ])
      assert.ok(m.stdout.split('\n').includes(mount), `${mount} not mounted:\n${m.stdout}`);
  });

  test('poweroff goes through runit stage 3 and ends QEMU', async (t) => {
    // the target is 10 s (`npm run bench guest`); a 2-core host at load 18 took
    // 26-37 s; the bound is wide for that, and still catches a guest that never powers off
    const boundS = 120;
    const t0 = Date.now();
    // the session may end before the command returns: that is the point
    await ssh('poweroff').catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      vm!.exited,
      new Promise<'late'>((r) => {
        timer = setTimeout(() => r('late'), boundS * 1000);
      }),
    ]);
    clearTimeout(timer);
    t.diagnostic(`poweroff to QEMU exit: ${Date.now() - t0} ms`);
    assert.notEqual(
      code,
      'late',
      `QEMU still running ${boundS} s after poweroff:\n${vm!.console().slice(-2000)}`,
    );
    assert.equal(code, 0);
    const out = consoleWithoutNonce(vm!);
    assert.match(out, /kjx: stage 3: stopping services \(poweroff\)/);
    assert.match(out, /@@kjx:service name=ssh state=down/);
    assert.match(out, /runit: power off/);
  });
});
