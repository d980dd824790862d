// preValidateGitOps / suspendOwners / resumeOwners against a fake client (the API server's answers and
// refusals), for the review findings: refusals become conditions, the owner must list the Deployment, the
// pause is marked as ours, more than 10 owners fail, an old resume annotation does not resume at once.
import { describe, expect, it } from 'vitest';
import { withRollbackPlanDefaults, type RollbackPlanSpec } from '../api/v1alpha1/rollbackplan.js';
import { KubeApiError } from '../kube/errors.js';
import type { KubeObject } from '../kube/rest.js';
import type { PlanRun } from '../rollback/plan-run.js';
import { SUSPENDED_BY } from './owner-pause.js';
import { preValidateGitOps, resumeOwners, suspendOwners, type OwnerEntry } from './suspend.js';

const apiError = (code: number, reason: string) =>
  new KubeApiError(code, reason, `the server says ${reason}`, 'GET', '/apis/x');

const settings = { ownerNamespaces: ['flux-system'], argocdNamespace: 'argocd', resumeCheckMs: 30_000 };
const ksLabels = (name = 'apps', ns = 'flux-system') => ({
  'kustomize.toolkit.fluxcd.io/name': name,
  'kustomize.toolkit.fluxcd.io/namespace': ns,
});
const kustomization = (entries: string[], over: Record<string, unknown> = {}) => ({
  metadata: { name: 'apps', namespace: 'flux-system', ...over },
  spec: { sourceRef: { kind: 'GitRepository', name: 'repo' } },
  status: { inventory: { entries: entries.map((id) => ({ id, v: 'v1' })) } },
});

interface Fake {
  objects: Map<string, KubeObject>;
  patches: { plural: string; name: string; patch: unknown }[];
  fail: (verb: string, plural: string) => unknown;
  denied: Set<string>;
  events: [string, string, string][];
}

function fakeRun(
  deployments: Record<string, Record<string, unknown>>,
  over: {
    status?: object;
    annotations?: Record<string, string>;
    policy?: 'suspend' | 'refuse' | 'ignore';
  } = {},
): { run: PlanRun; fake: Fake } {
  const fake: Fake = {
    objects: new Map(),
    patches: [],
    fail: () => undefined,
    denied: new Set(),
    events: [],
  };
  const key = (r: { plural: string; namespace?: string; name?: string }) =>
    `${r.plural}/${r.namespace}/${r.name}`;
  const spec = withRollbackPlanDefaults({
    scope: 'app',
    targets: {},
    gitops: { policy: over.policy ?? 'suspend' },
  } as RollbackPlanSpec);
  const histories = new Map(
    Object.entries(deployments).map(([name, meta]) => [
      name,
      { deployment: { metadata: { name, namespace: 'shop', ...meta } }, replicaSets: [] },
    ]),
  );
  const run = {
    plan: {
      metadata: { name: 'p', namespace: 'shop', uid: 'plan-uid', annotations: over.annotations ?? {} },
    },
    namespace: 'shop',
    spec,
    status: structuredClone(over.status ?? {}),
    client: {
      get: async (r: { plural: string; namespace: string; name: string }) => {
        const e = fake.fail('get', r.plural);
        if (e) throw e;
        const o = fake.objects.get(key(r));
        if (!o) throw apiError(404, 'NotFound');
        return structuredClone(o);
      },
      patch: async (r: { plural: string; namespace: string; name: string }, _t: string, patch: unknown) => {
        const e = fake.fail('patch', r.plural);
        if (e) throw e;
        fake.patches.push({ plural: r.plural, name: r.name, patch });
        const o = fake.objects.get(key(r)) as any;
        for (const op of patch as { op: string; path: string; value?: unknown }[]) {
          if (op.op === 'test') continue;
          const parts = op.path
            .split('/')
            .slice(1)
            .map((p) => p.replace('~1', '/').replace('~0', '~'));
          let at = o;
          for (const p of parts.slice(0, -1)) at = at[p] ??= {};
          if (op.op === 'remove') delete at[parts.at(-1)!];
          else at[parts.at(-1)!] = op.value;
        }
        return o;
      },
    },
    log: { info() {}, warn() {}, debug() {}, error() {} },
    now: () => new Date('2026-01-01T00:00:00Z'),
    allPlans: () => [],
    event: (t: string, r: string, m: string) => fake.events.push([t, r, m]),
    checkpoint: async () => {},
    cache: {},
    access: {
      check: async (c: { verb: string; resource: string; namespace: string }) => ({
        allowed: !fake.denied.has(`${c.verb} ${c.resource} ${c.namespace}`),
        reason: '',
      }),
    },
    histories,
    gitops: settings,
  } as unknown as PlanRun;
  return { run, fake };
}
const KS = 'kustomizations/flux-system/apps';

