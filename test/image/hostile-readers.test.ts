/**
 * The readers of `kjx inspect` on the hostile images of test/fixtures/hostile-images.ts,
 * in-process: each is refused naming why, or read correctly where it is only
 * wasteful. (test/integration/hostile-images.test.ts feeds the same images, and the
 * compression bombs, to the real CLI under a memory limit.)
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadArtifact } from '../../src/image/read-artifact.js';
import { HOSTILE_INPUTS } from '../fixtures/hostile-images.js';
import { assertKjxError } from '../helpers/kjx-error.js';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'kjx-hostile-readers-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

// the compression bombs take seconds to make and to refuse: the CLI test feeds them
for (const h of HOSTILE_INPUTS.filter((x) => !x.file.startsWith('bomb.'))) {
  test(`${h.what} (${h.file}) is ${h.refused ? 'refused with one line' : 'read'}`, async () => {
    h.write(join(dir, h.file));
    if (!h.refused) {
      const a = await loadArtifact(join(dir, h.file));
      assert.ok((a.tree?.size ?? 0) > 1000);
      return;
    }
    await assert.rejects(loadArtifact(join(dir, h.file)), (e: unknown) => {
      assertKjxError(e, 'ARTIFACT_INVALID', h.refused!);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
  });
}
