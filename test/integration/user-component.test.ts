/**
 * examples/user-component end to end, as a user runs it: `make` builds the C
 * daemon (static gcc), its component file pins the binary by sha256, `kjx test`
 * builds the image, boots it in real QEMU (TCG), waits for the daemon's port and
 * runs the component's smoke check, which talks to it over HTTP. Twice: booted
 * (`--cold --no-save`), and restored from the snapshot `kjx build --snapshot` saved.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sha256 } from '../../src/util/hash.js';
import { REPO, removeAll, runKjx } from '../helpers/kjx.js';
import { testIn } from '../helpers/modes.js';
import { needs, toolProblem } from '../helpers/prereq.js';

const EXAMPLE = join(REPO, 'examples', 'user-component');
/** libc.a: the static C library `gcc -static` links (Debian's libc6-dev). */
const LIBC_A = '/usr/lib/x86_64-linux-gnu/libc.a';

const skip =
  needs('gcc', toolProblem('gcc')) ||
  needs('make', toolProblem('make')) ||
  needs('libc6-dev', existsSync(LIBC_A) ? undefined : `${LIBC_A} is missing (apt-get install libc6-dev)`) ||
  needs('qemu-system-x86_64', toolProblem('qemu-system-x86_64'));

/** A copy of the example without what a build leaves in it (the binary, kjx.lock, dist). */
function copyExample(into: string): string {
  const dir = join(into, 'user-component');
  cpSync(EXAMPLE, dir, {
    recursive: true,
    filter: (src) => !/\/(hello-httpd|kjx\.lock|dist)$/.test(src),
  });
  return dir;
}

function make(dir: string): Buffer {
  const r = spawnSync('make', ['hello-httpd'], { cwd: dir, encoding: 'utf8' });
  assert.equal(r.status, 0, `make failed:\n${r.stdout}${r.stderr}`);
  return readFileSync(join(dir, 'hello-httpd'));
}

interface TestResult {
  outcome: string;
  exitCode: number;
  checks: { name: string; pass: boolean; output: string[] }[];
  services: { name: string; state: string }[];
  start: { how: string };
}

for (const mode of ['cold', 'restored'] as const)
  describe(`examples/user-component: make, then kjx test (${mode})`, { skip }, () => {
    let root: string;
    let dir: string;
    let binary: Buffer;
    let result: TestResult;
    let stderr = '';

    before(() => {
      root = mkdtempSync(join(tmpdir(), 'kjx-user-component-'));
      dir = copyExample(root);
      binary = make(dir);
      if (mode === 'restored') {
        const b = runKjx(['build', '--snapshot', '--accel', 'tcg'], { cwd: dir, timeoutMs: 900_000 });
        assert.equal(b.code, 0, b.stderr);
      }
      const flags = mode === 'cold' ? ['--cold', '--no-save'] : [];
      const r = runKjx(['test', '--json', '--accel', 'tcg', ...flags], { cwd: dir, timeoutMs: 900_000 });
      stderr = r.stderr;
      assert.ok(r.stdout.trim().startsWith('{'), `kjx test printed no JSON (exit ${r.code}):\n${r.stderr}`);
      result = JSON.parse(r.stdout);
    });
    after(() => removeAll(root));

    // no VM in it: once, in the cold suite
    testIn(mode, 'cold')(
      'make builds the same bytes in another directory, and they are the ones the component file pins',
      () => {
        const other = copyExample(join(root, 'again'));
        assert.ok(make(other).equals(binary), 'two builds of hello-httpd differ');
        const pinned = /sha256: ([0-9a-f]{64})/.exec(
          readFileSync(join(dir, 'components', 'hello.yaml'), 'utf8'),
        );
        assert.equal(pinned?.[1], sha256(binary), 'the pin in components/hello.yaml is not what make builds');
      },
    );

    test('the daemon is a supervised service that became ready on its port', () => {
      assert.equal(result.start.how, mode === 'cold' ? 'booted' : 'restored');
      // a restored VM reports the services of the boot it was saved from
      assert.ok(
        result.services.some((s) => s.name === 'hello' && s.state === 'ready'),
        `hello never ready: ${JSON.stringify(result.services)}\n${stderr}`,
      );
    });

    test("the component's smoke check talked to it, and kjx test exited 0", () => {
      const c = result.checks.find((x) => x.name === 'hello-answers');
      assert.ok(c, `no check hello-answers ran (outcome ${result.outcome})\n${stderr}`);
      assert.ok(c.pass, `hello-answers failed:\n${c.output.join('\n')}`);
      assert.equal(result.outcome, 'exited');
      assert.equal(result.exitCode, 0);
    });
  });
