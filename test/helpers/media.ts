/**
 * Helpers for the media integration tests: a project whose kjx.yaml is the
 * `kjx init` default with other outputs and disk size, builds as an ordinary
 * user (uid 65534 when the tests run as root), and sha256 of artifacts.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, createReadStream, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  coldCacheWithDebs,
  KJX,
  type KjxResult,
  keepProjectKeyPrivate,
  kjxForOtherUsers,
  runKjx,
  SHARED_CACHE,
} from './kjx.js';

/** Prefix that runs a command as nobody when we are root (setpriv, util-linux). */
export function asNobody(): string[] {
  return process.getuid?.() === 0
    ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--']
    : [];
}

/** A world-writable base directory holding a project made by `kjx init`, with outputs and disk size set. */
export function mediaProject(name: string, outputs: string[], diskSize = '256M', extra = ''): string {
  const base = mkdtempSync(join(tmpdir(), `kjx-${name}-`));
  chmodSync(base, 0o777);
  const ws = join(base, 'project');
  spawnSync('mkdir', ['-p', ws]);
  const r = runKjx(['init'], { cwd: ws });
  if (r.code !== 0) throw new Error(`kjx init failed: ${r.stderr}`);
  const yaml = readFileSync(join(ws, 'kjx.yaml'), 'utf8')
    .replace(/^outputs: \[initramfs\]$/m, `outputs: [${outputs.join(', ')}]`)
    .replace(/^ {2}size: 1G$/m, `  size: ${diskSize}`);
  if (!yaml.includes(`outputs: [${outputs.join(', ')}]`))
    throw new Error('the init template has no outputs line');
  writeFileSync(join(ws, 'kjx.yaml'), yaml + extra);
  spawnSync('chmod', ['-R', 'a+rwX', base]);
  return ws;
}

/** Copy a project (kjx.yaml, kjx.lock, .kjx with its SSH key) to a fresh world-writable directory. */
export function copyProject(ws: string, name: string): string {
  const base = mkdtempSync(join(tmpdir(), `kjx-${name}-`));
  chmodSync(base, 0o777);
  const to = join(base, 'project');
  cpSync(ws, to, { recursive: true, filter: (src) => !src.includes('/dist') });
  spawnSync('chmod', ['-R', 'a+rwX', base]);
  return to;
}

/** `kjx build` with a private cache (seeded with the shared .debs), as nobody when root. */
export function buildAs(
  ws: string,
  opts: { nobody: boolean; env?: Record<string, string>; out?: string } = { nobody: true },
): KjxResult & { cache: string } {
  const cache = coldCacheWithDebs();
  spawnSync('chmod', ['-R', 'a+rwX', cache]);
  keepProjectKeyPrivate(ws, opts.nobody && process.getuid?.() === 0 ? 65534 : process.getuid?.());
  const argv = [
    ...(opts.nobody ? asNobody() : []),
    process.execPath,
    opts.nobody ? kjxForOtherUsers() : KJX,
    'build',
    '-o',
    opts.out ?? 'dist',
  ];
  const r = spawnSync(argv[0]!, argv.slice(1), {
    cwd: ws,
    encoding: 'utf8',
    timeout: 600_000,
    env: { ...process.env, CI: '1', KJX_CACHE_DIR: cache, HOME: join(ws, '..'), ...opts.env },
  });
  // keep the shared cache warm with the GRUB packages this build fetched
  spawnSync('sh', ['-c', `cp -n ${cache}/debs/*.deb ${SHARED_CACHE}/debs/ 2>/dev/null || true`]);
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, cache };
}

/** `kjx ARGS` as nobody when root (inspect must work for an ordinary user). */
export function kjxAsNobody(args: string[], cwd: string): KjxResult {
  const argv = [...asNobody(), process.execPath, kjxForOtherUsers(), ...args];
  const r = spawnSync(argv[0]!, argv.slice(1), {
    cwd,
    encoding: 'utf8',
    timeout: 300_000,
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, CI: '1', HOME: tmpdir() },
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

export async function sha256Of(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}
