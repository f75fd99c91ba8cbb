/**
 * Container runtime components and the component hooks: what the spec expands
 * to, which services `needs` may name, the kernel modules they ask for, the
 * build-time choice of containerd's snapshotter (overlay or native, never a
 * failure at `ctr run`), the pivotable root in /init, and the check runner.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { GuestContext } from '../../src/components/component.js';
import {
  CHECK_APPLETS,
  CHECK_LIB,
  CHECK_ROOTFS,
  checkLib,
  checkRootfs,
} from '../../src/components/container-common.js';
import { containerdConfig } from '../../src/components/containerd.js';
import { crun } from '../../src/components/crun.js';
import { gvisor } from '../../src/components/gvisor.js';
import { COMPONENTS as REGISTRY } from '../../src/components/index.js';
import { runc } from '../../src/components/runc.js';
import {
  CHECK_DIR,
  CHECK_PREP_DIR,
  CHECK_PREPARED,
  checkPrepareScript,
  checkRunnerArgv,
  checkRunnerValues,
  checksOf,
  parseCheckOutput,
  preparationsFor,
  preparedOf,
  refuseBadCheckNames,
} from '../../src/guest/checks.js';
import { initScript, stage1Script } from '../../src/guest/stages.js';
import {
  appendStage1,
  componentGuest,
  componentModules,
  defaultMemoryMiB,
  explainModuleError,
  planComponents,
} from '../../src/plan/components.js';
import { type FileEntry, mk, newTree, type Tree } from '../../src/rootfs/tree.js';
import { kernelFromLocal, NO_MODULES_DIR } from '../../src/sources/kernel.js';
import { parseSpec } from '../../src/spec/load.js';
import { KjxError, type Warning } from '../../src/util/errors.js';
import { busyboxParses, busyboxSh, needsBusybox } from '../helpers/busybox.js';
import { assertKjxError } from '../helpers/kjx-error.js';

const spec = (text: string) => parseSpec(text, '/srv/kjx.yaml');
/** The spec as the image has it: what the components bring along, the rules that involve them checked. */
const planned = (text: string) => planComponents(spec(text)).spec;
const skipBusybox = needsBusybox();
const shParses = (text: string) => busyboxParses(text).ok;

/** A base tree with what the check image is made of (a fake busybox). */
function baseTree(): Tree {
  const t = newTree();
  const src = { kind: 'generated', by: 'test' } as const;
  t.set(
    `${CHECK_ROOTFS}/bin/busybox`,
    mk.file(`${CHECK_ROOTFS}/bin/busybox`, 'not really busybox', src, 0o755),
  );
  t.set(`${CHECK_ROOTFS}/bin/sh`, mk.symlink(`${CHECK_ROOTFS}/bin/sh`, 'busybox', src));
  return t;
}

function ctxFor(text: string, kernelModules: string[], warnings: Warning[] = []): GuestContext {
  return {
    spec: spec(text),
    epoch: 1704067200,
    kernel: { modules: kernelModules, builtin: [] },
    base: baseTree(),
    warn: (w) => warnings.push(w),
  };
}

const text = (t: Tree, path: string) => (t.get(path) as FileEntry | undefined)?.data.toString('utf8');

describe('runtime components in the spec', () => {
  test('docker brings containerd and runc, podman brings crun', () => {
    assert.deepEqual(planned('components: [busybox, runit, docker]\n').components, [
      'busybox',
      'runit',
      'docker',
      'containerd',
      'runc',
    ]);
    assert.deepEqual(planned('components: [busybox, runit, podman]\n').components, [
      'busybox',
      'runit',
      'podman',
      'crun',
    ]);
  });

  test('user services may need containerd and docker when the components are there', () => {
    const s = planned(
      'components: [busybox, runit, docker]\nservices:\n  app: {run: app, needs: [docker, containerd]}\n',
    );
    assert.deepEqual(s.services.app?.needs, ['docker', 'containerd']);
  });

  test('needs: [containerd] without the component is an error naming the known services', () => {
    assert.throws(
      () => planned('services:\n  app: {run: app, needs: [containerd]}\n'),
      (e: KjxError) => /unknown service "containerd"/.test([e.message, ...e.details].join('\n')),
    );
  });

  test('a spec service may not take the name of a component service', () => {
    assert.throws(
      () => planned('components: [busybox, runit, containerd]\nservices:\n  containerd: {run: mine}\n'),
      (e: KjxError) => /service of the containerd component/.test([e.message, ...e.details].join('\n')),
    );
  });

  test('needs may name the service of every built-in component that runs one', () => {
    for (const [name, c] of Object.entries(REGISTRY)) {
      const names = (c.services?.(spec('{}\n')) ?? []).map((s) => s.name);
      if (names.length === 0) continue;
      const s = planned(
        `components: [busybox, runit, ${name}]\nservices:\n  app: {run: app, needs: [${names}]}\n`,
      );
      assert.deepEqual(s.services.app?.needs, names, name);
    }
  });
});

