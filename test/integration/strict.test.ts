/**
 * Build warnings through the real CLI: a local package ships a file that looks like
 * ELF but is cut short, so the library closure warns (ELF_INVALID) and goes on.
 * `kjx build` prints the warning; `--strict` makes it the documented exit status 7
 * (it was "internal error", 70); a no-op build and a build from cached stages warn
 * again, so `--strict` does not depend on the cache; `kjx run`, `test`, `boot` and
 * `trace` print the warnings of the build they do and stop under `--strict` before
 * any VM starts.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { EXIT } from '../../src/cli/exit-codes.js';
import { buildDeb } from '../fixtures/deb-fixtures.js';
import { type KjxResult, removeAll, runKjx, workspace } from '../helpers/kjx.js';

const WARNING =
  /kjx: warning: \/usr\/bin\/kjx-broken: truncated ELF header \(17 of 64 bytes\); its libraries are not resolved \[ELF_INVALID\]/;
const STRICT =
  /kjx: error: \/usr\/bin\/kjx-broken: truncated ELF header .* \[ELF_INVALID\] \(a warning; --strict makes it an error\)\n {2}hint: fix what it says, or build without --strict/;

describe('build warnings and --strict', () => {
  let ws: string;
  let state: string;
  const kjx = (args: string[]) => runKjx(args, { cwd: ws, env: { KJX_STATE_DIR: state } });
  const refusedStrictly = (r: KjxResult, what: string) => {
    assert.equal(r.code, EXIT.strict, `${what}: ${r.stderr}`);
    assert.match(r.stderr, STRICT, what);
    assert.doesNotMatch(r.stderr, /internal error/, what);
  };

  before(() => {
    ws = workspace('strict');
    state = mkdtempSync(join(tmpdir(), 'kjx-state-'));
    writeFileSync(
      join(ws, 'broken.deb'),
      buildDeb({
        entries: [
          { name: './', type: 'dir' },
          { name: './usr/', type: 'dir' },
          { name: './usr/bin/', type: 'dir' },
          { name: './usr/bin/kjx-broken', type: 'file', mode: 0o755, data: '\x7fELF\x02\x01\x01\0truncated' },
        ],
      }),
    );
    // the default spec, with the package and ftrace (so kjx trace gets as far as the build)
    const spec = join(ws, 'kjx.yaml');
    const yaml = readFileSync(spec, 'utf8');
    assert.match(yaml, /^packages: \[\]$/m);
    assert.match(yaml, /^components: \[busybox, runit, dropbear\]$/m);
    writeFileSync(
      spec,
      yaml
        .replace(/^packages: \[\]$/m, 'packages: [./broken.deb]')
        .replace(
          /^components: \[busybox, runit, dropbear\]$/m,
          'components: [busybox, runit, dropbear, ftrace]',
        ),
    );
  });
  after(() => removeAll(ws, state));

  test('regression: kjx --strict build exits with the documented status, not internal error (70), and writes no artifact', () => {
    refusedStrictly(kjx(['--strict', 'build']), 'kjx --strict build');
    assert.equal(existsSync(join(ws, 'dist', 'initramfs.cpio.gz')), false);
  });

  test('kjx build prints the warning, and says it again when nothing changed or stages come from the cache', () => {
    const first = kjx(['build']);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, WARNING);
    const noop = kjx(['build']);
    assert.equal(noop.code, 0, noop.stderr);
    assert.match(noop.stdout, /^up to date: /m);
    assert.match(noop.stderr, WARNING);
    refusedStrictly(kjx(['--strict', 'build']), 'a no-op build under --strict');
    // another output directory: no build record there, the base stage from the cache
    refusedStrictly(kjx(['--strict', 'build', '-o', 'other']), 'a build from cached stages under --strict');
    assert.equal(existsSync(join(ws, 'other', 'initramfs.cpio.gz')), false);
    const cached = kjx(['build', '-o', 'other']);
    assert.equal(cached.code, 0, cached.stderr);
    assert.match(cached.stderr, /kjx: base: cached/);
    assert.match(cached.stderr, WARNING);
  });

  test('kjx run, test, boot and trace stop under --strict before any VM starts', () => {
    refusedStrictly(kjx(['--strict', 'run', '--accel', 'tcg', '--', 'true']), 'kjx --strict run');
    refusedStrictly(kjx(['--strict', 'test', '--accel', 'tcg']), 'kjx --strict test');
    refusedStrictly(kjx(['--strict', 'boot', '--detach', '--accel', 'tcg']), 'kjx --strict boot --detach');
    refusedStrictly(
      kjx(['--strict', 'trace', 'runqlat', '--backend', 'tracefs', '--accel', 'tcg']),
      'kjx --strict trace',
    );
    // no VM was started: kjx run records each one under the state directory
    assert.equal(existsSync(join(state, 'runs')), false);
    assert.match(kjx(['ps']).stdout, /no running VMs/);
  });

  test('without --strict they print the warning and go on', () => {
    const run = kjx(['run', '--accel', 'tcg', '--', 'sh', '-c', 'exit 3']);
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, WARNING);
    // each goes on past the build to its own first check, which stops it before a boot:
    // the image has no smoke checks; --memory below the minimum
    const t = kjx(['test', '--accel', 'tcg']);
    assert.equal(t.code, EXIT.usage, t.stderr);
    assert.match(t.stderr, WARNING);
    assert.match(t.stderr, /has no checks/);
    const b = kjx(['boot', '--detach', '--accel', 'tcg', '--memory', '1']);
    assert.equal(b.code, EXIT.usage, b.stderr);
    assert.match(b.stderr, WARNING);
    assert.match(b.stderr, /--memory must be a number >= 64/);
    const tr = kjx(['trace', 'runqlat', '--backend', 'tracefs', '--accel', 'tcg', '--memory', '1']);
    assert.equal(tr.code, EXIT.usage, tr.stderr);
    assert.match(tr.stderr, WARNING);
    assert.match(tr.stderr, /--memory must be a number >= 64/);
  });
});
