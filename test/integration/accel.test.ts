/**
 * `--accel auto` with the real kernel and the real QEMU: what the probe concludes
 * from what the host offers. Three hosts are made deterministic everywhere with a
 * fake KVM device (a file that opens read-write, or a path that does not exist) and
 * the fake QEMUs in test/fixtures/qemu/, which run the real QEMU with TCG standing in
 * for KVM:
 *
 * - no KVM device: TCG, naming the missing device, and no QEMU is started;
 * - a device that opens but guests never run (nested virtualization without nested
 *   KVM; the fake QEMU starts with its CPU stopped): TCG within the probe's bound,
 *   and the probe QEMU is gone;
 * - a KVM that runs guests (the kernel boots and prints): KVM.
 *
 * The last test is about this host as it is, whatever it offers; its expectation
 * is derived from the host, never fixed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chooseAccel, DEFAULT_PROBE_TIMEOUT_MS, kvmAccess } from '../../src/vm/accel.js';
import { REPO, removeAll, runKjx, workspace } from '../helpers/kjx.js';
import { kjxError } from '../helpers/kjx-error.js';
import { needsTool } from '../helpers/prereq.js';

const FAKE_QEMU = join(REPO, 'test', 'fixtures', 'qemu');

/**
 * What a probe may take beyond its own bound: `qemu --version`, hashing the kernel,
 * and ending QEMU (SIGTERM, SIGKILL after 500 ms). About 0.5 s on an idle host; the
 * margin is wide for a loaded 2-core one, yet far below what a hang would take (the
 * session's own fallback timer is the bound plus 60 s).
 */
const PROBE_OVERHEAD_MS = 20_000;

/** QEMUs whose command line names this path (ours: the kernel lives in our workspace). */
function qemusUsing(path: string): string[] {
  const r = spawnSync('pgrep', ['-a', '-f', `qemu-system.*${path}`], { encoding: 'utf8' });
  return r.stdout.trim().split('\n').filter(Boolean);
}

describe('chooseAccel with the real kernel and QEMU', { skip: needsTool('qemu-system-x86_64') }, () => {
  let ws: string;
  let kernel: string;
  let tmp: string;
  /** A KVM device that opens read-write, as on a host with KVM. */
  let device: string;
  const cache = (name: string) => join(tmp, `cache-${name}`);

  before(() => {
    ws = workspace('accel');
    const r = runKjx(['build'], { cwd: ws });
    assert.equal(r.code, 0, `kjx build failed:\n${r.stderr}`);
    kernel = join(ws, 'dist', 'vmlinuz');
    tmp = mkdtempSync(join(tmpdir(), 'kjx-accel-'));
    device = join(tmp, 'kvm');
    writeFileSync(device, '');
  });
  after(() => {
    removeAll(ws, tmp);
    assert.deepEqual(qemusUsing(ws), [], 'a probe QEMU outlived the tests');
  });

  test('no KVM device: TCG, naming the device, and no QEMU is started', async () => {
    const absent = join(tmp, 'no-kvm-here');
    // a QEMU that does not exist: looking it up, let alone starting it, would be an error
    const c = await chooseAccel('auto', {
      kernel,
      cacheDir: cache('absent'),
      kvmDevice: absent,
      qemu: join(tmp, 'no-qemu'),
    });
    assert.equal(c.accel, 'tcg');
    assert.equal(c.cached, false);
    assert.equal(c.reason, `${absent} does not exist (no KVM on this host); using TCG`);
  });

  test('a device that opens but guests never run: TCG within the bound, the probe QEMU gone, then cached', async () => {
    // the fake is first on PATH and found by its name, as the real one would be
    const path = process.env.PATH;
    process.env.PATH = `${join(FAKE_QEMU, 'kvm-hangs')}${delimiter}${path}`;
    try {
      const probeTimeoutMs = 2000;
      const o = { kernel, cacheDir: cache('hangs'), kvmDevice: device, probeTimeoutMs };
      const t0 = performance.now();
      const first = await chooseAccel('auto', o);
      const ms = performance.now() - t0;
      assert.equal(first.accel, 'tcg', first.reason);
      assert.equal(first.cached, false);
      assert.match(first.reason, /printed no kernel line within 2000 ms/);
      assert.ok(ms >= probeTimeoutMs - 100, `the probe gave up after ${Math.round(ms)} ms, before its bound`);
      assert.ok(ms < probeTimeoutMs + PROBE_OVERHEAD_MS, `the probe took ${Math.round(ms)} ms`);
      assert.deepEqual(qemusUsing(ws), [], 'the probe QEMU is still running');

      const second = await chooseAccel('auto', o);
      assert.deepEqual(second, { ...first, cached: true });
      // asked for explicitly, the cached "no" is an error with a way out
      await assert.rejects(chooseAccel('kvm', o), kjxError('VM_START', { hint: /--accel tcg/ }));
      assert.deepEqual(qemusUsing(ws), []);
    } finally {
      process.env.PATH = path;
    }
  });

  test('a KVM that runs guests: KVM, after the kernel printed, and the probe QEMU gone', async () => {
    const o = {
      kernel,
      cacheDir: cache('runs'),
      kvmDevice: device,
      qemu: join(FAKE_QEMU, 'kvm-runs', 'qemu-system-x86_64'),
      // TCG does KVM's work here: decompressing the kernel takes seconds, not milliseconds
      probeTimeoutMs: 300_000,
    };
    const first = await chooseAccel('auto', o);
    assert.equal(first.accel, 'kvm', first.reason);
    assert.equal(first.cached, false);
    assert.match(first.reason, /printed its first kernel line after \d+ ms/);
    assert.deepEqual(qemusUsing(ws), [], 'the probe QEMU is still running');
    assert.deepEqual(await chooseAccel('auto', o), { ...first, cached: true });
    assert.equal((await chooseAccel('kvm', o)).accel, 'kvm');
  });

  test('this host: the verdict follows from what it offers', async (t) => {
    const access = kvmAccess('/dev/kvm');
    const o = { kernel, cacheDir: cache('host') };
    const t0 = performance.now();
    const first = await chooseAccel('auto', o);
    const ms = performance.now() - t0;
    t.diagnostic(`/dev/kvm: ${access.ok ? 'opens' : access.why}; verdict ${first.accel}: ${first.reason}`);
    assert.deepEqual(qemusUsing(ws), [], 'the probe QEMU is still running');
    if (!access.ok) {
      assert.deepEqual(first, { accel: 'tcg', reason: `${access.why}; using TCG`, cached: false });
      assert.match(first.reason, /\/dev\/kvm/);
    } else {
      assert.equal(first.cached, false);
      assert.ok(ms < DEFAULT_PROBE_TIMEOUT_MS + PROBE_OVERHEAD_MS, `the probe took ${Math.round(ms)} ms`);
      assert.deepEqual(await chooseAccel('auto', o), { ...first, cached: true });
    }
    if (first.accel === 'kvm') assert.equal((await chooseAccel('kvm', o)).accel, 'kvm');
    else {
      await assert.rejects(
        chooseAccel('kvm', o),
        kjxError('VM_START', {
          message: /^--accel kvm: KVM cannot run guests on this host: /,
          hint: /--accel tcg/,
        }),
      );
    }
    assert.deepEqual(qemusUsing(ws), []);
  });
});
