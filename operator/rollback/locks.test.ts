import { describe, expect, it } from 'vitest';
import {
  activePlanConflicts,
  concurrentPlanFailure,
  describeLockTarget,
  lockTargets,
  planConflicts,
  type LockTarget,
} from './locks.js';
import type { PlanRun } from './plan-run.js';

const plan = (
  name: string,
  created: string,
  phase: string | undefined,
  deps: string[],
  extra: object = {},
  validated = false,
) =>
  ({
    metadata: { name, namespace: 'shop', uid: name, creationTimestamp: created },
    spec: { scope: 'app', targets: { deployments: deps.map((d) => ({ name: d })) }, ...extra },
    status: phase
      ? { phase, steps: validated ? [{ name: 'PreValidation', result: 'Succeeded' }] : [] }
      : undefined,
  }) as any;

describe('activePlanConflicts', () => {
  const self = plan('me', '2026-11-28T10:00:05Z', undefined, ['web']);
  it.each([
    [
      'a newer plan that passed pre-validation',
      plan('a', '2026-11-28T10:00:09Z', 'Running', ['web'], {}, true),
      1,
    ],
    ['a newer running plan still pre-validating', plan('a', '2026-11-28T10:00:09Z', 'Running', ['web']), 0],
    ['an older running plan still pre-validating', plan('a', '2026-11-28T10:00:00Z', 'Running', ['web']), 1],
    ['an older pending plan', plan('a', '2026-11-28T10:00:00Z', 'Pending', ['web']), 1],
    ['a newer pending plan', plan('a', '2026-11-28T10:00:09Z', 'Pending', ['web']), 0],
    ['a finished plan', plan('a', '2026-11-28T10:00:00Z', 'Succeeded', ['web']), 0],
    ['a failed plan', plan('a', '2026-11-28T10:00:00Z', 'Failed', ['web']), 0],
    ['another deployment', plan('a', '2026-11-28T10:00:00Z', 'Running', ['api']), 0],
    ['a dry run', plan('a', '2026-11-28T10:00:00Z', 'Running', ['web'], { dryRun: true }), 0],
    ['same time, earlier name', plan('a', '2026-11-28T10:00:05Z', undefined, ['web']), 1],
    ['same time, later name', plan('z', '2026-11-28T10:00:05Z', undefined, ['web']), 0],
    [
      'a database-scope plan that merely lists the Deployment',
      plan('a', '2026-11-28T10:00:00Z', 'Running', ['web'], { scope: 'database' }),
      0,
    ],
    [
      'a full-scope plan that lists the Deployment',
      plan('a', '2026-11-28T10:00:00Z', 'Running', ['web'], { scope: 'full' }),
      1,
    ],
  ])('%s', (_n, other, count) => {
    expect(activePlanConflicts(self, [self, other], ['web'])).toHaveLength(count);
  });

  it('ignores other namespaces', () => {
    const other = plan('a', '2026-11-28T10:00:00Z', 'Running', ['web']);
    other.metadata.namespace = 'billing';
    expect(activePlanConflicts(self, [other], ['web'])).toEqual([]);
  });

  it('names the Deployment and the plan holding it', () => {
    const other = plan('a', '2026-11-28T10:00:00Z', 'Running', ['web'], {}, true);
    expect(activePlanConflicts(self, [other], ['web'])).toEqual([
      { target: { kind: 'Deployment', name: 'web' }, deployment: 'web', plan: 'a', phase: 'Running' },
    ]);
  });
});

const db = (schedule: string) => ({ database: { backupScheduleRef: { name: schedule } } });
const cmFlags = (cm: string, keys: string[]) => ({
  featureFlags: { configMapRef: { name: cm }, disable: keys },
});
const ffFlags = (ff: string, keys: string[]) => ({
  featureFlags: { featureFlagRef: { name: ff }, disable: keys },
});

