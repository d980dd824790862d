import { describe, expect, it } from 'vitest';
import type { RollbackPlanStatus, TriggerCondition } from '../api/v1alpha1/rollbackplan.js';
import type { TriggerObservation } from '../triggers/types.js';
import { MIN_ARMED_REQUEUE_MS, reconcileArmed, requeueDelay, type TriggerContext } from './auto-trigger.js';

// reconcileArmed with its sources injected: the Deployment cache, the monitors, the alert store and the
// status write are the plain objects below (the controller around it is exercised by the integration tests).
const NOW = Date.now();
const iso = (s: number) => new Date(NOW + s * 1000).toISOString();

interface Fake {
  ctx: TriggerContext;
  log: string[];
  events: string[];
}

function fake(opts: {
  status: RollbackPlanStatus;
  conditions: TriggerCondition[];
  targets?: string[];
  deployments?: Record<string, object>;
  observe?: () => TriggerObservation | undefined;
  write?: () => Promise<void>;
  now?: number;
  watchWindow?: string;
}): Fake {
  const log: string[] = [];
  const events: string[] = [];
  const ctx = {
    plan: { metadata: { uid: 'u', name: 'p', namespace: 'ns', creationTimestamp: iso(-3600) } },
    namespace: 'ns',
    spec: {
      severity: 'critical',
      targets: { deployments: (opts.targets ?? []).map((name) => ({ name })) },
      trigger: { mode: 'auto', watchWindow: opts.watchWindow ?? '2h', conditions: opts.conditions },
    },
    status: opts.status,
    now: () => new Date(NOW + (opts.now ?? 0) * 1000),
    cond: () => {},
    event: (_t: string, reason: string) => void events.push(reason),
    write: async () => {
      log.push('write');
      await opts.write?.();
    },
    deployment: (name: string) => opts.deployments?.[name],
    client: {
      list: async () => ({ items: [] }),
    },
    monitors: {
      observe: () => opts.observe?.(),
      forget: () => void log.push('forget'),
    },
    alerts: { firingMatching: () => undefined, onChange: () => () => {} },
    metrics: { rollbackDetection: { observe: () => {} } },
    wake: () => {},
  } as unknown as TriggerContext;
  return { ctx, log, events };
}

const dep = (revision: number, available: number) => ({
  metadata: {
    uid: 'd',
    generation: 2,
    annotations: { 'deployment.kubernetes.io/revision': String(revision) },
  },
  spec: { replicas: 2, selector: { matchLabels: { app: 'web' } } },
  status: { observedGeneration: 2, availableReplicas: available },
});

