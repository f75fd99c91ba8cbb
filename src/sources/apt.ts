/**
 * Debian packages through the host's apt: look up candidates and their `Depends`
 * closure (`apt-cache show`), download exact versions (`apt-get download`, which
 * runs no maintainer scripts and needs no root once the package lists exist).
 *
 * The resolver is pure over an `AptIndex`, so it is tested without apt; the real
 * index is a thin adapter over the two apt commands.
 */
import { existsSync, readdirSync } from 'node:fs';
import { KjxError } from '../util/errors.js';
import { run } from '../util/exec.js';
import { parseControlStanzas } from './control.js';

/** One candidate package as the index describes it. */
export interface AptPackage {
  name: string;
  version: string;
  arch: string;
  /** Path in the archive (pool/main/...). */
  filename: string;
  size: number;
  sha256: string;
  /** `Pre-Depends` + `Depends`, each group a list of alternatives (package names only). */
  depends: string[][];
  provides: string[];
}

/** What the resolver needs from apt. */
export interface AptIndex {
  /** Candidates for names (`name` or `name=version`); absent names are unknown or virtual. */
  show(names: string[]): Promise<Map<string, AptPackage>>;
  /** Real packages providing a virtual name. */
  providers(name: string): Promise<string[]>;
}

/** Parse a Depends-style field into alternative groups, dropping versions and arch qualifiers. */
export function parseDepends(field: string | undefined): string[][] {
  if (!field) return [];
  return field
    .split(',')
    .map((group) =>
      group
        .split('|')
        .map((alt) =>
          alt
            .trim()
            .replace(/\s*\(.*?\)\s*/g, '')
            .replace(/\s*\[.*?\]\s*/g, '')
            .replace(/:\w+$/, ''),
        )
        .filter(Boolean),
    )
    .filter((g) => g.length > 0);
}

export function packageFromStanza(s: Record<string, string>): AptPackage {
  const need = (k: string): string => {
    const v = s[k];
    if (v === undefined)
      throw new KjxError('PKG_FETCH', `apt index entry for ${s.Package ?? '?'} has no ${k} field`);
    return v;
  };
  return {
    name: need('Package'),
    version: need('Version'),
    arch: need('Architecture'),
    filename: need('Filename'),
    size: Number(need('Size')),
    sha256: need('SHA256'),
    depends: [...parseDepends(s['Pre-Depends']), ...parseDepends(s.Depends)],
    provides: parseDepends(s.Provides).flat(),
  };
}

export interface ResolveOptions {
  /** Versions to prefer (from kjx.lock): name -> version. */
  pinned?: Map<string, string>;
  /** Follow Depends (false for the kernel image: its Depends are host-side tools). */
  withDepends?: boolean;
}

/** A resolved package and why it is there. */
export interface ResolvedPackage extends AptPackage {
  /** Named by the spec or a component (its files go into the image), or only a dependency. */
  root: boolean;
}

/**
 * Resolve `roots` and (unless told otherwise) their Depends closure. Alternatives
 * take the first one already chosen, else the first that exists; virtual names
 * take their first provider. Unknown roots are a PKG_UNKNOWN error naming them all.
 */
