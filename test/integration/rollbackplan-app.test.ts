import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestNamespace,
  deleteTestNamespace,
  eventually,
  kubectl,
  testClients,
} from '../support/kube.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { resumableWatch } from '../support/watch.js';
import { rolloutProgress } from '../../operator/rollback/rollout.js';
import {
  applyPlan,
  condition,
  getPlan,
  waitForEvents,
  waitPlanPhase,
  withReasons,
} from '../support/plans.js';
import {
  deploymentWithHistory,
  imageOf,
  REVISION,
  settledResourceVersion,
  waitRolledOut,
  writersOf,
} from '../support/workloads.js';

// RollbackPlan scope app end to end: the real operator process against the real control plane.
describe('RollbackPlan (scope app)', () => {
  const { apps } = testClients();
  let ns = '';
  let op: OperatorProcess;
  let http: Server;
  let httpUrl = '';
  let healthy = true;

  beforeAll(async () => {
    ns = await createTestNamespace('rbp');
    op = await startOperator({ env: { WATCH_NAMESPACES: ns } });
    await op.waitReady();
    http = createServer((_req, res) =>
      res.writeHead(healthy ? 200 : 503).end(healthy ? 'status: ok' : 'down'),
    );
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    httpUrl = `http://127.0.0.1:${(http.address() as { port: number }).port}/healthz`;
  });
  afterAll(async () => {
    await op?.kill();
    http?.close();
    await deleteTestNamespace(ns);
  });

  it('rolls back to the previous revision, validates, and records every step', async () => {
    await deploymentWithHistory(ns, 'web', ['nginx:1.25', 'nginx:1.26', 'nginx:1.27']);
    await applyPlan(ns, 'undo-web', {
      scope: 'app',
      reason: '5xx after the 14:00 release',
      targets: { deployments: [{ name: 'web' }] },
      validation: { timeout: '1m', http: [{ url: httpUrl, expectStatus: 200, bodyMatch: 'ok' }] },
    });
    // kubectl wait works on the Succeeded condition.
    await kubectl('-n', ns, 'wait', '--for=condition=Succeeded', 'rbp/undo-web', '--timeout=60s');
    const plan = await getPlan(ns, 'undo-web');
    expect(plan.status.phase).toBe('Succeeded');
    // Success means the rollback itself rolled out: at that moment the Deployment's controller has seen the
    // rollback's generation and every replica runs the restored template.
    const atSuccess = await apps.readNamespacedDeployment({ name: 'web', namespace: ns });
    expect(atSuccess.status?.observedGeneration).toBeGreaterThanOrEqual(
      plan.status.deployments[0].generation,
    );
    expect(atSuccess.status?.updatedReplicas).toBe(2);
    expect(atSuccess.status?.availableReplicas).toBe(2);
    expect(atSuccess.spec?.template.spec?.containers[0]?.image).toBe('nginx:1.26');
    expect(plan.status.observedGeneration).toBe(plan.metadata.generation);
    expect(await imageOf(ns, 'web')).toBe('nginx:1.26');
    const d = await waitRolledOut(ns, 'web', '4');
    expect(d.metadata?.annotations?.['kubernetes.io/change-cause']).toBe('deploy nginx:1.26');
    expect(plan.status.deployments).toEqual([
      expect.objectContaining({ name: 'web', fromRevision: 3, toRevision: 2, result: 'RolledBack' }),
    ]);
    expect(plan.status.steps.map((s: any) => [s.name, s.result])).toEqual([
      ['PreValidation', 'Succeeded'],
      ['CheckHTTPChecks', 'Succeeded'],
      ['CheckTargetsExist', 'Succeeded'],
      ['CheckRevisionsExist', 'Succeeded'],
      ['CheckNotPaused', 'Succeeded'],
      ['CheckNoConcurrentPlan', 'Succeeded'],
      ['CheckPermissions', 'Succeeded'],
      ['AppRollback', 'Succeeded'],
      ['PostValidation', 'Succeeded'],
    ]);
    for (const s of plan.status.steps)
      expect(Date.parse(s.finishedAt)).toBeGreaterThanOrEqual(Date.parse(s.startedAt));
    for (const t of [
      'Ready',
      'PreValidationPassed',
      'RolledBack',
      'PostValidationPassed',
      'Succeeded',
      'RTOMet',
    ]) {
      expect(condition(plan, t), `condition ${t}`).toMatchObject({ status: 'True', observedGeneration: 1 });
    }
    expect(condition(plan, 'Stalled').status).toBe('False');
    expect(condition(plan, 'Reconciling').status).toBe('False');
    expect(plan.status.durationSeconds).toBeGreaterThanOrEqual(0);
    expect(Date.parse(plan.status.completedAt)).toBeGreaterThanOrEqual(Date.parse(plan.status.startedAt));
    // One Event per decision and change, no repeats of what the conditions say (3 API writes, not 6).
    // Events are sent without waiting, the Succeeded one after the final status write: wait for it.
    const events = await waitForEvents(ns, 'undo-web', withReasons('Succeeded'));
    expect(events.map((e) => e.reason).sort()).toEqual(['DeploymentRolledBack', 'Started', 'Succeeded']);
    expect(events.find((e) => e.reason === 'Succeeded')?.message).toMatch(
      /^rolled back in [\d.]+s \(RTO objective \S+\); 1 rolled back, 0 already at the wanted revision; rolled back: web 3 -> 2; 1 Deployment\(s\) rolled out and available; 1 HTTP check\(s\) passed$/,
    );
    // The printer columns show scope, phase and readiness.
    expect(await kubectl('-n', ns, 'get', 'rbp', 'undo-web')).toMatch(
      /undo-web\s+app\s+Succeeded\s+True\s+Succeeded/,
    );
  });

  it('rolls back to an explicit revision', async () => {
    await deploymentWithHistory(ns, 'api', ['nginx:1.25', 'nginx:1.26', 'nginx:1.27']);
    await applyPlan(ns, 'api-to-1', {
      scope: 'app',
      targets: { deployments: [{ name: 'api', toRevision: 1 }] },
    });
    const plan = await waitPlanPhase(ns, 'api-to-1', ['Succeeded', 'Failed']);
    expect(plan.status.phase, JSON.stringify(plan.status.conditions)).toBe('Succeeded');
    expect(await imageOf(ns, 'api')).toBe('nginx:1.25');
  });

  it('dry run reports the diff and leaves the Deployment untouched', async () => {
    await deploymentWithHistory(ns, 'dry', ['nginx:1.25', 'nginx:1.26']);
    // As Flux's kustomize-controller labels what it applies: the report names the owner.
    await kubectl(
      '-n',
      ns,
      'label',
      'deployment/dry',
      'kustomize.toolkit.fluxcd.io/name=apps',
      'kustomize.toolkit.fluxcd.io/namespace=flux-system',
    );
    const rv = await settledResourceVersion(ns, 'dry');
    await applyPlan(ns, 'dry-run', {
      scope: 'app',
      dryRun: true,
      targets: { deployments: [{ name: 'dry' }] },
    });
    const plan = await waitPlanPhase(ns, 'dry-run', ['DryRunComplete', 'Failed']);
    expect(plan.status.phase).toBe('DryRunComplete');
    expect(condition(plan, 'Ready')).toMatchObject({ status: 'True', reason: 'DryRunComplete' });
    const report = plan.status.dryRunReport;
    expect(report.wouldSucceed).toBe(true);
    expect(report.deployments[0]).toMatchObject({
      name: 'dry',
      action: 'rollback',
      fromRevision: 2,
      toRevision: 1,
      imageChanges: [{ container: 'app', from: 'nginx:1.26', to: 'nginx:1.25' }],
    });
    expect(report.deployments[0].gitops).toMatchObject({
      tool: 'flux',
      kind: 'Kustomization',
      name: 'apps',
      namespace: 'flux-system',
    });
    expect(report.summary).toMatch(/GitOps: dry is applied from Git by Flux Kustomization flux-system\/apps/);
    expect(report.deployments[0].templateDiff).toMatch(/^-\s+- image: nginx:1\.26$/m);
    expect(report.deployments[0].templateDiff).toMatch(/^\+\s+- image: nginx:1\.25$/m);
    expect(report.checks).toEqual(expect.arrayContaining(['no other active RollbackPlan holds a target']));
    const after = await apps.readNamespacedDeployment({ name: 'dry', namespace: ns });
    expect(after.metadata?.resourceVersion, 'the dry run wrote nothing to the Deployment').toBe(rv);
    expect(await writersOf(ns, 'dry')).not.toContainEqual(expect.stringMatching(/nxt-rollback/));
  });

  it.each([
    [
      'a missing revision',
      'norev',
      { toRevision: 9 },
      'RevisionNotFound',
      /unable to find specified revision 9/,
    ],
    ['a missing Deployment', 'ghost', {}, 'TargetNotFound', /Deployment "ghost" not found/],
  ])('fails pre-validation on %s and touches nothing', async (_what, name, extra, reason, msg) => {
    if (name !== 'ghost') await deploymentWithHistory(ns, name, ['nginx:1.25', 'nginx:1.26']);
    const rv = name === 'ghost' ? undefined : await settledResourceVersion(ns, name);
    await applyPlan(ns, `bad-${name}`, { scope: 'app', targets: { deployments: [{ name, ...extra }] } });
    const plan = await waitPlanPhase(ns, `bad-${name}`, ['Succeeded', 'Failed']);
    expect(plan.status.phase).toBe('Failed');
    expect(condition(plan, 'PreValidationPassed')).toMatchObject({ status: 'False', reason });
    expect(condition(plan, 'Stalled')).toMatchObject({ status: 'True', reason });
    expect(condition(plan, 'Succeeded').message).toMatch(msg);
    expect(plan.status.steps.find((s: any) => s.name === 'AppRollback')).toBeUndefined();
    if (rv) {
      const after = await apps.readNamespacedDeployment({ name, namespace: ns });
      expect(after.metadata?.resourceVersion, 'a failed pre-validation wrote nothing').toBe(rv);
      expect(await writersOf(ns, name)).not.toContainEqual(expect.stringMatching(/nxt-rollback/));
    }
  });

  it('arms an onRevert plan on apply and changes nothing (a revert before it was armed does not fire it)', async () => {
    await deploymentWithHistory(ns, 'armed', ['nginx:1.25', 'nginx:1.26', 'nginx:1.25']);
    const rv = await settledResourceVersion(ns, 'armed');
    await applyPlan(ns, 'armed-plan', {
      scope: 'app',
      targets: { deployments: [{ name: 'armed' }] },
      trigger: { mode: 'onRevert' },
    });
    const plan = await waitPlanPhase(ns, 'armed-plan', ['Armed', 'Succeeded', 'Failed']);
    expect(plan.status.phase).toBe('Armed');
    expect(condition(plan, 'Ready')).toMatchObject({ status: 'True', reason: 'Armed' });
    expect(plan.status.armed.revisions).toEqual([{ deployment: 'armed', revision: 3 }]);
    expect(plan.status.trigger).toBeUndefined();
    expect(
      (await apps.readNamespacedDeployment({ name: 'armed', namespace: ns })).metadata?.resourceVersion,
    ).toBe(rv);
  });

  it('refuses a paused Deployment with a clear reason', async () => {
    await deploymentWithHistory(ns, 'paused', ['nginx:1.25', 'nginx:1.26']);
    await kubectl('-n', ns, 'rollout', 'pause', 'deployment/paused');
    await applyPlan(ns, 'undo-paused', { scope: 'app', targets: { deployments: [{ name: 'paused' }] } });
    const plan = await waitPlanPhase(ns, 'undo-paused', ['Succeeded', 'Failed']);
    expect(condition(plan, 'PreValidationPassed')).toMatchObject({
      status: 'False',
      reason: 'DeploymentPaused',
    });
    expect(condition(plan, 'Succeeded').message).toMatch(/paused deployment/);
    expect(await imageOf(ns, 'paused')).toBe('nginx:1.26');
  });

  it('reports "already at that revision" as a success, not an error', async () => {
    await deploymentWithHistory(ns, 'same', ['nginx:1.25', 'nginx:1.26']);
    await applyPlan(ns, 'same-2', {
      scope: 'app',
      targets: { deployments: [{ name: 'same', toRevision: 2 }] },
    });
    const plan = await waitPlanPhase(ns, 'same-2', ['Succeeded', 'Failed']);
    expect(plan.status.phase).toBe('Succeeded');
    expect(plan.status.deployments[0]).toMatchObject({
      result: 'Skipped',
      message: expect.stringMatching(/skipped rollback/),
    });
  });

  it('lets only one of two plans applied at once hold a Deployment', async () => {
    await deploymentWithHistory(ns, 'locked', ['nginx:1.25', 'nginx:1.26', 'nginx:1.27']);
    await Promise.all([
      applyPlan(ns, 'lock-a', { scope: 'app', targets: { deployments: [{ name: 'locked' }] } }),
      applyPlan(ns, 'lock-b', { scope: 'app', targets: { deployments: [{ name: 'locked' }] } }),
    ]);
    const [a, b] = await Promise.all([
      waitPlanPhase(ns, 'lock-a', ['Succeeded', 'Failed']),
      waitPlanPhase(ns, 'lock-b', ['Succeeded', 'Failed']),
    ]);
    const phases = [a.status.phase, b.status.phase].sort();
    expect(phases).toEqual(['Failed', 'Succeeded']);
    const loser = a.status.phase === 'Failed' ? a : b;
    expect(condition(loser, 'PreValidationPassed')).toMatchObject({
      status: 'False',
      reason: 'ConcurrentPlan',
    });
    // Exactly one rollback happened: revision 3 -> 4 (the template of revision 2), no revision 5.
    const d = await waitRolledOut(ns, 'locked', '4');
    expect(d.spec?.template.spec?.containers[0]?.image).toBe('nginx:1.26');
  });

  it('fails post-validation when an HTTP check keeps failing, saying what changed', async () => {
    await deploymentWithHistory(ns, 'probe', ['nginx:1.25', 'nginx:1.26']);
    healthy = false;
    try {
      await applyPlan(ns, 'probe-fail', {
        scope: 'app',
        targets: { deployments: [{ name: 'probe' }] },
        validation: {
          timeout: '1m',
          http: [{ url: httpUrl, expectStatus: 200, retries: 1, period: '100ms' }],
        },
      });
      const plan = await waitPlanPhase(ns, 'probe-fail', ['Succeeded', 'Failed']);
      expect(plan.status.phase).toBe('Failed');
      expect(condition(plan, 'PostValidationPassed')).toMatchObject({
        status: 'False',
        reason: 'HTTPCheckFailed',
      });
      expect(condition(plan, 'PostValidationPassed').message).toMatch(
        /got HTTP 503, expected 200 \(after 2 attempts\)/,
      );
      expect(condition(plan, 'RolledBack').status).toBe('True');
      const failed = (await waitForEvents(ns, 'probe-fail', withReasons('Failed'))).find(
        (e) => e.reason === 'Failed',
      );
      expect(failed?.message).toMatch(/changed: Deployment probe/);
    } finally {
      healthy = true;
    }
  });

  it('writes its progress notes at most every 5 s while a slow rollout goes on, and still ends Succeeded', async () => {
    await deploymentWithHistory(ns, 'slow', ['nginx:1.25', 'nginx:1.26'], 8);
    // One replica at a time, each available 1 s after it is ready: a rollout of several seconds in which
    // nearly every step changes the Deployment's status, and so what post-validation would note.
    await kubectl(
      '-n',
      ns,
      'patch',
      'deployment/slow',
      '--type=merge',
      '-p',
      JSON.stringify({
        spec: {
          minReadySeconds: 1,
          strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
        },
      }),
    );
    await settledResourceVersion(ns, 'slow');
    const { kc, custom } = testClients();
    // Every status write of the plan is a new resourceVersion; every Deployment status change, a note.
    const planSeen: any[] = [];
    const deploymentSeen: any[] = [];
    const plans = await resumableWatch(
      kc,
      `/apis/rollback.nxtnewday.io/v1alpha1/namespaces/${ns}/rollbackplans`,
      () =>
        custom.listNamespacedCustomObject({
          group: 'rollback.nxtnewday.io',
          version: 'v1alpha1',
          plural: 'rollbackplans',
          namespace: ns,
        }),
      (o) => o.metadata?.name === 'slow-undo' && planSeen.push(o),
    );
    const deployments = await resumableWatch(
      kc,
      `/apis/apps/v1/namespaces/${ns}/deployments`,
      () => apps.listNamespacedDeployment({ namespace: ns }),
      (o) => o.metadata?.name === 'slow' && deploymentSeen.push(o),
    );
    try {
      await applyPlan(ns, 'slow-undo', {
        scope: 'app',
        targets: { deployments: [{ name: 'slow' }] },
        validation: { timeout: '3m' },
      });
      await kubectl('-n', ns, 'wait', '--for=condition=Succeeded', 'rbp/slow-undo', '--timeout=120s');
      const plan = await getPlan(ns, 'slow-undo');
      await eventually('the watch saw the final write', async () =>
        planSeen.some((p) => p.metadata.resourceVersion === plan.metadata.resourceVersion),
      );
      expect(plans.errors).toEqual([]);
      expect(deployments.errors).toEqual([]);
      const post = plan.status.steps.find((s: any) => s.name === 'PostValidation');
      expect(post).toMatchObject({ result: 'Succeeded' });
      const waitMs = Date.parse(post.finishedAt) - Date.parse(post.startedAt);
      // The writes while post-validation waited: its first (the step's start), then at most one per 5 s.
      const waitWrites = new Set(
        planSeen
          .filter((p) =>
            p.status?.steps?.some((s: any) => s.name === 'PostValidation' && s.result === 'Running'),
          )
          .map((p) => p.metadata.resourceVersion),
      );
      const bound = Math.floor(waitMs / 5000) + 2;
      // The notes the rolled-back generation went through (each one status write before the change).
      const generation = plan.status.deployments[0].generation;
      const notes = new Set(
        deploymentSeen
          .filter((d) => (d.metadata.generation ?? 0) >= generation)
          .map((d) => rolloutProgress(d))
          .filter((p) => p.state === 'progressing')
          .map((p) => p.message),
      );
      const seen = `${waitWrites.size} status writes in ${waitMs} ms of waiting, ${notes.size} notes: ${[...notes].join(' | ')}`;
      expect(notes.size, `the rollout was too fast to show anything: ${seen}`).toBeGreaterThan(bound);
      expect(waitWrites.size, seen).toBeGreaterThanOrEqual(1);
      expect(waitWrites.size, seen).toBeLessThanOrEqual(bound);
      // The final state is complete: the last write is the result, with every condition set.
      expect(plan.status.phase).toBe('Succeeded');
      for (const t of ['Ready', 'PostValidationPassed', 'RolledBack', 'Succeeded'])
        expect(condition(plan, t), `condition ${t}`).toMatchObject({ status: 'True' });
      expect(condition(plan, 'Reconciling')).toMatchObject({ status: 'False', reason: 'Succeeded' });
      expect(post.message).toMatch(/rolled out and available/);
      const atSuccess = await apps.readNamespacedDeployment({ name: 'slow', namespace: ns });
      expect(atSuccess.status?.updatedReplicas).toBe(8);
      expect(atSuccess.status?.availableReplicas).toBe(8);
      expect(atSuccess.spec?.template.spec?.containers[0]?.image).toBe('nginx:1.25');
    } finally {
      plans.stop();
      deployments.stop();
    }
  });

  it('rejects a spec change after creation (a plan is one run, like a Job)', async () => {
    await expect(
      kubectl('-n', ns, 'patch', 'rbp', 'undo-web', '--type=merge', '-p', '{"spec":{"reason":"edited"}}'),
    ).rejects.toThrow(/spec is immutable once created/);
    const d = await apps.readNamespacedDeployment({ name: 'web', namespace: ns });
    expect(d.metadata?.annotations?.[REVISION]).toBe('4');
  });
});
