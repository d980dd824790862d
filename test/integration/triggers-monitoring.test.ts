import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Annotation } from '../../operator/api/v1alpha1/common.js';
import { freePort } from '../env/processes.js';
import {
  createTestNamespace,
  deleteTestNamespace,
  eventually,
  kubectl,
  testClients,
} from '../support/kube.js';
import {
  alertReceiverSettings,
  errorRateRule,
  startAlertingStack,
  type AlertingStack,
} from '../support/monitoring.js';
import { metricValue, startOperator, type OperatorProcess } from '../support/operator.js';
import {
  applyPlan,
  condition,
  getPlan,
  waitForEvents,
  waitPlanPhase,
  withReasons,
} from '../support/plans.js';
import { APPROVALS_POLICY as POLICY, ShippedApprovals } from '../support/approvals.js';
import { kubectlWith } from '../support/rbac.js';
import { deploymentWithHistory, imageOf } from '../support/workloads.js';

// Automatic rollback (issue 10) with nothing faked in the path: an exporter scraped by a real Prometheus,
// its alerting rule delivered by a real Alertmanager to the operator process's webhook receiver, the
// operator querying that Prometheus for PrometheusQuery conditions, and approvals judged by the shipped
// ValidatingAdmissionPolicy for impersonated users. Tests run in order: the exporter's rates are shared.

const ALERT = 'CheckoutHighErrorRate';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ms = (iso: string) => Date.parse(iso);

interface Received {
  path: string;
  body: any;
  at: number;
}

