/**
 * The validated spec kept per text (pipeline/spec-cache.ts): the same spec as
 * loadSpec gives, its source attached; any changed byte, a torn entry or a spec
 * whose validation reads other files goes through the full loader again.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadSpecCached } from '../../src/pipeline/spec-cache.js';
import { loadSpec } from '../../src/spec/load.js';
import { kjxError } from '../helpers/kjx-error.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function setup(text: string) {
  const d = mkdtempSync(join(tmpdir(), 'kjx-spec-cache-'));
  dirs.push(d);
  const path = join(d, 'kjx.yaml');
  writeFileSync(path, text);
  const cache = { root: join(d, 'cache') };
  const entries = () => (existsSync(join(cache.root, 'specs')) ? readdirSync(join(cache.root, 'specs')) : []);
  return { d, path, cache, entries };
}

const SPEC = 'name: cached\nservices:\n  web:\n    run: httpd -f -p 8080\n';

test('a spec read twice: kept after the first, the same spec (source included) the second time', async () => {
  const { path, cache, entries } = setup(SPEC);
  const first = await loadSpecCached(path, cache);
  assert.equal(entries().length, 1);
  const second = await loadSpecCached(path, cache);
  const direct = loadSpec(path);
  assert.deepEqual(second, direct);
  assert.deepEqual(first, direct);
  assert.deepEqual(second.source, { file: path, text: SPEC });
  assert.equal(second.services.web?.run, 'httpd -f -p 8080');
  assert.equal(entries().length, 1);
});

test('one changed byte is validated again: a bad edit is refused although the old text was kept', async () => {
  const { path, cache, entries } = setup(SPEC);
  await loadSpecCached(path, cache);
  writeFileSync(path, SPEC.replace('cached', 'cachee'));
  assert.equal((await loadSpecCached(path, cache)).name, 'cachee');
  assert.equal(entries().length, 2);
  writeFileSync(path, `${SPEC}memory: lots\n`);
  await assert.rejects(loadSpecCached(path, cache), kjxError('SPEC_INVALID', { message: /memory/ }));
  await assert.rejects(loadSpecCached(path, cache), kjxError('SPEC_INVALID'));
  assert.equal(entries().length, 2, 'a refused spec was kept');
});

test('a torn or foreign entry is validated again and replaced', async () => {
  const { path, cache, entries } = setup(SPEC);
  await loadSpecCached(path, cache);
  const entry = join(cache.root, 'specs', entries()[0]!);
  for (const junk of ['{"format":1,"spec":', '{"format":99,"spec":{}}', '{"format":1,"spec":null}']) {
    writeFileSync(entry, junk);
    assert.deepEqual(await loadSpecCached(path, cache), loadSpec(path));
  }
});

test('a missing spec is the loader error; an unwritable cache only costs validation', async () => {
  const { d, path, cache } = setup(SPEC);
  await assert.rejects(loadSpecCached(join(d, 'nope.yaml'), cache), kjxError('SPEC_NOT_FOUND'));
  // a file where the cache's directory should be: nothing can be kept there
  mkdirSync(cache.root, { recursive: true });
  writeFileSync(join(cache.root, 'specs'), 'not a directory');
  assert.deepEqual(await loadSpecCached(path, cache), loadSpec(path));
});

test('a spec naming a component file is not kept: the file is checked every time', async () => {
  const { d, path, cache, entries } = setup('name: withfile\ncomponents: [busybox, ./hello.yaml]\n');
  writeFileSync(join(d, 'hello.yaml'), 'name: hello\n');
  const spec = await loadSpecCached(path, cache);
  assert.equal(spec.componentFiles?.[0]?.name, 'hello');
  assert.deepEqual(entries(), []);
  // the component file goes bad; kjx.yaml did not change
  writeFileSync(join(d, 'hello.yaml'), 'name: hello\nbogus: 1\n');
  await assert.rejects(loadSpecCached(path, cache), kjxError('SPEC_INVALID', { message: /bogus/ }));
});
