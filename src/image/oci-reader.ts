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
import { type EntrySource, normalizePath, type Tree, type TreeEntry } from '../rootfs/tree.js';
import { parseTar, type TarEntry } from '../sources/tar.js';
import { type Budget, charge, ENTRY_COST, overBudget } from '../util/budget.js';
import { decompressAny } from '../util/compression.js';
import { isKjxError, KjxError } from '../util/errors.js';
import { printable } from '../util/printable.js';
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

/** One distinct layer, read once however often the manifest lists it. */
interface ParsedLayer {
  /** Paths whose subtree (`self`: and the path itself) the layer whites out. */
  whiteouts: { path: string; self: boolean }[];
  entries: Tree;
}

function parseLayer(
  entries: TarEntry[],
  name: string,
  source: EntrySource,
  budget: Budget | undefined,
): ParsedLayer {
  const plain: TarEntry[] = [];
  const whiteouts: ParsedLayer['whiteouts'] = [];
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
        { cause },
      );
    }
    charge(budget, ENTRY_COST, `reading ${name}`);
    if (base === OPAQUE) whiteouts.push({ path: dir, self: false });
    else whiteouts.push({ path: `${dir === '/' ? '' : dir}/${base.slice(WHITEOUT.length)}`, self: true });
  }
  return { whiteouts, entries: tarToTree(plain, name, source, budget) };
}

/**
 * The image's tree as layers are applied, with an index of each path's children,
 * so that a whiteout or a file replacing a directory removes a subtree in time
 * proportional to the subtree, not to the whole tree (many whiteouts in many layers
 * would otherwise cost layers x whiteouts x paths). A lower layer need not list a
 * directory itself, so every ancestor of a path is indexed, listed or not.
 */
interface LayeredTree {
  tree: Tree;
  children: Map<string, Set<string>>;
}

function removeBelow(l: LayeredTree, dir: string): void {
  // iterative: a hostile layer's paths may nest deeper than the call stack
  const stack = [dir];
  for (let d = stack.pop(); d !== undefined; d = stack.pop()) {
    const kids = l.children.get(d);
    if (!kids) continue;
    l.children.delete(d);
    for (const k of kids) {
      l.tree.delete(k);
      stack.push(k);
    }
  }
}

function removePath(l: LayeredTree, path: string): void {
  removeBelow(l, path);
  if (path === '/') return;
  l.tree.delete(path);
  l.children.get(posix.dirname(path))?.delete(path);
}

function putEntry(l: LayeredTree, e: TreeEntry): void {
  // a file or symlink that replaces a directory of the layers below replaces what was under it too
  if (e.type !== 'dir') removeBelow(l, e.path);
  l.tree.set(e.path, e);
  for (let p = e.path; p !== '/'; p = posix.dirname(p)) {
    const parent = posix.dirname(p);
    let kids = l.children.get(parent);
    if (!kids) {
      kids = new Set();
      l.children.set(parent, kids);
    }
    if (kids.has(p)) break; // its ancestors are indexed already
    kids.add(p);
  }
}

/** Apply one layer: whiteouts first (they hide what is below), then the entries. */
function applyLayer(l: LayeredTree, layer: ParsedLayer): void {
  for (const w of layer.whiteouts) {
    if (w.self) removePath(l, w.path);
    else removeBelow(l, w.path);
  }
  for (const e of layer.entries.values()) putEntry(l, e);
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
 * More layers than any runtime stacks (overlayfs and docker stop near 128) are
 * refused: each one is work for every path of the image.
 */
export const MAX_LAYERS = 256;

export interface ImageArchiveOptions {
  /** What the decompressed layers and their entries may take (util/budget.ts); none by default. */
  budget?: Budget;
}

/**
 * The root file system of the first image of an image archive, its name and layer count.
 * @throws KjxError ARTIFACT_INVALID for a missing or damaged manifest, config or layer,
 *   or more layers than MAX_LAYERS; the budget's error past the budget
 */
export async function imageArchiveTree(
  entries: TarEntry[],
  archive: string,
  source: EntrySource,
  { budget }: ImageArchiveOptions = {},
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
  if (layers.length > MAX_LAYERS) {
    throw new KjxError(
      'ARTIFACT_INVALID',
      `${archive}: the image lists ${layers.length} layers, more than the ${MAX_LAYERS} kjx reads`,
      { hint: 'no container runtime stacks that many layers; is the manifest damaged?' },
    );
  }
  const layered: LayeredTree = { tree: new Map(), children: new Map() };
  // a layer listed again is the same blob: decompressed and parsed once, applied where listed
  const parsed = new Map<string, ParsedLayer>();
  let applied = 0;
  for (const at of layers) {
    const data = files.get(at);
    if (!data) throw new KjxError('ARTIFACT_INVALID', `${archive}: layer ${printable(at)} is missing`);
    const layerName = `${archive}: ${printable(at)}`;
    let layer = parsed.get(at);
    if (!layer) {
      try {
        layer = parseLayer(
          parseTar(await decompressAny(data, layerName, budget), layerName),
          layerName,
          source,
          budget,
        );
      } catch (cause) {
        if (isKjxError(cause) && cause.reason === 'over-budget') throw cause;
        const why = (cause as Error).message;
        throw new KjxError('ARTIFACT_INVALID', why.startsWith(layerName) ? why : `${layerName}: ${why}`, {
          cause,
        });
      }
      parsed.set(at, layer);
    }
    // applying the same layers again and again is work without memory: it counts against the budget too
    applied += layer.entries.size + layer.whiteouts.length;
    if (budget && applied * ENTRY_COST > budget.limit)
      throw overBudget(budget, `applying ${layers.length} layers`);
    applyLayer(layered, layer);
  }
  const tree = layered.tree;
  return { tree, details: { image, layers: layers.length, config } };
}
