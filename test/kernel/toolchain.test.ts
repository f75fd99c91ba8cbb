import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { toolchainVersionsKept } from '../../src/kernel/toolchain.js';

const dir = mkdtempSync(join(tmpdir(), 'kjx-toolchain-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A fake tool on a PATH of its own: prints its version and counts that it was asked. */
function tool(bin: string, name: string, version: string): void {
  const path = join(bin, name);
  // a new file each time, as an upgrade installs one
  rmSync(path, { force: true });
  writeFileSync(path, `#!/bin/sh\necho ${name} >>${join(dir, 'asked')}\necho '${version}'\n`);
  chmodSync(path, 0o755);
}
const asked = () => readFileSync(join(dir, 'asked'), 'utf8').trim().split('\n').length;

test('toolchain versions are asked once and kept until one of its files changes', () => {
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  for (const t of ['gcc', 'ld', 'make']) tool(bin, t, `${t} (fake) 1.0`);
  const saved = process.env.PATH;
  // the fake tools are shell scripts: /bin/sh by its absolute path, no PATH needed
  process.env.PATH = bin;
  try {
    const file = join(dir, 'cache', 'toolchain.json');
    const first = toolchainVersionsKept(file);
    assert.match(first, /^gcc: gcc \(fake\) 1\.0$/m);
    assert.match(first, /^make: make \(fake\) 1\.0$/m);
    assert.match(first, /^pahole: missing$/m, 'a tool not on PATH is part of the key as missing');
    assert.equal(asked(), 3);
    assert.equal(toolchainVersionsKept(file), first);
    assert.equal(asked(), 3, 'unchanged files: nobody is asked');
    tool(bin, 'gcc', 'gcc (fake) 2.0');
    const upgraded = toolchainVersionsKept(file);
    assert.match(upgraded, /^gcc: gcc \(fake\) 2\.0$/m);
    assert.equal(asked(), 6, 'a replaced compiler: asked again');
    writeFileSync(file, '{not json');
    assert.equal(toolchainVersionsKept(file), upgraded, 'a damaged record is asked again');
    assert.equal(asked(), 9);
  } finally {
    process.env.PATH = saved;
  }
});
