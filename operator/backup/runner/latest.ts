import { RunnerFailure, storageFailure } from './failure.js';
import type { RunnerLog } from './log.js';
import type { BackupManifest } from './manifest.js';
import { isOwnBackup, type ScheduleIdentity } from './retention.js';
import type { BackupStorage } from './storage.js';

/**
 * The backup `--id latest` means: the newest backup a restore would use, which is also the one retention
 * always keeps. That is a backup whose manifest says `verified: true`, whose dump is present, that is not a
 * plan's safety backup (it holds the state a restore replaced) and, when the runner works for a schedule
 * (`owner`), that the schedule wrote itself (isOwnBackup, as retention decides), so the verify CronJob of
 * one schedule never test-restores another's backup on a shared claim. Newest is the latest `finishedAt`,
 * ties broken by the greater id. Unreadable manifests are logged and skipped. Throws RunnerFailure
 * BackupNotFound when there is none, StorageFailed when the storage cannot be listed.
 */
export async function findLatestVerifiedBackup(
  storage: BackupStorage,
  log: RunnerLog,
  owner?: ScheduleIdentity,
): Promise<BackupManifest> {
  let stored;
  try {
    stored = await storage.list();
  } catch (e) {
    throw storageFailure(e, `listing ${storage.location}`);
  }
  let best: { manifest: BackupManifest; at: number } | undefined;
  let described = 0;
  let passedOver = 0;
  for (const s of stored) {
    if (!s.hasManifest) continue;
    let manifest: BackupManifest | undefined;
    try {
      manifest = await storage.readManifest(s.id);
    } catch (e) {
      log('warn', 'latest.manifest-unreadable', { id: s.id, error: (e as Error).message });
      continue;
    }
    if (!manifest) continue;
    described++;
    if (manifest.origin?.purpose === 'safety' || !isOwnBackup(manifest, owner)) {
      passedOver++;
      continue;
    }
    const at = Date.parse(manifest.finishedAt);
    if (!manifest.verified || !s.hasDump || Number.isNaN(at)) continue;
    if (!best || at > best.at || (at === best.at && manifest.id.localeCompare(best.manifest.id) > 0)) {
      best = { manifest, at };
    }
  }
  if (!best) {
    throw new RunnerFailure(
      'BackupNotFound',
      `--id latest: no verified backup in ${storage.location} ` +
        (described
          ? `(${described} backup(s) with a manifest, none verified with its dump present` +
            (passedOver ? `; ${passedOver} safety or other schedules' backup(s) not considered` : '') +
            ')'
          : '(it holds no backup)') +
        '; take a backup first or name one with --id',
    );
  }
  return best.manifest;
}