describe('component hooks', () => {
  test('kernel modules: overlay is optional, bridge networking required', () => {
    const m = componentModules(spec('components: [busybox, runit, docker]\n'));
    assert.deepEqual(m.optional, ['overlay']);
    for (const name of ['bridge', 'veth', 'br_netfilter', 'nf_tables', 'xt_MASQUERADE'])
      assert.ok(m.required.includes(name), name);
    assert.deepEqual(m.askedBy.get('overlay'), ['docker', 'containerd']);
    assert.deepEqual(componentModules(spec('{}\n')), { required: [], optional: [], askedBy: new Map() });
  });

  test('a missing module is reported with the component that needs it', () => {
    const s = spec('components: [busybox, runit, podman]\n');
    const e = explainModuleError(
      new KjxError('MODULE_MISSING', 'kernel module "veth" is not in linux-image-x 6.1'),
      s,
    ) as KjxError;
    assert.match(e.message, /the podman component needs kernel module "veth"/);
    assert.ok(e.hint);
    const other = new KjxError('MODULE_MISSING', 'kernel module "virtio_foo" is not in x');
    assert.equal(explainModuleError(other, s), other);
  });

  test('a host kernel without modulesDir: the error names the component and its modules', () => {
    const s = spec('kernel: {image: ./bzImage, modules: []}\ncomponents: [busybox, runit, docker]\n');
    const m = componentModules(s);
    let e: unknown;
    try {
      kernelFromLocal(Buffer.from('bzImage'), undefined, undefined, m.required, m.optional);
    } catch (x) {
      e = explainModuleError(x, s);
    }
    assertKjxError(
      e,
      'MODULE_MISSING',
      /^the docker component needs kernel modules \(bridge, .*veth.*\), but kernel\.image has no kernel\.modulesDir/,
    );
  });

  test('the no-modulesDir case is told by the error reason, not by its wording', () => {
    const s = spec('kernel: {image: ./bzImage, modules: []}\ncomponents: [busybox, runit, docker]\n');
    const reworded = new KjxError('MODULE_MISSING', 'no modules directory for veth', {
      reason: NO_MODULES_DIR,
    });
    assert.match(
      (explainModuleError(reworded, s) as KjxError).message,
      /kernel\.image has no kernel\.modulesDir/,
    );
    const lookalike = new KjxError('MODULE_MISSING', 'kernel.modulesDir is not set, and nf_foo is missing');
    assert.doesNotMatch((explainModuleError(lookalike, s) as KjxError).message, /has no kernel\.modulesDir/);
  });

  test('runtimes make the root pivotable and want more memory; the default image does not', () => {
    assert.equal(componentGuest(ctxFor('{}\n', [])).pivotRoot, false);
    assert.equal(defaultMemoryMiB(spec('{}\n')), 512);
    assert.equal(componentGuest(ctxFor('components: [busybox, runit, runc]\n', [])).pivotRoot, true);
    assert.equal(defaultMemoryMiB(spec('components: [busybox, runit, runc]\n')), 1024);
    assert.equal(defaultMemoryMiB(spec('components: [busybox, runit, docker]\n')), 2048);
  });

  test('the default spec gets nothing from components (its image stays byte-identical)', () => {
    const g = componentGuest(ctxFor('{}\n', []));
    assert.deepEqual(g, { services: [], stage1: [], files: new Map(), pivotRoot: false });
  });
});

