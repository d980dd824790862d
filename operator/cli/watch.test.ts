import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { KubeClient } from '../kube/rest.js';
import { CliError, ExitCode } from './errors.js';
import { MAX_WATCH_FAILURES, waitGone, watchMaybe, watchObject, WatchTimeoutError } from './watch.js';

// A stand-in API server on loopback that answers the reads and watches the follower makes, so the unit test
// can script what a real server does rarely: end a watch, answer 410 Gone, refuse, delete the object.
type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void;
const servers: { close(): void }[] = [];
async function apiServer(handler: Handler) {
  /** Watch connections still open (the follower must close its watch on every exit path). */
  const open = new Set<IncomingMessage>();
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.searchParams.get('watch') === 'true') {
      open.add(req);
      res.on('close', () => open.delete(req));
    }
    handler(req, res, url);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push({
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  });
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
  return { client: new KubeClient(kc), open };
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
type Plan = ReturnType<typeof plan>;
const event = (type: string, object: unknown) => `${JSON.stringify({ type, object })}\n`;
const isWatch = (url: URL) => url.searchParams.get('watch') === 'true';
const succeeded = (p: Plan) => (p.status.phase === 'Succeeded' ? p : undefined);
const settle = () => new Promise((r) => setTimeout(r, 100));
const what = 'RollbackPlan shop/p';