describe('lockTargets', () => {
  it.each<[string, object, LockTarget[]]>([
    [
      'app: its Deployments',
      { scope: 'app', targets: { deployments: [{ name: 'web' }] } },
      [{ kind: 'Deployment', name: 'web' }],
    ],
    [
      'database: the schedule’s database',
      { scope: 'database', targets: db('shop-db') },
      [{ kind: 'Database', backupSchedule: 'shop-db' }],
    ],
    [
      'feature: each ConfigMap key',
      { scope: 'feature', targets: cmFlags('flags', ['a', 'b']) },
      [
        { kind: 'ConfigMapKey', configMap: 'flags', key: 'a' },
        { kind: 'ConfigMapKey', configMap: 'flags', key: 'b' },
      ],
    ],
    [
      'feature: the whole FeatureFlag object',
      { scope: 'feature', targets: ffFlags('ff', ['a', 'b']) },
      [{ kind: 'FeatureFlag', name: 'ff' }],
    ],
    [
      'full: everything it lists',
      {
        scope: 'full',
        targets: { deployments: [{ name: 'web' }], ...db('shop-db'), ...cmFlags('flags', ['a']) },
      },
      [
        { kind: 'Deployment', name: 'web' },
        { kind: 'Database', backupSchedule: 'shop-db' },
        { kind: 'ConfigMapKey', configMap: 'flags', key: 'a' },
      ],
    ],
    [
      'app: not the database or flags it also lists',
      { scope: 'app', targets: { deployments: [{ name: 'web' }], ...db('shop-db'), ...cmFlags('f', ['a']) } },
      [{ kind: 'Deployment', name: 'web' }],
    ],
    ['an unparseable spec: nothing', { scope: 'database', targets: { database: {} } }, []],
  ])('%s', (_n, spec, expected) => {
    expect(lockTargets(spec)).toEqual(expected);
  });
});

describe('planConflicts on the database and flags', () => {
  const at = (name: string, created: string, spec: object, phase = 'Running', validated = false) =>
    ({
      metadata: { name, namespace: 'shop', uid: name, creationTimestamp: created },
      spec,
      status: { phase, steps: validated ? [{ name: 'PreValidation', result: 'Succeeded' }] : [] },
    }) as any;
  const EARLY = '2026-11-28T10:00:00Z';
  const LATE = '2026-11-28T10:00:09Z';
  const SELF_T = '2026-11-28T10:00:05Z';

  it.each<[string, object, object, string | undefined, number]>([
    [
      'two restores of one schedule',
      { scope: 'database', targets: db('s') },
      { scope: 'database', targets: db('s') },
      EARLY,
      1,
    ],
    [
      'a full plan restoring the same schedule',
      { scope: 'database', targets: db('s') },
      { scope: 'full', targets: db('s') },
      EARLY,
      1,
    ],
    [
      'restores of different schedules',
      { scope: 'database', targets: db('s') },
      { scope: 'database', targets: db('t') },
      EARLY,
      0,
    ],
    [
      'a newer restore still validating',
      { scope: 'database', targets: db('s') },
      { scope: 'database', targets: db('s') },
      LATE,
      0,
    ],
    [
      'an app plan that lists the schedule',
      { scope: 'database', targets: db('s') },
      { scope: 'app', targets: { deployments: [{ name: 'x' }], ...db('s') } },
      EARLY,
      0,
    ],
    [
      'the same ConfigMap key',
      { scope: 'feature', targets: cmFlags('f', ['a', 'b']) },
      { scope: 'feature', targets: cmFlags('f', ['b', 'c']) },
      EARLY,
      1,
    ],
    [
      'other keys of the same ConfigMap',
      { scope: 'feature', targets: cmFlags('f', ['a']) },
      { scope: 'feature', targets: cmFlags('f', ['b']) },
      EARLY,
      0,
    ],
    [
      'the same key in another ConfigMap',
      { scope: 'feature', targets: cmFlags('f', ['a']) },
      { scope: 'feature', targets: cmFlags('g', ['a']) },
      EARLY,
      0,
    ],
    [
      'the same FeatureFlag, other keys',
      { scope: 'feature', targets: ffFlags('ff', ['a']) },
      { scope: 'feature', targets: ffFlags('ff', ['b']) },
      EARLY,
      1,
    ],
    [
      'another FeatureFlag',
      { scope: 'feature', targets: ffFlags('ff', ['a']) },
      { scope: 'feature', targets: ffFlags('gg', ['a']) },
      EARLY,
      0,
    ],
    [
      'a ConfigMap named like the FeatureFlag',
      { scope: 'feature', targets: ffFlags('ff', ['a']) },
      { scope: 'feature', targets: cmFlags('ff', ['a']) },
      EARLY,
      0,
    ],
  ])('%s', (_n, mine, theirs, created, count) => {
    const self = at('me', SELF_T, mine, 'Pending');
    const other = at('other', created!, theirs);
    expect(planConflicts(self, [self, other], lockTargets(mine as any))).toHaveLength(count);
  });

  it.each([
    ['Armed', {}],
    ['AwaitingApproval', {}],
    ['Expired', {}],
    ['Vetoed', {}],
    ['Pending', { trigger: { mode: 'auto' } }],
  ])('an older plan that is %s (%j) does not keep an emergency plan off its targets', (phase, extra) => {
    const spec = { scope: 'database', targets: db('s') };
    const self = at('me', SELF_T, spec, 'Pending');
    const armed = at('other', EARLY, { ...spec, ...extra }, phase);
    expect(planConflicts(self, [self, armed], lockTargets(spec))).toEqual([]);
  });

  it('an automatic plan that started executing holds its targets like any other', () => {
    const spec = { scope: 'database', targets: db('s') };
    const self = at('me', SELF_T, spec, 'Pending');
    const running = at('other', EARLY, { ...spec, trigger: { mode: 'auto' } }, 'Running', true);
    expect(planConflicts(self, [self, running], lockTargets(spec))).toHaveLength(1);
  });

  it('a newer plan that already holds the schedule blocks an older one that is still validating', () => {
    const spec = { scope: 'database', targets: db('s') };
    const self = at('me', SELF_T, spec, 'Running');
    const holder = at('other', LATE, spec, 'Running', true);
    expect(planConflicts(self, [holder], lockTargets(spec))).toEqual([
      { target: { kind: 'Database', backupSchedule: 's' }, plan: 'other', phase: 'Running' },
    ]);
  });
});

