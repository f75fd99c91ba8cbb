/**
 * A cluster's supervisor: one small process per running cluster (the hidden
 * `kjx cluster supervise DIR`, in its own session) that is the parent of the
 * cluster's switch and of every node's QEMU. Each child is started through
 * util-linux `setpriv --pdeathsig KILL`, so whatever ends the supervisor (`down`,
 * a crash, a SIGKILL) ends every child with it: nothing of a cluster outlives it.
 *
 * kjx talks to it over `<dir>/supervisor.sock`, one JSON object per line each way.
 * `kjx cluster up` holds its connection as a guard: if that connection closes
 * before `keep` (Ctrl-C, a crash or a SIGKILL of kjx during `up`), the supervisor
 * kills every child and exits. After `keep` the cluster runs until `down`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { KjxError } from '../util/errors.js';

export const SUPERVISOR_SOCKET = 'supervisor.sock';

type Request =
  | { id: number; op: 'spawn'; argv: string[]; stdout?: string; stderr?: string; stdinPipe?: boolean }
  | { id: number; op: 'hold' }
  | { id: number; op: 'keep' }
  | { id: number; op: 'kill'; pid: number }
  | { id: number; op: 'down' };

type Reply = { id: number; ok: true; pid?: number } | { id: number; ok: false; error: string };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** argv[0] of a running pid ('' when it is gone). */
function exeOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
  } catch {
    return '';
  }
}

/** Serve `dir`'s socket until `down` or until a guard connection drops. Never returns normally. */
export async function runSupervisor(dir: string): Promise<void> {
  const children = new Map<number, ChildProcess>();
  const sock = join(dir, SUPERVISOR_SOCKET);
  rmSync(sock, { force: true });
  /** SIGKILL every child and reap it (bounded), so none is left a zombie for init to collect. */
  const killAll = async () => {
    const waits = [...children.values()].map(
      (c) =>
        new Promise<void>((res) => {
          if (c.exitCode !== null || c.signalCode !== null) return res();
          c.once('exit', () => res());
          c.kill('SIGKILL');
        }),
    );
    await Promise.race([Promise.all(waits), sleep(3000)]);
    children.clear();
  };
  let ending = false;
  const end = (status: number) => {
    if (ending) return;
    ending = true;
    rmSync(sock, { force: true });
    void killAll().finally(() => process.exit(status));
  };
  process.on('SIGTERM', () => end(0));
  process.on('SIGINT', () => end(0));

  const handle = async (r: Request, guard: { held: boolean }): Promise<Reply> => {
    switch (r.op) {
      case 'spawn': {
        const out = r.stdout ? openSync(r.stdout, 'a', 0o600) : 'ignore';
        const err = r.stderr ? openSync(r.stderr, 'a', 0o600) : 'ignore';
        const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', ...r.argv], {
          stdio: [r.stdinPipe ? 'pipe' : 'ignore', out, err],
        });
        if (typeof out === 'number') closeSync(out);
        if (typeof err === 'number') closeSync(err);
        const pid = child.pid;
        if (pid === undefined) return { id: r.id, ok: false, error: `cannot start ${r.argv[0]}` };
        child.on('error', () => children.delete(pid));
        // the exit handlers of killAll need the child until it is reaped
        child.on('exit', () => {
          if (!ending) children.delete(pid);
        });
        children.set(pid, child);
        // reply once setpriv has become the program, so the caller sees its argv at the pid
        for (let i = 0; i < 400 && exeOf(pid).endsWith('setpriv'); i++) await sleep(5);
        return { id: r.id, ok: true, pid };
      }
      case 'hold':
        guard.held = true;
        return { id: r.id, ok: true };
      case 'keep':
        guard.held = false;
        return { id: r.id, ok: true };
      case 'kill': {
        const c = children.get(r.pid);
        if (c) c.kill('SIGKILL');
        return { id: r.id, ok: true };
      }
      case 'down':
        setImmediate(() => end(0));
        return { id: r.id, ok: true };
    }
  };

  const server = createServer((s: Socket) => {
    const guard = { held: false };
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('utf8');
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let req: Request;
        try {
          req = JSON.parse(line) as Request;
        } catch {
          s.destroy();
          return;
        }
        handle(req, guard).then(
          (reply) => s.writable && s.write(`${JSON.stringify(reply)}\n`),
          (e: unknown) =>
            s.writable && s.write(`${JSON.stringify({ id: req.id, ok: false, error: String(e) })}\n`),
        );
      }
    });
    s.on('error', () => {});
    s.on('close', () => {
      if (guard.held) end(1);
    });
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(sock, () => res());
  });
  await new Promise(() => {});
}

