import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeClient } from '../../operator/kube/rest.js';
import { applyDeploymentRollback, readDeploymentHistory } from '../../operator/rollback/deployment-io.js';
import {
  REVISION_ANNOTATION,
  planDeploymentRollback,
  type RawDeployment,
} from '../../operator/rollback/deployment-undo.js';
import {
  createTestNamespace,
  deleteTestNamespace,
  eventually,
  kubectl,
  restrictedContainer,
  testClients,
} from '../support/kube.js';

// Our undo must leave a Deployment exactly as `kubectl rollout undo` does. Twin Deployments get the same
// history; one is rolled back by our code, the other by the real kubectl, and the results are compared.
// The twins share their name and live in two namespaces, so even their selectors and labels are identical
// without two Deployments in one namespace selecting each other's pods.
describe('deployment undo parity with kubectl rollout undo', () => {
  const { apps, custom, kc } = testClients();
  const client = new KubeClient(kc);
  let ours = '';
  let theirs = '';
  beforeAll(async () => {
    [ours, theirs] = await Promise.all([
      createTestNamespace('undo-ours'),
      createTestNamespace('undo-kubectl'),
    ]);
  });
  afterAll(async () => {
    await Promise.all([deleteTestNamespace(ours), deleteTestNamespace(theirs)]);
  });

  const CHANGE_CAUSE = 'kubernetes.io/change-cause';
  const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';
  // Each revision changes the image and the change-cause; revision 2 adds an env var, revision 3 an annotation
  // that no earlier ReplicaSet carries (so a rollback must drop it), and last-applied changes every time (so a
  // rollback must keep the Deployment's current one).
  const REVISIONS: {
    image: string;
    env?: { name: string; value: string }[];
    annotations: Record<string, string>;
  }[] = [
    {
      image: 'nginx:1.25',
      annotations: { [CHANGE_CAUSE]: 'rev 1: nginx 1.25', [LAST_APPLIED]: '{"rev":1}' },
    },
    {
      image: 'nginx:1.26',
      env: [{ name: 'FEATURE_X', value: 'on' }],
      annotations: { [CHANGE_CAUSE]: 'rev 2: nginx 1.26 + FEATURE_X', [LAST_APPLIED]: '{"rev":2}' },
    },
    {
      image: 'nginx:1.27',
      annotations: {
        [CHANGE_CAUSE]: 'rev 3: nginx 1.27',
        [LAST_APPLIED]: '{"rev":3}',
        'example.com/only-in-rev-3': 'yes',
      },
    },
  ];

  const readDeployment = async (namespace: string, name: string) =>
    (await custom.getNamespacedCustomObject({
      group: 'apps',
      version: 'v1',
      plural: 'deployments',
      namespace,
      name,
    })) as RawDeployment;

  const waitRolledOut = (namespace: string, name: string, revision: number) =>
    eventually(`deployment ${namespace}/${name} rolled out at revision ${revision}`, async () => {
      const d = await readDeployment(namespace, name);
      const s = d.status as Record<string, number> | undefined;
      return (
        d.metadata.annotations?.[REVISION_ANNOTATION] === String(revision) &&
        s?.observedGeneration === d.metadata['generation'] &&
        s?.updatedReplicas === 1 &&
        s?.readyReplicas === 1 &&
        s?.replicas === 1
      );
    });

  /** Creates `name` and takes it through `count` revisions, waiting for each rollout. */
  async function createWithHistory(ns: string, name: string, count = REVISIONS.length): Promise<void> {
    const labels = { app: name };
    const podSpec = (i: number) => ({
      containers: [
        {
          ...restrictedContainer('web', REVISIONS[i]!.image),
          ...(REVISIONS[i]!.env ? { env: REVISIONS[i]!.env } : {}),
        },
      ],
    });
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name, annotations: REVISIONS[0]!.annotations },
        spec: {
          replicas: 1,
          selector: { matchLabels: labels },
          template: { metadata: { labels }, spec: podSpec(0) },
        },
      },
    });
    await waitRolledOut(ns, name, 1);
    for (let i = 1; i < count; i++) {
      // One merge patch changes template and annotations together, so the new ReplicaSet copies the
      // annotations and the old one keeps its own (an annotation-only update would rewrite the current RS).
      const patch = {
        metadata: { annotations: REVISIONS[i]!.annotations },
        spec: { template: { spec: podSpec(i) } },
      };
      await kubectl('-n', ns, 'patch', `deployment/${name}`, '--type=merge', '-p', JSON.stringify(patch));
      await waitRolledOut(ns, name, i + 1);
    }
  }

  const withoutRevision = (annotations: Record<string, string> = {}) => {
    const { [REVISION_ANNOTATION]: _revision, ...rest } = annotations;
    return rest;
  };

  /** Rolls `name` back with our code in one namespace and with kubectl in the other, then compares them. */
  async function expectParity(name: string, toRevision: number) {
    const { deployment, replicaSets } = await readDeploymentHistory(client, ours, name);
    const plan = planDeploymentRollback(deployment, replicaSets, toRevision);
    if (plan.action !== 'rollback')
      throw new Error(`expected a rollback plan, got ${plan.action}: ${plan.message}`);
    await applyDeploymentRollback(client, ours, name, plan);
    const flag = toRevision ? [`--to-revision=${toRevision}`] : [];
    expect(await kubectl('-n', theirs, 'rollout', 'undo', `deployment/${name}`, ...flag)).toContain(
      'rolled back',
    );

    const [a, b] = await Promise.all([readDeployment(ours, name), readDeployment(theirs, name)]);
    expect(a.spec.template, 'pod template after our undo equals the one after kubectl rollout undo').toEqual(
      b.spec.template,
    );
    expect(
      withoutRevision(a.metadata.annotations),
      'annotations after our undo (ignoring the controller-managed revision) equal those after kubectl',
    ).toEqual(withoutRevision(b.metadata.annotations));

    // Both land on a new revision (4) once the deployment controller adopts the restored ReplicaSet.
    await Promise.all([waitRolledOut(ours, name, 4), waitRolledOut(theirs, name, 4)]);
    const [a2, b2] = await Promise.all([readDeployment(ours, name), readDeployment(theirs, name)]);
    expect(
      a2.metadata.annotations,
      'annotations equal after the controller processed both rollbacks',
    ).toEqual(b2.metadata.annotations);
    return a2;
  }

  const twins = (name: string) =>
    Promise.all([createWithHistory(ours, name), createWithHistory(theirs, name)]);

  it('matches `kubectl rollout undo` (previous revision)', async () => {
    await twins('prev');
    const d = await expectParity('prev', 0);
    const container = d.spec.template.spec?.containers?.[0];
    expect(container?.image, 'image of revision 2 restored').toBe('nginx:1.26');
    expect(container?.['env'], 'env var of revision 2 restored').toEqual([
      { name: 'FEATURE_X', value: 'on' },
    ]);
    expect(
      d.metadata.annotations,
      'change-cause from revision 2, last-applied kept, rev-3-only annotation dropped',
    ).toEqual({
      [CHANGE_CAUSE]: 'rev 2: nginx 1.26 + FEATURE_X',
      [LAST_APPLIED]: '{"rev":3}',
      [REVISION_ANNOTATION]: '4',
    });
  });

  it('matches `kubectl rollout undo --to-revision=1`', async () => {
    await twins('first');
    const d = await expectParity('first', 1);
    const container = d.spec.template.spec?.containers?.[0];
    expect(container?.image, 'image of revision 1 restored').toBe('nginx:1.25');
    expect(container?.['env'], 'revision 1 had no env vars').toBeUndefined();
    expect(d.metadata.annotations?.[CHANGE_CAUSE], 'change-cause of revision 1').toBe('rev 1: nginx 1.25');
  });

  it('refuses and skips with the same messages as kubectl, leaving the Deployment untouched', async () => {
    await Promise.all([createWithHistory(ours, 'msg', 2), createWithHistory(ours, 'msg-single', 1)]);
    const ourPlan = async (name: string, toRevision: number) => {
      const { deployment, replicaSets } = await readDeploymentHistory(client, ours, name);
      const plan = planDeploymentRollback(deployment, replicaSets, toRevision);
      if (plan.action === 'rollback') throw new Error(`expected no rollback for ${name} to ${toRevision}`);
      return plan;
    };
    const kubectlSays = (name: string, toRevision: number) =>
      kubectl('-n', ours, 'rollout', 'undo', `deployment/${name}`, `--to-revision=${toRevision}`).catch(
        (e: Error) => e.message,
      );

    const cases = [
      { name: 'msg', toRevision: 2, reason: 'AlreadyAtRevision' },
      { name: 'msg', toRevision: 9, reason: 'RevisionNotFound' },
      { name: 'msg-single', toRevision: 0, reason: 'NoRolloutHistory' },
    ];
    for (const c of cases) {
      const plan = await ourPlan(c.name, c.toRevision);
      expect(plan.reason, `${c.name} to revision ${c.toRevision}`).toBe(c.reason);
      expect(await kubectlSays(c.name, c.toRevision), `kubectl says what we say for ${c.reason}`).toContain(
        plan.message,
      );
    }

    await kubectl('-n', ours, 'rollout', 'pause', 'deployment/msg');
    // Wait until the controller has recorded the pause, so a later resourceVersion change could only be ours.
    await eventually('deployment msg paused and observed', async () => {
      const d = await readDeployment(ours, 'msg');
      const conditions = (d.status as { conditions?: { type: string; reason?: string }[] } | undefined)
        ?.conditions;
      return conditions?.some((c) => c.type === 'Progressing' && c.reason === 'DeploymentPaused');
    });
    const before = (await readDeployment(ours, 'msg')).metadata.resourceVersion;
    const plan = await ourPlan('msg', 1);
    expect(plan.reason, 'paused deployment is refused').toBe('DeploymentPaused');
    expect(
      plan.warnings,
      'kubectl apply manages it (last-applied annotation), so a warning like kubectl',
    ).toHaveLength(1);
    const refusal = await kubectlSays('msg', 1);
    expect(refusal, 'kubectl prints our warning').toContain(`Warning: ${plan.warnings[0]}`);
    expect(refusal, 'kubectl refuses a paused deployment with our message').toContain(plan.message);
    expect((await readDeployment(ours, 'msg')).metadata.resourceVersion, 'paused deployment untouched').toBe(
      before,
    );
  });

  it('rejects a stale plan with 409 Conflict instead of overwriting a concurrent change', async () => {
    await createWithHistory(ours, 'stale', 2);
    const { deployment, replicaSets } = await readDeploymentHistory(client, ours, 'stale');
    const plan = planDeploymentRollback(deployment, replicaSets, 0);
    if (plan.action !== 'rollback')
      throw new Error(`expected a rollback plan, got ${plan.action}: ${plan.message}`);
    // Someone else changes the Deployment between our read and our patch.
    await kubectl('-n', ours, 'set', 'env', 'deployment/stale', 'CONCURRENT=1');

    const error = await applyDeploymentRollback(client, ours, 'stale', plan).then(
      () => undefined,
      (e: unknown) => e as { code?: number; message?: string },
    );
    expect(error?.code, `stale plan rejected with 409 Conflict; got ${error?.code}: ${error?.message}`).toBe(
      409,
    );
    const after = await readDeployment(ours, 'stale');
    const container = after.spec.template.spec?.containers?.[0];
    expect(container?.['env'], 'the concurrent change survives').toContainEqual({
      name: 'CONCURRENT',
      value: '1',
    });
    expect(container?.image, 'no rollback happened').toBe('nginx:1.26');
  });
});
