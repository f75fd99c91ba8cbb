/**
 * The kjx.yaml that `kjx init` writes: every default spelled out with a comment, and
 * the alternatives shown commented out, so the file doubles as the short reference.
 * A test checks it parses to exactly `defaultSpec()`, and that the commented
 * examples are valid too.
 */

/** Commented default spec: busybox + runit + dropbear and virtio modules from linux-image-cloud-amd64. */
export const DEFAULT_SPEC_YAML = `# kjx.yaml: what \`kjx build\` puts in the image. Every field is optional; the values
# below are the defaults. Relative host paths are relative to this file's directory.
# Full reference: schema/kjx.schema.json in kjx-headless.

# Name of the system; artifact file names start with it.
name: kjx
# Version of the system, recorded in the manifest and artifact names.
version: 0.1.0
# Host name the guest sets at boot (letters, digits and "-").
hostname: kjx

# The kernel and its modules come from a Debian package...
kernel:
  package: linux-image-cloud-amd64
  # ...or from the host instead of "package":
  # image: ./bzImage              # a kernel image
  # modulesDir: ./modules/6.1.0   # its lib/modules/<version> directory
  # Kernel command line used when booting.
  cmdline: console=ttyS0 quiet
  # Modules to include and load at boot; the modules they depend on come along.
  modules:
    - virtio_pci
    - virtio_net
    - virtio_blk
    - virtio_console
    - virtio_rng
    - vmw_vsock_virtio_transport

# Built-in components: busybox (shell and tools; busybox-static instead for an
# image without the C library), runit (init and supervision), dropbear (SSH
# server, key login only).
components: [busybox, runit, dropbear]

# Extra Debian packages: a name, name=version, a local .deb, or only some files of one.
packages: []
#  - curl
#  - jq=1.6-2.1
#  - ./debs/tool_1.0_amd64.deb
#  - name: strace
#    paths: [/usr/bin/strace]

# Files, directories and symlinks to add (mode defaults to 0644, dirs 0755).
files: []
#  - path: /etc/motd
#    content: "hello from kjx\\n"
#  - path: /usr/local/bin/hello
#    from: ./hello.sh
#    mode: "0755"
#  - path: /srv/data
#    type: dir
#    owner: "1000:1000"
#  - path: /usr/local/bin/hi
#    type: symlink
#    target: hello

# Artifacts to write: initramfs.
outputs: [initramfs]

# Compression of the initramfs: gzip, zstd, xz or none.
compression: gzip

# Timestamp given to every file, for reproducible builds (seconds since 1970).
# Overrides the default epoch (SOURCE_DATE_EPOCH).
# sourceDateEpoch: 1700000000
`;
