import { describe, expect, it } from 'vitest';
import type { TriggerCondition } from '../api/v1alpha1/rollbackplan.js';
import { evaluateConditions, type ConditionSources } from './evaluate.js';
import type { TriggerObservation } from './types.js';

const t0 = new Date('2026-11-29T10:00:00.000Z');
const at = (s: number) => new Date(t0.getTime() + s * 1000);
const dep = (replicas: number, available: number) => ({
  metadata: { name: 'web', namespace: 'n' },
  spec: { replicas },
  status: { availableReplicas: available },
});
const sources = (over: Partial<ConditionSources> = {}): ConditionSources => ({
  deployment: () => dep(2, 2),
  monitor: () => undefined,
  alert: () => undefined,
  ...over,
});
const down: TriggerCondition = { type: 'DeploymentUnavailable', deployment: 'web' };

describe('evaluateConditions', () => {
  it('DeploymentUnavailable: fewer than minAvailable (capped at spec.replicas) available holds', () => {
    const e = evaluateConditions([down], [], sources({ deployment: () => dep(2, 0) }), t0, at(0));
    expect(e.records[0]).toMatchObject({ name: 'deploymentunavailable-0', state: 'Pending' });
    expect(e.nextFireAt).toEqual(at(30));
    const ok = evaluateConditions([down], [], sources({ deployment: () => dep(2, 1) }), t0, at(0));
    expect(ok.records[0]!.state).toBe('Healthy');
    const min = evaluateConditions(
      [{ ...down, minAvailable: 5 }],
      [],
      sources({ deployment: () => dep(2, 2) }),
      t0,
      at(0),
    );
    expect(min.records[0]!.state, 'minAvailable is capped at spec.replicas').toBe('Healthy');
    const zero = evaluateConditions([down], [], sources({ deployment: () => dep(0, 0) }), t0, at(0));
    expect(zero.records[0]!.state, 'scaled to zero is not down').toBe('Healthy');
  });

  it('a missing Deployment cannot be evaluated (never fires), named for TriggerHealthy', () => {
    const e = evaluateConditions([down], [], sources({ deployment: () => undefined }), t0, at(0));
    expect(e.records[0]!.state).toBe('Unknown');
    expect(e.unevaluable).toEqual([
      { name: 'deploymentunavailable-0', reason: 'DeploymentNotFound', observed: expect.any(String) },
    ]);
  });

  it('fires the first condition (spec order) that held long enough, with when it began', () => {
    const prev = [
      {
        name: 'deploymentunavailable-0',
        type: 'DeploymentUnavailable' as const,
        state: 'Pending' as const,
        since: at(0).toISOString(),
      },
    ];
    const e = evaluateConditions([down], prev, sources({ deployment: () => dep(2, 0) }), t0, at(30));
    expect(e.fired).toMatchObject({
      name: 'deploymentunavailable-0',
      type: 'DeploymentUnavailable',
      heldSince: at(0),
    });
  });

  it('Alert: only an alert that started in the window fires, at once, held since its startsAt', () => {
    const seen: Date[] = [];
    const cond: TriggerCondition = {
      type: 'Alert',
      name: 'errors',
      matchers: [{ name: 'alertname', value: 'HighErrorRate' }],
    };
    const e = evaluateConditions(
      [cond],
      [],
      sources({
        alert: (_m, notBefore) => {
          seen.push(notBefore);
          return {
            fingerprint: 'f',
            labels: { alertname: 'HighErrorRate' },
            annotations: {},
            startsAt: at(3),
            receivedAt: at(4),
          };
        },
      }),
      t0,
      at(5),
    );
    expect(seen).toEqual([t0]);
    expect(e.fired).toMatchObject({
      name: 'errors',
      type: 'Alert',
      heldSince: at(3),
      observed: 'alert HighErrorRate firing',
    });
  });

  it('Alert with a matcher RE2 rejects: never fires, unevaluable as InvalidMatcher (not a silent no-match)', () => {
    const cond: TriggerCondition = {
      type: 'Alert',
      name: 'look',
      matchers: [
        { name: 'alertname', value: 'HighErrorRate' },
        { name: 'namespace', op: '=~', value: '(?<=x)shop' },
      ],
    };
    const firing = {
      fingerprint: 'f',
      labels: { alertname: 'HighErrorRate', namespace: 'shop' },
      annotations: {},
      startsAt: at(1),
      receivedAt: at(1),
    };
    const e = evaluateConditions([cond], [], sources({ alert: () => firing }), t0, at(5));
    expect(e.fired).toBeUndefined();
    expect(e.records[0]).toMatchObject({ name: 'look', state: 'Unknown' });
    expect(e.unevaluable).toEqual([
      {
        name: 'look',
        reason: 'InvalidMatcher',
        observed: expect.stringMatching(/^matcher namespace=~"\(\?<=x\)shop": not a valid RE2 pattern/),
      },
    ]);
  });

  it('probing conditions read their monitor; an error is reported with its reason and leaves a hold', () => {
    const prom: TriggerCondition = {
      type: 'PrometheusQuery',
      address: 'http://p',
      query: 'x',
      above: 1,
      for: '1m',
    };
    const err: TriggerObservation = {
      kind: 'error',
      at: at(70),
      reason: 'PrometheusUnreachable',
      observed: 'connection refused',
    };
    const prev = [
      {
        name: 'prometheusquery-0',
        type: 'PrometheusQuery' as const,
        state: 'Pending' as const,
        since: at(0).toISOString(),
      },
    ];
    const e = evaluateConditions([prom], prev, sources({ monitor: () => err }), t0, at(70));
    expect(e.fired).toBeUndefined();
    expect(e.records[0]).toBe(prev[0]);
    expect(e.unevaluable).toEqual([
      { name: 'prometheusquery-0', reason: 'PrometheusUnreachable', observed: 'connection refused' },
    ]);
  });

  // Regression (review): DeploymentUnavailable fired on a status lagging its spec and on a paused Deployment.
  it('DeploymentUnavailable: a status lagging its spec changes nothing; a paused Deployment is not evaluable', () => {
    const lagging = {
      metadata: { name: 'web', namespace: 'n', generation: 3 },
      spec: { replicas: 2 },
      status: { observedGeneration: 2, availableReplicas: 0 },
    };
    const healthy = evaluateConditions([down], [], sources(), t0, at(0)).records;
    const e = evaluateConditions([down], healthy, sources({ deployment: () => lagging }), t0, at(1));
    expect(e.records[0]).toBe(healthy[0]);
    expect(e.unevaluable).toEqual([]);
    const paused = { ...dep(2, 0), spec: { replicas: 2, paused: true } };
    const p = evaluateConditions([down], [], sources({ deployment: () => paused }), t0, at(0));
    expect(p.records[0]!.state).toBe('Unknown');
    expect(p.unevaluable).toMatchObject([{ name: 'deploymentunavailable-0', reason: 'DeploymentPaused' }]);
    expect(p.fired).toBeUndefined();
  });
});