describe('reconcileArmed', () => {
  // Regression (review, 1 ms hot loop): a Pending hold whose condition then errs (Prometheus down) or is not
  // observed (a restart, the Deployment deleted) returned its past fire time: requeueAfterMs 1.
  it.each([
    [
      'an error',
      (): TriggerObservation | undefined => ({
        kind: 'error',
        at: new Date(),
        reason: 'PrometheusUnreachable',
        observed: 'down',
      }),
    ],
    ['no observation', (): TriggerObservation | undefined => undefined],
  ])('a hold past its fire time that sees %s does not requeue in a hot loop', async (_n, observe) => {
    const status: RollbackPlanStatus = {
      phase: 'Armed',
      armed: { since: iso(-1200), until: iso(3600) },
      triggerConditions: [
        { name: 'promql', type: 'PrometheusQuery', state: 'Pending', since: iso(-600), observed: 'x' },
      ],
    };
    const f = fake({
      status,
      conditions: [
        { type: 'PrometheusQuery', name: 'promql', address: 'http://x', query: 'up', above: 1, for: '5m' },
      ],
      observe,
    });
    const r = await reconcileArmed(f.ctx);
    expect(r.kind).toBe('stop');
    const after = r.kind === 'stop' ? r.result?.requeueAfterMs : 0;
    expect(after === undefined || after > 60_000, `requeueAfterMs ${after}`).toBe(true);
    expect(status.triggerConditions![0]!.state).toBe('Pending');
  });

  it('a requeue is never shorter than the floor', () => {
    expect(requeueDelay(NOW - 5000, NOW)).toBe(MIN_ARMED_REQUEUE_MS);
    expect(requeueDelay(NOW + 10_000, NOW)).toBe(10_000);
  });

  // Regression (review): a hold from revision N survived the window moving to the fix-forward N+1 and fired
  // on it, undoing the fix.
  it('a window move resets the holds of the old revision and restarts the probes', async () => {
    const status: RollbackPlanStatus = {
      phase: 'Armed',
      armed: { since: iso(-60), until: iso(3600), revisions: [{ deployment: 'web', revision: 5 }] },
      triggerConditions: [
        { name: 'down', type: 'DeploymentUnavailable', state: 'Pending', since: iso(-29), observed: 'x' },
      ],
    };
    const f = fake({
      status,
      targets: ['web'],
      deployments: { web: dep(6, 0) },
      conditions: [{ type: 'DeploymentUnavailable', name: 'down', deployment: 'web' }],
      now: 1.5,
    });
    const r = await reconcileArmed(f.ctx);
    expect(r.kind).toBe('stop');
    expect(status.trigger).toBeUndefined();
    expect(status.triggerConditions![0]).toMatchObject({ state: 'Pending', since: iso(1.5) });
    expect(f.events).toContain('WatchWindowMoved');
    expect(f.log[0]).toBe('forget');
  });

  // Regression (review): a deleted target dropped out of the revisions and moved the window to now.
  it('a deleted target does not move the window', async () => {
    const armed = { since: iso(-60), until: iso(3600), revisions: [{ deployment: 'web', revision: 5 }] };
    const status: RollbackPlanStatus = { phase: 'Armed', armed };
    const f = fake({
      status,
      targets: ['web'],
      deployments: {},
      conditions: [{ type: 'DeploymentUnavailable', name: 'down', deployment: 'web' }],
    });
    await reconcileArmed(f.ctx);
    expect(status.armed).toBe(armed);
    expect(f.events).not.toContain('WatchWindowMoved');
  });

  // Regression (review): monitors were stopped before the firing write; a 409 retried with fresh monitors.
  it('stops the monitors only after the firing write succeeded', async () => {
    const status: RollbackPlanStatus = { phase: 'Armed', armed: { since: iso(-60), until: iso(3600) } };
    const bad = {
      kind: 'bad',
      at: new Date(NOW - 1000),
      since: new Date(NOW - 1000),
      observed: 'failing',
    } as const;
    const failing = fake({
      status,
      conditions: [{ type: 'HTTPCheck', name: 'h', url: 'http://x' }],
      observe: () => bad,
      write: () => Promise.reject(new Error('409 Conflict')),
    });
    await expect(reconcileArmed(failing.ctx)).rejects.toThrow('409');
    expect(failing.log).toEqual(['write']);
    const ok = fake({
      status: { phase: 'Armed', armed: { since: iso(-60), until: iso(3600) } },
      conditions: [{ type: 'HTTPCheck', name: 'h', url: 'http://x' }],
      observe: () => bad,
    });
    expect((await reconcileArmed(ok.ctx)).kind).toBe('fired');
    expect(ok.log).toEqual(['write', 'forget']);
  });

  // Regression (review): expiry was checked before the conditions.
  it('a condition that began to hold inside the window fires when evaluated just after it', async () => {
    const status: RollbackPlanStatus = {
      phase: 'Armed',
      armed: { since: iso(-60), until: iso(-0.2) },
      triggerConditions: [
        { name: 'down', type: 'DeploymentUnavailable', state: 'Pending', since: iso(-31), observed: 'x' },
      ],
    };
    const f = fake({
      status,
      deployments: { web: dep(5, 0) },
      conditions: [{ type: 'DeploymentUnavailable', name: 'down', deployment: 'web' }],
    });
    expect((await reconcileArmed(f.ctx)).kind).toBe('fired');
    expect(status.phase).toBe('Armed');
    expect(status.trigger?.condition).toBe('down');
  });

  it('one that began to hold after the window ended does not: the plan expires', async () => {
    const status: RollbackPlanStatus = {
      phase: 'Armed',
      armed: { since: iso(-60), until: iso(-40) },
      triggerConditions: [
        { name: 'down', type: 'DeploymentUnavailable', state: 'Pending', since: iso(-35), observed: 'x' },
      ],
    };
    const f = fake({
      status,
      deployments: { web: dep(5, 0) },
      conditions: [{ type: 'DeploymentUnavailable', name: 'down', deployment: 'web' }],
    });
    expect((await reconcileArmed(f.ctx)).kind).toBe('stop');
    expect(status.phase).toBe('Expired');
    expect(status.trigger).toBeUndefined();
  });
});
