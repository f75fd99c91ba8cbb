/**
 * kjx.yaml read once per change: `kjx run`, `boot`, `test` and `trace` read the spec on
 * every start, and validating it means loading zod and building the schema (~0.1 s of
 * each start) plus the check itself (~0.03 s). The spec as validated is kept under
 * `<cache>/specs/`, named by the hash of kjx's code, the path and the text, so a
 * changed byte of either, or another kjx, validates again.
 *
 * Only specs whose validation reads nothing but kjx.yaml are kept: component files,
 * image archives and eBPF program sources are checked on the host file system while
 * loading (spec/load.ts), and those checks must see the files as they are now.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { type Cache, openCache } from '../sources/cache.js';
import { withSource } from '../spec/positions.js';
import type { Spec } from '../spec/schema.js';
import { isComponentPath } from '../spec/values.js';
import { writeFileAtomic } from '../util/atomic.js';
import { sha256 } from '../util/hash.js';
import { codeHash } from './code-hash.js';

/** Bump when what an entry holds changes meaning. */
const FORMAT = 1;

/**
 * The spec at `path`, validated: from the cache when these bytes were validated by
 * this kjx before, else by spec/load.ts (and kept when it may be).
 * @throws KjxError SPEC_NOT_FOUND, SPEC_SYNTAX or SPEC_INVALID, as loadSpec
 */
export async function loadSpecCached(path: string, cache: Cache = openCache()): Promise<Spec> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    // loadSpec says what is wrong with the path
    return (await import('../spec/load.js')).loadSpec(path);
  }
  const entry = join(
    cache.root,
    'specs',
    `${sha256(`${FORMAT}\0${codeHash()}\0${resolve(path)}\0${path}\0${text}`)}.json`,
  );
  const kept = readEntry(entry);
  if (kept) return withSource(kept, { file: path, text });
  // the bytes just read are the ones validated and kept: no second read to disagree
  const spec = (await import('../spec/load.js')).parseSpec(text, path);
  if (keepable(spec)) {
    const json = JSON.stringify({ format: FORMAT, spec });
    // only what JSON carries whole: anything else is validated again next time
    if (isDeepStrictEqual((JSON.parse(json) as { spec: unknown }).spec, { ...spec })) {
      try {
        writeFileAtomic(entry, json, 0o600);
      } catch {
        // a read-only cache: validated again next time
      }
    }
  }
  return spec;
}

/** Does validating this spec read nothing but its own text? */
function keepable(spec: Spec): boolean {
  return (
    !spec.components.some(isComponentPath) &&
    !spec.images.some((i) => i.kind === 'archive') &&
    spec.tracing.programs.length === 0
  );
}

function readEntry(file: string): Spec | undefined {
  try {
    const e = JSON.parse(readFileSync(file, 'utf8')) as { format?: unknown; spec?: unknown };
    // a torn or foreign entry is as good as none
    if (e.format !== FORMAT || typeof e.spec !== 'object' || e.spec === null) return undefined;
    return e.spec as Spec;
  } catch {
    return undefined;
  }
}
