/**
 * Preparing a boot (src/vm/prepare.ts) with the real build of the default image:
 * kjx.yaml is read once per command, what to boot is checked before any build work,
 * memory is the components' or the caller's, and the kernel entry is the PVH vmlinux
 * where it can be. No VM starts here.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Warning } from '../../src/util/errors.js';
import { isKjxError } from '../../src/util/errors.js';
import { prepareBoot } from '../../src/vm/prepare.js';
import { firstBytes, removeAll, runKjx, SHARED_CACHE, workspace } from '../helpers/kjx.js';

const made: string[] = [];
after(() => removeAll(...made));

describe('prepareBoot', () => {
  let ws: string;
  let spec: string;
  const warnings: Warning[] = [];
  const cacheBefore = process.env.KJX_CACHE_DIR;

  before(() => {
    ws = workspace('prepare');
    made.push(ws);
    spec = join(ws, 'kjx.yaml');
    const r = runKjx(['build'], { cwd: ws });
    assert.equal(r.code, 0, r.stderr);
    process.env.KJX_CACHE_DIR = SHARED_CACHE;
  });
  after(() => {
    if (cacheBefore === undefined) delete process.env.KJX_CACHE_DIR;
    else process.env.KJX_CACHE_DIR = cacheBefore;
  });

  const prepare = (more: Partial<Parameters<typeof prepareBoot>[0]> = {}) =>
    prepareBoot({
      specPath: spec,
      outDir: join(ws, 'dist'),
      warn: (w) => warnings.push(w),
      accel: 'tcg',
      ...more,
    });

  test('the default image: the PVH vmlinux from the cache, the built initramfs, memory and identity', async () => {
    const p = await prepare();
    assert.equal(p.boot.kind, 'direct');
    if (p.boot.kind !== 'direct') return;
    assert.equal(p.boot.pvh, true);
    assert.match(p.boot.kernel, /\/kernels\/[0-9a-f]{64}\.vmlinux$/);
    assert.equal(firstBytes(p.boot.kernel, 4), '\x7fELF');
    // the built initramfs, decompressed once into the cache (direct-boot.ts)
    assert.match(p.boot.initrd, /\/initrds\/[0-9a-f]{64}\.cpio$/);
    assert.equal(firstBytes(p.boot.initrd, 6), '070701');
    assert.equal(p.image.initrd, join(ws, 'dist', 'initramfs.cpio.gz'));
    assert.equal(p.memoryMiB, 512);
    assert.equal(p.cpus, 1);
    assert.deepEqual(p.accel, { accel: 'tcg', reason: 'requested' });
    assert.equal(p.identity, join(ws, '.kjx', 'ssh', 'id_ed25519'));
    assert.equal(p.image.buildId.length, 12);
    assert.deepEqual(warnings, []);
  });

  test('memory: a number as given; a function gets what the components want, after the build', async () => {
    assert.equal((await prepare({ memoryMiB: 768 })).memoryMiB, 768);
    let asked: number | undefined;
    const p = await prepare({
      memoryMiB: (wanted) => {
        asked = wanted;
        return wanted * 2;
      },
    });
    assert.equal(asked, 512);
    assert.equal(p.memoryMiB, 1024);
  });

  test('an artifact the spec does not build is a usage error before any build work', async () => {
    const out = join(ws, 'never-written');
    await assert.rejects(
      prepare({ artifact: 'qcow2', outDir: out }),
      (e: unknown) =>
        isKjxError(e) &&
        e.code === 'USAGE' &&
        e.message === '--artifact qcow2: the spec does not build qcow2 (outputs: [initramfs])',
    );
    assert.equal(existsSync(out), false, 'the build ran');
  });

  test('regression: kjx run, test and boot read kjx.yaml once (they parsed it up to three times)', async () => {
    // kjx.yaml becomes a FIFO with one writer per command: a second read would block
    // for ever, so a command that reads it twice runs into the bound below
    const text = join(ws, 'kjx.yaml.text');
    renameSync(spec, text);
    const fifo = spawnSync('mkfifo', [spec]);
    assert.equal(fifo.status, 0, fifo.stderr?.toString());
    const writers: ChildProcess[] = [];
    try {
      for (const args of [
        ['run', '--accel', 'tcg', '--memory', '1', '--', 'true'],
        ['boot', '--detach', '--accel', 'tcg', '--memory', '1'],
        ['test', '--accel', 'tcg'],
      ]) {
        const w = spawn('sh', ['-c', 'cat "$1" >"$2"', 'sh', text, spec], { stdio: 'ignore' });
        writers.push(w);
        const r = runKjx(args, { cwd: ws, timeoutMs: 120_000 });
        assert.equal(r.signal, null, `kjx ${args[0]} was still waiting to read kjx.yaml again:\n${r.stderr}`);
        // each stops at its own first check after the build, before any VM starts
        assert.equal(r.code, 2, `kjx ${args[0]}: ${r.stderr}`);
        assert.match(r.stderr, args[0] === 'test' ? /has no checks/ : /--memory must be a number >= 64/);
        const wrote = await Promise.race([
          new Promise<number | null>((r) => (w.exitCode !== null ? r(w.exitCode) : w.once('exit', r))),
          new Promise<string>((r) => setTimeout(() => r('still writing'), 10_000)),
        ]);
        assert.equal(wrote, 0, `kjx ${args[0]} did not read kjx.yaml to its end`);
      }
    } finally {
      for (const w of writers) w.kill();
      rmSync(spec, { force: true });
      renameSync(text, spec);
    }
    assert.equal(readFileSync(spec, 'utf8').includes('name:'), true);
  });
});

describe('prepareBoot without a build', () => {
  test('a spec that is not there is the loader error, and nothing is written', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kjx-prepare-'));
    made.push(dir);
    await assert.rejects(
      prepareBoot({
        specPath: join(dir, 'kjx.yaml'),
        outDir: join(dir, 'dist'),
        warn: () => {},
        accel: 'tcg',
      }),
      (e: unknown) => isKjxError(e) && e.code === 'SPEC_NOT_FOUND',
    );
    assert.equal(existsSync(join(dir, 'dist')), false);
  });
});
