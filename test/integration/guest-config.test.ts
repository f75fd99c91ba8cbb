/**
 * The rest of the guest system in real QEMU (TCG): static addressing on QEMU's
 * user network, a user with its own key (and then no project key, and no root
 * login), sysctls, boot tasks in order, a service run as that user with its env and
 * port readiness; and a failed required boot task ending the boot.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { encodePrivateKey, fingerprint, publicKeyBlob, publicKeyLine } from '../../src/guest/openssh-key.js';
import type { Session } from '../../src/vm/session.js';
import { bootBuilt, consoleWithoutNonce, removeAll, runKjx, workspace } from '../helpers/kjx.js';
import { freePort, sshExec } from '../helpers/ssh.js';

const SPEC = `name: cfg
hostname: cfg
network:
  eth0:
    address: 10.0.2.15/24
    gateway: 10.0.2.2
    dns: [10.0.2.3, 10.0.2.4]
ssh:
  hostKeyFiles: [./host_ed25519]
sysctls:
  net.ipv4.ip_forward: 1
  kernel.domainname: kjx.test
users:
  - name: dev
    uid: 1500
    authorizedKeys: [./dev.pub]
services:
  web:
    run: httpd -f -p 8080 -h /srv/www
    ready: {port: 8080, timeout: 300}
    user: dev
    env: {GREETING: hello world}
  notifier:
    run: /usr/local/bin/notifier
    ready: {signal: true, timeout: 300}
    user: dev
    needs: [web]
files:
  - path: /usr/local/bin/notifier
    mode: "0755"
    content: |
      #!/bin/sh
      echo "notifier: running as $(id -un)"
      kill -USR1 "$PPID"
      exec sleep 100000
tasks:
  - name: www
    run: mkdir -p /srv/www && echo "served by kjx" >/srv/www/index.html && chown -R dev /srv/www
  - name: optional
    run: exit 3
    required: false
`;

function keyPair(comment: string): { line: string; pem: string; fingerprint: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const key = {
    seed: Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url'),
    publicKey: Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url'),
    comment,
  };
  return {
    line: publicKeyLine(key.publicKey, comment),
    pem: encodePrivateKey(key, 7),
    fingerprint: fingerprint(publicKeyBlob(key.publicKey)),
  };
}

describe('static network, users, sysctls, tasks, a service as a user', () => {
  let ws: string;
  let vm: Session | undefined;
  let port: number;
  const dev = keyPair('dev@test');
  const host = keyPair('host@test');

  before(async () => {
    ws = workspace('guest-config', SPEC);
    writeFileSync(join(ws, 'dev.pub'), `${dev.line}\n`);
    // an OpenSSH-format host key (as ssh-keygen writes it); kjx converts it for dropbear
    writeFileSync(join(ws, 'host_ed25519'), host.pem, { mode: 0o600 });
    const r = runKjx(['build'], { cwd: ws });
    assert.equal(r.code, 0, `kjx build failed:\n${r.stderr}`);
    port = await freePort();
    vm = bootBuilt(ws, { sshPort: port });
    // the readiness timeouts above are wide for a loaded 2-core host, where TCG runs up
    // to ten times slower (30 s each were too short there); ready comes at the first
    // moment all are, so they cost nothing on an idle host
    const ready = await vm.waitForMarker('ready', 900_000);
    assert.equal(ready.fields.notready, undefined);
  });
  after(async () => {
    await vm?.stop();
    removeAll(ws);
  });

  const asDev = async (command: string) => {
    const r = await sshExec({ port, username: 'dev', privateKey: dev.pem }, command);
    assert.equal(r.code, 0, `${command}: ${r.stderr}`);
    return r.stdout;
  };

  test('the spec gave a key, so kjx made no project key; dev logs in with its key, root cannot', async () => {
    assert.equal(existsSync(join(ws, '.kjx', 'ssh')), false);
    assert.equal((await asDev('id')).trim(), 'uid=1500(dev) gid=1500(dev) groups=1500(dev)');
    await assert.rejects(sshExec({ port, username: 'root', privateKey: dev.pem }, 'true'), /authentication/);
  });

  test('the host key given in the spec is the one dropbear presents and the console prints', async () => {
    // the initramfs holds that private key: only its owner may read it
    assert.equal(statSync(join(ws, 'dist', 'initramfs.cpio.gz')).mode & 0o777, 0o600);
    assert.equal(statSync(join(ws, 'dist', 'vmlinuz')).mode & 0o777, 0o644);
    // printed before ready, so already seen; the bound is only for a guest that never prints it
    const marker = await vm!.waitForMarker('hostkey', 30_000);
    assert.deepEqual(marker.fields, { type: 'ed25519', sha256: host.fingerprint });
    const r = await sshExec(
      { port, username: 'dev', privateKey: dev.pem, hostKey: host.fingerprint },
      'true',
    );
    assert.equal(r.hostKey, host.fingerprint);
  });

  test('static addressing: address, default route and both name servers; no DHCP ran', async () => {
    const out = await asDev('ip -4 -o addr show dev eth0; ip -4 route; cat /etc/resolv.conf');
    assert.match(out, /eth0\s+inet 10\.0\.2\.15\/24 /);
    assert.match(out, /^default via 10\.0\.2\.2 dev eth0/m);
    assert.match(out, /^nameserver 10\.0\.2\.3\nnameserver 10\.0\.2\.4$/m);
    const con = consoleWithoutNonce(vm!);
    assert.match(con, /kjx: eth0: static 10\.0\.2\.15\/24 gateway 10\.0\.2\.2/);
    assert.doesNotMatch(con, /udhcpc/);
  });

  test('sysctls are set', async () => {
    assert.equal(
      (await asDev('cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/domainname')).trim(),
      '1\nkjx.test',
    );
  });

  test('boot tasks ran in order; the optional one failed loudly and the boot went on', () => {
    const con = consoleWithoutNonce(vm!);
    const www = con.indexOf('@@kjx:task name=www status=0');
    const opt = con.indexOf('@@kjx:task name=optional status=3');
    assert.ok(www >= 0 && opt > www, 'task markers in order');
    assert.match(con, /kjx: warning: boot task optional failed with status 3 \(not required, going on\)/);
    assert.ok(opt < con.indexOf('@@kjx:stage2'));
  });

  test('ready: signal works for a service running as dev (its wrapper runs as dev too)', async () => {
    const out = await asDev(
      'read c </run/kjx/svc/notifier/user/child; stat -c %U /proc/$c; cat /proc/$c/comm; cat /var/log/notifier/current',
    );
    assert.match(out, /^dev\nsleep\n/);
    assert.match(out, /notifier: running as dev/);
    assert.match(out, /kjx: ready t=/);
    const con = consoleWithoutNonce(vm!);
    assert.ok(
      con.indexOf('@@kjx:service name=web state=ready') < con.indexOf('@@kjx:service name=notifier state=up'),
    );
    assert.match(con, /@@kjx:service name=notifier state=ready/);
  });

  test('the service runs as dev with its environment, and was ready once its port listened', async () => {
    const out = await asDev(
      'read p </run/kjx/svc/web/pid; stat -c %U /proc/$p; tr "\\0" "\\n" </proc/$p/environ | grep -E "^(GREETING|USER|HOME)=" | sort; wget -q -O - http://127.0.0.1:8080/',
    );
    assert.equal(out, 'dev\nGREETING=hello world\nHOME=/home/dev\nUSER=dev\nserved by kjx\n');
    const log = await asDev('cat /var/log/web/current');
    assert.match(log, /kjx: starting t=[0-9.]+\n.*kjx: ready t=/);
  });
});

test('a failed required boot task stops the boot: the marker, a clear line, and the guest powers off', async () => {
  const ws = workspace(
    'guest-task-fail',
    'name: taskfail\nnetwork: {}\nssh: {enabled: false}\ntasks:\n  - name: mount-data\n    run: echo "no disk" >&2; exit 4\n  - name: never\n    run: "true"\n',
  );
  let vm: Session | undefined;
  try {
    const r = runKjx(['build'], { cwd: ws });
    assert.equal(r.code, 0, r.stderr);
    vm = bootBuilt(ws, {});
    const code = await Promise.race([
      vm.exited,
      new Promise<'late'>((res) => setTimeout(() => res('late'), 120_000)),
    ]);
    assert.notEqual(code, 'late', 'the guest did not power off');
    const con = consoleWithoutNonce(vm);
    assert.match(con, /@@kjx:task name=mount-data status=4/);
    assert.match(con, /no disk/);
    assert.match(
      con,
      /kjx: boot task mount-data failed with status 4; stopping the boot \(stage 3, power off\)/,
    );
    assert.doesNotMatch(con, /@@kjx:task name=never/);
    assert.doesNotMatch(con, /@@kjx:stage2/);
    assert.doesNotMatch(con, /@@kjx:ready/);
    assert.match(con, /runit: power off/);
  } finally {
    await vm?.stop();
    removeAll(ws);
  }
});
