import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import {
  fullImageName,
  imageReferenceProblem,
  type OciImageInput,
  ociArchive,
  ociLayout,
} from '../../src/image/oci.js';
import { imageArchiveTree, isImageArchive } from '../../src/image/oci-reader.js';
import { tarToTree } from '../../src/image/tar-tree.js';
import { writeTar } from '../../src/image/tar-writer.js';
import { makeReproducible } from '../../src/rootfs/reproducible.js';
import { type EntrySource, mk, newTree, type Tree, type TreeEntry } from '../../src/rootfs/tree.js';
import { parseTar, type TarEntry } from '../../src/sources/tar.js';
import { newBudget } from '../../src/util/budget.js';
import { kjxError } from '../helpers/kjx-error.js';
import { needsTool } from '../helpers/prereq.js';

const SRC: EntrySource = { kind: 'generated', by: 'test' };
const EPOCH = 1_704_067_200;
const LONG = `/usr/share/${'d'.repeat(90)}/${'e'.repeat(90)}/file`;
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function treeOf(entries: TreeEntry[]): Tree {
  const t = newTree();
  for (const e of entries) t.set(e.path, e);
  return t;
}

function sample(): Tree {
  return treeOf([
    mk.file('/bin/busybox', Buffer.alloc(3000, 7), SRC, 0o755),
    mk.symlink('/bin/sh', 'busybox', SRC),
    mk.file('/etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n', SRC),
    { ...mk.file('/home/u/.profile', 'PS1=$ \n', SRC), uid: 1000, gid: 1000, mtime: EPOCH + 999 },
    {
      type: 'hardlink',
      path: '/bin/ash',
      target: '/bin/busybox',
      mode: 0o755,
      uid: 0,
      gid: 0,
      mtime: 0,
      source: SRC,
    },
    mk.dir('/tmp', SRC, 0o1777),
    mk.file(LONG, 'long\n', SRC),
  ]);
}

/** What an input may change: its fields, and the tree before the reproducibility pass. */
type Over = Partial<Omit<OciImageInput, 'rootfs'>> & { tree?: Tree };

function input(over: Over = {}): OciImageInput {
  const { tree = sample(), ...rest } = over;
  return {
    rootfs: makeReproducible(tree, EPOCH),
    name: 'kjx/smoke',
    tag: '0.1.0',
    config: { Cmd: ['/bin/sh'], Env: ['PATH=/bin'], Labels: { z: '1', a: '2' } },
    ...rest,
  };
}

/** The archive's files by name, read back with our own tar reader. */
function files(archive: Buffer): {
  entries: TarEntry[];
  file: (name: string) => Buffer;
  // biome-ignore lint/suspicious/noExplicitAny: JSON documents, read field by field in assertions
  json: (name: string) => any;
} {
  const entries = parseTar(archive, 'image.tar');
  const file = (name: string): Buffer => {
    const e = entries.find((x) => x.name === name);
    assert.ok(e, `archive has ${name}`);
    return e.data;
  };
  return { entries, file, json: (name) => JSON.parse(file(name).toString('utf8')) };
}

const hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const blobPath = (digest: string) => `blobs/sha256/${digest.replace(/^sha256:/, '')}`;

