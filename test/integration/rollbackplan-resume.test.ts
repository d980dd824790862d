import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestNamespace,
  deleteTestNamespace,
  eventually,
  kubectl,
  restrictedContainer,
  testClients,
} from '../support/kube.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { applyPlan, eventsFor, getPlan, waitPlanPhase } from '../support/plans.js';
import { deploymentWithHistory, REVISION, waitRolledOut } from '../support/workloads.js';

const { apps } = testClients();
const revisions = async (ns: string, app: string) =>
  (await apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: `app=${app}` })).items
    .map((rs) => Number(rs.metadata?.annotations?.[REVISION]))
    .sort((a, b) => a - b);

// Parity with the real `kubectl rollout undo`: the same Deployment history in two namespaces (same names, so
// labels and selectors are equal), one rolled back by a RollbackPlan, the other by kubectl.
describe('RollbackPlan parity with kubectl rollout undo', () => {
  let ours = '';
  let theirs = '';
  let op: OperatorProcess;
  beforeAll(async () => {
    [ours, theirs] = await Promise.all([createTestNamespace('par-plan'), createTestNamespace('par-kubectl')]);
    op = await startOperator({ env: { WATCH_NAMESPACES: ours } });
    await op.waitReady();
  });
  afterAll(async () => {
    await op?.kill();
    await Promise.all([deleteTestNamespace(ours), deleteTestNamespace(theirs)]);
  });

  it.each([
    ['the previous revision', 'prev', undefined],
    ['an explicit revision', 'explicit', 1],
  ])('ends with identical templates and annotations for %s', async (_what, name, toRevision) => {
    const images = ['nginx:1.25', 'nginx:1.26', 'nginx:1.27'];
    await Promise.all([
      deploymentWithHistory(ours, name, images),
      deploymentWithHistory(theirs, name, images),
    ]);
    await applyPlan(ours, `undo-${name}`, {
      scope: 'app',
      targets: { deployments: [{ name, ...(toRevision ? { toRevision } : {}) }] },
    });
    await kubectl(
      '-n',
      theirs,
      'rollout',
      'undo',
      `deployment/${name}`,
      ...(toRevision ? [`--to-revision=${toRevision}`] : []),
    );
    const plan = await waitPlanPhase(ours, `undo-${name}`, ['Succeeded', 'Failed']);
    expect(plan.status.phase, JSON.stringify(plan.status.conditions)).toBe('Succeeded');
    const [a, b] = await Promise.all([waitRolledOut(ours, name, '4'), waitRolledOut(theirs, name, '4')]);
    expect(a.spec?.template, 'pod templates').toEqual(b.spec?.template);
    expect(a.metadata?.annotations, 'annotations').toEqual(b.metadata?.annotations);
    expect(await revisions(ours, name)).toEqual(await revisions(theirs, name));
  });
});

