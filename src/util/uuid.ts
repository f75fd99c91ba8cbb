/**
 * Deterministic UUIDs: the same seed gives the same UUID, so disk images are
 * reproducible (file system UUID, hash seed, partition GUIDs) while two builds
 * of different inputs still get different ones. Formatted as version 4 (random)
 * UUIDs, as tools that check the version expect, the way systemd-repart derives
 * its partition UUIDs from a hash.
 */
import { createHash } from 'node:crypto';

export function uuidFrom(seed: string): string {
  const b = createHash('sha256').update(seed).digest().subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
