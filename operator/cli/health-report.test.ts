import { describe, expect, it } from 'vitest';
import {
  actingTargets,
  deploymentHealth,
  healthVerdict,
  leaseHealth,
  newestGoodBackup,
  plansHealth,
  scheduleHealth,
} from './health-report.js';

const NOW = Date.parse('2026-01-01T12:00:00Z');
const ago = (s: number) => new Date(NOW - s * 1000).toISOString();
const meta = (name: string, extra: Record<string, unknown> = {}) => ({ name, ...extra });

const deployment = (status: Record<string, unknown>, spec: Record<string, unknown> = {}) => ({
  metadata: meta('web', { generation: 2, annotations: { 'deployment.kubernetes.io/revision': '3' } }),
  spec: { replicas: 3, template: { spec: { containers: [{ name: 'app', image: 'web:2' }] } }, ...spec },
  status: {
    observedGeneration: 2,
    replicas: 3,
    updatedReplicas: 3,
    readyReplicas: 3,
    availableReplicas: 3,
    ...status,
  },
});

describe('deploymentHealth', () => {
  it.each([
    ['rolled out', {}, {}, 'complete', 'ok'],
    ['missing', undefined, {}, 'not found', 'unhealthy'],
    ['rolling', { updatedReplicas: 1, readyReplicas: 3 }, {}, 'progressing', 'warning'],
    ['status behind the spec', { observedGeneration: 1 }, {}, 'progressing', 'warning'],
    ['paused', {}, { paused: true }, 'paused', 'warning'],
    ['nothing ready', { readyReplicas: 0, availableReplicas: 0 }, {}, 'progressing', 'unhealthy'],
    [
      'deadline exceeded',
      {
        conditions: [
          { type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: 'x' },
        ],
      },
      {},
      'failed',
      'unhealthy',
    ],
  ] as const)('%s', (_, status, spec, rollout, state) => {
    const h = deploymentHealth('web', status === undefined ? undefined : deployment(status, spec));
    expect(h.rollout).toBe(rollout);
    expect(h.state).toBe(state);
  });
  it('ReplicaFailure (pods rejected: Pod Security, quota) is a failed rollout with its message', () => {
    const h = deploymentHealth(
      'web',
      deployment({
        updatedReplicas: 0,
        readyReplicas: 0,
        availableReplicas: 0,
        conditions: [
          { type: 'Progressing', status: 'True', reason: 'NewReplicaSetCreated' },
          {
            type: 'ReplicaFailure',
            status: 'True',
            reason: 'FailedCreate',
            message: 'pods "web-1" is forbidden: violates PodSecurity "restricted:latest"',
          },
        ],
      }),
    );
    expect(h).toMatchObject({ rollout: 'failed', state: 'unhealthy' });
    expect(h.message).toBe(
      '0/3 ready; rollout failed: FailedCreate: pods "web-1" is forbidden: violates PodSecurity "restricted:latest"',
    );
  });
  it('reports replicas, revision and images', () => {
    expect(deploymentHealth('web', deployment({ readyReplicas: 2 }))).toMatchObject({
      ready: 2,
      desired: 3,
      revision: '3',
      images: ['web:2'],
      message: '2/3 ready',
    });
  });
});

const schedule = (status: Record<string, unknown>, rpo?: string) => ({
  metadata: meta('db'),
  spec: rpo ? { objectives: { rpo } } : {},
  status,
});
const backup = (id: string, ageSeconds: number, extra: Record<string, unknown> = {}) => ({
  id,
  finishedAt: ago(ageSeconds),
  verified: true,
  ...extra,
});

