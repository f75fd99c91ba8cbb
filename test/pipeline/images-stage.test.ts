/**
 * What container images add to a build (src/pipeline/images-stage.ts): the `oci`
 * output is the guest tree as an image, minus what must not be shared.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { givenHostKeyPath } from '../../src/guest/ssh.js';
import { guestSystem } from '../../src/guest/system.js';
import { writeCpio } from '../../src/image/cpio.js';
import { imageArchiveTree } from '../../src/image/oci-reader.js';
import { ociOutput } from '../../src/pipeline/images-stage.js';
import { makeReproducible } from '../../src/rootfs/reproducible.js';
import { parseTar } from '../../src/sources/tar.js';
import { parseSpec } from '../../src/spec/load.js';

const HOST_KEY = Buffer.from('dropbear private host key bytes');

test('oci output leaves out the ssh.hostKeyFiles private keys; the initramfs tree keeps them', async () => {
  const spec = parseSpec(
    'name: lab\nversion: 1.0.0\noutputs: [initramfs, oci]\nssh:\n  enabled: true\n  hostKeyFiles: [keys/a, keys/b]\n',
    '/srv/kjx.yaml',
  );
  const { tree } = guestSystem({
    spec,
    buildId: 'abc123def456',
    modules: [],
    ssh: { authorizedKeys: new Map(), hostKeys: [HOST_KEY, HOST_KEY] },
  });
  const keys = [givenHostKeyPath(0), givenHostKeyPath(1)];
  for (const k of keys) assert.equal(tree.get(k)?.type, 'file', `the guest tree (the initramfs) has ${k}`);
  assert.ok(writeCpio(makeReproducible(tree, 0)).includes(HOST_KEY), 'the initramfs holds the key bytes');

  const oci = ociOutput(spec, tree, 0, 'abc123def456');
  assert.ok(!oci.includes(HOST_KEY), 'no key bytes anywhere in the oci archive');
  const { tree: image } = await imageArchiveTree(parseTar(oci, 'lab-oci.tar'), 'lab-oci.tar', {
    kind: 'generated',
    by: 'test',
  });
  for (const k of keys) assert.equal(image.get(k), undefined, `the image has no ${k}`);
  assert.equal(image.get('/etc/dropbear')?.type, 'dir', 'the rest of the tree is there');
  assert.equal(image.get('/etc/runit/1')?.type, 'file');
});
