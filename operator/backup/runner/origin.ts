import type { BackupManifest } from './manifest.js';
import { RunnerFailure } from './failure.js';

/** Who writes a backup: recorded in its manifest, and what decides whether an existing one may be reused. */
export type BackupOrigin = NonNullable<BackupManifest['origin']>;
export type BackupPurpose = BackupOrigin['purpose'];
export const BACKUP_PURPOSES: readonly BackupPurpose[] = ['scheduled', 'emergency', 'safety'];

/** Environment variables the pod builders set on a runner container (operator/backup/pod-builders.ts). */
export const OriginEnv = {
  purpose: 'NXT_BACKUP_PURPOSE',
  /** From the downward API: the pod's (so the schedule's) namespace. */
  namespace: 'NXT_NAMESPACE',
  scheduleName: 'NXT_SCHEDULE_NAME',
  scheduleUid: 'NXT_SCHEDULE_UID',
  planName: 'NXT_PLAN_NAME',
  planUid: 'NXT_PLAN_UID',
  /** From the downward API: the Job controller's labels on the pod. */
  jobName: 'NXT_JOB_NAME',
  jobUid: 'NXT_JOB_UID',
} as const;

/**
 * The origin a backup run writes into its manifest, from the environment; undefined without
 * NXT_BACKUP_PURPOSE (a runner started by hand, which then never reuses an existing backup). An empty value
 * counts as unset: the downward API yields "" for a missing label.
 */
export function originFromEnv(env: NodeJS.ProcessEnv): BackupOrigin | undefined {
  const get = (k: string) => env[k] || undefined;
  const purpose = get(OriginEnv.purpose);
  if (purpose === undefined) return undefined;
  if (!(BACKUP_PURPOSES as readonly string[]).includes(purpose)) {
    throw new RunnerFailure(
      'InvalidArguments',
      `${OriginEnv.purpose} must be one of ${BACKUP_PURPOSES.join(', ')}; got ${JSON.stringify(purpose.slice(0, 40))}`,
    );
  }
  const pair = (name?: string, uid?: string) => (name && uid ? { name, uid } : undefined);
  const schedule = pair(get(OriginEnv.scheduleName), get(OriginEnv.scheduleUid));
  const plan = pair(get(OriginEnv.planName), get(OriginEnv.planUid));
  const jobName = get(OriginEnv.jobName);
  const jobUid = get(OriginEnv.jobUid);
  const namespace = get(OriginEnv.namespace);
  return {
    purpose: purpose as BackupPurpose,
    ...(namespace ? { namespace } : {}),
    ...(schedule ? { schedule } : {}),
    ...(plan ? { plan } : {}),
    ...(jobName ? { job: { name: jobName, ...(jobUid ? { uid: jobUid } : {}) } } : {}),
  };
}

/**
 * True when `ours` provably wrote `theirs`: the same Job (by UID: a retried pod of one Job), or, for a plan's
 * safety backup, the same plan (by UID: the plan re-created its safety Job). Names alone never match: a
 * plan or Job re-created under the same name is someone else.
 */
export function sameWriter(theirs: BackupOrigin | undefined, ours: BackupOrigin | undefined): boolean {
  if (!theirs || !ours) return false;
  if (ours.job?.uid && theirs.job?.uid === ours.job.uid) return true;
  return (
    ours.purpose === 'safety' &&
    theirs.purpose === 'safety' &&
    !!ours.plan?.uid &&
    theirs.plan?.uid === ours.plan.uid
  );
}

/** "safety backup of RollbackPlan x (uid …), Job x-safety (uid …)", for messages. */
export function describeOrigin(o: BackupOrigin | undefined): string {
  if (!o) return 'an unknown writer (the manifest records no origin)';
  const parts = [`${o.purpose} backup`];
  if (o.plan) parts.push(`of RollbackPlan "${o.plan.name}" (uid ${o.plan.uid})`);
  if (o.schedule) parts.push(`of BackupSchedule "${o.schedule.name}" (uid ${o.schedule.uid})`);
  if (o.job) parts.push(`by Job "${o.job.name}"${o.job.uid ? ` (uid ${o.job.uid})` : ''}`);
  return parts.join(' ');
}

export type ExistingBackupDecision =
  | { action: 'reuse' }
  /** Our own earlier attempt that did not finish verified: remove it and dump again. */
  | { action: 'redo' }
  | { action: 'conflict'; message: string };

/**
 * What a backup run does about a manifest already stored under its id. Only a backup this run's own Job
 * (or, for a safety backup, its own plan) wrote is reused or redone; anything else is another backup that
 * is never adopted, overwritten or deleted. Pure.
 */
export function decideExistingBackup(
  existing: BackupManifest,
  dumpPresent: boolean,
  ours: BackupOrigin | undefined,
): ExistingBackupDecision {
  if (!sameWriter(existing.origin, ours)) {
    return {
      action: 'conflict',
      message:
        `backup id ${existing.id} is taken by a backup finished at ${existing.finishedAt} by ` +
        `${describeOrigin(existing.origin)}, not by this ${ours ? `run (${describeOrigin(ours)})` : 'run (no origin: NXT_BACKUP_PURPOSE is unset)'}; ` +
        'it is neither reused nor overwritten. Use another id, or remove that backup if it is not wanted',
    };
  }
  return existing.verified && dumpPresent ? { action: 'reuse' } : { action: 'redo' };
}
