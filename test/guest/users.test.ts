/**
 * Accounts from `users:` cannot widen access: whatever a spec says, the account
 * files of the image the build assembles (guestSystem, as kjx build calls it) hold
 * one well-formed line per account, none with a password or an empty password
 * field, and uid 0 for root alone. Values that would break a line (":", newlines,
 * control characters) are refused with their position in kjx.yaml.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { guestSystem } from '../../src/guest/system.js';
import { accounts } from '../../src/guest/users.js';
import type { FileEntry, Tree } from '../../src/rootfs/tree.js';
import { parseSpec } from '../../src/spec/load.js';
import type { KjxError } from '../../src/util/errors.js';
import { assertKjxError } from '../helpers/kjx-error.js';

function imageTree(yaml: string): { tree: Tree; names: string[] } {
  const spec = parseSpec(yaml, '/srv/kjx.yaml');
  const { tree } = guestSystem({
    spec,
    buildId: 'abc123def456',
    modules: [],
    ssh: { authorizedKeys: new Map(), hostKeys: [] },
  });
  return { tree, names: accounts(spec).map((u) => u.name) };
}

const text = (t: Tree, p: string) => (t.get(p) as FileEntry).data.toString('utf8');
const lines = (s: string) => s.split('\n').filter((l, i, all) => l !== '' || i < all.length - 1);

/** The account files keep every promise of the module (see the header). */
function checkAccounts(tree: Tree, names: string[]): void {
  const passwd = lines(text(tree, '/etc/passwd')).map((l) => l.split(':'));
  const shadow = lines(text(tree, '/etc/shadow')).map((l) => l.split(':'));
  assert.deepEqual(
    passwd.map((f) => f[0]),
    names,
    'one passwd line per account, nothing injected',
  );
  for (const f of passwd) {
    assert.equal(f.length, 7, `passwd line with ${f.length} fields: ${f.join(':')}`);
    assert.equal(f[1], 'x', `${f[0]}: the password is in shadow, never here, never empty`);
    if (f[2] === '0') assert.equal(f[0], 'root', `${f[0]} has uid 0`);
  }
  assert.deepEqual(
    shadow.map((f) => f[0]),
    names,
  );
  for (const f of shadow) {
    assert.equal(f.length, 9, `shadow line with ${f.length} fields`);
    assert.ok(f[1] === '*' || f[1]!.startsWith('!'), `${f[0]} can log in with a password: "${f[1]}"`);
  }
  for (const l of lines(text(tree, '/etc/group'))) assert.equal(l.split(':').length, 4, l);
  for (const l of lines(text(tree, '/etc/shells'))) {
    assert.match(l, /^\/[^:]*$/, l);
    assert.doesNotMatch(l, /[\x00-\x1f\x7f]/, JSON.stringify(l));
  }
}

describe('users', () => {
  test('a home with a newline cannot add a root account to /etc/passwd: refused at its position', () => {
    const yaml = 'users:\n  - name: dev\n    home: "/home/dev\\nevil::0:0::/:/bin/sh"\n';
    assert.throws(
      () => imageTree(yaml),
      (e: KjxError) => {
        assert.equal(e.code, 'SPEC_INVALID');
        assert.deepEqual(e.position, { file: '/srv/kjx.yaml', line: 3, column: 11 });
        assert.match(e.message, /users\[0\]\.home: expected a path without ":", newlines/);
        return true;
      },
    );
    for (const [field, value] of [
      ['home', '/srv/a:b'],
      ['shell', '/bin/sh:0:0'],
      ['shell', '/bin/sh\u0007'],
      ['home', '/home/\u001b[31mred'],
      ['home', '/home/del\u007f'],
    ] as const) {
      assert.throws(
        () => imageTree(`users:\n  - name: dev\n    ${field}: ${JSON.stringify(value)}\n`),
        (e: KjxError) => e.code === 'SPEC_INVALID' && e.position?.line === 3 && e.message.includes(field),
        `${field}: ${JSON.stringify(value)}`,
      );
    }
  });

  test('any users: spec either fails with a positioned error or gives an image where no password opens an account (property)', () => {
    const hostile = [
      '',
      ':',
      '\n',
      '\r',
      '\t',
      '\0',
      '\u0001',
      '\u001b',
      '\u007f',
      '\u0085',
      '::0:0:',
      ' ',
      '#',
      '!',
    ];
    const piece = fc.oneof(fc.constantFrom(...hostile), fc.string({ maxLength: 4 }));
    const safe = fc.stringMatching(/^[a-z0-9_.-]{1,6}$/);
    const goodPath = fc.array(safe, { minLength: 1, maxLength: 3 }).map((p) => `/${p.join('/')}`);
    const anyPath = fc.oneof(
      goodPath,
      fc.constantFrom('/root', '/bin/sh', '/bin/false', 'bin/sh', '/', '/a/../b'),
      fc.array(fc.oneof(safe, piece), { maxLength: 4 }).map((p) => `/${p.join('/')}`),
    );
    const goodName = fc.oneof(
      fc.constantFrom('root', 'dev', 'nobody', '_svc'),
      fc.stringMatching(/^[a-z_][a-z0-9_-]{0,8}$/),
    );
    const anyName = fc.oneof(goodName, fc.constantFrom('Root', 'a:b', 'a\nb', 'x'.repeat(33)), piece);
    const goodUid = fc.oneof(fc.constantFrom(0, 1000, 65533), fc.integer({ min: 1, max: 65533 }));
    const anyUid = fc.oneof(goodUid, fc.constantFrom(-1, 65534, 70000, 1.5), fc.integer());
    const user = fc.oneof(
      // mostly specs that load, so the image's files are what is checked
      {
        weight: 4,
        arbitrary: fc.record(
          { name: goodName, uid: goodUid, gid: goodUid, home: goodPath, shell: goodPath },
          { requiredKeys: ['name'] },
        ),
      },
      {
        weight: 1,
        arbitrary: fc.record(
          { name: anyName, uid: anyUid, gid: anyUid, home: anyPath, shell: anyPath },
          { requiredKeys: ['name'] },
        ),
      },
    );
    fc.assert(
      fc.property(fc.array(user, { maxLength: 4 }), (users) => {
        const yaml = stringify({ users });
        let built: ReturnType<typeof imageTree>;
        try {
          built = imageTree(yaml);
        } catch (e) {
          assertKjxError(e, 'SPEC_INVALID');
          assert.ok(e.position && e.position.line >= 1, `no position: ${e.message}`);
          return;
        }
        checkAccounts(built.tree, built.names);
      }),
      { numRuns: 300 },
    );
  });
});
