import type { RunnerLog } from './log.js';
import type { Redact } from './redact.js';
import { timing, type BackupResult, type PruneResult } from './result.js';
import { selectBackupsToDelete, type RetentionCandidate, type RetentionPolicy } from './retention.js';
import type { BackupStorage } from './storage.js';

export interface PruneOptions {
  storage: BackupStorage;
  policy: RetentionPolicy;
  dryRun?: boolean;
  log: RunnerLog;
  now?: () => Date;
  /** Ids never deleted whatever the policy says (the backup a run has just made). */
  protect?: readonly string[];
}

/**
 * Applies the retention policy to the backups that have a manifest. Dumps without one (a backup that
 * crashed between commit and manifest, which its retry overwrites) and unreadable manifests are left alone
 * and reported: deleting what we cannot describe is not pruning's job.
 */
export async function runPrune(o: PruneOptions): Promise<PruneResult> {
  const now = o.now ?? (() => new Date());
  const started = now();
  const base = { resultVersion: 1 as const, operation: 'prune' as const, dryRun: o.dryRun ?? false };
  const deleted: string[] = [];
  try {
    const stored = await o.storage.list();
    const candidates: RetentionCandidate[] = [];
    for (const s of stored.filter((x) => x.hasManifest)) {
      try {
        const m = await o.storage.readManifest(s.id);
        if (m) candidates.push({ id: m.id, finishedAt: m.finishedAt, verified: m.verified && s.hasDump });
      } catch (e) {
        o.log('warn', 'prune.manifest-unreadable', { id: s.id, error: (e as Error).message });
      }
    }
    const orphans = stored.filter((x) => x.hasDump && !x.hasManifest).map((x) => x.id);
    const protect = new Set(o.protect ?? []);
    const toDelete = selectBackupsToDelete(candidates, o.policy, started).filter((id) => !protect.has(id));
    for (const id of toDelete) {
      if (!o.dryRun) await o.storage.remove(id);
      deleted.push(id);
      o.log('info', o.dryRun ? 'prune.would-delete' : 'prune.deleted', { id });
    }
    const keptCount = candidates.length - deleted.length;
    return {
      ...base,
      ...timing(started, now()),
      success: true,
      message:
        `${o.dryRun ? 'would delete' : 'deleted'} ${deleted.length} backup(s), kept ${keptCount}` +
        (orphans.length ? `; ${orphans.length} dump(s) without a manifest left in place` : ''),
      deleted,
      deletedCount: deleted.length,
      keptCount,
      orphans,
    };
  } catch (e) {
    const message = `pruning ${o.storage.location} failed after deleting ${deleted.length}: ${(e as Error).message}`;
    o.log('error', 'prune.failed', { message });
    return {
      ...base,
      ...timing(started, now()),
      success: false,
      reason: e instanceof RangeError ? 'InvalidArguments' : 'StorageFailed',
      message,
      deleted,
      deletedCount: deleted.length,
    };
  }
}

export interface PruneAfterBackupOptions {
  storage: BackupStorage;
  /** Undefined: nothing is pruned and the result is returned as it is. */
  policy?: RetentionPolicy;
  log: RunnerLog;
  now?: () => Date;
  redact?: Redact;
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
  let error: string | undefined;
  try {
    const p = await runPrune({
      storage: o.storage,
      policy: o.policy,
      log: o.log,
      ...(o.now ? { now: o.now } : {}),
      protect: [result.id],
    });
    deleted = p.deleted ?? [];
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
        ? `; retention deleted ${deleted.length} older backup(s)`
        : `; the backup is good but pruning failed (deleted ${deleted.length}): ${error}`),
    prunedCount: deleted.length,
    pruned: deleted,
    ...(error === undefined ? {} : { pruneError: error }),
  };
}
