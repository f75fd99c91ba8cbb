/**
 * The one helper every conditional skip goes through: a missing host prerequisite
 * skips locally and fails under CI. Checked by running a small test file with
 * node's runner, with and without CI, as the suite itself runs.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { REPO } from './kjx.js';
import { inCi, needs, toolProblem } from './prereq.js';

const dir = mkdtempSync(join(tmpdir(), 'kjx-prereq-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A test file with one test that needs a tool no host has, and one that needs nothing. */
function sample(): string {
  const file = join(dir, 'sample.test.ts');
  const helper = pathToFileURL(join(REPO, 'test', 'helpers', 'prereq.ts')).href;
  writeFileSync(
    file,
    [
      "import { test } from 'node:test';",
      `import { needsTool } from '${helper}';`,
      "test('needs a tool', { skip: needsTool('kjx-no-such-tool') }, () => {});",
      "test('needs nothing', () => {});",
      '',
    ].join('\n'),
  );
  return file;
}

function runSample(ci: string | undefined) {
  const env = { ...process.env };
  // the runner marks its children; a child that sees the mark would not run its file
  delete env.NODE_TEST_CONTEXT;
  delete env.CI;
  if (ci !== undefined) env.CI = ci;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', sample()], {
    cwd: REPO,
    env,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status, out: r.stdout + r.stderr };
}

describe('needs', () => {
  test('CI is on for any value but empty, 0 and false', () => {
    assert.equal(inCi({}), false);
    for (const v of ['', '0', 'false', 'FALSE', ' false ']) assert.equal(inCi({ CI: v }), false, v);
    for (const v of ['true', '1', 'yes', 'woodpecker']) assert.equal(inCi({ CI: v }), true, v);
  });

  test('a prerequisite that is there runs the test', () => {
    assert.equal(needs('sh', toolProblem('sh')), false);
    assert.equal(needs('anything', undefined), false);
    assert.equal(needs('anything', false), false);
  });

  test('without CI, a missing tool skips the test that needs it, saying why', () => {
    const r = runSample(undefined);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /ok \d+ - needs a tool # SKIP kjx-no-such-tool: `kjx-no-such-tool` is not on PATH/);
    assert.match(r.out, /# pass 1\b/);
    assert.match(r.out, /# fail 0\b/);
  });

  test('under CI=true, a missing tool fails the run, naming it', () => {
    const r = runSample('true');
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /not ok \d+ - host prerequisite: kjx-no-such-tool/);
    assert.match(r.out, /under CI the tests that need it fail instead of skipping/);
    assert.match(r.out, /# fail 1\b/);
  });
});