describe('preValidateGitOps', () => {
  it('fails with GitOpsForbidden naming verb, resource, namespace and the ClusterRole when RBAC is missing', async () => {
    const { run, fake } = fakeRun({ web: { labels: ksLabels() } });
    fake.objects.set(KS, kustomization(['shop_web_apps_Deployment']));
    fake.denied.add('get kustomizations flux-system');
    fake.fail = () => apiError(403, 'Forbidden');
    const out = await preValidateGitOps(run, settings);
    expect(out).toMatchObject({ kind: 'failed', reason: 'GitOpsForbidden' });
    expect((out as { message: string }).message).toMatch(
      /may not get kustomizations\.kustomize\.toolkit\.fluxcd\.io in namespace flux-system.*nxt-rollback-operator-gitops-owners/,
    );
  });

  it('maps a 403 on the GET (access review allowed it) to GitOpsForbidden, not a thrown error', async () => {
    const { run, fake } = fakeRun({ web: { labels: ksLabels() } });
    fake.fail = () => apiError(403, 'Forbidden');
    const out = await preValidateGitOps(run, settings);
    expect(out).toMatchObject({ kind: 'failed', reason: 'GitOpsForbidden' });
    expect((out as { message: string }).message).toMatch(
      /get Flux Kustomization flux-system\/apps.*forbidden/,
    );
  });

  it('policy refuse fails closed when the owner cannot be read (missing RBAC must not turn refuse into ignore)', async () => {
    const { run, fake } = fakeRun({ web: { labels: ksLabels() } }, { policy: 'refuse' });
    fake.fail = () => apiError(403, 'Forbidden');
    const out = await preValidateGitOps(run, settings);
    expect(out).toMatchObject({ kind: 'failed', reason: 'GitOpsForbidden' });
    expect((out as { message: string }).message).toMatch(/^cannot check the GitOps owners/);
  });

  it('maps a 404 / 422 to GitOpsOwnerUnavailable', async () => {
    for (const e of [apiError(404, 'NotFound'), apiError(422, 'Invalid')]) {
      const { run, fake } = fakeRun({ web: { labels: ksLabels() } });
      fake.fail = () => e;
      expect(await preValidateGitOps(run, settings)).toMatchObject({
        kind: 'failed',
        reason: 'GitOpsOwnerUnavailable',
      });
    }
  });

  it('re-throws a transient error (retried with backoff)', async () => {
    const { run, fake } = fakeRun({ web: { labels: ksLabels() } });
    fake.fail = () => apiError(503, 'ServiceUnavailable');
    await expect(preValidateGitOps(run, settings)).rejects.toThrow(/503/);
  });

  it('does not act on a Kustomization that does not list the Deployment in its inventory (labels are forgeable)', async () => {
    for (const policy of ['suspend', 'refuse'] as const) {
      const { run, fake } = fakeRun({ web: { labels: ksLabels('flux-system') } }, { policy });
      fake.objects.set('kustomizations/flux-system/flux-system', {
        ...kustomization(['other_web_apps_Deployment']),
        metadata: { name: 'flux-system', namespace: 'flux-system' },
      });
      const out = await preValidateGitOps(run, settings);
      expect(out).toMatchObject({ kind: 'done' });
      expect(run.status.gitops).toBeUndefined();
      expect(fake.events.map((e) => e[1])).toContain('GitOpsOwnerUncertain');
      expect(fake.events.find((e) => e[1] === 'GitOpsOwnerUncertain')![2]).toMatch(
        /status\.inventory does not list shop_web_apps_Deployment/,
      );
    }
  });

  it('acts on a Kustomization that lists the Deployment', async () => {
    const { run, fake } = fakeRun({ web: { labels: ksLabels() } });
    fake.objects.set(KS, kustomization(['shop_web_apps_Deployment']));
    expect(await preValidateGitOps(run, settings)).toMatchObject({ kind: 'done' });
    expect(run.status.gitops?.owners).toMatchObject([
      { name: 'apps', deployments: ['web'], state: 'Pending' },
    ]);
  });

  it('verifies an Argo CD Application by status.resources and a HelmRelease by namespace and Helm annotations', async () => {
    const app = {
      metadata: { name: 'shop', namespace: 'argocd' },
      spec: {},
      status: { resources: [{ group: 'apps', kind: 'Deployment', namespace: 'shop', name: 'web' }] },
    };
    const tracked = { annotations: { 'argocd.argoproj.io/tracking-id': 'shop:apps/Deployment:shop/web' } };
    const s2 = { ...settings, ownerNamespaces: ['argocd'] };
    let { run, fake } = fakeRun({ web: tracked });
    fake.objects.set('applications/argocd/shop', app);
    await preValidateGitOps(run, s2);
    expect(run.status.gitops?.owners).toHaveLength(1);
    ({ run, fake } = fakeRun({ web: tracked }));
    fake.objects.set('applications/argocd/shop', {
      ...app,
      status: { resources: [{ group: 'apps', kind: 'Deployment', namespace: 'shop', name: 'other' }] },
    });
    await preValidateGitOps(run, s2);
    expect(run.status.gitops, 'lists other objects, not this one: a forged label').toBeUndefined();
    // An owner that lists nothing yet (first reconcile) is trusted: skipping it would let its sync undo the rollback.
    ({ run, fake } = fakeRun({ web: tracked }));
    fake.objects.set('applications/argocd/shop', { ...app, status: { resources: [] } });
    await preValidateGitOps(run, s2);
    expect(run.status.gitops?.owners).toHaveLength(1);
    ({ run, fake } = fakeRun({ web: { labels: ksLabels('fresh') } }));
    fake.objects.set('kustomizations/flux-system/fresh', kustomization([], { name: 'fresh' }));
    await preValidateGitOps(run, settings);
    expect(run.status.gitops?.owners).toHaveLength(1);

    const hrLabels = {
      'helm.toolkit.fluxcd.io/name': 'web',
      'helm.toolkit.fluxcd.io/namespace': 'flux-system',
    };
    const hr = { metadata: { name: 'web', namespace: 'flux-system' }, spec: { targetNamespace: 'shop' } };
    const helmAnn = { 'meta.helm.sh/release-name': 'shop-web', 'meta.helm.sh/release-namespace': 'shop' };
    ({ run, fake } = fakeRun({ web: { labels: hrLabels, annotations: helmAnn } }));
    fake.objects.set('helmreleases/flux-system/web', hr);
    await preValidateGitOps(run, settings);
    expect(run.status.gitops?.owners).toHaveLength(1);
    ({ run, fake } = fakeRun({ web: { labels: hrLabels } }));
    fake.objects.set('helmreleases/flux-system/web', hr);
    await preValidateGitOps(run, settings);
    expect(run.status.gitops).toBeUndefined();
  });

  it('fails with more than 10 owners instead of dropping some', async () => {
    const deps = Object.fromEntries(
      Array.from({ length: 11 }, (_, i) => [`web${i}`, { labels: ksLabels(`ks${i}`) }]),
    );
    const { run, fake } = fakeRun(deps);
    for (let i = 0; i < 11; i++)
      fake.objects.set(`kustomizations/flux-system/ks${i}`, {
        ...kustomization([`shop_web${i}_apps_Deployment`]),
        metadata: { name: `ks${i}`, namespace: 'flux-system' },
      });
    const out = await preValidateGitOps(run, settings);
    expect(out).toMatchObject({ kind: 'failed', reason: 'GitOpsTooManyOwners' });
    expect((out as { message: string }).message).toMatch(/11 GitOps owners.*at most 10/);
  });
});

