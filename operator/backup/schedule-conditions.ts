import { ConditionType } from '../api/v1alpha1/common.js';
import type { ConditionInput } from '../kube/conditions.js';

// Every condition a BackupSchedule reports, in one place: the phases decide *what* state the schedule is in,
// these functions turn that state into its kstatus triple (Ready, Stalled, Reconciling) plus the domain
// conditions, so no phase writes its own copy of the triple.

export type ScheduleCondition = Omit<ConditionInput, 'observedGeneration'>;

/**
 * The schedule cannot work as specified. `stalled`: retrying cannot help until the spec (or another object
 * the user owns) changes; otherwise the operator looks again on its own.
 */
export function notReady(reason: string, message: string, stalled: boolean): ScheduleCondition[] {
  return [
    { type: ConditionType.Ready, status: 'False', reason, message },
    {
      type: ConditionType.Stalled,
      status: stalled ? 'True' : 'False',
      reason,
      message: stalled ? message : '',
    },
    { type: ConditionType.Reconciling, status: 'False', reason, message: '' },
  ];
}

/** Backups are scheduled (or deliberately suspended). */
export function ready(suspended: boolean, message: string): ScheduleCondition[] {
  return [
    { type: ConditionType.Ready, status: 'True', reason: suspended ? 'Suspended' : 'Scheduled', message },
    { type: ConditionType.Reconciling, status: 'False', reason: 'Reconciled', message: '' },
    { type: ConditionType.Stalled, status: 'False', reason: 'Reconciled', message: '' },
  ];
}

/**
 * The storage probe of a new or changed S3 location runs (StorageReady Unknown): InProgress in kstatus terms
 * (Reconciling=True), and Ready waits for its answer, so nothing that waits for a working schedule goes ahead
 * on a location nobody has checked yet.
 */
export function checkingStorage(message: string): ScheduleCondition[] {
  return [
    { type: ConditionType.Ready, status: 'False', reason: 'StorageCheckInProgress', message },
    { type: ConditionType.Reconciling, status: 'True', reason: 'StorageCheckInProgress', message },
    { type: ConditionType.Stalled, status: 'False', reason: 'StorageCheckInProgress', message: '' },
  ];
}

/** RPOMet from an evaluation of the newest good backup against the objective. */
export function rpoMet(rpo: { status: 'True' | 'False' | 'Unknown'; reason: string; message: string }) {
  return { type: ConditionType.RPOMet, ...rpo } satisfies ScheduleCondition;
}

/** The last backup (scheduled or emergency) did not produce a good backup. */
export function lastBackupFailed(reason: string, message: string) {
  return {
    type: ConditionType.LastBackupSucceeded,
    status: 'False',
    reason,
    message,
  } satisfies ScheduleCondition;
}

/**
 * The pre-deployment gate of a backup-now value (GitOps: a commit changes the value next to the app's new
 * release). Until the backup of the current value is recorded the schedule reads InProgress in kstatus terms:
 * Reconciling=True, reason BackupInProgress (kstatus checks Reconciling before Ready), so Flux `wait`/`dependsOn`
 * and Argo CD sync waves hold what comes after it. Ready keeps saying whether the schedule itself works (it
 * does: a backup is running), so everything that waits for a working schedule is not held by a backup. A failed
 * backup reads Failed: Ready=False and Stalled=True, reason BackupNowFailed, until a new value asks again.
 * `handled` is the annotation value as status stores it (bounded). Undefined: no gate (no value, or its backup
 * succeeded). Applied over the conditions of a working schedule.
 */
export function backupNowGate(
  handled: string | undefined,
  last: { annotationValue: string; jobName?: string; result?: 'Succeeded' | 'Failed' } | undefined,
): ScheduleCondition[] | undefined {
  if (!handled) return undefined;
  const request = `backup-now=${handled.length > 64 ? `${handled.slice(0, 64)}…` : handled}`;
  if (last?.annotationValue !== handled || !last.result) {
    const message =
      last?.annotationValue === handled && last.jobName
        ? `${request}: waiting for backup Job ${last.jobName} to be recorded`
        : `${request}: starting the backup`;
    return [
      { type: ConditionType.Reconciling, status: 'True', reason: 'BackupInProgress', message },
      { type: ConditionType.Stalled, status: 'False', reason: 'BackupInProgress', message: '' },
    ];
  }
  if (last.result === 'Failed') {
    const message = `${request}: the backup failed${last.jobName ? ` (Job ${last.jobName})` : ''}; set a new value to try again`;
    return [
      { type: ConditionType.Ready, status: 'False', reason: 'BackupNowFailed', message },
      { type: ConditionType.Reconciling, status: 'False', reason: 'BackupNowFailed', message: '' },
      { type: ConditionType.Stalled, status: 'True', reason: 'BackupNowFailed', message },
    ];
  }
  return undefined;
}
