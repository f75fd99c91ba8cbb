/**
 * kjx.yaml problems must name file, line, column and field, and say what was
 * expected and what was found. Each malformed spec asserts the whole first line.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { COMPONENT_NAMES } from '../../src/components/index.js';
import { planComponents } from '../../src/plan/components.js';
import { loadSpec, parseSpec } from '../../src/spec/load.js';
import { defaultSpec } from '../../src/spec/schema.js';
import type { ErrorCode, KjxError } from '../../src/util/errors.js';
import { assertKjxError } from '../helpers/kjx-error.js';

/**
 * Parse `yaml` as kjx.yaml and plan its components (the rules that involve them
 * are the plan's), expecting a KjxError with `code`; returns it.
 */
function failure(yaml: string, code: ErrorCode): KjxError {
  try {
    planComponents(parseSpec(yaml, 'kjx.yaml'));
  } catch (e) {
    assertKjxError(e, code);
    return e;
  }
  assert.fail(`expected ${code}, but the spec parsed`);
}

/** The first problem is `message`, at `line:column`, and it is also the first detail. */
function assertProblem(yaml: string, code: ErrorCode, message: string): KjxError {
  const e = failure(yaml, code);
  assert.equal(e.message, message);
  const m = /^kjx\.yaml:(\d+):(\d+): /.exec(message);
  assert.ok(m, 'message starts with file:line:col');
  assert.deepEqual(e.position, { file: 'kjx.yaml', line: Number(m[1]), column: Number(m[2]) });
  assert.equal(e.details[0], message);
  assert.ok(e.hint);
  return e;
}

describe('YAML syntax errors (SPEC_SYNTAX)', () => {
  test('an unclosed quote points at where the string opens', () => {
    assertProblem(
      'name: kjx\nhostname: "kjx\ncompression: gzip\n',
      'SPEC_SYNTAX',
      'kjx.yaml:2:11: missing closing " for the string that starts here',
    );
  });

  test('tab indentation', () => {
    const e = assertProblem(
      'kernel:\n\tcmdline: x\n',
      'SPEC_SYNTAX',
      'kjx.yaml:2:1: tabs are not allowed as indentation',
    );
    assert.match(e.hint ?? '', /spaces/);
  });

  test('a badly indented key inside a mapping', () => {
    assertProblem(
      'kernel:\n  cmdline: x\n   modules: []\n',
      'SPEC_SYNTAX',
      'kjx.yaml:2:12: nested mappings are not allowed in compact mappings',
    );
  });

  test('a key given twice', () => {
    assertProblem('hostname: a\nhostname: b\n', 'SPEC_SYNTAX', 'kjx.yaml:2:1: map keys must be unique');
  });
});

