import { describe, expect, it } from 'vitest';
import { withRollbackPlanDefaults, type RollbackPlanStatus } from '../api/v1alpha1/rollbackplan.js';
import { KubeApiError } from '../kube/errors.js';
import type { KubeClient } from '../kube/rest.js';
import { preValidateApp, rollBackDeployments } from './app-steps.js';
import type { RawDeployment, RawReplicaSet } from './deployment-undo.js';
import { observedState } from './pending-rollback.js';
import type { PlanRun } from './plan-run.js';
import { postValidate } from './post-validation.js';

const REVISION = 'deployment.kubernetes.io/revision';
const template = (app: string, image: string, hash?: string) => ({
  metadata: { labels: { app, ...(hash ? { 'pod-template-hash': hash } : {}) } },
  spec: { containers: [{ name: app, image }] },
});
const deployment = (name: string): RawDeployment =>
  ({
    metadata: { name, namespace: 'shop', uid: `uid-${name}`, resourceVersion: '10', generation: 2 },
    spec: { replicas: 1, selector: { matchLabels: { app: name } }, template: template(name, 'v2') },
    status: { observedGeneration: 2, replicas: 1, updatedReplicas: 1, availableReplicas: 1 },
  }) as RawDeployment;
const replicaSet = (dep: string, rev: number, image: string): RawReplicaSet => ({
  metadata: {
    name: `${dep}-${rev}`,
    creationTimestamp: `2026-01-01T00:00:0${rev}Z`,
    ownerReferences: [{ uid: `uid-${dep}`, controller: true }],
    annotations: { [REVISION]: String(rev) },
  },
  spec: { template: template(dep, image, `hash-${rev}`) },
});

/**
 * A plan run after pre-validation pinned revision 1 of each Deployment; the client answers the rollback
 * PATCH with the new generation (not yet observed by the controller) and counts every call.
 */
function fakeRun(names: string[]) {
  const calls: string[] = [];
  const checkpoints: RollbackPlanStatus[] = [];
  const client = {
    patch: async (ref: { name: string }) => {
      calls.push(`PATCH ${ref.name}`);
      const d = deployment(ref.name);
      return { ...d, metadata: { ...d.metadata, resourceVersion: '11', generation: 3 } };
    },
    get: async (ref: { name: string }) => {
      calls.push(`GET ${ref.name}`);
      return deployment(ref.name);
    },
  } as unknown as KubeClient;
  const status: RollbackPlanStatus = {
    steps: [{ name: 'PostValidation', startedAt: new Date().toISOString(), result: 'Running' }],
    deployments: names.map((name) => ({
      name,
      fromRevision: 2,
      toRevision: 1,
      replicaSet: `${name}-1`,
      ...observedState(deployment(name)),
      result: 'Pending' as const,
    })),
  };
  const events: string[] = [];
  const run = {
    namespace: 'shop',
    spec: withRollbackPlanDefaults({
      scope: 'app',
      targets: { deployments: names.map((name) => ({ name })) },
    }),
    status,
    client,
    now: () => new Date(),
    event: (_t: string, reason: string) => events.push(reason),
    checkpoint: async () => void checkpoints.push(structuredClone(status)),
    histories: new Map(
      names.map((n) => [
        n,
        { deployment: deployment(n), replicaSets: [replicaSet(n, 1, 'v1'), replicaSet(n, 2, 'v2')] },
      ]),
    ),
    patched: new Map(),
    // The watch cache has not caught up with the patch yet: it still shows the old, rolled-out generation.
    cache: { deployment: (n: string) => deployment(n) },
    checks: { http: () => undefined, problem: () => undefined, settle: () => {} },
  } as unknown as PlanRun;
  return { run, calls, checkpoints, events };
}

