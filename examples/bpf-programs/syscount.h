/* SPDX-License-Identifier: GPL-2.0 */
/* What syscount.bpf.c counts by, shared with its C loader (syscount.c). */
#ifndef SYSCOUNT_H
#define SYSCOUNT_H

#define COMM_LEN 16

struct proc_key {
	__u32 pid;
	char comm[COMM_LEN];
};

#endif
