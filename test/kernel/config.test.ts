import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  lostOptions,
  lostWarning,
  mergeFragments,
  parseFragment,
  readDotConfig,
  renderFragment,
} from '../../src/kernel/config.js';
import { configLine } from '../../src/spec/kernel-config.js';
import { kjxError } from '../helpers/kjx-error.js';

describe('kernel config fragments', () => {
  test('a fragment reads set, module, string, number and not-set lines, skipping comments', () => {
    const f = parseFragment(
      '# a comment\nCONFIG_A=y\n\nCONFIG_B=m\nCONFIG_C="ttyS0 quiet"\nCONFIG_D=0x10\n# CONFIG_E is not set\n',
      'extra.config',
    );
    assert.deepEqual(
      f.map((o) => [o.name, o.value, o.where]),
      [
        ['CONFIG_A', 'y', 'extra.config:2'],
        ['CONFIG_B', 'm', 'extra.config:4'],
        ['CONFIG_C', '"ttyS0 quiet"', 'extra.config:5'],
        ['CONFIG_D', '0x10', 'extra.config:6'],
        ['CONFIG_E', 'n', 'extra.config:7'],
      ],
    );
  });

  test('a line that is not a config line is an error naming the file and line', () => {
    for (const bad of ['CONFIG_A', 'CONFIG_A=yes', 'FOO=y', 'CONFIG_A="open', 'CONFIG_A=$(shell id)']) {
      assert.throws(
        () => parseFragment(`CONFIG_OK=y\n${bad}\n`, 'x.config'),
        kjxError('SPEC_INVALID', {
          message: /^x\.config:2: not a kernel config line/,
          hint: /CONFIG_NAME=y/,
        }),
      );
    }
  });

  test('configLine takes what kjx.yaml may write inline', () => {
    assert.deepEqual(configLine('CONFIG_KCSAN=n'), { name: 'CONFIG_KCSAN', value: 'n' });
    assert.deepEqual(configLine('# CONFIG_KCSAN is not set'), { name: 'CONFIG_KCSAN', value: 'n' });
    assert.deepEqual(configLine('CONFIG_X="a b"'), { name: 'CONFIG_X', value: '"a b"' });
    assert.equal(configLine('./extra.config'), undefined);
    assert.equal(configLine('CONFIG_X=maybe'), undefined);
  });

  test('later fragments win and every change of value is reported, as merge_config.sh does', () => {
    const { options, redefined } = mergeFragments([
      parseFragment('CONFIG_A=y\nCONFIG_B=y\nCONFIG_C=m\n', 'vm'),
      parseFragment('CONFIG_B=y\n# CONFIG_A is not set\n', 'extra.config'),
      parseFragment('CONFIG_C=y', 'kjx.yaml kernel.config[2]'),
    ]);
    assert.deepEqual(
      [...options.values()].map((o) => `${o.name}=${o.value}`),
      ['CONFIG_B=y', 'CONFIG_A=n', 'CONFIG_C=y'],
    );
    // setting B again to the same value is no redefinition
    assert.deepEqual(
      redefined.map((r) => `${r.name} ${r.from.value}@${r.from.where} -> ${r.to.value}@${r.to.where}`),
      ['CONFIG_A y@vm:1 -> n@extra.config:2', 'CONFIG_C m@vm:3 -> y@kjx.yaml kernel.config[2]:1'],
    );
    assert.equal(renderFragment(options.values()), 'CONFIG_B=y\n# CONFIG_A is not set\nCONFIG_C=y\n');
  });

  test('options that did not survive are named with what the kernel has instead', () => {
    const asked = parseFragment(
      'CONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\nCONFIG_D=y\nCONFIG_E="x"\n',
      'f',
    );
    const final = readDotConfig(
      '#\n# Automatically generated file\nCONFIG_A=y\nCONFIG_B=y\nCONFIG_C=y\n# CONFIG_D is not set\nCONFIG_E="x"\n',
    );
    const lost = lostOptions(asked, final);
    assert.deepEqual(
      lost.map((l) => `${l.name}:${l.wanted}->${l.got}`),
      ['CONFIG_B:m->y', 'CONFIG_C:n->y', 'CONFIG_D:y->n'],
    );
    assert.match(lostWarning(lost[2]!), /CONFIG_D=y \(f:4\) did not survive.*CONFIG_D=n.*depends on is off/);
    assert.match(lostWarning(lost[1]!), /another option selects it/);
    // an option absent from .config altogether is off: asking for it off is no loss
    assert.deepEqual(lostOptions(parseFragment('# CONFIG_GONE is not set', 'f'), final), []);
  });
});
