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
    [
      'a validateOnly plan checking the same Deployment',
      plan('a', '2026-11-28T10:00:00Z', 'Running', ['web'], { validateOnly: 'post' }),
      0,
    ],
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

// Regression (review, double execution): a plan that fired or was approved showed Armed/AwaitingApproval in
// the cache until its pre-validation result was written, so two plans on one target both executed. Now a
// plan leaving those phases writes Running + startedAt first, and of two such plans the earlier start wins.
describe('plans that fire or are approved at once', () => {
  const web = { scope: 'app', targets: { deployments: [{ name: 'web' }] } };
  const auto = { ...web, severity: 'critical', trigger: { mode: 'auto' } };
  const fired = { firedAt: '2026-11-29T09:00:00.000Z', condition: 'alert-0', type: 'Alert' };
  const obj = (name: string, created: string, spec: object, status: object) =>
    ({ metadata: { name, namespace: 'shop', uid: name, creationTimestamp: created }, spec, status }) as any;
  /** The plan as the controller shows it once it started executing (before its pre-validation). */
  const started = (p: any, at: string) => ({
    ...p,
    status: { ...p.status, phase: 'Running', startedAt: at, steps: [] },
  });
  const proceeds = (self: any, all: any[]) => activePlanConflicts(self, all, ['web']).length === 0;

  it('two automatic plans fired by one alert: whichever starts second sees the first and fails', () => {
    // web-a was created first; web-b happens to start first. Each checks after its own start is visible.
    const a = obj('web-a', '2026-11-28T09:00:00Z', auto, { phase: 'Armed', trigger: fired });
    const b = obj('web-b', '2026-11-29T08:00:00Z', auto, { phase: 'Armed', trigger: fired });
    const b1 = started(b, '2026-11-29T09:00:00.010Z');
    expect(proceeds(b1, [a, b1])).toBe(true); // web-a is still Armed (durably): it does not execute
    const a1 = started(a, '2026-11-29T09:00:00.020Z');
    expect(activePlanConflicts(a1, [a1, b1], ['web'])).toEqual([
      {
        target: { kind: 'Deployment', name: 'web' },
        deployment: 'web',
        plan: 'web-b',
        phase: 'Running, started earlier',
      },
    ]);
    // Both started before either checked: still exactly one (the earlier start).
    expect([proceeds(a1, [a1, b1]), proceeds(b1, [a1, b1])]).toEqual([false, true]);
  });

  it('the same start time: the name decides, the same way for both', () => {
    const at = '2026-11-29T09:00:00.010Z';
    const a = started(obj('web-a', '2026-11-28T09:00:00Z', auto, { trigger: fired }), at);
    const b = started(obj('web-b', '2026-11-28T09:00:00Z', auto, { trigger: fired }), at);
    expect([proceeds(a, [a, b]), proceeds(b, [a, b])]).toEqual([true, false]);
  });

  it('two medium plans approved together: exactly one executes', () => {
    const waiting = { phase: 'AwaitingApproval', trigger: { ...fired, condition: 'Manual', type: 'Manual' } };
    const c = obj('c', '2026-11-29T08:00:00Z', { ...web, severity: 'medium' }, waiting);
    const d = obj('d', '2026-11-29T08:00:01Z', { ...web, severity: 'medium' }, waiting);
    const d1 = started(d, '2026-11-29T09:00:00.100Z');
    expect(proceeds(d1, [c, d1])).toBe(true);
    const c1 = started(c, '2026-11-29T09:00:00.200Z');
    expect(proceeds(c1, [c1, d1])).toBe(false); // older by creation, but it started second
  });

  it('a manual emergency plan and an automatic plan firing: exactly one executes, either order', () => {
    const manual = (created: string) =>
      obj('emergency', created, web, { phase: 'Running', startedAt: created, steps: [] });
    const armed = obj('auto', '2026-11-20T00:00:00Z', auto, { phase: 'Armed', trigger: fired });
    // The emergency plan was applied before the automatic one fired: the automatic one yields.
    const m1 = manual('2026-11-29T09:00:00Z');
    const a1 = started(armed, '2026-11-29T09:00:01.500Z');
    expect([proceeds(m1, [m1, a1]), proceeds(a1, [m1, a1])]).toEqual([true, false]);
    // The automatic plan started executing before the emergency plan was applied: the emergency plan yields.
    const m2 = manual('2026-11-29T09:00:03Z');
    expect([proceeds(m2, [m2, a1]), proceeds(a1, [m2, a1])]).toEqual([false, true]);
  });

  it('an emergency plan applied in the same second an automatic plan started: still exactly one', () => {
    // creationTimestamp has whole seconds: 09:00:00 may be later than a start at 09:00:00.500.
    const a1 = started(
      obj('auto', '2026-11-20T00:00:00Z', auto, { phase: 'Armed', trigger: fired }),
      '2026-11-29T09:00:00.500Z',
    );
    const pending = obj('emergency', '2026-11-29T09:00:00Z', web, undefined as any);
    expect(proceeds(a1, [a1, pending]), 'a plan not started yet starts after one that has').toBe(true);
    const m = { ...pending, status: { phase: 'Running', startedAt: '2026-11-29T09:00:00.900Z', steps: [] } };
    expect(proceeds(m, [m, a1])).toBe(false);
    // The emergency plan started first (at .100; the automatic one had not yet): the automatic one yields.
    const early = {
      ...pending,
      status: { phase: 'Running', startedAt: '2026-11-29T09:00:00.100Z', steps: [] },
    };
    expect([proceeds(early, [early, a1]), proceeds(a1, [early, a1])]).toEqual([true, false]);
  });

  it('an automatic plan not started (never fired) keeps nothing off its targets, whatever its age', () => {
    const armed = obj('auto', '2026-11-20T00:00:00Z', auto, { phase: 'Armed' });
    const fresh = obj('auto2', '2026-11-20T00:00:00Z', auto, undefined as any);
    const m = obj('emergency', '2026-11-29T09:00:00Z', web, { phase: 'Running', steps: [] });
    expect(proceeds(m, [m, armed, fresh])).toBe(true);
  });
});
