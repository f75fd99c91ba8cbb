// SPDX-License-Identifier: GPL-2.0
/*
 * System calls per process (pid and command name), counted at raw_syscalls:sys_enter.
 * Two loaders use this one object: syscount.c (C, libbpf skeleton) and gosyscount/
 * (Go, cilium/ebpf); both print a table when they stop. kjx also renders the map
 * through its BTF into maps.json: the key's char[16] reads as a string.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "syscount.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct proc_key);
	__type(value, u64);
} counts SEC(".maps");

/* every call, all processes: a counter kjx shows as a global */
__u64 total = 0;

SEC("tracepoint/raw_syscalls/sys_enter")
int on_sys_enter(void *ctx)
{
	struct proc_key key = {};
	u64 one = 1, *n;

	key.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	n = bpf_map_lookup_elem(&counts, &key);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);
	__sync_fetch_and_add(&total, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
