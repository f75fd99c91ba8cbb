/**
 * Inputs that passed a check before, remembered by their bytes and the code that
 * checked them: a `kjx.lock` comes with a clone, so every build checks it, but once
 * these exact bytes passed the check of this exact kjx, a `kjx run` need not load
 * the checker (zod, ~0.05 s of every start) to learn the same again.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from './atomic.js';
import { sha256 } from './hash.js';

export interface KnownValid {
  /** Did these bytes pass before? */
  has(text: string): boolean;
  /** Remember that these bytes passed. */
  add(text: string): void;
}

/** Markers under `dir`, one empty file per text, named by the hash of `code` and the text. */
export function knownValid(dir: string, code: string): KnownValid {
  const marker = (text: string) => join(dir, sha256(`${code}\0${text}`));
  return {
    has: (text) => existsSync(marker(text)),
    add: (text) => {
      try {
        writeFileAtomic(marker(text), '', 0o600);
      } catch {
        // a read-only cache: checked again next time
      }
    },
  };
}
