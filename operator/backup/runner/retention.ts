export type BackupPurpose = 'scheduled' | 'emergency' | 'safety';

export interface RetentionCandidate {
  id: string;
  finishedAt: string | Date;
  verified: boolean;
  /** A plan's safety backup holds the pre-restore state: never the one a restore would use. */
  purpose?: BackupPurpose;
}

/** Each rule keeps backups; a backup is deleted only when no rule keeps it. */
export interface RetentionPolicy {
  /** The N newest backups. */
  keepLast?: number;
  /** The newest backup of each of the N most recent UTC days that have one. */
  keepDaily?: number;
  /** The newest backup of each of the N most recent ISO weeks (UTC) that have one. */
  keepWeekly?: number;
}

const utcDay = (d: Date) => d.toISOString().slice(0, 10);

/** ISO 8601 week, e.g. `2026-W01`: weeks start on Monday and belong to the year of their Thursday. */
export function isoWeek(d: Date): string {
  const mondayBased = (d.getUTCDay() + 6) % 7;
  const thursday = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - mondayBased + 3));
  const year = thursday.getUTCFullYear();
  const week = Math.floor((thursday.getTime() - Date.UTC(year, 0, 1)) / 86_400_000 / 7) + 1;
  return `${year}-W${String(week).padStart(2, '0')}`;
}

function checkCount(name: string, n: number | undefined): void {
  if (n !== undefined && (!Number.isInteger(n) || n < 0)) {
    throw new RangeError(`retention ${name} must be a whole number >= 0; got ${n}`);
  }
}

/**
 * Ids of backups the policy no longer keeps, oldest first. Pure: the caller lists and deletes.
 * Whatever the policy, it never deletes the newest verified backup that is not a safety backup (the one a
 * `latestVerified` restore would use), a backup
 * whose time it cannot read, or one that finished after `now` (clock skew). A policy without any rule
 * deletes nothing: a missing setting must not mean "keep none".
 */
export function selectBackupsToDelete(
  backups: readonly RetentionCandidate[],
  policy: RetentionPolicy,
  now: Date,
): string[] {
  checkCount('keepLast', policy.keepLast);
  checkCount('keepDaily', policy.keepDaily);
  checkCount('keepWeekly', policy.keepWeekly);
  if (policy.keepLast === undefined && policy.keepDaily === undefined && policy.keepWeekly === undefined)
    return [];

  const keep = new Set<string>();
  const dated: { id: string; at: Date; verified: boolean; purpose?: BackupPurpose }[] = [];
  for (const b of backups) {
    const at = new Date(b.finishedAt);
    if (Number.isNaN(at.getTime()) || at.getTime() > now.getTime()) keep.add(b.id);
    else dated.push({ id: b.id, at, verified: b.verified, purpose: b.purpose });
  }
  // Newest first; ids break ties so the result does not depend on listing order.
  dated.sort((a, b) => b.at.getTime() - a.at.getTime() || b.id.localeCompare(a.id));

  const newestVerified = dated.find((b) => b.verified && b.purpose !== 'safety');
  if (newestVerified) keep.add(newestVerified.id);
  for (const b of dated.slice(0, policy.keepLast ?? 0)) keep.add(b.id);
  const keepNewestPer = (period: (d: Date) => string, n: number) => {
    const seen = new Set<string>();
    for (const b of dated) {
      const p = period(b.at);
      if (seen.has(p)) continue;
      if (seen.size >= n) break;
      seen.add(p);
      keep.add(b.id);
    }
  };
  keepNewestPer(utcDay, policy.keepDaily ?? 0);
  keepNewestPer(isoWeek, policy.keepWeekly ?? 0);

  return dated
    .filter((b) => !keep.has(b.id))
    .reverse()
    .map((b) => b.id);
}

/** The BackupSchedule a runner works for, from NXT_SCHEDULE_UID / NXT_SCHEDULE_NAME. */
export interface ScheduleIdentity {
  uid?: string;
  name?: string;
  /** NXT_NAMESPACE: a backup whose manifest records another namespace is never this schedule's. */
  namespace?: string;
}

export function scheduleIdentityFromEnv(env: NodeJS.ProcessEnv): ScheduleIdentity | undefined {
  const uid = env.NXT_SCHEDULE_UID?.trim();
  const name = env.NXT_SCHEDULE_NAME?.trim();
  const namespace = env.NXT_NAMESPACE?.trim();
  if (!uid && !name) return undefined;
  return { ...(uid ? { uid } : {}), ...(name ? { name } : {}), ...(namespace ? { namespace } : {}) };
}

/**
 * Whether `id` is one the schedule's backup Jobs produce: `<schedule>-backup-<digits>` (a run of its CronJob)
 * or `<schedule>-backup-now-<8 hex>` (an emergency backup). Exact, so schedule `shop` never claims
 * `shop-backup-backup-1` of a schedule named `shop-backup`.
 */
export function isScheduleBackupId(id: string, schedule: string): boolean {
  const prefix = `${schedule}-backup-`;
  if (!id.startsWith(prefix)) return false;
  const rest = id.slice(prefix.length);
  return /^\d{1,20}$/.test(rest) || /^now-[0-9a-f]{8}$/.test(rest);
}

/** What a prune knows about who wrote a backup (the manifest's `origin`). */
export interface BackupProvenance {
  id: string;
  origin?: { namespace?: string; schedule?: { name: string; uid: string } };
}

/**
 * Whether the schedule `self` wrote this backup, so its retention policy may delete it and `--id latest`
 * may choose it. Ownership goes by namespace and schedule NAME: a manifest recording another namespace
 * (`origin.namespace`) is never self's (an S3 prefix is not namespaced; its owner object guards it too),
 * and a schedule deleted and applied again (GitOps, a helm reinstall) gets a new UID but must
 * still prune what it wrote before; the UID stays in the manifest for audit. A manifest with
 * `origin.schedule` belongs to the schedule of that name; one with an `origin` but no schedule (written by
 * something else) to none. A manifest without `origin` (written before provenance was recorded) belongs to
 * `self` only when its id is one of self's backup Job names. A runner that knows only its schedule's UID
 * compares UIDs. Without any identity (a prune run by hand) every backup is a candidate, as before. Pure.
 */
export function isOwnBackup(b: BackupProvenance, self: ScheduleIdentity | undefined): boolean {
  if (!self) return true;
  if (b.origin) {
    const s = b.origin.schedule;
    if (!s) return false;
    if (self.namespace && b.origin.namespace && b.origin.namespace !== self.namespace) return false;
    return self.name !== undefined ? s.name === self.name : s.uid === self.uid;
  }
  return self.name !== undefined && isScheduleBackupId(b.id, self.name);
}
