/**
 * A damaged cache entry is rebuilt, never used: the real `kjx build` with a blob
 * of the cached base tree bit-rotten and the tree's record edited still writes
 * the bytes of a clean build, and leaves both entries whole again.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { sha256 } from '../../src/util/hash.js';
import { removeAll, runKjx, workspace } from '../helpers/kjx.js';

const made: string[] = [];
after(() => removeAll(...made));

const SPEC = ['kernel:', '  image: ./bzImage', '  modules: []', 'components: [busybox, runit]', ''].join(
  '\n',
);

interface StoredEntry {
  path: string;
  type: string;
  mode: number;
  blob?: string;
}

/** The cached stage record holding /bin/busybox (the base tree): its file and entries. */
function baseTreeRecord(cache: string): { file: string; entries: StoredEntry[] } {
  const stages = join(cache, 'stages');
  for (const name of readdirSync(stages)) {
    const file = join(stages, name);
    const text = readFileSync(file, 'utf8');
    const body = text.slice(text.indexOf('\n') + 1);
    // other records are arrays (a stage's warnings), whose `entries` is Array.prototype's
    const rec = JSON.parse(body) as { entries?: unknown };
    if (Array.isArray(rec.entries) && (rec.entries as StoredEntry[]).some((e) => e.path === '/bin/busybox'))
      return { file, entries: rec.entries as StoredEntry[] };
  }
  assert.fail(`no cached tree holds /bin/busybox in ${stages}`);
}

const artifactHashes = (dir: string): Record<string, string> =>
  Object.fromEntries(
    readdirSync(dir)
      .filter((n) => !n.startsWith('.'))
      .map((n) => [n, sha256(readFileSync(join(dir, n)))]),
  );

describe('cache integrity', () => {
  test('a corrupt blob and a corrupt tree record are rebuilt: same bytes as a clean build, entries whole again', () => {
    const ws = workspace('cache-rot', SPEC);
    made.push(ws);
    writeFileSync(join(ws, 'bzImage'), 'not really a kernel');
    const cache = mkdtempSync(join(tmpdir(), 'kjx-cache-rot-'));
    made.push(cache);
    const clean = runKjx(['build', '-o', 'clean'], { cwd: ws, cache });
    assert.equal(clean.code, 0, clean.stderr);

    const same = (out: string, rebuilt = true): void => {
      const r = runKjx(['build', '-o', out], { cwd: ws, cache });
      assert.equal(r.code, 0, r.stderr);
      if (rebuilt)
        assert.match(r.stderr, /base: done/, 'the base stage ran again instead of using the damaged entry');
      assert.deepEqual(artifactHashes(join(ws, out)), artifactHashes(join(ws, 'clean')));
    };

    // one bit of busybox's blob flipped
    const { file: record, entries } = baseTreeRecord(cache);
    const busybox = entries.find((e) => e.path === '/bin/busybox')!;
    const blob = join(cache, 'blobs', busybox.blob!.slice(0, 2), busybox.blob!);
    const rotten = readFileSync(blob);
    rotten[rotten.length >> 1] = rotten[rotten.length >> 1]! ^ 0x01;
    writeFileSync(blob, rotten);
    same('after-blob');
    assert.equal(sha256(readFileSync(blob)), busybox.blob, 'the blob was replaced by its right bytes');

    // the tree's record edited, still valid JSON: /bin becomes world-writable
    const text = readFileSync(record, 'utf8');
    const edited = text.replace(/("path":"\/bin","mode":)493/, '$1511');
    assert.notEqual(edited, text, 'the record holds /bin with mode 0755');
    writeFileSync(record, edited);
    same('after-record');
    assert.equal(readFileSync(record, 'utf8'), text, 'the tree record was written again as it was');

    // the output directory's build record cut short: the build runs instead of failing
    writeFileSync(join(ws, 'after-record', '.kjx-build.json'), '{"key": "');
    same('after-record', false);
  });
});
