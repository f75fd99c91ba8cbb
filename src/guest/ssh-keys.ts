/**
 * The SSH keys a build needs from the host: every user's authorized keys (literal
 * lines, or host files of them), the spec's host key files, and, when the spec
 * gives no authorized key at all, the project key pair kjx creates in
 * `.kjx/ssh/id_ed25519` next to kjx.yaml (private key mode 0600, and refused when
 * group or others may read it; only the public half ever enters the image, in
 * root's authorized_keys).
 *
 * This is the edge where the guest system touches the host file system; the
 * formats are in openssh-key.ts.
 */
import { generateKeyPairSync, randomInt } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readHostFile } from '../sources/host-files.js';
import type { Spec } from '../spec/schema.js';
import { writeFileAtomic } from '../util/atomic.js';
import { KjxError } from '../util/errors.js';
import {
  decodePrivateKey,
  dropbearPrivateKey,
  type Ed25519Key,
  encodePrivateKey,
  looksLikeDropbearKey,
  publicKeyLine,
} from './openssh-key.js';

/** Where the project key pair lives, relative to the directory of kjx.yaml. */
export const PROJECT_KEY_DIR = join('.kjx', 'ssh');
export const PROJECT_KEY_NAME = 'id_ed25519';

/** The project's private key path (the public key is next to it, with .pub). */
export function projectKeyPath(specDir: string): string {
  return join(specDir, PROJECT_KEY_DIR, PROJECT_KEY_NAME);
}

