/**
 * `kjx inspect` and `kjx diff` on an image whose file names and link targets hold
 * terminal escapes and line breaks: the real CLI prints them escaped.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { writeTar } from '../../src/image/tar-writer.js';
import { makeReproducible } from '../../src/rootfs/reproducible.js';
import { ensureParents, mk, newTree } from '../../src/rootfs/tree.js';
import { runKjx } from '../helpers/kjx.js';

const SRC = { kind: 'generated', by: 'test' } as const;
const EVIL = 'a\x1b[2Jb\nc';
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'kjx-names-'));
  const tree = newTree();
  for (const e of [
    mk.dir('/', SRC),
    mk.file(`/etc/${EVIL}`, 'x', SRC),
    mk.symlink('/etc/link', `/tmp/${EVIL}\u202e`, SRC),
    mk.file('/etc/passwd', `ro\x1b]0;owned\x07ot:x:0:0::/:/bin/sh\n`, SRC),
  ])
    tree.set(e.path, e);
  ensureParents(tree, SRC);
  writeFileSync(join(dir, 'evil.tar'), writeTar(makeReproducible(tree, 0)));
  tree.delete('/etc/link');
  writeFileSync(join(dir, 'other.tar'), writeTar(makeReproducible(tree, 0)));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const RAW = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]/;

test('inspect prints names, link targets and owner names with control characters escaped', () => {
  const r = runKjx(['inspect', 'evil.tar'], { cwd: dir, timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout, RAW);
  assert.ok(r.stdout.includes('/etc/a\\x1b[2Jb\\nc'), r.stdout);
  assert.ok(r.stdout.includes('/etc/link -> /tmp/a\\x1b[2Jb\\nc\\u{202e}'), r.stdout);
  assert.ok(r.stdout.includes('ro\\x1b]0;owned\\x07ot'), r.stdout);
  // every entry is one line: the newline in the name did not start another
  assert.equal(r.stdout.trimEnd().split('\n').length, 5, r.stdout);
});

test('diff and an error quoting a name print them escaped', () => {
  const d = runKjx(['diff', 'evil.tar', 'other.tar'], { cwd: dir, timeoutMs: 120_000 });
  assert.equal(d.code, 1, d.stderr);
  assert.doesNotMatch(d.stdout, RAW);
  assert.match(d.stdout, /^- \/etc\/link {2}\(symlink/m);
  const missing = runKjx(['inspect', 'evil.tar', `/etc/${EVIL}x`], { cwd: dir, timeoutMs: 120_000 });
  assert.notEqual(missing.code, 0);
  assert.doesNotMatch(missing.stderr, RAW);
  assert.ok(missing.stderr.includes('/etc/a\\x1b[2Jb\\ncx is not in'), missing.stderr);
});
