// Reading a BackupSchedule's status for the answer to one request of the CLI (backup-now, test-restore-now):
// pure functions of the object, so each wait is a watch plus one of these.
import type { BackupScheduleStatus } from '../api/v1alpha1/backupschedule.js';
import { Annotation } from '../api/v1alpha1/common.js';
import type { KubeObject } from '../kube/rest.js';
import { conditionOf } from './conditions.js';

type Backup = NonNullable<BackupScheduleStatus['backups']>[number];

/**
 * Another request replaced ours (a second `backup now` or `backups verify` set the annotation) before the
 * operator handled ours: the operator only ever sees the newest value, so ours will never be answered. The
 * CLI then stops (exit 1, "superseded by <value>") rather than wait for its timeout; the newer request's own
 * command follows that one.
 */
export type Superseded = { state: 'superseded'; by: string };

/**
 * `value` is no longer the annotation's value and the operator has not handled it (a value it handled stays in
 * status.last*Now, so the answer is still read there). A removed annotation is not a newer request: keep waiting.
 */
export function supersededBy(
  schedule: KubeObject,
  key: string,
  value: string,
  handled: string | undefined,
): Superseded | undefined {
  const current = schedule.metadata.annotations?.[key];
  if (handled === value || current === undefined || current === value) return undefined;
  return { state: 'superseded', by: current };
}

/**
 * Whether a condition's message and a status field's are the same text: each is cut to its own limit (the
 * condition's 32768, the field's 1024, ending in "..."), so a long message matches by its common start.
 */
export function sameMessage(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  if (a === b) return true;
  const cut = (s: string) => s.replace(/(\.\.\.|…)$/, '');
  const [x, y] = [cut(a), cut(b)];
  const shorter = x.length <= y.length ? x : y;
  const longer = shorter === x ? y : x;
  return shorter.length >= 64 && longer.startsWith(shorter);
}

export type BackupNowState =
  | { state: 'waiting'; jobName?: string; note?: string }
  | Superseded
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
  const superseded = supersededBy(schedule, Annotation.BackupNow, value, handled?.annotationValue);
  if (superseded) return superseded;
  if (handled?.annotationValue !== value) return { state: 'waiting' };
  const jobName = handled.jobName;
  if (!jobName) {
    // Not started: the operator says why on lastBackupNow (reason, message); an older operator only in the
    // condition.
    if (handled.reason || handled.message)
      return {
        state: 'failed',
        reason: handled.reason ?? 'NotStarted',
        message: handled.message ?? 'the operator did not start a Job',
      };
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
  // The operator keeps the request's own outcome on lastBackupNow: LastBackupSucceeded may already show a
  // later Job's result, and retention may have dropped the backup from status.backups. Succeeded means a
  // verified backup (an unverified one is Failed there, with "NOT verified" in its message).
  if (handled.result === 'Failed')
    return {
      state: 'failed',
      jobName,
      reason:
        cond?.status === 'False' && sameMessage(cond.message, handled.message)
          ? (cond.reason ?? 'Failed')
          : 'Failed',
      message: handled.message ?? `backup Job ${jobName} failed`,
    };
  if (handled.result === 'Succeeded' && handled.finishedAt)
    return {
      state: 'recorded',
      jobName,
      backup: { id: jobName, finishedAt: handled.finishedAt, verified: true },
    };
  if (cond?.status === 'False' && cond.message?.includes(`backup Job ${jobName} failed`))
    return { state: 'failed', jobName, reason: cond.reason ?? 'Failed', message: cond.message };
  if (cond?.status === 'False' && cond.message?.includes(jobName))
    return { state: 'waiting', jobName, note: `${cond.reason}: ${cond.message}` };
  return { state: 'waiting', jobName };
}

export type TestRestoreState =
  | { state: 'waiting'; jobName?: string; note?: string }
  | Superseded
  | { state: 'refused'; reason: string; message: string }
  | { state: 'finished'; result: NonNullable<BackupScheduleStatus['lastTestRestore']> };

type TestRestoreResult = NonNullable<BackupScheduleStatus['lastTestRestore']>;

/**
 * The outcome of the request's own Job as the operator records it on status.lastTestRestoreNow (result,
 * finishedAt): lastTestRestore holds only the newest result of any Job, so a request's Job that finished
 * before a scheduled one but was recorded after it never shows there.
 */
export function ownTestRestoreResult(
  handled: BackupScheduleStatus['lastTestRestoreNow'],
  backupId?: string,
): TestRestoreResult | undefined {
  if (!handled?.jobName || !handled.result || !handled.finishedAt) return undefined;
  return {
    backupId: handled.backupId ?? backupId ?? 'unknown',
    finishedAt: handled.finishedAt,
    ...(handled.durationSeconds !== undefined ? { durationSeconds: handled.durationSeconds } : {}),
    result: handled.result,
    ...(handled.message !== undefined ? { message: handled.message } : {}),
    jobName: handled.jobName,
  };
}

/**
 * Where the test-restore-now request `value` for `backupId` stands: refused (status.lastTestRestoreNow has a
 * message and no Job; its reason says why), or finished once status.lastTestRestoreNow carries the result of
 * the request's own Job (result, finishedAt), or, from an operator that does not record it there,
 * status.lastTestRestore is that Job's result (lastTestRestore.jobName === lastTestRestoreNow.jobName). An operator that does not record
 * jobName yet is matched as before: a result for that backup finished at or after `requestedAt` (whole seconds).
 */
export function testRestoreState(
  schedule: KubeObject,
  value: string,
  backupId: string,
  requestedAt: Date,
): TestRestoreState {
  const status: BackupScheduleStatus = schedule.status ?? {};
  const handled = status.lastTestRestoreNow;
  const superseded = supersededBy(schedule, Annotation.TestRestoreNow, value, handled?.annotationValue);
  if (superseded) return superseded;
  if (handled?.annotationValue !== value) return { state: 'waiting' };
  if (!handled.jobName) {
    const cond = conditionOf(schedule, 'LastTestRestoreSucceeded');
    const fromCondition =
      cond?.status === 'False' && sameMessage(cond.message, handled.message) ? cond.reason : undefined;
    return {
      state: 'refused',
      reason: handled.reason ?? fromCondition ?? 'Refused',
      message: handled.message ?? 'the operator did not start a test restore',
    };
  }
  const own = ownTestRestoreResult(handled, backupId);
  if (own) return { state: 'finished', result: own };
  const last = status.lastTestRestore;
  const since = Math.floor(requestedAt.getTime() / 1000) * 1000;
  const ours =
    last?.jobName !== undefined
      ? last.jobName === handled.jobName
      : !!last && last.backupId === backupId && Date.parse(last.finishedAt) >= since;
  if (last && ours) return { state: 'finished', result: last };
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
