import { describe, expect, it } from 'vitest';
import {
  DRILL_LABEL,
  appFigures,
  drillDeployment,
  drillNamespace,
  drillPlan,
  drillVerdict,
  serviceAccountsOf,
} from './drill-objects.js';

describe('drill objects', () => {
  it('makes a restricted scratch namespace named nxt-drill-<id>', () => {
    const ns = drillNamespace('0a1b2c3d', { namespace: 'shop', deployment: 'checkout' });
    expect(ns.metadata.name).toBe('nxt-drill-0a1b2c3d');
    expect(ns.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
    expect(ns.metadata.annotations['rollback.nxtnewday.io/drill-of']).toBe('shop/checkout');
  });
  it('copies the Deployment with one replica, the selector labels and a drill label, no token, no hash label', () => {
    const source = {
      metadata: {
        name: 'web',
        namespace: 'shop',
        uid: 'u',
        labels: { app: 'web', 'app.kubernetes.io/instance': 'shop-web', 'argocd.argoproj.io/instance': 'x' },
        annotations: { 'deployment.kubernetes.io/revision': '3' },
      },
      spec: {
        replicas: 12,
        selector: { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'Exists' }] },
        paused: true,
        strategy: { type: 'Recreate' },
        template: {},
      },
      status: { replicas: 12 },
    };
    const template = {
      metadata: {
        labels: {
          app: 'web',
          tier: 'front',
          'app.kubernetes.io/instance': 'shop-web',
          'pod-template-hash': 'abc',
        },
      },
      spec: { containers: [{ name: 'app', image: 'web:1' }] },
    };
    const d = drillDeployment(source, template, 'nxt-drill-x');
    expect(d).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: {
        name: 'web',
        namespace: 'nxt-drill-x',
        labels: { app: 'web', [DRILL_LABEL]: 'nxt-drill-x' },
      },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'Exists' }] },
        strategy: { type: 'Recreate' },
        revisionHistoryLimit: 10,
        paused: false,
        template: {
          metadata: { labels: { app: 'web', tier: 'front', [DRILL_LABEL]: 'nxt-drill-x' } },
          spec: { containers: [{ name: 'app', image: 'web:1' }], automountServiceAccountToken: false },
        },
      },
    });
    expect(template.metadata.labels['pod-template-hash']).toBe('abc');
  });
  it('lists the ServiceAccounts the templates need', () => {
    expect(
      serviceAccountsOf(
        { spec: { serviceAccountName: 'web' } },
        { spec: { serviceAccountName: 'default' } },
        { spec: {} },
      ),
    ).toEqual(['web']);
  });
  it('builds a manual app-scope plan with the RTO objective', () => {
    expect(drillPlan('drill', 'nxt-drill-x', 'web', '2m', 'shop/web').spec).toEqual({
      scope: 'app',
      reason: 'nxt-rollback drill of shop/web',
      targets: { deployments: [{ name: 'web' }] },
      objectives: { rto: '2m' },
    });
  });
});

describe('drill verdict', () => {
  const app = (phase: string, durationSeconds?: number) =>
    appFigures(
      {
        metadata: { name: 'drill' },
        status: { phase, durationSeconds, deployments: [{ name: 'web', fromRevision: 2, toRevision: 1 }] },
      },
      '2m',
    );
  const db = (over: Record<string, unknown> = {}) => ({
    schedule: 'db',
    request: 'latest@drill-x',
    backupId: 'b1',
    result: 'Succeeded' as const,
    durationSeconds: 5,
    backupAgeSeconds: 60,
    rpo: '1h',
    rpoSeconds: 3600,
    rpoMet: true,
    restoreWithinRto: true,
    ...over,
  });
  it('meets its objectives when the plan succeeded within the RTO and the restore and RPO passed', () => {
    expect(app('Succeeded', 4.2)).toMatchObject({
      rtoSeconds: 120,
      rtoMet: true,
      fromRevision: 2,
      toRevision: 1,
    });
    expect(drillVerdict(app('Succeeded', 4.2), db())).toEqual({ met: true, problems: [] });
    expect(drillVerdict(app('Succeeded', 4.2), { skipped: '--no-database' }).met).toBe(true);
  });
  it('names each missed objective', () => {
    expect(drillVerdict(app('Succeeded', 130), db()).problems).toEqual([
      'the rollback took 2m10s, over the RTO 2m',
    ]);
    expect(drillVerdict(app('Failed'), db()).problems).toEqual(['the rollback plan ended Failed']);
    expect(
      drillVerdict(
        app('Succeeded', 1),
        db({ result: 'Failed', message: 'row counts differ', rpoMet: false, backupAgeSeconds: 7200 }),
      ).problems,
    ).toEqual([
      'the test restore failed: row counts differ',
      'the newest backup of db is 2h old, over the RPO 1h',
    ]);
    expect(
      drillVerdict(app('Succeeded', 1), db({ result: 'NotStarted', message: 'no verified backup' }))
        .problems[0],
    ).toBe('the test restore did not start: no verified backup');
  });
});
