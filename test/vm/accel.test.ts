/**
 * chooseAccel against a fake QEMU: a tiny shell script that answers `--version`,
 * records its argv and pid, and then behaves like a KVM that runs guests (prints
 * the kernel banner), one that does not (prints nothing), or a QEMU that fails.
 * The KVM device is a path the test controls.
 */
import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { KjxError } from '../../src/util/errors.js';
import { chooseAccel, findExecutable, kvmAccess } from '../../src/vm/accel.js';
import { kjxError } from '../helpers/kjx-error.js';

type Behaviour = 'boots' | 'silent' | 'setup-only' | 'fails';

const SCRIPTS: Record<Behaviour, string> = {
  // what a kernel prints first under earlyprintk, then QEMU keeps running
  boots: 'echo "[    0.000000] Linux version 6.1.0-fake (test) #1 SMP"\nexec sleep 60',
  // KVM opens but the guest never runs: QEMU lives on, the console stays empty
  silent: 'exec sleep 60',
  // seen on this project's CI host with a non-host CPU model: the kernel's real-mode
  // setup code prints through the BIOS, then the kernel proper never runs
  'setup-only': 'echo "Probing EDD (edd=off to disable)... ok"\nexec sleep 60',
  fails: 'echo "qemu-system-x86_64: failed to initialize kvm: Permission denied" >&2\nexit 1',
};

const roots: string[] = [];
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

interface Fixture {
  dir: string;
  qemu: string;
  kernel: string;
  kvm: string;
  cache: string;
  /** pids of every non-`--version` run of the fake QEMU. */
  pids(): number[];
  /** argv of those runs, one string each. */
  argvs(): string[];
  /** How often it was asked `--version`. */
  versions(): number;
}

function fixture(behaviour: Behaviour, version = '7.2.0'): Fixture {
  const dir = mkdtempSync(join(tmpdir(), 'kjx-accel-'));
  roots.push(dir);
  const qemu = join(dir, 'qemu-system-x86_64');
  writeFileSync(
    qemu,
    [
      '#!/bin/sh',
      `if [ "$1" = "--version" ]; then echo v >> "${dir}/versions"; echo "QEMU emulator version ${version} (fake)"; exit 0; fi`,
      `echo $$ >> "${dir}/pids"`,
      `echo "$*" >> "${dir}/argv"`,
      SCRIPTS[behaviour],
      '',
    ].join('\n'),
  );
  chmodSync(qemu, 0o755);
  const kernel = join(dir, 'vmlinuz');
  writeFileSync(kernel, 'not really a kernel');
  const kvm = join(dir, 'kvm');
  writeFileSync(kvm, ''); // a KVM device that opens read-write
  const cache = join(dir, 'cache');
  const lines = (f: string) =>
    existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n').filter(Boolean) : [];
  return {
    dir,
    qemu,
    kernel,
    kvm,
    cache,
    pids: () => lines(join(dir, 'pids')).map(Number),
    argvs: () => lines(join(dir, 'argv')),
    versions: () => lines(join(dir, 'versions')).length,
  };
}

/**
 * A probe bound no loaded host reaches before a fake QEMU has printed or exited: the
 * probe returns at the first line or at QEMU's exit, so waiting is only what a test
 * of the bound itself asks for (with a short `probeTimeoutMs` of its own).
 */
const GENEROUS_PROBE_MS = 120_000;

/**
 * What a probe may take beyond its bound: `--version`, hashing, ending the fake
 * (under 100 ms on an idle host); wide for a loaded one, far below a hang.
 */
const PROBE_OVERHEAD_MS = 20_000;

const opts = (f: Fixture, extra: { probeTimeoutMs?: number } = {}) => ({
  kernel: f.kernel,
  qemu: f.qemu,
  cacheDir: f.cache,
  kvmDevice: f.kvm,
  probeTimeoutMs: GENEROUS_PROBE_MS,
  ...extra,
});

function assertGone(pids: number[]): void {
  for (const pid of pids) {
    assert.throws(() => process.kill(pid, 0), /ESRCH/, `the probe QEMU (pid ${pid}) is still running`);
  }
}