describe('scheduleHealth', () => {
  it('picks the newest verified backup that is not a safety backup', () => {
    expect(
      newestGoodBackup({
        backups: [
          backup('safety', 10, { purpose: 'safety' }),
          backup('unverified', 20, { verified: false }),
          backup('good', 30),
        ],
      })?.id,
    ).toBe('good');
  });
  it('measures the age against the default 1h objective', () => {
    const fresh = scheduleHealth(
      schedule({
        backups: [backup('a', 600)],
        lastTestRestore: { backupId: 'a', finishedAt: ago(60), result: 'Succeeded' },
      }),
      NOW,
    );
    expect(fresh).toMatchObject({
      ageSeconds: 600,
      rpoObjective: '1h',
      rpoObjectiveSeconds: 3600,
      state: 'ok',
    });
    const stale = scheduleHealth(schedule({ backups: [backup('a', 7200)] }), NOW);
    expect(stale.state).toBe('unhealthy');
    expect(stale.problems).toEqual(['backup db: newest verified backup is 2h old, RPO objective 1h']);
  });
  it('uses spec.objectives.rpo', () => {
    expect(scheduleHealth(schedule({ backups: [backup('a', 7200)] }, '3h'), NOW).problems).toEqual([
      'backup db: never test-restored',
    ]);
  });
  it('is unhealthy without a backup or with a failed condition', () => {
    expect(scheduleHealth(schedule({}), NOW).problems).toEqual(['backup db: no verified backup yet']);
    const failed = scheduleHealth(
      schedule({
        backups: [backup('a', 60)],
        conditions: [
          { type: 'LastBackupSucceeded', status: 'False', reason: 'JobFailed', message: 'pg_dump exited 1' },
        ],
      }),
      NOW,
    );
    expect(failed.state).toBe('unhealthy');
    expect(failed.problems).toContain('backup db: last backup failed (JobFailed: pg_dump exited 1)');
    expect(failed.conditions.LastBackupSucceeded?.status).toBe('False');
  });
});

const plan = (
  name: string,
  phase: string | undefined,
  extra: Record<string, unknown> = {},
  spec: Record<string, unknown> = {},
) => ({
  metadata: meta(name, { creationTimestamp: ago(1000) }),
  spec: { scope: 'app', ...spec },
  status: { phase, ...extra },
});

describe('plansHealth', () => {
  it('counts phases, lists active plans and reports the last run', () => {
    const h = plansHealth([
      plan('old', 'Succeeded', { completedAt: ago(500) }),
      plan(
        'new',
        'Succeeded',
        {
          completedAt: ago(100),
          durationSeconds: 3.5,
          conditions: [{ type: 'RTOMet', status: 'True', reason: 'WithinObjective', message: '3.5s <= 2m' }],
        },
        { severity: 'critical' },
      ),
      plan('dry', 'DryRunComplete', {}, { dryRun: true }),
      plan('armed', 'Armed'),
      plan('fresh', undefined),
    ]);
    expect(h.byPhase).toEqual({ Succeeded: 2, DryRunComplete: 1, Armed: 1, Pending: 1 });
    expect(h.active).toEqual([{ name: 'armed', phase: 'Armed', scope: 'app' }]);
    expect(h.last).toMatchObject({
      name: 'new',
      rto: '2m',
      durationSeconds: 3.5,
      rtoMet: { status: 'True' },
    });
    expect(h.state).toBe('ok');
  });
  it('is unhealthy when the last rollback failed, a warning when it missed its RTO or waits for approval', () => {
    expect(plansHealth([plan('p', 'Failed', { completedAt: ago(1) })]).state).toBe('unhealthy');
    const slow = plansHealth([
      plan('p', 'Succeeded', {
        completedAt: ago(1),
        conditions: [{ type: 'RTOMet', status: 'False', reason: 'ObjectiveMissed', message: '20m > 10m' }],
      }),
    ]);
    expect(slow.state).toBe('warning');
    expect(slow.problems[0]).toContain('missed its RTO 10m');
    expect(plansHealth([plan('w', 'AwaitingApproval')]).problems).toEqual(['plan w: awaiting approval']);
  });
});

