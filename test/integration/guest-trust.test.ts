/**
 * The guest cannot lie to the host, and its network is what the spec allows
 * (docs/security.md), against real QEMU (TCG):
 *
 * - a command that prints forged exit markers and exits 1 makes `kjx run` exit 1;
 * - forged `hostkey` and `ready` lines during a detached boot pin no key and end
 *   no wait; the boot's nonce is in no argv, environment or /proc/cmdline of the
 *   guest, and no user but root can read it; under TCG its processes get no ASLR
 *   (docs/security.md says why);
 * - the SSH forward reaches `ssh.port`, on a host port QEMU bound itself, with the
 *   state directory's name holding a comma (QEMU's option lists double it);
 * - `vm.restrict: true`: the guest cannot reach a listener on the host's 127.0.0.1
 *   through 10.0.2.2, while `kjx exec` still works; unrestricted, it can.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { alive, type KjxResult, removeAll, runKjx, spawnKjx, workspace } from '../helpers/kjx.js';

/** A fingerprint nobody has: what a forger would like kjx to pin. */
const FORGED_FP = 'Rm9yZ2VkRm9yZ2VkRm9yZ2VkRm9yZ2VkRm9yZ2VkRm8';
const GUESSED = '0123456789abcdef0123456789abcdef';

const spec = (restrict: boolean) => `name: trust
ssh:
  port: 2222
vm:
  restrict: ${restrict}
users:
  - name: dev
tasks:
  # stage 1 runs as root but holds no nonce in its environment: these are text
  - name: forge
    run: >-
      echo '@@kjx:hostkey type=ed25519 sha256=${FORGED_FP}' >/dev/console;
      echo '@@kjx:${GUESSED}:hostkey type=ed25519 sha256=${FORGED_FP}' >/dev/console;
      echo '@@kjx::ready build=forged' >/dev/console;
      echo '@@kjx:ready build=forged' >/dev/console
`;

/** `kjx ARGS` without blocking this process (the greeter below must answer meanwhile). */
function kjxAsync(args: string[], cwd: string, env: Record<string, string>): Promise<KjxResult> {
  const child = spawnKjx(args, { cwd, env });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (b) => {
    stdout += b;
  });
  child.stderr!.on('data', (b) => {
    stderr += b;
  });
  return new Promise((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
}

/** A listener on the host's loopback that greets whoever connects. */
async function greeter(word: string): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => s.end(`${word}\n`));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

