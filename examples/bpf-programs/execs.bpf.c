// SPDX-License-Identifier: GPL-2.0
/*
 * New programs as they start: one ring buffer record per exec (pid, parent, command
 * and file name). kjx-bpf-run streams each record as a JSON line; kjx renders it
 * through `struct event`, which the line below keeps in the object's BTF (a type
 * only used for a local variable would not be there).
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct event {
	u32 pid;
	u32 ppid;
	char comm[16];
	char filename[64];
};

const struct event *unused_event __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

__u64 execs = 0;

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	__sync_fetch_and_add(&execs, 1);
	if (!e)
		return 0;
	e->pid = BPF_CORE_READ(p, tgid);
	e->ppid = BPF_CORE_READ(p, real_parent, tgid);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), BPF_CORE_READ(bprm, filename));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
