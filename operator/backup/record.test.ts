import { describe, expect, it } from 'vitest';
import { withBackupScheduleDefaults, type BackupScheduleStatus } from '../api/v1alpha1/backupschedule.js';
import type { KubeObject } from '../kube/rest.js';
import { createMetrics } from '../metrics.js';
import {
  backupPurpose,
  MAX_DURATION_SECONDS,
  recordBackupJob,
  recordTestRestoreJob,
  wholeSeconds,
} from './record.js';

const job = (
  labels: Record<string, string>,
  annotations: Record<string, string> = {},
  name = 'j',
): KubeObject => ({ metadata: { name, namespace: 'shop', labels, annotations } });
const SCHEDULE = { 'rollback.nxtnewday.io/backup-schedule': 'db' };

describe('backupPurpose', () => {
  it.each([
    ['a CronJob run', 'scheduled', job(SCHEDULE)],
    [
      'a Job made from the CronJob by backup-now or kubectl create job --from',
      'emergency',
      job(SCHEDULE, { 'cronjob.kubernetes.io/instantiate': 'manual' }),
    ],
    ['a plan safety backup', 'safety', job({ ...SCHEDULE, 'rollback.nxtnewday.io/plan': 'undo' })],
  ])('%s is %s', (_what, purpose, j) => {
    expect(backupPurpose(j)).toBe(purpose);
  });
});

describe('recordBackupJob', () => {
  it('records the purpose with the backup', () => {
    const status: BackupScheduleStatus = {};
    const finishedAt = new Date(Date.now() - 1000).toISOString();
    recordBackupJob(
      status,
      job({ ...SCHEDULE, 'rollback.nxtnewday.io/plan': 'undo' }, {}, 'undo-safety'),
      {
        state: 'succeeded',
        finishedAt,
        message: 'ok',
        reason: 'Succeeded',
        result: {
          resultVersion: 1,
          operation: 'backup',
          id: 'undo-safety',
          success: true,
          message: 'ok',
          startedAt: finishedAt,
          finishedAt,
          durationSeconds: 1,
          verified: true,
        },
      },
      withBackupScheduleDefaults({
        database: { secretRef: { name: 's' } },
        storage: { persistentVolumeClaim: { claimName: 'c' } },
      }),
      () => {},
      { namespace: 'shop', name: 'db' },
    );
    expect(status.backups).toEqual([expect.objectContaining({ id: 'undo-safety', purpose: 'safety' })]);
  });
});

