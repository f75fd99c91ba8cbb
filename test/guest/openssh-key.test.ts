/**
 * OpenSSH ed25519 key formats: what we write, ssh2 (an independent parser) reads
 * and signs with, and we read back; fingerprints are what `ssh-keygen -l` shows.
 */
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import ssh2 from 'ssh2';
import {
  decodePrivateKey,
  dropbearPrivateKey,
  encodePrivateKey,
  fingerprint,
  looksLikeDropbearKey,
  publicKeyBlob,
  publicKeyLine,
} from '../../src/guest/openssh-key.js';
import { kjxError } from '../helpers/kjx-error.js';

const { utils } = ssh2;

function newKey(comment = 'kjx-test') {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return {
    seed: Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url'),
    publicKey: Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url'),
    comment,
    node: publicKey,
  };
}

test('the private key file is read by ssh2, which signs with it; the signature verifies with our public key', () => {
  const key = newKey();
  const pem = encodePrivateKey(key, 0x12345678);
  assert.match(
    pem,
    /^-----BEGIN OPENSSH PRIVATE KEY-----\n([A-Za-z0-9+/=]{1,70}\n)+-----END OPENSSH PRIVATE KEY-----\n$/,
  );
  const parsed = utils.parseKey(pem);
  assert.ok(!(parsed instanceof Error), String(parsed));
  const k = Array.isArray(parsed) ? parsed[0]! : parsed;
  assert.equal(k.type, 'ssh-ed25519');
  assert.equal(k.comment, 'kjx-test');
  assert.ok(k.getPublicSSH().equals(publicKeyBlob(key.publicKey)));
  const data = Buffer.from('handshake');
  const sig = k.sign(data);
  assert.ok(verify(null, data, key.node, sig as Buffer));
});

test('the public key line parses in ssh2 to the same key', () => {
  const key = newKey('me@host');
  const line = publicKeyLine(key.publicKey, 'me@host');
  assert.match(line, /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]+=* me@host$/);
  const parsed = utils.parseKey(line);
  assert.ok(!(parsed instanceof Error));
  const k = Array.isArray(parsed) ? parsed[0]! : parsed;
  assert.ok(k.getPublicSSH().equals(publicKeyBlob(key.publicKey)));
});

test('write then read gives the same key, whatever the comment and check integer', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 40 }), fc.nat(), (comment, check) => {
      const key = newKey(comment);
      const back = decodePrivateKey(encodePrivateKey(key, check), 'k');
      assert.ok(back.seed.equals(key.seed));
      assert.ok(back.publicKey.equals(key.publicKey));
      assert.equal(back.comment, comment);
    }),
    { numRuns: 30 },
  );
});

test('fingerprints are base64 SHA256 of the blob without padding (a known vector)', () => {
  // ssh-keygen -lf of this public key prints SHA256:/ijCLvdThyX9ecCZh1ZDgTFcStnl9xkSmJAQdpk9INE
  const blob = Buffer.from('AAAAC3NzaC1lZDI1NTE5AAAAIMbRchLS+2HwsJIVseQl+Emdzd0wsYMSTiFJtRBJtjHq', 'base64');
  assert.equal(fingerprint(blob), '/ijCLvdThyX9ecCZh1ZDgTFcStnl9xkSmJAQdpk9INE');
  const node = createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: blob.subarray(19).toString('base64url') },
    format: 'jwk',
  });
  assert.equal(node.asymmetricKeyType, 'ed25519');
});

test('damaged or foreign files are KEY_INVALID errors that name the file', () => {
  const pem = encodePrivateKey(newKey(), 1);
  const cases = [
    'not a key',
    pem.replace(/\n[A-Za-z0-9+/=]+\n-----END/, '\n-----END'),
    `-----BEGIN OPENSSH PRIVATE KEY-----\n${Buffer.from('openssh-key-v1\0').toString('base64')}\n-----END OPENSSH PRIVATE KEY-----\n`,
  ];
  for (const text of cases) {
    assert.throws(
      () => decodePrivateKey(text, '/p/.kjx/ssh/id_ed25519'),
      kjxError('KEY_INVALID', /^\/p\/\.kjx\/ssh\/id_ed25519: /),
    );
  }
});

test('dropbear host key format: the same bytes dropbearkey wrote for the same key', () => {
  // written by Debian's `dropbearkey -t ed25519` (2022.83); a throwaway key
  const fromDropbear = Buffer.from(
    '0000000b7373682d656432353531390000004064f263691572b4f63b8d9bfbcf258579ec6062402b2b4b1a14afd465d99d53f436feb98803be241423c67b2b8b4107a9012f5468019c9de8a45c7e2557895099',
    'hex',
  );
  const seed = fromDropbear.subarray(19, 51);
  const publicKey = fromDropbear.subarray(51);
  // the layout really is seed then public: the seed derives that public key
  const derived = createPublicKey(
    createPrivateKey({
      key: { kty: 'OKP', crv: 'Ed25519', d: seed.toString('base64url'), x: publicKey.toString('base64url') },
      format: 'jwk',
    }),
  ).export({ format: 'jwk' }).x;
  assert.equal(derived, publicKey.toString('base64url'));
  // an OpenSSH file of that key converts to exactly dropbear's bytes
  const pem = encodePrivateKey({ seed, publicKey, comment: 'x' }, 3);
  assert.ok(dropbearPrivateKey(decodePrivateKey(pem, 'k')).equals(fromDropbear));
  assert.ok(looksLikeDropbearKey(fromDropbear));
  assert.equal(looksLikeDropbearKey(Buffer.from(pem)), false);
  assert.equal(looksLikeDropbearKey(Buffer.from('ssh-ed25519 AAAA')), false);
});
