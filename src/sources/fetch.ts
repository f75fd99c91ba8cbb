/**
 * Make sure every planned .deb is in the cache (content-addressed by sha256),
 * downloading the missing ones in one `apt-get download` call.
 */
import { rmSync } from 'node:fs';
import type { WarnFn } from '../util/errors.js';
import { aptDownload, type ResolvedPackage, readDownloaded } from './apt.js';
import { aptDownloadDir } from './apt-sandbox.js';
import { adoptDeb, type Cache, readDebFromCache } from './cache.js';

export interface FetchEvents {
  downloading?(pkgs: ResolvedPackage[], bytes: number): void;
  /** apt's own warnings (e.g. that it could not drop privileges). */
  warn?: WarnFn;
}

/** Returns name -> .deb bytes for every package. */
export async function fetchDebs(
  cache: Cache,
  pkgs: ResolvedPackage[],
  events: FetchEvents = {},
): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const missing: ResolvedPackage[] = [];
  for (const p of pkgs) {
    const data = readDebFromCache(cache, p.sha256);
    if (data) out.set(p.name, data);
    else missing.push(p);
  }
  if (missing.length === 0) return out;
  events.downloading?.(
    missing,
    missing.reduce((n, p) => n + p.size, 0),
  );
  const dir = await aptDownloadDir(cache);
  try {
    const files = await aptDownload(missing, dir, events.warn);
    for (const p of missing) {
      const what = `${p.name} ${p.version}`;
      out.set(p.name, adoptDeb(cache, readDownloaded(files.get(p.name)!, p.size, what), p.sha256, what));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}
