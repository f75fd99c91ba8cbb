/** Package arguments reach apt after "--", and only as Debian names and versions. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { aptArgv } from '../../src/sources/apt.js';
import { debNameProblem, debVersionProblem } from '../../src/spec/debian-grammar.js';
import { kjxError } from '../helpers/kjx-error.js';

const refused = kjxError('PKG_UNKNOWN', /refusing to pass/);

test('the argv given to apt always has "--" before the package arguments', () => {
  const cases: [string[], string[]][] = [
    [aptArgv.show(['busybox', 'libc6=2.36-9+deb12u4']), ['busybox', 'libc6=2.36-9+deb12u4']],
    [aptArgv.showpkg('awk'), ['awk']],
    [aptArgv.download([{ name: 'runit', version: '2.1.2-54+b1' }]), ['runit=2.1.2-54+b1']],
  ];
  for (const [argv, pkgs] of cases) {
    const dashdash = argv.indexOf('--');
    assert.ok(dashdash > 0, argv.join(' '));
    assert.deepEqual(argv.slice(dashdash + 1), pkgs);
    assert.ok(argv.slice(0, dashdash).every((a) => !pkgs.includes(a)));
  }
  assert.ok(!aptArgv.download([{ name: 'runit', version: '1' }]).some((a) => /Sandbox/.test(a)));
});

test('hostile names and versions never reach apt', () => {
  for (const name of ['-oAPT::Get::AllowUnauthenticated=true', '--help', 'foo;rm', 'a b', 'Foo', 'x', '']) {
    assert.throws(() => aptArgv.show([name]), refused, name);
    assert.throws(() => aptArgv.showpkg(name), refused, name);
    assert.throws(() => aptArgv.download([{ name, version: '1.0' }]), refused, name);
  }
  for (const version of ['1.0 -o=Dir::Etc=/tmp', '-1', '1.0\n-s', '']) {
    assert.throws(() => aptArgv.download([{ name: 'busybox', version }]), refused, version);
    assert.throws(() => aptArgv.show([`busybox=${version}`]), refused, version);
  }
});

test('the grammar accepts what Debian archives hold', () => {
  for (const n of ['libc6', 'g++-12', 'libstdc++6', 'linux-image-6.1.0-18-amd64', 'python3.11', '0ad'])
    assert.equal(debNameProblem(n), undefined, n);
  for (const v of [
    '2.36-9+deb12u4',
    '1:9.2p1-2+deb12u2',
    '1.35.0-4+b3',
    '20230311~deb12u1',
    '6.1.76-1',
    '2:1.0',
  ])
    assert.equal(debVersionProblem(v), undefined, v);
});
