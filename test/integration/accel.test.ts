/**
 * `--accel auto` on this project's machines: /dev/kvm is there, but KVM does not run
 * guests (nested virtualization). The probe must notice within its bounded time,
 * pick TCG, leave no QEMU behind, and answer the next time from its cache.
 * (On a host where KVM works this test fails on purpose: the expectation is TCG.)
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { KjxError } from '../../src/util/errors.js';
import { chooseAccel, DEFAULT_PROBE_TIMEOUT_MS } from '../../src/vm/accel.js';
import { removeAll, runKjx, workspace } from '../helpers/kjx.js';

/** QEMUs whose command line names this path (ours: the kernel lives in our workspace). */
function qemusUsing(path: string): string[] {
  const r = spawnSync('pgrep', ['-a', '-f', `qemu-system.*${path}`], { encoding: 'utf8' });
  return r.stdout.trim().split('\n').filter(Boolean);
}

describe('chooseAccel on this machine', () => {
  let ws: string;
  let kernel: string;
  let cache: string;

  before(() => {
    ws = workspace('accel');
    const r = runKjx(['build'], { cwd: ws });
    assert.equal(r.code, 0, `kjx build failed:\n${r.stderr}`);
    kernel = join(ws, 'dist', 'vmlinuz');
    cache = mkdtempSync(join(tmpdir(), 'kjx-accel-cache-'));
  });
  after(() => removeAll(ws, cache));

  test('auto picks TCG within the probe bound, kills the probe, and caches the verdict', async () => {
    assert.ok(existsSync('/dev/kvm'), 'this test is about a host with /dev/kvm');
    let t = performance.now();
    const first = await chooseAccel('auto', { kernel, cacheDir: cache });
    const probeMs = performance.now() - t;
    assert.equal(first.accel, 'tcg', `KVM was chosen: ${first.reason}`);
    assert.equal(first.cached, false);
    assert.ok(probeMs < DEFAULT_PROBE_TIMEOUT_MS + 5000, `the probe took ${Math.round(probeMs)} ms`);
    assert.match(first.reason, /KVM/);
    assert.deepEqual(qemusUsing(ws), [], 'the probe QEMU is still running');

    t = performance.now();
    const second = await chooseAccel('auto', { kernel, cacheDir: cache });
    const cachedMs = performance.now() - t;
    assert.deepEqual(second, { ...first, cached: true });
    assert.ok(cachedMs < 1500, `a cached verdict took ${Math.round(cachedMs)} ms`);
  });

  test('kvm asked for explicitly is an error with a hint, not a hang', async () => {
    await assert.rejects(
      chooseAccel('kvm', { kernel, cacheDir: cache }),
      (e: unknown) =>
        e instanceof KjxError && /--accel kvm/.test(e.message) && /--accel tcg/.test(e.hint ?? ''),
    );
    assert.deepEqual(qemusUsing(ws), []);
  });
});
