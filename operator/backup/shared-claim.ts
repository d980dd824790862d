import type { Condition, ConditionInput } from '../kube/conditions.js';
import type { KubeObject } from '../kube/rest.js';
import { createdClaimName } from './cronjob.js';
import { s3Url } from './storage-location.js';

/** True while another BackupSchedule in the namespace writes to the same claim. */
export const STORAGE_SHARED_CONDITION = 'StorageShared';

/**
 * The claim a BackupSchedule writes to, from its raw object, or its `s3://bucket/prefix` (schedules on the
 * same bucket and prefix share it as they would a claim); undefined when the spec names none.
 */
export function claimOf(schedule: KubeObject): string | undefined {
  const storage = (
    schedule as {
      spec?: { storage?: { persistentVolumeClaim?: Record<string, unknown>; s3?: Record<string, unknown> } };
    }
  ).spec?.storage;
  const s3 = storage?.s3;
  if (typeof s3?.bucket === 'string')
    return s3Url({ bucket: s3.bucket, ...(typeof s3.prefix === 'string' ? { prefix: s3.prefix } : {}) });
  const pvc = storage?.persistentVolumeClaim;
  if (typeof pvc?.claimName === 'string') return pvc.claimName;
  if (pvc?.create) return createdClaimName(schedule.metadata.name);
  return undefined;
}

/** The other live schedules (same namespace) that write to `claim`, sorted by name. Pure. */
export function schedulesSharingClaim(
  self: string,
  claim: string,
  schedulesInNamespace: readonly KubeObject[],
): string[] {
  return schedulesInNamespace
    .filter((s) => s.metadata.name !== self && !s.metadata.deletionTimestamp && claimOf(s) === claim)
    .map((s) => s.metadata.name)
    .sort();
}

/**
 * The schedules whose StorageShared condition a change of `changed` (created, moved to another claim,
 * deleted) can alter: those on its claim now, and those that report a shared claim now (they may have
 * shared its old claim; the watch shows only the new object). Pure.
 */
export function schedulesToRecheck(
  changed: KubeObject,
  schedulesInNamespace: readonly KubeObject[],
): string[] {
  const claim = claimOf(changed);
  const sharing = claim ? schedulesSharingClaim(changed.metadata.name, claim, schedulesInNamespace) : [];
  const reporting = schedulesInNamespace
    .filter(
      (s) =>
        s.metadata.name !== changed.metadata.name &&
        (s.status?.conditions ?? []).some(
          (c: Condition) => c.type === STORAGE_SHARED_CONDITION && c.status === 'True',
        ),
    )
    .map((s) => s.metadata.name);
  return [...new Set([...sharing, ...reporting])].sort();
}

/**
 * The StorageShared condition of schedule `self` and, when the set of sharers changed to a non-empty one, a
 * Warning event naming them. Each schedule prunes only the backups it wrote itself, so sharing is safe
 * for retention, but `--id latest` test restores and the volume's size see every schedule's backups.
 */
export function sharedClaimReport(
  self: string,
  claim: string,
  schedulesInNamespace: readonly KubeObject[],
  previous: readonly Condition[] | undefined,
): {
  condition: Omit<ConditionInput, 'observedGeneration'>;
  event?: ['Warning', string, string];
} {
  const others = schedulesSharingClaim(self, claim, schedulesInNamespace);
  if (!others.length) {
    return {
      condition: {
        type: STORAGE_SHARED_CONDITION,
        status: 'False',
        reason: 'ClaimExclusive',
        message: `no other BackupSchedule writes to claim ${claim}`,
      },
    };
  }
  const listed =
    others.slice(0, 10).join(', ') + (others.length > 10 ? ` and ${others.length - 10} more` : '');
  const message =
    `claim ${claim} is also written by BackupSchedule(s) ${listed}; each schedule prunes only its own ` +
    `backups, but --id latest test restores and the volume's size cover all of them: give each schedule its own claim`;
  const before = previous?.find((c) => c.type === STORAGE_SHARED_CONDITION);
  const changed = before?.status !== 'True' || before.message !== message;
  return {
    condition: { type: STORAGE_SHARED_CONDITION, status: 'True', reason: 'ClaimShared', message },
    ...(changed ? { event: ['Warning', 'ClaimShared', message] as ['Warning', string, string] } : {}),
  };
}
