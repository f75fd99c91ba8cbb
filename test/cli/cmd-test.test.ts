/** `kjx test` output: one line per check, and why a failed one failed. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatChecks } from '../../src/cli/cmd-test.js';
import { CHECK_TIMEOUT } from '../../src/guest/checks.js';

test('status 137 after the check timeout says the check was killed by it', () => {
  const out = formatChecks([
    { name: 'runc', pass: true, status: 0, seconds: 1.5, output: [] },
    { name: 'docker', pass: false, status: 137, seconds: CHECK_TIMEOUT + 0.2, output: ['pulling'] },
    { name: 'podman', pass: false, status: 137, seconds: 12, output: [] },
    { name: 'crun', pass: false, status: 1, seconds: 2, output: ['boom'] },
    { name: 'gvisor', pass: false, output: [] },
  ]).split('\n');
  assert.match(out[0]!, /^pass {2}runc {4}\s+1\.50 s$/);
  assert.match(
    out[1]!,
    new RegExp(`^FAIL {2}docker .*\\(killed after the ${CHECK_TIMEOUT} s check timeout: status 137\\)$`),
  );
  assert.equal(out[2], '      | pulling');
  assert.match(out[3]!, /^FAIL {2}podman .*\(killed: status 137, SIGKILL before the check timeout/);
  assert.match(out[4]!, /^FAIL {2}crun .*\(status 1\)$/);
  assert.match(out[6]!, /^FAIL {2}gvisor .*\(did not finish\)$/);
});
