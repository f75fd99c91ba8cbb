/**
 * Container images from a Tree: one tar archive that is at the same time an OCI
 * image layout and a `docker save` archive, the way Docker 25 and later write it.
 *
 *   oci-layout                   {"imageLayoutVersion":"1.0.0"}
 *   index.json                   OCI image index: one manifest, named by annotations
 *   blobs/sha256/<hex>           the layer, the image config, the OCI manifest
 *   manifest.json                docker-save: [{Config, RepoTags, Layers}] pointing into blobs/
 *   repositories                 docker-save (legacy): {name: {tag: <layer hex>}}
 *
 * Specs: OCI image-spec v1.0 (image-layout.md, image-index.md, manifest.md,
 * config.md, layer.md, annotations.md) and the Docker image spec v1.2 for the
 * docker-save file list. Why both: Debian 12's `docker load` (20.10) reads only
 * manifest.json; `ctr images import` (containerd 1.6) and `podman load` (4.3)
 * prefer the OCI layout and name the image after `io.containerd.image.name`.
 *
 * One layer, uncompressed (`application/vnd.oci.image.layer.v1.tar`), so its
 * digest is also its diff_id. The layer is our own tar writer's output with
 * "bare" names (no "./", no root entry, as image layers are) and mtimes clamped to
 * SOURCE_DATE_EPOCH; the outer archive is written the same way from a Tree of the
 * layout, so the same input always gives the same bytes. Pure: Tree in, bytes out.
 */
import { posix } from 'node:path';
import { makeReproducible, type ReproducibleTree } from '../rootfs/reproducible.js';
import { ensureParents, normalizePath, type Tree, type TreeEntry } from '../rootfs/tree.js';
import { fullImageName, imageReferenceProblem } from '../spec/image-ref.js';
import { KjxError } from '../util/errors.js';
import { sha256 } from '../util/hash.js';
import { writeTar } from './tar-writer.js';

export { fullImageName, imageReferenceProblem };

export const MEDIA_TYPES = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar',
} as const;

/** Annotation containerd (and podman) name an imported image after. */
export const CONTAINERD_NAME_ANNOTATION = 'io.containerd.image.name';
/** OCI annotation for the reference (Docker and we put the tag alone there). */
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

/** Where `images:` archives land in the guest (docs/containers.md, "Images"). */
export const GUEST_IMAGES_DIR = '/usr/share/kjx/images';

/**
 * The runtime part of an image config (OCI config.md, "config"), with its field
 * names; every field is optional and written only when given.
 */
export interface OciRuntimeConfig {
  Cmd?: string[];
  Entrypoint?: string[];
  /** "NAME=value" items. */
  Env?: string[];
  WorkingDir?: string;
  /** user, uid, user:group or uid:gid */
  User?: string;
  Labels?: Record<string, string>;
}

/** What `ociArchive` and `ociLayout` make an image of. */
export interface OciImageInput {
  /**
   * The image's root file system, through the reproducibility pass (its epoch is
   * the config's `created`); device nodes and owners are kept as they are.
   */
  rootfs: ReproducibleTree;
  /** Repository, Docker style: "kjx/smoke", "busybox", "registry.example:5000/team/app". */
  name: string;
  /** "latest", "0.1.0": [A-Za-z0-9_][A-Za-z0-9_.-]{0,127} */
  tag: string;
  config?: OciRuntimeConfig;
  /** The history entry's `created_by` (default "kjx"). */
  createdBy?: string;
}

/** A blob of the layout: its digest ("sha256:<hex>") and size. */
export interface OciBlob {
  digest: string;
  size: number;
}

export interface OciLayout {
  /** The layout as a tree: /oci-layout, /index.json, /manifest.json, /repositories, /blobs/sha256/*. */
  tree: Tree;
  /** The fully qualified name containerd and podman give the image: "docker.io/kjx/smoke:0.1.0". */
  reference: string;
  manifest: OciBlob;
  config: OciBlob;
  layer: OciBlob;
}

function invalid(message: string, hint?: string): KjxError {
  return new KjxError('TREE_INVALID', message, hint ? { hint } : {});
}

/**
 * Refuse trees whose entries a runtime would read differently from what they say:
 * paths that are not normalized (or climb above the root) and AUFS whiteout names,
 * which delete files when a layer is applied (OCI layer.md, "Whiteouts").
 */
function checkTree(tree: Tree): void {
  for (const [key, e] of tree) {
    if (key !== e.path)
      throw invalid(`image entry ${JSON.stringify(key)} is stored as ${JSON.stringify(e.path)}`);
    let norm: string;
    try {
      norm = normalizePath(key);
    } catch (cause) {
      throw new KjxError('TREE_INVALID', `image entry ${JSON.stringify(key)} climbs above the root`, {
        cause,
      });
    }
    if (norm !== key || !key.startsWith('/'))
      throw invalid(`image entry ${JSON.stringify(key)} is not a normalized absolute path (${norm})`);
    if (key.includes('\0')) throw invalid(`image entry ${JSON.stringify(key)} contains a NUL character`);
    if (posix.basename(key).startsWith('.wh.'))
      throw invalid(
        `image entry ${key}: names starting with ".wh." are whiteouts in image layers and would delete files`,
        'rename the file',
      );
  }
}

