import type { BackupScheduleSpec, BackupScheduleStatus } from '../api/v1alpha1/backupschedule.js';
import { s3Url } from '../backup/storage-location.js';

type Backup = NonNullable<BackupScheduleStatus['backups']>[number];
export type BackupSelector = { latestVerified?: true; id?: string; before?: string };

/**
 * A backup named by id that the schedule has not recorded, taken from its S3 prefix: allowed only when the
 * schedule's spec.storage.s3.foreignCluster lets it read another cluster's prefix (disaster recovery on a
 * fresh cluster, whose schedule has recorded nothing). Nothing here has seen the backup: the plan's verify
 * Job is the authority (it reads the manifest, re-hashes the dump, and enforces the prefix's owner and
 * foreignCluster) before anything is restored.
 */
export interface PrefixBackup {
  id: string;
  /** `s3://bucket/prefix`. */
  location: string;
  /** For status and the dry-run report: where the backup comes from and who checks it. */
  message: string;
}

export type BackupChoice =
  | { backup: Backup; fromPrefix?: undefined }
  | { fromPrefix: PrefixBackup; backup?: undefined }
  | { reason: string; message: string; backup?: undefined; fromPrefix?: undefined };

/**
 * The schedule's foreignCluster setting when it lets this cluster read (restore from) the prefix. Never when
 * foreignCluster names this cluster's own id (`ownClusterId`): then the prefix is this cluster's, and a backup
 * its schedule has not recorded is no disaster-recovery backup to take on trust.
 */
function readableForeignPrefix(storage: BackupScheduleSpec['storage'] | undefined, ownClusterId?: string) {
  const s3 = storage?.s3;
  const fc = s3?.foreignCluster;
  if (!s3 || !fc || (fc.allow !== 'Restore' && fc.allow !== 'TakeOver')) return undefined;
  if (ownClusterId !== undefined && fc.clusterId === ownClusterId) return undefined;
  return { location: s3Url(s3), clusterId: fc.clusterId, allow: fc.allow };
}

/** What a BackupNotFound says about the prefix: how to restore from it, or that naming the id does. */
function prefixHint(storage: BackupScheduleSpec['storage'] | undefined, ownClusterId?: string): string {
  const s3 = storage?.s3;
  if (!s3) return '';
  if (s3.foreignCluster && ownClusterId !== undefined && s3.foreignCluster.clusterId === ownClusterId)
    return `; spec.storage.s3.foreignCluster.clusterId is this cluster's own id (${ownClusterId}), so backups in ${s3Url(s3)} this schedule has not recorded are not restored`;
  if (readableForeignPrefix(storage, ownClusterId))
    return `; a backup in ${s3Url(s3)} that the schedule has not recorded (another cluster's) is restored when named by id (spec.targets.database.backup.id)`;
  return `; if the backup is in ${s3Url(s3)} and was written by another cluster (disaster recovery), set spec.storage.s3.foreignCluster {clusterId: <that cluster's id>, allow: Restore} on the BackupSchedule and name the backup by id`;
}

/**
 * Which backup a plan restores, from the BackupSchedule's recorded backups: the newest verified one, a named
 * one (which must be verified), or the newest verified one finished before a time. A plan's safety backup
 * (purpose `safety`) holds the state a restore was meant to leave behind, so only a plan that names it by
 * id gets it. A named id the schedule has not recorded comes from the prefix (`fromPrefix`) when the
 * schedule's `storage` has foreignCluster Restore or TakeOver for another cluster than `ownClusterId` (the
 * operator's cluster id, config.clusterId); otherwise it is BackupNotFound. Pure.
 */
export function selectBackup(
  status: BackupScheduleStatus | undefined,
  sel: BackupSelector,
  storage?: BackupScheduleSpec['storage'],
  ownClusterId?: string,
): BackupChoice {
  const all = [...(status?.backups ?? [])].sort(
    (a, b) => b.finishedAt.localeCompare(a.finishedAt) || b.id.localeCompare(a.id),
  );
  const verified = all.filter((b) => b.verified === true && b.purpose !== 'safety');
  if (sel.id !== undefined) {
    const b = all.find((x) => x.id === sel.id);
    const foreign = readableForeignPrefix(storage, ownClusterId);
    if (!b && foreign)
      return {
        fromPrefix: {
          id: sel.id,
          location: foreign.location,
          message: `backup ${sel.id} is not among the schedule's recorded backups: taken from the prefix ${foreign.location} (spec.storage.s3.foreignCluster: cluster ${foreign.clusterId}, allow ${foreign.allow}); the verify Job checks it against its manifest and the prefix's owner before anything is restored`,
        },
      };
    if (!b) {
      const known =
        all
          .slice(0, 5)
          .map((x) => x.id)
          .join(', ') || 'none';
      return {
        reason: 'BackupNotFound',
        message: `backup "${sel.id}" is not among the schedule's recorded backups (newest: ${known})${prefixHint(storage, ownClusterId)}`,
      };
    }
    if (b.verified !== true)
      return {
        reason: 'BackupNotVerified',
        message: `backup "${sel.id}" did not pass verification and will not be restored`,
      };
    return { backup: b };
  }
  if (sel.before !== undefined) {
    const limit = Date.parse(sel.before);
    const b = verified.find((x) => Date.parse(x.finishedAt) < limit);
    if (!b)
      return {
        reason: 'BackupNotFound',
        message: `no verified backup finished before ${sel.before}${safetyNote(all)}${prefixHint(storage, ownClusterId)}`,
      };
    return { backup: b };
  }
  const b = verified[0];
  if (!b)
    return {
      reason: 'BackupNotFound',
      message: `the schedule has no verified backup yet${safetyNote(all)}${prefixHint(storage, ownClusterId)}`,
    };
  return { backup: b };
}

/** Says why safety backups were passed over, when there are any. */
function safetyNote(all: readonly Backup[]): string {
  const n = all.filter((b) => b.purpose === 'safety').length;
  return n ? ` (${n} safety backup(s) of earlier plans are only restored when named by id)` : '';
}