describe('schema problems (SPEC_INVALID)', () => {
  test('wrong type: hostname: 42', () => {
    assertProblem(
      'hostname: 42\n',
      'SPEC_INVALID',
      'kjx.yaml:1:11: hostname: expected a string, got a number (42); put it in quotes to make it text',
    );
  });

  test('a list expected: packages: busybox', () => {
    assertProblem(
      'name: demo\npackages: busybox\n',
      'SPEC_INVALID',
      'kjx.yaml:2:11: packages: expected a list, got a string ("busybox")',
    );
  });

  test('unknown top-level key, with did-you-mean', () => {
    assertProblem(
      'name: demo\nhostnme: box\n',
      'SPEC_INVALID',
      'kjx.yaml:2:1: hostnme: unknown key "hostnme" (did you mean "hostname"?)',
    );
  });

  test('unknown nested key points at the key, with did-you-mean', () => {
    assertProblem(
      'kernel:\n  cmdlnie: console=ttyS0\n',
      'SPEC_INVALID',
      'kjx.yaml:2:3: kernel.cmdlnie: unknown key "cmdlnie" (did you mean "cmdline"?)',
    );
  });

  test('unknown key with no near match lists the allowed keys', () => {
    assertProblem(
      'files:\n  - path: /etc/motd\n    content: hi\n    colour: red\n',
      'SPEC_INVALID',
      'kjx.yaml:4:5: files[0].colour: unknown key "colour"; allowed here: path, type, content, from, target, mode, owner, override',
    );
  });

  test('bad enum: compression: lzma', () => {
    assertProblem(
      'compression: lzma\n',
      'SPEC_INVALID',
      'kjx.yaml:1:14: compression: expected one of gzip, zstd, xz, none, got "lzma"',
    );
  });

  test('relative guest path', () => {
    assertProblem(
      'files:\n  - path: etc/motd\n    content: hi\n',
      'SPEC_INVALID',
      'kjx.yaml:2:11: files[0].path: expected an absolute guest path starting with "/", got "etc/motd"',
    );
  });

  test('".." in a guest path', () => {
    assertProblem(
      'files:\n  - path: /etc/../root/.ssh/authorized_keys\n    content: hi\n',
      'SPEC_INVALID',
      'kjx.yaml:2:11: files[0].path: expected a guest path without ".." segments, got "/etc/../root/.ssh/authorized_keys"',
    );
  });

  test('the root itself as a guest path', () => {
    assertProblem(
      'files:\n  - {path: /, type: dir}\n',
      'SPEC_INVALID',
      'kjx.yaml:2:12: files[0].path: expected a path below "/" (the root itself cannot be replaced), got "/"',
    );
  });

  test('both content and from', () => {
    assertProblem(
      'files:\n  - path: /etc/motd\n    content: hi\n    from: ./motd\n',
      'SPEC_INVALID',
      'kjx.yaml:4:11: files[0].from: give either "content" or "from", not both',
    );
  });

  test('neither content nor from points at the entry', () => {
    assertProblem(
      'files:\n  - path: /etc/motd\n    mode: "0600"\n',
      'SPEC_INVALID',
      'kjx.yaml:2:5: files[0]: a file needs "content" or "from"',
    );
  });

  test('a symlink without target, a dir with content', () => {
    const e = assertProblem(
      'files:\n  - {path: /bin/sh, type: symlink}\n  - {path: /srv, type: dir, content: x}\n',
      'SPEC_INVALID',
      'kjx.yaml:2:5: files[0]: a symlink needs "target"',
    );
    assert.equal(e.details[1], 'kjx.yaml:3:38: files[1].content: a dir has no "content"');
  });

  test("bad mode: '0999'", () => {
    assertProblem(
      "files:\n  - path: /etc/motd\n    content: hi\n    mode: '0999'\n",
      'SPEC_INVALID',
      'kjx.yaml:4:11: files[0].mode: expected an octal mode like "0644" or "0755", got "0999"',
    );
  });

  test('bad mode written as a plain number is shown as written', () => {
    assertProblem(
      'files:\n  - path: /etc/motd\n    content: hi\n    mode: 0999\n',
      'SPEC_INVALID',
      'kjx.yaml:4:11: files[0].mode: expected an octal mode like "0644" or "0755", got "0999"',
    );
  });

  test('bad owner', () => {
    assertProblem(
      'files:\n  - {path: /a, content: x, owner: "Bad Owner"}\n',
      'SPEC_INVALID',
      'kjx.yaml:2:35: files[0].owner: expected an owner like "root", "0:0" or "1000:1000" (user[:group], names or numbers), got "Bad Owner"',
    );
  });

  test('the same guest path twice', () => {
    assertProblem(
      'files:\n  - {path: /etc/motd, content: a}\n  - {path: /etc//motd/, content: b}\n',
      'SPEC_INVALID',
      'kjx.yaml:3:12: files[1].path: "/etc/motd" is already given by files[0]',
    );
  });

  test('bad module name', () => {
    assertProblem(
      'kernel:\n  modules: [virtio_net, "virtio net"]\n',
      'SPEC_INVALID',
      'kjx.yaml:2:25: kernel.modules[1]: expected a module name (letters, digits, "_" and "-"), like "virtio_net", got "virtio net"',
    );
  });

  test('duplicate component points at the second one', () => {
    assertProblem(
      'components:\n  - busybox\n  - runit\n  - busybox\n',
      'SPEC_INVALID',
      'kjx.yaml:4:5: components[2]: "busybox" is listed twice (first as components[0])',
    );
  });

  test('unknown component, with did-you-mean', () => {
    assertProblem(
      'components: [busybox, runit, dropbar]\n',
      'SPEC_INVALID',
      `kjx.yaml:1:30: components[2]: expected one of ${COMPONENT_NAMES.join(', ')}, got "dropbar" (did you mean "dropbear"?)`,
    );
  });

  test('kernel with both package and image', () => {
    assertProblem(
      'kernel:\n  package: linux-image-amd64\n  image: ./bzImage\n',
      'SPEC_INVALID',
      'kjx.yaml:3:10: kernel.image: give one of "package" (a Debian kernel package), "image" (a kernel file on the host), "source: debian" or "tree" (a kernel kjx builds), not "package" and "image"',
    );
  });

  test('a kernel built from source: profile first, fragments resolved against the spec', () => {
    const spec = parseSpec(
      'kernel:\n  source: debian\n  config: [./extra.config, CONFIG_KCSAN=n, "# CONFIG_DEBUG_FS is not set"]\n',
      '/srv/project/kjx.yaml',
    );
    assert.deepEqual(spec.kernel, {
      kind: 'build',
      source: { kind: 'debian', package: 'linux-source-6.1' },
      config: [
        { kind: 'profile', name: 'vm' },
        { kind: 'file', path: '/srv/project/extra.config', pathRef: './extra.config' },
        { kind: 'line', name: 'CONFIG_KCSAN', value: 'n' },
        { kind: 'line', name: 'CONFIG_DEBUG_FS', value: 'n' },
      ],
      cmdline: 'console=ttyS0 quiet',
      modules: defaultSpec().kernel.modules,
    });
    const tree = parseSpec('kernel:\n  tree: ../linux\n  config: [defconfig]\n', '/srv/project/kjx.yaml');
    assert.deepEqual(tree.kernel.kind === 'build' && [tree.kernel.source, tree.kernel.config], [
      { kind: 'tree', path: '/srv/linux', pathRef: '../linux' },
      [{ kind: 'profile', name: 'defconfig' }],
    ]);
  });

  test('bad kernel build entries', () => {
    assertProblem(
      'kernel:\n  source: debian\n  config: [vm, CONFIG_X=yes]\n',
      'SPEC_INVALID',
      'kjx.yaml:3:16: kernel.config[1]: expected a config line like CONFIG_NAME=y, =m, =n, a number or a "quoted string", got "CONFIG_X=yes"',
    );
    assertProblem(
      'kernel:\n  source: debian\n  config: [mini]\n',
      'SPEC_INVALID',
      'kjx.yaml:3:12: kernel.config[0]: expected a profile (vm, defconfig, tinyconfig), a fragment file like ./extra.config, or a line like CONFIG_KCSAN=n, got "mini"',
    );
    assertProblem(
      'kernel:\n  source: debian\n  config: [CONFIG_A=y, tinyconfig]\n',
      'SPEC_INVALID',
      'kjx.yaml:3:24: kernel.config[1]: the profile "tinyconfig" must come first: fragments are merged over it in order',
    );
    assertProblem(
      'kernel:\n  config: [vm]\n',
      'SPEC_INVALID',
      'kjx.yaml:2:11: kernel.config: "config" configures a kernel kjx builds: give "source: debian" or "tree" with it',
    );
    assertProblem(
      'kernel:\n  source: ubuntu\n',
      'SPEC_INVALID',
      'kjx.yaml:2:11: kernel.source: expected "debian", got "ubuntu"',
    );
    assertProblem(
      'kernel:\n  source: debian\n  tree: ./linux\n',
      'SPEC_INVALID',
      'kjx.yaml:3:9: kernel.tree: give one of "package" (a Debian kernel package), "image" (a kernel file on the host), "source: debian" or "tree" (a kernel kjx builds), not "source" and "tree"',
    );
  });

  test('modulesDir without image', () => {
    assertProblem(
      'kernel:\n  modulesDir: ./modules\n',
      'SPEC_INVALID',
      'kjx.yaml:2:15: kernel.modulesDir: "modulesDir" goes with "image"; a kernel package or a kernel kjx builds brings its own modules',
    );
  });

  test('bad package name', () => {
    assertProblem(
      'packages:\n  - curl\n  - Curl\n',
      'SPEC_INVALID',
      'kjx.yaml:3:5: packages[1]: expected a Debian package name like "curl" or "curl=7.88.1-10", or a path to a local file ending in .deb, got "Curl"',
    );
  });

  test('a package that is neither a string nor a mapping', () => {
    assertProblem(
      'packages: [42]\n',
      'SPEC_INVALID',
      'kjx.yaml:1:12: packages[0]: expected a Debian package name like "curl" or "curl=7.88.1-10", or a path to a local file ending in .deb, or a mapping with "name" (and "version", "paths"), got a number (42)',
    );
  });

  test('a missing required key points at the enclosing mapping', () => {
    assertProblem(
      'packages:\n  - paths: [/usr/bin/strace]\n',
      'SPEC_INVALID',
      'kjx.yaml:2:5: packages[0].name: missing, expected a string',
    );
  });

  test('a version in the package name of the mapping form', () => {
    assertProblem(
      'packages:\n  - name: strace=6.1-0.1\n',
      'SPEC_INVALID',
      'kjx.yaml:2:11: packages[0].name: expected a package name without "=" (put the version in "version"), got "strace=6.1-0.1"',
    );
  });

  test('a document that is not a mapping', () => {
    assertProblem('- busybox\n- runit\n', 'SPEC_INVALID', 'kjx.yaml:1:1: expected a mapping, got a list');
  });

  test('an empty outputs list', () => {
    assertProblem(
      'outputs: []\n',
      'SPEC_INVALID',
      'kjx.yaml:1:10: outputs: expected at least 1 item, got an empty list',
    );
  });

  test('a negative sourceDateEpoch', () => {
    assertProblem(
      'sourceDateEpoch: -1\n',
      'SPEC_INVALID',
      'kjx.yaml:1:18: sourceDateEpoch: expected a number ≥ 0, got -1',
    );
  });

  test('every problem is in details, in file order', () => {
    const e = failure(
      [
        'hostnme: box', // 1
        'version: 1.0', // 2
        'kernel:', // 3
        '  cmdlnie: quiet', // 4
        'compression: lzma', // 5
        'files:', // 6
        '  - path: etc/motd', // 7
        '    content: hi', // 8
        '    from: ./motd', // 9
        '',
      ].join('\n'),
      'SPEC_INVALID',
    );
    assert.deepEqual(e.details, [
      'kjx.yaml:1:1: hostnme: unknown key "hostnme" (did you mean "hostname"?)',
      'kjx.yaml:2:10: version: expected a string, got a number (1); put it in quotes to make it text',
      'kjx.yaml:4:3: kernel.cmdlnie: unknown key "cmdlnie" (did you mean "cmdline"?)',
      'kjx.yaml:5:14: compression: expected one of gzip, zstd, xz, none, got "lzma"',
      'kjx.yaml:7:11: files[0].path: expected an absolute guest path starting with "/", got "etc/motd"',
      'kjx.yaml:9:11: files[0].from: give either "content" or "from", not both',
    ]);
    assert.equal(e.message, e.details[0]);
    assert.match(e.hint ?? '', /^6 problems/);
  });
});