describe('ociArchive', () => {
  test('every digest and size in index, manifest and config matches the blob it names', () => {
    const a = files(ociArchive(input()));
    assert.deepEqual(a.json('oci-layout'), { imageLayoutVersion: '1.0.0' });
    for (const e of a.entries.filter((x) => x.name.startsWith('blobs/sha256/') && x.type === 'file'))
      assert.equal(hex(e.data), e.name.slice('blobs/sha256/'.length), `${e.name} is named by its digest`);

    const index = a.json('index.json');
    assert.equal(index.schemaVersion, 2);
    assert.equal(index.mediaType, 'application/vnd.oci.image.index.v1+json');
    assert.equal(index.manifests.length, 1);
    const m = index.manifests[0];
    assert.equal(m.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(m.size, a.file(blobPath(m.digest)).length);
    assert.deepEqual(m.annotations, {
      'io.containerd.image.name': 'docker.io/kjx/smoke:0.1.0',
      'org.opencontainers.image.ref.name': '0.1.0',
    });
    assert.deepEqual(m.platform, { architecture: 'amd64', os: 'linux' });

    const manifest = a.json(blobPath(m.digest));
    assert.equal(manifest.schemaVersion, 2);
    assert.equal(manifest.config.mediaType, 'application/vnd.oci.image.config.v1+json');
    assert.equal(manifest.config.size, a.file(blobPath(manifest.config.digest)).length);
    assert.equal(manifest.layers.length, 1);
    const [layer] = manifest.layers;
    assert.equal(layer.mediaType, 'application/vnd.oci.image.layer.v1.tar');
    assert.equal(layer.size, a.file(blobPath(layer.digest)).length);

    const config = a.json(blobPath(manifest.config.digest));
    assert.deepEqual(
      config.rootfs,
      { type: 'layers', diff_ids: [layer.digest] },
      'uncompressed: diff_id = digest',
    );
    assert.equal(config.architecture, 'amd64');
    assert.equal(config.os, 'linux');
    assert.equal(config.created, '2024-01-01T00:00:00Z');
    assert.deepEqual(config.history, [{ created: '2024-01-01T00:00:00Z', created_by: 'kjx' }]);
    assert.deepEqual(config.config, { Env: ['PATH=/bin'], Cmd: ['/bin/sh'], Labels: { a: '2', z: '1' } });
    assert.deepEqual(Object.keys(config.config.Labels), ['a', 'z'], 'labels sorted');

    // the docker-save view names the same blobs
    assert.deepEqual(a.json('manifest.json'), [
      {
        Config: blobPath(manifest.config.digest),
        RepoTags: ['kjx/smoke:0.1.0'],
        Layers: [blobPath(layer.digest)],
      },
    ]);
    assert.deepEqual(a.json('repositories'), { 'kjx/smoke': { '0.1.0': layer.digest.slice(7) } });
  });

  test('the outer archive: bare sorted names, root-owned, mtime = SOURCE_DATE_EPOCH', () => {
    const { entries } = files(ociArchive(input()));
    const names = entries.map((e) => e.name);
    assert.deepEqual(names, [...names].sort());
    assert.deepEqual(names.slice(0, 2), ['blobs/', 'blobs/sha256/']);
    assert.deepEqual(names.slice(-4), ['index.json', 'manifest.json', 'oci-layout', 'repositories']);
    assert.equal(names.length, 9, 'two directories, three blobs, four files');
    for (const e of entries) {
      assert.deepEqual([e.uid, e.gid, e.mtime], [0, 0, EPOCH], e.name);
      assert.equal(e.mode, e.type === 'dir' ? 0o755 : 0o644, e.name);
    }
  });

  test('the layer holds the tree: bare sorted names, owners and modes kept, mtimes clamped, parents added', () => {
    // LONG fits ustar's prefix + name fields; a 120-byte base name does not and needs a pax header
    const paxLong = `/opt/${'p'.repeat(120)}`;
    const tree = sample();
    tree.set(paxLong, mk.file(paxLong, 'pax\n', SRC));
    const layout = ociLayout(input({ tree }));
    const layerData = (layout.tree.get(`/${blobPath(layout.layer.digest)}`) as { data: Buffer }).data;
    const entries = parseTar(layerData, 'layer.tar');
    const names = entries.map((e) => e.name);
    assert.deepEqual(names, [...names].sort(), 'sorted');
    assert.ok(!names.some((n) => n.startsWith('./') || n.startsWith('/')), 'no "./" or "/" prefix');
    assert.ok(!names.includes('./') && !names.includes(''), 'no root entry');
    assert.ok(names.includes('home/') && names.includes('home/u/'), 'parents added');
    const back = tarToTree(entries, 'layer.tar', SRC);
    const at = (p: string) => back.get(p)!;
    assert.equal(at('/bin/busybox').mode, 0o755);
    assert.deepEqual([at('/home/u/.profile').uid, at('/home/u/.profile').gid], [1000, 1000]);
    assert.equal(at('/home/u/.profile').mtime, EPOCH, 'clamped to the epoch');
    assert.equal(at('/tmp').mode, 0o1777);
    assert.deepEqual(
      [at('/bin/sh').type, (at('/bin/sh') as { target: string }).target],
      ['symlink', 'busybox'],
    );
    // the first name of a hard-linked inode carries the data, like tar writes it
    assert.deepEqual([at('/bin/ash').type, at('/bin/busybox').type], ['file', 'hardlink']);
    assert.equal((at('/bin/busybox') as { target: string }).target, '/bin/ash');
    assert.equal((at(LONG) as { data: Buffer }).data.toString(), 'long\n', 'long name through ustar prefix');
    assert.equal(
      (at(paxLong) as { data: Buffer }).data.toString(),
      'pax\n',
      'long name through a pax header',
    );
    // the long name does not fit ustar's name/prefix fields: a pax "x" header carries it
    const paxHeaders: string[] = [];
    for (let off = 0; off + 512 <= layerData.length; ) {
      const h = layerData.subarray(off, off + 512);
      if (h.every((b) => b === 0)) break;
      const size = Number.parseInt(
        h.subarray(124, 136).toString('latin1').replace(/\0.*$/, '').trim() || '0',
        8,
      );
      if (String.fromCharCode(h[156]!) === 'x')
        paxHeaders.push(layerData.subarray(off + 512, off + 512 + size).toString('utf8'));
      off += 512 + Math.ceil(size / 512) * 512;
    }
    const longName = paxLong.slice(1);
    assert.ok(
      paxHeaders.some((body) => body.includes(` path=${longName}\n`)),
      'a pax header holds the long name',
    );
    assert.ok(
      entries.some((e) => e.name === longName),
      'the long name is read back whole',
    );
    assert.ok(
      layerData.includes('PaxHeaders/') && !layerData.includes('./PaxHeaders'),
      'pax header names are bare too',
    );
  });

  test('same input, same bytes; entry order of the tree does not matter', () => {
    const a = ociArchive(input());
    const reversed = treeOf([...sample().values()].reverse());
    assert.deepEqual(ociArchive(input({ tree: reversed })), a);
    assert.equal(a.length % 10240, 0, 'whole tar records');
  });

  test('another tag changes index.json, manifest.json and repositories only: the blobs stay', () => {
    const a = files(ociArchive(input()));
    const b = files(ociArchive(input({ tag: 'latest' })));
    const differ = a.entries
      .filter((e) => !b.file(e.name).equals(e.data))
      .map((e) => e.name)
      .sort();
    assert.deepEqual(differ, ['index.json', 'manifest.json', 'repositories']);
    assert.equal(
      b.json('index.json').manifests[0].annotations['io.containerd.image.name'],
      'docker.io/kjx/smoke:latest',
    );
  });

  test('another config changes the config blob and the manifest, never the layer', () => {
    const a = ociLayout(input());
    const b = ociLayout(input({ config: { Cmd: ['/bin/true'] } }));
    assert.equal(a.layer.digest, b.layer.digest);
    assert.notEqual(a.config.digest, b.config.digest);
    assert.notEqual(a.manifest.digest, b.manifest.digest);
    const c = files(ociArchive(input({ config: {} })));
    const manifest = c.json(blobPath(c.json('index.json').manifests[0].digest));
    assert.deepEqual(c.json(blobPath(manifest.config.digest)).config, {}, 'nothing given, nothing written');
  });

  test('device nodes and fifos survive in the layer', () => {
    const t = sample();
    t.set('/dev/console', mk.char('/dev/console', 5, 1, SRC));
    const layout = ociLayout(input({ tree: t }));
    const data = (layout.tree.get(`/${blobPath(layout.layer.digest)}`) as { data: Buffer }).data;
    const dev = parseTar(data, 'layer').find((e) => e.name === 'dev/console')!;
    assert.deepEqual([dev.type, dev.devmajor, dev.devminor], ['char', 5, 1]);
  });

  test('GNU tar lists the archive and its layer', {
    skip: needsTool('tar'),
  }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'kjx-oci-'));
    dirs.push(dir);
    const file = join(dir, 'image.tar');
    writeFileSync(file, ociArchive(input()));
    const list = spawnSync('tar', ['-tvf', file], { encoding: 'utf8' });
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stdout, /^-rw-r--r-- root\/root +\d+ 2024-01-01 00:00 index\.json$/m);
    const x = spawnSync('tar', ['-xf', file, '-C', dir], { encoding: 'utf8' });
    assert.equal(x.status, 0, x.stderr);
    const layer = JSON.parse(spawnSync('cat', [join(dir, 'manifest.json')], { encoding: 'utf8' }).stdout)[0]
      .Layers[0];
    const inner = spawnSync('tar', ['-tvf', join(dir, layer)], { encoding: 'utf8' });
    assert.equal(inner.status, 0, inner.stderr);
    assert.match(inner.stdout, /^-rw-r--r-- 1000\/1000 +7 2024-01-01 00:00 home\/u\/\.profile$/m);
    assert.match(inner.stdout, /^hrwxr-xr-x root\/root +0 1970-01-01 00:00 bin\/busybox link to bin\/ash$/m);
  });
});

