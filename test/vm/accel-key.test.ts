/**
 * What `chooseAccel` asks of the host on every boot once its verdict is cached: with
 * the build record's sha256 it does not read the kernel, and QEMU's version comes from
 * the cache kept per binary, so a boot starts no `qemu --version`.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { chooseAccel } from '../../src/vm/accel.js';

const dirs: string[] = [];
const FIRST = '0.0.1';
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A QEMU that logs each `--version` and, booted, prints a kernel line: KVM "runs guests". */
function fakeQemu(dir: string, version: string): { qemu: string; asked: () => number } {
  const log = join(dir, 'versions.log');
  const qemu = join(dir, 'qemu-system-x86_64');
  writeFileSync(
    qemu,
    `#!/bin/sh
if [ "$1" = --version ]; then echo v >>'${log}'; echo 'QEMU emulator version ${version}'; exit 0; fi
echo 'Linux version 6.1.0-fake'
exec sleep 30
`,
  );
  chmodSync(qemu, 0o755);
  // a second version of the binary replaces it, its log goes on
  if (version === FIRST) writeFileSync(log, '');
  return { qemu, asked: () => readFileSync(log, 'utf8').split('\n').filter(Boolean).length };
}

test('a cached verdict: the kernel is not read when its sha256 is known, QEMU is asked its version once per binary', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kjx-accel-key-'));
  dirs.push(dir);
  const device = join(dir, 'kvm');
  writeFileSync(device, '');
  const { qemu, asked } = fakeQemu(dir, FIRST);
  const o = {
    // no such file: reading it would fail with INPUT_NOT_FOUND
    kernel: join(dir, 'no-vmlinuz'),
    kernelSha256: 'a'.repeat(64),
    cacheDir: join(dir, 'cache'),
    kvmDevice: device,
    qemu,
  };
  const first = await chooseAccel('auto', o);
  assert.equal(first.accel, 'kvm', first.reason);
  assert.equal(first.cached, false);
  assert.deepEqual(await chooseAccel('auto', o), { ...first, cached: true });
  assert.deepEqual(await chooseAccel('auto', o), { ...first, cached: true });
  assert.equal(asked(), 1, 'QEMU was asked for its version on every call');

  // a binary touched but the same version: asked again, same verdict
  utimesSync(qemu, new Date(), new Date(Date.now() + 5000));
  assert.deepEqual(await chooseAccel('auto', o), { ...first, cached: true });
  assert.equal(asked(), 2);
  // an upgrade: asked again, and its verdict is its own
  fakeQemu(dir, '0.0.2');
  const upgraded = await chooseAccel('auto', o);
  assert.equal(upgraded.cached, false);
  assert.equal(asked(), 3);
  assert.deepEqual(await chooseAccel('auto', o), { ...upgraded, cached: true });
  assert.equal(asked(), 3);

  // without the sha256 the kernel is read to name it, and its absence is the error it was
  const { kernelSha256: _, ...unknown } = o;
  await assert.rejects(chooseAccel('auto', unknown), { code: 'INPUT_NOT_FOUND' });
});
