/**
 * Guest shell as files: the declared header (values written between head and body,
 * a missing or undeclared value refused, a use of an undeclared name found), includes,
 * compact rendering, values that round-trip through busybox sh whatever they contain,
 * and, over the real files: every one in order, every one kjx reads present and
 * copied into build/ by `npm run build`, every rendered script parsed by busybox sh.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { progRunnerScript } from '../../src/bpf/image-layer.js';
import { checkLib } from '../../src/components/container-common.js';
import { bpfReadyScript } from '../../src/guest/bpf-ready.js';
import { checkRunnerArgv } from '../../src/guest/checks.js';
import { ftraceHelperScript } from '../../src/guest/ftrace-helper.js';
import { udhcpcScript } from '../../src/guest/network.js';
import { readyPollScript } from '../../src/guest/readiness.js';
import { rootSwitchScript } from '../../src/guest/root-switch.js';
import { runHook } from '../../src/guest/run-hook.js';
import { serviceLib } from '../../src/guest/service-lib.js';
import { declarationProblems, plainWords, readShFile, renderSh, shWords } from '../../src/guest/sh-file.js';
import { bootReadyScript, stage1Script, stage2Script, stage3Script } from '../../src/guest/stages.js';
import { parseSpec } from '../../src/spec/load.js';
import { traceDriverScript } from '../../src/trace/guest-scripts.js';
import { planTracer } from '../../src/trace/tracers.js';
import { KjxError } from '../../src/util/errors.js';
import { busyboxParses, busyboxSh, needsBusybox } from '../helpers/busybox.js';
import { REPO } from '../helpers/kjx.js';

const skipBusybox = needsBusybox();
const SRC = join(REPO, 'src');

const dir = mkdtempSync(join(tmpdir(), 'kjx-shfile-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
/** A shell file in the scratch directory. */
function file(text: string, name = `f${n++}.sh`): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}
const internal = (message: RegExp) => (e: unknown) =>
  e instanceof KjxError && e.code === 'INTERNAL' && message.test(e.message);

const GREETER = `#!/bin/sh
# greets (a test script)
#
# @value KJX_WHO    who is greeted
# @value KJX_TIMES  how often
# @input KJX_LOUD   from the environment
i=0
while [ "$i" -lt "$KJX_TIMES" ]; do
  echo "hello $KJX_WHO\${KJX_LOUD:+!}"
  i=$((i + 1))
done
`;

