import { describe, expect, it } from 'vitest';
import type { RollbackPlanStatus } from '../api/v1alpha1/rollbackplan.js';
import { postValidationMessage, safetyGapNote, succeededEventMessage } from './outcome-messages.js';

describe('postValidationMessage', () => {
  it('names the Deployments only when the plan has some', () => {
    expect(postValidationMessage(2, '; 1 HTTP check(s) passed')).toBe(
      '2 Deployment(s) rolled out and available; 1 HTTP check(s) passed',
    );
    expect(postValidationMessage(1, '')).toBe('1 Deployment(s) rolled out and available');
    // A database-only or flag-only plan.
    expect(postValidationMessage(0, '; 2 HTTP check(s) passed')).toBe('2 HTTP check(s) passed');
    expect(postValidationMessage(0, '')).toBe('');
  });
});

describe('succeededEventMessage', () => {
  const step = (name: string, message: string) => ({
    name,
    startedAt: '2026-11-29T22:00:00Z',
    finishedAt: '2026-11-29T22:00:01Z',
    result: 'Succeeded' as const,
    message,
  });

  it('carries AppRollback: its message and each Deployment rolled back by name, then post-validation', () => {
    const status = {
      steps: [
        step('AppRollback', '2 rolled back, 1 already at the wanted revision'),
        step('PostValidation', '3 Deployment(s) rolled out and available; 1 HTTP check(s) passed'),
      ],
      deployments: [
        { name: 'web', fromRevision: 3, toRevision: 2, result: 'RolledBack' },
        { name: 'api', fromRevision: 5, toRevision: 4, result: 'RolledBack' },
        { name: 'worker', toRevision: 1, result: 'Skipped' },
      ],
    } as unknown as RollbackPlanStatus;
    expect(succeededEventMessage(status, 'rolled back in 4.2s', '10m')).toBe(
      'rolled back in 4.2s (RTO objective 10m); 2 rolled back, 1 already at the wanted revision; ' +
        'rolled back: web 3 -> 2, api 5 -> 4; 3 Deployment(s) rolled out and available; 1 HTTP check(s) passed',
    );
  });

  it('has no Deployment part for a database-only plan', () => {
    const status = {
      steps: [step('DatabaseRestore', 'restored'), step('PostValidation', '')],
    } as unknown as RollbackPlanStatus;
    expect(succeededEventMessage(status, 'rolled back in 9s', '15m')).toBe(
      'rolled back in 9s (RTO objective 15m)',
    );
  });

  it('does not name the Deployments twice for onRevert (the step message names what GitOps did)', () => {
    const msg = '1 Deployment(s) rolled back by GitOps (not patched by the operator): web 2 -> 1';
    const status = {
      steps: [step('AppRollback', msg), step('PostValidation', '1 Deployment(s) rolled out and available')],
      deployments: [{ name: 'web', fromRevision: 2, toRevision: 1, result: 'RolledBack' }],
    } as unknown as RollbackPlanStatus;
    expect(succeededEventMessage(status, 'rolled back in 1s', '5m', true)).toBe(
      `rolled back in 1s (RTO objective 5m); ${msg}; 1 Deployment(s) rolled out and available`,
    );
  });
});

describe('the writes in neither the safety backup nor the restored database', () => {
  const status = (database: Record<string, unknown>) =>
    ({
      steps: [
        {
          name: 'DatabaseRestore',
          startedAt: '2026-11-29T22:05:00.000Z',
          finishedAt: '2026-11-29T22:05:09.000Z',
          result: 'Succeeded',
          message: 'restored backup b-1',
        },
        { name: 'PostValidation', startedAt: 'x', result: 'Succeeded', message: '' },
      ],
      database: {
        backupId: 'b-1',
        mode: 'inPlace',
        safetyBackupId: 'p-safety-1',
        safetyBackupStartedAt: '2026-11-29T22:03:20.000Z',
        ...database,
      },
    }) as unknown as RollbackPlanStatus;

  it('names the gap from the safety backup start to the restore start in the Succeeded event', () => {
    expect(succeededEventMessage(status({}), 'rolled back in 130s', '15m')).toBe(
      'rolled back in 130s (RTO objective 15m); writes made after the safety backup p-safety-1 started ' +
        '(2026-11-29T22:03:20.000Z, 100s before the restore started) are in neither the safety backup nor the restored database',
    );
  });

  it('newDatabaseSwap with the previous database kept: those writes are there', () => {
    expect(safetyGapNote(status({ mode: 'newDatabaseSwap', previousDatabase: 'shop_pre_b1' }))).toMatch(
      /are not in the safety backup \(the previous database shop_pre_b1 has them\)$/,
    );
  });

  it('says nothing without a safety backup or its start time', () => {
    expect(safetyGapNote(status({ safetyBackupId: undefined }))).toBe('');
    expect(safetyGapNote(status({ safetyBackupStartedAt: undefined }))).toBe('');
  });
});
