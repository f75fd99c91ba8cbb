/**
 * The service library's logic, run for real by busybox sh (the guest's shell) against
 * a temporary state directory (sv, the console and sleeping are stubbed): readiness flags,
 * port detection from /proc/net/tcp, waiting for dependencies, the backoff of
 * kjx_begin, what finish does to dependents, and the restart policies; and the two
 * scripts that source it on their own: the readiness poller and boot-ready.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { portHex, readyPollScript } from '../../src/guest/readiness.js';
import { serviceLib, serviceLibValues } from '../../src/guest/service-lib.js';
import { bootReadyScript } from '../../src/guest/stages.js';
import { busyboxSh, needsBusybox } from '../helpers/busybox.js';

const skip = needsBusybox();

let state: string;
let lib: string;
before(() => {
  state = mkdtempSync(join(tmpdir(), 'kjx-svlib-'));
  mkdirSync(join(state, 'ready'));
  mkdirSync(join(state, 'svc'));
  lib = join(state, 'sv.sh');
  writeFileSync(
    lib,
    `${serviceLib({ ...serviceLibValues(), KJX_STATE: state })}
# test stubs: no console, no runsv, no sleeping
kjx_marker() { echo "MARK $1 $2" >>"$KJX_STATE/out"; }
kjx_sleep() { echo "SLEEP $1" >>"$KJX_STATE/out"; }
kjx_say() { echo "SAY $1" >>"$KJX_STATE/out"; }
sv() { echo "SV $*" >>"$KJX_STATE/out"; [ "$1" = status ] && cat "$KJX_STATE/status" 2>/dev/null; return 0; }
`,
  );
});
after(() => rmSync(state, { recursive: true, force: true }));

/** Run busybox sh with the library sourced; returns stdout and what the stubs recorded. */
function sh(body: string): { code: number | null; stdout: string; out: string[] } {
  rmSync(join(state, 'out'), { force: true });
  const r = busyboxSh(['-c', `. ${lib}\n${body}`], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.stderr, '', r.stderr);
  let out: string[] = [];
  try {
    out = readFileSync(join(state, 'out'), 'utf8').trim().split('\n');
  } catch {}
  return { code: r.status, stdout: r.stdout, out };
}

describe('readiness', { skip }, () => {
  test('a flag is ready only while the process it names lives', () => {
    assert.equal(sh('kjx_is_ready nothing').code, 1);
    assert.equal(sh('echo $$ >"$KJX_STATE/ready/a"; kjx_is_ready a').code, 0);
    assert.equal(sh('echo 999999999 >"$KJX_STATE/ready/a"; kjx_is_ready a').code, 1);
    const set = sh('kjx_set_ready b 4242');
    assert.equal(readFileSync(join(state, 'ready', 'b'), 'utf8'), '4242\n');
    assert.deepEqual(set.out, ['MARK b ready']);
    assert.match(set.stdout, /^kjx: ready t=[0-9.]+\n$/);
  });

  test('kjx_port_listening reads /proc/net/tcp: a listening port yes, a closed one no', async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      assert.equal(sh(`kjx_port_listening ${portHex(port)}`).code, 0);
    } finally {
      await new Promise((r) => server.close(r));
    }
    assert.equal(sh(`kjx_port_listening ${portHex(port)}`).code, 1);
    assert.equal(portHex(22), '0016');
    assert.equal(portHex(65535), 'FFFF');
  });

  test('kjx_wait_needs returns once every dependency is ready, saying what it waited for', () => {
    const r = sh(`
rm -f "$KJX_STATE/ready/"*
( echo $$ >"$KJX_STATE/ready/x" ) 
kjx_sleep() { echo "SLEEP $1" >>"$KJX_STATE/out"; echo $$ >"$KJX_STATE/ready/y"; }
kjx_wait_needs me x y`);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^kjx: waiting for y t=[0-9.]+\nkjx: ready: x y t=[0-9.]+\n$/);
    assert.deepEqual(r.out, ['SLEEP 0.1']);
  });
});

