// SPDX-License-Identifier: GPL-2.0
/*
 * The original project's parent-process handshake, as its boot flow draws it:
 *
 *   parent ──fork──▶ workload   waits for SIGUSR2
 *          ──fork──▶ tracer     loads handshake.bpf.o, waits for SIGUSR1
 *          ──SIGUSR1──▶ tracer  attaches its probes, then
 *                      tracer ──SIGUSR2──▶ workload, which only then starts
 *          waits for the workload, then SIGINT to the tracer, which prints its counts
 *
 * Both signals are blocked before the forks, so neither child can miss (or die of)
 * one that arrives before it waits. Every step prints a CLOCK_MONOTONIC stamp, the
 * clock of bpf_ktime_get_ns(), so the order can be checked from the log:
 *
 *   tracer: attached_ns=A
 *   workload: released_ns=R      (after its first system call, getpid)
 *   tracer: events=N first_ns=F first_syscall=39
 *
 * A < F <= R, and the first system call seen is the workload's getpid (39 on
 * x86-64): it started only after the probes were attached, and its first event was
 * seen. The workload is `sh -c "$KJX_WORKLOAD"` (default: read some files).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include "handshake.skel.h"

static unsigned long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int wait_for(int sig)
{
	sigset_t set;
	int got;
	sigemptyset(&set);
	sigaddset(&set, sig);
	return sigwait(&set, &got) == 0 ? got : -1;
}

static void workload(void)
{
	wait_for(SIGUSR2);
	/* the marker: the first system call after the release, before anything else */
	syscall(SYS_getpid);
	printf("workload: released_ns=%llu pid=%d\n", now_ns(), getpid());
	fflush(stdout);
	const char *cmd = getenv("KJX_WORKLOAD");
	execl("/bin/sh", "sh", "-c", cmd && *cmd ? cmd : "cat /etc/os-release >/dev/null; ls / >/dev/null", (char *)NULL);
	perror("workload: exec /bin/sh");
	_exit(127);
}

static int tracer(pid_t target)
{
	struct handshake_bpf *skel = handshake_bpf__open();
	if (!skel) {
		fprintf(stderr, "tracer: open: %s\n", strerror(errno));
		return 1;
	}
	skel->rodata->target_pid = (unsigned)target;
	if (handshake_bpf__load(skel)) {
		fprintf(stderr, "tracer: load: %s\n", strerror(errno));
		handshake_bpf__destroy(skel);
		return 1;
	}
	printf("tracer: loaded, waiting for SIGUSR1\n");
	fflush(stdout);
	wait_for(SIGUSR1);
	if (handshake_bpf__attach(skel)) {
		fprintf(stderr, "tracer: attach: %s\n", strerror(errno));
		handshake_bpf__destroy(skel);
		return 1;
	}
	printf("tracer: attached_ns=%llu\n", now_ns());
	fflush(stdout);
	kill(target, SIGUSR2);
	wait_for(SIGINT);
	printf("tracer: events=%llu first_ns=%llu first_syscall=%lld\n", (unsigned long long)skel->bss->events,
	       (unsigned long long)skel->bss->first_ns, (long long)skel->data->first_syscall);
	fflush(stdout);
	handshake_bpf__destroy(skel);
	return 0;
}

int main(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);

	pid_t w = fork();
	if (w == 0)
		workload();
	pid_t t = fork();
	if (t == 0)
		_exit(tracer(w));
	printf("parent: tracer=%d workload=%d, SIGUSR1 to the tracer\n", t, w);
	kill(t, SIGUSR1);

	int status;
	pid_t done = waitpid(-1, &status, 0);
	if (done == t) {
		/* the tracer failed before it released the workload: nothing to wait for */
		printf("parent: the tracer exited first (%d), stopping the workload\n",
		       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		kill(w, SIGKILL);
		waitpid(w, NULL, 0);
		return 1;
	}
	printf("parent: workload exited (%d), SIGINT to the tracer\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	kill(t, SIGINT);
	waitpid(t, &status, 0);
	printf("parent: tracer exited (%d)\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
