import { describe, expect, it } from 'vitest';
import { KubeApiError, isNotFound } from '../kube/errors.js';
import type { KubeClient, KubeObject } from '../kube/rest.js';
import { Semaphore } from '../notify/semaphore.js';
import { readDeploymentHistory, withSlot } from './deployment-io.js';
import { planDeploymentRollback, type RawDeployment, type RawReplicaSet } from './deployment-undo.js';

const REVISION = 'deployment.kubernetes.io/revision';
const template = (image: string, labels: Record<string, string>) => ({
  metadata: { labels },
  spec: { containers: [{ name: 'web', image }] },
});
/** Deployment "web" as the controller leaves it at `revision`, running `image` (default: revision 2, v2). */
const deployment = (
  selector: Record<string, string>,
  revision = 2,
  image = 'v2',
  uid = 'uid-web',
): RawDeployment => ({
  metadata: {
    name: 'web',
    namespace: 'shop',
    uid,
    resourceVersion: '10',
    annotations: { [REVISION]: String(revision) },
  },
  spec: { selector: { matchLabels: selector }, template: template(image, selector) },
});
const cached = (selector: Record<string, string>) => deployment(selector) as unknown as KubeObject;
/** ReplicaSet `name` of Deployment "web" (uid-web) at `revision` with `image`; name only without a revision. */
const rs = (name: string, revision?: number, image = `v${revision}`): RawReplicaSet =>
  revision === undefined
    ? { metadata: { name } }
    : {
        metadata: {
          name,
          creationTimestamp: `2026-01-01T00:00:0${name.at(-1)}Z`,
          ownerReferences: [{ uid: 'uid-web', controller: true }],
          annotations: { [REVISION]: String(revision) },
        },
        spec: { template: template(image, { app: 'web', 'pod-template-hash': name }) },
      };

/**
 * A client whose GET and LIST answer only when the test releases them, logging when each is sent and
 * answered; `get`/`list` say what they answer (a value, or an error to throw).
 */
