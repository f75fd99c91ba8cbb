/**
 * A cluster's own certificate authority, made on the host with openssl (P-256 keys):
 * one CA per cluster in `<state>/clusters/<name>/ca/`, and per node a key and a
 * certificate for both server and client use whose SANs are the node's address,
 * its name, 127.0.0.1 and localhost (etcd's peer and client TLS, docs/cluster.md).
 * Keys are 0600 on the host and reach a node only in its per-boot payload, never
 * an artifact; the CA's key never leaves the host.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../util/exec.js';

export interface NodeCert {
  ca: string;
  cert: string;
  key: string;
}

const DAYS = '3650';
/** `openssl req`: a new P-256 key, unencrypted (it goes into the node's boot payload). */
const NEW_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** The CA of a cluster directory, made on first use. */
export async function ensureCa(dir: string, cluster: string): Promise<{ cert: string; key: string }> {
  const ca = join(dir, 'ca');
  mkdirSync(ca, { recursive: true, mode: 0o700 });
  const cert = join(ca, 'ca.crt');
  const key = join(ca, 'ca.key');
  if (existsSync(cert) && existsSync(key)) return { cert, key };
  await run('make the cluster CA', 'openssl', [
    'req',
    '-x509',
    ...NEW_KEY,
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    DAYS,
    '-subj',
    `/CN=kjx cluster ${cluster} CA`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  chmodSync(key, 0o600);
  return { cert, key };
}

/** A node's key and certificate from the cluster's CA (made once per node name and address). */
export async function nodeCert(
  dir: string,
  cluster: string,
  node: { name: string; address: string },
): Promise<NodeCert> {
  const ca = await ensureCa(dir, cluster);
  const base = join(dir, 'ca', `${node.name}-${node.address}`);
  const key = `${base}.key`;
  const cert = `${base}.crt`;
  if (!existsSync(cert) || !existsSync(key)) {
    const csr = `${base}.csr`;
    const ext = `${base}.ext`;
    await run(`make the key of node ${node.name}`, 'openssl', [
      'req',
      '-new',
      ...NEW_KEY,
      '-keyout',
      key,
      '-out',
      csr,
      '-subj',
      `/CN=${node.name}`,
    ]);
    chmodSync(key, 0o600);
    writeFileSync(
      ext,
      [
        `subjectAltName=IP:${node.address},DNS:${node.name},IP:127.0.0.1,DNS:localhost`,
        'extendedKeyUsage=serverAuth,clientAuth',
        'keyUsage=critical,digitalSignature,keyEncipherment',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    await run(`sign the certificate of node ${node.name}`, 'openssl', [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      ca.cert,
      '-CAkey',
      ca.key,
      '-CAcreateserial',
      '-out',
      cert,
      '-days',
      DAYS,
      '-extfile',
      ext,
    ]);
  }
  return {
    ca: readFileSync(ca.cert, 'utf8'),
    cert: readFileSync(cert, 'utf8'),
    key: readFileSync(key, 'utf8'),
  };
}
