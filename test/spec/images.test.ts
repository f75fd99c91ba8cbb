/**
 * `images:` in kjx.yaml: host archives are checked while loading (exists, an
 * uncompressed tar with manifest.json or index.json), every problem positioned
 * at its line; built images get their defaults.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { ociArchive } from '../../src/image/oci.js';
import { writeTar } from '../../src/image/tar-writer.js';
import { rootsOf } from '../../src/plan/resolve.js';
import { makeReproducible } from '../../src/rootfs/reproducible.js';
import { mk, newTree } from '../../src/rootfs/tree.js';
import { readImageArchive } from '../../src/sources/image-archive.js';
import { imageArchiveProblem } from '../../src/spec/image-archive-check.js';
import { parseSpec } from '../../src/spec/load.js';
import type { ErrorCode, KjxError } from '../../src/util/errors.js';
import { assertKjxError } from '../helpers/kjx-error.js';
import { needsTool } from '../helpers/prereq.js';

const SRC = { kind: 'generated', by: 'test' } as const;
const dir = mkdtempSync(join(tmpdir(), 'kjx-images-spec-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const SPEC = join(dir, 'kjx.yaml');

function image(): Buffer {
  const t = newTree();
  t.set('/bin/sh', mk.file('/bin/sh', 'x', SRC, 0o755));
  return ociArchive({ rootfs: makeReproducible(t, 1_700_000_000), name: 'kjx/app', tag: '1' });
}

// fixtures next to the spec
writeFileSync(join(dir, 'app.tar'), image());
writeFileSync(join(dir, 'app.tar.gz'), gzipSync(image()));
writeFileSync(join(dir, 'notes.txt'), 'not an archive\n'.repeat(100));
writeFileSync(join(dir, 'empty.tar'), Buffer.alloc(0));
const plain = newTree();
plain.set('/etc/motd', mk.file('/etc/motd', 'hi\n', SRC));
writeFileSync(join(dir, 'rootfs.tar'), writeTar(makeReproducible(plain, 0)));
writeFileSync(join(dir, 'cut.tar'), image().subarray(0, 1536));
// cut inside the header of the last member: manifest.json and index.json came through whole
const lastHeader = image().indexOf('repositories\0');
writeFileSync(join(dir, 'cut-header.tar'), image().subarray(0, lastHeader + 300));
const only = (files: Record<string, string>): Buffer => {
  const t = newTree();
  for (const [name, text] of Object.entries(files)) t.set(`/${name}`, mk.file(`/${name}`, text, SRC));
  return writeTar(makeReproducible(t, 0));
};
writeFileSync(join(dir, 'index-only.tar'), only({ 'index.json': '{"manifests": []}' }));
writeFileSync(
  join(dir, 'bad-json.tar'),
  only({ 'oci-layout': '{}', 'index.json': '{"manifests": [', blob: 'x' }),
);
mkdirSync(join(dir, 'adir'));

function failure(yaml: string, code: ErrorCode = 'SPEC_INVALID'): KjxError {
  try {
    parseSpec(yaml, SPEC);
  } catch (e) {
    assertKjxError(e, code);
    return e;
  }
  assert.fail('expected an error, but the spec parsed');
}

/** The first problem, at `line:col`, says `says`. */
function problem(yaml: string, at: string, says: RegExp): void {
  const e = failure(yaml);
  assert.ok(e.message.startsWith(`${SPEC}:${at}: `), `expected ${at} in ${e.message}`);
  assert.match(e.message, says);
}

