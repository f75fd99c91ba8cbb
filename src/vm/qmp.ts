/**
 * A QMP client (QEMU Machine Protocol, docs/interop/qmp-spec.rst in QEMU): JSON
 * objects one per line over a unix socket; a greeting, then `qmp_capabilities`,
 * then commands answered by `return` or `error`, with asynchronous `event`s between.
 * The framing (`QmpFramer`) is pure; `connectQmp` is the socket adapter.
 */
import { connect, type Socket } from 'node:net';
import { KjxError } from '../util/errors.js';

export type QmpMessage =
  | { QMP: unknown }
  | { return: unknown; id?: string }
  | { error: { class: string; desc: string }; id?: string }
  | { event: string; data?: unknown; timestamp?: unknown };

/** Splits a byte stream into QMP messages. */
export class QmpFramer {
  private buf = '';
  push(chunk: string): QmpMessage[] {
    this.buf += chunk;
    const out: QmpMessage[] = [];
    let nl = this.buf.indexOf('\n');
    while (nl >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (line) {
        try {
          out.push(JSON.parse(line) as QmpMessage);
        } catch {
          throw new KjxError('VM_START', `QMP sent a line that is not JSON: ${line.slice(0, 200)}`);
        }
      }
      nl = this.buf.indexOf('\n');
    }
    return out;
  }
}

export interface QmpClient {
  /** Run a command; rejects with the QMP error description. */
  execute(command: string, args?: Record<string, unknown>): Promise<unknown>;
  /** Events received so far. */
  events(): { event: string; data?: unknown }[];
  close(): void;
}

export async function connectQmp(path: string, timeoutMs = 5000): Promise<QmpClient> {
  const sock: Socket = connect(path);
  const framer = new QmpFramer();
  const events: { event: string; data?: unknown }[] = [];
  const waiting: { id: string; resolve: (v: unknown) => void; reject: (e: Error) => void }[] = [];
  let greeted!: () => void;
  let failed!: (e: Error) => void;
  const ready = new Promise<void>((res, rej) => {
    greeted = res;
    failed = rej;
  });
  const timer = setTimeout(
    () => failed(new KjxError('VM_START', `no QMP greeting on ${path} within ${timeoutMs} ms`)),
    timeoutMs,
  );
  let seq = 0;
  sock.setEncoding('utf8');
  sock.on('data', (chunk: string) => {
    let msgs: QmpMessage[];
    try {
      msgs = framer.push(chunk);
    } catch (e) {
      sock.destroy(e as Error);
      return;
    }
    for (const m of msgs) {
      if ('QMP' in m) greeted();
      else if ('event' in m) events.push({ event: m.event, data: m.data });
      else {
        const w = waiting.findIndex((x) => x.id === m.id);
        if (w < 0) continue;
        const [it] = waiting.splice(w, 1);
        if ('error' in m) it!.reject(new KjxError('VM_START', `QMP: ${m.error.class}: ${m.error.desc}`));
        else it!.resolve(m.return);
      }
    }
  });
  const onGone = (e?: Error) => {
    const err = new KjxError('VM_START', `QMP connection to ${path} closed${e ? `: ${e.message}` : ''}`);
    failed(err);
    for (const w of waiting.splice(0)) w.reject(err);
  };
  sock.on('error', onGone);
  sock.on('close', () => onGone());
  const client: QmpClient = {
    execute(command, args) {
      const id = `kjx-${++seq}`;
      return new Promise((resolve, reject) => {
        waiting.push({ id, resolve, reject });
        sock.write(
          `${JSON.stringify(args ? { execute: command, arguments: args, id } : { execute: command, id })}\n`,
        );
      });
    },
    events: () => [...events],
    close: () => sock.destroy(),
  };
  try {
    await ready;
    await client.execute('qmp_capabilities');
  } catch (e) {
    sock.destroy(); // a half-open connection must not keep the caller alive
    throw e;
  } finally {
    clearTimeout(timer);
  }
  return client;
}
