import { RunnerFailure } from './failure.js';

/**
 * An S3 prefix belongs to exactly one schedule identity: cluster + namespace + name. Backup ids are
 * `<schedule>-backup-<minutes>`, so two same-named schedules (of different namespaces, or of the same
 * namespace in two clusters: one GitOps overlay applied twice, a DR cluster) on one bucket + prefix would prune,
 * select, overwrite and restore each other's backups. The first runner that knows its identity writes
 * `<prefix>.nxt-owner.json` (If-None-Match: *); every command of another namespace/name is refused with
 * StorageOwnedByOther, and of the same namespace/name in another cluster with StorageOwnedByOtherCluster unless
 * the schedule's `spec.storage.s3.foreignCluster` names that cluster (reads only, or a take-over). A re-created
 * schedule (new UID, same namespace and name, same cluster) is the same owner.
 */
export const OWNER_OBJECT = '.nxt-owner.json';

/** The runner env that names the cluster the operator runs in (the kube-system Namespace's UID, or CLUSTER_ID). */
export const CLUSTER_ID_ENV = 'NXT_CLUSTER_ID';
/** The runner env of spec.storage.s3.foreignCluster. */
export const ForeignClusterEnv = {
  clusterId: 'NXT_S3_FOREIGN_CLUSTER_ID',
  allow: 'NXT_S3_FOREIGN_CLUSTER_ALLOW',
} as const;

/** A cluster id: a UID, or what CLUSTER_ID says (letters, digits and . _ : -). */
export const CLUSTER_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** The owner object `<prefix>.nxt-owner.json` (parsed by storage-owner-schema.ts, which loads zod). */
export interface StorageOwner {
  namespace: string;
  name: string;
  /** Absent in owner objects written before clusters were told apart, or by an operator that did not know it. */
  clusterId?: string;
  created?: string;
  /** The cluster this one took the prefix over from (spec.storage.s3.foreignCluster.allow TakeOver), and when. */
  takenOverFrom?: string;
  /** When a cluster recorded its id in an owner object that had none (the upgrade adoption). */
  adopted?: string;
  updated?: string;
}

/** Who this runner works for: NXT_NAMESPACE (downward API), NXT_SCHEDULE_NAME, NXT_CLUSTER_ID; undefined by hand. */
export interface OwnerIdentity {
  namespace: string;
  name?: string;
  /** Unset when the operator could not learn its cluster's id: then no cluster id is written or matched. */
  clusterId?: string;
}

/** spec.storage.s3.foreignCluster: what this schedule may do in a prefix that cluster `clusterId` owns. */
export interface ForeignClusterAccess {
  clusterId: string;
  /** Restore: verify, test restores and restores only. TakeOver: also back up and prune, taking the prefix over. */
  allow: 'Restore' | 'TakeOver';
}

/** What a command does to the prefix: backups and prunes write, verify / test restore / restore read. */
export type OwnerAccess = 'read' | 'write';

export function ownerIdentityFromEnv(env: NodeJS.ProcessEnv): OwnerIdentity | undefined {
  const namespace = env.NXT_NAMESPACE?.trim();
  const name = env.NXT_SCHEDULE_NAME?.trim();
  const clusterId = env[CLUSTER_ID_ENV]?.trim();
  if (!namespace) return undefined;
  return { namespace, ...(name ? { name } : {}), ...(clusterId ? { clusterId } : {}) };
}

/** spec.storage.s3.foreignCluster from the runner env; InvalidArguments for a half or malformed setting. */
export function foreignClusterFromEnv(env: NodeJS.ProcessEnv): ForeignClusterAccess | undefined {
  const clusterId = env[ForeignClusterEnv.clusterId]?.trim() || undefined;
  const allow = env[ForeignClusterEnv.allow]?.trim() || undefined;
  if (clusterId === undefined && allow === undefined) return undefined;
  if (!clusterId || !CLUSTER_ID_PATTERN.test(clusterId) || (allow !== 'Restore' && allow !== 'TakeOver')) {
    throw new RunnerFailure(
      'InvalidArguments',
      `${ForeignClusterEnv.clusterId} (a cluster id) and ${ForeignClusterEnv.allow} (Restore or TakeOver) must be ` +
        `set together; got ${JSON.stringify(clusterId?.slice(0, 130))} and ${JSON.stringify(allow?.slice(0, 20))}`,
    );
  }
  return { clusterId, allow };
}

