/** The kjx-cluster.yaml that `kjx cluster init` writes: three nodes from one spec, every field commented. */
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
    # The kjx.yaml they boot (relative to this file); one image serves every node:
    # hostname, /etc/hosts and address come per boot.
    spec: kjx.yaml
    count: 3
    # Guest memory in MiB (default: what the spec's components want).
    memory: 256
    # manager or member (which nodes lead, for engines that have leaders).
    role: member
    # Engines to run on these nodes: etcd, docker (not yet: an empty list boots the
    # nodes on their LAN only).
    engines: []
`;