describe('automatic triggers against real Prometheus, Alertmanager and admission', () => {
  const { core } = testClients();
  let ns = '';
  let op: OperatorProcess;
  let receiver: Awaited<ReturnType<typeof alertReceiverSettings>>;
  let stack: AlertingStack;
  // A local app whose health check always fails, and a notification receiver; both on 127.0.0.1.
  let failing: Server;
  let failingUrl = '';
  let hooks: Server;
  let hooksBase = '';
  const received: Received[] = [];

  const listen = async (s: Server) => {
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(s.address() as { port: number }).port}`;
  };
  const firing = async () => (await metricValue(op.metricsUrl, 'nxt_alerts_firing')) ?? 0;
  /** The plan as soon as `pred` holds for it. */
  const planWhen = (name: string, what: string, pred: (p: any) => boolean, timeoutMs = 30_000) =>
    eventually(
      `${name}: ${what}`,
      async () => {
        const p = await getPlan(ns, name);
        return pred(p) && p;
      },
      timeoutMs,
      100,
    );
  const stateOf = (p: any, cond: string) => p.status?.triggerConditions?.find((c: any) => c.name === cond);
  const alertConditionFor = (name: string, extra: object[] = []) => ({
    type: 'Alert',
    name,
    matchers: [{ name: 'alertname', value: ALERT }, { name: 'namespace', value: ns }, ...extra],
  });

  beforeAll(async () => {
    ns = await createTestNamespace('trigmon');
    receiver = await alertReceiverSettings();
    op = await startOperator({ env: { ...receiver.env, WATCH_NAMESPACES: ns } });
    stack = await startAlertingStack({
      webhookUrl: receiver.url,
      token: receiver.token,
      rules: errorRateRule({ alert: ALERT, perSecondAbove: 1, labels: { severity: 'critical' } }),
      rates: { ok: 50, error: 0 },
      targetLabels: { namespace: ns },
    });
    failing = createServer((_req, res) => res.writeHead(500).end('down'));
    failingUrl = `${await listen(failing)}/healthz`;
    hooks = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        let body: any;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          body = undefined;
        }
        received.push({ path: req.url ?? '', body, at: Date.now() });
        res.writeHead(200).end('ok');
      });
    });
    hooksBase = await listen(hooks);
    await Promise.all([
      op.waitReady(),
      deploymentWithHistory(ns, 'idle', ['nginx:1.25', 'nginx:1.26'], 1),
      deploymentWithHistory(ns, 'checkout', ['nginx:1.25', 'nginx:1.26'], 1),
      deploymentWithHistory(ns, 'cart', ['nginx:1.25', 'nginx:1.26'], 1),
      deploymentWithHistory(ns, 'orders', ['nginx:1.25', 'nginx:1.26'], 1),
    ]);
  });
  afterAll(async () => {
    await stack?.stop();
    await op?.stop();
    failing?.close();
    hooks?.closeAllConnections();
    hooks?.close();
    receiver?.cleanup();
    await deleteTestNamespace(ns);
  });

  it('Alert: a firing Prometheus rule delivered by Alertmanager rolls back the matching plan only; an alert older than the window does not count; an invalid matcher regex is reported', async () => {
    await applyPlan(ns, 'alert-hit', {
      scope: 'app',
      severity: 'critical',
      targets: { deployments: [{ name: 'checkout' }] },
      trigger: { mode: 'auto', conditions: [alertConditionFor('checkout-errors')] },
    });
    await applyPlan(ns, 'alert-miss', {
      scope: 'app',
      severity: 'critical',
      targets: { deployments: [{ name: 'idle' }] },
      trigger: {
        mode: 'auto',
        conditions: [
          {
            type: 'Alert',
            name: 'other-namespace',
            matchers: [
              { name: 'alertname', value: ALERT },
              { name: 'namespace', value: `${ns}-other` },
            ],
          },
        ],
      },
    });
    // RE2 has no lookbehind and no repeat count above 1000; both are within the CRD's 256 characters.
    await applyPlan(ns, 'alert-badre', {
      scope: 'app',
      severity: 'critical',
      targets: { deployments: [{ name: 'idle' }] },
      trigger: {
        mode: 'auto',
        conditions: [
          alertConditionFor('lookbehind', [{ name: 'job', op: '=~', value: '(?<=x)app' }]),
          alertConditionFor('repeat', [{ name: 'job', op: '!~', value: 'a{1001}' }]),
        ],
      },
    });
    for (const name of ['alert-hit', 'alert-miss', 'alert-badre']) await waitPlanPhase(ns, name, ['Armed']);
    const bad = await planWhen(
      'alert-badre',
      'TriggerHealthy=False',
      (p) => condition(p, 'TriggerHealthy')?.status === 'False',
    );
    expect(condition(bad, 'TriggerHealthy').reason).toBe('InvalidMatcher');
    const badMsg: string = condition(bad, 'TriggerHealthy').message;
    expect(badMsg).toMatch(
      /^cannot evaluate lookbehind: matcher job=~"\(\?<=x\)app": not a valid RE2 pattern/,
    );
    expect(badMsg).toMatch(
      /; repeat: matcher job!~"a\{1001\}": not a valid RE2 pattern: .*invalid repeat count/,
    );
    expect(badMsg.length).toBeLessThan(1000);
    expect(condition(bad, 'Ready')).toMatchObject({ status: 'True', reason: 'Armed' });
    expect(condition(bad, 'Ready').message).toMatch(
      /cannot evaluate: lookbehind \(InvalidMatcher\), repeat \(InvalidMatcher\)/,
    );
    expect(bad.status.triggerConditions.map((c: any) => c.state)).toEqual(['Unknown', 'Unknown']);

    expect(await firing(), 'no alert before the error rate rises').toBe(0);
    const raised = Date.now();
    stack.app.setRates({ error: 20 });
    const fired = await planWhen('alert-hit', 'the trigger to fire', (p) => !!p.status?.trigger, 30_000);
    // The alert as the real Alertmanager holds it: the plan's conditionSince is its startsAt.
    const amAlerts = (await fetch(`${stack.alertmanager.url}/api/v2/alerts`).then((r) => r.json())) as any[];
    const amAlert = amAlerts.find((a) => a.labels.alertname === ALERT && a.labels.namespace === ns);
    expect(amAlert, JSON.stringify(amAlerts)).toBeDefined();
    expect(fired.status.trigger).toMatchObject({
      type: 'Alert',
      condition: 'checkout-errors',
      observed: `alert ${ALERT} firing`,
    });
    expect(ms(fired.status.trigger.conditionSince)).toBe(ms(amAlert.startsAt));
    expect(ms(fired.status.trigger.conditionSince)).toBeGreaterThanOrEqual(raised - 1000);
    expect(ms(fired.status.trigger.firedAt)).toBeGreaterThanOrEqual(ms(fired.status.trigger.conditionSince));
    expect(condition(fired, 'Triggered')).toMatchObject({ status: 'True', reason: 'Alert' });
    const done = await waitPlanPhase(ns, 'alert-hit', ['Succeeded', 'Failed']);
    expect(done.status.phase, JSON.stringify(done.status.conditions)).toBe('Succeeded');
    expect(done.status.approval).toMatchObject({ automatic: true });
    expect(await imageOf(ns, 'checkout'), 'the template of revision 1 is back').toBe('nginx:1.25');
    await waitForEvents(ns, 'alert-hit', withReasons('Armed', 'Triggered', 'Started', 'Succeeded'));
    expect(
      await metricValue(op.metricsUrl, 'nxt_rollback_total', { trigger: 'Alert', result: 'succeeded' }),
    ).toBe(1);

    // A release after the alert began: the same matchers, but the alert is older than the plan's window.
    await deploymentWithHistory(ns, 'late', ['nginx:1.25', 'nginx:1.26'], 1);
    await applyPlan(ns, 'alert-late', {
      scope: 'app',
      severity: 'critical',
      targets: { deployments: [{ name: 'late' }] },
      trigger: { mode: 'auto', conditions: [alertConditionFor('late-errors')] },
    });
    const late = await waitPlanPhase(ns, 'alert-late', ['Armed', 'Succeeded', 'Failed', 'Running']);
    expect(late.status.phase).toBe('Armed');
    expect(ms(late.status.armed.since)).toBeGreaterThan(ms(amAlert.startsAt));
    await sleep(3000);
    expect(await firing(), 'the alert is still firing and stored').toBeGreaterThanOrEqual(1);
    const still = await getPlan(ns, 'alert-late');
    expect(still.status.phase, 'an alert that began before armed.since does not fire').toBe('Armed');
    expect(stateOf(still, 'late-errors')).toMatchObject({
      state: 'Healthy',
      observed: 'no matching alert firing',
    });
    for (const name of ['alert-miss', 'alert-badre']) {
      const p = await getPlan(ns, name);
      expect(p.status.phase, `${name} while ${ALERT} fires`).toBe('Armed');
      expect(p.status.trigger).toBeUndefined();
    }
    expect(stateOf(await getPlan(ns, 'alert-miss'), 'other-namespace').state).toBe('Healthy');

    // (control) the same alert starting again, now inside the window, does fire it.
    stack.app.setRates({ error: 0 });
    await eventually('the alert to resolve', async () => (await firing()) === 0, 30_000, 250);
    const again = Date.now();
    stack.app.setRates({ error: 20 });
    const lateFired = await planWhen('alert-late', 'the trigger to fire', (p) => !!p.status?.trigger, 30_000);
    expect(ms(lateFired.status.trigger.conditionSince)).toBeGreaterThanOrEqual(again - 1000);
    stack.app.setRates({ error: 0 });
    expect((await waitPlanPhase(ns, 'alert-late', ['Succeeded', 'Failed'])).status.phase).toBe('Succeeded');
    for (const name of ['alert-miss', 'alert-badre'])
      expect((await getPlan(ns, name)).status.phase, `${name} after a second alert`).toBe('Armed');
    // Not wanted armed while the next test raises the error rate again.
    await kubectl('-n', ns, 'delete', 'rbp', 'alert-miss', 'alert-badre');
  });

  it('PrometheusQuery: NaN and empty results are no data, an error rate fires after `for`, an unreachable Prometheus never fires', async () => {
    const sel = `namespace="${ns}"`;
    const ratio = `sum(rate(http_requests_total{${sel},code="500"}[5s])) / sum(rate(http_requests_total{${sel}}[5s]))`;
    const prom = (name: string, query: string, extra: object = {}) => ({
      type: 'PrometheusQuery',
      name,
      address: stack.prometheus.url,
      query,
      above: 0.05,
      period: '1s',
      for: '3s',
      ...extra,
    });
    const valueOf = async (q: string) => {
      const r: any = await stack.prometheus.query(q);
      return r.data.result.length ? r.data.result[0].value[1] : 'empty';
    };
    // No traffic at all: 0/0.
    stack.app.setRates({ ok: 0, error: 0 });
    await eventually(
      'the ratio to be NaN in Prometheus',
      async () => (await valueOf(ratio)) === 'NaN',
      30_000,
      250,
    );
    const closed = await freePort(); // nothing listens there
    await applyPlan(ns, 'prom-nodata', {
      scope: 'app',
      severity: 'critical',
      targets: { deployments: [{ name: 'idle' }] },
      trigger: { mode: 'auto', conditions: [prom('ratio', ratio)] },
    });
    await applyPlan(ns, 'prom-missing', {
      scope: 'app',
      severity: 'critical',
      targets: { deployments: [{ name: 'idle' }] },
      trigger: {
        mode: 'auto',
        conditions: [prom('missing', 'sum(rate(nxt_no_such_series_total[5s]))', { above: -1 })],
      },
    });
    await applyPlan(ns, 'prom-down', {
      scope: 'app',
      severity: 'critical',
      targets: { deployments: [{ name: 'idle' }] },
      trigger: {
        mode: 'auto',
        conditions: [
          prom('unreachable', ratio, { address: `http://127.0.0.1:${closed}`, for: '0s', below: 2 }),
        ],
      },
    });
    const nodata = await planWhen(
      'prom-nodata',
      'the first observation',
      (p) => stateOf(p, 'ratio')?.state !== 'Unknown' && !!stateOf(p, 'ratio'),
    );
    expect(stateOf(nodata, 'ratio')).toMatchObject({
      state: 'Healthy',
      observed: `no data (NaN) (query ${ratio})`,
    });
    expect(nodata.status.phase).toBe('Armed');
    expect(condition(nodata, 'TriggerHealthy')).toMatchObject({ status: 'True', reason: 'Evaluating' });
    const missing = await planWhen(
      'prom-missing',
      'the first observation',
      (p) => stateOf(p, 'missing')?.state !== 'Unknown' && !!stateOf(p, 'missing'),
    );
    // above: -1 would make any value bad: only the empty result keeps it Healthy.
    expect(stateOf(missing, 'missing')).toMatchObject({
      state: 'Healthy',
      observed: expect.stringMatching(/^no data \(empty vector\)/),
    });
    expect(missing.status.phase).toBe('Armed');
    const down = await planWhen(
      'prom-down',
      'TriggerHealthy=False',
      (p) => condition(p, 'TriggerHealthy')?.status === 'False',
    );
    expect(condition(down, 'TriggerHealthy').reason).toBe('PrometheusUnreachable');
    expect(condition(down, 'TriggerHealthy').message).toMatch(
      new RegExp(`^cannot evaluate unreachable: .*127\\.0\\.0\\.1:${closed}`),
    );
    expect(condition(down, 'Ready')).toMatchObject({ status: 'True', reason: 'Armed' });
    expect(condition(down, 'Ready').message).toMatch(
      /cannot evaluate: unreachable \(PrometheusUnreachable\)/,
    );
    expect(stateOf(down, 'unreachable').state).toBe('Unknown');
    await kubectl('-n', ns, 'delete', 'rbp', 'prom-nodata');

    // Traffic without errors: a value, within the limit.
    stack.app.setRates({ ok: 50 });
    await eventually(
      'the ratio to be 0 in Prometheus',
      async () => (await valueOf(ratio)) === '0',
      30_000,
      250,
    );
    await applyPlan(ns, 'prom-ratio', {
      scope: 'app',
      severity: 'critical',
      targets: { deployments: [{ name: 'cart' }] },
      trigger: { mode: 'auto', conditions: [prom('error-ratio', ratio)] },
    });
    const ok = await planWhen(
      'prom-ratio',
      'the first observation',
      (p) => stateOf(p, 'error-ratio')?.state !== 'Unknown' && !!stateOf(p, 'error-ratio'),
    );
    expect(stateOf(ok, 'error-ratio')).toMatchObject({
      state: 'Healthy',
      observed: `0 <= 0.05 (query ${ratio})`,
    });
    await sleep(2000);
    expect((await getPlan(ns, 'prom-ratio')).status.phase, 'no errors, no rollback').toBe('Armed');

    // Errors: 20 of 70 requests a second fail. Pending while it holds, then it fires after `for` (3s).
    const raised = Date.now();
    stack.app.setRates({ error: 20 });
    const pending = await planWhen(
      'prom-ratio',
      'Pending',
      (p) => stateOf(p, 'error-ratio')?.state === 'Pending' || !!p.status?.trigger,
      30_000,
    );
    expect(stateOf(pending, 'error-ratio')?.state, 'seen Pending before firing').toBe('Pending');
    const fired = await planWhen('prom-ratio', 'the trigger to fire', (p) => !!p.status?.trigger, 30_000);
    const t = fired.status.trigger;
    expect(t).toMatchObject({ type: 'PrometheusQuery', condition: 'error-ratio' });
    expect(t.observed).toMatch(new RegExp(`^0\\.\\d+ > 0\\.05 \\(query `));
    const held = ms(t.firedAt) - ms(t.conditionSince);
    expect(held, `held ${held} ms`).toBeGreaterThanOrEqual(3000);
    expect(held, `held ${held} ms: fires at the first probe after for`).toBeLessThan(5000);
    expect(ms(t.conditionSince)).toBe(ms(stateOf(pending, 'error-ratio').since));
    expect(ms(t.conditionSince)).toBeGreaterThanOrEqual(raised);
    const done = await waitPlanPhase(ns, 'prom-ratio', ['Succeeded', 'Failed']);
    expect(done.status.phase, JSON.stringify(done.status.conditions)).toBe('Succeeded');
    expect(await imageOf(ns, 'cart')).toBe('nginx:1.25');
    expect(
      await metricValue(op.metricsUrl, 'nxt_rollback_detection_seconds_count', {
        trigger: 'PrometheusQuery',
      }),
    ).toBe(1);

    // The same errors for the other two: neither fires.
    await sleep(2000);
    stack.app.setRates({ error: 0 });
    for (const name of ['prom-missing', 'prom-down']) {
      const p = await getPlan(ns, name);
      expect(p.status.phase, name).toBe('Armed');
      expect(p.status.trigger, name).toBeUndefined();
    }
    const stillDown = await getPlan(ns, 'prom-down');
    expect(condition(stillDown, 'TriggerHealthy')).toMatchObject({
      status: 'False',
      reason: 'PrometheusUnreachable',
    });
    expect(stateOf(stillDown, 'unreachable').state).toBe('Unknown');
    await kubectl('-n', ns, 'delete', 'rbp', 'prom-missing', 'prom-down');
  });

  describe('approval through the shipped admission policy', () => {
    const admin = () => inject('kubeconfigPath');
    const suffix = randomBytes(3).toString('hex');
    const lead = `lead-${suffix}`; // nxt-rollback-team-lead in ns
    const patcher = `patcher-${suffix}`; // may patch plans, no approve verb
    const shipped = new ShippedApprovals();
    const tmp = mkdtempSync(join(tmpdir(), 'nxt-trigmon-'));
    const approve = (who: string, plan: string, name: string, ...extra: string[]) =>
      kubectlWith(
        admin(),
        `--as=${who}`,
        '-n',
        ns,
        'annotate',
        'rollbackplan',
        plan,
        '--overwrite',
        `${Annotation.ApprovedBy}=${name}`,
        ...extra,
      );
    const mayApproveMedium = async (who: string) => {
      const file = join(tmp, `sar-${randomBytes(3).toString('hex')}.json`);
      writeFileSync(
        file,
        JSON.stringify({
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: {
            user: who,
            resourceAttributes: {
              group: 'rollback.nxtnewday.io',
              resource: 'severities',
              name: 'medium',
              namespace: ns,
              verb: 'approve',
            },
          },
        }),
      );
      return JSON.parse(await kubectl('create', '-f', file, '-o', 'json')).status?.allowed === true;
    };

    beforeAll(async () => {
      await shipped.install('trigmon-test');
      await kubectl(
        'create',
        'role',
        'plan-editor',
        '-n',
        ns,
        '--verb=get,patch',
        '--resource=rollbackplans.rollback.nxtnewday.io',
      );
      await kubectl(
        'create',
        'rolebinding',
        'plan-editors',
        '-n',
        ns,
        '--role=plan-editor',
        `--user=${lead}`,
        `--user=${patcher}`,
      );
      await kubectl(
        'create',
        'rolebinding',
        'lead',
        '-n',
        ns,
        '--clusterrole=nxt-rollback-team-lead',
        `--user=${lead}`,
      );
      await eventually('RBAC to give the lead the approve verb', () => mayApproveMedium(lead), 30_000, 250);
      // A plan to probe admission with (server-side dry runs change nothing); armed, it never fires.
      await applyPlan(ns, 'probe', {
        scope: 'app',
        severity: 'medium',
        targets: { deployments: [{ name: 'idle' }] },
        trigger: { mode: 'auto', conditions: [{ type: 'DeploymentUnavailable', deployment: 'idle' }] },
      });
      // The lead naming someone else: refused by the policy only (so the verb check is left to the test).
      await shipped.waitEnforced(() => approve(lead, 'probe', patcher, '--dry-run=server'));
    });
    afterAll(async () => {
      await shipped.remove(() => approve(lead, 'probe', 'someone-else', '--dry-run=server'));
      rmSync(tmp, { recursive: true, force: true });
    });

    it('a medium plan that fired waits, escalates once, refuses an approver without the verb, and runs when the team lead approves as themselves', async () => {
      for (const [name, path] of [
        ['hook-page', '/page'],
        ['hook-team', '/team'],
      ] as const)
        await core.createNamespacedSecret({
          namespace: ns,
          body: { metadata: { name }, stringData: { url: `${hooksBase}${path}` } },
        });
      await applyPlan(ns, 'orders-medium', {
        scope: 'app',
        severity: 'medium',
        targets: { deployments: [{ name: 'orders' }] },
        trigger: {
          mode: 'auto',
          conditions: [
            { type: 'HTTPCheck', name: 'health', url: failingUrl, period: '1s', failureThreshold: 1 },
          ],
        },
        notify: [
          { name: 'page', type: 'webhook', urlSecretRef: { name: 'hook-page', key: 'url' }, after: '3s' },
          {
            name: 'team',
            type: 'webhook',
            urlSecretRef: { name: 'hook-team', key: 'url' },
            events: ['AwaitingApproval'],
          },
        ],
      });
      const waiting = await waitPlanPhase(ns, 'orders-medium', [
        'AwaitingApproval',
        'Running',
        'Succeeded',
        'Failed',
      ]);
      expect(waiting.status.phase).toBe('AwaitingApproval');
      expect(waiting.status.trigger).toMatchObject({ type: 'HTTPCheck', condition: 'health' });
      expect(condition(waiting, 'AwaitingApproval')).toMatchObject({
        status: 'True',
        reason: 'ApprovalRequired',
      });
      const firedAt = ms(waiting.status.trigger.firedAt);

      const team = await eventually(
        'AwaitingApproval delivered',
        async () => received.find((r) => r.path === '/team'),
        15_000,
        100,
      );
      expect(team.body).toMatchObject({ event: 'AwaitingApproval', target: 'team', severity: 'medium' });

      // Someone who may patch the plan but lacks the verb: refused by the API server.
      const refused = await approve(patcher, 'orders-medium', patcher);
      expect(refused.code, refused.stdout).not.toBe(0);
      expect(refused.stderr).toContain(
        `ValidatingAdmissionPolicy '${POLICY}' with binding '${POLICY}' denied request`,
      );
      expect(refused.stderr).toContain("needs the verb 'approve' on severities.rollback.nxtnewday.io/medium");
      // The lead may approve, but only as themselves.
      const asOther = await approve(lead, 'orders-medium', patcher);
      expect(asOther.code, 'the lead naming someone else').not.toBe(0);
      expect(asOther.stderr).toContain(POLICY);

      const page = await eventually(
        'the escalation',
        async () => received.find((r) => r.path === '/page'),
        15_000,
        100,
      );
      expect(page.body).toMatchObject({ event: 'Escalated', target: 'page', phase: 'AwaitingApproval' });
      expect(page.at - firedAt, 'escalated `after` (3s) the trigger fired').toBeGreaterThanOrEqual(3000);
      expect(page.at - firedAt, 'on time').toBeLessThan(8000);
      await sleep(2500);
      const stillWaiting = await getPlan(ns, 'orders-medium');
      expect(stillWaiting.status.phase).toBe('AwaitingApproval');
      expect(stillWaiting.metadata.annotations?.[Annotation.ApprovedBy]).toBeUndefined();

      const approved = await approve(lead, 'orders-medium', lead);
      expect(approved.code, approved.stderr).toBe(0);
      const done = await waitPlanPhase(ns, 'orders-medium', ['Succeeded', 'Failed']);
      expect(done.status.phase, JSON.stringify(done.status.conditions)).toBe('Succeeded');
      expect(done.status.approval.approvedBy).toBe(lead);
      expect(condition(done, 'AwaitingApproval')).toMatchObject({ status: 'False', reason: 'Approved' });
      expect(await imageOf(ns, 'orders')).toBe('nginx:1.25');
      // AwaitingApproval and Approved come before the run's Succeeded Event: once that is there, so are they.
      const events = await waitForEvents(ns, 'orders-medium', withReasons('Approved', 'Succeeded'));
      expect(events.find((e) => e.reason === 'Approved')?.message ?? '').toContain(lead);
      expect(events.filter((e) => e.reason === 'AwaitingApproval')).toHaveLength(1);

      await sleep(1000);
      expect(
        received.filter((r) => r.path === '/page').map((r) => r.body?.event),
        'one Escalated, nothing else',
      ).toEqual(['Escalated']);
      expect(received.filter((r) => r.path === '/team').map((r) => r.body?.event)).toEqual([
        'AwaitingApproval',
      ]);
      const records = (await getPlan(ns, 'orders-medium')).status.notifications;
      expect(records).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ id: 'page/Escalated', state: 'Delivered', attempts: 1 }),
          expect.objectContaining({ id: 'team/AwaitingApproval', state: 'Delivered', attempts: 1 }),
        ]),
      );
    });
  });
});
