// SPDX-License-Identifier: GPL-2.0
/*
 * The tracer of the handshake (handshake.c): counts the system calls of one process,
 * the workload, whose pid the loader sets before loading (target_pid, read-only
 * data), and keeps the time and number of the first one, so the loader can show
 * that the workload's first system call after it was released was seen.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

const volatile __u32 target_pid = 0;

__u64 events = 0;
__u64 first_ns = 0;
__s64 first_syscall = -1;

SEC("tracepoint/raw_syscalls/sys_enter")
int on_sys_enter(struct trace_event_raw_sys_enter *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) != target_pid)
		return 0;
	/* the first event wins the race for first_ns (one CPU here, but still) */
	if (__sync_val_compare_and_swap(&first_ns, 0, bpf_ktime_get_ns()) == 0)
		first_syscall = ctx->id;
	__sync_fetch_and_add(&events, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