describe('parsing', () => {
  test('an empty file, or only comments, is every default', () => {
    const expected = { ...defaultSpec(), specDir: process.cwd() };
    assert.deepEqual(parseSpec('', 'kjx.yaml'), expected);
    assert.deepEqual(parseSpec('# nothing here\n', 'kjx.yaml'), expected);
    assert.deepEqual(parseSpec('\uFEFF---\n', 'kjx.yaml'), expected);
  });

  test('modes: 0755, 755, "0755" and 0o755 all mean rwxr-xr-x', () => {
    // A plain YAML integer is read as chmod digits: YAML 1.2 would make 0755 decimal.
    for (const mode of ['0755', '755', '"0755"', "'755'", '0o755', '"0o755"']) {
      const spec = parseSpec(`files:\n  - {path: /x, content: x, mode: ${mode}}\n`, 'kjx.yaml');
      assert.equal(spec.files[0]?.mode, 0o755, `mode: ${mode}`);
    }
  });

  test('a mode above 0o7777 is refused', () => {
    assertProblem(
      'files:\n  - {path: /x, content: x, mode: 0o17777}\n',
      'SPEC_INVALID',
      'kjx.yaml:2:34: files[0].mode: expected a mode up to 0o7777 (4095), got 8191',
    );
  });

  test('host paths resolve against the directory of the spec file', () => {
    const spec = parseSpec(
      [
        'kernel:',
        '  image: ./boot/bzImage',
        '  modulesDir: /abs/lib/modules/6.1.0',
        'packages: [./debs/tool_1.0_amd64.deb, {name: ../other.deb, paths: [/usr/bin/other]}, curl]',
        'files:',
        '  - {path: /usr/local/bin/hello, from: hello.sh}',
        '',
      ].join('\n'),
      '/srv/project/kjx.yaml',
    );
    assert.equal(spec.specDir, '/srv/project');
    assert.deepEqual(spec.kernel, {
      kind: 'image',
      image: '/srv/project/boot/bzImage',
      imageRef: './boot/bzImage',
      modulesDir: '/abs/lib/modules/6.1.0',
      modulesDirRef: '/abs/lib/modules/6.1.0',
      cmdline: 'console=ttyS0 quiet',
      modules: defaultSpec().kernel.modules,
    });
    assert.deepEqual(spec.packages, [
      { kind: 'local', path: '/srv/project/debs/tool_1.0_amd64.deb', pathRef: './debs/tool_1.0_amd64.deb' },
      { kind: 'local', path: '/srv/other.deb', pathRef: '../other.deb', paths: ['/usr/bin/other'] },
      { kind: 'apt', name: 'curl' },
    ]);
    assert.deepEqual(spec.files, [
      {
        type: 'file',
        path: '/usr/local/bin/hello',
        mode: 0o644,
        owner: { user: 0, group: 0 },
        override: false,
        from: '/srv/project/hello.sh',
        fromRef: 'hello.sh',
        position: { file: '/srv/project/kjx.yaml', line: 6, column: 5 },
      },
    ]);
  });

  test('each files: entry knows where the spec gives it (for errors found once the tree is merged)', () => {
    const spec = parseSpec(
      [
        'hostname: lab',
        'files:',
        '  - path: /opt/link',
        '    type: symlink',
        '    target: real',
        '  - {path: /opt/link/ok.txt, content: ok}',
        '',
      ].join('\n'),
      'kjx.yaml',
    );
    assert.deepEqual(
      spec.files.map((f) => f.position),
      [
        { file: 'kjx.yaml', line: 3, column: 5 },
        { file: 'kjx.yaml', line: 6, column: 5 },
      ],
    );
  });
});

