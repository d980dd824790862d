import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { installArgoCdApplicationCrd } from '../env/argocd.js';
import { ArgoSelfHealActor } from '../support/argocd-self-heal.js';
import {
  createTestNamespace,
  deleteTestNamespace,
  eventually,
  kubectl,
  testClients,
} from '../support/kube.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import {
  applyPlan,
  condition,
  getPlan,
  waitForEvents,
  waitPlanPhase,
  withReasons,
} from '../support/plans.js';
import { deploymentWithHistory, imageOf } from '../support/workloads.js';

// spec.gitops.policy suspend with an Argo CD Application: the real Application CRD (argo-cd v3.5.7 module
// sources, test/env/argocd.ts) and a stand-in for Argo CD's self-heal (test/support/argocd-self-heal.ts: it
// re-applies the desired template whenever automated sync is on). The Application lives in Argo CD's
// control-plane namespace (ARGOCD_NAMESPACE), named by a plain tracking id, and that namespace is allowed in
// GITOPS_OWNER_NAMESPACES. docs/gitops.md "Argo CD" shows this workflow.

const V1 = 'nginx:1.25';
const V2 = 'nginx:1.26';
const V3 = 'nginx:1.27';
const APP = { group: 'argoproj.io', version: 'v1alpha1', plural: 'applications' };
const SYNC_POLICY = {
  automated: { prune: true, selfHeal: true },
  syncOptions: ['CreateNamespace=true', 'ServerSideApply=true'],
  retry: { limit: 2, backoff: { duration: '5s', factor: 2, maxDuration: '3m' } },
};

describe('GitOps policy suspend with an Argo CD Application', () => {
  const { custom } = testClients();
  let ns = '';
  let argoNs = '';
  let op: OperatorProcess | undefined;
  let actor: ArgoSelfHealActor | undefined;
  const log = (m: string) => console.log(`[gitops-argocd] ${m}`);
  const application = (): Promise<any> =>
    custom.getNamespacedCustomObject({ ...APP, namespace: argoNs, name: 'shop' });
  const setSyncRevision = (revision: string) =>
    kubectl(
      '-n',
      argoNs,
      'patch',
      'application',
      'shop',
      '--type=merge',
      '-p',
      // status.resources: what Argo CD lists as applied by the Application (the operator checks it).
      JSON.stringify({
        status: {
          sync: { status: 'Synced', revision },
          resources: [{ group: 'apps', version: 'v1', kind: 'Deployment', namespace: ns, name: 'shop' }],
        },
      }),
    );

  beforeAll(async () => {
    [ns, argoNs] = await Promise.all([createTestNamespace('argo-app'), createTestNamespace('argocd')]);
    await installArgoCdApplicationCrd(inject('kubeconfigPath'), log);
    op = await startOperator({
      env: {
        WATCH_NAMESPACES: ns,
        ARGOCD_NAMESPACE: argoNs,
        GITOPS_OWNER_NAMESPACES: argoNs,
        // Longer than the test: the resume on a new sync revision comes from the watch on the Application.
        GITOPS_RESUME_CHECK_INTERVAL: '10m',
      },
    });
    await deploymentWithHistory(ns, 'shop', [V1, V2]);
    // What Argo CD writes on what it applies (annotation tracking, the default since v3.0).
    await kubectl(
      '-n',
      ns,
      'annotate',
      'deployment/shop',
      `argocd.argoproj.io/tracking-id=shop:apps/Deployment:${ns}/shop`,
    );
    await custom.createNamespacedCustomObject({
      ...APP,
      namespace: argoNs,
      body: {
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'Application',
        metadata: { name: 'shop', namespace: argoNs },
        spec: {
          project: 'default',
          source: { repoURL: 'https://git.example.com/shop.git', path: 'deploy', targetRevision: 'HEAD' },
          destination: { server: 'https://kubernetes.default.svc', namespace: ns },
          syncPolicy: SYNC_POLICY,
        },
      },
    });
    await setSyncRevision('1111111111111111111111111111111111111111');
    await op.waitReady();
    actor = await ArgoSelfHealActor.start(
      { namespace: argoNs, name: 'shop' },
      { namespace: ns, name: 'shop' },
    );
  }, 10 * 60_000);

  afterAll(async () => {
    await actor?.stop();
    await op?.kill();
    for (const n of [ns, argoNs].filter(Boolean)) await deleteTestNamespace(n);
  });

  it('the stand-in self-heals a manual change while automated sync is on', async () => {
    await kubectl('-n', ns, 'set', 'image', 'deployment/shop', `app=${V3}`);
    await eventually(
      'the self-heal to put the desired image back',
      // The stand-in counts a heal once its patch has returned: wait for the count too, or the heal lands in
      // the next test's count (seen on a loaded machine).
      async () => (await imageOf(ns, 'shop')) === V2 && actor!.heals > 0,
      30_000,
      200,
    );
    expect(actor!.heals).toBeGreaterThan(0);
  });

  it('suspend: automated sync off before the rollback, the self-heal defeated, syncPolicy restored exactly on a new revision', async () => {
    const healsBefore = actor!.heals;
    // Revision 1 (V1): the previous revision is the V3 the first test set by hand (the self-heal made V2 revision 4).
    await applyPlan(ns, 'undo-shop', {
      scope: 'app',
      targets: { deployments: [{ name: 'shop', toRevision: 1 }] },
    });
    const plan = await waitPlanPhase(ns, 'undo-shop', ['Succeeded', 'Failed']);
    expect(plan.status.phase, JSON.stringify(plan.status.conditions)).toBe('Succeeded');
    const owner = plan.status.gitops.owners[0];
    expect(owner).toMatchObject({
      tool: 'argocd',
      kind: 'Application',
      name: 'shop',
      namespace: argoNs,
      state: 'Suspended',
      revisionAtSuspend: '1111111111111111111111111111111111111111',
    });
    expect(JSON.parse(owner.previous), 'the original syncPolicy, exactly').toEqual(SYNC_POLICY);
    expect((await application()).spec.syncPolicy).toEqual({
      ...SYNC_POLICY,
      automated: { ...SYNC_POLICY.automated, enabled: false },
    });
    expect(condition(plan, 'GitOpsSuspended')).toMatchObject({
      status: 'True',
      message: expect.stringContaining(
        `Argo CD Application ${argoNs}/shop suspended; still needed: revert the release in Git`,
      ),
    });
    // The rollback stays: the stand-in sees the change and the Application, and does nothing.
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await imageOf(ns, 'shop')).toBe(V1);
    expect(actor!.heals, 'no self-heal while automated sync is off').toBe(healsBefore);

    // Argo CD's refresh sees a new commit (the revert) on the source: the operator resumes.
    await setSyncRevision('2222222222222222222222222222222222222222');
    const resumed = await eventually(
      'the Application to be resumed',
      async () => {
        const p = await getPlan(ns, 'undo-shop');
        return p.status.gitops.owners[0].state === 'Resumed' ? p : undefined;
      },
      30_000,
      250,
    );
    expect(resumed.status.gitops.owners[0].resumedBy).toBe('newRevision');
    expect((await application()).spec.syncPolicy, 'restored exactly').toEqual(SYNC_POLICY);
    await waitForEvents(ns, 'undo-shop', withReasons('GitOpsSuspended', 'GitOpsResumed'));
    // Automated sync is on again, and "Git" (the stand-in's desired template) still says V2.
    await eventually(
      'the self-heal to apply the desired template again',
      async () => (await imageOf(ns, 'shop')) === V2,
      30_000,
      200,
    );
  });
});
