import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Pki {
  caCert: string;
  serverCert: string;
  serverKey: string;
  saKey: string;
  saPub: string;
  adminToken: string;
  tokenFile: string;
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
    serverCert: p('server.crt'),
    serverKey: p('server.key'),
    saKey: p('sa.key'),
    saPub: p('sa.pub'),
    adminToken,
    tokenFile: p('tokens.csv'),
  };
}
