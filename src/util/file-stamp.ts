/**
 * Knowing a file still holds the bytes it was hashed with, without reading it again:
 * what `kjx run` asks of the kernel, the build's artifacts and a snapshot on every
 * start (hashing them took a tenth of a restored run).
 */
import { readFileSync, statSync } from 'node:fs';
import { writeFileAtomic } from './atomic.js';
import { sha256File } from './hash-file.js';

/**
 * What changes whenever a file's bytes do: device, inode, size, and the modification
 * and status-change times in nanoseconds. Writing a file, replacing it or setting its
 * mtime back all move its ctime, which only the kernel sets (git's index relies on
 * the same), so an unchanged stamp means unchanged bytes without reading them.
 */
export function fileStamp(path: string): string {
  const st = statSync(path, { bigint: true });
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/**
 * Does `path` hash to `sha256`? It is read only when its stamp is not the one kept in
 * `stampPath` after the last match; a match keeps the stamp taken before the read, so
 * a write during the read shows next time. A missing file does not match; a stamp that
 * cannot be written costs the next caller a read, nothing else.
 */
export function sha256Matches(path: string, sha256: string, stampPath: string): boolean {
  let stamp: string;
  try {
    stamp = `${sha256} ${fileStamp(path)}\n`;
  } catch {
    return false;
  }
  try {
    if (readFileSync(stampPath, 'utf8') === stamp) return true;
  } catch {
    // no stamp yet
  }
  let actual: string;
  try {
    actual = sha256File(path);
  } catch {
    return false;
  }
  if (actual !== sha256) return false;
  try {
    writeFileAtomic(stampPath, stamp, 0o600);
  } catch {
    // a read-only cache: hashed again next time
  }
  return true;
}