/** Throws StorageOwnedByOther unless `self` has the owner's namespace (and name, when known). Pure. */
export function checkOwner(owner: StorageOwner, self: OwnerIdentity, location: string): void {
  if (owner.namespace === self.namespace && (self.name === undefined || owner.name === self.name)) return;
  throw new RunnerFailure(
    'StorageOwnedByOther',
    `${location} belongs to BackupSchedule ${owner.namespace}/${owner.name}, not to ` +
      `${self.namespace}/${self.name ?? '(no schedule)'}: a prefix holds the backups of exactly one schedule. ` +
      'Give this schedule its own prefix',
  );
}

export type OwnerDecision =
  /** The prefix is this schedule's (or readable by it): go on, nothing to write. */
  | { action: 'use'; note?: string }
  /** No owner object yet: create it (If-None-Match: *). */
  | { action: 'claim'; owner: StorageOwner; note?: string }
  /** Replace the owner object read (If-Match its ETag): an upgrade that adds the cluster id, or a take-over. */
  | { action: 'rewrite'; owner: StorageOwner; note: string };

const clusterName = (id: string | undefined) => (id ? `cluster ${id}` : 'a cluster whose id is unknown');

/** The take-over refusal when this cluster cannot name itself. */
function noOwnIdForTakeOver(location: string, what: string): RunnerFailure {
  return new RunnerFailure(
    'ClusterIdUnknown',
    `${location} ${what}; spec.storage.s3.foreignCluster allows a take-over, but this operator does not know its ` +
      "own cluster's id (see the operator log and the schedule's ClusterIdUnknown condition; or set CLUSTER_ID " +
      'in its configuration), so it cannot take the prefix over',
  );
}

/**
 * What a runner of `self` may do with a prefix whose owner object is `stored` (undefined: none yet), for a
 * command that reads or writes. Throws StorageOwnedByOther (another namespace/name), StorageOwnedByOtherCluster
 * (the same namespace/name, another cluster, not allowed by `foreign`) or ClusterIdUnknown (this runner has no
 * cluster id, the owner object records one). Pure:
 *
 * - A read (verify, test restore, restore) never writes: it claims nothing and records no cluster id.
 * - `foreign` naming another cluster than this one says the prefix is that cluster's (a standby). Such a
 *   cluster never claims a prefix without owner object, nor adopts one without a cluster id, unless `foreign`
 *   allows TakeOver: prefixes written before owner objects (or whose owner object a lifecycle rule expired)
 *   stay the primary's.
 * - Otherwise an owner object without a cluster id (written before clusters were told apart) is the
 *   schedule's as before; the first write (backup, prune) of the same namespace/name from a cluster that knows
 *   its id adds that id (upgrade, recorded as `adopted`). From then on every other cluster is refused.
 * - A runner that does not know its cluster id (the operator could not read it) uses owner objects without an
 *   id as before, claims new prefixes without one, and is refused (ClusterIdUnknown) by one that records an id.
 * - `foreign` naming the owner's cluster allows reads (Restore, TakeOver); with TakeOver a write rewrites the
 *   owner object to this cluster (the old cluster is refused from then on), except when the owner took the
 *   prefix over from this very cluster: no take-back ping-pong between two clusters that name each other.
 */