describe('recordTestRestoreJob', () => {
  const req = { namespace: 'shop', name: 'db' };
  it.each([
    ['succeeded', 'succeeded', 'True'],
    ['failed', 'failed', 'False'],
  ] as const)('a %s test restore counts nxt_test_restore_total{result=%s}', async (state, result, cond) => {
    const status: BackupScheduleStatus = {};
    const conds: { type: string; status: string }[] = [];
    const recorded = recordTestRestoreJob(
      status,
      job(SCHEDULE, {}, 'db-verify-1'),
      {
        state,
        finishedAt: new Date().toISOString(),
        message: state === 'succeeded' ? 'ok' : 'checksum',
        reason: state === 'succeeded' ? 'Succeeded' : 'ChecksumMismatch',
      },
      (c) => conds.push(c),
      req,
    );
    expect(conds.map((c) => [c.type, c.status])).toEqual([['LastTestRestoreSucceeded', cond]]);
    const m = createMetrics({ defaultMetrics: false });
    const before = await m.registry.metrics();
    expect(before, 'nothing is counted before observe (the Job is not marked recorded yet)').not.toContain(
      'nxt_test_restore_total{',
    );
    recorded.observe(m);
    expect(await m.registry.metrics()).toContain(
      `nxt_test_restore_total{trigger="scheduled",namespace="shop",schedule="db",result="${result}"} 1`,
    );
  });

  it('counts a test restore on request with trigger="request"', async () => {
    const recorded = recordTestRestoreJob(
      {},
      job(SCHEDULE, { 'rollback.nxtnewday.io/backup-id': 'b1' }, 'db-restore-now-1'),
      { state: 'succeeded', finishedAt: new Date().toISOString(), message: 'ok', reason: 'Succeeded' },
      () => {},
      req,
    );
    const m = createMetrics({ defaultMetrics: false });
    recorded.observe(m);
    expect(await m.registry.metrics()).toContain(
      'nxt_test_restore_total{trigger="request",namespace="shop",schedule="db",result="succeeded"} 1',
    );
  });

  const failedAt = (finishedAt: string) =>
    ({ state: 'failed', finishedAt, reason: 'RunnerResultMissing', message: 'the pod was deleted' }) as any;

  it.each(['', 'a b', 'x'.repeat(300), '-bad'])(
    'an invalid backup-id annotation (%j) is recorded as unknown, never written to status',
    (id) => {
      const status: BackupScheduleStatus = {};
      recordTestRestoreJob(
        status,
        job(SCHEDULE, { 'rollback.nxtnewday.io/backup-id': id }, 'db-restore-now-2'),
        failedAt('2026-01-01T00:01:00Z'),
        () => {},
        req,
      );
      expect(status.lastTestRestore?.backupId).toBe('unknown');
    },
  );

  it('records the Job a result is from, and never lets an older result replace a newer one', () => {
    const status: BackupScheduleStatus = {};
    const conds: unknown[] = [];
    const record = (name: string, finishedAt: string) =>
      recordTestRestoreJob(
        status,
        job(SCHEDULE, { 'rollback.nxtnewday.io/backup-id': 'b1' }, name),
        failedAt(finishedAt),
        (c) => conds.push(c),
        req,
      );
    record('db-restore-now-new', '2026-01-01T00:02:00Z');
    expect(status.lastTestRestore).toMatchObject({ jobName: 'db-restore-now-new' });
    const events = record('db-restore-now-old', '2026-01-01T00:01:00Z').events;
    expect(status.lastTestRestore).toMatchObject({
      jobName: 'db-restore-now-new',
      finishedAt: '2026-01-01T00:02:00Z',
    });
    expect(conds, 'the older result does not set the condition either').toHaveLength(1);
    expect(events[0]?.[1], 'it still has its Event').toBe('TestRestoreFailed');
  });

  it('records a test restore on request that left no result for the backup it was asked for', () => {
    const status: BackupScheduleStatus = {
      lastSuccessfulBackup: {
        id: 'newest',
        startedAt: '2026-01-01T00:00:00Z',
        finishedAt: '2026-01-01T00:00:00Z',
      },
    };
    recordTestRestoreJob(
      status,
      job(SCHEDULE, { 'rollback.nxtnewday.io/backup-id': 'older' }, 'db-restore-now-1'),
      {
        state: 'failed',
        finishedAt: '2026-01-01T00:01:00Z',
        reason: 'RunnerResultMissing',
        message: 'the pod was deleted',
      } as any,
      () => {},
      req,
    );
    expect(status.lastTestRestore).toMatchObject({ backupId: 'older', result: 'Failed' });
  });

  it("records the request's own Job's outcome on lastTestRestoreNow even when a newer result was recorded first", () => {
    const status: BackupScheduleStatus = {
      lastTestRestoreNow: { annotationValue: 'latest@1', backupId: 'b1', jobName: 'db-restore-now-1' },
    };
    // The scheduled verify Job finished at 03:10 and was recorded first; the request's Job finished at 03:05.
    recordTestRestoreJob(
      status,
      job(SCHEDULE, {}, 'db-verify-1'),
      failedAt('2026-01-01T03:10:00Z'),
      () => {},
      req,
    );
    expect(status.lastTestRestoreNow?.result, 'another Job leaves the request alone').toBeUndefined();
    recordTestRestoreJob(
      status,
      job(SCHEDULE, { 'rollback.nxtnewday.io/backup-id': 'b1' }, 'db-restore-now-1'),
      { state: 'succeeded', finishedAt: '2026-01-01T03:05:00Z', message: 'ok', reason: 'Succeeded' },
      () => {},
      req,
    );
    expect(status.lastTestRestore?.jobName).toBe('db-verify-1');
    expect(status.lastTestRestoreNow).toMatchObject({
      annotationValue: 'latest@1',
      jobName: 'db-restore-now-1',
      result: 'Succeeded',
      finishedAt: '2026-01-01T03:05:00Z',
      durationSeconds: 0,
    });
    expect(status.lastTestRestoreNow?.message).toContain('test restore of b1 passed');
  });
});

describe("recordBackupJob and the backup-now request's own outcome", () => {
  it("records a failed backup-now Job's outcome on lastBackupNow, which a later Job's condition cannot hide", () => {
    const status: BackupScheduleStatus = {
      lastBackupNow: { annotationValue: 'x', jobName: 'db-backup-now-1' },
    };
    const spec = withBackupScheduleDefaults({
      database: { secretRef: { name: 's' } },
      storage: { persistentVolumeClaim: { claimName: 'c' } },
    });
    recordBackupJob(
      status,
      job(SCHEDULE, {}, 'db-backup-now-1'),
      {
        state: 'failed',
        finishedAt: '2026-01-01T00:01:00Z',
        reason: 'DatabaseUnreachable',
        message: 'refused',
      } as any,
      spec,
      () => {},
      { namespace: 'shop', name: 'db' },
    );
    expect(status.lastBackupNow).toMatchObject({
      jobName: 'db-backup-now-1',
      result: 'Failed',
      finishedAt: '2026-01-01T00:01:00Z',
    });
    expect(status.lastBackupNow?.message).toContain('backup Job db-backup-now-1 failed: DatabaseUnreachable');
  });
});

describe('wholeSeconds', () => {
  it('rounds, and clamps what the CRD integer could not hold', () => {
    expect(wholeSeconds(1.6)).toBe(2);
    expect(wholeSeconds(-3)).toBe(0);
    expect(wholeSeconds(1e300)).toBe(MAX_DURATION_SECONDS);
    expect(wholeSeconds(JSON.parse('1e309'))).toBe(MAX_DURATION_SECONDS);
    expect(JSON.stringify(wholeSeconds(1e300))).not.toContain('e');
  });
});