/** A line of authorized_keys we accept: key type, base64, optional comment. */
const KEY_LINE =
  /^(?:ssh-(?:ed25519|rsa|dss)|ecdsa-sha2-nistp(?:256|384|521)|sk-(?:ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/]+={0,3}(?: .*)?$/;

/** The key lines of an authorized_keys-style file: blank lines and # comments dropped, each line checked. */
export function parseKeyFile(text: string, what: string): string[] {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  lines.forEach((l, i) => {
    if (!KEY_LINE.test(l))
      throw new KjxError('KEY_INVALID', `${what}: line ${i + 1} is not an OpenSSH public key`, {
        hint: 'give .pub files ("ssh-ed25519 AAAA... comment"), never private keys',
      });
  });
  if (lines.length === 0)
    throw new KjxError('KEY_INVALID', `${what}: no public key in the file`, {
      hint: 'give .pub files ("ssh-ed25519 AAAA... comment")',
    });
  return lines;
}

/**
 * A host key file as dropbear needs it: dropbear's own format as it is, an
 * unencrypted OpenSSH ed25519 key (what `ssh-keygen -t ed25519 -N ''` writes)
 * converted; anything else is refused.
 */
export function hostKeyForDropbear(data: Buffer, what: string): Buffer {
  if (data.toString('latin1', 0, 40).startsWith('-----BEGIN OPENSSH PRIVATE KEY-----'))
    return dropbearPrivateKey(decodePrivateKey(data.toString('utf8'), what));
  if (looksLikeDropbearKey(data)) return data;
  throw new KjxError('KEY_INVALID', `${what}: not a host private key dropbear can use`, {
    hint: 'give a dropbear key (dropbearkey -t ed25519 -f FILE) or an unencrypted OpenSSH ed25519 key (ssh-keygen -t ed25519 -N "")',
  });
}

/**
 * Refuse a private key file that group or others may use (as OpenSSH does): a
 * key others can read is no longer the project's alone, one they can write is
 * no longer ours. KEY_INVALID with the chmod line that fixes it.
 */
export function checkPrivateKeyMode(path: string): void {
  let mode: number;
  try {
    mode = statSync(path).mode & 0o777;
  } catch (e) {
    throw new KjxError('KEY_INVALID', `cannot read the private key ${path}: ${(e as Error).message}`, {
      cause: e,
      hint: 'check that it exists and is yours, or remove it to let kjx create a new one',
    });
  }
  if ((mode & 0o077) !== 0)
    throw new KjxError(
      'KEY_INVALID',
      `the private key ${path} is open to others (mode ${mode.toString(8).padStart(4, '0')})`,
      { hint: `chmod 600 ${path}` },
    );
}

export interface ProjectKey {
  /** The private key file. */
  path: string;
  publicLine: string;
  /** This build created it. */
  created: boolean;
}

/** Create the project key pair unless it exists; return its public line. */
export function ensureProjectKey(specDir: string, comment: string): ProjectKey {
  const path = projectKeyPath(specDir);
  if (existsSync(path)) {
    checkPrivateKeyMode(path);
    // the .pub file is a convenience copy; the private file is the truth
    let key: Ed25519Key;
    try {
      key = decodePrivateKey(readFileSync(path, 'utf8'), path);
    } catch (e) {
      if (e instanceof KjxError) throw e;
      throw new KjxError('KEY_INVALID', `cannot read the project key ${path}: ${(e as Error).message}`, {
        cause: e,
        hint: 'check its permissions, or remove it to let kjx create a new one',
      });
    }
    return { path, publicLine: publicKeyLine(key.publicKey, key.comment), created: false };
  }
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  const key: Ed25519Key = {
    seed: Buffer.from(jwk.d!, 'base64url'),
    publicKey: Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url'),
    comment,
  };
  try {
    mkdirSync(join(specDir, '.kjx'), { recursive: true });
    // keep the private key out of version control without touching the project's .gitignore
    const ignore = join(specDir, '.kjx', '.gitignore');
    if (!existsSync(ignore))
      writeFileAtomic(ignore, '# kjx state, including the project SSH key: never commit it\n*\n');
    mkdirSync(join(specDir, PROJECT_KEY_DIR), { recursive: true, mode: 0o700 });
    const publicLine = publicKeyLine(key.publicKey, comment);
    // private first: a build killed in between finds it and rewrites nothing
    writeFileAtomic(path, encodePrivateKey(key, randomInt(0, 2 ** 32)), 0o600);
    writeFileAtomic(`${path}.pub`, `${publicLine}\n`, 0o644);
    return { path, publicLine, created: true };
  } catch (e) {
    throw new KjxError('KEY_INVALID', `cannot create the project SSH key ${path}: ${(e as Error).message}`, {
      cause: e,
      hint: 'kjx writes it next to kjx.yaml; make that directory writable, or give users[].authorizedKeys',
    });
  }
}

export interface SshInputs {
  /** user name -> authorized key lines. */
  authorizedKeys: Map<string, string[]>;
  /** Contents of the spec's host key files, in order. */
  hostKeys: Buffer[];
  /** Set when the project key is authorized (the spec gave no key). */
  projectKey?: ProjectKey;
}

/** Everything SSH-related a build reads from the host (and the project key it may create). */
export function sshInputs(spec: Spec): SshInputs {
  const authorizedKeys = new Map<string, string[]>();
  spec.users.forEach((u, i) => {
    const lines: string[] = [];
    u.authorizedKeys.forEach((k, j) => {
      const what = `users[${i}].authorizedKeys[${j}]`;
      if (k.kind === 'literal') lines.push(...parseKeyFile(k.key, what));
      else
        lines.push(
          ...parseKeyFile(
            readHostFile(k.path, `${what}: ${k.pathRef}`).toString('utf8'),
            `${what} (${k.pathRef})`,
          ),
        );
    });
    if (lines.length > 0) authorizedKeys.set(u.name, lines);
  });
  const out: SshInputs = { authorizedKeys, hostKeys: [] };
  if (!spec.ssh.enabled) return out;
  out.hostKeys = spec.ssh.hostKeyFiles.map((f, i) => {
    const what = `ssh.hostKeyFiles[${i}]: ${f.pathRef}`;
    return hostKeyForDropbear(readHostFile(f.path, what), what);
  });
  if (authorizedKeys.size === 0) {
    const to = spec.ssh.rootLogin ? 'root' : spec.users.find((u) => u.name !== 'root')?.name;
    if (to !== undefined) {
      out.projectKey = ensureProjectKey(spec.specDir, `kjx-${spec.name}`);
      authorizedKeys.set(to, [out.projectKey.publicLine]);
    }
  }
  return out;
}