describe('concurrentPlanFailure', () => {
  const now = new Date('2026-11-28T10:00:10Z');
  const runOf = (self: any, others: any[]): PlanRun =>
    ({ plan: self, spec: self.spec, status: {}, allPlans: () => [self, ...others], now: () => now }) as any;
  const older = (spec: object) =>
    ({
      metadata: { name: 'first', namespace: 'shop', uid: 'first', creationTimestamp: '2026-11-28T10:00:00Z' },
      spec,
      status: { phase: 'Running', steps: [] },
    }) as any;
  const me = (spec: object) =>
    ({
      metadata: { name: 'me', namespace: 'shop', uid: 'me', creationTimestamp: '2026-11-28T10:00:05Z' },
      spec,
    }) as any;

  it('fails with ConcurrentPlan, names the holder and journals the check', () => {
    const spec = { scope: 'database', targets: db('shop-db') };
    const run = runOf(me(spec), [older(spec)]);
    expect(concurrentPlanFailure(run, 'database')).toEqual({
      kind: 'failed',
      reason: 'ConcurrentPlan',
      message:
        'the database of BackupSchedule "shop-db" is held by RollbackPlan "first" (Running, created earlier)',
    });
    expect(run.status.steps).toMatchObject([{ name: 'CheckNoConcurrentRestore', result: 'Failed' }]);
  });

  it('looks only at the kind of target it is asked about', () => {
    const spec = { scope: 'full', targets: { ...db('shop-db'), ...cmFlags('flags', ['beta']) } };
    const other = older({ scope: 'feature', targets: cmFlags('flags', ['beta']) });
    const run = runOf(me(spec), [other]);
    expect(concurrentPlanFailure(run, 'database')).toBeUndefined();
    expect(concurrentPlanFailure(run, 'flags')).toMatchObject({ reason: 'ConcurrentPlan' });
    expect(run.status.steps?.map((s) => [s.name, s.result])).toEqual([
      ['CheckNoConcurrentRestore', 'Succeeded'],
      ['CheckNoConcurrentFlagChange', 'Failed'],
    ]);
  });

  it.each<[LockTarget, string]>([
    [{ kind: 'Deployment', name: 'web' }, 'Deployment "web"'],
    [{ kind: 'ConfigMapKey', configMap: 'flags', key: 'beta' }, 'key "beta" of ConfigMap "flags"'],
    [{ kind: 'FeatureFlag', name: 'ff' }, 'FeatureFlag "ff"'],
  ])('describes %j', (t, text) => expect(describeLockTarget(t)).toBe(text));
});
