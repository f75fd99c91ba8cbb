/**
 * SSH inputs of a build: the project key pair (created once, private 0600, reused),
 * authorized key files checked line by line, and the project key only when the
 * spec gives no key at all.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  checkPrivateKeyMode,
  ensureProjectKey,
  hostKeyForDropbear,
  parseKeyFile,
  projectKeyPath,
  sshInputs,
} from '../../src/guest/ssh-keys.js';
import { parseSpec } from '../../src/spec/load.js';
import { assertKjxError, kjxError } from '../helpers/kjx-error.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function project(yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'kjx-keys-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'kjx.yaml'), yaml);
  return dir;
}

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMbRchLS+2HwsJIVseQl+Emdzd0wsYMSTiFJtRBJtjHq me@host';

test('the project key is created once, in .kjx/ssh, private 0600 in a 0700 directory, then reused', () => {
  const dir = project('');
  const a = ensureProjectKey(dir, 'kjx-test');
  assert.equal(a.created, true);
  assert.equal(a.path, join(dir, '.kjx', 'ssh', 'id_ed25519'));
  assert.equal(statSync(a.path).mode & 0o777, 0o600);
  assert.equal(statSync(join(dir, '.kjx', 'ssh')).mode & 0o777, 0o700);
  assert.equal(readFileSync(`${a.path}.pub`, 'utf8'), `${a.publicLine}\n`);
  assert.match(a.publicLine, /^ssh-ed25519 \S+ kjx-test$/);
  assert.match(readFileSync(join(dir, '.kjx', '.gitignore'), 'utf8'), /^\*$/m, 'git ignores .kjx');
  const b = ensureProjectKey(dir, 'ignored');
  assert.deepEqual(b, { ...a, created: false });
  // the .pub copy is a convenience: without it the private key still answers
  rmSync(`${a.path}.pub`);
  assert.equal(ensureProjectKey(dir, 'x').publicLine, a.publicLine);
});

test('a project key that group or others may read is refused with the chmod line that fixes it', () => {
  const dir = project('');
  const key = ensureProjectKey(dir, 'kjx-test');
  for (const mode of [0o644, 0o640, 0o604, 0o660, 0o602]) {
    chmodSync(key.path, mode);
    assert.throws(
      () => ensureProjectKey(dir, 'x'),
      kjxError(
        'KEY_INVALID',
        { message: new RegExp(`\\(mode 0${mode.toString(8)}\\)`), hint: `chmod 600 ${key.path}` },
        mode.toString(8),
      ),
    );
    // the same check guards kjx exec and kjx ssh, which read it as their identity
    assert.throws(() => checkPrivateKeyMode(key.path), /is open to others/);
  }
  chmodSync(key.path, 0o600);
  assert.equal(
    ensureProjectKey(dir, 'x').publicLine,
    key.publicLine,
    'fixed as the hint says, it is used again',
  );
  chmodSync(key.path, 0o400);
  assert.doesNotThrow(() => checkPrivateKeyMode(key.path));
});

test('a damaged project key is an error, not silently replaced', () => {
  const dir = project('');
  mkdirSync(join(dir, '.kjx', 'ssh'), { recursive: true });
  writeFileSync(projectKeyPath(dir), 'garbage', { mode: 0o600 });
  assert.throws(
    () => ensureProjectKey(dir, 'x'),
    (e) => {
      assertKjxError(e, 'KEY_INVALID');
      assert.doesNotMatch(e.message, /open to others/);
      return true;
    },
  );
  assert.equal(readFileSync(projectKeyPath(dir), 'utf8'), 'garbage');
});

test('parseKeyFile keeps key lines, drops comments, refuses anything else (a private key above all)', () => {
  assert.deepEqual(parseKeyFile(`# mine\n\n${KEY}\n  ${KEY}  \n`, 'k'), [KEY, KEY]);
  assert.throws(
    () => parseKeyFile('-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n', 'k.pub'),
    /k\.pub: line 1 is not/,
  );
  assert.throws(() => parseKeyFile('# nothing\n', 'k.pub'), /no public key/);
});

test('no key in the spec: the project key is authorized for root; with keys: no project key', () => {
  const dir = project('');
  const none = sshInputs(parseSpec('', join(dir, 'kjx.yaml')));
  assert.ok(none.projectKey?.created);
  assert.deepEqual([...none.authorizedKeys], [['root', [none.projectKey!.publicLine]]]);

  const dir2 = project('');
  writeFileSync(join(dir2, 'dev.pub'), `${KEY}\n`);
  const spec = parseSpec(
    `users:\n  - name: dev\n    authorizedKeys: [./dev.pub, "${KEY.replace('me@host', 'second')}"]\n`,
    join(dir2, 'kjx.yaml'),
  );
  const some = sshInputs(spec);
  assert.equal(some.projectKey, undefined);
  assert.deepEqual([...some.authorizedKeys], [['dev', [KEY, KEY.replace('me@host', 'second')]]]);
  assert.throws(() => statSync(projectKeyPath(dir2)), /ENOENT/);
});

test('a missing key file names the field and the path as written', () => {
  const dir = project('');
  const spec = parseSpec('users:\n  - name: dev\n    authorizedKeys: [./nope.pub]\n', join(dir, 'kjx.yaml'));
  assert.throws(
    () => sshInputs(spec),
    kjxError('INPUT_NOT_FOUND', /users\[0\]\.authorizedKeys\[0\]: \.\/nope\.pub/),
  );
});

test('host key files: OpenSSH ed25519 converted for dropbear, dropbear keys kept, anything else refused', () => {
  const dir = project('');
  const k = ensureProjectKey(dir, 'h');
  const pem = readFileSync(k.path);
  const converted = hostKeyForDropbear(pem, 'hk');
  assert.equal(converted.readUInt32BE(0), 11);
  assert.equal(converted.toString('latin1', 4, 15), 'ssh-ed25519');
  assert.equal(converted.length, 83);
  assert.ok(hostKeyForDropbear(converted, 'hk').equals(converted));
  assert.throws(
    () => hostKeyForDropbear(Buffer.from(`${KEY}\n`), 'ssh.hostKeyFiles[0]: k.pub'),
    kjxError('KEY_INVALID', /^ssh\.hostKeyFiles\[0\]: k\.pub: /),
  );
});
