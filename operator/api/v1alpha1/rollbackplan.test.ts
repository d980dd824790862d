import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseRollbackPlan, withRollbackPlanDefaults, type RollbackPlanSpec } from './rollbackplan.js';

// The RollbackPlan sample from API-SKETCH.md (spec only: its status has "..." placeholders), with the
// notification event list named `events` (see notifyTargets).
const SKETCH = parseYaml(`
apiVersion: rollback.nxtnewday.io/v1alpha1
kind: RollbackPlan
metadata: {name: checkout-emergency, namespace: shop}
spec:
  scope: full
  dryRun: false
  reason: "5xx after the 14:00 release"
  targets:
    deployments:
      - name: checkout
        toRevision: 0
      - name: checkout-worker
    database:
      backupScheduleRef: {name: shop-db}
      backup: {latestVerified: true}
      mode: inPlace
      safetyBackup: true
    featureFlags:
      configMapRef: {name: shop-flags}
      disable: [new-checkout-flow]
  validation:
    timeout: 5m
    http:
      - {url: "http://checkout.shop.svc/healthz", expectStatus: 200}
    sql:
      - {name: orders-present, query: "select count(*) > 0 from orders", expect: "t"}
  objectives: {rto: 10m}
  severity: high
  trigger:
    mode: auto
    conditions:
      - {type: DeploymentUnavailable, deployment: checkout, for: 30s}
      - {type: HTTPCheck, url: "http://checkout.shop.svc/healthz", failureThreshold: 3, period: 10s}
      - type: PrometheusQuery
        address: "http://prometheus.monitoring.svc:9090"
        query: 'sum(rate(http_requests_total{app="checkout",code=~"5.."}[1m])) / sum(rate(http_requests_total{app="checkout"}[1m]))'
        above: 0.05
        for: 1m
    confirmFor: 2m
    watchWindow: 30m
  gitops: {policy: suspend, resume: onNewRevision}
  notify:
    - {name: oncall, type: slack, urlSecretRef: {name: slack-webhook, key: url},
       events: [Started, Succeeded, Failed, AwaitingApproval]}
`);

const plan = (spec: Record<string, unknown>) => ({ ...SKETCH, spec });
const now = '2026-11-28T10:00:00Z';