describe('start, finish and restart', { skip }, () => {
  test('kjx_begin: backoff doubles with quick failures, up to the maximum; records the start', () => {
    for (const [fails, wait] of [
      [0, undefined],
      [1, '2'],
      [2, '4'],
      [3, '8'],
      [9, '10'],
    ] as const) {
      mkdirSync(join(state, 'svc', 's'), { recursive: true });
      writeFileSync(join(state, 'svc', 's', 'fails'), `${fails}\n`);
      const r = sh('kjx_begin s 2 10');
      assert.equal(r.code, 0);
      assert.deepEqual(r.out, [...(wait ? [`SLEEP ${wait}`] : []), 'MARK s up'], `fails=${fails}`);
    }
    assert.match(readFileSync(join(state, 'svc', 's', 'started'), 'utf8'), /^[0-9]+\.[0-9]+\n$/);
  });

  test('kjx_finish: not ready any more, dependents marked and stopped', () => {
    writeFileSync(join(state, 'ready', 'dep'), '1\n');
    const r = sh('kjx_finish dep -1 9 w1 w2');
    assert.deepEqual(r.out, ['MARK dep down', `SV term /etc/service/w1`, `SV term /etc/service/w2`]);
    assert.match(r.stdout, /^kjx: stopped by signal 9 t=/);
    assert.throws(() => readFileSync(join(state, 'ready', 'dep')), /ENOENT/);
    assert.equal(readFileSync(join(state, 'svc', 'w1', 'stopped-by'), 'utf8'), 'dep\n');
  });

  test('kjx_restart: a dependent stopped by its dependency restarts without counting a failure', () => {
    mkdirSync(join(state, 'svc', 'w'), { recursive: true });
    writeFileSync(join(state, 'svc', 'w', 'fails'), '0\n');
    writeFileSync(join(state, 'svc', 'w', 'stopped-by'), 'dep\n');
    const r = sh('kjx_restart w never 0');
    assert.deepEqual(r.out, [], 'neither sv nor a marker');
    assert.match(r.stdout, /stopped because dep stopped; starts again once dep is ready/);
    assert.equal(readFileSync(join(state, 'svc', 'w', 'fails'), 'utf8'), '0\n');
  });

  test('kjx_restart: policies', () => {
    writeFileSync(join(state, 'status'), 'finish: /etc/service/p: (pid 9) 0s\n');
    mkdirSync(join(state, 'svc', 'p'), { recursive: true });
    const policy = (p: string, code: string) => sh(`kjx_restart p ${p} ${code}`).out;
    assert.deepEqual(policy('never', '0'), ['SV status /etc/service/p', 'SV down /etc/service/p']);
    assert.deepEqual(policy('on-failure', '0'), ['SV status /etc/service/p', 'SV down /etc/service/p']);
    // a failure counts; started just now, so the failures add up
    writeFileSync(join(state, 'svc', 'p', 'fails'), '2\n');
    const uptime = readFileSync('/proc/uptime', 'utf8').split(' ')[0];
    writeFileSync(join(state, 'svc', 'p', 'started'), `${uptime}\n`);
    assert.deepEqual(policy('on-failure', '1'), ['SV status /etc/service/p']);
    assert.equal(readFileSync(join(state, 'svc', 'p', 'fails'), 'utf8'), '3\n');
    // a run that lasted long enough starts the count over
    writeFileSync(join(state, 'svc', 'p', 'started'), '0.5\n');
    assert.deepEqual(policy('always', '-1'), ['SV status /etc/service/p']);
    assert.equal(readFileSync(join(state, 'svc', 'p', 'fails'), 'utf8'), '1\n');
    // stopped on purpose (sv down, shutdown): nothing to restart, the count resets
    writeFileSync(join(state, 'status'), 'finish: /etc/service/p: (pid 9) 0s, want down\n');
    assert.deepEqual(policy('never', '1'), ['SV status /etc/service/p']);
    assert.equal(readFileSync(join(state, 'svc', 'p', 'fails'), 'utf8'), '0\n');
  });
});

/** Run a script that sources the test's library by itself (busybox sh, as the guest would). */
function script(text: string, args: string[] = []): { code: number | null; stdout: string; out: string[] } {
  rmSync(join(state, 'out'), { force: true });
  const r = busyboxSh(['-c', text, 'script', ...args], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.stderr, '', r.stderr);
  const out = existsSync(join(state, 'out'))
    ? readFileSync(join(state, 'out'), 'utf8').trim().split('\n')
    : [];
  return { code: r.status, stdout: r.stdout, out };
}

describe('the scripts that source the library', { skip }, () => {
  test('ready-poll marks a service ready once its file exists, while the process lives; never for a dead one', () => {
    const poll = readyPollScript({ KJX_SV_LIB: lib });
    const flag = join(state, 'flag');
    writeFileSync(flag, '');
    mkdirSync(join(state, 'svc', 'f'), { recursive: true });
    rmSync(join(state, 'ready', 'f'), { force: true });
    const r = script(poll, ['f', String(process.pid), 'file', flag]);
    assert.equal(r.code, 0);
    assert.deepEqual(r.out, ['MARK f ready']);
    assert.equal(readFileSync(join(state, 'ready', 'f'), 'utf8'), `${process.pid}\n`);
    assert.equal(existsSync(join(state, 'svc', 'f', 'poller')), false, 'the poller removes its pid file');
    rmSync(join(state, 'ready', 'f'));
    const dead = script(poll, ['f', '999999999', 'file', flag]);
    assert.deepEqual(dead.out, []);
    assert.equal(existsSync(join(state, 'ready', 'f')), false);
  });

  test('boot-ready waits for the services that are there, names the stragglers, says ready, runs the hook', () => {
    const sv = join(state, 'service');
    mkdirSync(join(sv, 'up'), { recursive: true });
    mkdirSync(join(sv, 'slow'), { recursive: true });
    const hook = join(state, 'hook');
    writeFileSync(hook, '#!/bin/sh\necho HOOK\n');
    chmodSync(hook, 0o755);
    const libHere = join(state, 'sv-here.sh');
    writeFileSync(libHere, `. ${lib}\nKJX_SV=${sv}\n`);
    writeFileSync(join(state, 'ready', 'up'), `${process.pid}\n`);
    rmSync(join(state, 'ready', 'slow'), { force: true });
    const ready = (services: string[], timeout: number) =>
      script(
        bootReadyScript({ buildId: 'b1d', services, timeout }, { KJX_SV_LIB: libHere, KJX_RUN_HOOK: hook }),
      );
    // `gone` has no service directory (a run VM left it out): not waited for
    const ok = ready(['up', 'gone'], 5);
    assert.equal(ok.code, 0);
    assert.match(ok.out.join('\n'), /^SAY ready build=b1d kernel=\S+ uptime=[0-9.]+$/);
    assert.equal(ok.stdout, 'HOOK\n');
    const late = ready(['up', 'slow'], 0);
    assert.match(late.out.join('\n'), /^SAY ready build=b1d kernel=\S+ uptime=[0-9.]+ notready=slow$/);
    assert.equal(late.stdout, 'kjx: warning: not ready after 0 s: slow\nHOOK\n');
  });
});
