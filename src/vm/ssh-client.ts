/**
 * SSH into a detached VM (`kjx exec`, `kjx ssh`), in-process with ssh2: key login
 * only, and the host key pinned to the fingerprint the guest printed on its console
 * while booting (no trust-on-first-use prompt, no StrictHostKeyChecking=no).
 * The one module that wraps the ssh2 library.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { Client, type ClientChannel } from 'ssh2';
import { shQuote } from '../guest/run-hook.js';
import { checkPrivateKeyMode } from '../guest/ssh-keys.js';
import { KjxError } from '../util/errors.js';
import type { VmRecord } from './registry.js';

/** OpenSSH's SHA256 fingerprint of a key blob, base64 without padding. */
export function sshFingerprint(blob: Buffer): string {
  return createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

function connect(rec: VmRecord, user: string, timeoutMs: number): Promise<Client> {
  if (!rec.ports.ssh) throw new KjxError('USAGE', `VM ${rec.name} has no forwarded SSH port`);
  if (rec.hostKeys.length === 0) {
    throw new KjxError('SSH_FAILED', `VM ${rec.name} printed no SSH host key while booting`, {
      hint: 'the image needs the ssh service (dropbear); see `ssh:` in kjx.yaml',
    });
  }
  if (!rec.identity) {
    throw new KjxError('SSH_FAILED', `VM ${rec.name} has no private key recorded for login`, {
      hint: 'boot it with `kjx boot --detach` from the project whose kjx.yaml it came from',
    });
  }
  checkPrivateKeyMode(rec.identity);
  let privateKey: Buffer;
  try {
    privateKey = readFileSync(rec.identity);
  } catch {
    throw new KjxError('SSH_FAILED', `cannot read the private key ${rec.identity}`);
  }
  const pinned = new Set(rec.hostKeys.map((k) => k.sha256));
  return new Promise((resolve, reject) => {
    const c = new Client();
    let presented = '';
    c.once('ready', () => resolve(c));
    c.once('error', (e) => {
      c.end();
      const mismatch = presented && !pinned.has(presented);
      reject(
        new KjxError(
          'SSH_FAILED',
          mismatch
            ? `host key of ${rec.name} is SHA256:${presented}, not the pinned SHA256:${[...pinned].join(', SHA256:')}; refusing to connect`
            : `ssh to ${rec.name} (127.0.0.1:${rec.ports.ssh}) failed: ${e.message}`,
          { cause: e },
        ),
      );
    });
    c.connect({
      host: '127.0.0.1',
      port: rec.ports.ssh,
      username: user,
      privateKey,
      readyTimeout: timeoutMs,
      hostVerifier: (key: Buffer) => {
        presented = sshFingerprint(key);
        return pinned.has(presented);
      },
    });
  });
}

export interface ExecIo {
  stdin?: Readable;
  stdout: Writable;
  stderr: Writable;
}

/** Run a command (argv, quoted for the guest shell); resolves with its exit status. */
export async function sshExec(
  rec: VmRecord,
  argv: string[],
  io: ExecIo,
  user = 'root',
  timeoutMs = 30_000,
): Promise<number> {
  const c = await connect(rec, user, timeoutMs);
  try {
    return await new Promise<number>((resolve, reject) => {
      c.exec(argv.map(shQuote).join(' '), (err, ch: ClientChannel) => {
        if (err) return reject(new KjxError('SSH_FAILED', `exec on ${rec.name} failed: ${err.message}`));
        ch.on('data', (b: Buffer) => io.stdout.write(b));
        ch.stderr.on('data', (b: Buffer) => io.stderr.write(b));
        if (io.stdin) io.stdin.pipe(ch);
        else ch.end();
        let status = 255;
        ch.on('exit', (code: number | null, signal?: string) => {
          status = code ?? (signal ? 128 + 15 : 255);
        });
        ch.on('close', () => resolve(status));
      });
    });
  } finally {
    c.end();
  }
}

/** An interactive login shell on a PTY, wired to our terminal. */
export async function sshShell(rec: VmRecord, user = 'root'): Promise<number> {
  const c = await connect(rec, user, 30_000);
  const stdin = process.stdin;
  const tty = stdin.isTTY;
  try {
    return await new Promise<number>((resolve, reject) => {
      c.shell(
        {
          term: process.env.TERM ?? 'xterm',
          rows: process.stdout.rows ?? 24,
          cols: process.stdout.columns ?? 80,
        },
        (err, ch) => {
          if (err) return reject(new KjxError('SSH_FAILED', `shell on ${rec.name} failed: ${err.message}`));
          if (tty) stdin.setRawMode(true);
          stdin.pipe(ch);
          ch.pipe(process.stdout);
          ch.stderr.pipe(process.stderr);
          const resize = () => ch.setWindow(process.stdout.rows ?? 24, process.stdout.columns ?? 80, 0, 0);
          process.stdout.on('resize', resize);
          let status = 0;
          ch.on('exit', (code: number | null) => {
            status = code ?? 255;
          });
          ch.on('close', () => {
            process.stdout.off('resize', resize);
            stdin.unpipe(ch);
            if (tty) stdin.setRawMode(false);
            stdin.pause();
            resolve(status);
          });
        },
      );
    });
  } finally {
    c.end();
  }
}
