/**
 * One-call monitoring for trigger tests: an exporter, a real Prometheus scraping it with an alerting rule,
 * and a real Alertmanager delivering to the operator's receiver.
 *
 *   const receiver = await alertReceiverSettings();          // free port, token file
 *   const op = await startOperator({ env: { ...receiver.env, WATCH_NAMESPACES: ns } });
 *   const stack = await startAlertingStack({
 *     webhookUrl: receiver.url,
 *     token: receiver.token,
 *     rules: errorRateRule({ alert: 'CheckoutHighErrorRate', perSecondAbove: 1, labels: { severity: 'critical' } }),
 *     targetLabels: { namespace: ns },                         // every scraped series (and so the alert) has it
 *   });
 *   stack.app.setRates({ error: 20 });                       // the alert fires within ~3 s
 *   ...
 *   await stack.stop(); await op.stop(); receiver.cleanup();
 *
 * stack.prometheus.url also serves PrometheusQuery conditions (start the operator with
 * HTTP_CHECK_DENY_LOOPBACK=false, which test/env/operator-process.ts already sets).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalAlertmanager, LocalPrometheus, type AlertmanagerOptions } from '../env/monitoring.js';
import { freePort } from '../env/processes.js';
import { TestExporter, type ExporterRates } from './exporter.js';

export interface AlertingStack {
  app: TestExporter;
  prometheus: LocalPrometheus;
  alertmanager: LocalAlertmanager;
  stop(): Promise<void>;
}

/**
 * A rule file with one alert on the exporter's 5xx rate: fires (no `for`) while
 * sum by (namespace, job) (rate(http_requests_total{code="500"}[5s])) > perSecondAbove.
 */
export function errorRateRule(opts: {
  alert: string;
  perSecondAbove: number;
  labels?: Record<string, string>;
  for?: string;
}): string {
  return [
    'groups:',
    '  - name: test',
    '    rules:',
    `      - alert: ${JSON.stringify(opts.alert)}`,
    `        expr: sum by (namespace, job) (rate(http_requests_total{code="500"}[5s])) > ${opts.perSecondAbove}`,
    ...(opts.for ? [`        for: ${opts.for}`] : []),
    `        labels: ${JSON.stringify(opts.labels ?? {})}`,
    '        annotations:',
    '          summary: 5xx rate above the limit in {{ $labels.namespace }}',
    '',
  ].join('\n');
}

/** Starts exporter, Alertmanager and Prometheus (targets up before it returns); stop() ends them all. */
export async function startAlertingStack(opts: {
  webhookUrl: string;
  token: string;
  rules: string;
  rates?: Partial<ExporterRates>;
  targetLabels?: Record<string, string>;
  route?: AlertmanagerOptions['route'];
}): Promise<AlertingStack> {
  const started: { stop(): Promise<void> }[] = [];
  try {
    const app = await TestExporter.start(opts.rates ?? { ok: 50 });
    started.push(app);
    const alertmanager = await LocalAlertmanager.start({
      webhookUrl: opts.webhookUrl,
      token: opts.token,
      route: opts.route,
    });
    started.push(alertmanager);
    const prometheus = await LocalPrometheus.start({
      scrapeTargets: [app.target],
      targetLabels: opts.targetLabels,
      rules: opts.rules,
      alertmanagerUrl: alertmanager.url,
    });
    started.push(prometheus);
    await prometheus.waitForTargetsUp();
    return {
      app,
      prometheus,
      alertmanager,
      stop: async () => {
        for (const s of started.reverse()) await s.stop();
      },
    };
  } catch (e) {
    for (const s of started.reverse()) await s.stop().catch(() => {});
    throw e;
  }
}

/** ALERT_RECEIVER_* settings for an operator process: a free 127.0.0.1 port and a token file. */
export async function alertReceiverSettings(): Promise<{
  env: Record<string, string>;
  url: string;
  token: string;
  cleanup(): void;
}> {
  const dir = mkdtempSync(join(tmpdir(), 'nxt-alert-receiver-'));
  const token = `test-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
  writeFileSync(join(dir, 'token'), `${token}\n`, { mode: 0o600 });
  const port = await freePort();
  return {
    env: { ALERT_RECEIVER_ADDR: `127.0.0.1:${port}`, ALERT_RECEIVER_TOKEN_FILE: join(dir, 'token') },
    url: `http://127.0.0.1:${port}/alertmanager`,
    token,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