describe('watchObject', () => {
  it('resolves from the first GET when the condition already holds, without opening a watch', async () => {
    let watches = 0;
    const { client } = await apiServer((_req, res, url) => {
      if (isWatch(url)) watches++;
      res.end(JSON.stringify(plan('7', 'Succeeded')));
    });
    const seen: string[] = [];
    const r = await watchObject(client, ref, succeeded, {
      timeoutMs: 5000,
      what,
      onChange: (p) => seen.push(p.metadata.resourceVersion),
    });
    expect(r.metadata.resourceVersion).toBe('7');
    expect(seen).toEqual(['7']);
    expect(watches).toBe(0);
  });

  it('reads, then watches from the resourceVersion by name with bookmarks, until the condition holds', async () => {
    const watches: URL[] = [];
    const { client, open } = await apiServer((_req, res, url) => {
      if (!isWatch(url)) return res.end(JSON.stringify(plan('10', 'Running')));
      watches.push(url);
      res.write(event('BOOKMARK', { metadata: { resourceVersion: '10' } }));
      res.write(event('MODIFIED', plan('11', 'Running')));
      setTimeout(() => res.write(event('MODIFIED', plan('12', 'Succeeded'))), 20); // and never ends
    });
    const seen: string[] = [];
    const r = await watchObject(client, ref, succeeded, {
      timeoutMs: 5000,
      what,
      onChange: (p) => seen.push(`${p.metadata.resourceVersion} ${p.status.phase}`),
    });
    expect(r.metadata.resourceVersion).toBe('12');
    expect(seen).toEqual(['10 Running', '11 Running', '12 Succeeded']);
    expect(watches).toHaveLength(1);
    const w = watches[0]!;
    expect(w.pathname).toBe('/apis/rollback.nxtnewday.io/v1alpha1/namespaces/shop/rollbackplans');
    expect(w.searchParams.get('fieldSelector')).toBe('metadata.name=p');
    expect(w.searchParams.get('resourceVersion')).toBe('10');
    expect(w.searchParams.get('allowWatchBookmarks')).toBe('true');
    expect(Number(w.searchParams.get('timeoutSeconds'))).toBeLessThanOrEqual(5);
    await settle();
    expect(open.size, 'the watch is closed once the condition holds').toBe(0);
  });

  it('resumes the watch from the last version when the server ends it after a while', async () => {
    const from: (string | null)[] = [];
    const { client } = await apiServer((_req, res, url) => {
      if (!isWatch(url)) return res.end(JSON.stringify(plan('1', 'Running')));
      from.push(url.searchParams.get('resourceVersion'));
      if (from.length === 1) {
        res.write(event('MODIFIED', plan('2', 'Running')));
        return void setTimeout(() => res.end(), 50);
      }
      res.end(event('MODIFIED', plan('3', 'Succeeded')));
    });
    const r = await watchObject(client, ref, succeeded, { timeoutMs: 5000, what });
    expect(r.metadata.resourceVersion).toBe('3');
    expect(from).toEqual(['1', '2']);
  });

  it('after 410 Gone reads again and watches from the new version; an unchanged re-read is no change', async () => {
    let gets = 0;
    const from: (string | null)[] = [];
    const { client } = await apiServer((_req, res, url) => {
      if (!isWatch(url)) return res.end(JSON.stringify(plan(++gets === 1 ? '100' : '200', 'Running')));
      from.push(url.searchParams.get('resourceVersion'));
      if (from.length <= 2) return res.end(event('ERROR', { kind: 'Status', code: 410, message: 'too old' }));
      res.end(event('MODIFIED', plan('201', 'Succeeded')));
    });
    const seen: string[] = [];
    const r = await watchObject(client, ref, succeeded, {
      timeoutMs: 5000,
      what,
      onChange: (p) => seen.push(p.metadata.resourceVersion),
    });
    expect(r.metadata.resourceVersion).toBe('201');
    expect(gets).toBe(3);
    expect(from).toEqual(['100', '200', '200']);
    expect(seen, 'the second re-read returned version 200 again').toEqual(['100', '200', '201']);
  });

  it('backs off when the server closes the watch at once, and gives up after 5 in a row (exit 6)', async () => {
    const opened: number[] = [];
    const { client } = await apiServer((_req, res, url) => {
      if (!isWatch(url)) return res.end(JSON.stringify(plan('1', 'Running')));
      opened.push(Date.now());
      res.end();
    });
    const e = await watchObject(client, ref, succeeded, { timeoutMs: 20_000, what }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CliError);
    expect(e).toMatchObject({ exitCode: ExitCode.Unavailable });
    expect((e as Error).message).toMatch(/^watch RollbackPlan shop\/p: failed 5 times in a row/);
    expect(opened).toHaveLength(MAX_WATCH_FAILURES);
    const gaps = opened.slice(1).map((t, i) => t - opened[i]!);
    expect(Math.min(...gaps), 'a pause between connections: never a spin').toBeGreaterThanOrEqual(200);
    expect(Math.max(...gaps)).toBeLessThan(1500);
  });

  it('recovers when a watch works again after a few immediate closes', async () => {
    let watches = 0;
    const { client } = await apiServer((_req, res, url) => {
      if (!isWatch(url)) return res.end(JSON.stringify(plan('1', 'Running')));
      if (++watches < MAX_WATCH_FAILURES) return res.end();
      res.end(event('MODIFIED', plan('2', 'Succeeded')));
    });
    const r = await watchObject(client, ref, succeeded, { timeoutMs: 20_000, what });
    expect(r.metadata.resourceVersion).toBe('2');
    expect(watches).toBe(MAX_WATCH_FAILURES);
  });

  it('a refused watch is Forbidden (exit 4) naming the verb watch, the resource and the namespace', async () => {
    const { client } = await apiServer((_req, res, url) => {
      if (!isWatch(url)) return res.end(JSON.stringify(plan('1', 'Running')));
      res.writeHead(403).end('{}');
    });
    const e = await watchObject(client, ref, succeeded, { timeoutMs: 5000, what }).catch((x: unknown) => x);
    expect(e).toMatchObject({
      exitCode: ExitCode.Forbidden,
      message:
        'watch RollbackPlan shop/p: forbidden: the current user may not watch rollbackplans.rollback.nxtnewday.io in namespace shop',
    });
  });

  it("a refused GET is Forbidden with the verb get and the API server's message", async () => {
    const { client } = await apiServer((_req, res) => {
      res.writeHead(403).end(
        JSON.stringify({
          kind: 'Status',
          code: 403,
          reason: 'Forbidden',
          message:
            'rollbackplans.rollback.nxtnewday.io "p" is forbidden: User "u" cannot get resource "rollbackplans" in API group "rollback.nxtnewday.io" in the namespace "shop"',
        }),
      );
    });
    const e = await watchObject(client, ref, succeeded, { timeoutMs: 5000, what }).catch((x: unknown) => x);
    expect(e).toMatchObject({ exitCode: ExitCode.Forbidden });
    expect((e as Error).message).toMatch(
      /^get RollbackPlan shop\/p: forbidden: .*cannot get resource "rollbackplans"/,
    );
  });

  it('times out (exit 5) at the deadline with the last version seen and the hint', async () => {
    const { client, open } = await apiServer((_req, res, url) => {
      if (!isWatch(url)) return res.end(JSON.stringify(plan('1', 'Running')));
      res.write(event('MODIFIED', plan('2', 'Running'))); // and never ends
    });
    const t0 = Date.now();
    const e = await watchObject(client, ref, succeeded, {
      timeoutMs: 300,
      what,
      waitingFor: 'the plan to finish',
      hint: (p) => `phase ${p?.status.phase}`,
    }).catch((x: unknown) => x);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(e).toBeInstanceOf(WatchTimeoutError);
    expect(e).toMatchObject({
      exitCode: ExitCode.Timeout,
      message: 'timed out after 0.3s waiting for the plan to finish (phase Running)',
      last: { metadata: { resourceVersion: '2' } },
    });
    await settle();
    expect(open.size, 'the watch is closed at the deadline').toBe(0);
  });

  it('a deletion while following is NotFound (exit 3); a missing object too', async () => {
    const deleted = await apiServer((_req, res, url) => {
      if (!isWatch(url)) return res.end(JSON.stringify(plan('1', 'Running')));
      res.end(event('DELETED', plan('2', 'Running')));
    });
    const e1 = await watchObject(deleted.client, ref, succeeded, { timeoutMs: 5000, what }).catch(
      (x: unknown) => x,
    );
    expect(e1).toMatchObject({ exitCode: ExitCode.NotFound, message: 'RollbackPlan shop/p was deleted' });
    const missing = await apiServer((_req, res) =>
      res.writeHead(404).end(JSON.stringify({ kind: 'Status', code: 404, message: 'not found' })),
    );
    const e2 = await watchObject(missing.client, ref, succeeded, { timeoutMs: 5000, what }).catch(
      (x: unknown) => x,
    );
    expect(e2).toMatchObject({ exitCode: ExitCode.NotFound });
    expect((e2 as Error).message).toMatch(/^get RollbackPlan shop\/p: not found/);
  });

  it('an error the decider throws ends the wait as it is, and closes the watch', async () => {
    const { client, open } = await apiServer((_req, res, url) => {
      if (!isWatch(url)) return res.end(JSON.stringify(plan('1', 'Running')));
      res.write(event('MODIFIED', plan('2', 'Failed')));
    });
    const boom = new CliError(ExitCode.Failed, 'the plan failed');
    const e = await watchObject(
      client,
      ref,
      (p: Plan) => {
        if (p.status.phase === 'Failed') throw boom;
        return undefined;
      },
      { timeoutMs: 5000, what },
    ).catch((x: unknown) => x);
    expect(e).toBe(boom);
    await settle();
    expect(open.size).toBe(0);
  });
});