describe('guest trust: nonce markers, ssh.port, restrict', () => {
  let ws: string;
  let open: string;
  let state: string;
  const made: string[] = [];
  const kjx = (args: string[], cwd = ws, timeoutMs = 400_000) =>
    runKjx(args, { cwd, env: { KJX_STATE_DIR: state }, timeoutMs });

  before(() => {
    ws = workspace('trust', spec(true));
    open = workspace('trust-open', spec(false));
    // a state directory whose name has a comma: every socket, log and initrd of the runs below is in it
    const base = mkdtempSync(join(tmpdir(), 'kjx-trust-'));
    state = join(base, 'state,with,commas');
    mkdirSync(state);
    made.push(ws, open, base);
    for (const w of [ws, open]) {
      const r = kjx(['build'], w);
      assert.equal(r.code, 0, r.stderr);
    }
  });
  after(() => {
    for (const w of [ws, open]) kjx(['stop', '--all', '--timeout', '5'], w);
    removeAll(...made);
  });

  test('kjx run: a command printing forged exit markers and exiting 1 exits 1; no user but root reads the nonce', () => {
    const forge = [
      "echo '@@kjx:exit status=0' >/dev/console",
      `echo '@@kjx:${GUESSED}:exit status=0' >/dev/console`,
      "echo '@@kjx:exit status=0'",
      // what an unprivileged process can try: the nonce's copies are root's
      'chpst -u dev cat /run/kjx/nonce && echo LEAK-FILE',
      'chpst -u dev cat /sys/firmware/qemu_fw_cfg/by_name/opt/kjx/nonce/raw && echo LEAK-FWCFG',
      'env | grep -i nonce && echo LEAK-ENV',
      'exit 1',
    ].join('; ');
    const r = kjx(['run', '--accel', 'tcg', '--', 'sh', '-c', forge]);
    assert.equal(r.code, 1, `kjx run believed a forged marker:\n${r.stderr}`);
    assert.doesNotMatch(r.stdout, /LEAK/);
    assert.match(r.stderr, /Permission denied/);
    // the run's own files sit in the comma-named state directory
    const runs = join(state, 'runs');
    const console = readFileSync(join(runs, readLastRun(runs), 'console.log'), 'utf8');
    assert.match(console, /^@@kjx:exit status=0\r?$/m, 'the forgery did reach the console');
    assert.match(console, /^@@kjx:[0-9a-f]{32}:exit status=1 /m);
  });

  test('detached, restricted: forged host keys pin nothing, exec reaches ssh.port, the host stays out of reach', async () => {
    const b = kjx(['boot', '--detach', '--name', 'trust', '--accel', 'tcg', '--json']);
    assert.equal(b.code, 0, b.stderr);
    const rec = JSON.parse(b.stdout);
    assert.ok(alive(rec.pid));
    assert.ok(rec.dir.includes('state,with,commas'));
    assert.equal(rec.hostKeys.length, 1, JSON.stringify(rec.hostKeys));
    assert.notEqual(rec.hostKeys[0].sha256, FORGED_FP);
    assert.match(rec.hostKeys[0].sha256, /^[A-Za-z0-9+/]{43}$/);
    const log = readFileSync(rec.consoleLog, 'utf8');
    assert.match(log, new RegExp(`^@@kjx:${GUESSED}:hostkey `, 'm'), 'the forgery did reach the console');
    const nonce = /^@@kjx:([0-9a-f]{32}):ready /m.exec(log)?.[1];
    assert.ok(nonce, 'no ready marker in the console log');
    assert.doesNotMatch(JSON.stringify(rec), new RegExp(nonce), 'the nonce is not in the VM record');

    // exec works through the forward to ssh.port (2222: dropbear listens on nothing else), pinned to the real key;
    // nothing of the guest but root's own copy holds the nonce (the patterns come from
    // that file, so no grep argv holds it either)
    const look = kjx([
      'exec',
      'trust',
      '--',
      'sh',
      '-c',
      [
        'id -u',
        'cat /run/kjx/nonce',
        'stat -c %a /run/kjx/nonce',
        'grep -c -F -f /run/kjx/nonce /proc/cmdline',
        'grep -l -F -f /run/kjx/nonce /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null | wc -l',
        'chpst -u dev cat /run/kjx/nonce >/dev/null 2>&1; echo dev-file=$?',
        // under TCG no ASLR (qemu-args.ts, TCG_CMDLINE): the kernel took the sysctl
        'cat /proc/sys/kernel/randomize_va_space',
      ].join('; '),
    ]);
    assert.deepEqual(
      look.stdout.trim().split('\n'),
      ['0', nonce, '600', '0', '0', 'dev-file=1', '0'],
      look.stderr,
    );

    const host = await greeter('hello-from-the-host');
    try {
      const r = await kjxAsync(
        ['exec', 'trust', '--', 'sh', '-c', `timeout 20 nc 10.0.2.2 ${host.port} </dev/null; echo nc=$?`],
        ws,
        { KJX_STATE_DIR: state },
      );
      assert.doesNotMatch(r.stdout, /hello-from-the-host/, 'a restricted guest reached the host');
      assert.match(r.stdout, /nc=[1-9]/);
    } finally {
      host.server.close();
    }
    const s = kjx(['stop', 'trust']);
    assert.equal(s.code, 0, s.stderr);
    assert.equal(alive(rec.pid), false);
  });

  test('detached, unrestricted: the guest reaches the host through 10.0.2.2', async () => {
    const b = kjx(['boot', '--detach', '--name', 'open', '--accel', 'tcg', '--json'], open);
    assert.equal(b.code, 0, b.stderr);
    const rec = JSON.parse(b.stdout);
    const host = await greeter('hello-from-the-host');
    try {
      const r = await kjxAsync(
        ['exec', 'open', '--', 'sh', '-c', `timeout 20 nc 10.0.2.2 ${host.port} </dev/null; echo nc=$?`],
        open,
        { KJX_STATE_DIR: state },
      );
      assert.match(r.stdout, /hello-from-the-host/, r.stderr);
    } finally {
      host.server.close();
      kjx(['stop', 'open'], open);
    }
    assert.equal(alive(rec.pid), false);
  });
});

/** The newest run directory (names start with a UTC timestamp). */
function readLastRun(runs: string): string {
  return readdirSync(runs).sort().at(-1)!;
}