describe('hostile input', () => {
  const refused = (over: Over, re: RegExp) =>
    assert.throws(() => ociArchive(input(over)), kjxError('TREE_INVALID', re));

  test('paths that are not normalized, or climb above the root, are refused', () => {
    for (const bad of ['/a/../../etc/passwd', '/a/./b', '/a//b', 'relative', '/a/']) {
      const t = sample();
      t.set(bad, { ...mk.file('/x', 'x', SRC), path: bad });
      refused({ tree: t }, /image entry/);
    }
  });

  test('an entry stored under another key is refused', () => {
    const t = sample();
    t.set('/etc/motd', mk.file('/etc/../../motd', 'x', SRC));
    refused({ tree: t }, /is stored as/);
  });

  test('whiteout names are refused: they would delete files when the layer is applied', () => {
    for (const p of ['/etc/.wh.passwd', '/.wh..wh..opq']) {
      const t = sample();
      t.set(p, mk.file(p, '', SRC));
      refused({ tree: t }, /whiteout/);
    }
  });

  test('a hard link out of the tree is refused', () => {
    const t = sample();
    t.set('/bin/x', {
      type: 'hardlink',
      path: '/bin/x',
      target: '/nowhere',
      mode: 0o755,
      uid: 0,
      gid: 0,
      mtime: 0,
      source: SRC,
    });
    refused({ tree: t }, /not in the tree/);
  });

  test('symlinks pointing anywhere stay symlinks (runtimes resolve them inside the container)', () => {
    const t = sample();
    t.set('/escape', mk.symlink('/escape', '../../../../etc/shadow', SRC));
    const layout = ociLayout(input({ tree: t }));
    const data = (layout.tree.get(`/${blobPath(layout.layer.digest)}`) as { data: Buffer }).data;
    const e = parseTar(data, 'layer').find((x) => x.name === 'escape')!;
    assert.deepEqual([e.type, e.linkname], ['symlink', '../../../../etc/shadow']);
  });

  test('bad names and tags are refused', () => {
    for (const name of [
      'KJX/smoke',
      'reg.io/Smoke',
      'reg.io:x/a',
      'kjx//smoke',
      '/kjx',
      'kjx/',
      'a b',
      'kjx/smoke:1',
      '-x',
      'a..b',
      '',
    ])
      refused({ name }, /image name/);
    for (const tag of ['', '-x', '.x', 'a/b', 'a:b', 'x'.repeat(129), '1.0+b']) refused({ tag }, /image tag/);
    assert.equal(imageReferenceProblem('registry.example:5000/team/app', 'v1_2.3-rc'), undefined);
    assert.equal(imageReferenceProblem('localhost/a__b/c-d.e', 'x'.repeat(128)), undefined);
  });

  test('Docker name normalization for the containerd annotation', () => {
    assert.equal(fullImageName('busybox'), 'docker.io/library/busybox');
    assert.equal(fullImageName('kjx/smoke'), 'docker.io/kjx/smoke');
    assert.equal(fullImageName('localhost/x'), 'localhost/x');
    assert.equal(fullImageName('registry.example:5000/team/app'), 'registry.example:5000/team/app');
    assert.equal(fullImageName('index.docker.io/kjx/x'), 'docker.io/kjx/x');
    assert.equal(fullImageName('host:5000/x'), 'host:5000/x');
    // Docker's rule: one path component on docker.io gets "library/", with or without the host
    assert.equal(fullImageName('docker.io/busybox'), 'docker.io/library/busybox');
    assert.equal(fullImageName('index.docker.io/busybox'), 'docker.io/library/busybox');
    assert.equal(fullImageName('docker.io/kjx/smoke'), 'docker.io/kjx/smoke');
    assert.equal(fullImageName('docker.io/library/busybox'), 'docker.io/library/busybox');
    assert.equal(fullImageName('example.com/busybox'), 'example.com/busybox');
  });
});

