import { RunnerFailure } from './failure.js';
import type { RunnerLog } from './log.js';
import { isPinLive } from './pins.js';
import type { Redact } from './redact.js';
import type { BackupResult, PruneResult } from './result.js';
import { timing } from './termination-message.js';
import {
  isOwnBackup,
  selectBackupsToDelete,
  type RetentionCandidate,
  type RetentionPolicy,
  type ScheduleIdentity,
} from './retention.js';
import type { BackupStorage } from './storage.js';

/** activeDeadlineSeconds of every runner Job (pod-builders.ts): STALE_LEFTOVER_MS depends on it. */
export const RUNNER_JOB_DEADLINE_SECONDS = 3600;

/**
 * A partial dump, temporary file or dump without a manifest nobody has written to for this long is a
 * leftover: every runner Job ends within its activeDeadlineSeconds (RUNNER_JOB_DEADLINE_SECONDS), a running
 * pg_dump writes continuously, and a backup writes its manifest right after its dump. Removing manifest-less
 * dumps (on a claim too) is safe only while this stays longer than that deadline: twice it.
 */
export const STALE_LEFTOVER_MS = 2 * RUNNER_JOB_DEADLINE_SECONDS * 1000;

export interface PruneOptions {
  storage: BackupStorage;
  policy: RetentionPolicy;
  dryRun?: boolean;
  log: RunnerLog;
  now?: () => Date;
  /** Ids never deleted whatever the policy says (the backup a run has just made). */
  protect?: readonly string[];
  /** The schedule this prune works for: only the backups it wrote are candidates (see isOwnBackup). */
  owner?: ScheduleIdentity;
  /** Age after which partial dumps and temporary files are removed; default STALE_LEFTOVER_MS. */
  staleAfterMs?: number;
  /**
   * Checks that the prefix is still this schedule's (S3 owner object) right before anything is deleted; throws
   * (StorageOwnedByOtherCluster) when another cluster took it over since the command started.
   */
  recheckOwner?: () => Promise<unknown>;
}

/**
 * Applies the retention policy to the backups that have a manifest and that this schedule wrote. Dumps
 * without one (a backup that crashed between commit and manifest, which its retry overwrites) are left until
 * they are older than the leftover age (then removeLeftovers removes them, unless a live pin holds them);
 * unreadable manifests and other schedules' backups are left alone and reported: deleting what we cannot
 * describe, or what is not ours, is not pruning's job. A backup pinned by a running plan is kept; the pin is checked
 * again after the manifest is hidden and before anything is deleted, so a plan that pins while this runs
 * either is seen here or finds the backup already gone (never a backup that disappears after its check).
 */
export async function runPrune(o: PruneOptions): Promise<PruneResult> {
  const now = o.now ?? (() => new Date());
  const started = now();
  const base = { resultVersion: 1 as const, operation: 'prune' as const, dryRun: o.dryRun ?? false };
  const deleted: string[] = [];
  const pinned: string[] = [];
  try {
    const stored = await o.storage.list();
    const candidates: RetentionCandidate[] = [];
    let others = 0;
    for (const s of stored.filter((x) => x.hasManifest)) {
      try {
        const m = await o.storage.readManifest(s.id);
        if (!m) continue;
        if (!isOwnBackup(m, o.owner)) {
          others++;
          continue;
        }
        candidates.push({
          id: m.id,
          finishedAt: m.finishedAt,
          verified: m.verified && s.hasDump,
          ...(m.origin ? { purpose: m.origin.purpose } : {}),
        });
      } catch (e) {
        o.log('warn', 'prune.manifest-unreadable', { id: s.id, error: (e as Error).message });
      }
    }
    if (!o.owner)
      o.log('warn', 'prune.no-owner', { message: 'no NXT_SCHEDULE_NAME: every backup is a candidate' });
    const listedOrphans = stored.filter((x) => x.hasDump && !x.hasManifest).map((x) => x.id);
    const protect = new Set(o.protect ?? []);
    const toDelete = selectBackupsToDelete(candidates, o.policy, started).filter((id) => !protect.has(id));
    const pinnedNow = async (id: string) => (await o.storage.listPins(id)).filter((p) => isPinLive(p, now()));
    if (!o.dryRun && o.recheckOwner) await o.recheckOwner();
    for (const id of toDelete) {
      if ((await pinnedNow(id)).length) {
        pinned.push(id);
        o.log('info', 'prune.pinned', { id });
        continue;
      }
      if (!o.dryRun) {
        if (!(await o.storage.markForRemoval(id))) continue; // removed meanwhile by another prune
        const holders = await pinnedNow(id);
        if (holders.length) {
          await o.storage.unmarkForRemoval(id);
          pinned.push(id);
          o.log('info', 'prune.pinned', { id, holders: holders.map((p) => p.holder) });
          continue;
        }
        await o.storage.remove(id);
      }
      deleted.push(id);
      o.log('info', o.dryRun ? 'prune.would-delete' : 'prune.deleted', { id });
    }
    const { partials: stalePartials, orphanDumps } = o.dryRun
      ? { partials: [], orphanDumps: [] }
      : await removeLeftovers(o, now());
    // A dump without a manifest that the leftover clean-up removed is no longer left in place.
    const orphans = listedOrphans.filter((id) => !orphanDumps.includes(id));
    const keptCount = candidates.length - deleted.length;
    return {
      ...base,
      ...timing(started, now()),
      success: true,
      message:
        `${o.dryRun ? 'would delete' : 'deleted'} ${deleted.length} backup(s), kept ${keptCount}` +
        (pinned.length ? ` (${pinned.length} pinned by a running plan)` : '') +
        (others ? `; ${others} backup(s) of other schedules left alone` : '') +
        (orphans.length ? `; ${orphans.length} dump(s) without a manifest left in place` : '') +
        (stalePartials.length ? `; removed ${stalePartials.length} stale partial dump(s)` : '') +
        (orphanDumps.length ? `; removed ${orphanDumps.length} stale dump(s) without a manifest` : ''),
      deleted,
      deletedCount: deleted.length,
      keptCount,
      orphans,
      pinned,
      otherSchedulesCount: others,
      stalePartialsRemoved: stalePartials,
      orphanDumpsRemoved: orphanDumps,
    };
  } catch (e) {
    const message = `pruning ${o.storage.location} failed after deleting ${deleted.length}: ${(e as Error).message}`;
    o.log('error', 'prune.failed', { message });
    return {
      ...base,
      ...timing(started, now()),
      success: false,
      reason:
        e instanceof RangeError
          ? 'InvalidArguments'
          : e instanceof RunnerFailure
            ? e.reason
            : 'StorageFailed',
      message,
      deleted,
      deletedCount: deleted.length,
      pinned,
    };
  }
}

