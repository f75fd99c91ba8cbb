/**
 * The verifier's log trimmed to the failing instruction and its source line: libbpf's
 * block (as kjx-bpf-run and skeleton loaders print it on a 6.1 kernel), cilium/ebpf's
 * error text, a log with ` @ file:line`, and stderr with no log at all.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  findSourceLine,
  findVerifierFailure,
  formatVerifierFailure,
  locate,
} from '../../src/bpf/verifier-log.js';

/** What kjx-bpf-run printed for a map value used without a NULL check (Debian 6.1 kernel). */
const LIBBPF_LOG = `libbpf: prog 'on_enter': BPF program load failed: Permission denied
libbpf: prog 'on_enter': -- BEGIN PROG LOAD LOG --
reg type unsupported for arg#0 function on_enter#19
0: R1=ctx(off=0,imm=0) R10=fp0
; u32 k = bpf_get_current_pid_tgid() >> 32;
0: (85) call bpf_get_current_pid_tgid#14      ; R0_w=scalar()
; u32 k = bpf_get_current_pid_tgid() >> 32;
1: (77) r0 >>= 32                     ; R0_w=scalar(umax=4294967295,var_off=(0x0; 0xffffffff))
2: (63) *(u32 *)(r10 -4) = r0         ; R0_w=scalar(umax=4294967295,var_off=(0x0; 0xffffffff)) R10=fp0 fp-8=mmmm????
3: (bf) r2 = r10                      ; R2_w=fp0 R10=fp0
; 
4: (07) r2 += -4                      ; R2_w=fp-4
; u64 *v = bpf_map_lookup_elem(&counts, &k);
5: (18) r1 = 0xffff88801fdb6800       ; R1_w=map_ptr(off=0,ks=4,vs=8,imm=0)
7: (85) call bpf_map_lookup_elem#1    ; R0=map_value_or_null(id=1,off=0,ks=4,vs=8,imm=0)
; *v += 1; /* no NULL check: the verifier refuses this */
8: (79) r1 = *(u64 *)(r0 +0)
R0 invalid mem access 'map_value_or_null'
processed 8 insns (limit 1000000) max_states_per_insn 0 total_states 1 peak_states 1 mark_read 1
-- END PROG LOAD LOG --
libbpf: prog 'on_enter': failed to load: -13
libbpf: failed to load object '/usr/lib/kjx/bpf/bad/bad.bpf.o'
kjx-bpf-run: loading /usr/lib/kjx/bpf/bad/bad.bpf.o failed: Permission denied
`;

const SOURCE = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("tracepoint/raw_syscalls/sys_enter")
int on_enter(void *ctx)
{
  u32 k = bpf_get_current_pid_tgid() >> 32;
  u64 *v = bpf_map_lookup_elem(&counts, &k);
  *v += 1; /* no NULL check: the verifier refuses this */
  return 0;
}
`;

describe('verifier log', () => {
  test("libbpf's log: the program, the failing instruction without register state, its source line, the verdict", () => {
    const f = findVerifierFailure(LIBBPF_LOG)!;
    assert.equal(f.program, 'on_enter');
    assert.equal(f.instruction, '8: (79) r1 = *(u64 *)(r0 +0)');
    assert.equal(f.source, '*v += 1; /* no NULL check: the verifier refuses this */');
    assert.equal(f.error, "R0 invalid mem access 'map_value_or_null'");
    assert.equal(f.logLines, 17);
    const at = locate(f, [{ file: './bad.bpf.c', text: SOURCE }]);
    assert.deepEqual(at.location, { file: './bad.bpf.c', line: 9 });
    assert.equal(
      formatVerifierFailure(at),
      [
        './bad.bpf.c:9: *v += 1; /* no NULL check: the verifier refuses this */',
        '8: (79) r1 = *(u64 *)(r0 +0)',
        "R0 invalid mem access 'map_value_or_null'",
      ].join('\n'),
    );
  });

  test('newer kernels name the line themselves (` @ file:line`)', () => {
    const f = findVerifierFailure(
      [
        "libbpf: prog 'p': -- BEGIN PROG LOAD LOG --",
        '; return *v; @ t.bpf.c:12',
        '3: (79) r0 = *(u64 *)(r0 +0)',
        "R0 invalid mem access 'map_value_or_null'",
        'processed 4 insns (limit 1000000)',
        '-- END PROG LOAD LOG --',
      ].join('\n'),
    )!;
    assert.deepEqual(f.location, { file: 't.bpf.c', line: 12 });
    assert.equal(f.source, 'return *v;');
  });

  test("cilium/ebpf's error (%+v) has the log without libbpf's markers", () => {
    const f = findVerifierFailure(
      [
        'gosyscount: loading the BPF object: field OnSysEnter: program on_sys_enter: load program: permission denied:',
        '\t0: R1=ctx(off=0,imm=0) R10=fp0',
        '\t; u64 *v = bpf_map_lookup_elem(&counts, &key);',
        '\t5: (85) call bpf_map_lookup_elem#1',
        '\t; *v += 1;',
        '\t6: (79) r1 = *(u64 *)(r0 +0)',
        "\tR0 invalid mem access 'map_value_or_null'",
        '\tprocessed 7 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0',
      ].join('\n'),
    )!;
    assert.equal(f.program, 'on_sys_enter');
    assert.equal(f.instruction, '6: (79) r1 = *(u64 *)(r0 +0)');
    assert.equal(f.source, '*v += 1;');
    assert.equal(f.error, "R0 invalid mem access 'map_value_or_null'");
  });

  test('a failure before any instruction ran: the last line is the verdict', () => {
    const f = findVerifierFailure(
      [
        "libbpf: prog 'big': -- BEGIN PROG LOAD LOG --",
        'BPF program is too large. Processed 1000001 insn',
        'processed 1000001 insns (limit 1000000)',
        '-- END PROG LOAD LOG --',
      ].join('\n'),
    )!;
    assert.equal(f.error, 'BPF program is too large. Processed 1000001 insn');
    assert.equal(f.instruction, undefined);
  });

  test('stderr without a verifier log is no verifier failure', () => {
    assert.equal(
      findVerifierFailure('kjx-bpf-run: cannot open x.bpf.o: No such file or directory\n'),
      undefined,
    );
    assert.equal(findVerifierFailure(''), undefined);
  });

  test('source lines are found trimmed; blank text is never a match', () => {
    assert.equal(findSourceLine('a\n  b;  \nc', 'b;'), 2);
    assert.equal(findSourceLine('a\n\nc', ''), undefined);
    assert.equal(findSourceLine('a', 'zzz'), undefined);
  });
});