describe('containerd without the overlay module', () => {
  test('uses the native snapshotter, says so at build time, and its check passes --snapshotter', () => {
    const warnings: Warning[] = [];
    const g = componentGuest(ctxFor('components: [busybox, runit, containerd]\n', [], warnings));
    assert.match(text(g.files, '/etc/kjx/containerd.env') ?? '', /CONTAINERD_SNAPSHOTTER=native/);
    assert.match(text(g.files, '/etc/containerd/config.toml') ?? '', /snapshotter, from .*: native/);
    assert.deepEqual(
      warnings.map((w) => w.code),
      ['CONTAINERD_NATIVE'],
    );
    const check = text(g.files, '/usr/lib/kjx/checks/containerd') ?? '';
    assert.match(check, /ctr run --rm --snapshotter "\$CONTAINERD_SNAPSHOTTER"/);
    // the import is the check's preparation: kjx test runs it before ready (a snapshot holds it)
    const prep = text(g.files, '/usr/lib/kjx/check-prep/containerd') ?? '';
    assert.match(prep, /ctr images import --snapshotter "\$CONTAINERD_SNAPSHOTTER"/);
    assert.doesNotMatch(check, /images import/);
    assert.deepEqual(
      g.services.map((s) => s.name),
      ['containerd'],
    );
    assert.ok(g.pivotRoot);
  });

  test('uses overlayfs when the kernel has overlay, with no warning', () => {
    const warnings: Warning[] = [];
    const g = componentGuest(ctxFor('components: [busybox, runit, containerd]\n', ['overlay'], warnings));
    assert.match(text(g.files, '/etc/kjx/containerd.env') ?? '', /CONTAINERD_SNAPSHOTTER=overlayfs/);
    assert.deepEqual(warnings, []);
  });

  test('a host kernel without modulesDir builds: overlay is optional, so nothing is required', () => {
    const m = componentModules(
      spec('kernel: {image: ./bzImage, modules: []}\ncomponents: [busybox, runit, containerd]\n'),
    );
    assert.deepEqual(m.required, []);
    const k = kernelFromLocal(Buffer.from('bzImage'), undefined, undefined, m.required, m.optional);
    assert.deepEqual([k.order, k.builtin], [[], []]);
  });

  test('a kernel.image without modulesDir: the warnings say kjx cannot tell, and suggest kernel.modulesDir', () => {
    const warnings: Warning[] = [];
    componentGuest(
      ctxFor(
        'kernel: {image: ./bzImage, modules: []}\ncomponents: [busybox, runit, containerd, podman]\n',
        [],
        warnings,
      ),
    );
    assert.deepEqual(warnings.map((w) => w.code).sort(), ['CONTAINERD_NATIVE', 'PODMAN_VFS']);
    for (const w of warnings) {
      assert.match(w.message, /cannot tell whether the kernel given by kernel\.image has overlay/, w.code);
      assert.match(w.message, /give kernel\.modulesDir/, w.code);
      assert.doesNotMatch(w.message, /has no overlay module/, w.code);
    }
    const own: Warning[] = [];
    componentGuest(ctxFor('components: [busybox, runit, containerd, podman]\n', [], own));
    for (const w of own)
      assert.match(w.message, /the kernel has no overlay module.*add overlay to the kernel/, w.code);
  });

  test('podman and docker fall back to vfs storage', () => {
    const g = componentGuest(ctxFor('components: [busybox, runit, podman, docker]\n', []));
    assert.match(text(g.files, '/etc/containers/storage.conf') ?? '', /driver = "vfs"/);
    assert.equal(JSON.parse(text(g.files, '/etc/docker/daemon.json') ?? '{}')['storage-driver'], 'vfs');
    const o = componentGuest(ctxFor('components: [busybox, runit, podman, docker]\n', ['overlay']));
    assert.match(text(o.files, '/etc/containers/storage.conf') ?? '', /driver = "overlay"/);
    assert.equal(JSON.parse(text(o.files, '/etc/docker/daemon.json') ?? '{}')['storage-driver'], 'overlay2');
  });

  test('containerd config turns off the CRI plugin', () => {
    assert.match(containerdConfig('overlayfs'), /"io\.containerd\.grpc\.v1\.cri"/);
  });
});

