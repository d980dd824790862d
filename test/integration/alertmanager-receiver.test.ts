import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import winston from 'winston';
import { AlertReceiver } from '../../operator/triggers/alert-receiver.js';
import { AlertStore } from '../../operator/triggers/alert-store.js';
import { LocalAlertmanager, LocalPrometheus } from '../env/monitoring.js';
import { freePort } from '../env/processes.js';
import { TestExporter } from '../support/exporter.js';
import {
  alertReceiverSettings,
  errorRateRule,
  startAlertingStack,
  type AlertingStack,
} from '../support/monitoring.js';
import { createTestNamespace, deleteTestNamespace, eventually } from '../support/kube.js';
import { metricValue, startOperator, type OperatorProcess } from '../support/operator.js';

// Alert-driven triggers end to end with real processes: an exporter's error rate → a real Prometheus
// alerting rule → a real Alertmanager → the operator's webhook receiver.

const TOKEN = 'am-webhook-token-0123456789';
// One alert per namespace; the rule keeps a job label and adds severity, like a typical rule would.
const RULES = errorRateRule({ alert: 'HighErrorRate', perSecondAbove: 1, labels: { severity: 'critical' } });

describe('Alertmanager → webhook receiver (in-process receiver, real Prometheus and Alertmanager)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nxt-am-receiver-'));
  const store = new AlertStore();
  const codes: number[] = [];
  let receiver: AlertReceiver;
  let stack: AlertingStack;
  let armedAt: Date;

  beforeAll(async () => {
    writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
    receiver = new AlertReceiver({
      address: '127.0.0.1:0',
      tokenFile: join(dir, 'token'),
      store,
      isLeader: () => true,
      log: winston.createLogger({ silent: true }),
      observe: (c) => codes.push(c),
    });
    await receiver.start();
    stack = await startAlertingStack({
      webhookUrl: `http://127.0.0.1:${receiver.port}/alertmanager`,
      token: TOKEN,
      rules: RULES,
      rates: { ok: 50, error: 0 },
      targetLabels: { namespace: 'shop' },
    });
    armedAt = new Date();
  });
  afterAll(async () => {
    await stack?.stop();
    receiver?.httpServer?.closeAllConnections();
    receiver?.httpServer?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a firing alert is stored with its labels and annotations and found by matchers; resolving removes it', async () => {
    expect(store.size, 'nothing fires while the error rate is 0').toBe(0);
    stack.app.setRates({ error: 20 });
    const alert = await eventually('the alert to reach the store', async () => store.list()[0], 30_000, 200);
    expect(alert.labels).toEqual({
      alertname: 'HighErrorRate',
      namespace: 'shop',
      job: 'app',
      severity: 'critical',
    });
    expect(alert.annotations).toEqual({ summary: '5xx rate above the limit in shop' });
    expect(alert.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(alert.startsAt.getTime()).toBeGreaterThanOrEqual(armedAt.getTime() - 1000);
    expect(codes).toContain(200);

    const matchers = [
      { name: 'alertname', value: 'HighErrorRate' },
      { name: 'namespace', op: '=~' as const, value: 'shop|cart' },
      { name: 'severity', op: '!=' as const, value: 'warning' },
    ];
    expect(store.firingMatching(matchers, armedAt)?.fingerprint).toBe(alert.fingerprint);
    expect(
      store.firingMatching([{ name: 'namespace', op: '=~', value: 'sho' }], armedAt),
      'anchored',
    ).toBeUndefined();
    expect(
      store.firingMatching([{ name: 'team', value: 'payments' }], armedAt),
      'missing label is ""',
    ).toBeUndefined();
    expect(
      store.firingMatching(matchers, new Date(alert.startsAt.getTime() + 1)),
      'an alert that started before the watch window does not count',
    ).toBeUndefined();

    stack.app.setRates({ error: 0 });
    await eventually(
      'the resolved notification to empty the store',
      async () => store.size === 0,
      30_000,
      200,
    );
    expect(store.firingMatching(matchers, armedAt)).toBeUndefined();
  });
});

