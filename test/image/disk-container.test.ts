/**
 * qcow2 and VMDK files from elsewhere: anything that would make qemu-img open a
 * second file, a host or a parent is refused from the header before any process
 * starts, and no other host file is read (its atime stays). Hostile images are
 * made with qemu-img itself (`create -u` writes the header without opening what
 * it names) and by editing a real VMDK's embedded descriptor.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { bufferSource } from '../../src/image/byte-source.js';
import { qcow2Problem, vmdkProblem } from '../../src/image/disk-container.js';
import { loadArtifact, qemuImgTarget } from '../../src/image/read-artifact.js';
import { kjxError } from '../helpers/kjx-error.js';

let dir: string;
let marker: string;
let qemuImgLog: string;
let savedPath: string | undefined;
const MARKER_TEXT = 'kjx marker: nobody may read this\n';
const OLD = new Date('2020-01-01T00:00:00Z');

function qemuImg(...args: string[]): void {
  const r = spawnSync('qemu-img', args, { cwd: dir, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'kjx-container-'));
  marker = join(dir, 'marker.raw');
  writeFileSync(marker, MARKER_TEXT);
  utimesSync(marker, OLD, OLD);
  qemuImg('create', '-q', '-f', 'qcow2', '-u', '-b', marker, '-F', 'raw', 'marker.qcow2', '1M');
  qemuImg(
    'create',
    '-q',
    '-f',
    'qcow2',
    '-u',
    '-b',
    'nbd://127.0.0.1:10809/disk',
    '-F',
    'raw',
    'nbd.qcow2',
    '1M',
  );
  qemuImg(
    'create',
    '-q',
    '-f',
    'qcow2',
    '-u',
    '-b',
    'http://127.0.0.1:9/disk.img',
    '-F',
    'raw',
    'http.qcow2',
    '1M',
  );
  qemuImg('create', '-q', '-f', 'qcow2', '-o', `data_file=${join(dir, 'data.raw')}`, 'datafile.qcow2', '1M');
  qemuImg('create', '-q', '-f', 'vmdk', 'plain.vmdk', '1M');
  writeFileSync(
    join(dir, 'passwd.vmdk'),
    [
      '# Disk DescriptorFile',
      'version=1',
      'CID=fffffffe',
      'parentCID=ffffffff',
      'createType="monolithicFlat"',
      '',
      '# Extent description',
      'RW 8 FLAT "/etc/passwd" 0',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(dir, 'marker.vmdk'),
    readFileSync(join(dir, 'passwd.vmdk'), 'utf8').replace('/etc/passwd', marker),
  );
  // a real monolithicSparse VMDK whose embedded descriptor is edited: qemu reads a
  // KDMV file of capacity 0 as a descriptor file, and follows parentFileNameHint
  const vmdk = readFileSync(join(dir, 'plain.vmdk'));
  const descAt = Number(vmdk.readBigUInt64LE(28)) * 512;
  const descLen = Number(vmdk.readBigUInt64LE(36)) * 512;
  const desc = vmdk.toString('latin1', descAt, descAt + descLen).replace(/\0+$/, '');
  const withDesc = (text: string, capacity?: bigint): Buffer => {
    const b = Buffer.from(vmdk);
    b.fill(0, descAt, descAt + descLen);
    b.write(text, descAt, 'latin1');
    if (capacity !== undefined) b.writeBigUInt64LE(capacity, 12);
    return b;
  };
  writeFileSync(
    join(dir, 'embedded-flat.vmdk'),
    withDesc(desc.replace(/RW (\d+) SPARSE "[^"]*"/, `RW $1 FLAT "${marker}" 0`), 0n),
  );
  writeFileSync(
    join(dir, 'parent.vmdk'),
    withDesc(desc.replace('parentCID=ffffffff', `parentCID=12345678\nparentFileNameHint="${marker}"`)),
  );
  writeFileSync(join(dir, 'capacity0.vmdk'), withDesc(desc, 0n));
  // a qemu-img on PATH that leaves a trace if anything runs it
  qemuImgLog = join(dir, 'qemu-img-ran');
  writeFileSync(join(dir, 'qemu-img'), `#!/bin/sh\necho "$@" >> '${qemuImgLog}'\nexit 1\n`);
  chmodSync(join(dir, 'qemu-img'), 0o755);
});
after(() => {
  if (savedPath !== undefined) process.env.PATH = savedPath;
  rmSync(dir, { recursive: true, force: true });
});

const refused = (re: RegExp) => kjxError('ARTIFACT_INVALID', { message: re, reason: 'external-reference' });

describe('images naming other files are refused before qemu-img starts', () => {
  before(() => {
    savedPath = process.env.PATH;
    process.env.PATH = `${dir}:${process.env.PATH}`;
  });
  after(() => {
    process.env.PATH = savedPath;
    savedPath = undefined;
  });

  for (const [file, says] of [
    ['marker.qcow2', /qcow2 image with a backing file ".*marker\.raw"/],
    ['nbd.qcow2', /backing file "nbd:\/\/127\.0\.0\.1:10809\/disk"/],
    ['http.qcow2', /backing file "http:\/\/127\.0\.0\.1:9\/disk\.img"/],
    ['datafile.qcow2', /external data file/],
    ['passwd.vmdk', /names a FLAT extent "\/etc\/passwd"/],
    ['marker.vmdk', /names a FLAT extent ".*marker\.raw"/],
    ['embedded-flat.vmdk', /embedded descriptor names a FLAT extent/],
    ['parent.vmdk', /VMDK image with a parent ".*marker\.raw"/],
    ['capacity0.vmdk', /capacity 0/],
  ] as const) {
    test(`${file}: refused`, async () => {
      await assert.rejects(loadArtifact(join(dir, file)), refused(says));
    });
  }

  test('qemu-img never ran and the marker file was never read', () => {
    assert.throws(() => statSync(qemuImgLog), /ENOENT/);
    assert.equal(statSync(marker).atimeMs, OLD.getTime());
    // control: reading it does move the atime on this file system, so the check above means something
    assert.equal(readFileSync(marker, 'utf8'), MARKER_TEXT);
    assert.notEqual(statSync(marker).atimeMs, OLD.getTime());
    utimesSync(marker, OLD, OLD);
  });
});

test('a self-contained qcow2 and vmdk are read, also under a name that looks like a URL or has commas', async () => {
  for (const f of ['plain.vmdk'])
    assert.equal(vmdkProblem(bufferSource(readFileSync(join(dir, f)), f)), undefined);
  const odd = join(dir, 'nbd:,x,,y.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', odd, '1M');
  assert.equal(qcow2Problem(bufferSource(readFileSync(odd), 'odd')), undefined);
  // an empty disk has no partition table: qemu-img opened exactly this file and converted it
  await assert.rejects(loadArtifact(odd), kjxError('ARTIFACT_INVALID', /no partition table|partition/));
  assert.equal(
    qemuImgTarget('/a,b/nbd://x', 'qcow2'),
    'json:{"driver":"qcow2","file":{"driver":"file","filename":"/a,b/nbd://x"},"backing":null}',
  );
});