const pending = (over: Partial<OwnerEntry> = {}): OwnerEntry => ({
  tool: 'flux',
  kind: 'Kustomization',
  name: 'apps',
  namespace: 'flux-system',
  deployments: ['web'],
  state: 'Pending',
  ...over,
});
const withOwner = (o: OwnerEntry, extra: object = {}) => ({
  gitops: { policy: 'suspend', owners: [o], ...extra },
});

describe('suspendOwners', () => {
  it('fails the step (no throw) on a 403 / 404 / 422 reading or patching the owner', async () => {
    for (const verb of ['get', 'patch'])
      for (const code of [403, 404, 422]) {
        const { run, fake } = fakeRun({ web: {} }, { status: withOwner(pending()) });
        fake.objects.set(KS, kustomization([]));
        fake.fail = (v, plural) =>
          v === verb && plural === 'kustomizations' ? apiError(code, 'X') : undefined;
        const out = await suspendOwners(run);
        expect(out, `${verb} ${code}`).toMatchObject({
          kind: 'failed',
          reason: code === 403 ? 'GitOpsForbidden' : 'GitOpsOwnerUnavailable',
        });
      }
  });

  it('a failed test op on the pause (the owner changed since it was read) is retried, not a failure', async () => {
    const { run, fake } = fakeRun({ web: {} }, { status: withOwner(pending()) });
    fake.objects.set(KS, kustomization([]));
    fake.fail = (v, plural) =>
      v === 'patch' && plural === 'kustomizations'
        ? new KubeApiError(
            422,
            'Invalid',
            'Kustomization.kustomize.toolkit.fluxcd.io "apps" is invalid: patch: Invalid value: "...": testing value /metadata/resourceVersion failed: test failed',
            'PATCH',
            '/apis/x',
          )
        : undefined;
    await expect(suspendOwners(run)).rejects.toThrow(/testing value/);
  });

  it('reads the source best effort: a forbidden source does not block the pause, and says so', async () => {
    const { run, fake } = fakeRun({ web: {} }, { status: withOwner(pending()) });
    fake.objects.set(KS, kustomization([]));
    fake.fail = (_v, plural) => (plural === 'gitrepositories' ? apiError(403, 'Forbidden') : undefined);
    expect(await suspendOwners(run)).toBeUndefined();
    const o = run.status.gitops!.owners[0]!;
    expect(o).toMatchObject({ state: 'Suspended', source: 'GitRepository flux-system/repo' });
    expect(o.revisionAtSuspend).toBeUndefined();
    expect(o.message).toMatch(/revision could not be read.*gitops-resume annotation/);
  });

  it('marks its pause with the plan uid', async () => {
    const { run, fake } = fakeRun({ web: {} }, { status: withOwner(pending()) });
    fake.objects.set(KS, kustomization([]));
    await suspendOwners(run);
    const ks = fake.objects.get(KS) as any;
    expect(ks.spec.suspend).toBe(true);
    expect(ks.metadata.annotations[SUSPENDED_BY]).toBe('plan-uid');
  });

  it('on recovery (Suspending): paused without our marker is AlreadySuspended; with it, Suspended', async () => {
    let { run, fake } = fakeRun({ web: {} }, { status: withOwner(pending({ state: 'Suspending' })) });
    fake.objects.set(KS, { ...kustomization([]), spec: { suspend: true } });
    await suspendOwners(run);
    expect(run.status.gitops!.owners[0]!.state).toBe('AlreadySuspended');
    expect(fake.patches).toEqual([]);

    ({ run, fake } = fakeRun({ web: {} }, { status: withOwner(pending({ state: 'Suspending' })) }));
    fake.objects.set(KS, {
      ...kustomization([], { annotations: { [SUSPENDED_BY]: 'plan-uid' } }),
      spec: { suspend: true },
    });
    await suspendOwners(run);
    expect(run.status.gitops!.owners[0]!.state).toBe('Suspended');
  });

  it('on recovery (Suspending) of an owner not paused: re-records the original and pauses', async () => {
    const { run, fake } = fakeRun(
      { web: {} },
      { status: withOwner(pending({ state: 'Suspending', previous: 'true' })) },
    );
    fake.objects.set(KS, { ...kustomization([]), spec: { suspend: false } });
    await suspendOwners(run);
    expect(run.status.gitops!.owners[0]).toMatchObject({ state: 'Suspended', previous: 'false' });
    expect((fake.objects.get(KS) as any).spec.suspend).toBe(true);
  });

  it('takes a gitops-resume annotation already on the plan as the starting point (it does not resume at once)', async () => {
    const { run, fake } = fakeRun(
      { web: {} },
      { status: withOwner(pending()), annotations: { 'rollback.nxtnewday.io/gitops-resume': 'old' } },
    );
    fake.objects.set(KS, kustomization([]));
    await suspendOwners(run);
    expect(run.status.gitops!.lastResumeRequest).toBe('old');
    const again = await resumeOwners({
      plan: run.plan,
      spec: run.spec,
      status: run.status,
      client: run.client,
      settings,
      now: run.now,
      event: () => {},
    });
    expect(again).toBeDefined();
    expect(run.status.gitops!.owners[0]!.state).toBe('Suspended');
  });
});