/** A connection to a cluster's supervisor. */
export interface SupervisorClient {
  spawn(argv: string[], o?: { stdout?: string; stderr?: string; stdinPipe?: boolean }): Promise<number>;
  /** This connection guards the cluster: closing it before `keep` ends the cluster. */
  hold(): Promise<void>;
  keep(): Promise<void>;
  kill(pid: number): Promise<void>;
  /** End every child and the supervisor. */
  down(): Promise<void>;
  close(): void;
}

/** Connect to the supervisor of `dir`, waiting up to `waitMs` for its socket. */
export async function connectSupervisor(
  dir: string,
  waitMs = 0,
  alive?: () => boolean,
): Promise<SupervisorClient> {
  const path = join(dir, SUPERVISOR_SOCKET);
  const end = performance.now() + waitMs;
  let s: Socket | undefined;
  for (;;) {
    try {
      s = await new Promise<Socket>((res, rej) => {
        const c = createConnection(path);
        c.once('connect', () => res(c));
        c.once('error', rej);
      });
      break;
    } catch (e) {
      if (performance.now() >= end || (alive && !alive())) {
        throw new KjxError('VM_START', `the cluster's supervisor does not answer at ${path}`, {
          hint: 'is the cluster up? `kjx cluster status` says; `kjx cluster down` clears what is left',
          cause: e,
        });
      }
      await sleep(100);
    }
  }
  const sock = s;
  let next = 1;
  const waiting = new Map<number, (r: Reply) => void>();
  let buf = '';
  let closed = false;
  sock.on('data', (d) => {
    buf += d.toString('utf8');
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const r = JSON.parse(buf.slice(0, nl)) as Reply;
      buf = buf.slice(nl + 1);
      waiting.get(r.id)?.(r);
      waiting.delete(r.id);
    }
  });
  const gone = () => {
    closed = true;
    for (const [id, w] of waiting) w({ id, ok: false, error: 'the supervisor closed the connection' });
    waiting.clear();
  };
  sock.on('close', gone);
  sock.on('error', gone);
  const call = (req: Record<string, unknown>): Promise<Reply> => {
    if (closed) return Promise.resolve({ id: 0, ok: false, error: 'the supervisor is gone' });
    const id = next++;
    return new Promise((res) => {
      waiting.set(id, res);
      sock.write(`${JSON.stringify({ ...req, id })}\n`);
    });
  };
  const must = async (req: Record<string, unknown>): Promise<Reply & { ok: true }> => {
    const r = await call(req);
    if (!r.ok) throw new KjxError('VM_START', `cluster supervisor: ${r.error}`);
    return r;
  };
  return {
    spawn: async (argv, o = {}) => {
      const r = await must({ op: 'spawn', argv, ...o });
      return r.pid ?? -1;
    },
    hold: async () => void (await must({ op: 'hold' })),
    keep: async () => void (await must({ op: 'keep' })),
    kill: async (pid) => void (await must({ op: 'kill', pid })),
    down: async () => void (await call({ op: 'down' })),
    close: () => sock.end(),
  };
}

/** Start the supervisor of `dir` (detached, in its own session) and connect to it. */
export async function startSupervisor(dir: string): Promise<{ pid: number; client: SupervisorClient }> {
  const kjx = new URL('../../bin/kjx.js', import.meta.url).pathname;
  if (!existsSync(kjx)) throw new KjxError('INTERNAL', `kjx's entry point is missing: ${kjx}`);
  const log = openSync(join(dir, 'supervisor.log'), 'a', 0o600);
  const child = spawn(process.execPath, [kjx, 'cluster', 'supervise', dir], {
    detached: true,
    stdio: ['ignore', 'ignore', log],
  });
  closeSync(log);
  child.unref();
  const pid = child.pid ?? -1;
  const alive = () => exeOf(pid) !== '';
  const client = await connectSupervisor(dir, 60_000, alive);
  return { pid, client };
}