describe('rollBackDeployments', () => {
  it('writes a checkpoint between Deployments, none after the last one (the next write carries it)', async () => {
    const { run, calls, checkpoints } = fakeRun(['web', 'api', 'cart']);
    const outcome = await rollBackDeployments(run);
    expect(calls).toEqual(['PATCH web', 'PATCH api', 'PATCH cart']);
    // Before api's and cart's patch the earlier results are durable.
    expect(checkpoints.map((s) => s.deployments!.map((d) => d.result))).toEqual([
      ['RolledBack', 'Pending', 'Pending'],
      ['RolledBack', 'RolledBack', 'Pending'],
    ]);
    expect(run.status.deployments!.every((d) => d.result === 'RolledBack' && d.generation === 3)).toBe(true);
    expect(outcome).toMatchObject({
      kind: 'done',
      message: '3 rolled back, 0 already at the wanted revision',
    });
  });

  it('one Deployment: no checkpoint at all after its patch', async () => {
    const { run, checkpoints } = fakeRun(['web']);
    await rollBackDeployments(run);
    expect(checkpoints).toEqual([]);
  });

  it('says its Events named every change (no AppRollbackSucceeded repeating DeploymentRolledBack)', async () => {
    const { run, events } = fakeRun(['web', 'api']);
    expect(await rollBackDeployments(run)).toMatchObject({ kind: 'done', reported: true });
    expect(events).toEqual(['DeploymentRolledBack', 'DeploymentRolledBack']);
  });

  it('a Deployment found in place (resumed after a crash) has no Event: the step result stays an Event', async () => {
    const { run, calls, events } = fakeRun(['web']);
    run.histories.get('web')!.deployment.spec.template = template('web', 'v1');
    const outcome = await rollBackDeployments(run);
    expect(calls).toEqual([]);
    expect(events).toEqual([]);
    expect(outcome).not.toHaveProperty('reported');
  });
});

describe('postValidate right after the rollback', () => {
  it('reads the patched generation from the PATCH response, not with a GET', async () => {
    const { run, calls } = fakeRun(['web']);
    await rollBackDeployments(run);
    const outcome = await postValidate(run, 'PostValidation');
    expect(calls).toEqual(['PATCH web']);
    expect(outcome).toMatchObject({
      kind: 'wait',
      message: 'waiting for deployment "web" spec update to be observed',
    });
  });

  it('without a patch in this reconcile, a cache behind the recorded generation is read with a GET', async () => {
    const { run, calls } = fakeRun(['web']);
    await rollBackDeployments(run);
    run.patched!.clear();
    calls.length = 0;
    await postValidate(run, 'PostValidation');
    expect(calls).toEqual(['GET web']);
  });
});

/**
 * A plan on `names` about to pre-validate: the client answers each GET after a few ticks (`fail` says which
 * Deployments answer an error instead) and counts the GETs in flight.
 */
function preValidationRun(names: string[], fail: Record<string, KubeApiError>) {
  const stats = { gets: 0, inFlight: 0, maxInFlight: 0 };
  const tick = () => new Promise((r) => setImmediate(r));
  const client = {
    get: async (ref: { name: string }) => {
      stats.gets++;
      stats.inFlight++;
      stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
      await tick();
      await tick();
      stats.inFlight--;
      const err = fail[ref.name];
      if (err) throw err;
      return deployment(ref.name);
    },
    list: async (_ref: unknown, opts: { labelSelector: string }) => {
      const name = opts.labelSelector.replace('app=', '');
      return { items: [replicaSet(name, 1, 'v1'), replicaSet(name, 2, 'v2')] };
    },
  } as unknown as KubeClient;
  const run = {
    namespace: 'shop',
    spec: withRollbackPlanDefaults({
      scope: 'app',
      targets: { deployments: names.map((name) => ({ name })) },
    }),
    status: { steps: [{ name: 'PreValidation', startedAt: new Date().toISOString(), result: 'Running' }] },
    client,
    now: () => new Date(),
    histories: new Map(),
    cache: { deployment: (n: string) => deployment(n) },
  } as unknown as PlanRun;
  return { run, stats };
}

describe('preValidateApp reads the targets in batches', () => {
  const names = Array.from({ length: 11 }, (_, i) => `svc${i + 1}`);
  const notFound = (n: string) =>
    new KubeApiError(404, 'NotFound', `deployments.apps "${n}" not found`, 'GET', '/x');

  it('at most 8 targets in flight; every missing target named, in the order of the plan', async () => {
    const { run, stats } = preValidationRun(names, { svc10: notFound('svc10'), svc2: notFound('svc2') });
    const outcome = await preValidateApp(run);
    expect(stats).toMatchObject({ gets: 11, maxInFlight: 8 });
    expect(outcome).toEqual({
      kind: 'failed',
      reason: 'TargetNotFound',
      message: 'Deployment "svc2", "svc10" not found in namespace shop',
    });
  });

  it('another error of any target (here in the second batch) is thrown, even with a 404 before it', async () => {
    const boom = new KubeApiError(500, 'InternalError', 'etcd timeout', 'GET', '/x');
    const { run, stats } = preValidationRun(names, { svc2: notFound('svc2'), svc10: boom });
    await expect(preValidateApp(run)).rejects.toBe(boom);
    expect(stats.gets).toBe(11);
  });
});