describe('generated scripts', () => {
  test('/init binds the root over itself only with pivotRoot, and parses as sh', {
    skip: skipBusybox,
  }, () => {
    assert.equal(initScript(), initScript({ pivotRoot: false }));
    assert.doesNotMatch(initScript(), /mount --bind|mount --move|chroot/);
    const p = initScript({ pivotRoot: true });
    assert.match(
      p,
      /mount --bind \/ \/run && cd \/run && mount --move \. \/ && exec chroot \. \/init kjx-root-bound/,
    );
    // sysfs for the boot nonce is mounted in the root /init ends up in, not the one it leaves
    assert.ok(p.indexOf('exec chroot') < p.indexOf('mount -t sysfs'));
    assert.ok(shParses(p));
  });

  test('stage 1 lines of components: duplicates dropped, no header over nothing', () => {
    const s1: string[] = [];
    appendStage1(s1, 'podman', ['mkdir -p /var/tmp', 'echo 1 >/proc/sys/net/ipv4/ip_forward']);
    appendStage1(s1, 'docker', ['echo 1 >/proc/sys/net/ipv4/ip_forward']);
    appendStage1(s1, 'other', ['x', 'x', 'mkdir -p /var/tmp', 'y']);
    appendStage1(s1, 'none', []);
    assert.deepEqual(s1, [
      '# podman',
      'mkdir -p /var/tmp',
      'echo 1 >/proc/sys/net/ipv4/ip_forward',
      '# other',
      'x',
      'y',
    ]);
    const g = componentGuest(ctxFor('components: [busybox, runit, podman, docker]\n', ['overlay']));
    assert.equal(g.stage1.filter((l) => l === 'echo 1 >/proc/sys/net/ipv4/ip_forward').length, 1);
  });

  test('stage 1 runs component lines after networking, before tasks', () => {
    const s = spec('tasks: [{name: t, run: "true"}]\n');
    const out = stage1Script({ spec: s, services: [], superviseDirs: [], extra: ['echo component-line'] });
    assert.ok(out.indexOf('component-line') > out.indexOf('ip link set lo up'));
    assert.ok(out.indexOf('component-line') < out.indexOf('kjx_task t'));
    assert.equal(
      stage1Script({ spec: s, services: [], superviseDirs: [] }).includes('components need'),
      false,
    );
  });

  test('every check and stage-1 line of the runtimes parses as sh', { skip: skipBusybox }, () => {
    const g = componentGuest(
      ctxFor('components: [busybox, runit, runc, crun, gvisor, containerd, podman, docker]\n', ['overlay']),
    );
    assert.ok(shParses(g.stage1.join('\n')));
    const checks = [...g.files.values()].filter((e) => e.path.startsWith('/usr/lib/kjx/checks/'));
    assert.deepEqual(checks.map((e) => e.path.slice('/usr/lib/kjx/checks/'.length)).sort(), [
      'containerd',
      'docker',
      'docker-bridge',
      'gvisor-containerd',
      'gvisor-docker',
      'podman',
      'podman-bridge',
    ]);
    for (const c of checks) assert.ok(shParses((c as FileEntry).data.toString()), c.path);
    // the library and the low-level checks are made in the base stage (assemble), not by files()
    const src = { kind: 'generated', by: 'test' } as const;
    const staged = (): Tree => {
      const t = newTree();
      for (const p of ['/bin/busybox', '/usr/sbin/runc', '/usr/bin/crun', '/usr/bin/runsc'])
        t.set(p, mk.file(p, 'binary', src, 0o755));
      return t;
    };
    const s = spec('components: [busybox, runit, runc, crun, gvisor]\n');
    const base = new Map<string, string>();
    for (const c of [runc, crun, gvisor])
      for (const e of c.assemble({ spec: s, staged, warn: () => {} }).values())
        if (e.type === 'file' && (e.path.startsWith(`${CHECK_DIR}/`) || e.path === CHECK_LIB))
          base.set(e.path, e.data.toString());
    assert.deepEqual([...base.keys()].sort(), [
      CHECK_LIB,
      `${CHECK_DIR}/crun`,
      `${CHECK_DIR}/gvisor`,
      `${CHECK_DIR}/runc`,
    ]);
    assert.equal(base.get(CHECK_LIB), checkLib());
    for (const [path, text] of base) assert.ok(shParses(text), path);
  });
});