/** Leftovers of interrupted runs and expired pins; returns the ids of the partial dumps removed. */
async function removeLeftovers(
  o: PruneOptions,
  now: Date,
): Promise<{ partials: string[]; orphanDumps: string[] }> {
  const left = await o.storage.removeLeftovers(now, o.staleAfterMs ?? STALE_LEFTOVER_MS);
  for (const id of left.partials) o.log('info', 'prune.stale-partial-removed', { id });
  for (const id of left.orphanDumps) o.log('info', 'prune.orphan-dump-removed', { id });
  for (const id of left.restoredManifests) o.log('warn', 'prune.unfinished-removal-undone', { id });
  for (const p of await o.storage.listPins()) {
    if (isPinLive(p, now)) continue;
    // A plan's restore Job may renew this pin after the listing: unpinIfExpired judges the pin it removes.
    if (await o.storage.unpinIfExpired(p.id, p.holder, now))
      o.log('info', 'prune.expired-pin-removed', { id: p.id, holder: p.holder });
    else o.log('info', 'prune.expired-pin-renewed-or-gone', { id: p.id, holder: p.holder });
  }
  return { partials: left.partials, orphanDumps: left.orphanDumps };
}

export interface PruneAfterBackupOptions {
  storage: BackupStorage;
  /** Undefined: nothing is pruned and the result is returned as it is. */
  policy?: RetentionPolicy;
  log: RunnerLog;
  now?: () => Date;
  redact?: Redact;
  owner?: ScheduleIdentity;
  recheckOwner?: () => Promise<unknown>;
}

/**
 * Applies the retention policy after a successful, verified backup, exactly as `prune` would, except that it
 * never deletes that backup. Adds `prunedCount` and `pruned`; a failed prune is added as `pruneError` and to
 * the message but leaves the backup a success: the new backup is good whatever happened to the old ones.
 * The result's timing stays that of the backup (its finishedAt is the manifest's).
 */
export async function pruneAfterBackup(
  result: BackupResult,
  o: PruneAfterBackupOptions,
): Promise<BackupResult> {
  if (!o.policy || !result.success || result.verified !== true || !result.id) return result;
  const redact = o.redact ?? ((s: string) => s);
  let deleted: string[] = [];
  let stalePartials: string[] = [];
  let orphanDumps: string[] = [];
  let pinned = 0;
  let error: string | undefined;
  try {
    const p = await runPrune({
      storage: o.storage,
      policy: o.policy,
      log: o.log,
      ...(o.now ? { now: o.now } : {}),
      protect: [result.id],
      ...(o.owner ? { owner: o.owner } : {}),
      ...(o.recheckOwner ? { recheckOwner: o.recheckOwner } : {}),
    });
    deleted = p.deleted ?? [];
    stalePartials = p.stalePartialsRemoved ?? [];
    orphanDumps = p.orphanDumpsRemoved ?? [];
    pinned = p.pinned?.length ?? 0;
    if (!p.success) error = p.message;
  } catch (e) {
    error = `pruning ${o.storage.location} failed: ${(e as Error).message}`;
  }
  if (error !== undefined) {
    error = redact(error);
    o.log('warn', 'backup.prune-failed', { id: result.id, deleted: deleted.length, error });
  } else {
    o.log('info', 'backup.pruned', { id: result.id, deleted: deleted.length });
  }
  return {
    ...result,
    message:
      result.message +
      (error === undefined
        ? `; retention deleted ${deleted.length} older backup(s)` +
          (pinned ? `, kept ${pinned} pinned by a running plan` : '') +
          (stalePartials.length ? `, removed ${stalePartials.length} stale partial dump(s)` : '') +
          (orphanDumps.length ? `, removed ${orphanDumps.length} stale dump(s) without a manifest` : '')
        : `; the backup is good but pruning failed (deleted ${deleted.length}): ${error}`),
    prunedCount: deleted.length,
    pruned: deleted,
    ...(stalePartials.length ? { stalePartialsRemoved: stalePartials } : {}),
    ...(orphanDumps.length ? { orphanDumpsRemoved: orphanDumps } : {}),
    ...(error === undefined ? {} : { pruneError: error }),
  };
}