describe('chooseAccel', () => {
  test('tcg requested: tcg, and no QEMU is started', async () => {
    const f = fixture('boots');
    const c = await chooseAccel('tcg', opts(f));
    assert.deepEqual(c, { accel: 'tcg', reason: 'requested with --accel tcg', cached: false });
    assert.deepEqual(f.pids(), []);
  });

  test('auto without a KVM device: tcg, saying why, without a probe', async () => {
    const f = fixture('boots');
    const c = await chooseAccel('auto', { ...opts(f), kvmDevice: join(f.dir, 'no-such-kvm') });
    assert.equal(c.accel, 'tcg');
    assert.match(c.reason, /no-such-kvm does not exist/);
    assert.equal(c.cached, false);
    assert.deepEqual(f.pids(), []);
  });

  test('auto with a KVM device that does not open read-write: tcg, saying why', async () => {
    const f = fixture('boots');
    // a directory never opens O_RDWR (EISDIR), not even for root
    const dirAsDevice = join(f.dir, 'kvm-dir');
    mkdirSync(dirAsDevice);
    const c = await chooseAccel('auto', { ...opts(f), kvmDevice: dirAsDevice });
    assert.equal(c.accel, 'tcg');
    assert.match(c.reason, /is not readable and writable .*EISDIR/);
    assert.deepEqual(f.pids(), []);
    const r = kvmAccess(dirAsDevice);
    assert.equal(r.ok, false);
  });

  test('auto where the guest prints its first kernel line: kvm, probed once, then cached', async () => {
    const f = fixture('boots');
    const first = await chooseAccel('auto', opts(f));
    assert.equal(first.accel, 'kvm');
    assert.equal(first.cached, false);
    assert.match(first.reason, /first kernel line/);
    assert.equal(f.pids().length, 1);
    assertGone(f.pids());

    // the probe: KVM, the given kernel, no initrd, the early console, panic=-1
    const argv = f.argvs()[0]!;
    assert.match(argv, /accel=kvm/);
    assert.match(argv, new RegExp(`-kernel ${f.kernel}( |$)`));
    assert.doesNotMatch(argv, /-initrd/);
    assert.match(argv, /console=ttyS0/);
    assert.match(argv, /earlyprintk=serial,ttyS0/);
    assert.match(argv, /panic=-1/);
    assert.match(argv, /-no-reboot/);

    const second = await chooseAccel('auto', opts(f));
    assert.deepEqual({ ...second, cached: true }, { ...first, cached: true });
    assert.equal(second.cached, true);
    assert.equal(f.pids().length, 1, 'a cached verdict must not start QEMU again');
  });

  test('auto where KVM opens but the guest never prints: tcg within the probe timeout, QEMU killed', async () => {
    const f = fixture('silent');
    const t = performance.now();
    const c = await chooseAccel('auto', opts(f, { probeTimeoutMs: 500 }));
    const ms = performance.now() - t;
    assert.equal(c.accel, 'tcg');
    assert.match(c.reason, /printed no kernel line within 500 ms/);
    assert.ok(ms >= 450 && ms < 500 + PROBE_OVERHEAD_MS, `the probe took ${ms} ms`);
    assert.equal(f.pids().length, 1);
    assertGone(f.pids());

    const again = await chooseAccel('auto', opts(f, { probeTimeoutMs: 500 }));
    assert.equal(again.accel, 'tcg');
    assert.equal(again.cached, true);
    assert.equal(f.pids().length, 1);
  });

  test('output from before the kernel proper (BIOS, real-mode setup) is not a running guest', async () => {
    const f = fixture('setup-only');
    const c = await chooseAccel('auto', opts(f, { probeTimeoutMs: 500 }));
    assert.equal(c.accel, 'tcg');
    assert.match(c.reason, /printed no kernel line within 500 ms/);
    assertGone(f.pids());
  });

  test('auto where QEMU fails with KVM: tcg, with QEMU’s own words', async () => {
    const f = fixture('fails');
    const c = await chooseAccel('auto', opts(f));
    assert.equal(c.accel, 'tcg');
    assert.match(c.reason, /failed to initialize kvm: Permission denied/);
  });

  test('kvm requested where it works: kvm', async () => {
    const f = fixture('boots');
    const c = await chooseAccel('kvm', opts(f));
    assert.equal(c.accel, 'kvm');
    assertGone(f.pids());
  });

  test('kvm requested without a KVM device: an error that says so and hints --accel tcg', async () => {
    const f = fixture('boots');
    await assert.rejects(
      chooseAccel('kvm', { ...opts(f), kvmDevice: join(f.dir, 'absent') }),
      kjxError('VM_START', {
        message: /--accel kvm: KVM cannot run guests on this host: .*absent does not exist/,
        hint: /--accel tcg/,
      }),
    );
    assert.deepEqual(f.pids(), []);
  });

  test('kvm requested where guests never run: an error after the bounded probe, QEMU killed', async () => {
    const f = fixture('silent');
    await assert.rejects(
      chooseAccel('kvm', opts(f, { probeTimeoutMs: 400 })),
      kjxError('VM_START', { message: /printed no kernel line/, hint: /--accel tcg/ }),
    );
    assertGone(f.pids());
    // the cached "no" answers the next explicit request at once, with the same error
    await assert.rejects(chooseAccel('kvm', opts(f, { probeTimeoutMs: 400 })), KjxError);
    assert.equal(f.pids().length, 1);
  });

  test('the verdict is per kernel and per QEMU version', async () => {
    const f = fixture('boots');
    await chooseAccel('auto', opts(f));
    writeFileSync(f.kernel, 'another kernel');
    assert.equal((await chooseAccel('auto', opts(f))).cached, false);
    assert.equal((await chooseAccel('auto', opts(f))).cached, true);
    // same path, new QEMU version
    writeFileSync(f.qemu, readFileSync(f.qemu, 'utf8').replace('7.2.0', '8.0.0'));
    assert.equal((await chooseAccel('auto', opts(f))).cached, false);
    assert.equal(f.pids().length, 3);
    assertGone(f.pids());
  });

  test('the cache holds whole JSON files only, and a torn one is probed again', async () => {
    const f = fixture('boots');
    await chooseAccel('auto', opts(f));
    const dir = join(f.cache, 'accel');
    // the verdict, and QEMU's version kept per binary (qemuVersionCached)
    const all = readdirSync(dir);
    const files = all.filter((n) => !n.startsWith('version-'));
    assert.equal(files.length, 1, `temporary files left behind: ${all.join(', ')}`);
    assert.equal(all.length, 2, `temporary files left behind: ${all.join(', ')}`);
    const v = JSON.parse(readFileSync(join(dir, files[0]!), 'utf8'));
    assert.equal(v.accel, 'kvm');
    assert.equal(v.key.qemuPath, f.qemu);
    assert.match(v.key.kernelSha256, /^[0-9a-f]{64}$/);
    assert.equal(v.key.kvmPresent, true);
    assert.ok(v.key.host && v.key.qemuVersion.includes('7.2.0'));

    writeFileSync(join(dir, files[0]!), '{"format": 1, "acc');
    const c = await chooseAccel('auto', opts(f));
    assert.equal(c.cached, false);
    assert.equal(c.accel, 'kvm');
    assert.equal(f.pids().length, 2);
  });

  test('a cached verdict costs no `--version` and, given the sha256, no read of the kernel', async () => {
    const f = fixture('boots');
    // no such file: reading it would fail with INPUT_NOT_FOUND
    const o = { ...opts(f), kernel: join(f.dir, 'no-vmlinuz'), kernelSha256: 'a'.repeat(64) };
    const first = await chooseAccel('auto', o);
    assert.equal(first.accel, 'kvm', first.reason);
    assert.deepEqual(await chooseAccel('auto', o), { ...first, cached: true });
    assert.deepEqual(await chooseAccel('auto', o), { ...first, cached: true });
    assert.equal(f.versions(), 1, 'QEMU was asked for its version on every call');
    // the binary replaced by a newer QEMU: asked again, and its verdict is its own
    writeFileSync(f.qemu, readFileSync(f.qemu, 'utf8').replace('7.2.0', '8.0.0'));
    const upgraded = await chooseAccel('auto', o);
    assert.equal(upgraded.cached, false);
    assert.deepEqual(await chooseAccel('auto', o), { ...upgraded, cached: true });
    assert.equal(f.versions(), 2);
    assertGone(f.pids());
    // without the sha256 the kernel is read to name it, and its absence is the error it was
    const { kernelSha256: _, ...unknown } = o;
    await assert.rejects(chooseAccel('auto', unknown), kjxError('INPUT_NOT_FOUND'));
  });

  test('a QEMU that is not installed is HOST_TOOL_MISSING, not a silent TCG', async () => {
    const f = fixture('boots');
    await assert.rejects(
      chooseAccel('auto', { ...opts(f), qemu: join(f.dir, 'no-qemu-here') }),
      kjxError('HOST_TOOL_MISSING'),
    );
    assert.throws(() => findExecutable('kjx-no-such-qemu', f.dir), KjxError);
    assert.equal(findExecutable('qemu-system-x86_64', f.dir), f.qemu);
  });

  test('an unreadable kernel is named in the error', async () => {
    const f = fixture('boots');
    await assert.rejects(
      chooseAccel('auto', { ...opts(f), kernel: join(f.dir, 'missing-vmlinuz') }),
      kjxError('INPUT_NOT_FOUND', /missing-vmlinuz/),
    );
  });
});
