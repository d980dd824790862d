import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { KubeClient } from '../kube/rest.js';
import { CliError, ExitCode } from './errors.js';
import { follow } from './follow.js';

// A stand-in API server on loopback that answers the one GET and the watches `follow` makes, so the unit test
// can script what a real server does rarely: end a watch, answer 410 Gone, delete the object.
type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void;
const servers: { close(): void }[] = [];
async function apiServer(handler: Handler) {
  const server = createServer((req, res) => handler(req, res, new URL(req.url ?? '/', 'http://x')));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push({ close: () => server.close() });
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      {
        name: 'c',
        server: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
        skipTLSVerify: true,
      },
    ],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return { kc, client: new KubeClient(kc) };
}
afterEach(() => servers.splice(0).forEach((s) => s.close()));

const ref = {
  group: 'rollback.nxtnewday.io',
  version: 'v1alpha1',
  plural: 'rollbackplans',
  namespace: 'shop',
  name: 'p',
};
const plan = (rv: string, phase: string) => ({
  metadata: { name: 'p', resourceVersion: rv },
  status: { phase },
});
const event = (type: string, object: unknown) => `${JSON.stringify({ type, object })}\n`;
type Plan = ReturnType<typeof plan>;
const done = (p: Plan) => p.status?.phase === 'Succeeded';

describe('follow', () => {
  it('reads, then watches from the resourceVersion with a field selector, until the condition holds', async () => {
    const watches: URL[] = [];
    const { kc, client } = await apiServer((_req, res, url) => {
      if (url.searchParams.get('watch') !== 'true') return res.end(JSON.stringify(plan('10', 'Running')));
      watches.push(url);
      res.write(event('MODIFIED', plan('11', 'Running')));
      setTimeout(() => res.end(event('MODIFIED', plan('12', 'Succeeded'))), 20);
    });
    const seen: string[] = [];
    const r = await follow<Plan>(kc, client, ref, {
      timeoutMs: 5000,
      what: 'RollbackPlan shop/p',
      until: done,
      onChange: (p) => seen.push(`${p.metadata.resourceVersion} ${p.status.phase}`),
    });
    expect(r.timedOut).toBe(false);
    expect(seen).toEqual(['10 Running', '11 Running', '12 Succeeded']);
    expect(watches).toHaveLength(1);
    expect(watches[0]!.pathname).toBe('/apis/rollback.nxtnewday.io/v1alpha1/namespaces/shop/rollbackplans');
    expect(watches[0]!.searchParams.get('fieldSelector')).toBe('metadata.name=p');
    expect(watches[0]!.searchParams.get('resourceVersion')).toBe('10');
  });

  it('after 410 Gone reads the object again and watches from its new resourceVersion', async () => {
    let gets = 0;
    const from: (string | null)[] = [];
    const { kc, client } = await apiServer((_req, res, url) => {
      if (url.searchParams.get('watch') !== 'true')
        return res.end(JSON.stringify(plan(String(++gets * 100), 'Running')));
      from.push(url.searchParams.get('resourceVersion'));
      if (from.length === 1)
        return res.end(event('ERROR', { kind: 'Status', code: 410, message: 'too old' }));
      res.end(event('MODIFIED', plan('201', 'Succeeded')));
    });
    const r = await follow<Plan>(kc, client, ref, { timeoutMs: 5000, what: 'p', until: done });
    expect(r.last.metadata.resourceVersion).toBe('201');
    expect(from).toEqual(['100', '200']);
  });

  it('ends with timedOut at the deadline, with the last version seen', async () => {
    const { kc, client } = await apiServer((_req, res, url) => {
      if (url.searchParams.get('watch') !== 'true') return res.end(JSON.stringify(plan('1', 'Running')));
      res.write(event('MODIFIED', plan('2', 'Running'))); // and never ends
    });
    const t0 = Date.now();
    const r = await follow<Plan>(kc, client, ref, { timeoutMs: 300, what: 'p', until: done });
    expect(r).toMatchObject({ timedOut: true, last: { metadata: { resourceVersion: '2' } } });
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('says so when the object is deleted (exit 3), and when watching is forbidden (exit 4)', async () => {
    const deleted = await apiServer((_req, res, url) => {
      if (url.searchParams.get('watch') !== 'true') return res.end(JSON.stringify(plan('1', 'Running')));
      res.end(event('DELETED', plan('2', 'Running')));
    });
    const e1 = await follow<Plan>(deleted.kc, deleted.client, ref, {
      timeoutMs: 5000,
      what: 'RollbackPlan shop/p',
      until: done,
    }).catch((e) => e);
    expect(e1).toBeInstanceOf(CliError);
    expect(e1).toMatchObject({ exitCode: ExitCode.NotFound, message: 'RollbackPlan shop/p was deleted' });
    const forbidden = await apiServer((_req, res, url) => {
      if (url.searchParams.get('watch') !== 'true') return res.end(JSON.stringify(plan('1', 'Running')));
      res.writeHead(403).end('{}');
    });
    const e2 = await follow<Plan>(forbidden.kc, forbidden.client, ref, {
      timeoutMs: 5000,
      what: 'p',
      until: done,
    }).catch((e) => e);
    expect(e2).toMatchObject({ exitCode: ExitCode.Forbidden });
    expect(e2.message).toContain('may not watch resource "rollbackplans"');
  });
});
