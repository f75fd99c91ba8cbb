import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  PREPARE_PATH,
  RESEED_PATH,
  RUN_CMD_PATH,
  RUN_HOOK_PATH,
  runCommandScript,
  runRequest,
  shQuote,
} from '../../src/guest/run-hook.js';
import { cpioToTree, readCpio } from '../../src/image/cpio.js';
import type { FileEntry } from '../../src/rootfs/tree.js';
import { KjxError } from '../../src/util/errors.js';
import { appendPayload, hookPayload, parseMount, runArchive } from '../../src/vm/payload.js';

test('shQuote survives quotes, spaces and $', () => {
  assert.equal(shQuote(`it's $HOME`), `'it'\\''s $HOME'`);
});

test('the command script exports env, changes directory and execs the argv exactly', () => {
  const s = runCommandScript({
    argv: ['sh', '-c', 'echo "$A"; exit 7'],
    env: { B: '2', A: 'x y' },
    cwd: '/tmp',
  });
  assert.equal(
    s,
    `#!/bin/sh\n# the command given to kjx run\nexport A='x y'\nexport B='2'\ncd '/tmp' || exit 127\nexec 'sh' '-c' 'echo "$A"; exit 7'\n`,
  );
});

test('the run archive holds command and mounts, and leaves existing directories alone', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kjx-payload-'));
  try {
    writeFileSync(join(dir, 'a.txt'), 'A');
    const cpio = runArchive(
      { argv: ['true'], env: {} },
      [{ host: dir, guest: '/tmp/in' }],
      new Set(['/', '/tmp', '/usr', '/usr/lib']),
    );
    const tree = cpioToTree(readCpio(cpio, 'payload'));
    assert.equal(tree.get(RUN_CMD_PATH)?.type, 'file');
    assert.equal(tree.has(RUN_HOOK_PATH), false, 'the hook is in the boot payload, not in each run');
    const a = tree.get('/tmp/in/a.txt');
    assert.ok(a?.type === 'file' && a.data.toString() === 'A');
    // /tmp (1777 in the image) must not be in the archive, or cpio would chmod it
    assert.equal(tree.has('/tmp'), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the hook payload holds hook and reseed helper, the same bytes for every run', () => {
  const paths = new Set(['/', '/usr', '/usr/lib']);
  const cpio = hookPayload(paths);
  const tree = cpioToTree(readCpio(cpio, 'payload'));
  assert.equal(tree.get(RUN_HOOK_PATH)?.mode, 0o755);
  assert.equal(tree.get(RESEED_PATH)?.mode, 0o755);
  assert.equal(tree.has(RUN_CMD_PATH), false, 'no command: a snapshot taken at ready must serve every run');
  assert.equal(tree.has('/usr/lib'), false);
  assert.equal(tree.get('/usr/lib/kjx')?.type, 'dir');
  assert.ok(
    hookPayload(paths).equals(cpio),
    'a snapshot key over the payload must not change from run to run',
  );
});

test("kjx test's check preparations ride in the hook payload, so a snapshot saved after them is keyed by them", () => {
  const paths = new Set(['/', '/usr', '/usr/lib']);
  const plain = hookPayload(paths);
  assert.equal(cpioToTree(readCpio(plain, 'payload')).has(PREPARE_PATH), false);
  assert.ok(hookPayload(paths, []).equals(plain));
  const docker = hookPayload(paths, ['docker']);
  const script = (cpioToTree(readCpio(docker, 'payload')).get(PREPARE_PATH) as FileEntry | undefined)?.data;
  assert.match(script?.toString() ?? '', /^KJX_PREPARE='?docker'?$/m);
  assert.ok(hookPayload(paths, ['docker']).equals(docker), 'the same preparations, the same bytes');
  assert.ok(!docker.equals(plain) && !docker.equals(hookPayload(paths, ['docker', 'podman'])));
});

test('the run request is one header line, then the archive', () => {
  const nonce = 'ab'.repeat(16);
  const r = runRequest({
    nonce,
    epoch: 1700000000.7,
    seed: Buffer.from([1, 255]),
    archive: Buffer.from('CPIO'),
  });
  assert.equal(r.toString('latin1'), `kjx-run 1 ${nonce} 1700000000 01ff 4\nCPIO`);
  assert.throws(() => runRequest({ nonce: 'x', epoch: 0, seed: Buffer.alloc(1), archive: Buffer.alloc(0) }));
});

test('the payload goes after the image at a 4-byte boundary', () => {
  const out = appendPayload(Buffer.from('abcde'), Buffer.from('PAY'));
  assert.equal(out.toString('latin1'), 'abcde\0\0\0PAY');
});

test('--mount needs HOST:GUEST with an absolute guest path', () => {
  assert.deepEqual(parseMount('./d:/data/'), { host: './d', guest: '/data' });
  assert.deepEqual(parseMount('/a:b:/c'), { host: '/a:b', guest: '/c' });
  for (const bad of ['nocolon', ':/x', 'a:relative']) assert.throws(() => parseMount(bad), KjxError);
});
