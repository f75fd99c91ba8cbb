/**
 * As root, apt runs its download methods as the sandbox user (_apt) only when that
 * user can write the download directory; otherwise it warns "Download is performed
 * unsandboxed as root" and the methods run as root. kjx's downloads keep apt's
 * privilege separation. Real apt, a real (small) package from the archive.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { aptArgv, hostAptIndex, type ResolvedPackage } from '../../src/sources/apt.js';
import { aptDownloadDir, aptSandboxUser } from '../../src/sources/apt-sandbox.js';
import { debPath, openCache } from '../../src/sources/cache.js';
import { fetchDebs } from '../../src/sources/fetch.js';
import type { Warning } from '../../src/util/errors.js';

const made: string[] = [];
after(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** A cache below a directory only root may enter, like ~/.cache of root. */
function privateCache(): string {
  const top = mkdtempSync(join(tmpdir(), 'kjx-apt-sandbox-'));
  made.push(top);
  const home = join(top, 'home');
  mkdirSync(home, { mode: 0o700 });
  return join(home, 'cache');
}

async function smallPackage(): Promise<ResolvedPackage> {
  const found = (await hostAptIndex().show(['hello'])).get('hello');
  assert.ok(found, 'apt knows the package "hello" (apt-get update has run)');
  return { ...found, root: true };
}

const root = process.getuid?.() === 0;

describe('apt downloads as root stay sandboxed', {
  skip: root ? false : 'apt drops privileges only as root',
}, () => {
  test('apt hands its download method the sandbox user for the directory kjx makes', async () => {
    const user = await aptSandboxUser();
    assert.equal(user?.name, '_apt');
    const cache = openCache(privateCache());
    const dir = await aptDownloadDir(cache);
    made.push(dir);
    assert.equal(statSync(dir).uid, user.uid);
    const pkg = await smallPackage();
    const argv = aptArgv.download([pkg]);
    // apt's worker debug output shows the configuration it sends each method
    const r = spawnSync('apt-get', ['-o', 'Debug::pkgAcquire::Worker=1', ...argv], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 240_000,
    });
    const out = `${r.stdout}\n${r.stderr}`;
    assert.equal(r.status, 0, out.slice(-2000));
    assert.doesNotMatch(out, /unsandboxed/);
    assert.match(out, /Config-Item:%20APT::Sandbox::User=_apt%0a/);
  });

  test('fetchDebs through a cache only root can reach gets no unsandboxed warning', async () => {
    const cache = openCache(privateCache());
    const warnings: Warning[] = [];
    const pkg = await smallPackage();
    const got = await fetchDebs(cache, [pkg], { warn: (w) => warnings.push(w) });
    assert.equal(got.get(pkg.name)?.length, pkg.size);
    assert.equal(statSync(debPath(cache, pkg.sha256)).size, pkg.size);
    assert.deepEqual(
      warnings.filter((w) => /unsandboxed|sandbox/i.test(w.message)),
      [],
    );
  });
});
