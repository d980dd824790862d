import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../kube/rest.js';
import { backupNowState, listBackups, sameMessage, testRestoreState } from './backup-requests.js';

const sched = (status: object, name = 'app'): KubeObject => ({ metadata: { name }, status });
const backup = (id: string, finishedAt: string, verified = true) => ({
  id,
  startedAt: '2026-01-01T00:00:00Z',
  finishedAt,
  verified,
});
const cond = (type: string, status: string, reason: string, message: string) => ({
  type,
  status,
  reason,
  message,
});

describe('backup now: which state the request is in', () => {
  it('waits until the operator handled our value', () => {
    expect(backupNowState(sched({ lastBackupNow: { annotationValue: 'old', jobName: 'j' } }), 'v')).toEqual({
      state: 'waiting',
    });
  });
  it('is recorded when a backup with the Job name as id appears', () => {
    const s = sched({
      lastBackupNow: { annotationValue: 'v', jobName: 'app-backup-now-1' },
      backups: [backup('app-backup-now-1', '2026-01-01T00:00:05Z')],
    });
    expect(backupNowState(s, 'v')).toMatchObject({ state: 'recorded', backup: { id: 'app-backup-now-1' } });
  });
  it('failed only for a recorded failure of our Job; a stuck Job is a note, not the end', () => {
    const base = { lastBackupNow: { annotationValue: 'v', jobName: 'j1' } };
    const failed = sched({
      ...base,
      conditions: [cond('LastBackupSucceeded', 'False', 'DatabaseUnreachable', 'backup Job j1 failed: x')],
    });
    expect(backupNowState(failed, 'v')).toMatchObject({ state: 'failed', reason: 'DatabaseUnreachable' });
    const stuck = sched({
      ...base,
      conditions: [cond('LastBackupSucceeded', 'False', 'RunnerPodUnschedulable', 'backup Job j1: no node')],
    });
    expect(backupNowState(stuck, 'v')).toMatchObject({
      state: 'waiting',
      note: expect.stringContaining('no node'),
    });
    const other = sched({
      ...base,
      conditions: [cond('LastBackupSucceeded', 'False', 'X', 'backup Job j0 failed: earlier')],
    });
    expect(backupNowState(other, 'v')).toEqual({ state: 'waiting', jobName: 'j1' });
  });
  it("reads the request's own outcome from lastBackupNow when a later Job's result replaced the condition", () => {
    const failed = sched({
      lastBackupNow: {
        annotationValue: 'v',
        jobName: 'j1',
        result: 'Failed',
        finishedAt: '2026-01-01T00:00:05Z',
        message: 'backup Job j1 failed: DatabaseUnreachable: refused',
      },
      backups: [backup('app-backup-2', '2026-01-01T00:00:09Z')],
      conditions: [cond('LastBackupSucceeded', 'True', 'BackupVerified', 'backup app-backup-2: ok')],
    });
    expect(backupNowState(failed, 'v')).toEqual({
      state: 'failed',
      jobName: 'j1',
      reason: 'Failed',
      message: 'backup Job j1 failed: DatabaseUnreachable: refused',
    });
    // A success whose entry retention already dropped from status.backups.
    const pruned = sched({
      lastBackupNow: {
        annotationValue: 'v',
        jobName: 'j1',
        result: 'Succeeded',
        finishedAt: '2026-01-01T00:00:05Z',
      },
    });
    expect(backupNowState(pruned, 'v')).toMatchObject({
      state: 'recorded',
      backup: { id: 'j1', verified: true },
    });
  });
  it('a rejected request (no Job) is a failure', () => {
    const s = sched({
      lastBackupNow: { annotationValue: 'v' },
      conditions: [cond('LastBackupSucceeded', 'False', 'EmergencyBackupRejected', 'quota')],
    });
    expect(backupNowState(s, 'v')).toMatchObject({ state: 'failed', reason: 'EmergencyBackupRejected' });
  });
  it('a reused value is a failure with the reason on lastBackupNow, even when the old backup is still listed', () => {
    const s = sched({
      lastBackupNow: {
        annotationValue: 'v',
        reason: 'EmergencyBackupValueReused',
        message: 'backup-now=v: this value was already used',
      },
      backups: [backup('app-backup-now-1', '2026-01-01T00:00:00Z')],
      conditions: [cond('LastBackupSucceeded', 'True', 'BackupVerified', 'backup app-backup-now-1: ok')],
    });
    expect(backupNowState(s, 'v')).toMatchObject({
      state: 'failed',
      reason: 'EmergencyBackupValueReused',
      message: expect.stringContaining('already used'),
    });
  });
});