describe('reading image archives back (kjx inspect)', () => {
  test('ociArchive -> imageArchiveTree gives the tree back, with its name', async () => {
    const entries = parseTar(ociArchive(input()), 'image.tar');
    assert.ok(isImageArchive(entries));
    const { tree, details } = await imageArchiveTree(entries, 'image.tar', SRC);
    assert.equal(details.image, 'docker.io/kjx/smoke:0.1.0');
    assert.equal(details.layers, 1);
    for (const [path, e] of sample()) {
      const back = tree.get(path);
      assert.ok(back, path);
      if (e.type === 'file' && back.type === 'file') assert.ok(back.data.equals(e.data), path);
      assert.equal(back.uid, e.uid, path);
    }
    assert.ok(
      !isImageArchive(parseTar(writeTar(makeReproducible(sample(), EPOCH)), 'rootfs.tar')),
      'a rootfs tar is not one',
    );
  });

  test('docker-save only (no oci-layout), gzip layers, whiteouts of lower layers', async () => {
    const lower = treeOf([
      mk.file('/a/keep', 'k', SRC),
      mk.file('/a/gone', 'g', SRC),
      mk.file('/b/x', 'x', SRC),
      mk.file('/b/y', 'y', SRC),
    ]);
    const upper = treeOf([
      mk.file('/a/.wh.gone', '', SRC),
      mk.file('/b/.wh..wh..opq', '', SRC),
      mk.file('/b/z', 'z', SRC),
    ]);
    const l1 = gzipSync(writeTar(makeReproducible(lower, EPOCH), { names: 'bare' }));
    const l2 = writeTar(makeReproducible(upper, EPOCH), { names: 'bare' });
    const outer = treeOf([
      mk.file(
        '/manifest.json',
        JSON.stringify([{ Config: 'c.json', RepoTags: ['lab/x:1'], Layers: ['l1.tar', 'l2.tar'] }]),
        SRC,
      ),
      mk.file('/c.json', '{}', SRC),
      mk.file('/l1.tar', l1, SRC),
      mk.file('/l2.tar', l2, SRC),
    ]);
    const entries = parseTar(writeTar(makeReproducible(outer, EPOCH)), 'docker.tar');
    assert.ok(isImageArchive(entries));
    const { tree, details } = await imageArchiveTree(entries, 'docker.tar', SRC);
    assert.equal(details.image, 'lab/x:1');
    assert.deepEqual([...tree.keys()].filter((p) => !['/', '/a', '/b'].includes(p)).sort(), [
      '/a/keep',
      '/b/z',
    ]);
  });

  test('a file or symlink replacing a lower directory hides what was under it', async () => {
    const lower = treeOf([
      mk.file('/opt/app/bin/run', 'r', SRC),
      mk.file('/opt/app/lib/x.so', 'x', SRC),
      mk.file('/srv/data/a', 'a', SRC),
      mk.file('/srv/data-keep', 'k', SRC),
    ]);
    const upper = treeOf([mk.file('/opt/app', 'now a file', SRC), mk.symlink('/srv/data', '/tmp', SRC)]);
    const outer = treeOf([
      mk.file('/manifest.json', JSON.stringify([{ Config: 'c.json', Layers: ['l1.tar', 'l2.tar'] }]), SRC),
      mk.file('/c.json', '{}', SRC),
      mk.file('/l1.tar', writeTar(makeReproducible(lower, EPOCH), { names: 'bare' }), SRC),
      mk.file('/l2.tar', writeTar(makeReproducible(upper, EPOCH), { names: 'bare' }), SRC),
    ]);
    const { tree } = await imageArchiveTree(
      parseTar(writeTar(makeReproducible(outer, EPOCH)), 'r.tar'),
      'r.tar',
      SRC,
    );
    assert.deepEqual([...tree.keys()].filter((p) => p.startsWith('/opt/') || p.startsWith('/srv/')).sort(), [
      '/opt/app',
      '/srv/data',
      '/srv/data-keep',
    ]);
    assert.equal(tree.get('/opt/app')?.type, 'file');
    assert.equal(tree.get('/srv/data')?.type, 'symlink');
  });

  test('a layer that decompresses past the limit is ARTIFACT_INVALID', async () => {
    const layer = gzipSync(
      writeTar(makeReproducible(treeOf([mk.file('/zeros', Buffer.alloc(1 << 20), SRC)]), EPOCH)),
    );
    const outer = treeOf([
      mk.file('/manifest.json', JSON.stringify([{ Config: 'c.json', Layers: ['l.tar.gz'] }]), SRC),
      mk.file('/c.json', '{}', SRC),
      mk.file('/l.tar.gz', layer, SRC),
    ]);
    const entries = parseTar(writeTar(makeReproducible(outer, EPOCH)), 'bomb.tar');
    assert.ok(layer.length < 64 * 1024, 'small on disk');
    const budget = newBudget('bomb.tar', 512 * 1024, 'ARTIFACT_INVALID', 'test');
    await assert.rejects(imageArchiveTree(entries, 'bomb.tar', SRC, { budget }), {
      code: 'ARTIFACT_INVALID',
      reason: 'over-budget',
      message: /^bomb\.tar: decompressing bomb\.tar: l\.tar\.gz would take more than the 524288 bytes/,
    });
    const { tree } = await imageArchiveTree(entries, 'bomb.tar', SRC);
    assert.equal((tree.get('/zeros') as { data: Buffer }).data.length, 1 << 20, 'no budget lets it through');
  });

  test('a missing layer or a broken manifest is ARTIFACT_INVALID', async () => {
    const outer = treeOf([
      mk.file('/manifest.json', JSON.stringify([{ Config: 'c.json', Layers: ['nope.tar'] }]), SRC),
    ]);
    await assert.rejects(
      imageArchiveTree(parseTar(writeTar(makeReproducible(outer, EPOCH)), 'x.tar'), 'x.tar', SRC),
      {
        code: 'ARTIFACT_INVALID',
        message: /layer nope\.tar is missing/,
      },
    );
    const bad = treeOf([mk.file('/manifest.json', '[{', SRC)]);
    await assert.rejects(
      imageArchiveTree(parseTar(writeTar(makeReproducible(bad, EPOCH)), 'y.tar'), 'y.tar', SRC),
      {
        code: 'ARTIFACT_INVALID',
        message: /manifest\.json is not valid JSON/,
      },
    );
  });
});
