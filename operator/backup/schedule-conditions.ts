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
