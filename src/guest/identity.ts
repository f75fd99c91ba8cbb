/**
 * Who the guest says it is: /etc/os-release (os-release(5): NAME, VERSION, ID=kjx,
 * BUILD_ID from the build hash), /etc/hostname, /etc/hosts, the boot banner (the
 * original kjx-headless art, with version and build id) and the login profile.
 */
import { addEntry, type EntrySource, mk, newTree, type Tree } from '../rootfs/tree.js';
import type { Spec } from '../spec/schema.js';
import { GUEST_PATH } from './layout.js';

/** os-release values are quoted strings; our inputs are validated, but escape anyway. */
function quoted(v: string): string {
  return `"${v.replace(/(["\\$`])/g, '\\$1')}"`;
}

export function osRelease(spec: Spec, buildId: string): string {
  return [
    'NAME="kjx"',
    'ID=kjx',
    `PRETTY_NAME=${quoted(`kjx ${spec.name} ${spec.version}`)}`,
    `VERSION=${quoted(spec.version)}`,
    `VERSION_ID=${quoted(spec.version)}`,
    `IMAGE_ID=${quoted(spec.name)}`,
    `IMAGE_VERSION=${quoted(spec.version)}`,
    `BUILD_ID=${quoted(buildId)}`,
    'HOME_URL="https://github.com/deomorxsy/kjx-headless"',
    '',
  ].join('\n');
}

/** The boot banner: the original project's art (README), with this image's name, version and build. */
export function banner(spec: Spec, buildId: string): string {
  return [
    '',
    ' .-"``"-.',
    '/  _.-` (_) `-._',
    '\\   (_.----._)  /',
    ' \\     /    \\  /',
    '  `\\  \\____/  /`',
    '    `-.____.-`      __     _',
    '     /      \\      / /__  (_)_ __',
    "    /        \\    /  '_/ / /\\ \\ /",
    '   /_ |  | _\\    /_/\\_\\_/ //_\\_\\',
    '     |  | |          |___/         kjx-headless',
    '     |__|__|  ----------------------------------------------',
    `     /_ | _\\   ${spec.name} ${spec.version} (build ${buildId})`,
    '              ----------------------------------------------',
    '',
  ].join('\n');
}

export function identityTree(spec: Spec, buildId: string): Tree {
  const src: EntrySource = { kind: 'generated', by: 'kjx identity' };
  const t = newTree();
  addEntry(t, mk.file('/etc/hostname', `${spec.hostname}\n`, src));
  addEntry(
    t,
    mk.file(
      '/etc/hosts',
      `127.0.0.1\tlocalhost\n127.0.1.1\t${spec.hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n`,
      src,
    ),
  );
  addEntry(t, mk.file('/etc/os-release', osRelease(spec, buildId), src));
  addEntry(t, mk.file('/etc/kjx/banner', banner(spec, buildId), src));
  addEntry(t, mk.file('/etc/profile', `export PATH=${GUEST_PATH}\nexport PS1="\\u@\\h:\\w\\$ "\n`, src));
  return t;
}
