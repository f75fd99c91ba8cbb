/**
 * What the container runtime components (runc, crun, gvisor, containerd, podman,
 * docker) share: the smoke-check data and library, iptables for bridge networking,
 * and the kernel modules of container networking. docs/containers.md tells the
 * whole story.
 *
 * Smoke checks: each runtime ships /usr/lib/kjx/checks/NAME, a shell script that
 * runs one container printing a marker and exiting with a chosen status, and exits
 * 0 only if both came back through the runtime. `kjx test` runs them in a booted
 * guest (src/guest/checks.ts). Their data, under /usr/lib/kjx/check-data/:
 *
 * - rootfs/: a root with Debian's busybox-static only (read-only bundle root for
 *   runc, crun and runsc; they get a generated config.json);
 * - image.tar: the same root as an image archive (OCI layout + docker-save, from
 *   src/image/oci.ts), `kjx/check:latest`, for ctr, podman and docker.
 */
import { CHECK_DIR, CHECK_PREP_DIR } from '../guest/checks.js';
import { readShFile, renderSh, type ShValues } from '../guest/sh-file.js';
import { script } from '../guest/shell.js';
import { ociArchive } from '../image/oci.js';
import { makeReproducible } from '../rootfs/reproducible.js';
import { addEntry, type EntrySource, ensureParents, mk, newTree, type Tree } from '../rootfs/tree.js';
import { KjxError } from '../util/errors.js';
import type { AssembleContext, GuestContext, ModuleNeed } from './component.js';
import type { SharedPart } from './data.js';

export const CHECK_DATA = '/usr/lib/kjx/check-data';
export const CHECK_ROOTFS = `${CHECK_DATA}/rootfs`;
export const CHECK_IMAGE = `${CHECK_DATA}/image.tar`;
export const CHECK_LIB = `${CHECK_DATA}/lib.sh`;
/** The check image's name as the archive tags it (docker and podman add docker.io/). */
export const CHECK_IMAGE_NAME = 'kjx/check';
export const CHECK_IMAGE_REF = 'docker.io/kjx/check:latest';
/**
 * The status every check container exits with, and the marker it prints. A
 * passing check says `ok: marker and status 42 came back (container run t0=UPTIME
 * t1=UPTIME)`: the guest uptimes around the container run alone (bench/runtimes).
 */
export const CHECK_STATUS = 42;
export const CHECK_MARKER = 'kjx-check-marker';

const SRC: EntrySource = { kind: 'generated', by: 'kjx containers' };

/**
 * Why a runtime falls back from overlay, for its build warning: a kernel given by
 * `kernel.image` without `kernel.modulesDir` may well have overlay built in, but
 * kjx cannot see it, so say that rather than that the module is missing.
 */
export function overlayMissing(ctx: Pick<GuestContext, 'spec'>): string {
  const k = ctx.spec.kernel;
  return k.kind === 'image' && k.modulesDir === undefined
    ? 'kjx cannot tell whether the kernel given by kernel.image has overlay (no kernel.modulesDir to look in)'
    : 'the kernel has no overlay module';
}

/** What to do about overlayMissing, to end the warning with. */
export function overlayHint(ctx: Pick<GuestContext, 'spec'>): string {
  const k = ctx.spec.kernel;
  return k.kind === 'image' && k.modulesDir === undefined
    ? "give kernel.modulesDir (the kernel's lib/modules/<version>) so kjx can see overlay"
    : 'add overlay to the kernel for overlayfs';
}

/** busybox applets the check root links (what the checks run inside containers: the bridge checks grep `ip` output). */
export const CHECK_APPLETS = [
  'sh',
  'echo',
  'cat',
  'ip',
  'grep',
  'ping',
  'sleep',
  'true',
  'id',
  'hostname',
  'ls',
];

/** Package of the check root's busybox. */
export const CHECK_BUSYBOX_PACKAGE = 'busybox-static';

/** The check root: busybox-static and a few applet links, mount points for /proc, /dev, /sys. */
export function checkRootfs(ctx: AssembleContext): Tree {
  const staged = ctx.staged(CHECK_BUSYBOX_PACKAGE);
  const bin = staged.get('/bin/busybox');
  if (bin?.type !== 'file')
    throw new KjxError('TREE_INVALID', `${CHECK_BUSYBOX_PACKAGE} has no regular file /bin/busybox`, {
      hint: 'the Debian package layout changed; report this to kjx',
    });
  const t = newTree();
  addEntry(t, { ...bin, path: `${CHECK_ROOTFS}/bin/busybox`, mode: 0o755 });
  for (const a of CHECK_APPLETS) addEntry(t, mk.symlink(`${CHECK_ROOTFS}/bin/${a}`, 'busybox', SRC));
  for (const d of ['proc', 'dev', 'sys', 'tmp', 'etc', 'run'])
    addEntry(t, mk.dir(`${CHECK_ROOTFS}/${d}`, SRC));
  addEntry(t, mk.file(CHECK_LIB, checkLib(), SRC, 0o644));
  ensureParents(t);
  return t;
}

/** The check root as a piece the runtimes share: every one that has checks brings it. */
export const CHECK_ROOT: SharedPart = { packages: [CHECK_BUSYBOX_PACKAGE], assemble: checkRootfs };