function rfc3339(epoch: number): string {
  return new Date(epoch * 1000).toISOString().replace(/\.000Z$/, 'Z');
}

function blob(data: Buffer): OciBlob & { hex: string; data: Buffer } {
  const hex = sha256(data);
  return { hex, digest: `sha256:${hex}`, size: data.length, data };
}

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

/** The runtime config with only the fields given, in the spec's order. */
function runtimeConfig(c: OciRuntimeConfig = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (c.User !== undefined) out.User = c.User;
  if (c.Env !== undefined) out.Env = [...c.Env];
  if (c.Entrypoint !== undefined) out.Entrypoint = [...c.Entrypoint];
  if (c.Cmd !== undefined) out.Cmd = [...c.Cmd];
  if (c.WorkingDir !== undefined) out.WorkingDir = c.WorkingDir;
  if (c.Labels !== undefined)
    out.Labels = Object.fromEntries(
      Object.keys(c.Labels)
        .sort()
        .map((k) => [k, c.Labels![k]!]),
    );
  return out;
}

/**
 * The image as an OCI layout (plus the docker-save files), as a Tree and with the
 * digests of its blobs. `ociArchive` is this tree written as tar.
 * @throws KjxError TREE_INVALID for a bad name or tag, or a tree a layer cannot hold
 */
export function ociLayout(input: OciImageInput): OciLayout {
  const problem = imageReferenceProblem(input.name, input.tag);
  if (problem)
    throw new KjxError('TREE_INVALID', problem, { hint: 'image names look like "kjx/smoke:0.1.0"' });
  for (const [field, list] of [
    ['Cmd', input.config?.Cmd],
    ['Entrypoint', input.config?.Entrypoint],
    ['Env', input.config?.Env],
  ] as const) {
    if (list && !Array.isArray(list)) throw invalid(`image config ${field} must be a list of strings`);
  }
  checkTree(input.rootfs.tree);
  const epoch = input.rootfs.epoch;

  // parents of every entry, so a runtime never guesses their modes (dated like the rest)
  const rootfs: Tree = new Map(input.rootfs.tree);
  ensureParents(rootfs);
  const layer = blob(writeTar(makeReproducible(rootfs, epoch), { names: 'bare' }));
  const created = rfc3339(epoch);
  const config = blob(
    json({
      created,
      architecture: 'amd64',
      os: 'linux',
      config: runtimeConfig(input.config),
      rootfs: { type: 'layers', diff_ids: [layer.digest] },
      history: [{ created, created_by: input.createdBy ?? 'kjx' }],
    }),
  );
  const manifest = blob(
    json({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.manifest,
      config: { mediaType: MEDIA_TYPES.config, digest: config.digest, size: config.size },
      layers: [{ mediaType: MEDIA_TYPES.layer, digest: layer.digest, size: layer.size }],
    }),
  );
  const reference = `${fullImageName(input.name)}:${input.tag}`;
  const index = json({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.index,
    manifests: [
      {
        mediaType: MEDIA_TYPES.manifest,
        digest: manifest.digest,
        size: manifest.size,
        annotations: {
          [CONTAINERD_NAME_ANNOTATION]: reference,
          [REF_NAME_ANNOTATION]: input.tag,
        },
        platform: { architecture: 'amd64', os: 'linux' },
      },
    ],
  });
  const dockerManifest = json([
    {
      Config: `blobs/sha256/${config.hex}`,
      RepoTags: [`${input.name}:${input.tag}`],
      Layers: [`blobs/sha256/${layer.hex}`],
    },
  ]);
  const repositories = json({ [input.name]: { [input.tag]: layer.hex } });

  const source = { kind: 'generated', by: 'oci image' } as const;
  const file = (path: string, data: Buffer): TreeEntry => ({
    type: 'file',
    path,
    data,
    mode: 0o644,
    uid: 0,
    gid: 0,
    mtime: epoch,
    source,
  });
  const tree: Tree = new Map();
  for (const e of [
    file('/oci-layout', json({ imageLayoutVersion: '1.0.0' })),
    file('/index.json', index),
    file('/manifest.json', dockerManifest),
    file('/repositories', repositories),
    // one blob per digest: a config that happened to equal a layer is stored once
    ...[layer, config, manifest].map((b) => file(`/blobs/sha256/${b.hex}`, b.data)),
  ])
    tree.set(e.path, e);
  for (const dir of ['/', '/blobs', '/blobs/sha256'])
    tree.set(dir, { type: 'dir', path: dir, mode: 0o755, uid: 0, gid: 0, mtime: epoch, source });
  const strip = ({ digest, size }: OciBlob): OciBlob => ({ digest, size });
  return { tree, reference, manifest: strip(manifest), config: strip(config), layer: strip(layer) };
}

/**
 * One reproducible tar that `docker load`, `ctr images import` and `podman load`
 * all read (see the module comment). Same input, same bytes.
 * @throws KjxError TREE_INVALID for a bad name or tag, or a tree a layer cannot hold
 */
export function ociArchive(input: OciImageInput): Buffer {
  return writeTar(makeReproducible(ociLayout(input).tree, input.rootfs.epoch), { names: 'bare' });
}
