/**
 * `kjx-prog NAME` (src/bpf/sh/kjx-prog.sh), run under busybox sh with stand-ins for
 * the loaders: a program without a loader goes to kjx-bpf-run with its object, one
 * with a loader execs it with the arguments (through kjx-bpf-ready when a service
 * waits for readiness), and a name the image lacks, `..` included, is refused.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { progRunnerScript } from '../../src/bpf/image-layer.js';
import { readShFile, renderSh } from '../../src/guest/sh-file.js';
import { busyboxSh, needsBusybox } from '../helpers/busybox.js';

const skip = needsBusybox();
const dir = mkdtempSync(join(tmpdir(), 'kjx-prog-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** An executable that prints its name and its arguments. */
function standIn(path: string, name: string): void {
  writeFileSync(path, `#!/bin/sh\necho "${name}" "$@"\n`);
  chmodSync(path, 0o755);
}

const bpfDir = join(dir, 'bpf');
mkdirSync(join(bpfDir, 'execs'), { recursive: true });
writeFileSync(join(bpfDir, 'execs', 'execsnoop.bpf.o'), 'object');
mkdirSync(join(bpfDir, 'top'), { recursive: true });
writeFileSync(join(bpfDir, 'top', 'top.bpf.o'), 'object');
standIn(join(bpfDir, 'top', 'top'), 'top-loader');
standIn(join(dir, 'kjx-bpf-run'), 'kjx-bpf-run');
standIn(join(dir, 'kjx-bpf-ready'), 'kjx-bpf-ready');

const script = renderSh(readShFile(new URL('../../src/bpf/sh/kjx-prog.sh', import.meta.url)), {
  KJX_BPF_DIR: bpfDir,
  KJX_GENERIC_LOADER: join(dir, 'kjx-bpf-run'),
  KJX_BPF_READY: join(dir, 'kjx-bpf-ready'),
  KJX_PROGRAMS: 'execs top',
});
const prog = (args: string[], env: Record<string, string> = {}) =>
  busyboxSh(['-c', script, 'kjx-prog', ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
  });

describe('kjx-prog', { skip }, () => {
  test('the image build writes the guest paths into it', () => {
    const s = progRunnerScript(['execs', 'top']);
    assert.match(s, /^KJX_BPF_DIR=\/usr\/lib\/kjx\/bpf$/m);
    assert.match(s, /^KJX_GENERIC_LOADER=\/usr\/lib\/kjx\/bpf\/kjx-bpf-run$/m);
    assert.match(s, /^KJX_BPF_READY=\/usr\/sbin\/kjx-bpf-ready$/m);
    assert.match(s, /^KJX_PROGRAMS='execs top'$/m);
  });

  test('a program without a loader runs in kjx-bpf-run with its object', () => {
    const r = prog(['execs']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `kjx-bpf-run ${join(bpfDir, 'execs', 'execsnoop.bpf.o')}\n`);
  });

  test('a program with a loader runs it with the arguments; a waiting service gets kjx-bpf-ready in front', () => {
    const plain = prog(['top', '-i', '2']);
    assert.equal(plain.status, 0, plain.stderr);
    assert.equal(plain.stdout, 'top-loader -i 2\n');
    const waited = prog(['top', '-i', '2'], { KJX_NOTIFY_PID: '1' });
    assert.equal(waited.stdout, `kjx-bpf-ready ${join(bpfDir, 'top', 'top')} -i 2\n`);
  });

  test('a name the image does not have is refused with the names it has, a path too', () => {
    for (const name of ['nope', '..', 'execs/../top', '']) {
      const r = prog([name]);
      assert.equal(r.status, 2, name);
      assert.match(r.stderr, /no program ".*" in this image \(programs: execs top\)/, name);
      assert.equal(r.stdout, '', name);
    }
    const none = prog([]);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /^usage: kjx-prog NAME \[ARGS\.\.\.\] \(programs: execs top\)$/m);
  });
});