describe('sameMessage', () => {
  const long = `backup Job j failed: ${'x'.repeat(2000)}`;
  it('matches a message and its cut copy, not two different messages', () => {
    expect(sameMessage(long, long.slice(0, 1021) + '...')).toBe(true);
    expect(sameMessage('a', 'a')).toBe(true);
    expect(sameMessage('short one', 'short')).toBe(false);
    expect(sameMessage(long, `backup Job k failed: ${'x'.repeat(1000)}...`)).toBe(false);
    expect(sameMessage(undefined, 'a')).toBe(false);
  });
});

describe('backups verify: which state the request is in', () => {
  const at = new Date('2026-01-01T00:10:00.700Z');
  const handled = { annotationValue: 'b1@x', backupId: 'b1', jobName: 'app-restore-now-1' };
  const result = (finishedAt: string, backupId = 'b1') => ({
    backupId,
    finishedAt,
    result: 'Succeeded',
    durationSeconds: 2,
  });
  it('finished only for a result of that backup at or after the request', () => {
    expect(
      testRestoreState(
        sched({ lastTestRestoreNow: handled, lastTestRestore: result('2026-01-01T00:09:59Z') }),
        'b1@x',
        'b1',
        at,
      ),
    ).toMatchObject({ state: 'waiting' });
    expect(
      testRestoreState(
        sched({ lastTestRestoreNow: handled, lastTestRestore: result('2026-01-01T00:10:03Z', 'b2') }),
        'b1@x',
        'b1',
        at,
      ),
    ).toMatchObject({ state: 'waiting' });
    expect(
      testRestoreState(
        sched({ lastTestRestoreNow: handled, lastTestRestore: result('2026-01-01T00:10:00Z') }),
        'b1@x',
        'b1',
        at,
      ),
    ).toMatchObject({ state: 'finished' });
  });
  it("finished only for the result of the request's own Job, whatever its time or backup", () => {
    const withJob = (jobName: string, finishedAt: string) => ({ ...result(finishedAt), jobName });
    // Another request's result that finished after ours was asked for (it would match by time and backup).
    expect(
      testRestoreState(
        sched({
          lastTestRestoreNow: handled,
          lastTestRestore: withJob('app-verify-9', '2026-01-01T00:10:05Z'),
        }),
        'b1@x',
        'b1',
        at,
      ),
    ).toMatchObject({ state: 'waiting', jobName: 'app-restore-now-1' });
    expect(
      testRestoreState(
        sched({
          lastTestRestoreNow: handled,
          lastTestRestore: withJob('app-restore-now-1', '2026-01-01T00:10:05Z'),
        }),
        'b1@x',
        'b1',
        at,
      ),
    ).toMatchObject({ state: 'finished' });
  });
  it("finished with the request's own outcome from lastTestRestoreNow when a newer scheduled result was recorded after it", () => {
    // The request's Job finished at 00:10:05 but was recorded after a verify Job that finished at 00:10:09,
    // so lastTestRestore (newest result only) never shows it.
    const s = sched({
      lastTestRestoreNow: {
        ...handled,
        result: 'Failed',
        finishedAt: '2026-01-01T00:10:05Z',
        durationSeconds: 3,
        message: 'test restore Job app-restore-now-1 failed: ChecksumMismatch: x',
      },
      lastTestRestore: { ...result('2026-01-01T00:10:09Z'), jobName: 'app-verify-9' },
    });
    expect(testRestoreState(s, 'b1@x', 'b1', at)).toEqual({
      state: 'finished',
      result: {
        backupId: 'b1',
        finishedAt: '2026-01-01T00:10:05Z',
        durationSeconds: 3,
        result: 'Failed',
        message: 'test restore Job app-restore-now-1 failed: ChecksumMismatch: x',
        jobName: 'app-restore-now-1',
      },
    });
  });
  it('refused with the reason in lastTestRestoreNow (the condition keeps the last real test restore)', () => {
    const s = sched({
      lastTestRestoreNow: {
        annotationValue: 'b1@x',
        reason: 'BackupNotFound',
        message: 'backup "b1" is not among',
      },
      conditions: [cond('LastTestRestoreSucceeded', 'True', 'RestoreVerified', 'passed')],
    });
    expect(testRestoreState(s, 'b1@x', 'b1', at)).toMatchObject({
      state: 'refused',
      reason: 'BackupNotFound',
    });
  });
  it('refused when the operator started no Job', () => {
    const s = sched({
      lastTestRestoreNow: { annotationValue: 'b1@x', message: 'backup "b1" is not among' },
      conditions: [cond('LastTestRestoreSucceeded', 'False', 'BackupNotFound', 'backup "b1" is not among')],
    });
    expect(testRestoreState(s, 'b1@x', 'b1', at)).toMatchObject({
      state: 'refused',
      reason: 'BackupNotFound',
    });
  });
});