describe('parseRollbackPlan', () => {
  it('accepts the API-SKETCH.md sample and keeps every field', () => {
    const r = parseRollbackPlan(SKETCH);
    expect(r.ok ? r.value.spec : r.problems).toEqual(SKETCH.spec);
  });

  it('accepts a typed status', () => {
    const status = {
      phase: 'Succeeded',
      observedGeneration: 1,
      conditions: [
        { type: 'Ready', status: 'True', reason: 'Succeeded', message: '', lastTransitionTime: now },
      ],
      steps: [{ name: 'PreValidation', startedAt: now, finishedAt: now, result: 'Succeeded', message: 'ok' }],
      deployments: [{ name: 'checkout', fromRevision: 7, toRevision: 6, result: 'RolledBack' }],
      database: { backupId: 'shop-db-20261128t100000z', verifiedTables: 12 },
      featureFlags: [{ key: 'new-checkout-flow', previous: 'true', now: 'false' }],
      dryRunReport: { anything: { goes: [1, 2] } },
      trigger: { firedAt: now, condition: 'DeploymentUnavailable', observed: '0/3 ready for 31s' },
      approval: { approvedBy: 'alice', approvedAt: now },
      startedAt: now,
      completedAt: now,
      durationSeconds: 42,
    };
    const r = parseRollbackPlan({ ...SKETCH, status });
    expect(r.ok ? r.value.status : r.problems).toEqual(status);
  });

  it.each([
    ['not an object', 'nope', '(root)', 'expected object'],
    ['another kind', { ...SKETCH, kind: 'BackupSchedule' }, 'kind', 'RollbackPlan'],
    ['no spec', { ...SKETCH, spec: undefined }, 'spec', 'expected object'],
    ['an unknown scope', plan({ scope: 'all', targets: {} }), 'spec.scope', 'app'],
    [
      'scope app without deployments',
      plan({ scope: 'app', targets: { deployments: [] } }),
      'spec.targets.deployments',
      'spec.targets.deployments must list at least one Deployment when spec.scope is app',
    ],
    [
      'scope database without database',
      plan({ scope: 'database', targets: {} }),
      'spec.targets.database',
      'required when spec.scope is database',
    ],
    [
      'scope full with flags only',
      plan({ scope: 'full', targets: { featureFlags: { configMapRef: { name: 'f' }, disable: ['x'] } } }),
      'spec.targets',
      'needs deployments or database',
    ],
    [
      'SQL assertions in app scope (they run only in a restore)',
      plan({
        scope: 'app',
        targets: { deployments: [{ name: 'a' }] },
        validation: { sql: [{ name: 'n', query: 'select 1', expect: '1' }] },
      }),
      'spec.validation.sql',
      'needs scope database, or full with spec.targets.database',
    ],
    [
      'a duplicate Deployment',
      plan({ scope: 'app', targets: { deployments: [{ name: 'a' }, { name: 'a' }] } }),
      'spec.targets.deployments[1].name',
      'duplicate name "a"',
    ],
    [
      'no backup choice',
      plan({ scope: 'database', targets: { database: { backupScheduleRef: { name: 'db' }, backup: {} } } }),
      'spec.targets.database.backup',
      'exactly one of latestVerified, id or before',
    ],
    [
      'an HTTP condition without url',
      plan({ ...SKETCH.spec, trigger: { mode: 'auto', conditions: [{ type: 'HTTPCheck' }] } }),
      'spec.trigger.conditions[0].url',
      'required when type is HTTPCheck',
    ],
    [
      'auto without conditions',
      plan({ ...SKETCH.spec, trigger: { mode: 'auto', conditions: [] } }),
      'spec.trigger.conditions',
      'at least one condition',
    ],
    [
      'a condition named like a default name',
      plan({
        ...SKETCH.spec,
        trigger: {
          mode: 'auto',
          conditions: [
            { type: 'HTTPCheck', url: 'http://a/' },
            { type: 'HTTPCheck', name: 'httpcheck-0', url: 'http://b/' },
          ],
        },
      }),
      'spec.trigger.conditions[1].name',
      'must not look like a default name',
    ],
    [
      'a trigger probe period under 1s',
      plan({
        ...SKETCH.spec,
        trigger: {
          mode: 'auto',
          conditions: [
            { type: 'PrometheusQuery', address: 'http://p/', query: 'up', below: 1, period: '999ms' },
          ],
        },
      }),
      'spec.trigger.conditions[0].period',
      'at least 1s',
    ],
    [
      'a bad duration',
      plan({ ...SKETCH.spec, objectives: { rto: 'ten minutes' } }),
      'spec.objectives.rto',
      'duration',
    ],
    [
      'a bad timestamp',
      plan({
        scope: 'database',
        targets: { database: { backupScheduleRef: { name: 'db' }, backup: { before: 'yesterday' } } },
      }),
      'spec.targets.database.backup.before',
      'datetime',
    ],
    [
      'validateOnly on an automatic plan',
      plan({
        scope: 'app',
        severity: 'high',
        validateOnly: 'post',
        targets: { deployments: [{ name: 'web' }] },
        trigger: { mode: 'auto', conditions: [{ type: 'DeploymentUnavailable', deployment: 'web' }] },
      }),
      'spec.validateOnly',
      'trigger.mode manual',
    ],
    [
      'onRevert with database steps and no severity',
      plan({
        scope: 'full',
        targets: { deployments: [{ name: 'web' }], database: { backupScheduleRef: { name: 'db' } } },
        trigger: { mode: 'onRevert' },
      }),
      'spec.severity',
      'onRevert and the scope is not app',
    ],
    [
      'validateOnly with dryRun',
      plan({ scope: 'app', validateOnly: 'pre', dryRun: true, targets: { deployments: [{ name: 'web' }] } }),
      'spec.validateOnly',
      'exclude each other',
    ],
  ])('reports %s at its path', (_what, obj, path, message) => {
    const r = parseRollbackPlan(obj);
    expect(r.ok, 'parse should fail').toBe(false);
    const problems = r.ok ? [] : r.problems;
    expect(problems, JSON.stringify(problems)).toContainEqual({
      path,
      message: expect.stringContaining(message),
    });
  });
});

describe('withRollbackPlanDefaults', () => {
  it('fills in every runtime default', () => {
    const spec: RollbackPlanSpec = {
      scope: 'database',
      targets: { database: { backupScheduleRef: { name: 'db' } } },
    };
    expect(withRollbackPlanDefaults(spec)).toEqual({
      scope: 'database',
      dryRun: false,
      targets: {
        database: {
          backupScheduleRef: { name: 'db' },
          backup: { latestVerified: true },
          mode: 'inPlace',
          safetyBackup: true,
          keepPreviousDatabases: 1,
        },
      },
      validation: { timeout: '5m' },
      objectives: { rto: '10m' },
      trigger: { mode: 'manual' },
      gitops: { policy: 'suspend', resume: 'onNewRevision' },
    });
  });

  it('keeps what the user set and does not modify its input', () => {
    const spec: RollbackPlanSpec = {
      scope: 'full',
      dryRun: true,
      targets: {
        deployments: [{ name: 'a' }],
        database: {
          backupScheduleRef: { name: 'db' },
          backup: { id: 'b-1' },
          mode: 'newDatabaseSwap',
          safetyBackup: false,
          keepPreviousDatabases: 0,
        },
      },
      validation: { timeout: '1m', http: [{ url: 'http://a/', expectStatus: 204 }] },
      objectives: { rto: '2m' },
      trigger: { mode: 'auto', conditions: [{ type: 'DeploymentUnavailable', deployment: 'a' }] },
      gitops: { policy: 'refuse', resume: 'manual', resumeAfter: '1h' },
    };
    const before = structuredClone(spec);
    expect(withRollbackPlanDefaults(spec)).toEqual(spec);
    expect(spec).toEqual(before);
  });

  it('adds no database target to a plan without one', () => {
    const effective = withRollbackPlanDefaults({ scope: 'app', targets: { deployments: [{ name: 'a' }] } });
    expect(effective.targets).toEqual({ deployments: [{ name: 'a' }] });
  });
});
