// SPDX-License-Identifier: GPL-2.0
/*
 * The C loader of syscount.bpf.c: open, load and attach it through its skeleton
 * (syscount.skel.h, which kjx generates with bpftool gen skeleton), wait for SIGINT
 * or SIGTERM, then print a table of the processes with the most system calls.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "syscount.h"
#include "syscount.skel.h"

#define MAX_ROWS 4096

struct row {
	struct proc_key key;
	unsigned long long count;
};

static volatile sig_atomic_t stopping;

static void on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

static int by_count(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	return x->count < y->count ? 1 : x->count > y->count ? -1 : 0;
}

int main(void)
{
	struct syscount_bpf *skel = syscount_bpf__open_and_load();
	if (!skel) {
		fprintf(stderr, "syscount: loading the BPF object failed: %s\n", strerror(errno));
		return 1;
	}
	if (syscount_bpf__attach(skel)) {
		fprintf(stderr, "syscount: attaching failed: %s\n", strerror(errno));
		syscount_bpf__destroy(skel);
		return 1;
	}
	struct sigaction sa = {.sa_handler = on_stop};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	fprintf(stderr, "syscount: counting system calls, Ctrl-C to stop\n");
	while (!stopping)
		pause();

	static struct row rows[MAX_ROWS];
	int n = 0, fd = bpf_map__fd(skel->maps.counts);
	struct proc_key key, *prev = NULL;
	while (n < MAX_ROWS && bpf_map_get_next_key(fd, prev, &key) == 0) {
		if (bpf_map_lookup_elem(fd, &key, &rows[n].count) == 0) {
			rows[n].key = key;
			n++;
		}
		prev = &rows[n ? n - 1 : 0].key;
	}
	qsort(rows, n, sizeof(rows[0]), by_count);
	printf("%-7s %-16s %10s\n", "PID", "COMM", "SYSCALLS");
	for (int i = 0; i < n && i < 20; i++)
		printf("%-7u %-16s %10llu\n", rows[i].key.pid, rows[i].key.comm, rows[i].count);
	printf("total %llu system calls\n", (unsigned long long)skel->bss->total);
	syscount_bpf__destroy(skel);
	return 0;
}
