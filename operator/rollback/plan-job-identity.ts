// Which Job a plan may believe. A runner Job has a deterministic name (`<plan>-verify`, `-safety`, `-restore`),
// but a name proves nothing: a deleted plan's Jobs outlive it until garbage collection, and a plan re-created
// under the same name would read their results as its own. Like CloudNativePG's check of its backup
// executor, a Job is the plan's only when its controller owner reference carries the plan's UID, and once
// the plan has recorded a Job's UID in status, only that very Job. Pure; the acting is in runner-jobs.ts.
import { ROLLBACK_PLAN_KIND } from '../api/v1alpha1/rollbackplan.js';
import { controllerOf } from '../kube/objects.js';
import type { KubeObject } from '../kube/rest.js';
import type { StepOutcome } from './plan-run.js';

export type PlanJobPurpose = 'verify' | 'safety' | 'restore';

export interface PlanIdentity {
  name: string;
  uid: string;
}

export type PlanJobVerdict =
  | { kind: 'absent' }
  | { kind: 'ours'; job: KubeObject }
  /** Not controlled by this plan. `goingAway`: being deleted, or owned by a deleted plan of the same name. */
  | { kind: 'foreign'; job: KubeObject; goingAway: boolean; message: string }
  /** Controlled by this plan, but not the Job whose UID the plan recorded: its own Job was deleted. */
  | { kind: 'replaced'; job: KubeObject; message: string };

export function judgePlanJob(
  job: KubeObject | undefined,
  plan: PlanIdentity,
  recordedUid?: string,
): PlanJobVerdict {
  if (!job) return { kind: 'absent' };
  const name = job.metadata.name;
  const owner = controllerOf(job);
  if (owner?.uid !== plan.uid) {
    const earlierPlan = owner?.kind === ROLLBACK_PLAN_KIND && owner.name === plan.name;
    const deleting = !!job.metadata.deletionTimestamp;
    const whose = earlierPlan
      ? `an earlier RollbackPlan "${plan.name}" (uid ${owner.uid}), deleted and awaiting garbage collection`
      : owner
        ? `${owner.kind} "${owner.name}" (uid ${owner.uid})`
        : 'no controller';
    return {
      kind: 'foreign',
      job,
      goingAway: earlierPlan || deleting,
      message: `Job "${name}" belongs to ${whose}, not to this plan (uid ${plan.uid})${deleting ? ' and is being deleted' : ''}`,
    };
  }
  if (recordedUid && job.metadata.uid !== recordedUid) {
    return {
      kind: 'replaced',
      job,
      message: `Job "${name}" has uid ${job.metadata.uid}, not the uid ${recordedUid} this plan recorded`,
    };
  }
  return { kind: 'ours', job };
}

/**
 * Someone else's Job holds the name: wait (the condition names it) while it is on its way out, for at most
 * `timeoutMs` from `waitingSince`; fail at once when it will not go away by itself. Its results are never read.
 */
export function foreignJobOutcome(
  verdict: Extract<PlanJobVerdict, { kind: 'foreign' }>,
  waitingSince: string | undefined,
  now: Date,
  timeoutMs: number,
): Extract<StepOutcome, { kind: 'wait' | 'failed' }> {
  const since = waitingSince ? Date.parse(waitingSince) : now.getTime();
  const remaining = since + timeoutMs - now.getTime();
  if (verdict.goingAway && remaining > 0) {
    return {
      kind: 'wait',
      reason: 'JobNameTaken',
      message: `${verdict.message}; its results are not this plan's, so the plan waits (at most ${Math.round(timeoutMs / 1000)}s) for it to be deleted before creating its own`,
      requeueAfterMs: Math.min(5_000, Math.max(remaining, 100)),
    };
  }
  return {
    kind: 'failed',
    reason: 'JobNameConflict',
    message: verdict.goingAway
      ? `${verdict.message}; it was still there after ${Math.round(timeoutMs / 1000)}s, so nothing was done. Delete the Job (or remove what holds it, e.g. a finalizer) and create a new plan`
      : `${verdict.message}; it will not go away by itself, so nothing was done. Delete it, or use another plan name`,
  };
}

const LOST: Record<PlanJobPurpose, { reason: string; what: string; consequence: string }> = {
  verify: {
    reason: 'VerifyJobLost',
    what: 'verify Job',
    consequence: 'nothing was changed; create a new plan to try again',
  },
  safety: {
    reason: 'SafetyBackupJobLost',
    what: 'safety-backup Job',
    consequence: 'nothing was restored; create a new plan to try again',
  },
  restore: {
    reason: 'RestoreJobLost',
    what: 'restore Job',
    consequence:
      'the restore may have run partly or fully, so check the database (and the safety backup, if one was taken) before anything else. This plan never restores again: create a new plan to restore',
  },
};

/**
 * The plan's own Job is gone (or replaced) before its result was recorded. It is never re-created: for a
 * restore that could run twice and overwrite what was written after the first run.
 */
export function lostJobOutcome(
  purpose: PlanJobPurpose,
  name: string,
  recordedUid: string,
  detail?: string,
): Extract<StepOutcome, { kind: 'failed' }> {
  const l = LOST[purpose];
  return {
    kind: 'failed',
    reason: l.reason,
    message: `the ${l.what} "${name}" (uid ${recordedUid}) is gone before its outcome was recorded${detail ? ` (${detail})` : ''}; ${l.consequence}`,
  };
}
