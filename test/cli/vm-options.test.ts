/**
 * The options of the commands that boot VMs are declared once (src/cli/vm-options.ts):
 * `--timeout` and `--silence` mean the same in run, test, trace and boot, and are
 * read the same way; so are `--kernel` and `--modules` (docs/dev-kernel.md).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { makeProgram } from '../../src/cli/main.js';
import { kernelFlags, limitFlags, memoryOption } from '../../src/cli/vm-options.js';
import { isKjxError } from '../../src/util/errors.js';
import { checkKernelFlags } from '../../src/vm/prepare.js';
import { kjxError } from '../helpers/kjx-error.js';

const BOOTING = ['run', 'test', 'trace', 'boot'];

describe('--timeout and --silence', () => {
  const program = makeProgram();
  const option = (cmd: string, flag: string) => {
    const c = program.commands.find((x) => x.name() === cmd)!;
    const o = c.options.find((x) => x.long === flag);
    assert.ok(o, `kjx ${cmd} has no ${flag}`);
    return o;
  };

  test('every command that boots has both, with one meaning (only the defaults and the end differ)', () => {
    const silence = BOOTING.map((c) => option(c, '--silence').description);
    assert.equal(new Set(silence).size, 1, silence.join('\n'));
    for (const c of BOOTING)
      assert.match(option(c, '--timeout').description, /^wall-clock limit from QEMU's start until /, c);
  });

  test('read the same way: whole limits, silence 0 turns it off, nonsense is a usage error', () => {
    assert.deepEqual(limitFlags({ timeout: '600', silence: '0' }), { timeoutS: 600, silenceS: 0 });
    for (const bad of [
      { timeout: '0', silence: '1' },
      { timeout: 'soon', silence: '1' },
      { timeout: '1', silence: '-1' },
    ])
      assert.throws(
        () => limitFlags(bad),
        (e: unknown) => isKjxError(e) && e.code === 'USAGE',
      );
  });

  test('--memory: what the image wants unless given, and at least 64 MiB', () => {
    assert.equal(memoryOption(undefined, 1536), 1536);
    assert.equal(memoryOption('256', 1536), 256);
    assert.throws(() => memoryOption('1', 512), /--memory must be a number >= 64/);
  });
});

describe('--kernel and --modules', () => {
  const program = makeProgram();

  test('every command that boots a VM has both', () => {
    for (const name of BOOTING) {
      const c = program.commands.find((x) => x.name() === name)!;
      for (const flag of ['--kernel', '--modules'])
        assert.ok(
          c.options.some((o) => o.long === flag),
          `kjx ${name} has no ${flag}`,
        );
    }
  });

  test('a boot medium boots its own kernel: --kernel with --artifact iso|raw|qcow2|vmdk is a usage error', () => {
    for (const artifact of ['iso', 'raw', 'qcow2', 'vmdk'] as const)
      assert.throws(
        () => checkKernelFlags({ kernel: '/src/linux', artifact }),
        kjxError('USAGE', {
          message: `--kernel with --artifact ${artifact}: a boot medium boots the kernel inside it`,
          hint: /leave out --artifact/,
        }),
      );
    checkKernelFlags({ kernel: '/src/linux', artifact: 'initramfs' });
    checkKernelFlags({ kernel: '/src/linux' });
    checkKernelFlags({ artifact: 'iso' });
  });

  test('--modules without --kernel is a usage error', () => {
    assert.throws(
      () => checkKernelFlags({ modules: '/lib/modules/6.1.192' }),
      kjxError('USAGE', /only with --kernel/),
    );
  });

  test('read as given; absent when not given', () => {
    assert.deepEqual(kernelFlags({}), {});
    assert.deepEqual(kernelFlags({ kernel: '../linux', modules: 'm/6.1' }), {
      kernel: '../linux',
      modules: 'm/6.1',
    });
  });
});
