import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KWOK_NODE_LABEL } from '../env/control-plane.js';
import {
  createTestNamespace,
  deleteTestNamespace,
  eventually,
  kubectl,
  testClients,
} from '../support/kube.js';
import { metricValue, startOperator, type OperatorProcess } from '../support/operator.js';
import {
  applyPlan,
  condition,
  eventsFor,
  getPlan,
  waitForEvents,
  waitPlanPhase,
  withReasons,
} from '../support/plans.js';
import { deploymentWithHistory, imageOf, REVISION, waitRolledOut } from '../support/workloads.js';

const A = 'rollback.nxtnewday.io';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ms = (iso: string) => Date.parse(iso);

// Automatic rollback (issue 10) end to end: the real operator process against the real control plane.
//
// How a target becomes unavailable on kwok: its pods are pinned (nodeSelector) to a kwok node of this test's
// own. The test cordons that node and deletes the pods: the ReplicaSet's replacements stay Pending (the only
// node they fit is unschedulable), so availableReplicas is 0 until the node is uncordoned, when kwok runs them
// at once. (A NoExecute taint would need the taint-eviction controller, which the harness does not run.)
describe('RollbackPlan automatic triggers', () => {
  const { apps, core } = testClients();
  let ns = '';
  let op: OperatorProcess;
  const node = `trig-${Math.random().toString(16).slice(2, 8)}`;
  const pinned = { nodeSelector: { 'nxt.test/pool': node } };
  let http: Server;
  let httpUrl = '';
  let failing: Server;
  let failingUrl = '';
  let healthy = true;
  let probes: { at: number; status: number }[] = [];

  const listen = async (s: Server) => {
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(s.address() as { port: number }).port}/healthz`;
  };

  beforeAll(async () => {
    ns = await createTestNamespace('trig');
    await core.createNode({
      body: {
        metadata: {
          name: node,
          labels: {
            [KWOK_NODE_LABEL]: 'true',
            'kubernetes.io/hostname': node,
            'kubernetes.io/os': 'linux',
            'kubernetes.io/arch': 'amd64',
            type: 'kwok',
            'nxt.test/pool': node,
          },
          annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
        },
      },
    });
    await eventually(`node ${node} Ready`, async () => {
      const n = await core.readNode({ name: node });
      return n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
    });
    op = await startOperator({ env: { WATCH_NAMESPACES: ns } });
    await op.waitReady();
    http = createServer((_req, res) => {
      probes.push({ at: Date.now(), status: healthy ? 200 : 500 });
      res.writeHead(healthy ? 200 : 500).end(healthy ? 'ok' : 'down');
    });
    httpUrl = await listen(http);
    failing = createServer((_req, res) => res.writeHead(500).end('down'));
    failingUrl = await listen(failing);
  });
  afterAll(async () => {
    await op?.kill();
    http?.close();
    failing?.close();
    await core.deleteNode({ name: node }).catch(() => {});
    await deleteTestNamespace(ns);
  });

  const available = async (name: string) =>
    (await apps.readNamespacedDeployment({ name, namespace: ns })).status?.availableReplicas ?? 0;
  /** Takes the pinned Deployment's pods away; resolves with the moment the test saw availableReplicas 0. */
  const takeDown = async (name: string) => {
    await kubectl('cordon', node);
    await kubectl('-n', ns, 'delete', 'pods', '-l', `app=${name}`, '--wait=false');
    for (;;) {
      if ((await available(name)) === 0) return Date.now();
      await sleep(25);
    }
  };
  const bringBack = async (name: string) => {
    await kubectl('uncordon', node);
    await eventually(`${name} available again`, async () => (await available(name)) > 0, 30_000, 50);
  };
  const annotate = (plan: string, ...kv: string[]) =>
    kubectl('-n', ns, 'annotate', '--overwrite', `rbp/${plan}`, ...kv);
  const rolloutsOf = async (name: string) =>
    (await apps.readNamespacedDeployment({ name, namespace: ns })).metadata?.annotations?.[REVISION];

  it('arms (kstatus Current), ignores a 10 s blip, and rolls back within 2 s after 30 s of unavailability', async () => {
    await deploymentWithHistory(ns, 'web', ['nginx:1.25', 'nginx:1.26'], 2, pinned);
    await applyPlan(ns, 'web-down', {
      scope: 'app',
      severity: 'critical',
      targets: { deployments: [{ name: 'web' }] },
      validation: { timeout: '2m' },
      trigger: { mode: 'auto', conditions: [{ type: 'DeploymentUnavailable', deployment: 'web' }] },
    });
    await kubectl('-n', ns, 'wait', '--for=condition=Ready', 'rbp/web-down', '--timeout=30s');
    let plan = await getPlan(ns, 'web-down');
    expect(plan.status.phase).toBe('Armed');
    expect(plan.status.observedGeneration).toBe(plan.metadata.generation);
    expect(condition(plan, 'Ready')).toMatchObject({ status: 'True', reason: 'Armed' });
    expect(condition(plan, 'Reconciling').status).toBe('False');
    expect(condition(plan, 'Stalled').status).toBe('False');
    expect(plan.status.armed.revisions).toEqual([{ deployment: 'web', revision: 2 }]);
    // The window starts when revision 2's ReplicaSet appeared, but never before the plan was created (a plan
    // applied for a stable app must not start from last week's release and expire at once).
    const rs = (await apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: 'app=web' })).items.find(
      (r) => r.metadata?.annotations?.[REVISION] === '2',
    );
    expect(ms(plan.status.armed.since)).toBe(
      Math.max(new Date(rs!.metadata!.creationTimestamp!).getTime(), ms(plan.metadata.creationTimestamp)),
    );
    expect(plan.status.triggerConditions).toEqual([
      expect.objectContaining({ name: 'deploymentunavailable-0', state: 'Healthy' }),
    ]);

    // A 10 s blip: Pending, then Healthy again; nothing fires, even after 30 s have passed since it began.
    const blip = await takeDown('web');
    await eventually('condition Pending', async () => {
      const p = await getPlan(ns, 'web-down');
      return p.status.triggerConditions?.[0]?.state === 'Pending' && p;
    });
    await sleep(Math.max(0, blip + 10_000 - Date.now()));
    await bringBack('web');
    plan = await eventually('condition Healthy', async () => {
      const p = await getPlan(ns, 'web-down');
      return p.status.triggerConditions?.[0]?.state === 'Healthy' && p;
    });
    await sleep(Math.max(0, blip + 32_000 - Date.now()));
    plan = await getPlan(ns, 'web-down');
    expect(plan.status.phase, 'a 10 s blip must not fire a 30 s condition').toBe('Armed');
    expect(plan.status.trigger).toBeUndefined();
    expect(await rolloutsOf('web')).toBe('2');

    // An outage: the rollback starts within 2 s after the 30 s.
    const down = await takeDown('web');
    plan = await eventually(
      'the trigger to fire',
      async () => {
        const p = await getPlan(ns, 'web-down');
        return p.status.trigger && p;
      },
      45_000,
      50,
    );
    // Bring the node back so the rolled-back revision can become available (post-validation).
    await bringBack('web');
    plan = await waitPlanPhase(ns, 'web-down', ['Succeeded', 'Failed'], 60_000);
    expect(plan.status.phase, JSON.stringify(plan.status.conditions)).toBe('Succeeded');
    const t = plan.status.trigger;
    expect(t).toMatchObject({ condition: 'deploymentunavailable-0', type: 'DeploymentUnavailable' });
    const fired = ms(t.firedAt) - down;
    const started = ms(plan.status.startedAt) - down;
    const patched = ms(plan.status.steps.find((s: any) => s.name === 'AppRollback').startedAt) - down;
    const timing = `fired ${fired} ms, started ${started} ms, AppRollback ${patched} ms after the test saw 0 available`;
    console.info(`DeploymentUnavailable for 30s: ${timing}`);
    expect(fired, timing).toBeGreaterThanOrEqual(29_500);
    expect(fired, timing).toBeLessThanOrEqual(32_000);
    expect(started, timing).toBeLessThanOrEqual(32_000);
    expect(patched, timing).toBeLessThanOrEqual(32_000);
    expect(Math.abs(ms(t.conditionSince) - down), 'conditionSince is when it went down').toBeLessThan(1500);
    expect(ms(t.firedAt) - ms(t.conditionSince)).toBeGreaterThanOrEqual(30_000);
    expect(condition(plan, 'Triggered')).toMatchObject({ status: 'True', reason: 'DeploymentUnavailable' });
    expect(plan.status.approval).toMatchObject({ automatic: true });
    expect(plan.status.recoverySeconds).toBeGreaterThanOrEqual(plan.status.durationSeconds);
    expect(condition(plan, 'RTOMet')).toMatchObject({ status: 'True' });
    expect(condition(plan, 'RTOMet').message).toMatch(/objective 2m/); // critical's default RTO
    expect(await imageOf(ns, 'web')).toBe('nginx:1.25');
    await waitForEvents(ns, 'web-down', withReasons('Armed', 'Triggered', 'Started', 'Succeeded'));
    expect(
      await metricValue(op.metricsUrl, 'nxt_rollback_total', {
        trigger: 'DeploymentUnavailable',
        result: 'succeeded',
      }),
    ).toBe(1);
    expect(
      await metricValue(op.metricsUrl, 'nxt_rollback_detection_seconds_count', {
        trigger: 'DeploymentUnavailable',
      }),
    ).toBe(1);
  });

  it('fires only once: the same condition holding again after the rollback starts nothing', async () => {
    await deploymentWithHistory(ns, 'once', ['nginx:1.25', 'nginx:1.26'], 2, pinned);
    await applyPlan(ns, 'once-down', {
      scope: 'app',
      severity: 'critical',
      targets: { deployments: [{ name: 'once' }] },
      trigger: {
        mode: 'auto',
        conditions: [{ type: 'DeploymentUnavailable', deployment: 'once', for: '2s' }],
      },
    });
    await waitPlanPhase(ns, 'once-down', ['Armed']);
    await takeDown('once');
    await eventually('the trigger to fire', async () => (await getPlan(ns, 'once-down')).status.trigger);
    await bringBack('once');
    const done = await waitPlanPhase(ns, 'once-down', ['Succeeded', 'Failed']);
    expect(done.status.phase).toBe('Succeeded');
    const revision = await rolloutsOf('once');
    expect(revision).toBe('3');
    await takeDown('once');
    await sleep(6000); // three times `for`
    const after = await getPlan(ns, 'once-down');
    expect(after.status.phase).toBe('Succeeded');
    expect(after.status.trigger).toEqual(done.status.trigger);
    expect(await rolloutsOf('once'), 'no second rollback').toBe(revision);
    // Exactly one: the Succeeded Event is recorded after the Triggered one, so once it is there a second
    // Triggered Event would be too.
    const once = await waitForEvents(ns, 'once-down', withReasons('Triggered', 'Succeeded'));
    expect(once.filter((e) => e.reason === 'Triggered')).toHaveLength(1);
    await bringBack('once');
  });

  it('a dry run of an automatic plan reports and is never armed', async () => {
    await deploymentWithHistory(ns, 'dry', ['nginx:1.25', 'nginx:1.26']);
    await applyPlan(ns, 'dry-auto', {
      scope: 'app',
      severity: 'critical',
      dryRun: true,
      targets: { deployments: [{ name: 'dry' }] },
      trigger: { mode: 'auto', conditions: [{ type: 'DeploymentUnavailable', deployment: 'dry' }] },
    });
    const plan = await waitPlanPhase(ns, 'dry-auto', ['DryRunComplete', 'Armed', 'Failed']);
    expect(plan.status.phase).toBe('DryRunComplete');
    expect(plan.status.dryRunReport.wouldSucceed).toBe(true);
    expect(plan.status.armed).toBeUndefined();
  });

  it('a condition that cannot be evaluated never fires and is named on TriggerHealthy, Ready stays Armed', async () => {
    await applyPlan(ns, 'blind', {
      scope: 'app',
      severity: 'critical',
      targets: { deployments: [{ name: 'dry' }] },
      trigger: {
        mode: 'auto',
        conditions: [
          { type: 'DeploymentUnavailable', name: 'ghost-down', deployment: 'ghost', for: '0s' },
          // Nothing listens on port 1: whatever the probe says (unreachable), it is not a reason to roll back.
          {
            type: 'PrometheusQuery',
            name: 'errors',
            address: 'http://127.0.0.1:1',
            query: 'up',
            below: 1,
            period: '1s',
          },
        ],
      },
    });
    // Unknown at first ("not observed yet"); the first probe's error names the Prometheus condition too.
    const plan = await eventually('both conditions named as not evaluable', async () => {
      const p = await getPlan(ns, 'blind');
      return /errors: /.test(condition(p, 'TriggerHealthy')?.message ?? '') && p;
    });
    expect(plan.status.triggerConditions.map((c: any) => c.state)).toEqual(['Unknown', 'Unknown']);
    expect(plan.status.phase).toBe('Armed');
    expect(condition(plan, 'Ready')).toMatchObject({ status: 'True', reason: 'Armed' });
    expect(condition(plan, 'Ready').message).toMatch(
      /cannot evaluate: ghost-down \(DeploymentNotFound\), errors \(/,
    );
    expect(condition(plan, 'TriggerHealthy')).toMatchObject({
      status: 'False',
      reason: 'DeploymentNotFound',
    });
    expect(condition(plan, 'TriggerHealthy').message).toMatch(
      /ghost-down: Deployment "ghost" not found; errors: /,
    );
    await sleep(3000);
    const later = await getPlan(ns, 'blind');
    expect(later.status.phase).toBe('Armed');
    expect(later.status.trigger).toBeUndefined();
  });

  it('HTTPCheck fires after failureThreshold consecutive failed probes', async () => {
    await deploymentWithHistory(ns, 'api', ['nginx:1.25', 'nginx:1.26']);
    await applyPlan(ns, 'api-http', {
      scope: 'app',
      severity: 'critical',
      targets: { deployments: [{ name: 'api' }] },
      trigger: {
        mode: 'auto',
        conditions: [{ type: 'HTTPCheck', name: 'health', url: httpUrl, period: '1s', failureThreshold: 3 }],
      },
    });
    await waitPlanPhase(ns, 'api-http', ['Armed']);
    await eventually('first probe seen Healthy', async () => {
      const p = await getPlan(ns, 'api-http');
      return p.status.triggerConditions?.[0]?.state === 'Healthy';
    });
    probes = [];
    healthy = false;
    try {
      const plan = await eventually(
        'the HTTP trigger to fire',
        async () => {
          const p = await getPlan(ns, 'api-http');
          return p.status.trigger && p;
        },
        20_000,
      );
      const failed = probes.filter((p) => p.status === 500);
      expect(failed.length, 'fired at the third failed probe').toBeGreaterThanOrEqual(3);
      const third = failed[2]!.at;
      expect(ms(plan.status.trigger.firedAt)).toBeGreaterThanOrEqual(third);
      expect(ms(plan.status.trigger.firedAt) - third).toBeLessThan(1000);
      expect(Math.abs(ms(plan.status.trigger.conditionSince) - failed[0]!.at)).toBeLessThan(200);
      expect(plan.status.trigger).toMatchObject({ condition: 'health', type: 'HTTPCheck' });
      expect(plan.status.trigger.observed).toMatch(/got HTTP 500, expected a 2xx status/);
    } finally {
      healthy = true;
    }
    const done = await waitPlanPhase(ns, 'api-http', ['Succeeded', 'Failed']);
    expect(done.status.phase).toBe('Succeeded');
    expect(await imageOf(ns, 'api')).toBe('nginx:1.25');
  });

  it('watches a Deployment named only in a condition (not a target) through the watch', async () => {
    await deploymentWithHistory(ns, 'front', ['nginx:1.25', 'nginx:1.26']);
    await deploymentWithHistory(ns, 'side', ['nginx:1.25'], 1, pinned);
    await applyPlan(ns, 'front-on-side', {
      scope: 'app',
      severity: 'critical',
      targets: { deployments: [{ name: 'front' }] },
      trigger: {
        mode: 'auto',
        conditions: [{ type: 'DeploymentUnavailable', deployment: 'side', for: '1s' }],
      },
    });
    await waitPlanPhase(ns, 'front-on-side', ['Armed']);
    const down = await takeDown('side');
    const plan = await waitPlanPhase(ns, 'front-on-side', ['Succeeded', 'Failed']);
    await bringBack('side');
    expect(plan.status.phase).toBe('Succeeded');
    expect(ms(plan.status.trigger.firedAt) - down).toBeLessThan(3000);
    expect(await imageOf(ns, 'front')).toBe('nginx:1.25');
  });

  it('expires when the watch window passes unfired, and a rearm arms it again once', async () => {
    await deploymentWithHistory(ns, 'quiet', ['nginx:1.25', 'nginx:1.26']);
    await applyPlan(ns, 'quiet-watch', {
      scope: 'app',
      severity: 'critical',
      targets: { deployments: [{ name: 'quiet' }] },
      trigger: {
        mode: 'auto',
        watchWindow: '8s',
        conditions: [{ type: 'DeploymentUnavailable', deployment: 'quiet' }],
      },
    });
    // The window counts from the plan's creation (revision 2 appeared a few seconds before it).
    let plan = await waitPlanPhase(ns, 'quiet-watch', ['Expired', 'Failed', 'Succeeded'], 30_000);
    expect(plan.status.phase).toBe('Expired');
    expect(condition(plan, 'Ready')).toMatchObject({ status: 'True', reason: 'WatchWindowPassed' });
    expect(condition(plan, 'Stalled').status).toBe('False');
    expect(Date.now()).toBeGreaterThanOrEqual(ms(plan.status.armed.until));
    await waitForEvents(ns, 'quiet-watch', withReasons('Expired'));

    const before = Date.now();
    await annotate('quiet-watch', `${A}/rearm=1`);
    plan = await eventually('re-armed', async () => {
      const p = await getPlan(ns, 'quiet-watch');
      return p.status.phase === 'Armed' && p;
    });
    expect(plan.status.lastRearm).toMatchObject({ annotationValue: '1' });
    expect(ms(plan.status.armed.since)).toBeGreaterThanOrEqual(before - 1000);
    expect(ms(plan.status.armed.until) - ms(plan.status.armed.since)).toBe(8000);
    plan = await waitPlanPhase(ns, 'quiet-watch', ['Expired'], 20_000);
    // The same value does not act again.
    await annotate('quiet-watch', `${A}/other=x`);
    await sleep(2000);
    expect((await getPlan(ns, 'quiet-watch')).status.phase).toBe('Expired');
    expect(await rolloutsOf('quiet')).toBe('2');
  });

  describe('severity', () => {
    /** An automatic plan whose HTTP condition fails at once (its server always answers 500). */
    const failingPlan = async (name: string, severity: string, extra: object = {}) => {
      await deploymentWithHistory(ns, name, ['nginx:1.25', 'nginx:1.26']);
      await applyPlan(ns, name, {
        scope: 'app',
        severity,
        targets: { deployments: [{ name }] },
        trigger: {
          mode: 'auto',
          conditions: [{ type: 'HTTPCheck', url: failingUrl, period: '1s', failureThreshold: 1 }],
          ...extra,
        },
      });
    };

    it('high waits confirmFor for a veto, then executes', async () => {
      await failingPlan('high-go', 'high', { confirmFor: '5s' });
      const waiting = await waitPlanPhase(ns, 'high-go', ['AwaitingApproval', 'Running', 'Succeeded']);
      expect(waiting.status.phase).toBe('AwaitingApproval');
      expect(condition(waiting, 'AwaitingApproval')).toMatchObject({
        status: 'True',
        reason: 'ConfirmWindow',
      });
      expect(condition(waiting, 'Ready')).toMatchObject({ status: 'False', reason: 'AwaitingApproval' });
      expect(condition(waiting, 'Reconciling').status).toBe('True');
      const done = await waitPlanPhase(ns, 'high-go', ['Succeeded', 'Failed'], 30_000);
      expect(done.status.phase).toBe('Succeeded');
      const waited = ms(done.status.startedAt) - ms(done.status.trigger.firedAt);
      expect(waited).toBeGreaterThanOrEqual(5000);
      expect(waited).toBeLessThan(7000);
      expect(done.status.approval).toMatchObject({ automatic: true });
      expect(condition(done, 'RTOMet').message).toMatch(/objective 5m/);
      // Exactly one: AwaitingApproval is recorded before the plan runs, Succeeded after it.
      const approval = await waitForEvents(ns, 'high-go', withReasons('AwaitingApproval', 'Succeeded'));
      expect(approval.filter((e) => e.reason === 'AwaitingApproval')).toHaveLength(1);
    });

    it('high honours a veto during the confirm window: Vetoed, nothing changed', async () => {
      await failingPlan('high-veto', 'high', { confirmFor: '30s' });
      await waitPlanPhase(ns, 'high-veto', ['AwaitingApproval']);
      await annotate('high-veto', `${A}/vetoed-by=oncall`, `${A}/veto-reason=known flaky probe`);
      const plan = await waitPlanPhase(ns, 'high-veto', ['Vetoed', 'Running', 'Succeeded']);
      expect(plan.status.phase).toBe('Vetoed');
      expect(plan.status.veto).toMatchObject({ vetoedBy: 'oncall', reason: 'known flaky probe' });
      expect(condition(plan, 'Ready')).toMatchObject({ status: 'True', reason: 'Vetoed' });
      expect(plan.status.startedAt).toBeUndefined();
      expect(await rolloutsOf('high-veto')).toBe('2');
    });

    it('high approved runs at once', async () => {
      await failingPlan('high-ok', 'high', { confirmFor: '10m' });
      await waitPlanPhase(ns, 'high-ok', ['AwaitingApproval']);
      const approved = Date.now();
      await annotate('high-ok', `${A}/approved-by=lead`);
      const plan = await waitPlanPhase(ns, 'high-ok', ['Succeeded', 'Failed']);
      expect(plan.status.phase).toBe('Succeeded');
      expect(plan.status.approval).toMatchObject({ approvedBy: 'lead' });
      expect(ms(plan.status.startedAt) - approved).toBeLessThan(2000);
    });

    it('medium waits until approved-by is set (also for a manual plan), counted as awaiting approval', async () => {
      await failingPlan('medium', 'medium');
      await deploymentWithHistory(ns, 'manual-medium', ['nginx:1.25', 'nginx:1.26']);
      await applyPlan(ns, 'manual-medium', {
        scope: 'app',
        severity: 'medium',
        targets: { deployments: [{ name: 'manual-medium' }] },
      });
      const auto = await waitPlanPhase(ns, 'medium', ['AwaitingApproval', 'Running', 'Succeeded']);
      const manual = await waitPlanPhase(ns, 'manual-medium', ['AwaitingApproval', 'Running', 'Succeeded']);
      for (const p of [auto, manual]) {
        expect(p.status.phase).toBe('AwaitingApproval');
        expect(condition(p, 'AwaitingApproval')).toMatchObject({
          status: 'True',
          reason: 'ApprovalRequired',
        });
      }
      expect(manual.status.trigger).toMatchObject({ type: 'Manual', condition: 'Manual' });
      expect(
        await metricValue(op.metricsUrl, 'nxt_rollback_plans_awaiting_approval', { namespace: ns }),
      ).toBe(2);
      await sleep(3000);
      expect((await getPlan(ns, 'medium')).status.phase).toBe('AwaitingApproval');
      expect((await getPlan(ns, 'manual-medium')).status.phase).toBe('AwaitingApproval');
      await annotate('medium', `${A}/approved-by=lead`, `${A}/approval-reason=checked the dashboards`);
      await annotate('manual-medium', `${A}/approved-by=lead`);
      for (const name of ['medium', 'manual-medium']) {
        const p = await waitPlanPhase(ns, name, ['Succeeded', 'Failed']);
        expect(p.status.phase).toBe('Succeeded');
        expect(p.status.approval).toMatchObject({ approvedBy: 'lead' });
        expect(condition(p, 'AwaitingApproval')).toMatchObject({ status: 'False', reason: 'Approved' });
        // medium's default RTO; recovery counts the wait for the approval
        expect(condition(p, 'RTOMet').message).toMatch(/objective 15m/);
        expect(p.status.recoverySeconds).toBeGreaterThanOrEqual(3);
      }
      // A veto after execution changes nothing; it is reported.
      await annotate('medium', `${A}/vetoed-by=late`);
      await eventually('VetoIgnored event', async () =>
        (await eventsFor(ns, 'medium')).some((e) => e.reason === 'VetoIgnored'),
      );
      expect((await getPlan(ns, 'medium')).status.phase).toBe('Succeeded');
      // Marked unnecessary afterwards: recorded once.
      await annotate('medium', `${A}/unnecessary=probe was misconfigured`);
      const reviewed = await eventually('review recorded', async () => {
        const p = await getPlan(ns, 'medium');
        return p.status.review && p;
      });
      expect(reviewed.status.review).toMatchObject({ unnecessary: true, reason: 'probe was misconfigured' });
      expect(
        await metricValue(op.metricsUrl, 'nxt_rollback_unnecessary_total', { trigger: 'HTTPCheck' }),
      ).toBe(1);
      await waitRolledOut(ns, 'medium');
    });
  });
  // Regression (review, double execution): a plan that had just fired still showed Armed in the cache until
  // its pre-validation result was written, so two plans on one target both rolled it back.
  it('two critical plans fired by one outage of the same Deployment: exactly one rolls back', async () => {
    await deploymentWithHistory(ns, 'twin', ['nginx:1.25', 'nginx:1.26'], 2, pinned);
    for (const name of ['twin-a', 'twin-b'])
      await applyPlan(ns, name, {
        scope: 'app',
        severity: 'critical',
        targets: { deployments: [{ name: 'twin' }] },
        validation: { timeout: '2m' },
        trigger: {
          mode: 'auto',
          conditions: [{ type: 'DeploymentUnavailable', deployment: 'twin', for: '2s' }],
        },
      });
    await waitPlanPhase(ns, 'twin-a', ['Armed']);
    await waitPlanPhase(ns, 'twin-b', ['Armed']);
    await takeDown('twin');
    await eventually('both to fire', async () => {
      const [a, b] = [await getPlan(ns, 'twin-a'), await getPlan(ns, 'twin-b')];
      return a.status.trigger && b.status.trigger;
    });
    await bringBack('twin');
    const done = [
      await waitPlanPhase(ns, 'twin-a', ['Succeeded', 'Failed'], 60_000),
      await waitPlanPhase(ns, 'twin-b', ['Succeeded', 'Failed'], 60_000),
    ];
    expect(done.map((p) => p.status.phase).sort(), JSON.stringify(done.map((p) => p.status.steps))).toEqual([
      'Failed',
      'Succeeded',
    ]);
    const [lost, won] = done[0]!.status.phase === 'Failed' ? done : [done[1]!, done[0]!];
    expect(condition(lost!, 'Ready')).toMatchObject({ status: 'False', reason: 'ConcurrentPlan' });
    expect(condition(lost!, 'Ready').message).toContain(
      `Deployment "twin" is held by RollbackPlan "${won!.metadata.name}"`,
    );
    expect(lost!.status.deployments ?? []).toEqual([]);
    expect(await rolloutsOf('twin'), 'one rollback only').toBe('3');
    expect(await imageOf(ns, 'twin')).toBe('nginx:1.25');
  });

  // Regression (review): approved long after it fired, a plan undid whatever was current then (a fix-forward).
  it('a target that rolled out another revision since the trigger fired is not rolled back (TargetMovedOn)', async () => {
    await deploymentWithHistory(ns, 'moved', ['nginx:1.25', 'nginx:1.26']);
    await applyPlan(ns, 'moved', {
      scope: 'app',
      severity: 'medium',
      targets: { deployments: [{ name: 'moved' }] },
      trigger: {
        mode: 'auto',
        conditions: [{ type: 'HTTPCheck', url: failingUrl, period: '1s', failureThreshold: 1 }],
      },
    });
    const waiting = await waitPlanPhase(ns, 'moved', ['AwaitingApproval', 'Running', 'Succeeded']);
    expect(waiting.status.armed.revisions).toEqual([{ deployment: 'moved', revision: 2 }]);
    await kubectl('-n', ns, 'set', 'image', 'deployment/moved', 'app=nginx:1.27');
    await eventually('revision 3', async () => (await rolloutsOf('moved')) === '3');
    await annotate('moved', `${A}/approved-by=lead`);
    const plan = await waitPlanPhase(ns, 'moved', ['Succeeded', 'Failed']);
    expect(plan.status.phase).toBe('Failed');
    expect(condition(plan, 'Ready')).toMatchObject({ status: 'False', reason: 'TargetMovedOn' });
    expect(condition(plan, 'Ready').message).toMatch(/Deployment "moved" moved on from revision 2 to 3/);
    expect(await rolloutsOf('moved')).toBe('3');
    expect(await imageOf(ns, 'moved')).toBe('nginx:1.27');
  });

  it('an operator restart during the hold does not reset the clock (since is in status)', async () => {
    await deploymentWithHistory(ns, 'restart', ['nginx:1.25', 'nginx:1.26'], 2, pinned);
    await applyPlan(ns, 'restart-down', {
      scope: 'app',
      severity: 'critical',
      targets: { deployments: [{ name: 'restart' }] },
      validation: { timeout: '2m' },
      trigger: { mode: 'auto', conditions: [{ type: 'DeploymentUnavailable', deployment: 'restart' }] },
    });
    await waitPlanPhase(ns, 'restart-down', ['Armed']);
    const down = await takeDown('restart');
    const pending = await eventually('condition Pending', async () => {
      const p = await getPlan(ns, 'restart-down');
      return p.status.triggerConditions?.[0]?.state === 'Pending' && p;
    });
    expect(Math.abs(ms(pending.status.triggerConditions[0].since) - down)).toBeLessThan(1500);
    await sleep(Math.max(0, down + 8000 - Date.now()));
    await op.stop();
    await sleep(2000);
    op = await startOperator({ env: { WATCH_NAMESPACES: ns } });
    await op.waitReady();
    const plan = await eventually(
      'the trigger to fire',
      async () => {
        const p = await getPlan(ns, 'restart-down');
        return p.status.trigger && p;
      },
      45_000,
      50,
    );
    await bringBack('restart');
    const fired = ms(plan.status.trigger.firedAt) - down;
    console.info(`DeploymentUnavailable across a restart: fired ${fired} ms after the test saw 0 available`);
    expect(fired, 'fired 30 s after it went down, not 30 s after the restart').toBeGreaterThanOrEqual(29_500);
    expect(fired).toBeLessThanOrEqual(32_000);
    const done = await waitPlanPhase(ns, 'restart-down', ['Succeeded', 'Failed'], 60_000);
    expect(done.status.phase).toBe('Succeeded');
  });
});
