/**
 * What makes one image a particular cluster node, handed in per boot: a small cpio
 * archive over fw_cfg (the `kjx run` payload's channel, docs/guest-protocol.md)
 * that stage 1 unpacks before it sets the hostname and brings up the LAN. It holds
 * the node's /etc/hostname, the cluster's /etc/hosts and /etc/kjx/lan ("MAC
 * ADDRESS/PREFIX"), so one image serves every node and nothing of a node is in
 * an artifact.
 */
import { writeCpio } from '../image/cpio.js';
import { makeReproducible } from '../rootfs/reproducible.js';
import { addEntry, type EntrySource, ensureParents, mk, newTree } from '../rootfs/tree.js';
import { type Cluster, type ClusterNode, hostsFile } from './file.js';

/** A file of a node's payload: guest path, content, mode. */
export interface NodeFile {
  path: string;
  data: string | Buffer;
  mode: number;
}

/** The files that make `node` of `c` (engines add theirs through `extra`). */
export function nodeFiles(c: Cluster, node: ClusterNode): NodeFile[] {
  return [
    { path: '/etc/hostname', data: `${node.name}\n`, mode: 0o644 },
    { path: '/etc/hosts', data: hostsFile(c), mode: 0o644 },
    { path: '/etc/kjx/lan', data: `${node.mac} ${node.address}/${node.prefix}\n`, mode: 0o644 },
  ];
}

/**
 * The archive of `files`. Directories the image has (`imagePaths`) are left out:
 * cpio would give them the archive's mode and owner.
 */
export function nodePayload(files: NodeFile[], imagePaths: Set<string>): Buffer {
  const src: EntrySource = { kind: 'generated', by: 'kjx cluster' };
  const tree = newTree();
  for (const f of files) addEntry(tree, mk.file(f.path, Buffer.from(f.data), src, f.mode));
  ensureParents(tree, src);
  // the root is always the image's: an archive's "." would set its mode and owner
  for (const [path, e] of tree)
    if (e.type === 'dir' && (path === '/' || imagePaths.has(path))) tree.delete(path);
  return writeCpio(makeReproducible(tree, Math.floor(Date.now() / 1000)));
}