describe('Alertmanager → the operator process (ALERT_RECEIVER_* settings, leadership)', () => {
  let ns = '';
  let receiver: Awaited<ReturnType<typeof alertReceiverSettings>>;
  let token = '';
  const ops: OperatorProcess[] = [];
  let app: TestExporter;
  let am: LocalAlertmanager;
  let wrongAm: LocalAlertmanager;
  let prom: LocalPrometheus;
  let leaderUrl = '';
  let standbyUrl = '';
  let leader: OperatorProcess;
  let standby: OperatorProcess;
  const id = 'nxt-am-receiver-test';

  async function start(name: string, env: Record<string, string>) {
    const op = await startOperator({
      name,
      env: {
        WATCH_NAMESPACES: ns,
        POD_NAME: name,
        LEADER_ELECT: 'true',
        LEADER_ELECTION_NAMESPACE: ns,
        LEADER_ELECTION_ID: id,
        ...env,
      },
    });
    ops.push(op);
    await op.waitReady(60_000);
    return op;
  }
  const firing = () => metricValue(leader.metricsUrl, 'nxt_alerts_firing');

  beforeAll(async () => {
    ns = await createTestNamespace('amrecv');
    receiver = await alertReceiverSettings();
    token = receiver.token;
    const standbyPort = await freePort();
    leaderUrl = receiver.url;
    standbyUrl = `http://127.0.0.1:${standbyPort}/alertmanager`;
    leader = await start('op-a', receiver.env);
    await eventually(
      'op-a to lead',
      async () => (await metricValue(leader.metricsUrl, 'leader_election_master_status', { name: id })) === 1,
      60_000,
      200,
    );
    standby = await start('op-b', { ...receiver.env, ALERT_RECEIVER_ADDR: `127.0.0.1:${standbyPort}` });
    app = await TestExporter.start({ ok: 50, error: 0 });
    am = await LocalAlertmanager.start({ webhookUrl: leaderUrl, token });
    wrongAm = await LocalAlertmanager.start({ webhookUrl: leaderUrl, token: 'not-the-token' });
    prom = await LocalPrometheus.start({
      scrapeTargets: [app.target],
      targetLabels: { namespace: 'shop' },
      rules: RULES,
      alertmanagerUrl: [am.url, wrongAm.url],
    });
    await prom.waitForTargetsUp();
  });
  afterAll(async () => {
    await prom?.stop();
    await Promise.all([am?.stop(), wrongAm?.stop(), app?.stop()]);
    for (const op of ops) await op.stop();
    await deleteTestNamespace(ns);
    receiver?.cleanup();
  });

  it('the leader stores a delivered alert (nxt_alerts_firing) and drops it when resolved; a wrong token gets 401', async () => {
    expect(await firing(), 'the gauge starts at 0').toBe(0);
    app.setRates({ error: 20 });
    await eventually('nxt_alerts_firing 1 on the leader', async () => (await firing()) === 1, 30_000, 250);
    // The Alertmanager with the wrong token delivered the same notification and was refused.
    await eventually(
      'a 401 for the Alertmanager with the wrong token',
      async () =>
        ((await metricValue(leader.metricsUrl, 'nxt_alert_receiver_requests_total', { code: '401' })) ?? 0) >=
        1,
      30_000,
      250,
    );
    expect(
      await metricValue(leader.metricsUrl, 'nxt_alert_receiver_requests_total', { code: '200' }),
    ).toBeGreaterThanOrEqual(1);
    expect(leader.logs(), 'the token is never logged').not.toContain(token);
    app.setRates({ error: 0 });
    await eventually('nxt_alerts_firing back to 0', async () => (await firing()) === 0, 30_000, 250);
  });

  it('refuses a missing or wrong token with 401 and stores nothing', async () => {
    const body = JSON.stringify({
      version: '4',
      status: 'firing',
      alerts: [
        {
          status: 'firing',
          labels: { alertname: 'Direct' },
          startsAt: new Date().toISOString(),
          fingerprint: 'f00d',
        },
      ],
    });
    const refused: Record<string, string>[] = [
      {},
      { authorization: 'Bearer nope' },
      { authorization: `Basic ${token}` },
    ];
    for (const headers of refused) {
      const r = await fetch(leaderUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
      });
      expect(r.status, JSON.stringify(headers)).toBe(401);
    }
    expect(await firing()).toBe(0);
    const ok = await fetch(leaderUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body,
    });
    expect(ok.status, 'the same payload with the token is accepted').toBe(200);
    expect(await firing()).toBe(1);
    const resolved = body.replaceAll('"firing"', '"resolved"');
    await fetch(leaderUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: resolved,
    });
    expect(await firing()).toBe(0);
  });

  it('a standby replica answers 503 so Alertmanager retries elsewhere', async () => {
    expect(await metricValue(standby.metricsUrl, 'leader_election_master_status', { name: id })).toBe(0);
    const r = await fetch(standbyUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ version: '4', alerts: [] }),
    });
    expect(r.status).toBe(503);
    expect(await metricValue(standby.metricsUrl, 'nxt_alert_receiver_requests_total', { code: '503' })).toBe(
      1,
    );
  });
});