describe('the check library, run by busybox sh', { skip: skipBusybox }, () => {
  const lib = checkLib();
  const run = (body: string) =>
    busyboxSh(['-c', `${lib}\n${body}`], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });

  test('kjx_bundle writes the OCI config of the read-only check root, running the marker command', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kjx-bundle-'));
    try {
      const r = run(`kjx_bundle ${dir}/b`);
      assert.equal(r.status, 0, r.stderr);
      const config = JSON.parse(readFileSync(join(dir, 'b', 'config.json'), 'utf8'));
      assert.equal(config.ociVersion, '1.0.2');
      assert.deepEqual(config.root, { path: CHECK_ROOTFS, readonly: true });
      assert.deepEqual(config.process.args, ['/bin/sh', '-c', 'echo kjx-check-marker; exit 42']);
      assert.deepEqual(
        config.linux.namespaces.map((n: { type: string }) => n.type),
        ['pid', 'ipc', 'uts', 'mount', 'network'],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('kjx_expect passes when the marker and the status come back, and says what did not', () => {
    const ok = run('kjx_expect sh -c "$KJX_CMD"');
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(
      ok.stdout,
      /^kjx-check-marker\nkjx-check: ok: marker and status 42 came back \(container run t0=[0-9.]+ t1=[0-9.]+\)\n$/,
    );
    const status = run('kjx_expect sh -c "echo $KJX_MARKER; exit 3"');
    assert.equal(status.status, 1);
    assert.match(status.stdout, /FAIL: status 3, the container exited 42/);
    const marker = run('kjx_expect sh -c "exit 42"');
    assert.equal(marker.status, 1);
    assert.match(marker.stdout, /FAIL: the marker kjx-check-marker did not come back \(status 42\)/);
  });
});

describe('the check root', () => {
  test('links every applet the checks run inside their containers (grep of the bridge checks too)', () => {
    const g = componentGuest(
      ctxFor('components: [busybox, runit, runc, crun, gvisor, containerd, podman, docker]\n', ['overlay']),
    );
    const inContainer = [...g.files.values()]
      .filter((e): e is FileEntry => e.type === 'file' && e.path.startsWith(`${CHECK_DIR}/`))
      .flatMap((e) => [...e.data.toString().matchAll(/ sh -c "([^"]*)"/g)].map((m) => m[1]!));
    assert.ok(
      inContainer.some((c) => c.includes('grep inet')),
      'the bridge checks are seen',
    );
    const commands = new Set(
      inContainer.flatMap((c) => c.split(/\|\|?|&&|;/).map((part) => part.trim().split(/\s+/)[0]!)),
    );
    commands.delete('$KJX_CMD'); // echo and exit, see checkLib
    for (const c of commands) assert.ok(CHECK_APPLETS.includes(c), `${c} is linked in the check root`);
    assert.ok(CHECK_APPLETS.includes('echo'));
  });

  test('a busybox-static without /bin/busybox says the package layout changed', () => {
    const s = spec('components: [busybox, runit, runc]\n');
    assert.throws(() => checkRootfs({ spec: s, staged: () => newTree(), warn: () => {} }), {
      code: 'TREE_INVALID',
      message: /busybox-static has no regular file \/bin\/busybox/,
      hint: /package layout changed/,
    });
  });
});

describe('the check runner', () => {
  test('lists executable files directly in the checks directory', () => {
    const f = (path: string, mode = '0755', type = 'file') => ({ path, mode, type });
    assert.deepEqual(
      checksOf([
        f('/usr/lib/kjx/checks/runc'),
        f('/usr/lib/kjx/checks/docker'),
        f('/usr/lib/kjx/checks/README', '0644'),
        f('/usr/lib/kjx/checks/sub/x'),
        f('/usr/lib/kjx/checks/dir', '0755', 'dir'),
      ]),
      ['docker', 'runc'],
    );
  });

  test('parses begin/end lines, output and status; a check that never ended fails', () => {
    const out = [
      '@@check begin name=runc',
      '| kjx-check-marker',
      '| kjx-check: ok',
      '@@check end name=runc status=0 t0=10.50 t1=11.25',
      '@@check begin name=docker',
      '| boom',
      '@@check end name=docker status=1 t0=11.25 t1=20.00',
      '@@check begin name=podman',
      '| hanging',
    ].join('\n');
    const [runc, docker, podman] = parseCheckOutput(out, ['runc', 'docker', 'podman']);
    assert.deepEqual(runc, {
      name: 'runc',
      pass: true,
      status: 0,
      startedAt: 10.5,
      seconds: 0.75,
      output: ['kjx-check-marker', 'kjx-check: ok'],
    });
    assert.equal(docker?.pass, false);
    assert.equal(docker?.status, 1);
    assert.deepEqual(podman, { name: 'podman', pass: false, output: ['hanging'] });
  });

  test('the runner parses as sh', { skip: skipBusybox }, () => {
    const [, , script] = checkRunnerArgv(['runc']);
    assert.ok(shParses(script ?? ''));
  });

  test('the runner prints a last output line that has no newline', { skip: skipBusybox }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'kjx-checks-'));
    try {
      writeFileSync(join(dir, 'half'), '#!/bin/sh\necho first\nprintf "no newline"\nexit 3\n', {
        mode: 0o755,
      });
      assert.equal(checkRunnerArgv(['half'])[0], '/bin/sh');
      const [, c, script, ...args] = checkRunnerArgv(['half'], {
        ...checkRunnerValues(),
        KJX_CHECK_DIR: dir,
        KJX_CHECK_OUT: join(dir, 'out'),
      });
      const r = busyboxSh([c!, script!, ...args], { encoding: 'utf8' });
      const [half] = parseCheckOutput(r.stdout, ['half']);
      assert.deepEqual([half?.status, half?.output], [3, ['first', 'no newline']], r.stdout + r.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a check prepared before ready skips its preparation; one not prepared runs it first, and a failed one fails the check', {
    skip: skipBusybox,
  }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'kjx-checks-'));
    try {
      const [checks, preps, prepared] = [
        join(dir, 'checks'),
        join(dir, 'prep'),
        join(dir, 'prepared'),
      ] as const;
      for (const d of [checks, preps, prepared]) mkdirSync(d);
      const sh = (path: string, body: string) => writeFileSync(path, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
      for (const c of ['ready', 'inline', 'broken', 'plain']) sh(join(checks, c), `echo check ${c} ran`);
      sh(join(preps, 'ready'), 'echo this preparation already ran; exit 9');
      sh(join(preps, 'inline'), 'echo preparing inline');
      sh(join(preps, 'broken'), 'echo cannot load; exit 5');
      writeFileSync(join(prepared, 'ready'), 't0=1.25 t1=3.50\n');
      const [, c, script, ...args] = checkRunnerArgv(['ready', 'inline', 'broken', 'plain'], {
        ...checkRunnerValues(),
        KJX_CHECK_DIR: checks,
        KJX_CHECK_PREP_DIR: preps,
        KJX_CHECK_PREPARED: prepared,
        KJX_CHECK_OUT: join(dir, 'out'),
      });
      const r = busyboxSh([c!, script!, ...args], { encoding: 'utf8' });
      const got = parseCheckOutput(r.stdout, ['ready', 'inline', 'broken', 'plain']).map((x) => [
        x.name,
        x.status,
        x.output,
      ]);
      assert.deepEqual(
        got,
        [
          ['ready', 0, ['kjx-test: prepared before ready (t0=1.25 t1=3.50)', 'check ready ran']],
          ['inline', 0, ['preparing inline', 'check inline ran']],
          ['broken', 5, ['cannot load']],
          ['plain', 0, ['check plain ran']],
        ],
        r.stdout + r.stderr,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the run hook's preparation marks the preparations that succeeded and keeps every log", {
    skip: skipBusybox,
  }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'kjx-prepare-'));
    try {
      const preps = join(dir, 'prep');
      const prepared = join(dir, 'run', 'prepared');
      mkdirSync(preps);
      writeFileSync(join(preps, 'good'), '#!/bin/sh\necho loaded\n', { mode: 0o755 });
      writeFileSync(join(preps, 'bad'), '#!/bin/sh\necho no space >&2\nexit 1\n', { mode: 0o755 });
      const script = checkPrepareScript(['good', 'bad'])
        .replaceAll(CHECK_PREP_DIR, preps)
        .replaceAll(CHECK_PREPARED, prepared);
      assert.ok(shParses(script));
      const r = busyboxSh(['-c', script], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(readdirSync(prepared).sort(), ['bad.log', 'good', 'good.log']);
      assert.equal(readFileSync(join(prepared, 'good.log'), 'utf8'), 'loaded\n');
      // when it ran, for the check's report (and the runtimes bench's import time)
      assert.match(readFileSync(join(prepared, 'good'), 'utf8'), /^t0=[0-9.]+ t1=[0-9.]+\n$/);
      assert.equal(readFileSync(join(prepared, 'bad.log'), 'utf8'), 'no space\n');
      assert.throws(() => checkPrepareScript(['a b']), /not a check name/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the runtimes' image loads are preparations, listed for the checks asked that have one", () => {
    const g = componentGuest(
      ctxFor('components: [busybox, runit, runc, crun, gvisor, containerd, podman, docker]\n', ['overlay']),
    );
    const prepOf = (name: string) => text(g.files, `${CHECK_PREP_DIR}/${name}`);
    for (const [name, load] of [
      ['docker', 'docker load'],
      ['docker-bridge', 'docker load'],
      ['podman', 'podman load'],
      ['containerd', 'ctr images import'],
    ] as const) {
      assert.match(prepOf(name) ?? '', new RegExp(`kjx_step ${load}`), name);
      assert.doesNotMatch(text(g.files, `${CHECK_DIR}/${name}`) ?? '', new RegExp(load), name);
    }
    assert.equal(prepOf('runc'), undefined, 'a bundle in /tmp is the check itself');
    const manifest = [...g.files.values()].map((e) => ({
      path: e.path,
      type: e.type,
      mode: e.mode.toString(8).padStart(4, '0'),
    }));
    assert.deepEqual(preparedOf(manifest, ['runc', 'podman', 'docker']), ['podman', 'docker']);
    // a kjx test VM with snapshots prepares every check that has a preparation, else the asked ones
    const asked = ['runc', 'docker'];
    assert.deepEqual(preparationsFor(manifest, asked, false), ['docker']);
    assert.deepEqual(preparationsFor(manifest, asked, true), [
      'containerd',
      'docker',
      'docker-bridge',
      'gvisor-containerd',
      'gvisor-docker',
      'podman',
      'podman-bridge',
    ]);
  });

  test('check names kjx test cannot pass are refused at build time, and not listed', () => {
    const input = { kind: 'input', ref: 'checks/my check' } as const;
    const t = newTree();
    t.set(`${CHECK_DIR}/ok-1.x_y`, mk.file(`${CHECK_DIR}/ok-1.x_y`, '#!/bin/sh\n', input, 0o755));
    t.set(`${CHECK_DIR}/notes here`, mk.file(`${CHECK_DIR}/notes here`, 'not run\n', input, 0o644));
    refuseBadCheckNames(t);
    t.set(`${CHECK_DIR}/my check`, mk.file(`${CHECK_DIR}/my check`, '#!/bin/sh\n', input, 0o755));
    assert.throws(() => refuseBadCheckNames(t), {
      code: 'TREE_INVALID',
      message:
        /^check "\/usr\/lib\/kjx\/checks\/my check" \(files: checks\/my check\): a check name may only have letters/,
    });
    const f = (path: string) => ({ path, mode: '0755', type: 'file' });
    assert.deepEqual(checksOf([f(`${CHECK_DIR}/my check`), f(`${CHECK_DIR}/a=b`), f(`${CHECK_DIR}/runc`)]), [
      'runc',
    ]);
  });
});
