/**
 * Debian packages through the host's apt: look up candidates and their `Depends`
 * closure (`apt-cache show`), download exact versions (`apt-get download`, which
 * runs no maintainer scripts and needs no root once the package lists exist).
 *
 * The resolver is pure over an `AptIndex`, so it is tested without apt; the real
 * index is a thin adapter over the two apt commands.
 */
import { closeSync, constants, fstatSync, openSync, readdirSync, readSync } from 'node:fs';
import { packageRefProblem } from '../spec/debian-grammar.js';
import { KjxError, type WarnFn } from '../util/errors.js';
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

/**
 * One package argument for apt (`name` or `name=version`), refused unless it is a
 * Debian name and version: a value from kjx.lock or the spec never becomes an
 * option, whatever the caller checked before.
 */
export function aptPackageArg(ref: string): string {
  const problem = packageRefProblem(ref);
  if (problem) {
    throw new KjxError('PKG_UNKNOWN', `refusing to pass ${JSON.stringify(ref)} to apt: expected ${problem}`, {
      hint: 'check the package names and versions in kjx.yaml and kjx.lock (`kjx build --update-lock` rewrites the lock)',
    });
  }
  return ref;
}

/** Argument vectors of the apt commands kjx runs; package arguments always follow "--". */
export const aptArgv = {
  show: (refs: string[]): string[] => ['show', '--no-all-versions', '--', ...refs.map(aptPackageArg)],
  showpkg: (name: string): string[] => ['showpkg', '--', aptPackageArg(name)],
  download: (pkgs: { name: string; version: string }[]): string[] => [
    'download',
    '-q',
    '--',
    ...pkgs.map((p) => aptPackageArg(`${p.name}=${p.version}`)),
  ],
};

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
      const r = await run('looking up Debian packages', 'apt-cache', aptArgv.show(names), { okCodes: [100] });
      for (const s of parseControlStanzas(r.stdout)) {
        if (!s.Package || !s.Filename) continue;
        const p = packageFromStanza(s);
        if (!out.has(p.name)) out.set(p.name, p);
      }
      return out;
    },
    async providers(name) {
      const r = await run('looking up providers', 'apt-cache', aptArgv.showpkg(name), {
        okCodes: [100],
      });
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
 * When kjx runs as root, apt hands the download to its methods as the sandbox user
 * (`_apt`), which needs `dir` writable: `aptDownloadDir` (apt-sandbox.ts) makes one.
 * apt's warnings ("W: ...") reach `warn`. The caller verifies sha256 before using a file.
 */
export async function aptDownload(
  pkgs: { name: string; version: string; size: number }[],
  dir: string,
  warn?: WarnFn,
): Promise<Map<string, string>> {
  if (pkgs.length === 0) return new Map();
  const r = await run('downloading Debian packages', 'apt-get', aptArgv.download(pkgs), { cwd: dir });
  for (const line of r.stderr.split('\n'))
    if (line.startsWith('W: '))
      warn?.({ code: 'APT_WARNING', message: `apt-get download: ${line.slice(3)}` });
  const files = readdirSync(dir).filter((f) => f.endsWith('.deb'));
  const out = new Map<string, string>();
  for (const p of pkgs) {
    const f = files.find((x) => x.startsWith(`${p.name}_`));
    if (!f) throw new KjxError('PKG_FETCH', `apt-get download did not produce ${p.name} ${p.version}`);
    out.set(p.name, `${dir}/${f}`);
  }
  return out;
}

/**
 * Read a file apt downloaded, as a regular file of at most `maxBytes` (the size
 * the index gave): the download directory is writable by the sandbox user, so a
 * link or a FIFO there must not make kjx read something else, or forever.
 */
export function readDownloaded(file: string, maxBytes: number, what: string): Buffer {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (cause) {
    throw new KjxError('PKG_FETCH', `${what}: cannot open the downloaded file ${file}`, { cause });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new KjxError('PKG_FETCH', `${what}: the download ${file} is not a regular file`);
    if (st.size > maxBytes) {
      throw new KjxError(
        'PKG_FETCH',
        `${what}: the download is ${st.size} bytes, more than the ${maxBytes} the index says`,
        { hint: 'the apt mirror changed under the lock; run `kjx build --update-lock`' },
      );
    }
    const data = Buffer.alloc(st.size);
    let got = 0;
    while (got < st.size) {
      const n = readSync(fd, data, got, st.size - got, got);
      if (n === 0) break;
      got += n;
    }
    return data.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}
