/**
 * Reading container image archives back for `kjx inspect` and `kjx diff`: a tar
 * that is a `docker save` archive (manifest.json) or an OCI image layout
 * (oci-layout + index.json), as src/image/oci.ts writes them and as docker,
 * podman and ctr export them. The image's root file system is its layers applied
 * in order, with OCI whiteouts (layer.md, "Whiteouts": `.wh.<name>` removes a
 * path of the layers below, `.wh..wh..opq` empties its directory). Only the first
 * image of an archive is read. Nothing is extracted; damaged input is
 * ARTIFACT_INVALID naming the archive.
 */
import { posix } from 'node:path';
import { type EntrySource, normalizePath, type Tree } from '../rootfs/tree.js';
import { parseTar, type TarEntry } from '../sources/tar.js';
import { KjxError } from '../util/errors.js';
import { printable } from '../util/printable.js';
import { decompressAny } from './compress.js';
import { CONTAINERD_NAME_ANNOTATION, REF_NAME_ANNOTATION } from './oci.js';
import { tarToTree } from './tar-tree.js';

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

/** "./index.json" and "index.json" are the same member. */
function member(name: string): string {
  return posix
    .normalize(name)
    .replace(/^(?:\.\/)+/, '')
    .replace(/\/+$/, '');
}

/** An archive's regular files by member name. */
function filesOf(entries: TarEntry[]): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const e of entries) if (e.type === 'file') out.set(member(e.name), e.data);
  return out;
}

/** Whether the entries of a tar are a container image archive rather than a root file system. */
export function isImageArchive(entries: TarEntry[]): boolean {
  const names = new Set(entries.filter((e) => e.type === 'file').map((e) => member(e.name)));
  return names.has('manifest.json') || (names.has('oci-layout') && names.has('index.json'));
}

export interface ImageArchiveContents {
  tree: Tree;
  details: { image: string | null; layers: number; config: string };
}

/** Apply one layer's entries onto `tree`: whiteouts first (they hide what is below), then the entries. */
function applyLayer(tree: Tree, entries: TarEntry[], name: string, source: EntrySource): void {
  const plain: TarEntry[] = [];
  const removeUnder = (dir: string, self: boolean): void => {
    for (const p of [...tree.keys()])
      if ((self && p === dir) || p.startsWith(dir === '/' ? '/' : `${dir}/`)) if (p !== '/') tree.delete(p);
  };
  for (const e of entries) {
    const base = posix.basename(e.name.replace(/\/+$/, ''));
    if (!base.startsWith(WHITEOUT)) {
      plain.push(e);
      continue;
    }
    let dir: string;
    try {
      dir = normalizePath(posix.dirname(e.name));
    } catch (cause) {
      throw new KjxError(
        'ARTIFACT_INVALID',
        `${name}: whiteout ${printable(JSON.stringify(e.name))} climbs above the root`,
        {
          cause,
        },
      );
    }
    if (base === OPAQUE) removeUnder(dir, false);
    else removeUnder(`${dir === '/' ? '' : dir}/${base.slice(WHITEOUT.length)}`, true);
  }
  const layer = tarToTree(plain, name, source);
  // a file or symlink that replaces a directory of the layers below replaces what was under it
  // too (lower layers need not list the directory itself, so look at every path's ancestors)
  const nonDirs = new Set([...layer.values()].filter((e) => e.type !== 'dir').map((e) => e.path));
  if (nonDirs.size > 0)
    for (const p of [...tree.keys()])
      for (let i = p.lastIndexOf('/'); i > 0; i = p.lastIndexOf('/', i - 1))
        if (nonDirs.has(p.slice(0, i))) {
          tree.delete(p);
          break;
        }
  for (const e of layer.values()) tree.set(e.path, e);
}

function json(files: Map<string, Buffer>, at: string, archive: string): Record<string, unknown> {
  const data = files.get(at);
  if (!data) throw new KjxError('ARTIFACT_INVALID', `${archive}: the image archive has no ${at}`);
  try {
    return JSON.parse(data.toString('utf8'));
  } catch (cause) {
    throw new KjxError('ARTIFACT_INVALID', `${archive}: ${at} is not valid JSON`, { cause });
  }
}

const blobAt = (digest: unknown): string => `blobs/${String(digest).replace(':', '/')}`;

/**
 * The most a layer may hold once decompressed: 4 GiB, what one Node 20 Buffer can
 * hold; past it a layer is refused as it decompresses rather than exhausting memory.
 */
export const MAX_LAYER_BYTES = 4 * 1024 ** 3;

export interface ImageArchiveOptions {
  /** Refuse a layer that decompresses to more than this (default MAX_LAYER_BYTES). */
  maxLayerBytes?: number;
}

/**
 * The root file system of the first image of an image archive, its name and layer count.
 * @throws KjxError ARTIFACT_INVALID for a missing or damaged manifest, config or layer,
 *   or a layer larger than `maxLayerBytes` decompressed
 */
export async function imageArchiveTree(
  entries: TarEntry[],
  archive: string,
  source: EntrySource,
  { maxLayerBytes = MAX_LAYER_BYTES }: ImageArchiveOptions = {},
): Promise<ImageArchiveContents> {
  const files = filesOf(entries);
  let layers: string[];
  let image: string | null;
  let config: string;
  if (files.has('oci-layout') && files.has('index.json')) {
    const desc = (json(files, 'index.json', archive).manifests as Record<string, unknown>[] | undefined)?.[0];
    let manifest = desc ? json(files, blobAt(desc.digest), archive) : undefined;
    // an index may point at another index (multi-platform images): take its first manifest
    for (let hops = 0; manifest && Array.isArray(manifest.manifests) && hops < 4; hops++) {
      const inner = (manifest.manifests as Record<string, unknown>[])[0];
      manifest = inner ? json(files, blobAt(inner.digest), archive) : undefined;
    }
    if (!desc || !manifest) throw new KjxError('ARTIFACT_INVALID', `${archive}: index.json names no image`);
    const notes = (desc.annotations ?? {}) as Record<string, string>;
    image = notes[CONTAINERD_NAME_ANNOTATION] ?? notes[REF_NAME_ANNOTATION] ?? null;
    layers = ((manifest.layers ?? []) as Record<string, unknown>[]).map((l) => blobAt(l.digest));
    config = String((manifest.config as Record<string, unknown> | undefined)?.digest ?? '');
  } else {
    const list = json(files, 'manifest.json', archive) as unknown as Record<string, unknown>[];
    const m = Array.isArray(list) ? list[0] : undefined;
    if (!m) throw new KjxError('ARTIFACT_INVALID', `${archive}: manifest.json names no image`);
    image = ((m.RepoTags as string[] | undefined) ?? [])[0] ?? null;
    layers = ((m.Layers as string[] | undefined) ?? []).map(member);
    config = String(m.Config ?? '');
  }
  const tree: Tree = new Map();
  for (const at of layers) {
    const data = files.get(at);
    if (!data) throw new KjxError('ARTIFACT_INVALID', `${archive}: layer ${printable(at)} is missing`);
    const layerName = `${archive}: ${printable(at)}`;
    let layerEntries: TarEntry[];
    try {
      layerEntries = parseTar(await decompressAny(data, layerName, maxLayerBytes), layerName);
    } catch (cause) {
      const why = (cause as Error).message;
      throw new KjxError('ARTIFACT_INVALID', why.startsWith(layerName) ? why : `${layerName}: ${why}`, {
        cause,
      });
    }
    applyLayer(tree, layerEntries, layerName, source);
  }
  return { tree, details: { image, layers: layers.length, config } };
}
