/** Choosing how a tracer runs from what the image has, and the errors when it cannot. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { defaultTraceDir } from '../../src/cli/cmd-trace.js';
import { toolsFromListing } from '../../src/trace/image-tools.js';
import { checkTracerName, type ImageTools, planTracer } from '../../src/trace/tracers.js';
import type { ErrorCode } from '../../src/util/errors.js';
import { assertKjxError } from '../helpers/kjx-error.js';

const FULL: ImageTools = {
  components: ['busybox', 'runit', 'ftrace', 'libbpf-tools', 'bpftrace'],
  libbpfTools: ['runqlat', 'execsnoop', 'offcputime', 'syscount', 'biolatency'],
};
const FTRACE_ONLY: ImageTools = { components: ['busybox', 'runit', 'ftrace'], libbpfTools: [] };
const BARE: ImageTools = { components: ['busybox', 'runit', 'dropbear'], libbpfTools: [] };

function fails(fn: () => unknown, code: ErrorCode, message: RegExp): void {
  assert.throws(fn, (e) => {
    assertKjxError(e, code);
    assert.match(`${e.message}\n${e.hint ?? ''}`, message);
    return true;
  });
}

describe('planTracer', () => {
  test('runqlat: libbpf-tools when the image has it, stopped with INT; tracefs otherwise', () => {
    const bpf = planTracer({ tracer: 'runqlat' }, FULL);
    assert.equal(bpf.kind, 'process');
    assert.deepEqual(bpf.kind === 'process' && bpf.argv, ['runqlat']);
    assert.equal(bpf.format, 'libbpf-hist');
    const fallback = planTracer({ tracer: 'runqlat' }, FTRACE_ONLY);
    assert.equal(fallback.kind, 'helper');
    assert.equal(fallback.format, 'ftrace-hist');
    assert.equal(planTracer({ tracer: 'runqlat', backend: 'tracefs' }, FULL).kind, 'helper');
  });
  test('runqlat with neither: names libbpf-tools (and ftrace) and says where to add it', () => {
    fails(
      () => planTracer({ tracer: 'runqlat' }, BARE),
      'TRACE_UNAVAILABLE',
      /runqlat needs libbpf-tools \(or ftrace.*add libbpf-tools to components in kjx\.yaml/s,
    );
    fails(
      () => planTracer({ tracer: 'runqlat', backend: 'bpf' }, FTRACE_ONLY),
      'TRACE_UNAVAILABLE',
      /needs libbpf-tools/,
    );
  });
  test('a tool the spec left out of tracing.libbpfTools says so', () => {
    fails(
      () => planTracer({ tracer: 'offcpu' }, { ...FULL, libbpfTools: ['runqlat'] }),
      'TRACE_UNAVAILABLE',
      /offcputime.*tracing\.libbpfTools/s,
    );
  });
  test('funccount: tracefs kprobes through kjx-ftrace, with the pattern as one word', () => {
    const p = planTracer({ tracer: 'funccount', arg: 'vfs_*' }, FTRACE_ONLY);
    assert.ok(p.kind === 'helper');
    assert.deepEqual(p.start, ['/usr/sbin/kjx-ftrace', 'start', 'funccount', 'vfs_*']);
    fails(
      () => planTracer({ tracer: 'funccount', arg: 'a; rm -rf /' }, FULL),
      'USAGE',
      /not a kernel function/,
    );
    fails(
      () => planTracer({ tracer: 'funccount', arg: 'vfs_read' }, BARE),
      'TRACE_UNAVAILABLE',
      /funccount needs ftrace/,
    );
  });
  test('profile and bpftrace need bpftrace; bpftrace needs a program', () => {
    fails(
      () => planTracer({ tracer: 'profile' }, FTRACE_ONLY),
      'TRACE_UNAVAILABLE',
      /profile needs bpftrace/,
    );
    const p = planTracer({ tracer: 'profile' }, FULL);
    assert.ok(p.kind === 'process' && p.argv[0] === 'bpftrace' && /profile:hz:99/.test(p.argv.at(-1)!));
    assert.ok(
      p.kind === 'process' &&
        p.readyLine &&
        p.argv.at(-1)!.includes(`BEGIN { printf("${p.readyLine}\\n"); }`),
    );
    fails(() => planTracer({ tracer: 'bpftrace' }, FULL), 'USAGE', /-e PROGRAM or --script FILE/);
  });
  test('service: the output format follows the tool in its run line', () => {
    assert.equal(
      planTracer({ tracer: 'service', arg: 'tracer', serviceRun: 'kjx-bpf-ready runqlat' }, BARE).format,
      'libbpf-hist',
    );
    assert.equal(
      planTracer({ tracer: 'service', arg: 't', serviceRun: 'kjx-bpf-ready offcputime -u' }, BARE).format,
      'offcpu-stacks',
    );
    assert.equal(
      planTracer({ tracer: 'service', arg: 't', serviceRun: '/usr/local/bin/mine' }, BARE).format,
      'text',
    );
    assert.equal(
      planTracer(
        {
          tracer: 'service',
          arg: 't',
          serviceRun: "exec kjx-bpf-ready bpftrace -e 'kprobe:vfs_read { @[comm] = count(); }'",
        },
        BARE,
      ).format,
      'bpftrace',
    );
    fails(() => planTracer({ tracer: 'service', arg: '../x' }, BARE), 'USAGE', /not a service name/);
  });
  test('prog: the generic loader is ready by its line; C and Go loaders by /proc, their maps dumped before the stop', () => {
    const tools: ImageTools = {
      ...BARE,
      programs: [
        { name: 'execs', loader: 'generic' },
        { name: 'top', loader: 'c' },
        { name: 'gotop', loader: 'go' },
      ],
    };
    const g = planTracer({ tracer: 'prog', arg: 'execs' }, tools);
    assert.ok(g.kind === 'process' && g.readyLine === '{"type":"ready"}' && !g.dumpMaps);
    assert.deepEqual(g.kind === 'process' && g.argv, ['/usr/sbin/kjx-prog', 'execs']);
    assert.equal(g.format, 'bpf-prog');
    assert.equal(g.via, 'tracing.programs execs (kjx-bpf-run)');
    const c = planTracer({ tracer: 'prog', arg: 'top' }, tools);
    assert.ok(c.kind === 'process' && c.readyLine === undefined && c.dumpMaps === true);
    assert.equal(
      planTracer({ tracer: 'prog', arg: 'gotop' }, tools).via,
      'tracing.programs gotop (Go loader, cilium/ebpf)',
    );
    fails(
      () => planTracer({ tracer: 'prog', arg: 'exec' }, tools),
      'TRACE_UNAVAILABLE',
      /no program "exec" \(did you mean "execs"\?\).*\n.*programs of this image: execs, top, gotop/,
    );
    fails(
      () => planTracer({ tracer: 'prog', arg: 'x' }, BARE),
      'TRACE_UNAVAILABLE',
      /add it to tracing\.programs in kjx\.yaml/,
    );
  });
  test('service: a kjx-prog service is read as a program, its maps dumped before the stop', () => {
    const p = planTracer({ tracer: 'service', arg: 'hs', serviceRun: 'kjx-prog handshake' }, BARE);
    assert.equal(p.format, 'bpf-prog');
    assert.ok(p.kind === 'service' && p.dumpMaps === true);
  });
  test('syscalls: syscount when the image has it but not ftrace; the error names --backend bpf', () => {
    const bpfOnly: ImageTools = { components: ['libbpf-tools'], libbpfTools: ['syscount'] };
    const p = planTracer({ tracer: 'syscalls' }, bpfOnly);
    assert.equal(p.format, 'syscount');
    assert.equal(planTracer({ tracer: 'syscalls' }, FULL).format, 'ftrace-syscalls');
    fails(() => planTracer({ tracer: 'syscalls' }, BARE), 'TRACE_UNAVAILABLE', /syscount, for --backend bpf/);
  });
  test('a missing piece in a detached VM: the hint says to rebuild and boot it again', () => {
    fails(
      () => planTracer({ tracer: 'profile' }, { ...BARE, vm: 'web' }),
      'TRACE_UNAVAILABLE',
      /boot the VM again \(kjx stop web; kjx boot --detach -n web\)/,
    );
    fails(
      () => planTracer({ tracer: 'offcpu', backend: 'tracefs' }, FULL),
      'USAGE',
      /drop --backend tracefs/,
    );
  });
  test('unknown tracer names are usage errors with a suggestion', () => {
    fails(() => checkTracerName('runqlatt'), 'USAGE', /did you mean "runqlat"/);
    fails(() => checkTracerName('fucncount'), 'USAGE', /did you mean "funccount"/);
    fails(() => checkTracerName('flames'), 'USAGE', /tracers: runqlat, syscalls/);
    assert.equal(checkTracerName('offcpu'), 'offcpu');
  });
});

describe('what a detached VM has, and where results go', () => {
  test('components and libbpf-tools from a listing of /usr/sbin and /usr/bin', () => {
    assert.deepEqual(
      toolsFromListing([
        '/usr/sbin/kjx-ftrace',
        '/usr/sbin/runqlat',
        '/usr/sbin/ext4dist',
        '/usr/bin/bpftrace',
        '/usr/sbin/runqlat.bt',
        '/bin/sh',
      ]),
      { components: ['ftrace', 'libbpf-tools', 'bpftrace'], libbpfTools: ['ext4dist', 'runqlat'] },
    );
    assert.deepEqual(toolsFromListing(['/usr/sbin/dropbear']), { components: [], libbpfTools: [] });
    // tracing.programs: an object, and a loader binary named after the program when it has one
    assert.deepEqual(
      toolsFromListing([
        '/usr/lib/kjx/bpf/execs/execs.bpf.o',
        '/usr/lib/kjx/bpf/gotop/top.bpf.o',
        '/usr/lib/kjx/bpf/gotop/gotop',
        '/usr/lib/kjx/bpf/kjx-bpf-run',
      ]).programs,
      [
        { name: 'execs', loader: 'generic' },
        { name: 'gotop', loader: 'c' },
      ],
    );
  });
  test('the default output directory: .kjx/traces/TRACER-STAMP (UTC)', () => {
    assert.equal(
      defaultTraceDir('/p', 'offcpu', new Date('2026-11-25T23:49:04.123Z')),
      '/p/.kjx/traces/offcpu-20261125-234904',
    );
  });
});
