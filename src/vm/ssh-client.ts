/**
 * SSH into a detached VM (its Guest's commands and copies, `kjx ssh`), in-process with
 * ssh2: key login only, and the host key pinned to the fingerprint the guest printed
 * on its console while booting (no trust-on-first-use prompt, no
 * StrictHostKeyChecking=no). The one module that wraps the ssh2 library.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { type Readable, Writable } from 'node:stream';
import { Client, type ClientChannel } from 'ssh2';
import { runCommandScript, shQuote } from '../guest/run-hook.js';
import { checkPrivateKeyMode } from '../guest/ssh-keys.js';
import { tempNameFor } from '../util/atomic.js';
import { KjxError } from '../util/errors.js';
import type { GuestCommand, GuestRunResult, Limits, RunIo } from './guest.js';
import { type LimitHit, watchLimits } from './limits.js';
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

/** What a command's channel does: streams in and out, and when it ends. */
interface ChannelIo {
  stdin?: Readable | Buffer;
  stdout: Writable;
  stderr: Writable;
}

/**
 * Run a command string on an open connection; resolves with its exit status, or
 * with the limit that ended it first (the channel is closed then).
 */
function execChannel(
  c: Client,
  rec: VmRecord,
  command: string,
  io: ChannelIo,
  limits: Limits = {},
): Promise<{ status: number } | LimitHit> {
  return new Promise((resolve, reject) => {
    c.exec(command, (err, ch: ClientChannel) => {
      if (err) return reject(new KjxError('SSH_FAILED', `exec on ${rec.name} failed: ${err.message}`));
      let last = performance.now();
      const watch = watchLimits(limits, {
        startedAt: last,
        lastOutputAt: () => last,
        late: 'the command did not finish',
      });
      void watch.hit.then((h) => {
        ch.close();
        resolve(h);
      });
      ch.on('data', (b: Buffer) => {
        last = performance.now();
        io.stdout.write(b);
      });
      ch.stderr.on('data', (b: Buffer) => {
        last = performance.now();
        io.stderr.write(b);
      });
      if (Buffer.isBuffer(io.stdin)) ch.end(io.stdin);
      else if (io.stdin) io.stdin.pipe(ch);
      else ch.end();
      let status = 255;
      ch.on('exit', (code: number | null, signal?: string) => {
        status = code ?? (signal ? 128 + 15 : 255);
      });
      ch.on('close', () => {
        watch.cancel();
        resolve({ status });
      });
    });
  });
}

/**
 * The command line a detached guest's shell runs: the same script an ephemeral run's
 * command gets (environment, working directory, then exec), so a command means the
 * same in both kinds of VM.
 */
export function sshCommandLine(cmd: GuestCommand): string {
  return runCommandScript({ argv: cmd.argv, env: cmd.env ?? {}, ...(cmd.cwd ? { cwd: cmd.cwd } : {}) });
}

/** Run a command in a detached guest (as `user`), streams as they come. */
export async function sshRun(
  rec: VmRecord,
  cmd: GuestCommand,
  io: RunIo,
  user = 'root',
  timeoutMs = 30_000,
): Promise<GuestRunResult> {
  const c = await connect(rec, user, timeoutMs);
  try {
    const r = await execChannel(c, rec, sshCommandLine(cmd), io, io);
    return 'status' in r ? { outcome: 'exited', status: r.status } : r;
  } finally {
    c.end();
  }
}

/**
 * Copy a host file or directory to `guest` (absolute) in a detached guest: a tar
 * archive of it (src/image/tar-writer.ts, owned by root, modes as on the host) into
 * the guest's `tar -x` at /.
 */
export async function sshCopyIn(rec: VmRecord, host: string, guest: string, user = 'root'): Promise<void> {
  const { mountTree } = await import('./payload.js');
  const { writeTar } = await import('../image/tar-writer.js');
  const { normalizePath } = await import('../rootfs/tree.js');
  if (!guest.startsWith('/'))
    throw new KjxError('USAGE', `copy ${host} in: ${JSON.stringify(guest)} is not an absolute guest path`);
  const { makeReproducible } = await import('../rootfs/reproducible.js');
  const files = mountTree([{ host, guest: normalizePath(guest) }]);
  const tar = writeTar(makeReproducible(files, Math.floor(Date.now() / 1000)), { names: 'bare' });
  const err: Buffer[] = [];
  const c = await connect(rec, user, 30_000);
  try {
    const r = await execChannel(c, rec, 'tar -x -f - -C /', {
      stdin: tar,
      stdout: sink(() => {}),
      stderr: sink((b) => err.push(b)),
    });
    if (!('status' in r) || r.status !== 0)
      throw new KjxError('GUEST_COPY', `copying ${host} to ${guest} in ${rec.name} failed`, {
        details: [Buffer.concat(err).toString('utf8').trim()].filter(Boolean),
      });
  } finally {
    c.end();
  }
}

/** Copy a regular file of a detached guest to `host` (written whole or not at all, mode 0600). */
export async function sshCopyOut(rec: VmRecord, guest: string, host: string, user = 'root'): Promise<void> {
  const tmp = tempNameFor(host);
  const fd = openSync(tmp, 'w', 0o600);
  const err: Buffer[] = [];
  let ok = false;
  const c = await connect(rec, user, 30_000).catch((e: unknown) => {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  });
  try {
    const r = await execChannel(c, rec, `test -f ${shQuote(guest)} && exec cat -- ${shQuote(guest)}`, {
      stdout: sink((b) => writeSync(fd, b)),
      stderr: sink((b) => err.push(b)),
    });
    if (!('status' in r) || r.status !== 0)
      throw new KjxError(
        'GUEST_COPY',
        `copying ${guest} out of ${rec.name} failed: not a regular file it can read`,
        {
          hint: `nothing was written to ${host}`,
          details: [Buffer.concat(err).toString('utf8').trim()].filter(Boolean),
        },
      );
    ok = true;
  } finally {
    c.end();
    closeSync(fd);
    if (ok) renameSync(tmp, host);
    else rmSync(tmp, { force: true });
  }
}

/** A Writable that hands each chunk to `f`. */
function sink(f: (b: Buffer) => void): Writable {
  return new Writable({
    write(b: Buffer, _e, cb) {
      f(b);
      cb();
    },
  });
}

/** A login shell wired to our stdio: on a PTY when stdin is a terminal, plain when it is piped. */
export async function sshShell(rec: VmRecord, user = 'root'): Promise<number> {
  const c = await connect(rec, user, 30_000);
  const stdin = process.stdin;
  const tty = stdin.isTTY;
  try {
    return await new Promise<number>((resolve, reject) => {
      // a PTY only for a terminal: a script piped in (`kjx ssh NAME < x`) must not be
      // echoed back with CRLFs, and its exit status must be the script's, as with ssh
      c.shell(
        tty
          ? {
              term: process.env.TERM ?? 'xterm',
              rows: process.stdout.rows ?? 24,
              cols: process.stdout.columns ?? 80,
            }
          : false,
        (err, ch) => {
          if (err) return reject(new KjxError('SSH_FAILED', `shell on ${rec.name} failed: ${err.message}`));
          if (tty) stdin.setRawMode(true);
          stdin.pipe(ch);
          ch.pipe(process.stdout);
          ch.stderr.pipe(process.stderr);
          const resize = () => ch.setWindow(process.stdout.rows ?? 24, process.stdout.columns ?? 80, 0, 0);
          if (tty) process.stdout.on('resize', resize);
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
