// SPDX-License-Identifier: GPL-2.0
/*
 * Run queue latency as a log2 histogram, like libbpf-tools' runqlat: the time from
 * a task's wake-up (or its preemption while runnable) to its switch-in, in
 * microseconds. No loader of its own: kjx-bpf-run loads and attaches it, and on
 * SIGINT writes the maps, where kjx recognises `struct hist { slots[] }` as a
 * histogram (kjx trace prog runqlat).
 *
 * CO-RE: task_struct is read through BTF relocations, so the one object works on
 * every kernel with BTF; the field holding the task state was renamed in 5.14
 * (state -> __state), and bpf_core_field_exists picks whichever this kernel has.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define MAX_SLOTS 26
#define TASK_RUNNING 0

struct hist {
	__u32 slots[MAX_SLOTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, u64);
} start SEC(".maps");

/* one histogram (key 0); the _us in the name is its unit */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct hist);
} runq_us SEC(".maps");

/* struct task_struct___old: the layout before 5.14, for bpf_core_field_exists */
struct task_struct___old {
	long state;
} __attribute__((preserve_access_index));

static __always_inline long task_state(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return BPF_CORE_READ(t, __state);
	return BPF_CORE_READ((struct task_struct___old *)t, state);
}

static __always_inline void enqueued(u32 pid)
{
	u64 ts = bpf_ktime_get_ns();
	if (pid)
		bpf_map_update_elem(&start, &pid, &ts, BPF_ANY);
}

static __always_inline u32 log2l(u64 v)
{
	u32 r = 0;
	while (v > 1 && r < MAX_SLOTS - 1) {
		v >>= 1;
		r++;
	}
	return r;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(on_wakeup, struct task_struct *p)
{
	enqueued(BPF_CORE_READ(p, pid));
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(on_wakeup_new, struct task_struct *p)
{
	enqueued(BPF_CORE_READ(p, pid));
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	/* a task switched out while still runnable waits on the run queue from now */
	if (task_state(prev) == TASK_RUNNING)
		enqueued(BPF_CORE_READ(prev, pid));

	u32 pid = BPF_CORE_READ(next, pid);
	u64 *tsp = bpf_map_lookup_elem(&start, &pid);
	if (!tsp)
		return 0;
	u64 now = bpf_ktime_get_ns();
	u64 delta_us = (now - *tsp) / 1000;
	bpf_map_delete_elem(&start, &pid);

	u32 zero = 0;
	struct hist *h = bpf_map_lookup_elem(&runq_us, &zero);
	if (!h)
		return 0;
	u32 slot = log2l(delta_us);
	__sync_fetch_and_add(&h->slots[slot], 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
