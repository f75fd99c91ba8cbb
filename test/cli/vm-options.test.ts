/**
 * The options of the commands that boot VMs are declared once (src/cli/vm-options.ts):
 * `--timeout` and `--silence` mean the same in run, test, trace and boot, and are
 * read the same way; so are `--kernel` and `--modules` (docs/dev-kernel.md), and
 * `--machine` (microvm: docs/boot-time.md).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { makeProgram } from '../../src/cli/main.js';
import { kernelFlags, limitFlags, machineFlag, memoryOption } from '../../src/cli/vm-options.js';
import type { Manifest } from '../../src/image/manifest.js';
import { isKjxError } from '../../src/util/errors.js';
import {
  checkKernelFlags,
  checkMachineFlags,
  checkMicrovmDevKernel,
  checkMicrovmKernel,
} from '../../src/vm/prepare.js';
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

describe('--machine', () => {
  const program = makeProgram();

  test('every command that boots a VM has it, q35 by default', () => {
    for (const name of BOOTING) {
      const c = program.commands.find((x) => x.name() === name)!;
      const o = c.options.find((x) => x.long === '--machine');
      assert.ok(o, `kjx ${name} has no --machine`);
      assert.equal(o.defaultValue, 'q35');
    }
  });

  test('q35 or microvm; anything else is a usage error naming both', () => {
    assert.equal(machineFlag('q35'), 'q35');
    assert.equal(machineFlag('microvm'), 'microvm');
    assert.equal(machineFlag(undefined), 'q35');
    for (const bad of ['pc', 'MICROVM', 'virt', ''])
      assert.throws(
        () => machineFlag(bad),
        kjxError('USAGE', { message: `--machine ${bad}: expected q35 or microvm` }),
      );
  });

  test('microvm boots the initramfs directly: a medium or OVMF with it is a usage error', () => {
    for (const artifact of ['iso', 'raw', 'qcow2', 'vmdk'] as const)
      assert.throws(
        () => checkMachineFlags({ machine: 'microvm', artifact }),
        kjxError('USAGE', {
          message: new RegExp(`--machine microvm with --artifact ${artifact}`),
          hint: /q35/,
        }),
      );
    assert.throws(
      () => checkMachineFlags({ machine: 'microvm', firmware: 'uefi' }),
      kjxError('USAGE', /--machine microvm with --firmware uefi/),
    );
    checkMachineFlags({ machine: 'microvm', artifact: 'initramfs', firmware: 'bios' });
    checkMachineFlags({ machine: 'q35', artifact: 'iso', firmware: 'uefi' });
  });

  test("microvm needs virtio_mmio in the image's kernel, built in or loaded", () => {
    const image = (modules: string[], builtin: string[]) => ({
      specPath: '/p/kjx.yaml',
      manifest: { kernel: { version: '6.1.0-57-cloud-amd64', source: 'deb', modules, builtin } } as Manifest,
    });
    checkMicrovmKernel(image([], ['virtio_pci', 'virtio_mmio']));
    checkMicrovmKernel(image(['virtio_mmio', 'virtio_net'], []));
    assert.throws(
      () => checkMicrovmKernel(image(['virtio_pci', 'virtio_net'], [])),
      kjxError('USAGE', {
        message: /the image's kernel \(6\.1\.0-57-cloud-amd64\) has no virtio_mmio/,
        hint: 'add virtio_mmio to kernel.modules in /p/kjx.yaml (a kernel kjx builds has it built in)',
      }),
    );
  });

  test("a developer's kernel: its .config decides, or the modules stage 1 loads; a bzImage alone is trusted", () => {
    const dev = (config?: Record<string, string>) => ({
      path: '/src/linux',
      ...(config ? { config: new Map(Object.entries(config)) } : {}),
    });
    const loads = (load: string[]) => ({
      devKernel: { path: '/src/linux', release: '6.1.0', modules: load, load, all: false },
    });
    checkMicrovmDevKernel(dev({ VIRTIO_MMIO: 'y' }), loads([]));
    checkMicrovmDevKernel(dev({ VIRTIO_MMIO: 'm' }), loads(['virtio_mmio']));
    checkMicrovmDevKernel(dev(), loads([]));
    assert.throws(
      () => checkMicrovmDevKernel(dev({ VIRTIO_MMIO: 'm' }), loads([])),
      kjxError('USAGE', /virtio_mmio as a module the image does not load/),
    );
    assert.throws(
      () => checkMicrovmDevKernel(dev({ VIRTIO_PCI: 'y' }), loads([])),
      kjxError('USAGE', { message: /no CONFIG_VIRTIO_MMIO/, hint: /CONFIG_VIRTIO_MMIO=y/ }),
    );
  });
});