describe('resumeOwners', () => {
  const suspended = (o: Partial<OwnerEntry> = {}) =>
    pending({ state: 'Suspended', suspendedAt: '2026-01-01T00:00:00Z', ...o });
  const ctx = (run: PlanRun) => ({
    plan: run.plan,
    spec: run.spec,
    status: run.status,
    client: run.client,
    settings,
    now: run.now,
    event: (t: string, r: string, m: string) => void [t, r, m],
  });
  const ours = { annotations: { [SUSPENDED_BY]: 'plan-uid' } };

  it('a 403 on the owner sets GitOpsSuspended reason ResumeForbidden and requeues slowly (no throw)', async () => {
    const { run, fake } = fakeRun(
      { web: {} },
      { status: withOwner(suspended()), annotations: { 'rollback.nxtnewday.io/gitops-resume': 'now' } },
    );
    fake.objects.set(KS, { ...kustomization([], ours), spec: { suspend: true } });
    for (const verb of ['get', 'patch']) {
      fake.fail = (v) => (v === verb ? apiError(403, 'Forbidden') : undefined);
      const again = await resumeOwners(ctx(run));
      expect(again).toBeGreaterThanOrEqual(120_000);
      const c = run.status.conditions!.find((x) => x.type === 'GitOpsSuspended')!;
      expect(c).toMatchObject({ status: 'True', reason: 'ResumeForbidden' });
      expect(c.message).toMatch(
        new RegExp(`${verb} Flux Kustomization.*nxt-rollback-operator-gitops-owners`),
      );
      expect(run.status.gitops!.owners[0]!.state).toBe('Suspended');
      expect(run.status.gitops!.lastResumeRequest).toBeUndefined();
    }
  });

  it('resumes only with our marker, and removes it', async () => {
    const ann = { 'rollback.nxtnewday.io/gitops-resume': 'now' };
    let { run, fake } = fakeRun({ web: {} }, { status: withOwner(suspended()), annotations: ann });
    fake.objects.set(KS, { ...kustomization([], ours), spec: { suspend: true } });
    expect(await resumeOwners(ctx(run))).toBeUndefined();
    expect(run.status.gitops!.owners[0]!.state).toBe('Resumed');
    const ks = fake.objects.get(KS) as any;
    expect(ks.spec.suspend).toBeUndefined();
    expect(ks.metadata.annotations[SUSPENDED_BY]).toBeUndefined();

    ({ run, fake } = fakeRun({ web: {} }, { status: withOwner(suspended()), annotations: ann }));
    fake.objects.set(KS, { ...kustomization([]), spec: { suspend: true } });
    await resumeOwners(ctx(run));
    expect(run.status.gitops!.owners[0]!.state).toBe('LeftAsIs');
    expect(fake.patches).toEqual([]);
  });

  it('an owner already restored (resume patch landed, status write lost) is Resumed, not LeftAsIs', async () => {
    const ann = { 'rollback.nxtnewday.io/gitops-resume': 'now' };
    let { run, fake } = fakeRun({ web: {} }, { status: withOwner(suspended()), annotations: ann });
    // What our resume patch leaves: spec.suspend back to the recorded original (unset), marker removed.
    fake.objects.set(KS, kustomization([]));
    expect(await resumeOwners(ctx(run))).toBeUndefined();
    expect(run.status.gitops!.owners[0]).toMatchObject({ state: 'Resumed', message: /already in place/ });
    expect(run.status.gitops!.lastResumeRequest).toBe('now');
    expect(fake.patches).toEqual([]);

    // Unpaused but not the original (suspend: false where nothing was set): someone else's change.
    ({ run, fake } = fakeRun({ web: {} }, { status: withOwner(suspended()), annotations: ann }));
    fake.objects.set(KS, { ...kustomization([]), spec: { suspend: false } });
    await resumeOwners(ctx(run));
    expect(run.status.gitops!.owners[0]!.state).toBe('LeftAsIs');
  });

  it('a Suspending owner whose pause never landed is LeftAsIs at once (nothing to wait for)', async () => {
    const { run, fake } = fakeRun({ web: {} }, { status: withOwner(pending({ state: 'Suspending' })) });
    fake.objects.set(KS, kustomization([]));
    expect(await resumeOwners(ctx(run))).toBeUndefined();
    expect(run.status.gitops!.owners[0]).toMatchObject({ state: 'LeftAsIs', message: /never landed/ });
    expect(fake.patches).toEqual([]);
  });
});
