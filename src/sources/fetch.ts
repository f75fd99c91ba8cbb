/**
 * Make sure every planned .deb is in the cache (content-addressed by sha256),
 * downloading the missing ones in one `apt-get download` call.
 */
import { rmSync } from 'node:fs';
import { aptDownload, type ResolvedPackage } from './apt.js';
import { adoptDeb, type Cache, cacheTempDir, readDebFromCache } from './cache.js';

export interface FetchEvents {
  downloading?(pkgs: ResolvedPackage[], bytes: number): void;
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
  const dir = cacheTempDir(cache, `download-${process.pid}`);
  try {
    const files = await aptDownload(missing, dir);
    for (const p of missing)
      out.set(p.name, adoptDeb(cache, files.get(p.name)!, p.sha256, `${p.name} ${p.version}`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}