describe('the declared header', () => {
  test('values go between the head and the body, quoted, in declaration order', () => {
    const out = renderSh(readShFile(file(GREETER)), { KJX_TIMES: 2, KJX_WHO: "the world's" });
    const lines = out.split('\n');
    assert.deepEqual(lines.slice(5, 8), [
      '# @input KJX_LOUD   from the environment',
      "KJX_WHO='the world'\\''s'",
      'KJX_TIMES=2',
    ]);
    assert.equal(lines[8], 'i=0');
    assert.ok(out.endsWith('done\n'));
  });

  test('a declared value kjx does not give is refused, naming it', () => {
    assert.throws(
      () => renderSh(readShFile(file(GREETER)), { KJX_WHO: 'x' }),
      internal(/no value for KJX_TIMES/),
    );
  });

  test('a value the file does not declare is refused, naming it', () => {
    assert.throws(
      () => renderSh(readShFile(file(GREETER)), { KJX_WHO: 'x', KJX_TIMES: 1, KJX_LOUD: '1' }),
      internal(/does not declare KJX_LOUD/),
    );
    assert.throws(
      () => renderSh(readShFile(file(GREETER)), { KJX_WHO: 'x', KJX_TIMES: 1, KJX_EXTRA: 'y' }),
      internal(/does not declare KJX_EXTRA/),
    );
  });

  test('an empty value is a value (an option that is off); a number must be finite', () => {
    assert.match(renderSh(readShFile(file(GREETER)), { KJX_WHO: '', KJX_TIMES: 0 }), /^KJX_WHO=''$/m);
    assert.throws(
      () => renderSh(readShFile(file(GREETER)), { KJX_WHO: 'x', KJX_TIMES: Number.NaN }),
      internal(/KJX_TIMES is NaN/),
    );
  });

  test('a body that uses a name it does not declare or assign is found; so is an input nobody uses', () => {
    assert.deepEqual(declarationProblems(readShFile(file(GREETER))), []);
    const bad = readShFile(
      file(
        `#!/bin/sh\n# @value KJX_A  a\n# @input KJX_GONE  unused\nKJX_OWN=1\necho "$KJX_A $KJX_OWN \${KJX_B:-x}"\n`,
        'bad.sh',
      ),
    );
    assert.deepEqual(declarationProblems(bad), [
      'bad.sh: uses KJX_B, which it does not declare (# @value or # @input) or assign',
      'bad.sh: declares the input KJX_GONE, which its body never uses',
    ]);
  });

  test('declarations are KJX_ names in capitals, each once', () => {
    assert.throws(
      () => readShFile(file('#!/bin/sh\n# @value kjx_low  x\ntrue\n')),
      internal(/not a KJX_ name/),
    );
    assert.throws(() => readShFile(file('#!/bin/sh\n# @value PATH  x\ntrue\n')), internal(/not a KJX_ name/));
    assert.throws(
      () => readShFile(file('#!/bin/sh\n# @value KJX_A  x\n# @input KJX_A  y\ntrue\n')),
      internal(/declares KJX_A twice/),
    );
  });

  test('a missing file, or one without a final newline, is an internal error that says how to get it', () => {
    assert.throws(
      () => readShFile(join(dir, 'nope.sh')),
      (e: unknown) =>
        internal(/nope\.sh: cannot be read \(ENOENT\)/)(e) &&
        /npm run build/.test((e as KjxError).hint ?? ''),
    );
    assert.throws(() => readShFile(file('#!/bin/sh\ntrue')), internal(/newline/));
  });

  test('an include puts the other file’s body in its place; its declarations join', () => {
    file(
      '# shared functions\n# @value KJX_GREETING  what to say\n\ngreet() { echo "$KJX_GREETING $1"; }\n',
      'part.sh',
    );
    const f = readShFile(
      file('#!/bin/sh\n# uses part\n# @value KJX_WHO  who\n# kjx:include part.sh\ngreet "$KJX_WHO"\n'),
    );
    assert.deepEqual([...f.values.keys()], ['KJX_WHO']);
    const g = readShFile(
      file('#!/bin/sh\n# uses part\n# @value KJX_WHO  who\n\n# kjx:include part.sh\ngreet "$KJX_WHO"\n'),
    );
    assert.deepEqual([...g.values.keys()], ['KJX_WHO', 'KJX_GREETING']);
    assert.deepEqual(declarationProblems(g), []);
    const out = renderSh(g, { KJX_WHO: 'you', KJX_GREETING: 'hi' });
    assert.doesNotMatch(out, /shared functions/, "the included file's head stays out");
    assert.match(out, /^greet\(\) \{/m);
    file('# a\n\n# kjx:include loop-b.sh\n', 'loop-a.sh');
    file('# b\n\n# kjx:include loop-a.sh\n', 'loop-b.sh');
    assert.throws(() => readShFile(join(dir, 'loop-a.sh')), internal(/in a loop/));
  });

  test('compact leaves out the head and comment lines, and refuses a here-document', () => {
    const out = renderSh(
      readShFile(file(`${GREETER}# the end\n`)),
      { KJX_WHO: 'x', KJX_TIMES: 1 },
      { compact: true },
    );
    assert.equal(out.split('\n')[0], 'KJX_WHO=x');
    assert.doesNotMatch(out, /^\s*#/m);
    assert.throws(
      () => renderSh(readShFile(file('#!/bin/sh\ncat <<EOF\n# data\nEOF\n')), {}, { compact: true }),
      internal(/here-document/),
    );
  });

  test('plain words are checked; shell words quote anything', () => {
    assert.equal(plainWords(['a', 'b.log', 'c-d'], 'names'), 'a b.log c-d');
    assert.throws(() => plainWords(['a b'], 'names'), internal(/names: "a b" is not a plain word/));
    assert.throws(() => plainWords(['*'], 'names'), internal(/not a plain word/));
    assert.equal(shWords(['a', "it's", '']), "a 'it'\\''s' ''");
  });

  test('any value and any argv reach busybox sh exactly as given', { skip: skipBusybox }, () => {
    const echo = readShFile(
      file(
        '#!/bin/sh\n# prints its values\n# @value KJX_V  a value\n# @value KJX_ARGV  shell words\nprintf "%s\\0" "$KJX_V"\neval "set -- $KJX_ARGV"\nfor a; do printf "%s\\0" "$a"; done\n',
      ),
    );
    const text = fc.string({ unit: 'binary' }).map((s) => s.replace(/\0/g, ''));
    fc.assert(
      fc.property(text, fc.array(text, { maxLength: 4 }), (v, argv) => {
        const r = busyboxSh(['-c', renderSh(echo, { KJX_V: v, KJX_ARGV: shWords(argv) })], {
          encoding: 'utf8',
        });
        assert.equal(r.status, 0, r.stderr);
        assert.deepEqual(r.stdout.split('\0').slice(0, -1), [v, ...argv]);
      }),
      { numRuns: 40 },
    );
  });
});

/** Some of the files, so a search that finds none cannot pass. */
const KNOWN = [
  'guest/sh/sv.sh',
  'guest/sh/stage1.sh',
  'components/sh/check-lib.sh',
  'trace/sh/trace-driver.sh',
  'bpf/sh/kjx-prog.sh',
];

/** Every .sh file under src/. */
function shFiles(d: string = SRC): string[] {
  return readdirSync(d, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? shFiles(join(d, e.name)) : e.name.endsWith('.sh') ? [join(d, e.name)] : [],
  );
}

/** Every shell file a module reads: `new URL('./sh/NAME.sh', import.meta.url)`, as paths under src/. */
function readByModules(d: string = SRC): string[] {
  return readdirSync(d, { withFileTypes: true }).flatMap((e) => {
    const p = join(d, e.name);
    if (e.isDirectory()) return readByModules(p);
    if (!e.name.endsWith('.ts')) return [];
    return [...readFileSync(p, 'utf8').matchAll(/new URL\('(\.\/sh\/[^']+\.sh)', import\.meta\.url\)/g)].map(
      (m) => relative(SRC, join(dirname(p), m[1]!)),
    );
  });
}

describe("kjx's shell files", () => {
  test('each declares every KJX_ name it uses (or assigns it), and uses every input it declares', () => {
    const files = shFiles();
    for (const name of KNOWN) assert.ok(files.includes(join(SRC, name)), name);
    for (const f of files) assert.deepEqual(declarationProblems(readShFile(f)), [], f);
  });

  test('each one a module reads exists, and `npm run build` copies it to where the compiled module reads it', () => {
    const read = readByModules();
    for (const name of KNOWN) assert.ok(read.includes(name), `${name} is read by a module`);
    for (const p of read) assert.ok(existsSync(join(SRC, p)), `src/${p}`);
    const out = mkdtempSync(join(tmpdir(), 'kjx-build-sh-'));
    try {
      const r = spawnSync(process.execPath, ['--import', 'tsx', join(REPO, 'scripts', 'copy-sh.ts'), out], {
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, r.stderr);
      for (const p of read)
        assert.equal(readFileSync(join(out, p), 'utf8'), readFileSync(join(SRC, p), 'utf8'), p);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
    assert.ok(pkg.files.includes('build'), 'the package ships build/');
    assert.match(pkg.scripts.build, /scripts\/copy-sh\.ts/);
  });

  test('every script kjx renders from them parses under busybox sh', { skip: skipBusybox }, () => {
    const spec = parseSpec(
      'tasks: [{name: t, run: "true"}]\nsysctls: {vm.swappiness: 10}\n',
      '/srv/kjx.yaml',
    );
    const tools = {
      components: ['ftrace', 'libbpf-tools', 'bpftrace'],
      libbpfTools: ['runqlat', 'offcputime'],
    };
    const scripts: [string, string][] = [
      ['sv.sh', serviceLib()],
      ['ready-poll', readyPollScript()],
      ['boot-ready', bootReadyScript({ buildId: 'b', services: ['a', 'b'], timeout: 3 })],
      ['stage 1', stage1Script({ spec, services: ['a'], superviseDirs: [], interactive: ['a'] })],
      ['stage 2', stage2Script()],
      ['stage 3', stage3Script([['a'], ['b', 'c']])],
      ['udhcpc', udhcpcScript()],
      ['switch-root', rootSwitchScript()],
      ['run-hook', runHook()],
      ['check runner', checkRunnerArgv(['x'])[2]!],
      ['check lib', checkLib()],
      ['kjx-ftrace', ftraceHelperScript()],
      ['kjx-bpf-ready', bpfReadyScript()],
      ['kjx-prog', progRunnerScript(['execs', 'top'])],
      ...(['runqlat', 'funccount', 'offcpu', 'exec', 'bpftrace', 'service'] as const).map(
        (tracer) =>
          [
            `driver ${tracer}`,
            traceDriverScript(
              planTracer({ tracer, arg: tracer === 'service' ? 'svc' : 'vfs_*', program: 'BEGIN {}' }, tools),
              { workload: ['true'], durationS: 1 },
            ),
          ] as [string, string],
      ),
    ];
    for (const [name, text] of scripts) {
      const r = busyboxParses(text);
      assert.ok(r.ok, `${name}: ${r.error}`);
    }
  });
});
