import type { BackupScheduleStatus } from '../api/v1alpha1/backupschedule.js';

type Backup = NonNullable<BackupScheduleStatus['backups']>[number];

/**
 * What a test-restore-now value asks for: `latest` or a backup id, optionally followed by `@<anything>` so
 * the same backup can be asked for again with a new value.
 */
export function requestedBackup(value: string): string {
  const at = value.indexOf('@');
  return (at < 0 ? value : value.slice(0, at)).trim();
}

/**
 * The backup a test-restore-now value names, from the schedule's recorded backups: `latest` is the newest
 * verified backup that is not a plan's safety backup; an id must be recorded (verified or not: a test restore
 * of an unverified backup says why it is not good). Pure.
 */
export function chooseTestRestoreBackup(
  status: BackupScheduleStatus,
  value: string,
): { backup: Backup } | { reason: 'BackupNotFound'; message: string } {
  const wanted = requestedBackup(value);
  if (wanted === '' || wanted === 'latest') {
    const newest = [...(status.backups ?? [])]
      .filter((b) => b.verified === true && b.purpose !== 'safety')
      .sort((a, b) => b.finishedAt.localeCompare(a.finishedAt) || b.id.localeCompare(a.id))[0];
    return newest
      ? { backup: newest }
      : {
          reason: 'BackupNotFound',
          message: 'the schedule has no verified backup (other than safety backups) yet',
        };
  }
  const backup = (status.backups ?? []).find((b) => b.id === wanted);
  if (backup) return { backup };
  const newest =
    (status.backups ?? [])
      .slice(0, 5)
      .map((b) => b.id)
      .join(', ') || 'none';
  return {
    reason: 'BackupNotFound',
    message: `backup "${wanted.slice(0, 253)}" is not among the schedule's recorded backups (newest: ${newest})`,
  };
}