describe('leaseHealth', () => {
  const where = { namespace: 'sys', name: 'leader' };
  const lease = (spec: Record<string, unknown>) => ({ metadata: meta('leader'), spec });
  it('is healthy when held and renewed within the lease duration', () => {
    const h = leaseHealth(
      where,
      lease({ holderIdentity: 'op-1', renewTime: ago(3), leaseDurationSeconds: 15 }),
      NOW,
    );
    expect(h).toMatchObject({ state: 'ok', holder: 'op-1', renewAgeSeconds: 3 });
  });
  it.each([
    ['missing', undefined, 'unhealthy', /not found/],
    ['released', lease({ holderIdentity: '', renewTime: ago(1) }), 'unhealthy', /not held/],
    [
      'stale',
      lease({ holderIdentity: 'op-1', renewTime: ago(16), leaseDurationSeconds: 15 }),
      'unhealthy',
      /stopped renewing/,
    ],
    ['unreadable', { unreadable: 'forbidden' }, 'unknown', /cannot read/],
  ] as const)('%s', (_, l, state, message) => {
    const h = leaseHealth(where, l, NOW);
    expect(h.state).toBe(state);
    expect(h.message).toMatch(message);
  });
});

describe('healthVerdict', () => {
  it('fails on unhealthy and unknown parts, naming them; warnings do not fail', () => {
    const v = healthVerdict({
      targets: [deploymentHealth('web', deployment({ updatedReplicas: 1 }))],
      backups: [scheduleHealth(schedule({}), NOW)],
      plans: plansHealth([]),
      operator: leaseHealth({ namespace: 's', name: 'l' }, { unreadable: 'forbidden' }, NOW),
    });
    expect(v.healthy).toBe(false);
    expect(v.unhealthy).toEqual([
      'backup db: no verified backup yet',
      'operator: cannot read Lease s/l: forbidden',
    ]);
    expect(v.warnings).toEqual(['deployment web: rollout in progress: 1 of 3 updated']);
  });
});

describe('actingTargets', () => {
  const plan = (
    name: string,
    spec: Record<string, unknown>,
    phase?: string,
    labels?: Record<string, string>,
  ) => ({
    metadata: { name, ...(labels ? { labels } : {}) },
    spec: { scope: 'app', targets: { deployments: [{ name: `${name}-d` }] }, ...spec },
    ...(phase ? { status: { phase } } : {}),
  });
  it('takes targets only from plans that may still act, plus the named ones', () => {
    const plans = [
      plan('new', {}), // no status yet: Pending
      plan('armed', {}, 'Armed'),
      plan('waiting', {}, 'AwaitingApproval'),
      plan('running', {}, 'Running'),
      plan('auto', { trigger: { mode: 'auto' } }, 'Expired'),
      plan('typo', {}, 'Failed'), // a failed emergency plan for a mistyped Deployment
      plan('done', {}, 'Succeeded'),
      plan('dry', { dryRun: true }, 'DryRunComplete'),
      plan('check', { validateOnly: 'pre' }, 'DryRunComplete'),
      plan('cli', {}, 'Pending', { 'app.kubernetes.io/created-by': 'nxt-rollback-cli' }),
      plan('drill', {}, 'Running', { 'app.kubernetes.io/managed-by': 'nxt-rollback-cli' }),
      plan('ready', {}, 'Pending', { 'rollback.nxtnewday.io/created-by': 'nxt-rollback-readiness' }),
    ];
    expect(actingTargets(plans, ['extra']).deployments).toEqual([
      'armed-d',
      'auto-d',
      'extra',
      'new-d',
      'running-d',
      'waiting-d',
    ]);
  });
  it('names the acting plans with a database target', () => {
    const db = { targets: { database: { backupScheduleRef: { name: 'db' } } }, scope: 'database' };
    expect(actingTargets([plan('db', db, 'Armed'), plan('old', db, 'Failed')], []).database).toEqual(['db']);
    expect(actingTargets([plan('old', db, 'Failed')], []).database).toEqual([]);
  });
});
