/**
 * What `kjx cluster init` writes: a commented 3-node kjx-cluster.yaml whose nodes
 * form one etcd cluster, and the kjx spec they boot. `kjx cluster up` brings it to
 * a healthy etcd cluster as it is (test/cluster/etcd.test.ts).
 */

/** The node spec's file name, beside the cluster file. */
export const EXAMPLE_NODE_SPEC = 'etcd-node.yaml';

export const EXAMPLE_NODE_SPEC_YAML = `# etcd-node.yaml: the kjx spec every node of kjx-cluster.yaml boots (see kjx init
# for every field). One image serves all nodes: hostname, address, /etc/hosts and
# etcd's member settings and certificates come per boot from kjx cluster up.
name: etcd-node
components: [busybox, runit, dropbear, libbpf-tools, etcd]
tracing:
  libbpfTools: [execsnoop]

services:
  # The tracer comes up first on every node: etcd starts only once execsnoop is
  # attached (kjx-bpf-ready signals it), so the trace sees etcd from its first exec.
  # \`before: [etcd]\` makes the etcd component's service need this one; if the
  # tracer stops, etcd is stopped too and starts again once the tracer is back.
  tracer:
    run: kjx-bpf-ready execsnoop
    ready: signal
    stopSignal: INT
    before: [etcd]
`;

export const CLUSTER_EXAMPLE_YAML = `# kjx-cluster.yaml: nodes booted from kjx specs on one private virtual LAN
# (docs/cluster.md). \`kjx cluster up\` boots them in parallel; \`kjx cluster down\` ends them.

# Name of the cluster: its state is under <state>/clusters/<name>/, its node VMs are
# named <name>.<node> (kjx ps shows them).
name: lab
# The LAN's IPv4 subnet; nodes get .11, .12, ... in the order below.
subnet: 10.77.0.0/24

nodes:
  # A group of nodes from one spec. With a count above 1 they are named n1, n2, ...
  - name: n
    # The kjx.yaml they boot (relative to this file); it needs the components of
    # the engines below.
    spec: ${EXAMPLE_NODE_SPEC}
    count: 3
    # Guest memory in MiB (default: what the spec's components want).
    # memory: 512
    # manager or member (which nodes lead, for engines that have leaders).
    role: member
    # Engines to run: etcd (the nodes form one etcd cluster with TLS from a CA kjx
    # makes per cluster; \`kjx cluster exec n2 -- etcdctl get k\` works as is).
    # An empty list boots the nodes on their LAN only.
    engines: [etcd]
`;

/**
 * A 3-node docker swarm (docs/cluster.md): one manager, two workers, a tracer before
 * dockerd on each. The overlay needs vxlan, the service's virtual IP ip_vs.
 */
export const SWARM_CLUSTER_YAML = `name: swarm
subnet: 10.78.0.0/24
nodes:
  - {name: m, spec: swarm-node.yaml, role: manager, memory: 1536, engines: [docker]}
  - {name: w, spec: swarm-node.yaml, count: 2, role: member, memory: 1536, engines: [docker]}
`;

export const SWARM_NODE_SPEC = 'swarm-node.yaml';

export const SWARM_NODE_SPEC_YAML = `name: swarm-node
components: [busybox, runit, dropbear, libbpf-tools, docker]
tracing:
  libbpfTools: [execsnoop]
kernel:
  # the default modules, and vxlan (overlay networks), ip_vs (services' virtual IPs)
  modules: [virtio_pci, virtio_net, virtio_blk, virtio_console, virtio_rng, vmw_vsock_virtio_transport,
            vxlan, ip_vs, ip_vs_rr, xt_ipvs, iptable_mangle]
services:
  tracer:
    run: kjx-bpf-ready execsnoop
    ready: signal
    stopSignal: INT
    before: [docker]
`;
