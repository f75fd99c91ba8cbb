/**
 * Raw tracer output → results: offcputime's stacks and bpftrace's stack maps to
 * folded stacks, tracefs hists and libbpf-tools tables to rows. Samples are cut from
 * real runs in a kjx guest (Debian 12, kernel 6.1, libbpf-tools 0.26).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  bpftraceStacksToFolded,
  offcpuToFolded,
  stripServiceLog,
  traceResults,
} from '../../src/trace/results.js';
import { assertKjxError, kjxError } from '../helpers/kjx-error.js';

const OFFCPU = `    bpf_prog_8831d4a4090f78e6_sched_switch
    bpf_trace_run4
    __schedule
    schedule
    smpboot_thread_fn
    kthread
    ret_from_fork
    -                ksoftirqd/0 (14)
        385358

    bpf_prog_8831d4a4090f78e6_sched_switch
    bpf_trace_run4
    __schedule
    schedule
    pipe_read
    vfs_read
    ksys_read
    do_syscall_64
    entry_SYSCALL_64_after_hwframe
    read
    [unknown]
    -                sh (121)
        111375

    bpf_prog_8831d4a4090f78e6_sched_switch
    bpf_trace_run4
    __schedule
    schedule
    smpboot_thread_fn
    kthread
    ret_from_fork
    -                ksoftirqd/0 (14)
        15
`;

describe('offcpuToFolded', () => {
  test('root first, the command as root frame, BPF frames dropped, equal stacks merged', () => {
    assert.deepEqual(offcpuToFolded(OFFCPU), [
      {
        frames: ['ksoftirqd/0', 'ret_from_fork', 'kthread', 'smpboot_thread_fn', 'schedule', '__schedule'],
        count: 385373,
      },
      {
        frames: [
          'sh',
          '[unknown]',
          'read',
          'entry_SYSCALL_64_after_hwframe',
          'do_syscall_64',
          'ksys_read',
          'vfs_read',
          'pipe_read',
          'schedule',
          '__schedule',
        ],
        count: 111375,
      },
    ]);
  });
  test('warnings and banners between stacks are skipped; a missing count is an error', () => {
    assert.equal(offcpuToFolded(`failed to get syms\n${OFFCPU}`).length, 2);
    assert.throws(
      () => offcpuToFolded('    schedule\n    -    sh (1)\n    other_frame\n'),
      kjxError('TRACE_PARSE'),
    );
  });
  test('any text: never throws anything but TRACE_PARSE, counts are never lost', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('    f', '    -   c (1)', '        7', '', 'x', '    g')),
        (lines) => {
          try {
            for (const s of offcpuToFolded(lines.join('\n'))) assert.ok(s.count >= 7 && s.frames.length >= 1);
          } catch (e) {
            assertKjxError(e, 'TRACE_PARSE');
          }
        },
      ),
    );
  });
});

describe('bpftraceStacksToFolded', () => {
  const BT = `Attaching 1 probe...


@[
        native_safe_halt+10
        default_idle+5
        do_idle+425
, 
, swapper/0]: 212
@[
        __x64_sys_getpid+0
        do_syscall_64+55
, 
        getpid+11
        main+30
, busy]: 7
`;
  test('command, user frames, kernel frames, offsets dropped', () => {
    assert.deepEqual(bpftraceStacksToFolded(BT), [
      { frames: ['swapper/0', 'do_idle', 'default_idle', 'native_safe_halt'], count: 212 },
      { frames: ['busy', 'main', 'getpid', 'do_syscall_64', '__x64_sys_getpid'], count: 7 },
    ]);
  });
  test('an entry that never ends is a TRACE_PARSE error', () => {
    assert.throws(() => bpftraceStacksToFolded('@[\n  f+1\n'), kjxError('TRACE_PARSE'));
  });
});

describe('tracefs and libbpf-tools tables', () => {
  test('funccount: total hits per function and the top processes', () => {
    const raw = `### functions vfs_read vfs_readv
# event histogram
#
# trigger info: hist:keys=common_pid.execname:vals=hitcount:sort=hitcount.descending:size=4096 [active]
#

{ common_pid: kjx-ftrace      [       130] } hitcount:         22
{ common_pid: sh              [       127] } hitcount:         10
{ common_pid: sh              [       129] } hitcount:         10
{ common_pid: cat             [       132] } hitcount:          5

Totals:
    Hits: 47
    Entries: 4
    Dropped: 0
# event histogram
#
# trigger info: hist:keys=common_pid.execname:vals=hitcount:sort=hitcount.descending:size=4096 [active]
#


Totals:
    Hits: 0
    Entries: 0
    Dropped: 0
`;
    const r = traceResults('ftrace-funccount', raw, 'funccount.raw.txt');
    assert.deepEqual(r.table?.rows, [
      {
        function: 'vfs_read',
        count: 47,
        processes: 'kjx-ftrace 22, sh 20, cat 5',
      },
      { function: 'vfs_readv', count: 0, processes: '' },
    ]);
  });
  test('funccount: a hist missing for a named function is a TRACE_PARSE error', () => {
    assert.throws(
      () => traceResults('ftrace-funccount', '### functions a b\n', 'f'),
      kjxError('TRACE_PARSE', /2 functions but 0 hists/),
    );
  });
  test('syscalls: process, pid, syscall, count, biggest first', () => {
    const raw = `# event histogram
#
# trigger info: hist:keys=common_pid.execname,id.syscall:vals=hitcount:sort=hitcount.descending:size=8192 [active]
#

{ common_pid: sh              [       128], id: sys_newfstatat                [262] } hitcount:         46
{ common_pid: setsid          [       128], id: sys_mmap                      [  9] } hitcount:         24

Totals:
    Hits: 70
    Entries: 2
    Dropped: 0
`;
    assert.deepEqual(traceResults('ftrace-syscalls', raw, 's').table?.rows, [
      { process: 'sh', pid: 128, syscall: 'newfstatat', count: 46 },
      { process: 'setsid', pid: 128, syscall: 'mmap', count: 24 },
    ]);
  });
  test('execsnoop: its header names the columns, ARGS keeps its spaces', () => {
    const raw = `PCOMM            PID    PPID   RET ARGS
sleep            137    121      0 /bin/sleep 0.1 
setsid           142    121      0 /bin/setsid sh -c ls /; true 
`;
    assert.deepEqual(traceResults('execsnoop', raw, 'e').table?.rows, [
      { PCOMM: 'sleep', PID: 137, PPID: 121, RET: 0, ARGS: '/bin/sleep 0.1' },
      { PCOMM: 'setsid', PID: 142, PPID: 121, RET: 0, ARGS: '/bin/setsid sh -c ls /; true' },
    ]);
  });
  test('the tracefs exec: sched_process_exec lines of the trace buffer', () => {
    const raw = `# tracer: nop
#
#              | |         |   |||||     |         |
              sh-105     [000] .....     2.064039: sched_process_exec: filename=/bin/setsid pid=105 old_pid=105
      kjx-ftrace-108     [000] .....     2.151932: sched_process_exec: filename=/usr/sbin/kjx-ftrace pid=108 old_pid=108
`;
    assert.deepEqual(traceResults('ftrace-exec', raw, 'x').table?.rows, [
      { time: 2.064039, pid: 105, filename: '/bin/setsid', comm: 'sh' },
      { time: 2.151932, pid: 108, filename: '/usr/sbin/kjx-ftrace', comm: 'kjx-ftrace' },
    ]);
  });
  test('the tracefs runqlat: a log2 hist of the synthetic event in usecs', () => {
    const raw = `# event histogram
#
# trigger info: hist:keys=lat.log2:vals=hitcount:sort=lat.log2:size=2048 [active]
#

{ lat: ~ 2^4  } hitcount:          4
{ lat: ~ 2^6  } hitcount:         60

Totals:
    Hits: 64
    Entries: 2
    Dropped: 0
`;
    const [h] = traceResults('ftrace-hist', raw, 'r').histograms;
    assert.equal(h?.unit, 'lat');
    assert.equal(
      h?.buckets.reduce((a, b) => a + b.count, 0),
      64,
    );
  });
  test('a service log: svlogd stamps and kjx lines go before parsing', () => {
    const log = `2026-11-25_23:51:02.99306 kjx: starting t=4.89
2026-11-25_23:51:05.83360 kjx-bpf-ready: runqlat attached
2026-11-25_23:51:09.10000 Tracing run queue latency... Hit Ctrl-C to end.
2026-11-25_23:51:09.10001      usecs               : count    distribution
2026-11-25_23:51:09.10002          0 -> 1          : 3        |****************************************|
2026-11-25_23:51:09.10003          2 -> 3          : 1        |*************                           |
`;
    const text = stripServiceLog(log);
    assert.doesNotMatch(text, /kjx/);
    const [h] = traceResults('libbpf-hist', text, 'svc').histograms;
    assert.deepEqual(
      h?.buckets.map((b) => b.count),
      [3, 1],
    );
  });
});