describe('watchMaybe and waitGone', () => {
  const list = (rv: string, ...items: unknown[]) =>
    JSON.stringify({ metadata: { resourceVersion: rv }, items });

  it('lists by name, passes undefined while the object does not exist, and sees it appear', async () => {
    const urls: URL[] = [];
    const { client } = await apiServer((_req, res, url) => {
      urls.push(url);
      if (!isWatch(url)) return res.end(list('5'));
      res.end(event('ADDED', plan('6', 'Succeeded')));
    });
    const seen: (string | undefined)[] = [];
    const r = await watchMaybe<Plan, Plan>(client, ref, (p) => (p ? succeeded(p) : undefined), {
      timeoutMs: 5000,
      onChange: (p) => seen.push(p?.metadata.resourceVersion),
    });
    expect(r.metadata.resourceVersion).toBe('6');
    expect(seen).toEqual([undefined, '6']);
    expect(urls[0]!.searchParams.get('fieldSelector')).toBe('metadata.name=p');
    expect(urls[1]!.searchParams.get('resourceVersion')).toBe('5');
  });

  it('waitGone resolves when the object is deleted, and at once when it is already gone', async () => {
    const namespaceRef = { group: '', version: 'v1', plural: 'namespaces', name: 'scratch' };
    const ns = { metadata: { name: 'scratch', resourceVersion: '3' } };
    const deleting = await apiServer((_req, res, url) => {
      if (!isWatch(url)) return res.end(list('3', ns));
      expect(url.pathname).toBe('/api/v1/namespaces');
      setTimeout(
        () => res.end(event('DELETED', { ...ns, metadata: { ...ns.metadata, resourceVersion: '4' } })),
        50,
      );
    });
    await expect(waitGone(deleting.client, namespaceRef, 5000)).resolves.toBe(true);
    const gone = await apiServer((_req, res) => res.end(list('9')));
    await expect(waitGone(gone.client, namespaceRef, 5000)).resolves.toBe(true);
    const stuck = await apiServer((_req, res, url) => {
      if (!isWatch(url)) return res.end(list('3', ns)); // the watch never says anything
    });
    await expect(waitGone(stuck.client, namespaceRef, 200)).rejects.toMatchObject({
      exitCode: ExitCode.Timeout,
      message: 'timed out after 0.2s waiting for namespaces scratch to be deleted',
    });
  });
});
