/**
 * What container images add to `kjx build`, kept in one place so build.ts only
 * calls in:
 *
 * - `images:` (src/spec/images.ts): each entry becomes
 *   /usr/share/kjx/images/<name>.tar in the guest, a host archive as it is or an
 *   image kjx builds (busybox-static: the Debian package's busybox and applets);
 * - `outputs: [oci]`: the guest tree as one container image archive,
 *   <name>-oci.tar, named kjx/<name>:<version> (src/image/oci.ts), without
 *   device nodes and without the host private keys of `ssh.hostKeyFiles`.
 */
import { busyboxStatic } from '../components/busybox.js';
import { givenHostKeyPath } from '../guest/ssh.js';
import { GUEST_IMAGES_DIR, imageReferenceProblem, ociArchive } from '../image/oci.js';
import { stager } from '../plan/assemble.js';
import type { PackageSet } from '../plan/resolve.js';
import { makeReproducible } from '../rootfs/reproducible.js';
import { addEntry, ensureParents, mk, newTree, type Tree } from '../rootfs/tree.js';
import type { Cache } from '../sources/cache.js';
import { fetchDebs } from '../sources/fetch.js';
import { readImageArchive } from '../sources/image-archive.js';
import { ociOutputReference } from '../spec/image-ref.js';
import type { BuiltImageSpec, ImageSpec } from '../spec/images.js';
import { outputFileName } from '../spec/outputs.js';
import type { Spec } from '../spec/schema.js';
import { KjxError, type WarnFn } from '../util/errors.js';
import { sha256File } from '../util/hash-file.js';

/** PATH of the images kjx makes (runtimes add one when an image has none, but not all the same). */
export const IMAGE_PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** File name of the `oci` output. */
export function ociFileName(spec: Spec): string {
  return outputFileName('oci', spec.name);
}

/** Where an `images:` entry lands in the guest. */
export function guestImagePath(image: ImageSpec): string {
  return `${GUEST_IMAGES_DIR}/${image.name}.tar`;
}

/**
 * What the baked images depend on, for the build's key: host archives by content
 * (they may change without the spec changing), built images by their entry (the
 * packages they are made of are in the base stage's key).
 */
export function imagesKey(spec: Spec): unknown[] {
  return spec.images.map((i) => (i.kind === 'archive' ? { name: i.name, sha256: sha256File(i.archive) } : i));
}

/**
 * A busybox-only root file system from the staged busybox-static package: the
 * binary and its applet links (as the busybox-static component takes them), an
 * /etc/passwd and /etc/group with root and nobody, and the usual empty directories.
 */
export function busyboxImageTree(staged: Tree, spec: Spec, warn: WarnFn): Tree {
  const tree = busyboxStatic.assemble({
    spec,
    staged: (pkg) => {
      if (pkg !== 'busybox-static') throw new KjxError('INTERNAL', `busybox image asked for package ${pkg}`);
      return staged;
    },
    warn,
  });
  const source = { kind: 'generated', by: 'images: busybox-static' } as const;
  addEntry(
    tree,
    mk.file(
      '/etc/passwd',
      'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
      source,
    ),
  );
  addEntry(tree, mk.file('/etc/group', 'root:x:0:\nnogroup:x:65534:\n', source));
  for (const d of ['/dev', '/proc', '/sys', '/var', '/usr/bin']) addEntry(tree, mk.dir(d, source));
  addEntry(tree, mk.dir('/tmp', source, 0o1777));
  addEntry(tree, mk.dir('/root', source, 0o700));
  ensureParents(tree, source);
  return tree;
}

export interface ImagesLayerInputs {
  spec: Spec;
  epoch: number;
  pkgs: PackageSet;
  /** .debs the fetch stage got; packages missing here are read from the cache. */
  debs: Map<string, Buffer>;
  cache: Cache;
  warn: WarnFn;
}

async function builtImage(image: BuiltImageSpec, i: ImagesLayerInputs): Promise<Buffer> {
  const pkg = i.pkgs.packages.find((p) => p.name === image.from);
  if (!pkg) throw new KjxError('INTERNAL', `package ${image.from} for images: ${image.name} was not planned`);
  let data = i.debs.get(pkg.name);
  if (!data) data = (await fetchDebs(i.cache, [pkg], { warn: i.warn })).get(pkg.name)!;
  const staged = await stager([{ name: pkg.name, version: pkg.version, data }])(pkg.name);
  return ociArchive({
    rootfs: makeReproducible(busyboxImageTree(staged, i.spec, i.warn), i.epoch),
    name: image.image,
    tag: image.tag,
    config: { Env: [IMAGE_PATH_ENV], Cmd: image.cmd },
    createdBy: `kjx: images: ${image.name} from ${pkg.name} ${pkg.version}`,
  });
}

/** The archives of `images:` as a layer of the guest tree (empty without `images:`). */
export async function imagesLayer(i: ImagesLayerInputs): Promise<Tree> {
  const tree = newTree();
  for (const [n, image] of i.spec.images.entries()) {
    const data =
      image.kind === 'archive'
        ? readImageArchive(image.archive, `images[${n}] (${image.name}): archive ${image.archiveRef}`)
        : await builtImage(image, i);
    const source =
      image.kind === 'archive'
        ? ({ kind: 'input', ref: image.archiveRef } as const)
        : ({ kind: 'generated', by: `images: ${image.from}` } as const);
    addEntry(tree, mk.file(guestImagePath(image), data, source));
  }
  return tree;
}

/**
 * The `oci` output: the guest's tree as a container image, run as `/bin/sh`.
 * Device nodes are left out: runtimes mount their own /dev, and rootless ones
 * cannot create device nodes when they unpack a layer. The host private keys of
 * `ssh.hostKeyFiles` are left out too: the image is meant to be shared, and the
 * keys would let anyone who has it pose as every machine booted from the build.
 */
export function ociOutput(spec: Spec, tree: Tree, epoch: number, buildId: string): Buffer {
  const { name, tag } = ociOutputReference(spec.name, spec.version);
  const problem = imageReferenceProblem(name, tag);
  if (problem)
    throw new KjxError('SPEC_INVALID', `outputs: oci: ${problem} (made of name: ${spec.name})`, {
      hint: 'for the oci output, give the system a name whose parts between ".", "_" and "-" are not empty, like "my-system"',
    });
  const secrets = new Set(spec.ssh.hostKeyFiles.map((_, i) => givenHostKeyPath(i)));
  const rootfs = newTree();
  for (const [path, e] of tree)
    if (e.type !== 'char' && e.type !== 'block' && !secrets.has(path)) rootfs.set(path, e);
  return ociArchive({
    rootfs: makeReproducible(rootfs, epoch),
    name,
    tag,
    config: {
      Env: [IMAGE_PATH_ENV],
      Cmd: ['/bin/sh'],
      Labels: {
        'org.opencontainers.image.title': spec.name,
        'org.opencontainers.image.version': spec.version,
        'dev.kjx.build-id': buildId,
      },
    },
    createdBy: `kjx build ${buildId}`,
  });
}
