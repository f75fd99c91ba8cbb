/**
 * A build never writes outside its own directories. A symlink from one layer
 * (`files:`, a local .deb) with an entry below it from another used to make the
 * disk writer, which stages the tree in a host directory for `mke2fs -d`, follow
 * the link on the host and create files wherever the link pointed. The real
 * `kjx build` with a disk output must refuse such a spec with an error naming
 * both layers and the spec position, and leave the link's target untouched.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { buildDeb } from '../fixtures/deb-fixtures.js';
import { removeAll, runKjx, workspace } from '../helpers/kjx.js';

const made: string[] = [];
after(() => removeAll(...made));

/** A local "kernel" (the disk writer only copies its bytes), busybox and runit, one output. */
function spec(output: string, files: string, extra = ''): string {
  return [
    'kernel:',
    '  image: ./bzImage',
    '  modules: []',
    'components: [busybox, runit]',
    `outputs: [${output}]`,
    'disk:',
    '  size: 160M',
    extra,
    'files:',
    files,
  ].join('\n');
}

function project(name: string, text: string): string {
  const ws = workspace(name, text);
  made.push(ws);
  writeFileSync(join(ws, 'bzImage'), 'not really a kernel');
  return ws;
}

/** An empty directory outside the build, where a followed link would write. */
function victimDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'kjx-victim-'));
  made.push(d);
  return d;
}

describe('a build never writes outside its own directories', () => {
  test('a files: symlink with a files: entry below it is refused for a raw disk; nothing lands outside', () => {
    const victim = victimDir();
    const ws = project(
      'escape-files',
      spec(
        'raw',
        [
          '  - path: /opt/evil',
          '    type: symlink',
          `    target: ${victim}`,
          '  - path: /opt/evil/x',
          '    content: "owned\\n"',
        ].join('\n'),
      ),
    );
    const r = runKjx(['build'], { cwd: ws, timeoutMs: 600_000 });
    assert.deepEqual(readdirSync(victim), [], 'the build wrote through the link onto the host');
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /\/opt\/evil\/x/, 'names the entry below the link');
    assert.match(r.stderr, /files\[0\] at kjx\.yaml:10:5/, 'names the link and where the spec gives it');
    assert.match(r.stderr, /files\[1\] at kjx\.yaml:13:5/, 'names the entry and where the spec gives it');
    assert.doesNotMatch(r.stderr, /internal error/);
    assert.equal(existsSync(join(ws, 'dist', 'kjx.img')), false, 'no disk image from a refused tree');
  });

  test('a symlink from a local .deb with a files: entry below it is refused for qcow2; nothing lands outside', () => {
    const victim = victimDir();
    const ws = project(
      'escape-deb',
      spec(
        'qcow2',
        ['  - path: /opt/evil/x', '    content: "owned\\n"'].join('\n'),
        'packages: [./evil.deb]',
      ),
    );
    writeFileSync(
      join(ws, 'evil.deb'),
      buildDeb({
        entries: [
          { name: './opt/', type: 'dir' },
          { name: './opt/evil', type: 'symlink', linkname: victim },
        ],
      }),
    );
    const r = runKjx(['build'], { cwd: ws, timeoutMs: 600_000 });
    assert.deepEqual(readdirSync(victim), [], 'the build wrote through the link onto the host');
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /package hello 1\.0-1/, 'names the package that gives the link');
    assert.match(r.stderr, /files\[0\] at kjx\.yaml:10:5/, 'names the entry and where the spec gives it');
    assert.equal(existsSync(join(ws, 'dist', 'kjx.qcow2')), false, 'no disk image from a refused tree');
  });

  const LINK = [
    '  - path: /opt/real',
    '    type: dir',
    '  - path: /opt/link',
    '    type: symlink',
    '    target: real',
  ];

  // the harmless form (a relative link inside the image) once ended a disk build in
  // "internal error" (ENOENT); it is refused alike before any output is written
  test('a relative symlink with a files: entry below it is refused with its position, for every output', () => {
    const ws = project(
      'link-all',
      spec(
        'initramfs, iso, raw, qcow2, vmdk, tar, oci',
        [...LINK, '  - path: /opt/link/ok.txt', '    content: "ok\\n"'].join('\n'),
      ),
    );
    const r = runKjx(['build'], { cwd: ws, timeoutMs: 600_000 });
    assert.equal(r.code, 5, r.stderr);
    assert.match(
      r.stderr,
      /\/opt\/link\/ok\.txt \(files\[2\] at kjx\.yaml:15:5\) lies below \/opt\/link, a symlink to real \(files\[1\] at kjx\.yaml:12:5\)/,
    );
    assert.match(r.stderr, /\/opt\/real\/ok\.txt/, 'the hint names where the file belongs');
    assert.doesNotMatch(r.stderr, /internal error/);
    assert.equal(existsSync(join(ws, 'dist')), false, 'no artifacts from a refused tree');
  });

  test("the file at the link's target builds, and kjx inspect follows the link in the middle of a path", () => {
    const ws = project(
      'link-ok',
      spec(
        'initramfs, raw, tar, oci',
        [...LINK, '  - path: /opt/real/ok.txt', '    content: "ok\\n"'].join('\n'),
      ),
    );
    const r = runKjx(['build'], { cwd: ws, timeoutMs: 600_000 });
    assert.equal(r.code, 0, r.stderr);
    for (const artifact of ['initramfs.cpio.gz', 'kjx.img', 'kjx.tar', 'kjx-oci.tar']) {
      const file = runKjx(['inspect', join('dist', artifact), '/opt/link/ok.txt'], { cwd: ws });
      assert.equal(file.code, 0, `${artifact}: ${file.stderr}`);
      assert.equal(file.stdout, 'ok\n', artifact);
      const dir = runKjx(['inspect', join('dist', artifact), '/opt/link'], { cwd: ws });
      assert.match(
        dir.stdout,
        /\/opt\/real\/ok\.txt/,
        `${artifact}: a link to a directory lists the directory`,
      );
    }
  });
});
