/**
 * Service directories from the spec: what each file does for each readiness kind,
 * dependents stopped from finish, stop signals through control/t, svlogd logs, the
 * built-in ssh and console services; every generated script parses under busybox sh.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  bootReadyTimeout,
  guestServices,
  programWords,
  serviceLevels,
  serviceTree,
  superviseDirs,
} from '../../src/guest/services.js';
import type { FileEntry, Tree } from '../../src/rootfs/tree.js';
import { parseSpec } from '../../src/spec/load.js';
import { busyboxParses, needsBusybox } from '../helpers/busybox.js';

const skipBusybox = needsBusybox();

const SPEC = `
users:
  - name: dev
services:
  tracer:
    run: /usr/local/bin/tracer --events 'sched:*'
    ready: signal
    stopSignal: INT
    log: false
  workload:
    run: /usr/local/bin/workload
    needs: [tracer]
    restart: on-failure
    user: dev
    env: {MODE: "a b"}
    finish: 'echo "done: $1"'
  web:
    run: httpd -f -p 8080
    needs: [workload, ssh]
    ready: {port: 8080, timeout: 5}
  sock:
    run: sockd
    ready: {file: /run/sockd.sock}
  db:
    run: db
    ready: {check: db-ping}
    restart: {policy: never, delay: 3, maxDelay: 7}
`;

function build() {
  const spec = parseSpec(SPEC, '/srv/kjx.yaml');
  const services = guestServices(spec);
  return { spec, services, tree: serviceTree(spec, services) };
}

function text(tree: Tree, path: string): string {
  const e = tree.get(path);
  assert.ok(e, `${path} is missing`);
  assert.equal(e.type, 'file');
  return (e as FileEntry).data.toString('utf8');
}

describe('service directories', () => {
  const { spec, services, tree } = build();

  test('spec services in file order, then ssh, console and acpid; levels follow needs', () => {
    assert.deepEqual(
      services.map((s) => s.name),
      ['tracer', 'workload', 'web', 'sock', 'db', 'ssh', 'console', 'acpid'],
    );
    assert.deepEqual(serviceLevels(services), [
      ['tracer', 'sock', 'db', 'ssh', 'console', 'acpid'],
      ['workload'],
      ['web'],
    ]);
    // web waits for workload, which waits for tracer: 60 + 60 + 5
    assert.equal(bootReadyTimeout(services), 125);
  });

  test('each service: run, finish, check, a supervise link into /run and an /etc/service link', () => {
    for (const s of services) {
      for (const f of ['run', 'finish', 'check']) {
        const e = tree.get(`/etc/sv/${s.name}/${f}`);
        assert.equal(e?.type, 'file', `${s.name}/${f}`);
        assert.equal(e.mode, 0o755);
      }
      assert.deepEqual(
        { ...tree.get(`/etc/sv/${s.name}/supervise`), source: undefined },
        {
          type: 'symlink',
          path: `/etc/sv/${s.name}/supervise`,
          target: `/run/runit/supervise/${s.name}`,
          mode: 0o777,
          uid: 0,
          gid: 0,
          mtime: 0,
          source: undefined,
        },
      );
      assert.equal(tree.get(`/etc/service/${s.name}`)?.type, 'symlink');
    }
    assert.ok(superviseDirs(services).includes('/run/runit/supervise/workload.log'));
    assert.ok(
      !superviseDirs(services).includes('/run/runit/supervise/tracer.log'),
      'tracer logs to the console',
    );
  });

  test('signal readiness: a wrapper shell traps USR1 and forwards stop signals; the program is its child', () => {
    const run = text(tree, '/etc/sv/tracer/run');
    assert.match(run, /^kjx_begin tracer 1 30$/m);
    assert.match(run, /^trap 'kjx_set_ready tracer \$\$' USR1$/m);
    for (const sig of ['TERM', 'INT', 'HUP'])
      assert.match(run, new RegExp(`^trap 'kjx_forward ${sig}' ${sig}$`, 'm'));
    assert.match(
      run,
      /^\/usr\/bin\/chpst -P \/bin\/sh -c '\/usr\/local\/bin\/tracer --events '\\''sched:\*'\\''' &$/m,
    );
    assert.match(run, /^kjx_wait_child tracer$/m);
    assert.doesNotMatch(
      run,
      /^exec \/usr\/bin\/chpst/m,
      'runsv must not be the parent of a program that sends SIGUSR1',
    );
    // INT instead of TERM, through control/t
    assert.match(text(tree, '/etc/sv/tracer/control/t'), /kill -s INT "\$pid"/);
    assert.equal(tree.get('/etc/sv/workload/control/t'), undefined);
  });

  test("needs: run waits for them; the dependency's finish stops its dependents", () => {
    assert.match(text(tree, '/etc/sv/workload/run'), /^kjx_begin workload 1 30 tracer$/m);
    assert.match(text(tree, '/etc/sv/web/run'), /^kjx_begin web 1 30 workload ssh$/m);
    assert.match(text(tree, '/etc/sv/tracer/finish'), /^kjx_finish tracer "\$1" "\$2" workload$/m);
    assert.match(text(tree, '/etc/sv/workload/finish'), /^kjx_finish workload "\$1" "\$2" web$/m);
    assert.match(text(tree, '/etc/sv/ssh/finish'), /^kjx_finish ssh "\$1" "\$2" web$/m);
    assert.match(text(tree, '/etc/sv/web/finish'), /^kjx_finish web "\$1" "\$2"$/m);
  });

  test('user, env, finish command with a timeout, restart policy', () => {
    const run = text(tree, '/etc/sv/workload/run');
    assert.match(run, /^export HOME=\/home\/dev USER=dev LOGNAME=dev$/m);
    assert.match(
      run,
      /^kjx_set_ready workload \$\$\n(?:#.*\n)?export MODE='a b'\nexec /m,
      'env last, just before exec',
    );
    assert.match(run, /^exec \/usr\/bin\/chpst -P -u dev \/usr\/local\/bin\/workload$/m);
    const finish = text(tree, '/etc/sv/workload/finish');
    assert.match(finish, /^timeout -s KILL 5 \/bin\/sh -c 'echo "done: \$1"' <\/dev\/null$/m);
    assert.match(finish, /^kjx_restart workload on-failure "\$1"$/m);
    assert.match(text(tree, '/etc/sv/db/finish'), /^kjx_restart db never "\$1"$/m);
    assert.match(text(tree, '/etc/sv/db/run'), /^kjx_begin db 3 7$/m);
  });

  test('file, port and check readiness start a poller before exec', () => {
    assert.match(
      text(tree, '/etc/sv/web/run'),
      /^kjx_poll_ready web port 1F90\nexec \/usr\/bin\/chpst -P httpd -f -p 8080$/m,
    );
    assert.match(text(tree, '/etc/sv/sock/run'), /^kjx_poll_ready sock file \/run\/sockd\.sock$/m);
    assert.match(text(tree, '/etc/sv/db/run'), /^kjx_poll_ready db check db-ping$/m);
    assert.match(text(tree, '/etc/sv/db/check'), /^kjx_is_ready db$/m);
  });

  test('svlogd logs into /var/log/NAME with rotation', () => {
    assert.equal(
      text(tree, '/etc/sv/workload/log/run').split('\n').slice(2).join('\n'),
      "mkdir -p /var/log/workload\nprintf 's%s\\nn%s\\n' 1000000 5 >/var/log/workload/config\nexec svlogd -tt /var/log/workload\n",
    );
    assert.equal(tree.get('/etc/sv/tracer/log/run'), undefined);
  });

  test('ssh: host keys at first boot, fingerprint marker, dropbear without passwords, ready on its port', () => {
    const run = text(tree, '/etc/sv/ssh/run');
    assert.match(run, /^kjx_hostkey ed25519 \/etc\/dropbear\/dropbear_ed25519_host_key \|\| exit 1$/m);
    assert.match(run, /^ {2}kjx_say "hostkey type=\$kjx_type sha256=\$kjx_fp"$/m);
    assert.match(run, /^kjx_poll_ready ssh port 0016$/m);
    assert.match(
      run,
      /^exec \/usr\/bin\/chpst -P dropbear -F -E -s -g -p 22 -r \/etc\/dropbear\/dropbear_ed25519_host_key$/m,
    );
    assert.doesNotMatch(run, / -B\b/, 'blank passwords are never allowed');
    const noRoot = parseSpec('ssh: {rootLogin: false, port: 2222}\n', '/srv/kjx.yaml');
    const ssh = guestServices(noRoot).find((s) => s.name === 'ssh')!;
    assert.equal(ssh.spec.run, 'dropbear -F -E -s -g -w -p 2222 -r /etc/dropbear/dropbear_ed25519_host_key');
  });

  test('console: a login shell on the console, in its own session, stopped with KILL', () => {
    const run = text(tree, '/etc/sv/console/run');
    assert.match(run, /^exec <\/dev\/console >\/dev\/console 2>&1$/m);
    assert.match(run, /^exec setsid cttyhack \/bin\/sh -l$/m);
    assert.match(text(tree, '/etc/sv/console/control/t'), /kill -s KILL/);
    const none = parseSpec(
      'console: none\nssh: {enabled: false}\nkernel: {image: ./bzImage, modules: []}\n',
      '/srv/kjx.yaml',
    );
    assert.deepEqual(guestServices(none), []);
  });

  test('acpid: busybox acpid for the ACPI power button, with a Debian kernel or when evdev is asked for', () => {
    assert.equal(
      text(tree, '/etc/sv/acpid/run').includes('exec /usr/bin/chpst -P acpid -d -c /etc/acpi'),
      true,
    );
    const local = (modules: string) =>
      guestServices(parseSpec(`kernel: {image: ./bzImage, modules: [${modules}]}\n`, '/srv/kjx.yaml')).map(
        (s) => s.name,
      );
    assert.deepEqual(local(''), ['ssh', 'console']);
    assert.deepEqual(local('button, evdev'), ['ssh', 'console', 'acpid']);
  });

  test('every generated script is valid busybox sh', { skip: skipBusybox }, () => {
    for (const [path, e] of tree) {
      if (e.type !== 'file') continue;
      const r = busyboxParses(e.data);
      assert.ok(r.ok, `${path}: ${r.error}`);
    }
    assert.ok(spec);
  });
});

test("programWords: plain command lines are exec'd as they are, anything else through sh -c", () => {
  assert.equal(programWords('httpd -f -p 8080'), 'httpd -f -p 8080');
  assert.equal(programWords('/usr/bin/x --a=b,c:d'), '/usr/bin/x --a=b,c:d');
  for (const run of ['a && b', 'echo $HOME', 'FOO=1 prog', "prog 'quoted'", 'a | b', 'prog *'])
    assert.equal(programWords(run), `/bin/sh -c '${run.replace(/'/g, `'\\''`)}'`, run);
});

test('signal readiness as a non-root user: the wrapper runs as that user and writes only its own directory', {
  skip: skipBusybox,
}, () => {
  const spec = parseSpec(
    'users:\n  - name: dev\nservices:\n  t:\n    run: tracer --x\n    ready: signal\n    user: dev\n',
    '/srv/kjx.yaml',
  );
  const services = guestServices(spec);
  const run = text(serviceTree(spec, services), '/etc/sv/t/run');
  assert.match(run, /^chown dev "\$KJX_STATE\/svc\/t\/user"$/m);
  assert.match(run, /^kjx_poll_ready t file "\$KJX_STATE\/svc\/t\/user"\/signalled$/m);
  assert.match(run, /^exec \/usr\/bin\/chpst -P -u dev \/bin\/sh -c '/m);
  assert.match(run, /trap '\\''echo \$\$ >"\$KJX_STATE\/svc\/t\/user"\/signalled'\\'' USR1/);
  assert.match(run, /kjx_wait_child t "\$KJX_STATE\/svc\/t\/user"'$/m);
  assert.doesNotMatch(run, /chown dev "\$KJX_STATE\/svc\/t"$/m, "the state directory itself stays root's");
  const r = busyboxParses(run);
  assert.ok(r.ok, r.error);
});
