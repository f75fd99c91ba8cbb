/**
 * A build killed with SIGKILL at any moment leaves the previous good artifacts and a
 * usable cache: kill it mid-way several times, then build again and get exactly the
 * bytes of an uninterrupted build.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { coldCacheWithDebs, removeAll, runKjx, spawnKjx, workspace } from '../helpers/kjx.js';

const made: string[] = [];
after(() => removeAll(...made));

const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

test('SIGKILL mid-build, several times, then a clean build gives the reference bytes', async () => {
  const ws = workspace('interrupt');
  made.push(ws);
  // the reference: one uninterrupted build from a cold stage cache
  const refCache = coldCacheWithDebs();
  made.push(refCache);
  const ref = runKjx(['build', '-o', 'ref'], { cwd: ws, cache: refCache });
  assert.equal(ref.code, 0, ref.stderr);
  const want = sha(join(ws, 'ref', 'initramfs.cpio.gz'));

  const cache = coldCacheWithDebs();
  made.push(cache);
  const kills = [300, 900, 1600, 2400, 3300];
  let killedMidway = 0;
  for (const ms of kills) {
    const child = spawnKjx(['build', '-o', 'dist'], { cwd: ws, cache });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    );
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    const r = await exited;
    clearTimeout(timer);
    if (r.signal === 'SIGKILL') killedMidway++;
    // whatever is in dist/ now is whole: an old good artifact or the new one, never half
    const initrd = join(ws, 'dist', 'initramfs.cpio.gz');
    if (existsSync(initrd)) {
      assert.doesNotThrow(
        () => gunzipSync(readFileSync(initrd)),
        `a truncated initramfs after a kill at ${ms} ms`,
      );
      assert.equal(sha(initrd), want);
    }
  }
  assert.ok(
    killedMidway >= 3,
    `only ${killedMidway} builds were killed mid-way; the kill points are too late`,
  );

  const final = runKjx(['build', '-o', 'dist', '--json'], { cwd: ws, cache });
  assert.equal(final.code, 0, final.stderr);
  assert.equal(sha(join(ws, 'dist', 'initramfs.cpio.gz')), want);
  assert.equal(sha(join(ws, 'dist', 'vmlinuz')), sha(join(ws, 'ref', 'vmlinuz')));
  // temporaries of the killed builds were swept
  assert.deepEqual(
    readdirSync(join(ws, 'dist')).filter((f) => f.includes('.tmp-')),
    [],
  );
  assert.deepEqual(readdirSync(join(cache, 'tmp')), []);
});