export function decideOwner(
  stored: StorageOwner | undefined,
  self: OwnerIdentity,
  access: OwnerAccess,
  foreign: ForeignClusterAccess | undefined,
  location: string,
  now: Date,
): OwnerDecision {
  // A prefix spec.storage.s3.foreignCluster says is another cluster's (in the named cluster itself: no effect).
  const standby = foreign && foreign.clusterId !== self.clusterId ? foreign : undefined;
  const refuseStandbyWrite = (what: string) =>
    new RunnerFailure(
      'StorageOwnedByOtherCluster',
      `${location} ${what}, and spec.storage.s3.foreignCluster says this prefix is cluster ` +
        `${standby!.clusterId}'s (allow ${standby!.allow}): this cluster only reads it, and never claims or ` +
        `adopts it. Set allow: TakeOver to back up here once cluster ${standby!.clusterId} is gone`,
    );
  if (!stored) {
    if (self.name === undefined || access === 'read') return { action: 'use' };
    if (standby) {
      if (standby.allow !== 'TakeOver') throw refuseStandbyWrite('has no owner object');
      if (!self.clusterId) throw noOwnIdForTakeOver(location, 'has no owner object');
      return {
        action: 'claim',
        owner: {
          namespace: self.namespace,
          name: self.name,
          clusterId: self.clusterId,
          created: now.toISOString(),
          takenOverFrom: standby.clusterId,
          updated: now.toISOString(),
        },
        note: `${location}: had no owner object; took it over from cluster ${standby.clusterId} (spec.storage.s3.foreignCluster allow TakeOver)`,
      };
    }
    return {
      action: 'claim',
      owner: {
        namespace: self.namespace,
        name: self.name,
        ...(self.clusterId ? { clusterId: self.clusterId } : {}),
        created: now.toISOString(),
      },
    };
  }
  checkOwner(stored, self, location);
  const owner = `${stored.namespace}/${stored.name}`;
  if (stored.clusterId === undefined) {
    if (access === 'read' || self.name === undefined) return { action: 'use' };
    if (standby) {
      if (standby.allow !== 'TakeOver') throw refuseStandbyWrite('has an owner object without a cluster id');
      if (!self.clusterId) throw noOwnIdForTakeOver(location, 'has an owner object without a cluster id');
      return {
        action: 'rewrite',
        owner: {
          ...stored,
          clusterId: self.clusterId,
          takenOverFrom: standby.clusterId,
          updated: now.toISOString(),
        },
        note: `${location}: the owner object had no cluster id; took the prefix over from cluster ${standby.clusterId} (spec.storage.s3.foreignCluster allow TakeOver)`,
      };
    }
    if (!self.clusterId) return { action: 'use' };
    return {
      action: 'rewrite',
      owner: { ...stored, clusterId: self.clusterId, adopted: now.toISOString(), updated: now.toISOString() },
      note: `${location}: the owner object had no cluster id; recorded this cluster's (${self.clusterId})`,
    };
  }
  if (self.clusterId === stored.clusterId) return { action: 'use' };
  if (foreign?.clusterId === stored.clusterId) {
    if (access === 'read')
      return {
        action: 'use',
        note: `${location} belongs to ${owner} of cluster ${stored.clusterId}; reading it as spec.storage.s3.foreignCluster allows`,
      };
    if (foreign.allow === 'TakeOver') {
      if (!self.clusterId || self.name === undefined)
        throw noOwnIdForTakeOver(location, `belongs to ${owner} of cluster ${stored.clusterId}`);
      if (stored.takenOverFrom === self.clusterId)
        throw new RunnerFailure(
          'StorageOwnedByOtherCluster',
          `${location}: cluster ${stored.clusterId} took this prefix over from this cluster (${self.clusterId})` +
            `${stored.updated ? ` at ${stored.updated}` : ''}; this cluster does not take it back while ` +
            'spec.storage.s3.foreignCluster of both clusters names the other with TakeOver. To take it back ' +
            `deliberately, stop the schedule in cluster ${stored.clusterId}, then delete ${OWNER_OBJECT} from the ` +
            'prefix (the next backup here claims it)',
        );
      return {
        action: 'rewrite',
        owner: {
          namespace: stored.namespace,
          name: stored.name,
          clusterId: self.clusterId,
          ...(stored.created ? { created: stored.created } : {}),
          takenOverFrom: stored.clusterId,
          updated: now.toISOString(),
        },
        note: `${location}: took the prefix over from cluster ${stored.clusterId} (spec.storage.s3.foreignCluster allow TakeOver); that cluster's schedules are refused from now on`,
      };
    }
  }
  if (!self.clusterId)
    throw new RunnerFailure(
      'ClusterIdUnknown',
      `${location} belongs to BackupSchedule ${owner} of cluster ${stored.clusterId}, and this runner was given ` +
        `no cluster id (${CLUSTER_ID_ENV} unset: the operator has not learned its cluster's id; see its log and ` +
        "the schedule's ClusterIdUnknown condition, or set CLUSTER_ID in its configuration), so it cannot tell " +
        'whether this is that cluster. Nothing was done',
    );
  const what = access === 'read' ? 'restores, verifies and test restores' : 'backs up or prunes';
  const adopted = stored.adopted
    ? ` Cluster ${stored.clusterId} adopted this prefix at ${stored.adopted} (the first cluster to back up ` +
      'into it after the upgrade that added cluster ids); if that was the wrong cluster, ' +
      `spec.storage.s3.foreignCluster {clusterId: ${stored.clusterId}, allow: TakeOver} here reclaims it.`
    : '';
  throw new RunnerFailure(
    'StorageOwnedByOtherCluster',
    `${location} belongs to BackupSchedule ${owner} of cluster ${stored.clusterId}, and this is ` +
      `${clusterName(self.clusterId)}: a prefix holds the backups of one schedule in one cluster, and a schedule of ` +
      `the same namespace/name in another cluster never ${what} there by default.${adopted} Give each cluster its own ` +
      `prefix; for disaster recovery set spec.storage.s3.foreignCluster {clusterId: ${stored.clusterId}, allow: Restore} ` +
      '(or TakeOver to continue the backups here once that cluster is gone). If this is the same cluster and ' +
      'its id changed (CLUSTER_ID set or changed, the cluster rebuilt), set CLUSTER_ID to the recorded id, ' +
      'only once no other cluster uses it (docs/backupschedule.md)',
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
