/**
 * Copying files out of an ephemeral VM (docs/guest-protocol.md): `copy-out.sh`
 * runs the command, then sends the listed files to the virtio-serial port
 * `kjx.files` as `<size>\n<bytes>` each (`-\n` for a file it cannot send). The
 * script and the list travel in the run payload; `parseCopyOut` reads what arrived.
 */
import { readFileSync } from 'node:fs';
import { KjxError } from '../util/errors.js';

export const COPY_OUT_PATH = '/kjx/run/copy-out';
export const COPY_OUT_LIST = '/kjx/run/copy-out.list';
export const FILES_PORT = 'kjx.files';

/** The guest script, as it is in src/guest/sh/copy-out.sh (checked by shellcheck). */
export function copyOutScript(): string {
  return readFileSync(new URL('./sh/copy-out.sh', import.meta.url), 'utf8');
}

/** The list file: one absolute guest path a line. */
export function copyOutList(paths: string[]): string {
  for (const p of paths)
    if (!p.startsWith('/') || p.includes('\n'))
      throw new KjxError('USAGE', `copy out ${JSON.stringify(p)}: expected an absolute guest path`);
  return paths.map((p) => `${p}\n`).join('');
}

/** How one file came out: its size, or why it did not come whole. */
export type CopiedFile = { ok: true; size: number } | { ok: false; why: string };

export interface CopyOutParser {
  /** Feed bytes as the port delivers them; file bytes go to `data` as they are found. */
  push(chunk: Buffer): void;
  /** The port is closed: how each of the files came out. */
  end(): CopiedFile[];
}

/** Longest header: a size of up to 15 digits (or "-"). */
const MAX_HEAD = 16;

/**
 * Read the stream of `count` files from the port as it arrives. The guest is not
 * trusted to frame honestly: a header that is not a size, a file cut short, or bytes
 * past a file's size (it grew while it was read) fail that file, and a damaged
 * header fails every file after it; nothing is guessed.
 */
export function copyOutParser(count: number, data: (file: number, bytes: Buffer) => void): CopyOutParser {
  const results: CopiedFile[] = [];
  let head = '';
  /** Bytes still to come for file `results.length` (-1: reading a header). */
  let left = -1;
  let size = 0;
  let broken: string | undefined;
  const fail = (why: string): void => {
    broken = why;
    // a header that does not parse right after a file means that file was longer than it said
    const last = results.at(-1);
    if (last?.ok) results[results.length - 1] = { ok: false, why: CHANGED };
  };
  return {
    push(chunk) {
      let at = 0;
      while (at < chunk.length && broken === undefined) {
        if (left > 0) {
          const n = Math.min(left, chunk.length - at);
          data(results.length, chunk.subarray(at, at + n));
          at += n;
          left -= n;
          if (left === 0) {
            results.push({ ok: true, size });
            left = -1;
          }
          continue;
        }
        if (results.length >= count) {
          fail('unexpected bytes after the last file');
          break;
        }
        const nl = chunk.indexOf(0x0a, at);
        head += chunk.toString('latin1', at, nl < 0 ? chunk.length : nl);
        if (head.length > MAX_HEAD) {
          fail('the guest sent a damaged header');
          break;
        }
        if (nl < 0) break;
        at = nl + 1;
        const h = head;
        head = '';
        if (h === '-') results.push({ ok: false, why: 'not a regular file the guest could read' });
        else if (/^\d{1,15}$/.test(h)) {
          size = Number(h);
          if (size === 0) results.push({ ok: true, size });
          else left = size;
        } else fail('the guest sent a damaged header');
      }
    },
    end() {
      const out = [...results];
      if (left > 0) out.push({ ok: false, why: `cut short (${size - left} of ${size} bytes arrived)` });
      while (out.length < count)
        out.push({
          ok: false,
          why: broken ?? 'the guest sent nothing for it (the command did not end normally?)',
        });
      return out.slice(0, count);
    },
  };
}

const CHANGED = 'it changed while it was sent (more bytes than its size)';
