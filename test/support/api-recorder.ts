// A recording TLS proxy in front of the test API server: the operator talks to it as if it were the API
// server (its own CA and serving certificate, the operator's own token passed through untouched), and every
// request is written down as the RBAC permission it needs. This is how the RBAC test proves that every verb
// the table grants is one the operator really uses, and that it asks for nothing else.
import https from 'node:https';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { createPki } from '../env/pki.js';

export interface RecordedRequest {
  method: string;
  /** Path and query, as sent. */
  url: string;
  /** The HTTP status the API server answered (0 when the upstream request failed). */
  code: number;
}

export interface ApiRecorder {
  /** https://127.0.0.1:<port>: the server of the kubeconfig that goes through the recorder. */
  server: string;
  /** PEM of the CA that signed the recorder's serving certificate, base64 (kubeconfig certificate-authority-data). */
  caData: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

/**
 * The RBAC permission a request needs, as `group/resource[/subresource]:verb` (`core` for the core group),
 * or undefined for non-resource paths (discovery, /version).
 */
export function permissionOf(method: string, url: string): string | undefined {
  const u = new URL(url, 'https://x');
  const parts = u.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  let group: string;
  let rest: string[];
  if (parts[0] === 'api' && parts.length > 2) [group, rest] = ['core', parts.slice(2)];
  else if (parts[0] === 'apis' && parts.length > 3) [group, rest] = [parts[1]!, parts.slice(3)];
  else return undefined;
  if (rest[0] === 'namespaces' && rest.length > 2) rest = rest.slice(2);
  const [resource, name, sub] = rest;
  const watching = ['true', '1'].includes(u.searchParams.get('watch') ?? '');
  const verb =
    method === 'GET'
      ? name
        ? 'get'
        : watching
          ? 'watch'
          : 'list'
      : method === 'POST'
        ? 'create'
        : method === 'PUT'
          ? 'update'
          : method === 'PATCH'
            ? 'patch'
            : method === 'DELETE'
              ? name
                ? 'delete'
                : 'deletecollection'
              : method.toLowerCase();
  return `${group}/${resource}${sub ? `/${sub}` : ''}:${verb}`;
}

/** Starts the recorder in front of the API server of `upstreamKubeconfig` (its server and CA are used). */
export async function startApiRecorder(upstreamKubeconfig: string): Promise<ApiRecorder> {
  const kc = new KubeConfig();
  kc.loadFromFile(upstreamKubeconfig);
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the upstream kubeconfig has no current cluster');
  const upstream = new URL(cluster.server);
  const upstreamCa = cluster.caData
    ? Buffer.from(cluster.caData, 'base64')
    : cluster.caFile
      ? readFileSync(cluster.caFile)
      : undefined;
  const dir = mkdtempSync(join(tmpdir(), 'nxt-api-recorder-'));
  const pki = createPki(dir);
  const requests: RecordedRequest[] = [];
  const server = https.createServer(
    { cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey) },
    (req, res) => {
      const record: RecordedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', code: 0 };
      requests.push(record);
      const out = https.request(
        {
          protocol: 'https:',
          hostname: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: upstream.host },
          ca: upstreamCa,
          servername: upstream.hostname === '127.0.0.1' ? undefined : upstream.hostname,
        },
        (up) => {
          record.code = up.statusCode ?? 0;
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      out.on('error', (e) => {
        if (!res.headersSent) res.writeHead(502).end(String(e));
        else res.destroy();
      });
      // A watch ends when the client goes away: end the upstream request with it.
      res.on('close', () => out.destroy());
      req.pipe(out);
    },
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as { port: number };
  return {
    server: `https://127.0.0.1:${port}`,
    caData: readFileSync(pki.caCert).toString('base64'),
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