// An operator killed right after it patched the Deployment, before it could record that in status, must
// finish the plan exactly once after a restart: no second rollback (which would go "back" to the bad release).
describe('RollbackPlan crash consistency', () => {
  let ns = '';
  beforeAll(async () => {
    ns = await createTestNamespace('crash');
  });
  afterAll(async () => {
    await deleteTestNamespace(ns);
  });

  it('completes a plan exactly once after a kill between the patch and post-validation', async () => {
    await deploymentWithHistory(ns, 'web', ['nginx:1.25', 'nginx:1.26', 'nginx:1.27']);
    const crashing = await startOperator({
      env: { WATCH_NAMESPACES: ns, NXT_FAILPOINTS: 'after-deployment-patch' },
      name: 'crashing',
    });
    await crashing.waitReady();
    await applyPlan(ns, 'undo-web', { scope: 'app', targets: { deployments: [{ name: 'web' }] } });
    expect(await crashing.exited, 'the failpoint killed the operator').toBe('SIGKILL');
    expect(crashing.logs()).toMatch(/failpoint after-deployment-patch/);

    // The patch landed, but status still says the rollback step is running.
    const mid = await getPlan(ns, 'undo-web');
    expect(mid.status.steps.find((s: any) => s.name === 'AppRollback')).toMatchObject({ result: 'Running' });
    expect(mid.status.deployments[0]).toMatchObject({ result: 'Pending', toRevision: 2 });
    await waitRolledOut(ns, 'web', '4');

    const restarted = await startOperator({ env: { WATCH_NAMESPACES: ns }, name: 'restarted' });
    try {
      await restarted.waitReady();
      const plan = await waitPlanPhase(ns, 'undo-web', ['Succeeded', 'Failed']);
      expect(plan.status.phase, JSON.stringify(plan.status.conditions)).toBe('Succeeded');
      expect(plan.status.deployments[0]).toMatchObject({
        result: 'RolledBack',
        message: expect.stringMatching(/is in place/),
      });
      expect(plan.status.steps.filter((s: any) => s.name === 'AppRollback')).toHaveLength(1);
      // Exactly one rollback: revision 4 is the old revision 2 template; there is no revision 5.
      const d = await waitRolledOut(ns, 'web', '4');
      expect(d.spec?.template.spec?.containers[0]?.image).toBe('nginx:1.26');
      await new Promise((r) => setTimeout(r, 1500));
      expect(await revisions(ns, 'web')).toEqual([1, 3, 4]);
      const succeeded = await eventually('the Succeeded Event', async () => {
        const all = (await eventsFor(ns, 'undo-web')).filter((e) => e.reason === 'Succeeded');
        return all.length > 0 && all;
      });
      expect(succeeded).toHaveLength(1);
    } finally {
      await restarted.kill();
    }
  });

  // The journal is written between two Deployment patches, not after the last one (its result goes with the
  // next write of the reconcile): a kill right after the LAST patch is the window with no checkpoint.
  it('completes a 2-Deployment plan exactly once after a kill right after the last patch', async () => {
    const images = ['nginx:1.25', 'nginx:1.26', 'nginx:1.27'];
    await Promise.all([
      deploymentWithHistory(ns, 'front', images),
      deploymentWithHistory(ns, 'back', images),
    ]);
    const crashing = await startOperator({
      env: { WATCH_NAMESPACES: ns, NXT_FAILPOINTS: 'after-deployment-patch@2' },
      name: 'crashing-last',
    });
    await crashing.waitReady();
    await applyPlan(ns, 'undo-two', {
      scope: 'app',
      targets: { deployments: [{ name: 'front' }, { name: 'back' }] },
    });
    expect(await crashing.exited, 'the failpoint killed the operator').toBe('SIGKILL');
    expect(crashing.logs()).toMatch(/failpoint after-deployment-patch: killing the process \(hit 2\)/);

    // Both patches landed; the journal holds the first (written before the second patch), not the second.
    const mid = await getPlan(ns, 'undo-two');
    expect(mid.status.steps.find((s: any) => s.name === 'AppRollback')).toMatchObject({ result: 'Running' });
    expect(mid.status.deployments.map((d: any) => [d.name, d.result])).toEqual([
      ['front', 'RolledBack'],
      ['back', 'Pending'],
    ]);
    await Promise.all([waitRolledOut(ns, 'front', '4'), waitRolledOut(ns, 'back', '4')]);

    const restarted = await startOperator({ env: { WATCH_NAMESPACES: ns }, name: 'restarted-last' });
    try {
      await restarted.waitReady();
      const plan = await waitPlanPhase(ns, 'undo-two', ['Succeeded', 'Failed']);
      expect(plan.status.phase, JSON.stringify(plan.status.conditions)).toBe('Succeeded');
      expect(plan.status.deployments[1]).toMatchObject({
        name: 'back',
        result: 'RolledBack',
        message: expect.stringMatching(/is in place/),
      });
      expect(plan.status.steps.filter((s: any) => s.name === 'AppRollback')).toHaveLength(1);
      // Exactly one rollback each: revision 4 is the old revision 2 template; there is no revision 5.
      for (const name of ['front', 'back']) {
        const d = await waitRolledOut(ns, name, '4');
        expect(d.spec?.template.spec?.containers[0]?.image, name).toBe('nginx:1.26');
      }
      await new Promise((r) => setTimeout(r, 1500));
      expect(await revisions(ns, 'front')).toEqual([1, 3, 4]);
      expect(await revisions(ns, 'back')).toEqual([1, 3, 4]);
      // Finished once, and the one Succeeded Event names both rollbacks (whatever DeploymentRolledBack
      // Events the killed process managed to send).
      const succeeded = await eventually('the Succeeded Event', async () => {
        const all = (await eventsFor(ns, 'undo-two')).filter((e) => e.reason === 'Succeeded');
        return all.length > 0 && all;
      });
      expect(succeeded).toHaveLength(1);
      expect(succeeded[0]!.count).toBe(1);
      expect(succeeded[0]!.message).toMatch(/rolled back: front 3 -> 2, back 3 -> 2/);
    } finally {
      await restarted.kill();
    }
  });

  it('an onRevert plan killed right after it fired resumes and fires once', async () => {
    await deploymentWithHistory(ns, 'reverted', ['nginx:1.25', 'nginx:1.26']);
    const crashing = await startOperator({
      env: { WATCH_NAMESPACES: ns, NXT_FAILPOINTS: 'after-revert-trigger' },
      name: 'crashing-revert',
    });
    await crashing.waitReady();
    await applyPlan(ns, 'on-revert', {
      scope: 'app',
      trigger: { mode: 'onRevert' },
      targets: { deployments: [{ name: 'reverted' }] },
    });
    await waitPlanPhase(ns, 'on-revert', ['Armed']);
    // What a Git revert does to the cluster: the earlier template again (revision 1 re-used as 3).
    await kubectl('-n', ns, 'set', 'image', 'deployment/reverted', 'app=nginx:1.25');
    expect(await crashing.exited, 'the failpoint killed the operator').toBe('SIGKILL');
    expect(crashing.logs()).toMatch(/failpoint after-revert-trigger/);
    const mid = await getPlan(ns, 'on-revert');
    expect(mid.status.trigger).toMatchObject({ condition: 'onRevert' });
    expect(mid.status.startedAt).toBeUndefined();
    expect(mid.status.deployments[0]).toMatchObject({ fromRevision: 2, toRevision: 1, result: 'RolledBack' });

    const restarted = await startOperator({ env: { WATCH_NAMESPACES: ns }, name: 'restarted-revert' });
    try {
      await restarted.waitReady();
      const plan = await waitPlanPhase(ns, 'on-revert', ['Succeeded', 'Failed']);
      expect(plan.status.phase, JSON.stringify(plan.status.conditions)).toBe('Succeeded');
      expect(plan.status.trigger).toEqual(mid.status.trigger);
      // Events are sent without waiting, the Succeeded one after the final status write: wait for it.
      const events = await eventually('the Succeeded Event', async () => {
        const all = await eventsFor(ns, 'on-revert');
        return all.some((e) => e.reason === 'Succeeded') && all;
      });
      // Not fired again: at most the one Triggered event (the killed process may have died before sending it;
      // events are sent after the status write).
      const triggered = events.filter((e) => e.reason === 'Triggered');
      expect(triggered.reduce((n, e) => n + e.count, 0)).toBeLessThanOrEqual(1);
      expect(events.filter((e) => e.reason === 'Started')).toHaveLength(1);
      expect(events.filter((e) => e.reason === 'Succeeded')).toHaveLength(1);
      expect(await revisions(ns, 'reverted')).toEqual([2, 3]);
    } finally {
      await restarted.kill();
    }
  });

  it('resumes post-validation after a restart without touching the Deployment again', async () => {
    // Revision 1 needs nodes labelled for this test. After rolling forward to revision 2 the label goes away,
    // so rolling back to revision 1 leaves new pods Pending and post-validation waiting.
    const { core } = testClients();
    const label = `nxt.test/pool-${ns}`;
    const nodes = (await core.listNode({ labelSelector: 'nxt.test/kwok=true' })).items.map(
      (n) => n.metadata!.name!,
    );
    const setLabel = (value: string | null) =>
      Promise.all(
        nodes.map((n) =>
          kubectl('label', 'node', n, value === null ? `${label}-` : `${label}=${value}`, '--overwrite'),
        ),
      );
    await setLabel('yes');
    try {
      const labels = { app: 'api' };
      await apps.createNamespacedDeployment({
        namespace: ns,
        body: {
          metadata: { name: 'api' },
          spec: {
            replicas: 1,
            selector: { matchLabels: labels },
            template: {
              metadata: { labels },
              spec: {
                nodeSelector: { [label]: 'yes' },
                containers: [restrictedContainer('app', 'nginx:1.25')],
              },
            },
          },
        },
      });
      await waitRolledOut(ns, 'api', '1');
      await kubectl(
        '-n',
        ns,
        'patch',
        'deployment/api',
        '--type=json',
        '-p',
        JSON.stringify([
          { op: 'remove', path: '/spec/template/spec/nodeSelector' },
          { op: 'replace', path: '/spec/template/spec/containers/0/image', value: 'nginx:1.26' },
        ]),
      );
      await waitRolledOut(ns, 'api', '2');
      await setLabel(null);

      const first = await startOperator({ env: { WATCH_NAMESPACES: ns }, name: 'first' });
      await first.waitReady();
      await applyPlan(ns, 'undo-api', {
        scope: 'app',
        targets: { deployments: [{ name: 'api' }] },
        validation: { timeout: '3m' },
      });
      await eventually(
        'plan waiting in PostValidation',
        async () => {
          const p = await getPlan(ns, 'undo-api');
          const step = p.status?.steps?.find((s: any) => s.name === 'PostValidation');
          return step?.result === 'Running' && /replicas/.test(step.message ?? '') ? step : undefined;
        },
        30_000,
      ).catch(async (e) => {
        throw new Error(
          `${(e as Error).message}; plan status: ${JSON.stringify((await getPlan(ns, 'undo-api')).status)}`,
        );
      });
      await first.kill('SIGKILL');
      const before = await revisions(ns, 'api');
      expect(before).toEqual([2, 3]);

      const second = await startOperator({ env: { WATCH_NAMESPACES: ns }, name: 'second' });
      try {
        await second.waitReady();
        await new Promise((r) => setTimeout(r, 1000));
        expect((await getPlan(ns, 'undo-api')).status.phase, 'still waiting for the rollout').toBe('Running');
        await setLabel('yes');
        const plan = await waitPlanPhase(ns, 'undo-api', ['Succeeded', 'Failed']);
        expect(plan.status.phase, JSON.stringify(plan.status.conditions)).toBe('Succeeded');
        expect(await revisions(ns, 'api'), 'no second rollback').toEqual(before);
        expect(plan.status.steps.filter((s: any) => s.name === 'PostValidation')).toHaveLength(1);
      } finally {
        await second.kill();
      }
    } finally {
      await setLabel(null);
    }
  });
});
