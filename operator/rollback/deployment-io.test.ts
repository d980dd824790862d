import { describe, expect, it } from 'vitest';
import { KubeApiError, isNotFound } from '../kube/errors.js';
import type { KubeClient, KubeObject } from '../kube/rest.js';
import { readDeploymentHistory } from './deployment-io.js';
import type { RawDeployment, RawReplicaSet } from './deployment-undo.js';

const deployment = (selector: Record<string, string>): RawDeployment => ({
  metadata: { name: 'web', namespace: 'shop', uid: 'uid-web', resourceVersion: '10' },
  spec: { selector: { matchLabels: selector }, template: {} },
});
const cached = (selector: Record<string, string>) => deployment(selector) as unknown as KubeObject;
const rs = (name: string): RawReplicaSet => ({ metadata: { name } });

/**
 * A client whose GET and LIST answer only when the test releases them, logging when each is sent and
 * answered; `get`/`list` say what they answer (a value, or an error to throw).
 */
function gatedClient(answers: {
  get: RawDeployment | Error;
  list: (selector: string) => RawReplicaSet[] | Error;
}) {
  const log: string[] = [];
  const gates: Record<string, () => void> = {};
  const gate = (name: string) => new Promise<void>((r) => (gates[name] = r));
  const client = {
    get: async () => {
      log.push('GET sent');
      await gate('get');
      log.push('GET answered');
      if (answers.get instanceof Error) throw answers.get;
      return answers.get;
    },
    list: async (_ref: unknown, opts: { labelSelector: string }) => {
      log.push(`LIST ${opts.labelSelector} sent`);
      await gate(`list ${opts.labelSelector}`);
      const items = answers.list(opts.labelSelector);
      if (items instanceof Error) throw items;
      return { items };
    },
  } as unknown as KubeClient;
  /** Lets the microtasks run, then releases `name` (if it was sent). */
  const release = async (name: string) => {
    await new Promise((r) => setImmediate(r));
    gates[name]?.();
  };
  return { client, log, release };
}

describe('readDeploymentHistory', () => {
  it('with the cached Deployment, sends the GET and the LIST (cached selector) at once', async () => {
    const c = gatedClient({ get: deployment({ app: 'web' }), list: () => [rs('web-1'), rs('web-2')] });
    const read = readDeploymentHistory(c.client, 'shop', 'web', cached({ app: 'web' }));
    await new Promise((r) => setImmediate(r));
    // Both are in flight before either is answered: one round trip on the worker's path, not two.
    expect(c.log).toEqual(['GET sent', 'LIST app=web sent']);
    await c.release('list app=web');
    await c.release('get');
    const h = await read;
    expect(h.deployment.metadata.resourceVersion).toBe('10');
    expect(h.replicaSets.map((r) => r.metadata.name)).toEqual(['web-1', 'web-2']);
  });

  it('without a cached Deployment, lists after the GET with its selector (as kubectl)', async () => {
    const c = gatedClient({ get: deployment({ app: 'web' }), list: () => [rs('web-1')] });
    const read = readDeploymentHistory(c.client, 'shop', 'web', undefined);
    await new Promise((r) => setImmediate(r));
    expect(c.log).toEqual(['GET sent']);
    await c.release('get');
    await c.release('list app=web');
    expect((await read).replicaSets).toHaveLength(1);
    expect(c.log).toEqual(['GET sent', 'GET answered', 'LIST app=web sent']);
  });

  it('lists again with the read selector when the cached one differs (the Deployment was recreated)', async () => {
    const c = gatedClient({
      get: deployment({ app: 'web', track: 'new' }),
      list: (s) => (s === 'app=web' ? [rs('old-1')] : [rs('new-1')]),
    });
    const read = readDeploymentHistory(c.client, 'shop', 'web', cached({ app: 'web' }));
    await c.release('get');
    await c.release('list app=web');
    await c.release('list app=web,track=new');
    const h = await read;
    expect(h.replicaSets.map((r) => r.metadata.name)).toEqual(['new-1']);
    // The LIST with the cached selector went with the GET; its answer (another Deployment's) is not used.
    expect(c.log).toEqual(['GET sent', 'LIST app=web sent', 'GET answered', 'LIST app=web,track=new sent']);
  });

  it("reports the GET's 404 (target missing) even when the LIST failed too", async () => {
    const c = gatedClient({
      get: new KubeApiError(404, 'NotFound', 'deployments.apps "web" not found', 'GET', '/x'),
      list: () => new KubeApiError(500, 'InternalError', 'boom', 'GET', '/y'),
    });
    const read = readDeploymentHistory(c.client, 'shop', 'web', cached({ app: 'web' }));
    const settled = read.catch((e: unknown) => e);
    await c.release('list app=web');
    await c.release('get');
    expect(c.log).toEqual(['GET sent', 'LIST app=web sent', 'GET answered']); // both were in flight
    expect(isNotFound(await settled)).toBe(true);
  });

  it('a failed LIST is the error when the GET succeeded', async () => {
    const c = gatedClient({
      get: deployment({ app: 'web' }),
      list: () => new KubeApiError(403, 'Forbidden', 'no list', 'GET', '/y'),
    });
    const read = readDeploymentHistory(c.client, 'shop', 'web', cached({ app: 'web' }));
    const settled = read.catch((e: unknown) => e);
    await c.release('get');
    await c.release('list app=web');
    expect((await settled) as KubeApiError).toMatchObject({ code: 403 });
    expect(c.log).toEqual(['GET sent', 'LIST app=web sent', 'GET answered']);
  });
});
