/**
 * A build killed with SIGKILL at any moment leaves the previous good artifacts and a
 * usable cache: kill it mid-way several times (each time at a later stage), then
 * build again and get exactly the bytes of an uninterrupted build.
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
  // Each build is killed when it reports the end of a stage (plain progress on stderr,
  // as under CI), so the kill lands mid-build on a fast host and on a loaded one alike.
  // Stage results are cached as they finish, so every build gets further than the last.
  const killAfter = ['resolve', 'fetch', 'base', 'kernel', 'files'] as const;
  for (const stage of killAfter) {
    const child = spawnKjx(['build', '-o', 'dist'], { cwd: ws, cache });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    );
    let stderr = '';
    const reported = new RegExp(`^kjx: ${stage}: (done|cached)`, 'm');
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
      if (reported.test(stderr)) child.kill('SIGKILL');
    });
    child.stdout.resume();
    const r = await exited;
    assert.equal(r.signal, 'SIGKILL', `the build ended before its ${stage} stage was reported:\n${stderr}`);
    // whatever is in dist/ now is whole: an old good artifact or the new one, never half
    const initrd = join(ws, 'dist', 'initramfs.cpio.gz');
    if (existsSync(initrd)) {
      assert.doesNotThrow(
        () => gunzipSync(readFileSync(initrd)),
        `a truncated initramfs after a kill at the end of ${stage}`,
      );
      assert.equal(sha(initrd), want);
    }
  }

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
