/**
 * What goes into the build's keys and build id: where a `files:` entry sits in
 * kjx.yaml is for messages only, so moving lines rebuilds nothing; a component
 * file counts by its content and its pinned files, not by where it lies.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { portableSpec } from '../../src/pipeline/build.js';
import { stageKeys } from '../../src/pipeline/stage.js';
import { BUILD_STAGES } from '../../src/pipeline/stages.js';
import { planBuild } from '../../src/plan/plan.js';
import type { AptIndex, AptPackage } from '../../src/sources/apt.js';
import { userFilesKey } from '../../src/sources/user-files.js';
import { loadSpec, parseSpec } from '../../src/spec/load.js';
import { hashValue } from '../../src/util/hash.js';

describe('build keys', () => {
  it('the position of a files: entry changes neither the spec key nor the files key', () => {
    const a = parseSpec('files:\n  - {path: /etc/motd, content: hi}\n', 'kjx.yaml');
    const b = parseSpec('# moved\n\nfiles:\n\n  -   {path: /etc/motd, content: hi}\n', 'elsewhere/kjx.yaml');
    assert.notDeepEqual(a.files[0]?.position, b.files[0]?.position);
    assert.equal(hashValue(portableSpec(a)), hashValue(portableSpec(b)));
    assert.equal(hashValue(userFilesKey(a.files)), hashValue(userFilesKey(b.files)));
    const c = parseSpec('files:\n  - {path: /etc/motd, content: ho}\n', 'kjx.yaml');
    assert.notEqual(hashValue(portableSpec(a)), hashValue(portableSpec(c)), 'the content still counts');
  });
});

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Every name is a package at 1.0 without Depends. */
const index: AptIndex = {
  async show(names) {
    return new Map(
      names.map((n): [string, AptPackage] => [
        n,
        {
          name: n,
          version: '1.0',
          arch: 'amd64',
          filename: `pool/${n}.deb`,
          size: 1,
          sha256: createHash('sha256').update(n).digest('hex'),
          depends: [],
          provides: [],
        },
      ]),
    );
  },
  async providers() {
    return [];
  },
};

/** The stage keys of a project with a component file pinning `binary`. */
async function keysWith(binary: string): Promise<Record<string, string>> {
  const dir = mkdtempSync(join(tmpdir(), 'kjx-keys-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'c'));
  writeFileSync(join(dir, 'c', 'tool'), binary);
  const sum = createHash('sha256').update(binary).digest('hex');
  writeFileSync(
    join(dir, 'c', 'tool.yaml'),
    `name: tool\nfiles:\n  - {path: /bin/tool, from: tool, sha256: ${sum}}\n`,
  );
  writeFileSync(
    join(dir, 'kjx.yaml'),
    'kernel: {package: linux-image-cloud-amd64}\ncomponents: [busybox, runit, ./c/tool.yaml]\nssh: {enabled: false}\n',
  );
  const plan = await planBuild(loadSpec(join(dir, 'kjx.yaml')), { lockPath: join(dir, 'kjx.lock'), index });
  return { ...stageKeys(BUILD_STAGES, plan, 'code') };
}

describe('build keys of component files', () => {
  it('the same component file in another directory keeps every key; a new pinned binary changes base and write only', async () => {
    const a = await keysWith('one');
    const b = await keysWith('one');
    assert.deepEqual(a, b);
    const c = await keysWith('two');
    assert.notEqual(c.base, a.base);
    assert.notEqual(c.write, a.write);
    assert.equal(c.kernel, a.kernel);
    assert.equal(c.files, a.files);
  });
});

/** The plan of a project with libbpf-tools and, when `bpf` is given, one program of that source. */
async function planWithProgram(bpf: string | undefined) {
  const dir = mkdtempSync(join(tmpdir(), 'kjx-keys-prog-'));
  dirs.push(dir);
  if (bpf !== undefined) writeFileSync(join(dir, 'execs.bpf.c'), bpf);
  writeFileSync(
    join(dir, 'kjx.yaml'),
    `kernel: {package: linux-image-cloud-amd64}\ncomponents: [busybox, runit, libbpf-tools]\nssh: {enabled: false}\n${
      bpf === undefined ? '' : 'tracing: {programs: [{name: execs, bpf: ./execs.bpf.c}]}\n'
    }`,
  );
  return planBuild(loadSpec(join(dir, 'kjx.yaml')), { lockPath: join(dir, 'kjx.lock'), index });
}

// planning finds the eBPF toolchain: the machines that run the suite have it (kjx doctor --install --for test)
describe('build keys of tracing.programs', () => {
  it('a program does not change the base key of libbpf-tools (tracing.programs is not a component input)', async () => {
    const without = stageKeys(BUILD_STAGES, await planWithProgram(undefined), 'code');
    const withProg = stageKeys(BUILD_STAGES, await planWithProgram('int x;\n'), 'code');
    assert.equal(withProg.base, without.base);
    assert.equal(withProg.kernel, without.kernel);
    assert.notEqual(withProg.write, without.write);
  });

  it('the same program in another checkout keeps every key; its source changes programs and write', async () => {
    const a = stageKeys(BUILD_STAGES, await planWithProgram('int x;\n'), 'code');
    const b = stageKeys(BUILD_STAGES, await planWithProgram('int x;\n'), 'code');
    assert.deepEqual(a, b);
    const c = stageKeys(BUILD_STAGES, await planWithProgram('int y;\n'), 'code');
    assert.notEqual(c.programs, a.programs);
    assert.notEqual(c.write, a.write);
    assert.equal(c.base, a.base);
  });

  it("the toolchain's identity is in the cache keys, not in the build id's", async () => {
    const plan = await planWithProgram('int x;\n');
    const other = {
      ...plan,
      programs: { ...plan.programs!, toolchain: { ...plan.programs!.toolchain, id: 'x' } },
    };
    assert.notEqual(
      stageKeys(BUILD_STAGES, other, 'code').write,
      stageKeys(BUILD_STAGES, plan, 'code').write,
    );
    assert.equal(
      stageKeys(BUILD_STAGES, other, 'kjx 1', false).write,
      stageKeys(BUILD_STAGES, plan, 'kjx 1', false).write,
    );
  });
});
