/**
 * The guest-system fields of kjx.yaml (services, tasks, network, users, ssh,
 * sysctls, console): the shapes they normalize to, and problems reported with
 * file:line:col — `needs` cycles and unknown names among them.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { guestServices, serviceLevels, serviceTree, withBefore } from '../../src/guest/services.js';
import { planComponents } from '../../src/plan/components.js';
import { parseSpec } from '../../src/spec/load.js';
import { assertKjxError } from '../helpers/kjx-error.js';

const parse = (yaml: string) => parseSpec(yaml, '/srv/kjx.yaml');

/** Every problem line of a spec that must fail (loading it, or planning its components and services). */
function problems(yaml: string): string[] {
  try {
    planComponents(parseSpec(yaml, 'kjx.yaml'));
  } catch (e) {
    assertKjxError(e, 'SPEC_INVALID');
    return e.details;
  }
  assert.fail('the spec parsed');
}

describe('services', () => {
  test('every written form normalizes', () => {
    const spec = parse(`
services:
  tracer:
    run: /usr/local/bin/tracer --all
    ready: signal
    stopSignal: INT
    log: false
  web:
    run: httpd -f -p 8080
    needs: [tracer]
    ready: {port: 8080, timeout: 20}
    restart: on-failure
    env: {PORT: 8080, DEBUG: true, NAME: web}
    finish: echo bye
  sock:
    run: daemon
    ready: {file: /run/daemon.sock}
    restart: {policy: never, delay: 2, maxDelay: 8}
    log: {size: 65536, keep: 2}
  db:
    run: db
    ready: {check: "db-ping -q"}
`);
    assert.deepEqual(spec.services.tracer, {
      run: '/usr/local/bin/tracer --all',
      needs: [],
      ready: { kind: 'signal', timeout: 60 },
      restart: { policy: 'always', delay: 1, maxDelay: 30 },
      user: 'root',
      env: {},
      log: null,
      stopSignal: 'INT',
    });
    assert.deepEqual(spec.services.web, {
      run: 'httpd -f -p 8080',
      needs: ['tracer'],
      ready: { kind: 'port', port: 8080, timeout: 20 },
      restart: { policy: 'on-failure', delay: 1, maxDelay: 30 },
      user: 'root',
      env: { PORT: '8080', DEBUG: '1', NAME: 'web' },
      log: { size: 1_000_000, keep: 5 },
      finish: 'echo bye',
      stopSignal: 'TERM',
    });
    assert.deepEqual(spec.services.sock?.ready, { kind: 'file', path: '/run/daemon.sock', timeout: 60 });
    assert.deepEqual(spec.services.sock?.restart, { policy: 'never', delay: 2, maxDelay: 8 });
    assert.deepEqual(spec.services.sock?.log, { size: 65536, keep: 2 });
    assert.deepEqual(spec.services.db?.ready, { kind: 'check', command: 'db-ping -q', timeout: 60 });
  });

  test('an unknown name in needs is refused at its position, with a suggestion', () => {
    const p = problems(
      'services:\n  tracer:\n    run: t\n  workload:\n    run: w\n    needs: [tracer, tracr]\n',
    );
    assert.deepEqual(p, [
      'kjx.yaml:6:21: services.workload.needs[1]: unknown service "tracr" (did you mean "tracer"?); known: tracer, workload, ssh, console, acpid',
    ]);
  });

  test('a cycle is refused where it closes, naming the whole loop', () => {
    const p = problems(
      'services:\n  a:\n    run: x\n    needs: [b]\n  b:\n    run: y\n    needs: [c]\n  c:\n    run: z\n    needs: [a]\n',
    );
    assert.deepEqual(p, ['kjx.yaml:4:13: services.a.needs[0]: "b" makes a dependency cycle: a → b → c → a']);
  });

  test('a service that needs itself is a cycle too', () => {
    const p = problems('services:\n  loop:\n    run: x\n    needs: [ssh, loop]\n');
    assert.deepEqual(p, [
      'kjx.yaml:4:18: services.loop.needs[1]: "loop" makes a dependency cycle: loop → loop',
    ]);
  });

  test('needs may name the built-in ssh and console services, but only while they are on', () => {
    assert.deepEqual(parse('services:\n  w:\n    run: x\n    needs: [ssh, console]\n').services.w?.needs, [
      'ssh',
      'console',
    ]);
    const p = problems(
      'ssh: {enabled: false}\nconsole: none\nservices:\n  w:\n    run: x\n    needs: [ssh]\n',
    );
    assert.match(p[0] ?? '', /^kjx\.yaml:6:13: services\.w\.needs\[0\]: unknown service "ssh"/);
  });

  test('the built-in names are reserved while the built-ins are on', () => {
    assert.deepEqual(problems('services:\n  ssh:\n    run: x\n'), [
      'kjx.yaml:3:5: services.ssh: "ssh" is the built-in SSH service; rename this one, or set ssh.enabled: false',
    ]);
    assert.equal(parse('ssh: {enabled: false}\nservices:\n  ssh:\n    run: x\n').services.ssh?.run, 'x');
  });

  test('an unknown user, a bad service name, a typo in a key, two readiness kinds', () => {
    assert.deepEqual(problems('services:\n  w:\n    run: x\n    user: bob\n'), [
      'kjx.yaml:4:11: services.w.user: unknown user "bob"; add it to users',
    ]);
    assert.deepEqual(problems('services:\n  Web/1:\n    run: x\n'), [
      'kjx.yaml:3:5: services["Web/1"]: expected a service name of lowercase letters, digits, ".", "_" and "-", got "Web/1"',
    ]);
    assert.deepEqual(problems('services:\n  w:\n    run: x\n    neds: [a]\n'), [
      'kjx.yaml:4:5: services.w.neds: unknown key "neds" (did you mean "needs"?)',
    ]);
    assert.deepEqual(problems('services:\n  w:\n    run: x\n    ready: {file: /a, port: 1}\n'), [
      'kjx.yaml:4:29: services.w.ready.port: give one way to know readiness, not both "file" and "port"',
    ]);
    assert.deepEqual(
      problems('services:\n  w:\n    run: x\n    restart: {policy: always, delay: 10, maxDelay: 5}\n'),
      ['kjx.yaml:4:52: services.w.restart.maxDelay: expected at least "delay" (10), got 5'],
    );
  });

  test("before: a spec service goes before a component's service, which then needs it", () => {
    const spec = parse(
      'components: [busybox, runit, dropbear, etcd]\nservices:\n  tracer:\n    run: t\n    ready: signal\n    before: [etcd]\n',
    );
    assert.deepEqual(spec.services.tracer?.before, ['etcd']);
    const services = withBefore([...guestServices(spec), ...planComponents(spec).services]);
    assert.deepEqual(services.find((s) => s.name === 'etcd')?.spec.needs, ['tracer']);
    const run = serviceTree(spec, services).get('/etc/sv/etcd/run');
    assert.ok(run?.type === 'file');
    assert.match(run.data.toString(), /^kjx_begin etcd 1 30 tracer$/m);
    assert.deepEqual(serviceLevels(services).slice(0, 2), [['tracer', 'ssh', 'console', 'acpid'], ['etcd']]);
    // a service with no before is left as it was
    assert.equal(parse('services:\n  w:\n    run: x\n').services.w?.before, undefined);
  });

  test('before naming an unknown service, or itself, is refused at its position', () => {
    assert.deepEqual(problems('services:\n  tracer:\n    run: t\n    before: [etdc]\n'), [
      'kjx.yaml:4:14: services.tracer.before[0]: unknown service "etdc"; known: tracer, ssh, console, acpid',
    ]);
    assert.deepEqual(problems('services:\n  tracer:\n    run: t\n    before: [tracer]\n'), [
      'kjx.yaml:4:14: services.tracer.before[0]: a service cannot start before itself; remove "tracer"',
    ]);
  });

  test('a before that closes a needs cycle is refused', () => {
    const p = problems(
      'services:\n  a:\n    run: x\n    needs: [b]\n  b:\n    run: y\n    before: [a]\n  c:\n    run: z\n    needs: [a]\n    before: [b]\n',
    );
    assert.equal(p.length, 1);
    assert.match(p[0] ?? '', /makes a dependency cycle: /);
  });
});