export async function resolvePackages(
  index: AptIndex,
  roots: string[],
  opts: ResolveOptions = {},
): Promise<ResolvedPackage[]> {
  const chosen = new Map<string, ResolvedPackage>();
  const withDepends = opts.withDepends ?? true;
  const query = (name: string): string => {
    const v = opts.pinned?.get(name);
    return v ? `${name}=${v}` : name;
  };

  const lookup = async (names: string[]): Promise<Map<string, AptPackage>> => {
    const found = await index.show(names.map(query));
    // a pinned version that apt no longer has: fall back to the candidate, the caller re-locks
    const missing = names.filter((n) => !found.has(n) && opts.pinned?.has(n));
    if (missing.length > 0) for (const [k, v] of await index.show(missing)) found.set(k, v);
    return found;
  };

  const rootNames = roots.map((r) => r.split('=')[0]!);
  const explicit = new Map(roots.filter((r) => r.includes('=')).map((r) => [r.split('=')[0]!, r] as const));
  const first = await index.show(rootNames.map((n) => explicit.get(n) ?? query(n)));
  const unknown: string[] = [];
  for (const name of rootNames) {
    let pkg = first.get(name);
    if (!pkg && !explicit.has(name)) {
      const prov = await index.providers(name);
      if (prov.length > 0) pkg = (await lookup([prov[0]!])).get(prov[0]!);
    }
    if (!pkg) {
      unknown.push(explicit.get(name) ?? name);
      continue;
    }
    chosen.set(pkg.name, { ...pkg, root: true });
  }
  if (unknown.length > 0) {
    throw new KjxError(
      'PKG_UNKNOWN',
      `unknown Debian package${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`,
      {
        hint: 'check the name with `apt-cache search NAME`; if apt has no package lists yet, run `apt-get update` as root',
      },
    );
  }
  if (!withDepends) return [...chosen.values()];

  let frontier = [...chosen.values()];
  while (frontier.length > 0) {
    const groups = frontier.flatMap((p) => p.depends.map((g) => ({ from: p.name, g })));
    frontier = [];
    const open = groups.filter(({ g }) => !g.some((alt) => chosen.has(alt)));
    if (open.length === 0) break;
    const names = [...new Set(open.flatMap(({ g }) => g))];
    const found = await lookup(names);
    for (const { from, g } of open) {
      if (g.some((alt) => chosen.has(alt))) continue; // chosen by an earlier group this round
      let pkg: AptPackage | undefined;
      for (const alt of g) {
        pkg = found.get(alt);
        if (pkg) break;
      }
      // a virtual name is satisfied by a provider chosen already (podman's
      // container-network-stack by containernetworking-plugins, a root of its own)
      let provided = false;
      if (!pkg) {
        for (const alt of g) {
          const prov = (await index.providers(alt)).filter((p) => !p.startsWith(`${alt}:`));
          provided = prov.some((p) => chosen.has(p));
          if (provided) break;
          if (prov.length > 0) {
            pkg = (await lookup([prov[0]!])).get(prov[0]!);
            if (pkg) break;
          }
        }
        if (!pkg && (provided || g.some((alt) => chosen.has(alt)))) continue;
      }
      if (!pkg) {
        throw new KjxError('PKG_UNKNOWN', `${from} depends on ${g.join(' | ')}, which apt cannot find`, {
          hint: 'run `apt-get update` as root, or check the host apt sources',
        });
      }
      if (chosen.has(pkg.name)) continue;
      const r = { ...pkg, root: false };
      chosen.set(pkg.name, r);
      frontier.push(r);
    }
  }
  return [...chosen.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** True when apt has downloaded package lists (`apt-get update` has run). */
export function aptHasLists(dir = '/var/lib/apt/lists'): boolean {
  try {
    return readdirSync(dir).some((f) => f.endsWith('_Packages') || f.endsWith('_Packages.lz4'));
  } catch {
    return false;
  }
}

/** The real index: `apt-cache show` and `apt-cache showpkg`. */
export function hostAptIndex(): AptIndex {
  return {
    async show(names) {
      const out = new Map<string, AptPackage>();
      if (names.length === 0) return out;
      if (!aptHasLists()) {
        throw new KjxError('PKG_FETCH', 'apt has no package lists on this host', {
          hint: 'run `apt-get update` as root (kjx doctor --install does it)',
        });
      }
      // apt-cache exits 100 when any name is unknown but still prints the others
      const r = await run(
        'looking up Debian packages',
        'apt-cache',
        ['show', '--no-all-versions', ...names],
        {
          okCodes: [100],
        },
      );
      for (const s of parseControlStanzas(r.stdout)) {
        if (!s.Package || !s.Filename) continue;
        const p = packageFromStanza(s);
        if (!out.has(p.name)) out.set(p.name, p);
      }
      return out;
    },
    async providers(name) {
      const r = await run('looking up providers', 'apt-cache', ['showpkg', name], { okCodes: [100] });
      const lines = r.stdout.split('\n');
      const at = lines.findIndex((l) => l.startsWith('Reverse Provides:'));
      if (at < 0) return [];
      const names: string[] = [];
      for (const l of lines.slice(at + 1)) {
        const m = /^(\S+) \S+/.exec(l);
        if (!m) break;
        if (!names.includes(m[1]!)) names.push(m[1]!);
      }
      return names.sort();
    },
  };
}

/**
 * Download exact versions into `dir` with `apt-get download`; returns name -> file.
 * The caller verifies sha256 against the index before using a file.
 */
export async function aptDownload(
  pkgs: { name: string; version: string }[],
  dir: string,
): Promise<Map<string, string>> {
  if (pkgs.length === 0) return new Map();
  await run(
    'downloading Debian packages',
    'apt-get',
    ['download', '-q', '-o', 'APT::Sandbox::User=root', ...pkgs.map((p) => `${p.name}=${p.version}`)],
    { cwd: dir },
  );
  const files = readdirSync(dir).filter((f) => f.endsWith('.deb'));
  const out = new Map<string, string>();
  for (const p of pkgs) {
    const f = files.find((x) => x.startsWith(`${p.name}_`));
    if (!f || !existsSync(`${dir}/${f}`)) {
      throw new KjxError('PKG_FETCH', `apt-get download did not produce ${p.name} ${p.version}`);
    }
    out.set(p.name, `${dir}/${f}`);
  }
  return out;
}
