import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { busyboxApplets } from '../../src/components/busybox-applets.js';
import { assertKjxError } from '../helpers/kjx-error.js';
import { needs } from '../helpers/prereq.js';

const ELF = Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

function fakeBusybox(...parts: (string | Buffer)[]): Buffer {
  return Buffer.concat([ELF, ...parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p))]);
}

function elfInvalid(e: unknown): boolean {
  assertKjxError(e, 'ELF_INVALID');
  return true;
}

describe('busyboxApplets (synthetic)', () => {
  it('reads the sorted table and stops at the first non-name', () => {
    const bin = fakeBusybox(
      '\x01\x02junk\0',
      '[\0[[\0ash\0cat\0ls\0run-parts\0ssl_client\0zcat\0\0/var/log/wtmp\0',
    );
    assert.deepEqual(busyboxApplets(bin), ['[', '[[', 'ash', 'cat', 'ls', 'run-parts', 'ssl_client', 'zcat']);
  });

  it('stops where the names stop ascending', () => {
    const bin = fakeBusybox('\0[\0[[\0ash\0cat\0ls\0ash\0');
    assert.deepEqual(busyboxApplets(bin), ['[', '[[', 'ash', 'cat', 'ls']);
  });

  it('stops at a name with characters applets never have', () => {
    const bin = fakeBusybox('\0[\0[[\0ash\0cat\0Usage\0zcat\0');
    assert.deepEqual(busyboxApplets(bin), ['[', '[[', 'ash', 'cat']);
  });

  it('picks the longest table when the start pattern occurs more than once', () => {
    const bin = fakeBusybox('\0[\0[[\0x\0', '\0[\0[[\0ash\0cat\0ls\0mount\0', '\0[\0[[\0b\0a\0');
    assert.deepEqual(busyboxApplets(bin), ['[', '[[', 'ash', 'cat', 'ls', 'mount']);
  });

  it('refuses a non-ELF file and a binary without a table', () => {
    assert.throws(() => busyboxApplets(Buffer.from('#!/bin/sh\n[\0[[\0ash\0cat\0')), elfInvalid);
    assert.throws(() => busyboxApplets(fakeBusybox('no table here\0')), elfInvalid);
    assert.throws(() => busyboxApplets(fakeBusybox('[\0[[\0')), elfInvalid);
    assert.throws(() => busyboxApplets(Buffer.alloc(0)), elfInvalid);
  });
});

describe('busyboxApplets (Debian busybox-static)', () => {
  const work = mkdtempSync(join(tmpdir(), 'kjx-busybox-'));
  after(() => rmSync(work, { recursive: true, force: true }));

  let binary: Buffer | undefined;
  let problem: string | undefined;
  try {
    // Host tools are fine here: the test checks our reader against the real thing.
    execFileSync('apt-get', ['download', 'busybox-static'], { cwd: work, stdio: 'pipe' });
    const deb = readdirSync(work).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error('apt-get download left no .deb');
    binary = execFileSync('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -xO ./bin/busybox', 'sh', deb], {
      cwd: work,
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (e) {
    problem = (e as Error).message;
  }
  const skip = needs('busybox-static from apt (apt-get download)', problem);

  it('finds the applets, the same set `busybox --list` prints', { skip }, () => {
    const applets = busyboxApplets(binary!);
    console.log(
      `${applets.length} applets: ${applets.slice(0, 6).join(' ')} ... ${applets.slice(-3).join(' ')}`,
    );
    for (const a of ['sh', 'ls', 'mount', 'modprobe', 'udhcpc', 'ip']) assert.ok(applets.includes(a), a);
    assert.ok(applets.length > 250, `only ${applets.length} applets`);
    assert.deepEqual([...applets].sort(), applets, 'names come out in the table order, which is sorted');

    const exe = join(work, 'busybox');
    writeFileSync(exe, binary!);
    chmodSync(exe, 0o755);
    const listed = execFileSync(exe, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean);
    assert.deepEqual([...new Set(applets)].sort(), [...new Set(listed)].sort());
  });
});
