import type { BackupScheduleStatus } from '../api/v1alpha1/backupschedule.js';

type Backup = NonNullable<BackupScheduleStatus['backups']>[number];
export type BackupSelector = { latestVerified?: true; id?: string; before?: string };

/**
 * Which backup a plan restores, from the BackupSchedule's recorded backups: the newest verified one, a named
 * one (which must be verified), or the newest verified one finished before a time. A plan's safety backup
 * (purpose `safety`) holds the state a restore was meant to leave behind, so only a plan that names it by
 * id gets it. Pure.
 */
export function selectBackup(
  status: BackupScheduleStatus | undefined,
  sel: BackupSelector,
): { backup: Backup } | { reason: string; message: string } {
  const all = [...(status?.backups ?? [])].sort(
    (a, b) => b.finishedAt.localeCompare(a.finishedAt) || b.id.localeCompare(a.id),
  );
  const verified = all.filter((b) => b.verified === true && b.purpose !== 'safety');
  if (sel.id !== undefined) {
    const b = all.find((x) => x.id === sel.id);
    if (!b) {
      const known =
        all
          .slice(0, 5)
          .map((x) => x.id)
          .join(', ') || 'none';
      return {
        reason: 'BackupNotFound',
        message: `backup "${sel.id}" is not among the schedule's recorded backups (newest: ${known})`,
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
        message: `no verified backup finished before ${sel.before}${safetyNote(all)}`,
      };
    return { backup: b };
  }
  const b = verified[0];
  if (!b)
    return { reason: 'BackupNotFound', message: `the schedule has no verified backup yet${safetyNote(all)}` };
  return { backup: b };
}

/** Says why safety backups were passed over, when there are any. */
function safetyNote(all: readonly Backup[]): string {
  const n = all.filter((b) => b.purpose === 'safety').length;
  return n ? ` (${n} safety backup(s) of earlier plans are only restored when named by id)` : '';
}
