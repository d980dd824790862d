import { describe, expect, it } from 'vitest';
import { backupNowGate } from './schedule-conditions.js';

const ready = (c: ReturnType<typeof backupNowGate>) => c?.find((x) => x.type === 'Ready');
const stalled = (c: ReturnType<typeof backupNowGate>) => c?.find((x) => x.type === 'Stalled');
const reconciling = (c: ReturnType<typeof backupNowGate>) => c?.find((x) => x.type === 'Reconciling');

describe('backupNowGate (the pre-deployment backup as a kstatus gate)', () => {
  it('no backup-now value: no gate', () => {
    expect(backupNowGate(undefined, undefined)).toBeUndefined();
  });

  it('a value not handled yet reads InProgress (Reconciling True; Ready left to the schedule)', () => {
    const c = backupNowGate('release-42', {
      annotationValue: 'release-41',
      jobName: 'j',
      result: 'Succeeded',
    });
    expect(ready(c)).toBeUndefined();
    expect(reconciling(c)).toMatchObject({ status: 'True', reason: 'BackupInProgress' });
    expect(stalled(c)).toMatchObject({ status: 'False' });
  });

  it('a started backup whose Job is not recorded yet stays InProgress and names the Job', () => {
    const c = backupNowGate('release-42', { annotationValue: 'release-42', jobName: 'db-backup-now-1' });
    expect(reconciling(c)).toMatchObject({ status: 'True', reason: 'BackupInProgress' });
    expect(reconciling(c)!.message).toContain('db-backup-now-1');
  });

  it('the recorded backup of the current value opens the gate', () => {
    expect(
      backupNowGate('release-42', { annotationValue: 'release-42', jobName: 'j', result: 'Succeeded' }),
    ).toBeUndefined();
  });

  it('a failed backup reads Failed (Stalled True) until a new value', () => {
    const c = backupNowGate('release-42', { annotationValue: 'release-42', jobName: 'j', result: 'Failed' });
    expect(ready(c)).toMatchObject({ status: 'False', reason: 'BackupNowFailed' });
    expect(stalled(c)).toMatchObject({ status: 'True', reason: 'BackupNowFailed' });
    expect(reconciling(c)).toMatchObject({ status: 'False' });
    // A rejected request (no Job) is a failure too.
    expect(ready(backupNowGate('x', { annotationValue: 'x', result: 'Failed' }))).toMatchObject({
      reason: 'BackupNowFailed',
    });
  });
});
