/**
 * What the spec knows of QEMU's machines, apart from the schema so the commands that
 * only boot or attach (`kjx exec`, `kjx ps`) do not load it.
 */

/** The transport of every device on QEMU's microvm machine (`--machine microvm`), which has no PCI. */
export const MICROVM_MODULE = 'virtio_mmio';
