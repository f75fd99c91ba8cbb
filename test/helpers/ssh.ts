/**
 * SSH from tests, in-process with ssh2 (nothing depends on the host's OpenSSH or
 * its config): run a command with a key, pinning the host key to a fingerprint, and
 * try logins that must fail, reporting what the server said.
 */
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import { Client, type ConnectConfig } from 'ssh2';

/**
 * A TCP port on 127.0.0.1 that is free right now, for tests that boot with
 * `bootBuilt`. kjx itself never does this (QEMU binds port 0, src/vm/forwards.ts);
 * here a port taken in between fails one test run, loudly.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** OpenSSH's SHA256 fingerprint of a host key blob, without "SHA256:". */
export function fingerprintOf(blob: Buffer): string {
  return createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Fingerprint of the host key the server presented. */
  hostKey: string;
}

interface Target {
  port: number;
  username: string;
  /** Refuse the connection unless the host key has this fingerprint. */
  hostKey?: string;
  timeoutMs?: number;
}

function connect(t: Target, auth: Partial<ConnectConfig>): Promise<{ client: Client; hostKey: string }> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let seen = '';
    const timer = setTimeout(() => {
      client.end();
      reject(new Error(`ssh to 127.0.0.1:${t.port} timed out`));
    }, t.timeoutMs ?? 30_000);
    client.once('ready', () => {
      clearTimeout(timer);
      resolve({ client, hostKey: seen });
    });
    client.once('error', (e) => {
      clearTimeout(timer);
      client.end();
      reject(Object.assign(e, { hostKey: seen }));
    });
    client.connect({
      host: '127.0.0.1',
      port: t.port,
      username: t.username,
      readyTimeout: t.timeoutMs ?? 30_000,
      hostVerifier: (key: Buffer) => {
        seen = fingerprintOf(key);
        return t.hostKey === undefined || seen === t.hostKey;
      },
      ...auth,
    });
  });
}

/** Log in with a private key and run one command. */
export async function sshExec(
  t: Target & { privateKey: string | Buffer },
  command: string,
): Promise<ExecResult> {
  const { client, hostKey } = await connect(t, { privateKey: t.privateKey });
  try {
    return await new Promise<ExecResult>((resolve, reject) => {
      client.exec(command, (err, stream) => {
        if (err) return reject(err);
        let stdout = '';
        let stderr = '';
        stream.on('data', (b: Buffer) => {
          stdout += b.toString('utf8');
        });
        stream.stderr.on('data', (b: Buffer) => {
          stderr += b.toString('utf8');
        });
        stream.on('close', (code: number | null) => resolve({ code, stdout, stderr, hostKey }));
      });
    });
  } finally {
    client.end();
  }
}

export interface RefusedLogin {
  /** The login succeeded (it must not). */
  accepted: boolean;
  /** ssh2's message when refused, e.g. "All configured authentication methods failed". */
  message: string;
  /** Methods the server offered after the first attempt ("none"). */
  methods: string[];
}

/** Try to log in with a password (which may be empty); report how it went. */
export async function tryPassword(t: Target, password: string): Promise<RefusedLogin> {
  const methods: string[] = [];
  let attempts = 0;
  try {
    const { client } = await connect(t, {
      tryKeyboard: true,
      authHandler: (left, _partial, next) => {
        if (left) methods.splice(0, methods.length, ...left);
        attempts++;
        if (attempts === 1) return next({ type: 'none', username: t.username });
        if (attempts === 2) return next({ type: 'password', username: t.username, password });
        if (attempts === 3)
          return next({
            type: 'keyboard-interactive',
            username: t.username,
            prompt: (_n, _i, _l, prompts, finish) => finish(prompts.map(() => password)),
          });
        return next(false as never);
      },
    });
    client.end();
    return { accepted: true, message: '', methods };
  } catch (e) {
    return { accepted: false, message: (e as Error).message, methods };
  }
}
