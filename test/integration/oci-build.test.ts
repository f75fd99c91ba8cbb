/**
 * Container images from `kjx build`, without booting: `outputs: [oci]` writes
 * <name>-oci.tar from the image's tree, `images:` bakes archives into the guest,
 * both byte-identical when the project is built again elsewhere with a cold cache.
 * Loading them with docker, ctr and podman inside the guest is tested with the
 * container runtimes.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ociArchive } from '../../src/image/oci.js';
import { makeReproducible } from '../../src/rootfs/reproducible.js';
import { mk, newTree } from '../../src/rootfs/tree.js';
import { parseTar, type TarEntry } from '../../src/sources/tar.js';
import { KJX, kjxEnv, removeAll, runKjx } from '../helpers/kjx.js';
import { buildAs, copyProject, mediaProject } from '../helpers/media.js';

const IMAGES = `
images:
  - name: smoke
    from: busybox-static
  - name: app
    archive: ./app.tar
`;

function appArchive(text: string): Buffer {
  const t = newTree();
  t.set('/hello', mk.file('/hello', text, { kind: 'generated', by: 'test' }));
  return ociArchive({ rootfs: makeReproducible(t, 1_700_000_000), name: 'lab/app', tag: '1' });
}

const hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Files of an image archive by name, and the entries of its one layer. */
function openImage(archive: Buffer): {
  file: (n: string) => Buffer;
  layer: TarEntry[];
  config: Record<string, unknown>;
} {
  const entries = parseTar(archive, 'image.tar');
  const file = (n: string): Buffer => {
    const e = entries.find((x) => x.name === n);
    assert.ok(e, `archive has ${n}`);
    return e.data;
  };
  const [m] = JSON.parse(file('manifest.json').toString()) as { Config: string; Layers: string[] }[];
  assert.ok(m);
  assert.equal(m.Layers.length, 1);
  const layerData = file(m.Layers[0]!);
  assert.equal(`blobs/sha256/${hex(layerData)}`, m.Layers[0], 'layer named by its digest');
  const configData = file(m.Config);
  assert.equal(`blobs/sha256/${hex(configData)}`, m.Config, 'config named by its digest');
  return { file, layer: parseTar(layerData, 'layer.tar'), config: JSON.parse(configData.toString()) };
}

/** A file from inside the initramfs, through `kjx inspect`. */
function fromInitramfs(ws: string, path: string): Buffer {
  const r = spawnSync(process.execPath, [KJX, 'inspect', join(ws, 'dist', 'initramfs.cpio.gz'), path], {
    cwd: ws,
    env: kjxEnv({ cwd: ws }),
    maxBuffer: 64 * 1024 * 1024,
  });
  assert.equal(r.status, 0, r.stderr.toString());
  return r.stdout;
}

