import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Pki {
  caCert: string;
  /** The CA's private key: signs certificates for the real test node (test/env/real-node.ts). */
  caKey: string;
  serverCert: string;
  serverKey: string;
  saKey: string;
  saPub: string;
  adminToken: string;
  tokenFile: string;
  /** Client certificate the API server presents to kubelets (logs, exec); group system:masters. */
  kubeletClientCert: string;
  kubeletClientKey: string;
}

const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });

/**
 * A throwaway CA, a serving certificate for 127.0.0.1/localhost, the service-account signing key pair and a
 * static admin token (group system:masters). Only for the local test control plane.
 */
export function createPki(dir: string): Pki {
  mkdirSync(dir, { recursive: true });
  const p = (f: string) => join(dir, f);
  try {
    openssl([
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=nxt-test-ca',
      '-keyout',
      p('ca.key'),
      '-out',
      p('ca.crt'),
    ]);
    openssl([
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=kube-apiserver',
      '-keyout',
      p('server.key'),
      '-out',
      p('server.csr'),
    ]);
    writeFileSync(
      p('server.ext'),
      'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc,IP:10.96.0.1\n' +
        'extendedKeyUsage=serverAuth\n',
    );
    openssl([
      'x509',
      '-req',
      '-in',
      p('server.csr'),
      '-CA',
      p('ca.crt'),
      '-CAkey',
      p('ca.key'),
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      p('server.ext'),
      '-out',
      p('server.crt'),
    ]);
    signCert(dir, p('ca.crt'), p('ca.key'), 'apiserver-kubelet-client', {
      subject: '/O=system:masters/CN=kube-apiserver-kubelet-client',
      usage: 'clientAuth',
    });
    openssl(['genrsa', '-out', p('sa.key'), '2048']);
    openssl(['rsa', '-in', p('sa.key'), '-pubout', '-out', p('sa.pub')]);
  } catch (e) {
    const err = e as { code?: string; stderr?: Buffer };
    if (err.code === 'ENOENT') throw new Error("openssl is not installed: run 'apt-get install -y openssl'");
    throw new Error(`openssl failed: ${err.stderr?.toString() ?? String(e)}`);
  }
  const adminToken = randomBytes(24).toString('hex');
  writeFileSync(p('tokens.csv'), `${adminToken},admin,admin-uid,"system:masters"\n`, { mode: 0o600 });
  return {
    caCert: p('ca.crt'),
    caKey: p('ca.key'),
    serverCert: p('server.crt'),
    serverKey: p('server.key'),
    saKey: p('sa.key'),
    saPub: p('sa.pub'),
    adminToken,
    tokenFile: p('tokens.csv'),
    kubeletClientCert: p('apiserver-kubelet-client.crt'),
    kubeletClientKey: p('apiserver-kubelet-client.key'),
  };
}

/**
 * Issues `<dir>/<name>.crt` and `<name>.key` signed by the given CA: `subject` such as
 * `/O=system:nodes/CN=system:node:localhost`, `usage` the extended key usage(s), `sans` the subjectAltName
 * entries (e.g. `DNS:localhost`, `IP:127.0.0.1`). Valid for two days, like the rest of the harness PKI.
 */
export function signCert(
  dir: string,
  caCert: string,
  caKey: string,
  name: string,
  opts: { subject: string; usage: string; sans?: string[] },
): { cert: string; key: string } {
  const p = (f: string) => join(dir, f);
  openssl([
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    opts.subject,
    '-keyout',
    p(`${name}.key`),
    '-out',
    p(`${name}.csr`),
  ]);
  writeFileSync(
    p(`${name}.ext`),
    (opts.sans?.length ? `subjectAltName=${opts.sans.join(',')}\n` : '') + `extendedKeyUsage=${opts.usage}\n`,
  );
  openssl([
    'x509',
    '-req',
    '-in',
    p(`${name}.csr`),
    '-CA',
    caCert,
    '-CAkey',
    caKey,
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    p(`${name}.ext`),
    '-out',
    p(`${name}.crt`),
  ]);
  return { cert: p(`${name}.crt`), key: p(`${name}.key`) };
}
