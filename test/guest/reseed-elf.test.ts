import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CLOCK_FAILED, reseedElf } from '../../src/guest/reseed-elf.js';
import { parseElf } from '../../src/rootfs/elf.js';

test('the reseed helper is a static x86-64 executable our own ELF reader accepts', () => {
  const elf = reseedElf();
  const info = parseElf(elf, 'reseed');
  assert.equal(info.machine, 0x3e);
  assert.equal(info.class, 64);
  assert.equal(info.interp, undefined, 'static: no interpreter');
  assert.deepEqual(info.needed, []);
  assert.ok(elf.length < 512);
});

test('the reseed helper runs and asks the kernel to reseed (0), or says why not (an errno), never crashes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kjx-reseed-'));
  try {
    const bin = join(dir, 'reseed');
    writeFileSync(bin, reseedElf(), { mode: 0o755 });
    const r = spawnSync(bin, [], { encoding: 'utf8' });
    assert.equal(r.signal, null, 'killed by a signal: the machine code is wrong');
    // 0: reseeded (root with CAP_SYS_ADMIN); 1 (EPERM) for a user without it
    assert.ok(r.status === 0 || r.status === 1, `status ${r.status}`);
    if (process.getuid?.() === 0) assert.equal(r.status, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the reseed helper sets the clock from a leading decimal EPOCH, and says when the kernel refuses it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kjx-reseed-'));
  try {
    const bin = join(dir, 'reseed');
    writeFileSync(bin, reseedElf(), { mode: 0o755 });
    const status = (arg: string) => {
      const r = spawnSync(bin, [arg], { encoding: 'utf8' });
      assert.equal(
        r.signal,
        null,
        `killed by a signal with ${JSON.stringify(arg)}: the machine code is wrong`,
      );
      return r.status;
    };
    // no digits first: no clock to set, and the host's is left alone
    for (const arg of ['', 'abc', '.5', '-1'])
      assert.equal(status(arg), process.getuid?.() === 0 ? 0 : 1, arg);
    if (process.getuid?.() === 0) {
      // past the last second the kernel may set: EINVAL (22) from clock_settime, after a good reseed.
      // (A valid epoch would move this host's clock, so the guest suites test that one: snapshot.test.ts.)
      assert.equal(status('99999999999.5'), CLOCK_FAILED + 22);
      assert.equal(status('999999999999999999999'), CLOCK_FAILED + 22, 'twelve digits read, no overflow');
    } else assert.equal(status('99999999999'), 1, "the reseed's EPERM comes first, no clock is tried");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
