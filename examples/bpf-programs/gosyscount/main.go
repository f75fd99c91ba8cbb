// SPDX-License-Identifier: GPL-2.0

// gosyscount is the Go loader of syscount.bpf.c, with cilium/ebpf: kjx compiles the
// object and puts it here as syscount.bpf.o, embedded below. It attaches the
// tracepoint, waits for SIGINT or SIGTERM, and prints a table of the processes with
// the most system calls, like the C loader.
package main

import (
	"bytes"
	_ "embed"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

//go:embed syscount.bpf.o
var object []byte

// procKey is struct proc_key of syscount.h.
type procKey struct {
	Pid  uint32
	Comm [16]byte
}

type row struct {
	key   procKey
	count uint64
}

func fail(what string, err error) {
	// %+v: a verifier error with its whole log
	fmt.Fprintf(os.Stderr, "gosyscount: %s: %+v\n", what, err)
	os.Exit(1)
}

func main() {
	spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(object))
	if err != nil {
		fail("reading the BPF object", err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		fail("loading the BPF object", err)
	}
	defer coll.Close()
	tp, err := link.Tracepoint("raw_syscalls", "sys_enter", coll.Programs["on_sys_enter"], nil)
	if err != nil {
		fail("attaching", err)
	}
	defer tp.Close()

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	fmt.Fprintln(os.Stderr, "gosyscount: counting system calls, Ctrl-C to stop")
	<-stop

	var rows []row
	var key procKey
	var count uint64
	it := coll.Maps["counts"].Iterate()
	for it.Next(&key, &count) {
		rows = append(rows, row{key, count})
	}
	if err := it.Err(); err != nil {
		fail("reading the counts", err)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].count > rows[j].count })
	fmt.Printf("%-7s %-16s %10s\n", "PID", "COMM", "SYSCALLS")
	for i, r := range rows {
		if i == 20 {
			break
		}
		comm := string(bytes.TrimRight(r.key.Comm[:], "\x00"))
		fmt.Printf("%-7d %-16s %10d\n", r.key.Pid, comm, r.count)
	}
}
