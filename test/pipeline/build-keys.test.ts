/**
 * What goes into the build's keys and build id: where a `files:` entry sits in
 * kjx.yaml is for messages only, so moving lines rebuilds nothing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { portableSpec } from '../../src/pipeline/build.js';
import { userFilesKey } from '../../src/rootfs/user-files.js';
import { parseSpec } from '../../src/spec/load.js';
import { hashValue } from '../../src/util/hash.js';

describe('build keys', () => {
  it('the position of a files: entry changes neither the spec key nor the files key', () => {
    const a = parseSpec('files:\n  - {path: /etc/motd, content: hi}\n', 'kjx.yaml');
    const b = parseSpec('# moved\n\nfiles:\n\n  -   {path: /etc/motd, content: hi}\n', 'elsewhere/kjx.yaml');
    assert.notDeepEqual(a.files[0]?.position, b.files[0]?.position);
    assert.equal(hashValue(portableSpec(a)), hashValue(portableSpec(b)));
    assert.equal(hashValue(userFilesKey(a.files)), hashValue(userFilesKey(b.files)));
    const c = parseSpec('files:\n  - {path: /etc/motd, content: ho}\n', 'kjx.yaml');
    assert.notEqual(hashValue(portableSpec(a)), hashValue(portableSpec(c)), 'the content still counts');
  });
});