function gatedClient(answers: {
  get: RawDeployment | Error;
  /** `n`: the how-manieth LIST with this selector (1, 2, ...). */
  list: (selector: string, n: number) => RawReplicaSet[] | Error;
}) {
  const log: string[] = [];
  const gates: Record<string, () => void> = {};
  const gate = (name: string) => new Promise<void>((r) => (gates[name] = r));
  const lists: Record<string, number> = {};
  const client = {
    get: async () => {
      log.push('GET sent');
      await gate('get');
      log.push('GET answered');
      if (answers.get instanceof Error) throw answers.get;
      return answers.get;
    },
    list: async (_ref: unknown, opts: { labelSelector: string }) => {
      const n = (lists[opts.labelSelector] = (lists[opts.labelSelector] ?? 0) + 1);
      const name = `LIST ${opts.labelSelector}${n > 1 ? ` #${n}` : ''}`;
      log.push(`${name} sent`);
      await gate(name.replace('LIST', 'list'));
      const items = answers.list(opts.labelSelector, n);
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
    const c = gatedClient({
      get: deployment({ app: 'web' }),
      list: () => [rs('web-1', 1), rs('web-2', 2)],
    });
    const read = readDeploymentHistory(c.client, 'shop', 'web', cached({ app: 'web' }));
    await new Promise((r) => setImmediate(r));
    // Both are in flight before either is answered: one round trip on the worker's path, not two.
    expect(c.log).toEqual(['GET sent', 'LIST app=web sent']);
    await c.release('list app=web');
    await c.release('get');
    const h = await read;
    expect(h.deployment.metadata.resourceVersion).toBe('10');
    expect(h.replicaSets.map((r) => r.metadata.name)).toEqual(['web-1', 'web-2']);
    // The LIST holds the GET's revision (2, v2): it is used, no second LIST.
    expect(c.log).toEqual(['GET sent', 'LIST app=web sent', 'GET answered']);
  });

  it('lists again after the GET when the parallel LIST predates the revision the GET shows (rollout in between)', async () => {
    // web rolled out v3 (revision 3) while the plan read it: the LIST was served before the controller
    // created web-3, the GET after it recorded revision 3. "Previous" of 3 is 2, not 1.
    const c = gatedClient({
      get: deployment({ app: 'web' }, 3, 'v3'),
      list: (_s, n) =>
        n === 1 ? [rs('web-1', 1), rs('web-2', 2)] : [rs('web-1', 1), rs('web-2', 2), rs('web-3', 3)],
    });
    const read = readDeploymentHistory(c.client, 'shop', 'web', cached({ app: 'web' }));
    await c.release('list app=web');
    await c.release('get');
    await c.release('list app=web #2');
    const h = await read;
    expect(c.log).toEqual(['GET sent', 'LIST app=web sent', 'GET answered', 'LIST app=web #2 sent']);
    expect(h.replicaSets.map((r) => r.metadata.name)).toEqual(['web-1', 'web-2', 'web-3']);
    expect(planDeploymentRollback(h.deployment, h.replicaSets, 0)).toMatchObject({
      action: 'rollback',
      replicaSet: 'web-2',
      fromRevision: 3,
      toRevision: 2,
    });
  });

  it('lists again when the LIST predates an undo that re-numbered an old ReplicaSet', async () => {
    // `rollout undo` from 3 re-used web-1 (v1) as revision 4; the parallel LIST still shows it as revision 1.
    // From 4 the previous revision is 3 (v3); the stale LIST would make it 2 (v2).
    const c = gatedClient({
      get: deployment({ app: 'web' }, 4, 'v1'),
      list: (_s, n) => [rs('web-1', n === 1 ? 1 : 4, 'v1'), rs('web-2', 2, 'v2'), rs('web-3', 3, 'v3')],
    });
    const read = readDeploymentHistory(c.client, 'shop', 'web', cached({ app: 'web' }));
    await c.release('get');
    await c.release('list app=web');
    await c.release('list app=web #2');
    const h = await read;
    expect(c.log).toEqual(['GET sent', 'LIST app=web sent', 'GET answered', 'LIST app=web #2 sent']);
    expect(planDeploymentRollback(h.deployment, h.replicaSets, 0)).toMatchObject({
      action: 'rollback',
      replicaSet: 'web-3',
      toRevision: 3,
    });
  });

  it("lists again when the LIST's ReplicaSets belong to another Deployment of the same name (recreated)", async () => {
    const c = gatedClient({
      get: deployment({ app: 'web' }, 2, 'v2', 'uid-new'),
      list: () => [rs('web-1', 1), rs('web-2', 2)], // controlled by uid-web
    });
    const read = readDeploymentHistory(c.client, 'shop', 'web', cached({ app: 'web' }));
    await c.release('get');
    await c.release('list app=web');
    await c.release('list app=web #2');
    await read;
    expect(c.log).toEqual(['GET sent', 'LIST app=web sent', 'GET answered', 'LIST app=web #2 sent']);
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

  it('when the LIST with the cached selector failed but the selector changed, the re-LIST is used', async () => {
    const c = gatedClient({
      get: deployment({ app: 'web', track: 'new' }),
      list: (s) =>
        s === 'app=web' ? new KubeApiError(500, 'InternalError', 'boom', 'GET', '/y') : [rs('new-1')],
    });
    const read = readDeploymentHistory(c.client, 'shop', 'web', cached({ app: 'web' }));
    await c.release('list app=web');
    await c.release('get');
    await c.release('list app=web,track=new');
    expect((await read).replicaSets.map((r) => r.metadata.name)).toEqual(['new-1']);
  });

  it('each request holds a slot: with one slot the LIST waits for the GET', async () => {
    const slots = new Semaphore(1);
    const c = gatedClient({ get: deployment({ app: 'web' }), list: () => [rs('web-2', 2)] });
    const read = readDeploymentHistory(c.client, 'shop', 'web', cached({ app: 'web' }), slots);
    await new Promise((r) => setImmediate(r));
    expect(c.log).toEqual(['GET sent']);
    await c.release('get');
    await c.release('list app=web');
    await read;
    expect(c.log).toEqual(['GET sent', 'GET answered', 'LIST app=web sent']);
    expect(slots.active).toBe(0);
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

describe('withSlot', () => {
  it('keeps at most `limit` calls in flight across many callers, and every call runs', async () => {
    const slots = new Semaphore(4);
    let inFlight = 0;
    let max = 0;
    const call = async (i: number) => {
      inFlight++;
      max = Math.max(max, inFlight);
      await new Promise((r) => setTimeout(r, i % 3));
      inFlight--;
      return i;
    };
    const done = await Promise.all(Array.from({ length: 100 }, (_, i) => withSlot(slots, () => call(i))));
    expect(done).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(max).toBe(4);
    expect(slots.active).toBe(0);
  });

  it('gives the slot back when the call rejects', async () => {
    const slots = new Semaphore(2);
    const failing = Array.from({ length: 10 }, () =>
      withSlot(slots, () => Promise.reject(new Error('500'))).catch((e: Error) => e.message),
    );
    expect(await Promise.all(failing)).toEqual(Array(10).fill('500'));
    expect(slots.active).toBe(0);
    expect(await withSlot(slots, async () => 'ok')).toBe('ok');
  });
});
