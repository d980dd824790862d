import { z } from 'zod';
import { RunnerFailure } from './failure.js';

/**
 * An S3 prefix belongs to exactly one schedule identity: namespace + name. Backup ids are
 * `<schedule>-backup-<minutes>`, so two same-named schedules of different namespaces (one GitOps overlay applied
 * twice, a DR cluster) on one bucket + prefix would prune, select, overwrite and restore each other's backups.
 * The first runner that knows its identity writes `<prefix>.nxt-owner.json` (If-None-Match: *); every command
 * of every other identity is refused with StorageOwnedByOther. A re-created schedule (new UID, same namespace
 * and name) is the same owner.
 */
export const OWNER_OBJECT = '.nxt-owner.json';

export const StorageOwnerSchema = z.object({
  namespace: z.string().min(1),
  name: z.string().min(1),
  created: z.string().optional(),
});
export type StorageOwner = z.infer<typeof StorageOwnerSchema>;

/** Who this runner works for: NXT_NAMESPACE (downward API) and NXT_SCHEDULE_NAME; undefined by hand. */
export interface OwnerIdentity {
  namespace: string;
  name?: string;
}

export function ownerIdentityFromEnv(env: NodeJS.ProcessEnv): OwnerIdentity | undefined {
  const namespace = env.NXT_NAMESPACE?.trim();
  const name = env.NXT_SCHEDULE_NAME?.trim();
  if (!namespace) return undefined;
  return { namespace, ...(name ? { name } : {}) };
}

/** The stored owner object's text, parsed; a RunnerFailure when it is not one (never silently taken over). */
export function parseOwnerText(text: string, location: string): StorageOwner {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const r = StorageOwnerSchema.safeParse(parsed);
  if (!r.success) {
    throw new RunnerFailure(
      'StorageOwnedByOther',
      `${location} has an unreadable owner object ${OWNER_OBJECT}; refusing to use it. ` +
        'Remove the object only if this prefix is meant for this schedule',
    );
  }
  return r.data;
}

/** Throws StorageOwnedByOther unless `self` is the owner (same namespace, and same name when known). Pure. */
export function checkOwner(owner: StorageOwner, self: OwnerIdentity, location: string): void {
  if (owner.namespace === self.namespace && (self.name === undefined || owner.name === self.name)) return;
  throw new RunnerFailure(
    'StorageOwnedByOther',
    `${location} belongs to BackupSchedule ${owner.namespace}/${owner.name}, not to ` +
      `${self.namespace}/${self.name ?? '(no schedule)'}: a prefix holds the backups of exactly one schedule. ` +
      'Give this schedule its own prefix',
  );
}

/** Origin fields of a manifest that say whose backup it is. */
export interface ManifestOwnerFields {
  id: string;
  origin?: { namespace?: string; schedule?: { name: string } };
}

/**
 * Whether a backup's manifest names another schedule than `self` (namespace when recorded, schedule name when
 * recorded): a restore, verify or test restore of it is refused. A manifest without those fields (written by
 * hand or before provenance) is judged by the prefix's owner alone. Pure.
 */
export function foreignBackup(m: ManifestOwnerFields, self: OwnerIdentity | undefined): string | undefined {
  if (!self) return undefined;
  const o = m.origin;
  const ns = o?.namespace;
  const name = o?.schedule?.name;
  if (
    (ns !== undefined && ns !== self.namespace) ||
    (self.name !== undefined && name !== undefined && name !== self.name)
  ) {
    return (
      `backup ${m.id} was written by BackupSchedule ${ns ?? '?'}/${name ?? '?'}, not by ` +
      `${self.namespace}/${self.name ?? '(no schedule)'}; refusing to use it`
    );
  }
  return undefined;
}