describe('network, users, ssh, sysctls, tasks', () => {
  test('network: dhcp and static forms', () => {
    const spec = parse(
      'network:\n  eth0: dhcp\n  eth1: {dhcp: true}\n  eth2: {address: 10.0.2.15/24, gateway: 10.0.2.2, dns: [10.0.2.3]}\n  eth3: {address: 192.168.1.2/16}\n',
    );
    assert.deepEqual(spec.network, {
      eth0: { kind: 'dhcp' },
      eth1: { kind: 'dhcp' },
      eth2: { kind: 'static', address: '10.0.2.15', prefix: 24, gateway: '10.0.2.2', dns: ['10.0.2.3'] },
      eth3: { kind: 'static', address: '192.168.1.2', prefix: 16, dns: [] },
    });
    assert.deepEqual(parse('network: {}\n').network, {});
  });

  test('network problems', () => {
    assert.deepEqual(
      problems(
        'network:\n  lo: dhcp\n  eth0: {address: 10.0.2.300/24}\n  eth1: {dhcp: true, gateway: 10.0.2.2}\n  eth2: {}\n',
      ),
      [
        'kjx.yaml:2:3: network.lo: the loopback interface is always up; leave "lo" out',
        'kjx.yaml:3:19: network.eth0.address: expected an IPv4 address with prefix length, like "10.0.2.15/24", got "10.0.2.300/24"',
        'kjx.yaml:4:31: network.eth1.gateway: "gateway" goes with a static "address"',
        'kjx.yaml:5:9: network.eth2: an interface needs "dhcp: true" or an "address"',
      ],
    );
  });

  test('users: uids from 1000, root keeps 0, keys literal or host files (resolved against kjx.yaml)', () => {
    const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKjx me@host';
    const spec = parse(
      `users:\n  - name: root\n    authorizedKeys: ["${key}"]\n  - name: dev\n    authorizedKeys: [./keys/dev.pub]\n  - name: ops\n    uid: 1000\n  - name: ci\n    home: /srv/ci\n`,
    );
    assert.deepEqual(
      spec.users.map((u) => [u.name, u.uid, u.gid, u.home, u.shell]),
      [
        ['root', 0, 0, '/root', '/bin/sh'],
        ['dev', 1001, 1001, '/home/dev', '/bin/sh'],
        ['ops', 1000, 1000, '/home/ops', '/bin/sh'],
        ['ci', 1002, 1002, '/srv/ci', '/bin/sh'],
      ],
    );
    assert.deepEqual(spec.users[0]?.authorizedKeys, [{ kind: 'literal', key }]);
    assert.deepEqual(spec.users[1]?.authorizedKeys, [
      { kind: 'file', path: '/srv/keys/dev.pub', pathRef: './keys/dev.pub' },
    ]);
  });

  test('users problems: duplicates, uid 0, a key that is not one', () => {
    assert.deepEqual(
      problems(
        'users:\n  - name: a\n    uid: 1000\n  - name: a\n  - name: b\n    uid: 1000\n  - name: c\n    uid: 0\n  - name: d\n    authorizedKeys: ["ssh-ed25519 not*base64"]\n',
      ),
      [
        'kjx.yaml:4:11: users[1].name: "a" is already given by users[0]',
        'kjx.yaml:6:10: users[2].uid: uid 1000 is already taken by users[0]',
        'kjx.yaml:8:10: users[3].uid: uid 0 is root; give another uid',
        'kjx.yaml:10:22: users[4].authorizedKeys[0]: expected an OpenSSH public key line like "ssh-ed25519 AAAA... me@host", got "ssh-ed25519 not*base64"',
      ],
    );
  });

  test('ssh is on with the dropbear component and off without; asking for it without dropbear is an error', () => {
    assert.equal(parse('').ssh.enabled, true);
    assert.equal(parse('components: [busybox, runit]\n').ssh.enabled, false);
    assert.equal(parse('ssh: {enabled: false}\n').ssh.enabled, false);
    assert.deepEqual(problems('components: [busybox, runit]\nssh: {enabled: true}\n'), [
      'kjx.yaml:2:16: ssh.enabled: the SSH server is the dropbear component: add dropbear to components, or set enabled: false',
    ]);
    const spec = parse(
      'ssh: {port: 2222, hostKeys: [ed25519, ecdsa], hostKeyFiles: [k1], rootLogin: false}\n',
    );
    assert.deepEqual(spec.ssh, {
      enabled: true,
      port: 2222,
      hostKeys: ['ed25519', 'ecdsa'],
      hostKeyFiles: [{ path: '/srv/k1', pathRef: 'k1' }],
      rootLogin: false,
    });
  });

  test('sysctls become text; tasks keep their order and default to required', () => {
    const spec = parse(
      'sysctls:\n  net.ipv4.ip_forward: 1\n  kernel.domainname: lab\n  vm/overcommit_memory: true\ntasks:\n  - {name: b, run: "true"}\n  - {name: a, run: "false", required: false}\n',
    );
    assert.deepEqual(spec.sysctls, {
      'net.ipv4.ip_forward': '1',
      'kernel.domainname': 'lab',
      'vm/overcommit_memory': '1',
    });
    assert.deepEqual(spec.tasks, [
      { name: 'b', run: 'true', required: true },
      { name: 'a', run: 'false', required: false },
    ]);
    assert.deepEqual(
      problems('sysctls:\n  forward: 1\ntasks:\n  - {name: a, run: x}\n  - {name: a, run: y}\n'),
      [
        'kjx.yaml:2:3: sysctls.forward: expected a sysctl key like "net.ipv4.ip_forward", got "forward"',
        'kjx.yaml:5:12: tasks[1].name: "a" is already given by tasks[0]',
      ],
    );
  });
});
