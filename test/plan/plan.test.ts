/**
 * Spec -> Plan without apt: a package index fixture answers, so what the plan
 * holds (packages, modules and who asked, services, outputs, memory, keys) and
 * the cross-field errors it raises (positioned in kjx.yaml or a component file)
 * are checked here on their own.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { type Plan, planBuild } from '../../src/plan/plan.js';
import type { AptIndex, AptPackage } from '../../src/sources/apt.js';
import { parseSpec } from '../../src/spec/load.js';
import { isKjxError, type KjxError } from '../../src/util/errors.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'kjx-plan-'));
  dirs.push(d);
  return d;
}

/** A package index fixture: every name is a package at 1.0 (a few with Depends), and logs what it was asked. */
function fixtureIndex(asked: string[] = []): AptIndex {
  const depends: Record<string, string[][]> = { runit: [['runit-helper']] };
  return {
    async show(names) {
      asked.push(...names);
      const out = new Map<string, AptPackage>();
      for (const n of names) {
        const [name = n, version = '1.0'] = n.split('=');
        out.set(name, {
          name,
          version,
          arch: 'amd64',
          filename: `pool/main/${name}_${version}_amd64.deb`,
          size: 100,
          sha256: 'b'.repeat(64),
          depends: depends[name] ?? [],
          provides: [],
        });
      }
      return out;
    },
    async providers() {
      return [];
    },
  };
}

/** Plan kjx.yaml text in a fresh directory (plus other files), with the fixture index. */
async function plan(yaml: string, files: Record<string, string> = {}, asked: string[] = []): Promise<Plan> {
  const dir = tempDir();
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  const path = join(dir, 'kjx.yaml');
  writeFileSync(path, yaml);
  const spec = parseSpec(yaml, path);
  return planBuild(spec, { lockPath: join(dir, 'kjx.lock'), index: fixtureIndex(asked) });
}

/** The KjxError planning raises, with every problem line. */
async function planError(yaml: string, files: Record<string, string> = {}): Promise<KjxError> {
  try {
    await plan(yaml, files);
  } catch (e) {
    assert.ok(isKjxError(e), String(e));
    return e;
  }
  assert.fail('expected planning to fail');
}

describe('the plan of a spec', () => {
  test('the default components: packages from the index, modules with who asked, services, outputs, memory', async () => {
    const p = await plan('kernel: {package: linux-image-cloud-amd64, modules: [virtio_net]}\n');
    assert.deepEqual(p.spec.components, ['busybox', 'runit', 'dropbear']);
    const names = p.packages.packages.map((x) => x.name).sort();
    assert.deepEqual(names, ['busybox', 'dropbear-bin', 'runit', 'runit-helper']);
    assert.equal(p.packages.kernel?.name, 'linux-image-cloud-amd64');
    const net = p.kernel.modules.find((m) => m.name === 'virtio_net');
    assert.deepEqual(net, { name: 'virtio_net', optional: false, askedBy: ['kernel.modules'] });
    assert.ok(p.kernel.modules.some((m) => m.askedBy.includes('power button and boot nonce')));
    assert.deepEqual(p.kernel.optional, []);
    assert.deepEqual(p.services.map((s) => s.name).sort(), ['acpid', 'console', 'ssh']);
    assert.deepEqual(p.outputs, [{ format: 'initramfs', writer: 'initramfs' }]);
    assert.equal(p.memoryMiB, 512);
  });

  test('the lock answers a second plan: apt (the index) is not asked', async () => {
    const dir = tempDir();
    const path = join(dir, 'kjx.yaml');
    const spec = parseSpec('kernel: {image: ./bzImage}\nssh: {enabled: false}\n', path);
    writeFileSync(join(dir, 'bzImage'), 'not a kernel, only read by content');
    const lockPath = join(dir, 'kjx.lock');
    const first: string[] = [];
    await planBuild(spec, { lockPath, index: fixtureIndex(first) });
    assert.ok(first.length > 0);
    const again: string[] = [];
    const p = await planBuild(spec, { lockPath, index: fixtureIndex(again) });
    assert.deepEqual(again, []);
    assert.equal(p.packages.lockChanged, false);
  });

  test('component fragments merge once: containerd asks for overlay as optional, required by the spec wins', async () => {
    const opt = await plan('components: [busybox, runit, containerd]\nssh: {enabled: false}\n');
    const overlay = opt.kernel.modules.find((m) => m.name === 'overlay');
    assert.deepEqual(overlay, { name: 'overlay', optional: true, askedBy: ['containerd'] });
    assert.ok(opt.kernel.optional.includes('overlay'));
    assert.ok(opt.components.pivotRoot, 'containerd brings runc, whose containers pivot_root');
    assert.ok(opt.memoryMiB >= 1024);
    assert.ok(opt.services.some((s) => s.name === 'containerd'));

    const req = await plan(
      'components: [busybox, runit, containerd]\nkernel: {modules: [overlay]}\nssh: {enabled: false}\n',
    );
    const o = req.kernel.modules.find((m) => m.name === 'overlay');
    assert.equal(o?.optional, false);
    assert.deepEqual(o?.askedBy, ['kernel.modules', 'containerd']);
    assert.ok(req.kernel.required.includes('overlay'));
    assert.ok(!req.kernel.optional.includes('overlay'));
  });

  test('outputs name their writer; a tracing component sets the trace memory', async () => {
    const p = await plan(
      'components: [busybox, runit, bpftrace]\noutputs: [initramfs, iso, oci]\nssh: {enabled: false}\n',
    );
    assert.deepEqual(
      p.outputs.map((o) => `${o.format}:${o.writer}`),
      ['initramfs:initramfs', 'iso:media', 'oci:oci'],
    );
    assert.ok(p.traceMemoryMiB > p.memoryMiB, `${p.traceMemoryMiB} > ${p.memoryMiB}`);
  });
});

describe('cross-field rules, checked once by the plan, positioned', () => {
  test('no shell: the error is at kjx.yaml components and names busybox', async () => {
    const e = await planError('ssh: {enabled: false}\ncomponents: [runit]\n');
    assert.equal(e.code, 'SPEC_INVALID');
    assert.match(e.message, /kjx\.yaml:2:1: .*needs a shell: add the busybox or busybox-static component/);
  });

  test('no init: the error names runit', async () => {
    const e = await planError('ssh: {enabled: false}\ncomponents: [busybox]\n');
    assert.match([e.message, ...e.details].join('\n'), /needs an init \(PID 1\): add the runit component/);
  });

  test('busybox and busybox-static exclude each other, at the later entry', async () => {
    const e = await planError('ssh: {enabled: false}\ncomponents: [busybox, runit, busybox-static]\n');
    assert.match(e.message, /kjx\.yaml:2:30: .*busybox and busybox-static exclude each other; keep one/);
  });

  test('needs: a name no service has, with a suggestion, at the needs entry', async () => {
    const e = await planError('ssh: {enabled: false}\nservices:\n  web: {run: httpd, needs: [consol]}\n');
    assert.match(e.message, /kjx\.yaml:3:29: .*unknown service "consol" \(did you mean "console"\?\)/);
  });

  test('an unknown component with a suggestion, before the index is asked anything', async () => {
    const asked: string[] = [];
    await assert.rejects(
      () => plan('components: [busybox, runit, bpftool, crunn]\n', {}, asked),
      (e: KjxError) => /components\[3\].*got "crunn" \(did you mean "crun"\?\)/.test(e.message),
    );
    assert.deepEqual(asked, []);
  });
});
