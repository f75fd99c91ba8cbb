/**
 * Container runtimes in a real guest (QEMU under TCG, real Debian packages): one
 * image with every runtime component, booted once by `kjx test`, which runs the
 * smoke checks the components ship (docs/containers.md). Each check runs a
 * busybox container that prints a marker and exits 42, and passes only if both
 * came back through the runtime. Per runtime one test reads the shared result.
 *
 * The same boot loads the `outputs: [oci]` image of another kjx spec (baked in with
 * `images:`) into ctr, podman and docker and runs it: three checks the spec adds
 * itself with `files:` (a check is any executable in /usr/lib/kjx/checks).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { removeAll, runKjx } from '../helpers/kjx.js';

const LIB = '. /usr/lib/kjx/check-data/lib.sh';
const IMG = '/usr/share/kjx/images/inner.tar';
/** The oci output of a spec named "inner", version 0.1.0. */
const REF = 'docker.io/kjx/inner:0.1.0';

const ociChecks: Record<string, string[]> = {
  'oci-ctr': [
    LIB,
    '. /etc/kjx/containerd.env',
    `kjx_step ctr images import --snapshotter "$CONTAINERD_SNAPSHOTTER" ${IMG}`,
    `kjx_expect ctr run --rm --snapshotter "$CONTAINERD_SNAPSHOTTER" ${REF} oci-ctr sh -c "$KJX_CMD"`,
  ],
  'oci-podman': [
    LIB,
    `kjx_step podman load -q -i ${IMG}`,
    `kjx_expect podman run --rm --network none ${REF} sh -c "$KJX_CMD"`,
  ],
  'oci-docker': [
    LIB,
    `kjx_step docker load -q -i ${IMG}`,
    `kjx_expect docker run --rm --network none ${REF} sh -c "$KJX_CMD"`,
  ],
};

const RUNTIME_SPEC = `name: runtimes
compression: zstd
components: [busybox, runit, dropbear, runc, crun, gvisor, containerd, podman, docker]
images:
  - {name: inner, archive: ../inner/dist/inner-oci.tar}
files:
${Object.entries(ociChecks)
  .map(
    ([name, lines]) =>
      `  - path: /usr/lib/kjx/checks/${name}\n    mode: "0755"\n    content: |\n${['#!/bin/sh', ...lines].map((l) => `      ${l}`).join('\n')}\n`,
  )
  .join('')}`;

interface Check {
  name: string;
  pass: boolean;
  status?: number;
  seconds?: number;
  output: string[];
}

describe('container runtimes in one guest (kjx test)', () => {
  let root: string;
  let result: {
    outcome: string;
    exitCode: number;
    checks: Check[];
    services: { name: string; state: string }[];
  };
  let stderr = '';

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'kjx-runtimes-'));
    const inner = join(root, 'inner');
    const outer = join(root, 'outer');
    for (const [dir, text] of [
      [inner, 'name: inner\ncomponents: [busybox, runit]\noutputs: [oci]\n'],
      [outer, RUNTIME_SPEC],
    ] as const) {
      mkdirSync(dir);
      writeFileSync(join(dir, 'kjx.yaml'), text);
    }
    const a = runKjx(['build'], { cwd: inner });
    assert.equal(a.code, 0, `build of the oci image failed:\n${a.stderr}`);
    const b = runKjx(['build'], { cwd: outer, timeoutMs: 600_000 });
    assert.equal(b.code, 0, `build of the runtimes image failed:\n${b.stderr}`);
    const r = runKjx(['test', '--json', '--accel', 'tcg'], { cwd: outer, timeoutMs: 900_000 });
    stderr = r.stderr;
    assert.ok(r.stdout.trim().startsWith('{'), `kjx test printed no JSON (exit ${r.code}):\n${r.stderr}`);
    result = JSON.parse(r.stdout);
  });
  after(() => removeAll(root));

  const check = (name: string) => {
    const c = result.checks.find((x) => x.name === name);
    assert.ok(c, `no check ${name} ran (outcome ${result.outcome})\n${stderr}`);
    assert.ok(c.pass, `${name} failed (status ${c.status}):\n${c.output.join('\n')}`);
    assert.ok(c.output.includes('kjx-check-marker'), `${name}: no marker in\n${c.output.join('\n')}`);
    assert.ok(
      c.output.some((l) => l.includes('status 42 came back')),
      `${name}: status not confirmed`,
    );
  };

  test('the guest ran every check and kjx test exited 0', () => {
    assert.equal(result.outcome, 'exited');
    const failed = result.checks.filter((c) => !c.pass).map((c) => `${c.name}:\n${c.output.join('\n')}`);
    assert.deepEqual(failed, []);
    assert.equal(result.exitCode, 0);
  });
  test('containerd and docker are supervised services that became ready', () => {
    for (const s of ['containerd', 'docker'])
      assert.ok(
        result.services.some((e) => e.name === s && e.state === 'ready'),
        `${s} never ready`,
      );
  });
  test('runc runs a bundle (pivot_root works on the bound initramfs root)', () => check('runc'));
  test('crun runs a bundle', () => check('crun'));
  test('runsc (gVisor) runs a bundle', () => check('gvisor'));
  test('containerd + ctr run an imported image', () => check('containerd'));
  test('podman without network', () => check('podman'));
  test('podman on the CNI bridge: an address, and the guest answers', () => check('podman-bridge'));
  test('docker without network', () => check('docker'));
  test('docker on its bridge: an address, and the guest answers', () => check('docker-bridge'));
  test('runsc as the runtime of containerd (ctr --runc-binary)', () => check('gvisor-containerd'));
  test('runsc as a docker runtime', () => check('gvisor-docker'));
  test('the oci output of a kjx spec loads and runs in ctr', () => check('oci-ctr'));
  test('… in podman', () => check('oci-podman'));
  test('… in docker', () => check('oci-docker'));
});