describe('images: host archives', () => {
  test('an archive relative to kjx.yaml is taken, path resolved', () => {
    const spec = parseSpec('images:\n  - name: app\n    archive: ./app.tar\n', SPEC);
    assert.deepEqual(spec.images, [
      { kind: 'archive', name: 'app', archive: join(dir, 'app.tar'), archiveRef: './app.tar' },
    ]);
    assert.equal(imageArchiveProblem(join(dir, 'app.tar')), undefined);
  });

  test('archives GNU tar writes (gnu, pax, v7 formats, "./" names) are accepted', {
    skip: needsTool('tar'),
  }, () => {
    const src = join(dir, 'gnu-src');
    mkdirSync(join(src, 'blobs'), { recursive: true });
    writeFileSync(join(src, 'manifest.json'), '[]');
    writeFileSync(join(src, 'blobs', 'x'), Buffer.alloc(5000, 1));
    for (const format of ['gnu', 'posix', 'v7']) {
      const out = join(dir, `${format}.tar`);
      const r = spawnSync('tar', [`--format=${format}`, '-cf', out, '-C', src, '.'], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(imageArchiveProblem(out), undefined, format);
    }
  });

  test('a missing file, at its line', () => {
    problem(
      'images:\n  - name: app\n    archive: ./nope.tar\n',
      '3:14',
      /images\[0\]\.archive: \.\/nope\.tar does not exist/,
    );
  });

  test('a directory', () => {
    problem('images:\n  - name: app\n    archive: adir\n', '3:14', /adir is not a file/);
  });

  test('an archive larger than Node can read in one piece (a sparse 3 GiB file) is refused at its line', () => {
    const big = join(dir, 'big.tar');
    writeFileSync(big, '');
    truncateSync(big, 3 * 1024 ** 3);
    try {
      problem(
        'images:\n  - name: app\n    archive: big.tar\n',
        '3:14',
        /big\.tar is 3221225472 bytes; kjx bakes image archives of at most/,
      );
    } finally {
      rmSync(big);
    }
  });

  test('not a tar', () => {
    problem('images:\n  - name: app\n    archive: notes.txt\n', '3:14', /notes\.txt is not a tar archive/);
    problem('images:\n  - name: app\n    archive: empty.tar\n', '3:14', /is not a tar archive \(empty/);
  });

  test('a compressed archive: say how to decompress it', () => {
    problem('images:\n  - name: app\n    archive: app.tar.gz\n', '3:14', /gzip-compressed.*gunzip/);
  });

  test('a tar that is no container image', () => {
    problem(
      'images:\n  - name: app\n    archive: rootfs.tar\n',
      '3:14',
      /without manifest\.json, or oci-layout and index\.json/,
    );
  });

  test('index.json without oci-layout is no image layout (as kjx inspect reads them)', () => {
    problem(
      'images:\n  - name: app\n    archive: index-only.tar\n',
      '3:14',
      /without manifest\.json, or oci-layout and index\.json/,
    );
  });

  test('a truncated archive', () => {
    problem('images:\n  - name: app\n    archive: cut.tar\n', '3:14', /truncated|damaged/);
  });

  test('an archive cut inside a tar header is truncated', () => {
    assert.equal(lastHeader % 512, 0, 'the fixture cuts a header');
    assert.match(
      imageArchiveProblem(join(dir, 'cut-header.tar')) ?? '',
      /^is truncated \(cut inside the tar header at offset \d+\)/,
    );
  });

  test('every bad archive is listed, in file order', () => {
    const e = failure('images:\n  - name: a\n    archive: nope.tar\n  - name: b\n    archive: notes.txt\n');
    assert.equal(e.details.length, 2);
    assert.match(e.details[1]!, /:5:14: images\[1\]\.archive: notes\.txt is not a tar/);
  });

  test('the build reads it whole and names the entry when it went bad since', () => {
    assert.equal(
      readImageArchive(join(dir, 'app.tar'), 'images[0] (app): archive app.tar').length,
      image().length,
    );
    assert.throws(
      () => readImageArchive(join(dir, 'bad-json.tar'), 'images[0] (app): archive bad-json.tar'),
      {
        code: 'SPEC_INVALID',
        message: /^images\[0\] \(app\): archive bad-json\.tar is damaged: index\.json is not valid JSON/,
      },
    );
    assert.throws(() => readImageArchive(join(dir, 'gone.tar'), 'images[0] (app): archive gone.tar'), {
      code: 'INPUT_NOT_FOUND',
      message: /^images\[0\] \(app\): archive gone\.tar does not exist/,
    });
  });
});

describe('images: entries', () => {
  test('from: busybox-static, with its defaults; the package is planned', () => {
    const spec = parseSpec('images:\n  - name: smoke\n    from: busybox-static\n', SPEC);
    assert.deepEqual(spec.images, [
      {
        kind: 'build',
        name: 'smoke',
        from: 'busybox-static',
        image: 'kjx/smoke',
        tag: 'latest',
        cmd: ['/bin/sh'],
      },
    ]);
    assert.ok(rootsOf(spec).includes('busybox-static'));
    assert.ok(!rootsOf(parseSpec('', SPEC)).includes('busybox-static'), 'not without images');
  });

  test('from with image and cmd', () => {
    const spec = parseSpec(
      'images:\n  - name: smoke\n    from: busybox-static\n    image: registry.example:5000/lab/bb:v1\n    cmd: [/bin/echo, hi]\n',
      SPEC,
    );
    assert.deepEqual(spec.images[0], {
      kind: 'build',
      name: 'smoke',
      from: 'busybox-static',
      image: 'registry.example:5000/lab/bb',
      tag: 'v1',
      cmd: ['/bin/echo', 'hi'],
    });
  });

  test('bad name', () => {
    problem(
      'images:\n  - name: ../evil\n    from: busybox-static\n',
      '2:11',
      /images\[0\]\.name: expected a name of lowercase/,
    );
    problem('images:\n  - name: Smoke\n    from: busybox-static\n', '2:11', /images\[0\]\.name/);
    problem(
      'images:\n  - name: a..b\n    from: busybox-static\n',
      '2:11',
      /no image name; give one with "image:"/,
    );
  });

  test('bad image reference', () => {
    problem(
      'images:\n  - name: s\n    from: busybox-static\n    image: Kjx/Smoke\n',
      '4:12',
      /image name "Kjx\/Smoke"/,
    );
    problem(
      'images:\n  - name: s\n    from: busybox-static\n    image: kjx/s:+1\n',
      '4:12',
      /image tag "\+1"/,
    );
    problem('images:\n  - name: s\n    from: busybox-static\n    image: kjx/s@sha256:00\n', '4:12', /digest/);
  });

  test('archive and from exclude each other; one is needed', () => {
    problem(
      'images:\n  - name: s\n    archive: app.tar\n    from: busybox-static\n',
      '4:11',
      /either "archive" or "from"/,
    );
    problem('images:\n  - name: s\n', '2:5', /needs "archive" \(a host file\) or "from"/);
    problem(
      'images:\n  - name: s\n    archive: app.tar\n    image: x:1\n',
      '4:12',
      /"image" is only for images built with "from"/,
    );
  });

  test('unknown builder and unknown key', () => {
    problem('images:\n  - name: s\n    from: alpine\n', '3:11', /busybox-static/);
    problem('images:\n  - name: s\n    from: busybox-static\n    tag: x\n', '4:5', /unknown key "tag"/);
  });

  test('a name given twice', () => {
    problem(
      'images:\n  - name: s\n    from: busybox-static\n  - name: s\n    archive: app.tar\n',
      '4:11',
      /"s" is already given by images\[0\]/,
    );
  });
});

describe('outputs: [oci]', () => {
  test('the name must make an image name kjx/<name>; the version becomes a tag', () => {
    problem(
      'name: my_\noutputs: [oci]\n',
      '1:7',
      /outputs: oci names the image kjx\/my_:0\.1\.0, and image name "kjx\/my_"/,
    );
    assert.equal(parseSpec('name: my_\n', SPEC).name, 'my_', 'fine without the oci output');
    assert.equal(parseSpec('name: lab\nversion: "1.0+rc~1"\noutputs: [oci]\n', SPEC).version, '1.0+rc~1');
  });
});