/** The check image archive, made at write time (it carries SOURCE_DATE_EPOCH). */
export function checkImage(ctx: GuestContext): Tree {
  const root = newTree();
  const prefix = `${CHECK_ROOTFS}/`;
  for (const e of ctx.base.values())
    if (e.path.startsWith(prefix))
      root.set(`/${e.path.slice(prefix.length)}`, { ...e, path: `/${e.path.slice(prefix.length)}` });
  root.set('/', mk.dir('/', SRC));
  const data = ociArchive({
    rootfs: makeReproducible(root, ctx.epoch),
    name: CHECK_IMAGE_NAME,
    tag: 'latest',
    config: { Cmd: ['/bin/sh'], Env: ['PATH=/bin'] },
    createdBy: 'kjx check image (busybox-static)',
  });
  const t = newTree();
  addEntry(t, mk.file(CHECK_IMAGE, data, SRC, 0o644));
  return t;
}

/** The values check-lib.sh declares, as an image gets them. */
export function checkLibValues(): ShValues {
  return {
    KJX_MARKER: CHECK_MARKER,
    KJX_STATUS: CHECK_STATUS,
    KJX_IMAGE: CHECK_IMAGE,
    KJX_IMAGE_REF: CHECK_IMAGE_REF,
    KJX_ROOTFS: CHECK_ROOTFS,
  };
}

/**
 * The shell library every check sources (src/components/sh/check-lib.sh): the
 * marker, the status, `kjx_expect CMD...`, which runs CMD (a container run) and
 * checks both, `kjx_step`, and `kjx_bundle DIR` (config.json, OCI runtime spec 1.0.2).
 */
export function checkLib(values: ShValues = checkLibValues()): string {
  return renderSh(readShFile(new URL('./sh/check-lib.sh', import.meta.url)), values);
}

/** A check script (or a check's preparation): sources the library, then the body. */
export function checkScript(name: string, body: string[], what = 'container smoke check'): string {
  return script(`${what} ${name} (docs/containers.md)`, [
    'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    `. ${CHECK_LIB}`,
    ...body,
  ]);
}

/**
 * The tree entries of one check, and of its preparation when it has one: the steps
 * that set the check up (a check image to load), which `kjx test` runs before ready
 * so a snapshot saved at ready holds them (src/guest/checks.ts).
 */
export function checkEntry(name: string, body: string[], prep: string[] = []): Tree {
  const t = newTree();
  addEntry(t, mk.file(`${CHECK_DIR}/${name}`, checkScript(name, body), SRC, 0o755));
  if (prep.length > 0)
    addEntry(
      t,
      mk.file(`${CHECK_PREP_DIR}/${name}`, checkScript(name, prep, 'preparation of the check'), SRC, 0o755),
    );
  return t;
}

/** Every staged path under `dir` (files and links), as they are. */
export function takeDir(pkg: Tree, dir: string, keep: (path: string) => boolean = () => true): Tree {
  const out = newTree();
  for (const e of pkg.values())
    if (e.path.startsWith(`${dir}/`) && e.type !== 'dir' && keep(e.path)) addEntry(out, e);
  ensureParents(out);
  return out;
}

/** Kernel modules of bridge networking with iptables-nft (docker's bridge, podman's CNI bridge). */
export const BRIDGE_MODULES = [
  'bridge',
  'stp',
  'llc',
  'veth',
  'br_netfilter',
  'nf_tables',
  'nfnetlink',
  'nft_compat',
  'nft_chain_nat',
  'x_tables',
  'xt_addrtype',
  'xt_comment',
  'xt_conntrack',
  'xt_MASQUERADE',
  'xt_mark',
  'xt_multiport',
  'xt_nat',
  'nf_nat',
  'nf_conntrack',
  'nf_defrag_ipv4',
  'nf_defrag_ipv6',
  'libcrc32c',
];

export const bridgeModules = (): ModuleNeed[] => BRIDGE_MODULES.map((name) => ({ name }));

/** iptables (the nf_tables flavour): the multi-call binary, its names, the xtables plugins. */
export const IPTABLES_PACKAGE = 'iptables';
const IPTABLES_NAMES = [
  'iptables',
  'iptables-save',
  'iptables-restore',
  'ip6tables',
  'ip6tables-save',
  'ip6tables-restore',
];

export function iptablesFiles(ctx: AssembleContext): Tree {
  const pkg = ctx.staged(IPTABLES_PACKAGE);
  const out = takeDir(pkg, '/usr/lib/x86_64-linux-gnu/xtables');
  const multi = pkg.get('/usr/sbin/xtables-nft-multi');
  if (multi?.type !== 'file')
    throw new KjxError('TREE_INVALID', 'package iptables has no /usr/sbin/xtables-nft-multi', {
      hint: 'the Debian package layout changed; report this to kjx',
    });
  addEntry(out, multi);
  // Debian makes these with update-alternatives at install time; the image has no dpkg
  for (const n of IPTABLES_NAMES) addEntry(out, mk.symlink(`/usr/sbin/${n}`, 'xtables-nft-multi', SRC));
  const protocols = ctx.staged('netbase').get('/etc/protocols');
  if (protocols?.type === 'file') addEntry(out, protocols);
  ensureParents(out);
  return out;
}

/** iptables and netbase's /etc/protocols, as a piece the bridge-networking runtimes share. */
export const IPTABLES: SharedPart = { packages: [IPTABLES_PACKAGE, 'netbase'], assemble: iptablesFiles };

/** Stage-1 lines of bridge networking: forwarding on (CNI's and docker's NAT need it). */
export const BRIDGE_STAGE1 = ['echo 1 >/proc/sys/net/ipv4/ip_forward'];
