/**
 * OpenSSH key formats for ed25519, pure bytes in and out:
 *
 * - the public key blob and line (RFC 4253 §6.6 framing, RFC 8709 for ed25519):
 *   string "ssh-ed25519", string key(32); a line is `ssh-ed25519 BASE64 comment`;
 * - the unencrypted private key file, "openssh-key-v1" (OpenSSH's PROTOCOL.key):
 *   magic "openssh-key-v1\0", string cipher "none", string kdf "none", string kdf
 *   options "", uint32 1, string public blob, string private section = uint32
 *   check, uint32 check, string type, string public(32), string secret(64 =
 *   seed ‖ public), string comment, padding 1,2,3… to a multiple of 8; armored as
 *   "-----BEGIN OPENSSH PRIVATE KEY-----" with base64 in 70-column lines;
 * - fingerprints as `ssh-keygen -l` prints them: SHA256 of the blob, base64 without "=";
 * - dropbear's own private key file (dropbear 2022.83 reads only that for host keys,
 *   signkey.c / ed25519.c): string "ssh-ed25519", string(seed ‖ public), raw bytes.
 */
import { createHash } from 'node:crypto';
import { KjxError } from '../util/errors.js';

const MAGIC = Buffer.from('openssh-key-v1\0', 'latin1');
const TYPE = 'ssh-ed25519';
const BEGIN = '-----BEGIN OPENSSH PRIVATE KEY-----';
const END = '-----END OPENSSH PRIVATE KEY-----';

export interface Ed25519Key {
  /** The 32-byte private seed. */
  seed: Buffer;
  /** The 32-byte public key. */
  publicKey: Buffer;
  comment: string;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

function sshString(data: Buffer | string): Buffer {
  const b = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return Buffer.concat([u32(b.length), b]);
}

/** A reader of SSH wire framing that fails with a KjxError naming `what`. */
function reader(buf: Buffer, what: string) {
  let pos = 0;
  const fail = (why: string): never => {
    throw new KjxError('KEY_INVALID', `${what}: not an unencrypted OpenSSH ed25519 key (${why})`, {
      hint: 'remove the file to let kjx create a new key pair, or give keys in users[].authorizedKeys',
    });
  };
  return {
    u32(): number {
      if (pos + 4 > buf.length) fail('truncated');
      const n = buf.readUInt32BE(pos);
      pos += 4;
      return n;
    },
    bytes(n: number): Buffer {
      if (pos + n > buf.length) fail('truncated');
      const b = buf.subarray(pos, pos + n);
      pos += n;
      return b;
    },
    string(): Buffer {
      return this.bytes(this.u32());
    },
    fail,
  };
}

export function publicKeyBlob(publicKey: Buffer): Buffer {
  return Buffer.concat([sshString(TYPE), sshString(publicKey)]);
}

/** `ssh-ed25519 AAAA… comment`, as in authorized_keys and .pub files. */
export function publicKeyLine(publicKey: Buffer, comment: string): string {
  const line = `${TYPE} ${publicKeyBlob(publicKey).toString('base64')}`;
  return comment ? `${line} ${comment}` : line;
}

/** SHA256 fingerprint of a public key blob, base64 without padding (what `ssh-keygen -l` shows after "SHA256:"). */
export function fingerprint(blob: Buffer): string {
  return createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

/** The private key file. `check` is the random check integer (any value; tests fix it). */
export function encodePrivateKey(key: Ed25519Key, check: number): string {
  if (key.seed.length !== 32 || key.publicKey.length !== 32)
    throw new KjxError('INTERNAL', 'ed25519 keys are 32 bytes');
  const blob = publicKeyBlob(key.publicKey);
  let priv = Buffer.concat([
    u32(check),
    u32(check),
    sshString(TYPE),
    sshString(key.publicKey),
    sshString(Buffer.concat([key.seed, key.publicKey])),
    sshString(key.comment),
  ]);
  const pad = (8 - (priv.length % 8)) % 8;
  priv = Buffer.concat([priv, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const body = Buffer.concat([
    MAGIC,
    sshString('none'),
    sshString('none'),
    sshString(''),
    u32(1),
    sshString(blob),
    sshString(priv),
  ]).toString('base64');
  const lines = body.match(/.{1,70}/g) ?? [];
  return `${BEGIN}\n${lines.join('\n')}\n${END}\n`;
}

/** Read back an unencrypted ed25519 key file (ours, or `ssh-keygen -t ed25519 -N ''`). */
export function decodePrivateKey(text: string, what: string): Ed25519Key {
  const m = new RegExp(`${BEGIN}([\\s\\S]*?)${END}`).exec(text);
  const r0 = reader(Buffer.alloc(0), what);
  if (!m) return r0.fail('no OPENSSH PRIVATE KEY block');
  const buf = Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
  if (!buf.subarray(0, MAGIC.length).equals(MAGIC)) return r0.fail('no openssh-key-v1 magic');
  const r = reader(buf.subarray(MAGIC.length), what);
  const cipher = r.string().toString();
  const kdf = r.string().toString();
  r.string();
  if (cipher !== 'none' || kdf !== 'none') r.fail('it is encrypted');
  if (r.u32() !== 1) r.fail('more than one key');
  r.string(); // public blob; the private section repeats it
  const p = reader(r.string(), what);
  const check1 = p.u32();
  const check2 = p.u32();
  if (check1 !== check2) p.fail('check integers differ');
  if (p.string().toString() !== TYPE) p.fail(`not ${TYPE}`);
  const publicKey = Buffer.from(p.string());
  const secret = p.string();
  if (publicKey.length !== 32 || secret.length !== 64) p.fail('bad key lengths');
  const comment = p.string().toString('utf8');
  return { seed: Buffer.from(secret.subarray(0, 32)), publicKey, comment };
}

/** The same key as a dropbear host key file (what `dropbearkey -t ed25519` writes). */
export function dropbearPrivateKey(key: Ed25519Key): Buffer {
  return Buffer.concat([sshString(TYPE), sshString(Buffer.concat([key.seed, key.publicKey]))]);
}

/** Is this (plausibly) a dropbear private key file: a key type name in SSH framing first? */
export function looksLikeDropbearKey(data: Buffer): boolean {
  if (data.length < 8) return false;
  const n = data.readUInt32BE(0);
  if (n < 7 || n > 32 || 4 + n > data.length) return false;
  return /^(?:ssh-(?:ed25519|rsa|dss)|ecdsa-sha2-nistp(?:256|384|521))$/.test(
    data.toString('latin1', 4, 4 + n),
  );
}
