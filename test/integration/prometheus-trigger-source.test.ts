import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addressPolicy } from '../../operator/rollback/address-policy.js';
import { prometheusProbe, type PrometheusCondition } from '../../operator/triggers/prometheus.js';
import type { TriggerObservation } from '../../operator/triggers/types.js';
import { LocalPrometheus } from '../env/monitoring.js';
import { TestExporter } from '../support/exporter.js';

// The PrometheusQuery trigger's probe against a real Prometheus scraping a real exporter: every outcome the
// plan controller acts on comes from Prometheus itself, not from a stub.
describe('PrometheusQuery probe against a real Prometheus', () => {
  let app: TestExporter;
  let prom: LocalPrometheus;
  // The harness listens on loopback, which the operator denies by default (HTTP_CHECK_DENY_LOOPBACK).
  const policy = addressPolicy({ denyLinkLocal: true, denyLoopback: false, deniedCidrs: [] });
  const ERROR_RATIO = 'sum(rate(http_requests_total{code="500"}[5s])) / sum(rate(http_requests_total[5s]))';
  const probe = (cond: Partial<PrometheusCondition>) =>
    prometheusProbe(
      { address: prom.url, query: ERROR_RATIO, above: 0.05, ...cond },
      { timeoutMs: 3000, policy },
    )(AbortSignal.timeout(5000));

  /** Probes once a second until `want` holds; returns the last observation (the assertion reports it). */
  async function eventually(
    cond: Partial<PrometheusCondition>,
    want: (o: TriggerObservation) => boolean,
    timeoutMs = 20_000,
  ): Promise<TriggerObservation> {
    const deadline = Date.now() + timeoutMs;
    let o = await probe(cond);
    while (!want(o) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1000));
      o = await probe(cond);
    }
    return o;
  }

  beforeAll(async () => {
    app = await TestExporter.start({ ok: 50, error: 0 });
    prom = await LocalPrometheus.start({ scrapeTargets: [app.target] });
    await prom.waitForTargetsUp();
  });
  afterAll(async () => {
    await prom?.stop();
    await app?.stop();
  });

  it('a rising error ratio turns from good to bad', async () => {
    const healthy = await eventually({}, (o) => o.kind === 'good');
    expect(healthy, 'with 50 ok/s and no errors the ratio is 0').toMatchObject({
      kind: 'good',
      observed: expect.stringMatching(/^0 <= 0\.05 \(query sum\(rate/),
    });
    app.setRates({ error: 20 });
    const bad = await eventually({}, (o) => o.kind === 'bad');
    expect(bad, 'with 20 errors/s of 70 the ratio is about 0.29').toMatchObject({
      kind: 'bad',
      observed: expect.stringMatching(/^0\.\d+ > 0\.05 \(query /),
    });
    const ratio = Number(bad.observed.split(' ')[0]);
    expect(ratio).toBeGreaterThan(0.05);
    expect(ratio).toBeLessThan(0.5);
    // The same ratio as a scalar, and a `below` threshold on the success ratio.
    expect(await probe({ query: `scalar(${ERROR_RATIO})` })).toMatchObject({ kind: 'bad' });
    expect(
      await probe({
        query: 'sum(rate(http_requests_total{code="200"}[5s])) / sum(rate(http_requests_total[5s]))',
        above: undefined,
        below: 0.95,
      }),
    ).toMatchObject({ kind: 'bad', observed: expect.stringMatching(/^0\.\d+ < 0\.95/) });
  });

  it('no traffic makes the ratio NaN: noData', async () => {
    app.setRates({ ok: 0, error: 0 });
    const o = await eventually({}, (x) => x.kind === 'noData');
    expect(o).toMatchObject({ kind: 'noData', observed: expect.stringContaining('no data (NaN)') });
    app.setRates({ ok: 50 });
  });

  it('a series that does not exist gives an empty vector: noData', async () => {
    expect(await probe({ query: 'sum(rate(no_such_metric_total[5s]))' })).toMatchObject({
      kind: 'noData',
      observed: expect.stringContaining('empty vector'),
    });
  });

  it('one series per code is not one value: PrometheusResultInvalid', async () => {
    expect(await probe({ query: 'rate(http_requests_total[5s])' })).toMatchObject({
      kind: 'error',
      reason: 'PrometheusResultInvalid',
      observed: expect.stringMatching(/^3 series, expected one: aggregate it to one series, e\.g\. sum/),
    });
    expect(await probe({ query: 'http_requests_total[5s]' })).toMatchObject({
      kind: 'error',
      reason: 'PrometheusResultInvalid',
    });
  });

  it('a query Prometheus cannot parse: PrometheusQueryFailed with its errorType and error', async () => {
    expect(await probe({ query: 'sum(rate(http_requests_total[5s])' })).toMatchObject({
      kind: 'error',
      reason: 'PrometheusQueryFailed',
      observed: expect.stringMatching(/^HTTP 400 from http:\/\/127\.0\.0\.1:\d+: bad_data: .*parse error/),
    });
  });

  it('a stopped Prometheus is PrometheusUnreachable, and a restarted one answers again', async () => {
    await prom.stopProcess();
    try {
      expect(await probe({})).toMatchObject({
        kind: 'error',
        reason: 'PrometheusUnreachable',
        observed: expect.stringContaining('ECONNREFUSED'),
      });
    } finally {
      await prom.start();
    }
    expect((await eventually({}, (o) => o.kind !== 'error')).kind).not.toBe('error');
  });
});
