/**
 * Bad input through the real `kjx` command: each case gets a clear, positioned
 * message and a documented exit status, and nothing is written where it must not be.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { buildDeb } from '../fixtures/deb-fixtures.js';
import { removeAll, runKjx, workspace } from '../helpers/kjx.js';

const made: string[] = [];
after(() => removeAll(...made));

function project(name: string, spec: string): string {
  const ws = workspace(name, spec);
  made.push(ws);
  return ws;
}

/** A tiny spec that needs no kernel download: a local "kernel" file and no modules. */
function localKernelSpec(extra: string): string {
  return `kernel:\n  image: ./bzImage\n  modules: []\ncomponents: [busybox, runit]\n${extra}`;
}

describe('kjx build refuses bad input', () => {
  const specCases: { name: string; yaml: string; where: string; says: RegExp }[] = [
    { name: 'yaml syntax', yaml: 'name: "kjx\n', where: 'kjx.yaml:1:7', says: /quote|string/i },
    { name: 'wrong type', yaml: 'hostname: 42\n', where: 'kjx.yaml:1:11', says: /hostname/ },
    { name: 'unknown key', yaml: 'hostnme: kjx\n', where: 'kjx.yaml:1:1', says: /did you mean "hostname"/ },
    { name: 'list expected', yaml: 'packages: busybox\n', where: 'kjx.yaml:1:11', says: /packages.*list/ },
    { name: 'bad enum', yaml: 'compression: lzma\n', where: 'kjx.yaml:1:14', says: /gzip, zstd, xz, none/ },
    {
      name: 'relative guest path',
      yaml: 'files:\n  - path: etc/motd\n    content: hi\n',
      where: 'kjx.yaml:2:11',
      says: /files\[0\]\.path/,
    },
  ];
  for (const c of specCases) {
    test(`spec: ${c.name} -> exit 3 with file:line:col`, () => {
      const ws = project('spec', c.yaml);
      const r = runKjx(['build'], { cwd: ws });
      assert.equal(r.code, 3, r.stderr);
      assert.ok(r.stderr.includes(c.where), `expected ${c.where} in:\n${r.stderr}`);
      assert.match(r.stderr, c.says);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace for a known error');
      assert.equal(existsSync(join(ws, 'dist')), false, 'nothing written');
    });
  }

  test('a missing spec file says how to make one', () => {
    const ws = project('nospec', '');
    const r = runKjx(['build', '-f', 'nope.yaml'], { cwd: ws });
    assert.equal(r.code, 3);
    assert.match(r.stderr, /nope\.yaml/);
    assert.match(r.stderr, /kjx init/);
  });

  test('an unknown package is named', () => {
    const ws = project('unknownpkg', 'packages: [kjx-no-such-package-xyz]\n');
    const r = runKjx(['build'], { cwd: ws });
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /unknown Debian package: kjx-no-such-package-xyz/);
    assert.equal(existsSync(join(ws, 'kjx.lock')), false, 'no lock for a failed resolution');
  });

  test('a .deb with ../ entries and an escaping symlink is refused; nothing lands outside', () => {
    const ws = project('evil', localKernelSpec('packages: [./evil.deb]\n'));
    writeFileSync(join(ws, 'bzImage'), 'not really a kernel');
    const victim = join(dirname(ws), `kjx-escaped-${process.pid}`);
    for (const [file, entries] of [
      ['evil.deb', [{ name: `./../../../..${victim}`, type: 'file' as const, data: 'owned' }]],
      [
        'evil2.deb',
        [{ name: './usr/lib/x', type: 'symlink' as const, linkname: '../../../../../etc/shadow' }],
      ],
    ] as const) {
      writeFileSync(join(ws, file), buildDeb({ entries: [...entries] }));
      const spec = localKernelSpec(`packages: [./${file}]\n`);
      writeFileSync(join(ws, 'kjx.yaml'), spec);
      const r = runKjx(['build'], { cwd: ws });
      assert.equal(r.code, 5, r.stderr);
      assert.match(r.stderr, /hello/, 'names the package');
      assert.match(r.stderr, file === 'evil.deb' ? /\.\.\// : /usr\/lib\/x/, 'names the entry');
      assert.equal(existsSync(victim), false, 'a file escaped the staging area');
      assert.equal(existsSync(join(ws, 'dist')), false, 'no artifacts from a refused package');
    }
  });

  test('a truncated .deb is an error, not a crash', () => {
    const ws = project('trunc', localKernelSpec('packages: [./cut.deb]\n'));
    writeFileSync(join(ws, 'bzImage'), 'not really a kernel');
    const deb = buildDeb({ entries: [{ name: './usr/bin/hello', type: 'file', data: 'x'.repeat(5000) }] });
    writeFileSync(join(ws, 'cut.deb'), deb.subarray(0, deb.length - 700));
    const r = runKjx(['build'], { cwd: ws });
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /cut\.deb/);
    assert.doesNotMatch(r.stderr, /internal error/);
  });

  test('a host file named by files: that does not exist', () => {
    const ws = project('nofile', localKernelSpec('files:\n  - path: /etc/motd\n    from: ./motd.txt\n'));
    writeFileSync(join(ws, 'bzImage'), 'x');
    const r = runKjx(['build'], { cwd: ws });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /motd\.txt/);
  });

  test('unknown kernel module gets a suggestion', () => {
    const ws = project('badmod', 'kernel:\n  modules: [virtio_nett]\n');
    const r = runKjx(['build'], { cwd: ws });
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /virtio_nett/);
    assert.match(r.stderr, /virtio_net\b/);
  });

  test('a usage error exits 2', () => {
    const ws = project('usage', '');
    const r = runKjx(['build', '--no-such-flag'], { cwd: ws });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown option/);
  });

  test('--help and --version on every command', () => {
    const ws = project('help', '');
    for (const args of [['--help'], ['build', '--help'], ['init', '--help'], ['doctor', '--help']]) {
      const r = runKjx(args, { cwd: ws });
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, /Usage: kjx/);
    }
    const v = runKjx(['--version'], { cwd: ws });
    assert.match(v.stdout.trim(), /^\d+\.\d+\.\d+$/);
  });

  test('kjx init refuses to overwrite without --force', () => {
    const ws = project('init', 'name: mine\n');
    const r = runKjx(['init'], { cwd: ws });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--force/);
    mkdirSync(join(ws, 'sub'));
    assert.equal(runKjx(['init', '-f', 'sub/kjx.yaml'], { cwd: ws }).code, 0);
    assert.ok(readdirSync(join(ws, 'sub')).includes('kjx.yaml'));
  });
});
