import { describe, expect, it } from 'vitest';
import { withRollbackPlanDefaults, type RollbackPlanSpec } from '../api/v1alpha1/rollbackplan.js';
import { stepsFor, touchedSummary } from './controller.js';

const spec = (s: Partial<RollbackPlanSpec> & Pick<RollbackPlanSpec, 'scope'>) =>
  withRollbackPlanDefaults({ targets: {}, ...s } as RollbackPlanSpec);
const deployments = [{ name: 'web' }];
const database = { backupScheduleRef: { name: 'db' } };
const featureFlags = { configMapRef: { name: 'flags' }, disable: ['new-checkout'] };

describe('stepsFor', () => {
  it.each([
    ['app', { deployments }, ['PreValidation', 'AppRollback', 'PostValidation']],
    ['database', { database }, ['PreValidation', 'SafetyBackup', 'DatabaseRestore', 'PostValidation']],
    ['feature', { featureFlags }, ['PreValidation', 'FeatureFlags', 'PostValidation']],
    [
      'full',
      { deployments, database, featureFlags },
      ['PreValidation', 'SafetyBackup', 'DatabaseRestore', 'AppRollback', 'FeatureFlags', 'PostValidation'],
    ],
    ['full', { deployments }, ['PreValidation', 'AppRollback', 'PostValidation']],
    // A scope acts only on its own kind of target, even if others are listed.
    ['app', { deployments, database }, ['PreValidation', 'AppRollback', 'PostValidation']],
  ])('scope %s with %j', (scope, targets, names) => {
    expect(stepsFor(spec({ scope: scope as RollbackPlanSpec['scope'], targets })).map((s) => s.name)).toEqual(
      names,
    );
  });
});

describe('stepsFor: which step successes are Events of their own', () => {
  const quiet = (scope: RollbackPlanSpec['scope'], targets: object) =>
    stepsFor(spec({ scope, targets }))
      .filter((s) => s.quiet)
      .map((s) => s.name);
  it.each([
    // An app plan's checks and rollout wait decide nothing beyond PreValidationPassed / PostValidationPassed.
    ['app', { deployments }, ['PreValidation', 'PostValidation']],
    // A database or flag plan's pre-validation picks the backup or values it acts on: an Event.
    ['database', { database }, ['PostValidation']],
    ['feature', { featureFlags }, ['PostValidation']],
    ['full', { deployments, database, featureFlags }, ['PostValidation']],
  ])('scope %s with %j: %j are quiet', (scope, targets, names) => {
    expect(quiet(scope as RollbackPlanSpec['scope'], targets)).toEqual(names);
  });
});

describe('stepsFor onRevert', () => {
  const revert = spec({ scope: 'app', targets: { deployments }, trigger: { mode: 'onRevert' } });
  const run = (status: object) =>
    ({
      spec: revert,
      status,
      now: () => new Date('2026-01-01T00:00:00Z'),
      event: () => {},
    }) as never;

  it('pre-validation reads no Deployment history: GitOps already rolled them back', async () => {
    const pre = stepsFor(revert).find((s) => s.name === 'PreValidation')!;
    // A run without a client: preValidateApp would need one to read the Deployment.
    expect(await pre.run(run({}))).toEqual({ kind: 'done', message: '' });
  });

  it('the app step records what GitOps did instead of patching', async () => {
    const app = stepsFor(revert).find((s) => s.name === 'AppRollback')!;
    const outcome = await app.run(
      run({
        deployments: [
          { name: 'web', fromRevision: 3, toRevision: 2, replicaSet: 'web-b', result: 'RolledBack' },
        ],
      }),
    );
    expect(outcome).toEqual({
      kind: 'done',
      message: '1 Deployment(s) rolled back by GitOps (not patched by the operator): web 3 -> 2',
    });
  });
});

describe('touchedSummary', () => {
  it('says nothing changed when no step acted', () => {
    expect(touchedSummary({ steps: [] })).toBe('; nothing was changed');
  });
  it('names the restore, its undo, rolled back Deployments and flags', () => {
    const s = touchedSummary({
      steps: [
        { name: 'DatabaseRestore', startedAt: 'x', result: 'Succeeded' },
        { name: 'FeatureFlags', startedAt: 'x', result: 'Succeeded' },
      ],
      database: { backupId: 'db-1', safetyBackupId: 'plan-safety' },
      deployments: [
        { name: 'web', result: 'RolledBack' },
        { name: 'api', result: 'Pending' },
      ],
      featureFlags: [{ key: 'new-checkout', previous: 'true', now: 'false' }],
    });
    expect(s).toBe(
      '; changed: database restored from db-1 (undo: restore safety backup plan-safety); Deployment web rolled back; flags new-checkout disabled (previous values in status.featureFlags)',
    );
  });
  it('never says "nothing was changed" when the restore Job was lost', () => {
    const s = touchedSummary({
      steps: [{ name: 'DatabaseRestore', startedAt: 'x', result: 'Failed' }],
      database: { backupId: 'db-1' },
      conditions: [
        {
          type: 'DatabaseRestored',
          status: 'False',
          reason: 'RestoreJobLost',
          message: 'gone',
          lastTransitionTime: '2026-01-01T00:00:00Z',
        },
      ],
    });
    expect(s).toBe(
      '; changed: database: unknown, the restore of db-1 may have run partly or fully (check it)',
    );
  });
  it('never says "database not changed" when the restore outcome is unknown', () => {
    const s = touchedSummary({
      steps: [{ name: 'DatabaseRestore', startedAt: 'x', result: 'Failed' }],
      database: { backupId: 'db-1', safetyBackupId: 'p-safety-1' },
      conditions: [
        {
          type: 'DatabaseRestored',
          status: 'False',
          reason: 'RestoreOutcomeUnknown',
          message: 'no result',
          lastTransitionTime: '2026-01-01T00:00:00Z',
        },
      ],
    });
    expect(s).not.toMatch(/not changed/);
    expect(s).toMatch(/may have run partly or fully.*p-safety-1 holds the state before/);
  });
});