describe('container images from kjx build', () => {
  let ws: string;
  const cleanup: string[] = [];
  const dist = (name: string) => join(ws, 'dist', name);

  before(() => {
    ws = mediaProject('oci', ['initramfs', 'oci']);
    cleanup.push(dirname(ws));
    const yaml = readFileSync(join(ws, 'kjx.yaml'), 'utf8');
    assert.match(yaml, /^images: \[\]$/m, 'the init template has an images line');
    writeFileSync(join(ws, 'kjx.yaml'), yaml.replace(/^images: \[\]$/m, IMAGES.trim()));
    writeFileSync(join(ws, 'app.tar'), appArchive('hello\n'));
    const r = buildAs(ws, { nobody: false });
    cleanup.push(r.cache);
    assert.equal(r.code, 0, `kjx build failed:\n${r.stderr}`);
  });
  after(() => removeAll(...cleanup));

  test('kjx-oci.tar is an artifact, listed in the manifest with its size and sha256', () => {
    const manifest = JSON.parse(readFileSync(dist('manifest.json'), 'utf8'));
    const names = manifest.artifacts.map((a: { name: string }) => a.name);
    assert.deepEqual(names, ['vmlinuz', 'initramfs.cpio.gz', 'kjx-oci.tar']);
    const a = manifest.artifacts[2];
    const data = readFileSync(dist('kjx-oci.tar'));
    assert.equal(a.size, data.length);
    assert.equal(a.sha256, hex(data));
  });

  test('the oci output is the guest tree as image kjx/kjx:<version>, /bin/sh, no device nodes', () => {
    const img = openImage(readFileSync(dist('kjx-oci.tar')));
    const index = JSON.parse(img.file('index.json').toString());
    assert.equal(index.manifests[0].annotations['io.containerd.image.name'], 'docker.io/kjx/kjx:0.1.0');
    assert.deepEqual(JSON.parse(img.file('manifest.json').toString())[0].RepoTags, ['kjx/kjx:0.1.0']);
    const config = img.config as {
      config: { Cmd: string[]; Labels: Record<string, string> };
      created: string;
    };
    assert.deepEqual(config.config.Cmd, ['/bin/sh']);
    assert.equal(config.config.Labels['org.opencontainers.image.version'], '0.1.0');
    assert.equal(config.created, '2024-01-01T00:00:00Z');
    const at = (n: string) => img.layer.find((e) => e.name === n);
    assert.equal(at('sbin/runit')?.type, 'file');
    assert.deepEqual([at('etc/passwd')?.mode, at('etc/passwd')?.uid], [0o644, 0]);
    assert.equal(at('tmp/')?.mode, 0o1777);
    assert.equal(at('usr/share/kjx/images/smoke.tar')?.type, 'file', 'the baked images are in the tree too');
    assert.equal(at('dev/console'), undefined, 'runtimes bring their own /dev');
    assert.ok(
      img.layer.every((e) => e.mtime <= 1_704_067_200),
      'mtimes clamped to the epoch',
    );
    const names = img.layer.map((e) => e.name);
    assert.deepEqual(names, [...names].sort());
  });

  test('kjx inspect reads the oci output as the image it is: the guest tree, same build id', () => {
    const r = runKjx(['inspect', '--json', dist('kjx-oci.tar')], { cwd: ws });
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.format, 'oci');
    assert.equal(j.details.image, 'docker.io/kjx/kjx:0.1.0');
    const diff = runKjx(['diff', dist('initramfs.cpio.gz'), dist('kjx-oci.tar')], { cwd: ws });
    assert.match(diff.stdout, /^- \/dev\/console /m, 'only what a layer leaves out differs');
    assert.match(diff.stdout, /0 added, 2 removed, 0 changed/);
  });

  test('images: a host archive lands as it is, the busybox-static image is built', () => {
    assert.deepEqual(fromInitramfs(ws, '/usr/share/kjx/images/app.tar'), readFileSync(join(ws, 'app.tar')));
    const smoke = openImage(fromInitramfs(ws, '/usr/share/kjx/images/smoke.tar'));
    const index = JSON.parse(smoke.file('index.json').toString());
    assert.equal(index.manifests[0].annotations['io.containerd.image.name'], 'docker.io/kjx/smoke:latest');
    const busybox = smoke.layer.find((e) => e.name === 'bin/busybox');
    assert.equal(busybox?.type, 'file');
    assert.equal(busybox.data.subarray(0, 4).toString('latin1'), '\x7fELF');
    assert.equal(smoke.layer.find((e) => e.name === 'bin/sh')?.linkname, 'busybox');
    assert.ok(!smoke.layer.some((e) => e.name.startsWith('sbin/runit')), 'busybox only');
    assert.ok(smoke.layer.length < 400, `${smoke.layer.length} entries`);
  });

  test('built again elsewhere with a cold cache: the same oci bytes and the same baked images', () => {
    const again = copyProject(ws, 'oci-again');
    cleanup.push(dirname(again));
    const r = buildAs(again, { nobody: false, env: { TZ: 'Asia/Kolkata' } });
    cleanup.push(r.cache);
    assert.equal(r.code, 0, r.stderr);
    const a = readFileSync(dist('kjx-oci.tar'));
    const b = readFileSync(join(again, 'dist', 'kjx-oci.tar'));
    assert.equal(hex(b), hex(a));
    assert.deepEqual(
      fromInitramfs(again, '/usr/share/kjx/images/smoke.tar'),
      fromInitramfs(ws, '/usr/share/kjx/images/smoke.tar'),
    );
  });

  test('a changed host archive is baked again: its content is in the build key, not just its path', () => {
    writeFileSync(join(ws, 'app.tar'), appArchive('changed\n'));
    const r = runKjx(['build'], { cwd: ws });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(fromInitramfs(ws, '/usr/share/kjx/images/app.tar'), appArchive('changed\n'));
  });
});
