/**
 * `tracing.programs` in kjx.yaml: the three loader kinds, host paths resolved against
 * the spec's directory (and kept as written for the build id), and every problem
 * (names, loader and go together, missing files, a Go directory without .go files)
 * reported at its line.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { portableSpec } from '../../src/pipeline/build.js';
import { parseSpec } from '../../src/spec/load.js';
import { bpfStem } from '../../src/spec/values.js';
import { isKjxError, type KjxError } from '../../src/util/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'kjx-programs-spec-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const SPEC = join(dir, 'kjx.yaml');
for (const f of ['execs.bpf.c', 'top.bpf.c', 'top.c', 'util.c']) writeFileSync(join(dir, f), '// x\n');
mkdirSync(join(dir, 'gotop'));
writeFileSync(join(dir, 'gotop', 'main.go'), 'package main\n');
mkdirSync(join(dir, 'empty'));

const spec = (programs: string) => parseSpec(`tracing:\n  programs:\n${programs}`, SPEC);
function problems(programs: string): string[] {
  try {
    spec(programs);
  } catch (e) {
    assert.ok(isKjxError(e) && e.code === 'SPEC_INVALID', String(e));
    return [(e as KjxError).message, ...(e as KjxError).details];
  }
  assert.fail('the spec was accepted');
}

test('the generic loader, a C loader (one file or several) and a Go package', () => {
  const s = spec(
    [
      '    - {name: execs, bpf: ./execs.bpf.c}',
      '    - {name: top, bpf: ./top.bpf.c, loader: ./top.c}',
      '    - {name: top2, bpf: ./top.bpf.c, loader: [./top.c, ./util.c]}',
      '    - {name: gotop, bpf: ./top.bpf.c, go: ./gotop/}',
      '',
    ].join('\n'),
  );
  const [execs, top, top2, gotop] = s.tracing.programs;
  assert.deepEqual(execs?.loader, { kind: 'generic' });
  assert.equal(execs?.bpf, join(dir, 'execs.bpf.c'));
  assert.equal(execs?.bpfRef, './execs.bpf.c');
  assert.deepEqual(top?.loader, { kind: 'c', sources: [join(dir, 'top.c')], sourceRefs: ['./top.c'] });
  assert.equal(top2?.loader.kind === 'c' && top2.loader.sources.length, 2);
  assert.deepEqual(gotop?.loader, { kind: 'go', dir: join(dir, 'gotop'), dirRef: './gotop/' });
  // the build id sees the paths as written, not where the checkout is
  const portable = portableSpec(s) as { tracing: { programs: { bpf: string }[] } };
  assert.equal(portable.tracing.programs[0]?.bpf, './execs.bpf.c');
  assert.equal(bpfStem('./a/top.bpf.c'), 'top');
  assert.equal(bpfStem('plain.c'), 'plain');
});

test('without programs the spec hashes as before (the build id of images without programs is unchanged)', () => {
  const s = parseSpec('name: x\n', SPEC);
  assert.deepEqual((portableSpec(s) as { tracing: unknown }).tracing, {
    libbpfTools: ['runqlat', 'execsnoop', 'offcputime', 'syscount', 'biolatency'],
  });
});

test('bad names, loader and go together, duplicates and non-C files, each at its line', () => {
  const p = problems(
    [
      '    - {name: Top, bpf: ./top.bpf.c}',
      '    - {name: both, bpf: ./top.bpf.c, loader: ./top.c, go: ./gotop/}',
      '    - {name: dup, bpf: ./top.bpf.c}',
      '    - {name: dup, bpf: ./execs.bpf.c}',
      '    - {name: rs, bpf: ./top.rs}',
      '',
    ].join('\n'),
  );
  assert.match(p[0]!, /kjx\.yaml:3:14: tracing\.programs\[0\]\.name: expected a program name/);
  assert.ok(
    p.some((l) => /:4:.*programs\[1\]\.go: give either "loader" \(C\) or "go"/.test(l)),
    p.join('\n'),
  );
  assert.ok(
    p.some((l) => /:6:.*programs\[3\]\.name: "dup" is already the name of programs\[2\]/.test(l)),
    p.join('\n'),
  );
  assert.ok(
    p.some((l) => /:7:.*programs\[4\]\.bpf: expected the BPF C source \(a \.c file\)/.test(l)),
    p.join('\n'),
  );
});

test('missing sources and a Go directory without a package are reported when the spec loads', () => {
  const p = problems(
    [
      '    - {name: a, bpf: ./nope.bpf.c}',
      '    - {name: b, bpf: ./top.bpf.c, loader: [./top.c, ./missing.c]}',
      '    - {name: c, bpf: ./top.bpf.c, go: ./empty}',
      '    - {name: d, bpf: ./top.bpf.c, go: ./top.c}',
      '',
    ].join('\n'),
  );
  assert.match(p[0]!, /kjx\.yaml:3:.*programs\[0\]\.bpf: \.\/nope\.bpf\.c does not exist/);
  assert.ok(
    p.some((l) => /:4:.*programs\[1\]\.loader\[1\]: \.\/missing\.c does not exist/.test(l)),
    p.join('\n'),
  );
  assert.ok(
    p.some((l) => /:5:.*programs\[2\]\.go: \.\/empty has no \.go files/.test(l)),
    p.join('\n'),
  );
  assert.ok(
    p.some((l) => /:6:.*programs\[3\]\.go: \.\/top\.c is not a directory/.test(l)),
    p.join('\n'),
  );
});