describe('backups list', () => {
  it("lists every schedule's backups, newest first, with the schedule", () => {
    const rows = listBackups([
      sched({ backups: [backup('a1', '2026-01-01T00:00:01Z')] }, 'a'),
      sched({ backups: [backup('b1', '2026-01-01T00:00:02Z'), backup('b0', '2026-01-01T00:00:00Z')] }, 'b'),
    ]);
    expect(rows.map((r) => [r.id, r.schedule])).toEqual([
      ['b1', 'b'],
      ['a1', 'a'],
      ['b0', 'b'],
    ]);
  });
});

describe('a newer request replaced ours before the operator handled it', () => {
  const annotated = (status: object, annotations: Record<string, string>): KubeObject => ({
    metadata: { name: 'app', annotations },
    status,
  });
  it('backup now: superseded by the newer value, instead of waiting until the timeout', () => {
    const s = annotated(
      { lastBackupNow: { annotationValue: 'older', jobName: 'j0' } },
      { 'rollback.nxtnewday.io/backup-now': 'B' },
    );
    expect(backupNowState(s, 'A')).toEqual({ state: 'superseded', by: 'B' });
    // Ours is still the annotation's value: wait.
    expect(backupNowState(annotated({}, { 'rollback.nxtnewday.io/backup-now': 'A' }), 'A')).toEqual({
      state: 'waiting',
    });
    // The operator handled ours before B arrived: the answer is read as usual.
    const handled = annotated(
      {
        lastBackupNow: { annotationValue: 'A', jobName: 'app-backup-now-1' },
        backups: [backup('app-backup-now-1', '2026-01-01T00:00:05Z')],
      },
      { 'rollback.nxtnewday.io/backup-now': 'B' },
    );
    expect(backupNowState(handled, 'A')).toMatchObject({ state: 'recorded' });
  });
  it('test restore now: superseded the same way', () => {
    const s = annotated({}, { 'rollback.nxtnewday.io/test-restore-now': 'b2@x' });
    expect(testRestoreState(s, 'b1@y', 'b1', new Date())).toEqual({ state: 'superseded', by: 'b2@x' });
  });
});
