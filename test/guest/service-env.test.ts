/**
 * A service's `env` cannot break kjx's own shell: the generated run scripts, run
 * for real by Debian's busybox sh (the guest's shell) with the service library
 * against a temporary state directory, set IFS, PATH and ENV only for the program.
 * runsv, the console and the readiness poller are stubs; `chpst` is a stub that
 * records the environment the program would get.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { GUEST_PATH } from '../../src/guest/layout.js';
import { serviceLib, serviceLibValues } from '../../src/guest/service-lib.js';
import { guestServices, serviceTree } from '../../src/guest/services.js';
import type { FileEntry } from '../../src/rootfs/tree.js';
import { parseSpec } from '../../src/spec/load.js';
import { busyboxFor } from '../helpers/busybox.js';
import { throwsKjx } from '../helpers/kjx-error.js';

/** What every service below sets: each one would break kjx's shell if it ran with it. */
const HOSTILE_ENV = `{IFS: "/", PATH: /nowhere, ENV: /tmp/kjx-evil-env, CDPATH: /nowhere, PS4: "$(touch /tmp/kjx-evil-ps4)", LOG_LEVEL: debug}`;

const SPEC = `
users:
  - name: dev
services:
  plain:
    run: /opt/app --serve
    env: ${HOSTILE_ENV}
  shell:
    run: echo "$LOG_LEVEL" && exec /opt/app
    ready: {port: 8080}
    env: ${HOSTILE_ENV}
  sig:
    run: /opt/tracer
    ready: signal
    env: ${HOSTILE_ENV}
`;

let dir: string;
let state: string;
let lib: string;
let chpst: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'kjx-svenv-'));
  state = join(dir, 'state');
  mkdirSync(join(state, 'ready'), { recursive: true });
  mkdirSync(join(state, 'svc'));
  lib = join(dir, 'sv.sh');
  writeFileSync(
    lib,
    `${serviceLib({ ...serviceLibValues(), KJX_STATE: state })}
# test stubs: no console, no runsv, no poller process
kjx_say() { echo "SAY $1" >>"$KJX_STATE/out"; }
kjx_sleep() { :; }
sv() { :; }
kjx_poll_ready() { echo "POLL $* IFS=[$IFS] PATH=$PATH" >>"$KJX_STATE/out"; }
`,
  );
  // the program's side: chpst as a stub that writes down what it was given, in
  // Node (a shell would put its own IFS into the environment it shows)
  chpst = join(dir, 'chpst');
  writeFileSync(
    chpst,
    [
      `#!${process.execPath}`,
      "const fs = require('node:fs');",
      `const out = ${JSON.stringify(state)} + '/program.' + process.pid;`,
      "const env = Object.entries(process.env).map(([k, v]) => k + '=' + v).sort();",
      "fs.writeFileSync(out, ['ARGV ' + process.argv.slice(2).join(' '), ...env, ''].join('\\n'));",
      `fs.appendFileSync(${JSON.stringify(state)} + '/programs', process.pid + '\\n');`,
      '',
    ].join('\n'),
  );
  chmodSync(chpst, 0o755);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** The generated run script of a service, pointed at the test's library and chpst. */
function runScript(name: string): string {
  const spec = parseSpec(SPEC, '/srv/kjx.yaml');
  const tree = serviceTree(spec, guestServices(spec));
  const text = (tree.get(`/etc/sv/${name}/run`) as FileEntry).data.toString('utf8');
  return text.replaceAll('. /usr/lib/kjx/sv.sh', `. ${lib}`).replaceAll('/usr/bin/chpst', chpst);
}

/** Run a run script under busybox sh; what the stubs recorded, and the program's environment. */
function run(busybox: string, name: string) {
  for (const f of ['out', 'programs']) rmSync(join(state, f), { force: true });
  const r = spawnSync(busybox, ['sh', '-c', runScript(name)], {
    encoding: 'utf8',
    timeout: 20_000,
    // what runsvdir hands a run script: PATH only (runit stage 2 runs it under `env -`)
    env: { PATH: GUEST_PATH },
  });
  const read = (f: string) => (existsSync(join(state, f)) ? readFileSync(join(state, f), 'utf8') : '');
  const pids = read('programs').trim().split('\n').filter(Boolean);
  assert.equal(pids.length, 1, `the program did not start once:\n${r.stdout}${r.stderr}`);
  const program = read(`program.${pids[0]}`);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, out: read('out'), program };
}

function assertProgramEnv(program: string): void {
  assert.match(program, /^IFS=\/$/m);
  assert.match(program, /^PATH=\/nowhere$/m);
  assert.match(program, /^ENV=\/tmp\/kjx-evil-env$/m);
  assert.match(program, /^LOG_LEVEL=debug$/m);
  assert.match(program, /^HOME=\/root$/m);
}

describe('service env under busybox sh', () => {
  test('a started service: kjx marks it up and ready with its own IFS and PATH; only chpst and the program get env', (t) => {
    const busybox = busyboxFor(t);
    if (!busybox) return;
    const r = run(busybox, 'plain');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.program, /^ARGV -P \/opt\/app --serve$/m);
    assertProgramEnv(r.program);
    assert.match(
      r.out,
      /^SAY service name=plain state=up t=[0-9.]+\nSAY service name=plain state=ready t=[0-9.]+\n$/,
    );
    assert.match(readFileSync(join(state, 'ready', 'plain'), 'utf8'), /^[0-9]+\n$/);
    assert.equal(existsSync('/tmp/kjx-evil-ps4'), false);
  });

  test('a polled service: the poller starts with kjx’s IFS and PATH; the program under sh -c gets env', (t) => {
    const busybox = busyboxFor(t);
    if (!busybox) return;
    const r = run(busybox, 'shell');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.out, /^POLL shell port 1F90 IFS=\[ \t\n\] PATH=\/usr\/local\/sbin:/m);
    assert.match(r.program, /^ARGV -P \/bin\/sh -c echo "\$LOG_LEVEL" && exec \/opt\/app$/m);
    assertProgramEnv(r.program);
  });

  test('ready: signal: the wrapper keeps kjx’s environment, the program gets env', (t) => {
    const busybox = busyboxFor(t);
    if (!busybox) return;
    const r = run(busybox, 'sig');
    assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
    assert.match(r.program, /^ARGV -P \/opt\/tracer$/m);
    assertProgramEnv(r.program);
    assert.match(r.program, /^KJX_NOTIFY_PID=[0-9]+$/m);
    // the wrapper, running kjx's code after the program started, wrote the child's pid
    assert.match(readFileSync(join(state, 'svc', 'sig', 'child'), 'utf8'), /^[0-9]+\n$/);
  });
});

test("names that are kjx's own are refused where they are written", () => {
  const e = throwsKjx(
    () => parseSpec('services:\n  a:\n    run: x\n    env:\n      KJX_NOTIFY_PID: "1"\n', '/srv/kjx.yaml'),
    'SPEC_INVALID',
    /services\.a\.env\.KJX_NOTIFY_PID: expected a name that does not start with "KJX_" or "kjx_"/,
  );
  assert.equal(e.position?.line, 5);
  assert.throws(() => parseSpec('services:\n  a: {run: x, env: {kjx_dir: /}}\n', '/srv/kjx.yaml'), /kjx_dir/);
});
