// Reading a BackupSchedule's status for the answer to one request of the CLI (backup-now, test-restore-now):
// pure functions of the object, so each wait is a watch plus one of these.
import type { BackupScheduleStatus } from '../api/v1alpha1/backupschedule.js';
import type { KubeObject } from '../kube/rest.js';
import { conditionOf } from './conditions.js';

type Backup = NonNullable<BackupScheduleStatus['backups']>[number];

export type BackupNowState =
  | { state: 'waiting'; jobName?: string; note?: string }
  | { state: 'recorded'; jobName: string; backup: Backup }
  | { state: 'failed'; jobName?: string; reason: string; message: string };

/**
 * Where the backup-now request `value` stands. The operator names the Job in status.lastBackupNow; the runner
 * uses the Job's name as the backup id, so the backup is ours when status.backups (or lastSuccessfulBackup)
 * has an entry with that id; a recorded failure is LastBackupSucceeded=False whose message names the Job as
 * failed. A Job that cannot start yet is reported (note) but is not final: it may still run.
 */
export function backupNowState(schedule: KubeObject, value: string): BackupNowState {
  const status: BackupScheduleStatus = schedule.status ?? {};
  const handled = status.lastBackupNow;
  const cond = conditionOf(schedule, 'LastBackupSucceeded');
  if (handled?.annotationValue !== value) return { state: 'waiting' };
  const jobName = handled.jobName;
  if (!jobName) {
    return {
      state: 'failed',
      reason: cond?.status === 'False' ? (cond.reason ?? 'Failed') : 'NotStarted',
      message: cond?.status === 'False' ? (cond.message ?? '') : 'the operator did not start a Job',
    };
  }
  const backup =
    (status.backups ?? []).find((b) => b.id === jobName) ??
    (status.lastSuccessfulBackup?.id === jobName ? status.lastSuccessfulBackup : undefined);
  if (backup) return { state: 'recorded', jobName, backup };
  if (cond?.status === 'False' && cond.message?.includes(`backup Job ${jobName} failed`))
    return { state: 'failed', jobName, reason: cond.reason ?? 'Failed', message: cond.message };
  if (cond?.status === 'False' && cond.message?.includes(jobName))
    return { state: 'waiting', jobName, note: `${cond.reason}: ${cond.message}` };
  return { state: 'waiting', jobName };
}

export type TestRestoreState =
  | { state: 'waiting'; jobName?: string; note?: string }
  | { state: 'refused'; reason: string; message: string }
  | { state: 'finished'; result: NonNullable<BackupScheduleStatus['lastTestRestore']> };

/**
 * Where the test-restore-now request `value` for `backupId` stands: refused (status.lastTestRestoreNow has a
 * message and no Job), or finished once status.lastTestRestore is for that backup and finished at or after
 * `requestedAt` (whole seconds, the precision of finishedAt).
 */
export function testRestoreState(
  schedule: KubeObject,
  value: string,
  backupId: string,
  requestedAt: Date,
): TestRestoreState {
  const status: BackupScheduleStatus = schedule.status ?? {};
  const handled = status.lastTestRestoreNow;
  if (handled?.annotationValue !== value) return { state: 'waiting' };
  if (!handled.jobName) {
    const cond = conditionOf(schedule, 'LastTestRestoreSucceeded');
    return {
      state: 'refused',
      reason: cond?.status === 'False' ? (cond.reason ?? 'Refused') : 'Refused',
      message: handled.message ?? 'the operator did not start a test restore',
    };
  }
  const last = status.lastTestRestore;
  const since = Math.floor(requestedAt.getTime() / 1000) * 1000;
  if (last && last.backupId === backupId && Date.parse(last.finishedAt) >= since)
    return { state: 'finished', result: last };
  const cond = conditionOf(schedule, 'LastTestRestoreSucceeded');
  if (cond?.status === 'False' && cond.message?.includes(handled.jobName))
    return { state: 'waiting', jobName: handled.jobName, note: `${cond.reason}: ${cond.message}` };
  return { state: 'waiting', jobName: handled.jobName };
}

/** Every recorded backup of the schedules, newest first. */
export function listBackups(schedules: KubeObject[]): (Backup & { schedule: string })[] {
  return schedules
    .flatMap((s) => ((s.status?.backups ?? []) as Backup[]).map((b) => ({ ...b, schedule: s.metadata.name })))
    .sort((a, b) => b.finishedAt.localeCompare(a.finishedAt) || b.id.localeCompare(a.id));
}
