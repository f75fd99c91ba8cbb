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
  # ...or built from source by kjx (docs/kernels.md), from Debian's linux-source
  # package or a kernel tree, with a profile (vm, defconfig, tinyconfig) and fragments:
  # source: debian                # or: tree: ../linux
  # config: [vm, ./extra.config, CONFIG_KCSAN=n]
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

# Tracing components: ftrace (tracefs helpers), libbpf-tools, bpftrace, bpftool
# (docs/tracing.md, kjx trace). Which libbpf-tools the libbpf-tools component installs:
tracing:
  libbpfTools: [runqlat, execsnoop, offcputime, syscount, biolatency]
  # Your own eBPF programs, compiled on the host (clang, libbpf CO-RE; kjx doctor
  # --install --for bpf) and run with kjx trace prog NAME. No loader: kjx's own.
  programs: []
  #  - {name: execs, bpf: ./execs.bpf.c}
  #  - {name: top, bpf: ./top.bpf.c, loader: ./top.c}
  #  - {name: gotop, bpf: ./top.bpf.c, go: ./gotop/}

# Extra Debian packages: a name, name=version, a local .deb, or only some files of one.
packages: []
#  - curl
#  - jq=1.6-2.1
#  - ./debs/tool_1.0_amd64.deb
#  - name: strace
#    paths: [/usr/bin/strace]

# Files, directories and symlinks to add (mode defaults to 0644, dirs 0755).
# A path is taken as written: one below a symlink is refused, give the link's target.
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

# Artifacts to write: initramfs (vmlinuz + initramfs), iso (hybrid BIOS/UEFI ISO),
# raw, qcow2, vmdk (GPT disk images with a persistent ext4 root), tar (rootfs),
# oci (<name>-oci.tar: the image as a container image for docker/podman/ctr load).
outputs: [initramfs]

# Disk images (raw, qcow2, vmdk): the whole disk's size, like 512M or 2G.
disk:
  size: 1G

# Container images baked into the guest at /usr/share/kjx/images/<name>.tar, e.g.
# "- { name: smoke, from: busybox-static }" (built by kjx) or
# "- { name: app, archive: ./app.tar }" (docker save / podman save output).
images: []

# Compression of the initramfs: gzip, zstd, xz or none.
compression: gzip

# Timestamp given to every file, for reproducible builds (seconds since 1970).
# Overrides the default epoch (SOURCE_DATE_EPOCH).
# sourceDateEpoch: 1700000000

# Kernel parameters set at boot, before networking and services.
sysctls: {}
#  net.ipv4.ip_forward: 1
#  kernel.perf_event_paranoid: -1

# Network interfaces: dhcp (busybox udhcpc), or a static IPv4 address.
# Loopback is always up. Under QEMU's user network the guest gets 10.0.2.15/24.
network:
  eth0: dhcp
#  eth1:
#    address: 192.168.100.2/24
#    gateway: 192.168.100.1
#    dns: [192.168.100.1]

# Accounts besides root; nobody has a password, SSH keys are the way in.
users: []
#  - name: dev
#    uid: 1000
#    shell: /bin/sh
#    authorizedKeys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKjx1ExampleExampleExampleExample0000 me@laptop"]

# The SSH server: dropbear, supervised, key login only (no password, ever).
# With no authorized key anywhere, kjx creates a project key pair in
# .kjx/ssh/id_ed25519 next to this file and authorizes it for root.
# It is on when the dropbear component is included (enabled: false turns it off).
ssh:
  port: 22
  # Host key types generated at first boot; each fingerprint is printed on the
  # console as "@@kjx:NONCE:hostkey type=... sha256=...".
  hostKeys: [ed25519]
  # ...or host private key files to use instead (dropbear format, or an unencrypted
  # OpenSSH ed25519 key from ssh-keygen); they land in the image.
  hostKeyFiles: []
  rootLogin: true

# Supervised services (runit): a name, the command, what it needs, how it tells
# it is ready. A service starts once everything it needs is ready, stops when one
# of them stops, and starts again once it is back. See docs/services.md.
services: {}
#  tracer:
#    run: /usr/local/bin/tracer
#    ready: signal            # or {file: PATH}, {port: N}, {check: COMMAND}
#    stopSignal: INT
#  workload:
#    run: /usr/local/bin/workload --serve
#    needs: [tracer]
#    restart: on-failure      # always, on-failure, never; or {policy, delay, maxDelay}
#    env: {LOG_LEVEL: debug}
#    log: {size: 1000000, keep: 5}

# One-shot commands run in order at boot, after networking and before services.
# A failed required task stops the boot (the guest powers off).
tasks: []
#  - name: data-dir
#    run: mkdir -p /srv/data
#  - name: warm-cache
#    run: /usr/local/bin/warm || true
#    required: false

# How kjx boot runs the guest. Under QEMU's user network the guest reaches the
# host's own services through 10.0.2.2 and, through the host, its networks;
# restrict: true cuts both (DHCP still answers; no DNS) and keeps the SSH forward.
vm:
  restrict: false

# The serial console: a root shell (the console belongs to whoever runs the VM), or none.
console: shell
`;
