/**
 * SSH: dropbear (Debian dropbear-bin 2022.83) as the supervised service `ssh`,
 * key login only. `-s` refuses password logins for everyone and `-g` for root again
 * (belt and braces); dropbear also refuses accounts with an empty password field
 * unless `-B`, which we never pass, and every account's shadow entry is `*`.
 *
 * Host keys are generated at first boot (dropbearkey; fast for ed25519 even under
 * TCG) unless the spec gives key files. Each start prints every host key's
 * fingerprint on the console as `@@kjx:<nonce>:hostkey type=<t> sha256=<base64>`, the
 * OpenSSH SHA256 fingerprint without its "SHA256:" prefix, so the host can pin it.
 */

import type { HostKeyType, SshSpec } from '../spec/schema.js';
import { DEFAULT_READY_TIMEOUT, SSH_SERVICE } from '../spec/values.js';
import type { GuestService } from './services.js';
import { shQuote } from './shell.js';

export const DROPBEAR_DIR = '/etc/dropbear';

/** Where a generated host key of this type lives (dropbear's default paths). */
export function hostKeyPath(type: HostKeyType): string {
  return `${DROPBEAR_DIR}/dropbear_${type}_host_key`;
}

/** Where the spec's host key files land, in order. */
export function givenHostKeyPath(index: number): string {
  return `${DROPBEAR_DIR}/given_host_key_${index}`;
}

/** The host key files dropbear is started with. */
export function hostKeyFiles(ssh: SshSpec): string[] {
  return ssh.hostKeyFiles.length > 0
    ? ssh.hostKeyFiles.map((_, i) => givenHostKeyPath(i))
    : ssh.hostKeys.map(hostKeyPath);
}

/** The run-script lines that make sure each host key exists and print its fingerprint. */
export function hostKeyLines(ssh: SshSpec): string[] {
  const lines = [
    '# kjx_hostkey TYPE FILE: generate FILE if missing, print its fingerprint marker',
    '# (dropbearkey prints the public key and fingerprint when it generates, and with -y)',
    'kjx_hostkey() {',
    '  if [ -s "$2" ]; then',
    '    kjx_pub=$(dropbearkey -y -f "$2") || { kjx_log "cannot read host key $2"; return 1; }',
    '  elif [ "$1" = given ]; then',
    '    kjx_log "host key $2 is missing"',
    '    return 1',
    '  else',
    '    kjx_log "generating the $1 host key"',
    '    kjx_pub=$(dropbearkey -t "$1" -f "$2" 2>&1) || { echo "$kjx_pub"; return 1; }',
    '  fi',
    '  kjx_type= kjx_fp=',
    '  for kjx_w in $kjx_pub; do',
    '    case $kjx_w in',
    '    ssh-ed25519 | ssh-rsa | ssh-dss) kjx_type=${kjx_w#ssh-} ;;',
    '    ecdsa-sha2-*) kjx_type=ecdsa ;;',
    '    SHA256:*) kjx_fp=${kjx_w#SHA256:} ;;',
    '    esac',
    '  done',
    '  kjx_say "hostkey type=$kjx_type sha256=$kjx_fp"',
    '  kjx_log "host key $kjx_type SHA256:$kjx_fp"',
    '}',
    `[ -d ${DROPBEAR_DIR} ] || mkdir -p ${DROPBEAR_DIR}`,
  ];
  if (ssh.hostKeyFiles.length > 0) {
    for (const i of ssh.hostKeyFiles.keys()) lines.push(`kjx_hostkey given ${givenHostKeyPath(i)} || exit 1`);
  } else {
    for (const t of ssh.hostKeys) lines.push(`kjx_hostkey ${t} ${hostKeyPath(t)} || exit 1`);
  }
  return lines;
}

/** dropbear's command line: foreground, log to stderr (svlogd), no passwords at all. */
export function dropbearCommand(ssh: SshSpec): string {
  const args = ['dropbear', '-F', '-E', '-s', '-g'];
  if (!ssh.rootLogin) args.push('-w');
  args.push('-p', String(ssh.port));
  for (const f of hostKeyFiles(ssh)) args.push('-r', f);
  return args.map(shQuote).join(' ');
}

/** The built-in `ssh` service: ready when its port listens. */
export function sshService(ssh: SshSpec): GuestService {
  return {
    name: SSH_SERVICE,
    spec: {
      run: dropbearCommand(ssh),
      needs: [],
      ready: { kind: 'port', port: ssh.port, timeout: DEFAULT_READY_TIMEOUT },
      restart: { policy: 'always', delay: 1, maxDelay: 30 },
      user: 'root',
      env: {},
      log: { size: 1_000_000, keep: 5 },
      stopSignal: 'TERM',
    },
    prelude: hostKeyLines(ssh),
  };
}