describe('loadSpec', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kjx-spec-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('reads the file and resolves paths against its directory', () => {
    mkdirSync(join(dir, 'proj'));
    const file = join(dir, 'proj', 'kjx.yaml');
    writeFileSync(file, 'hostname: lab\nfiles:\n  - {path: /etc/motd, from: motd.txt}\n');
    const spec = loadSpec(file);
    assert.equal(spec.hostname, 'lab');
    assert.equal(spec.specDir, join(dir, 'proj'));
    assert.deepEqual(
      spec.files[0] && 'from' in spec.files[0] ? spec.files[0].from : undefined,
      join(dir, 'proj', 'motd.txt'),
    );
  });

  test('errors name the path the file was loaded from', () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'compression: lzma\n');
    assert.throws(() => loadSpec(file), {
      code: 'SPEC_INVALID',
      message: `${file}:1:14: compression: expected one of gzip, zstd, xz, none, got "lzma"`,
    });
  });

  test('a missing file is SPEC_NOT_FOUND with a hint', () => {
    const file = join(dir, 'nope', 'kjx.yaml');
    assert.throws(
      () => loadSpec(file),
      (e: unknown) => {
        assertKjxError(e, 'SPEC_NOT_FOUND');
        assert.equal(e.message, `spec file not found: ${file}`);
        assert.equal(e.hint, 'run `kjx init` to write a default kjx.yaml, or pass -f FILE');
        return true;
      },
    );
  });

  test('a directory is SPEC_NOT_FOUND', () => {
    assert.throws(() => loadSpec(dir), {
      code: 'SPEC_NOT_FOUND',
      message: `${dir} is a directory, not a spec file`,
    });
  });
});
