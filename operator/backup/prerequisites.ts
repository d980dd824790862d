import type { EffectiveBackupScheduleSpec } from '../api/v1alpha1/backupschedule.js';
import { isForbidden, isNotFound } from '../kube/errors.js';
import type { KubeClient, KubeObject } from '../kube/rest.js';

// What must exist before a backup Job can run: without these, its pod never starts and the Job only fails
// at its one-hour deadline. Each check returns the problem (a reason and a message naming the field), or
// undefined. A check the operator is not allowed to make (403) is skipped: it is an early warning, and
// the Job would still fail visibly.

export interface Problem {
  reason: string;
  message: string;
}

/** The ServiceAccount the runner pods run as: spec.podTemplate.serviceAccountName or the namespace's default. */
export const runnerServiceAccount = (spec: EffectiveBackupScheduleSpec) =>
  spec.podTemplate?.serviceAccountName ?? 'default';

async function getOptional(client: KubeClient, plural: string, namespace: string, name: string) {
  try {
    return await client.get<KubeObject>({ group: '', version: 'v1', plural, namespace, name });
  } catch (e) {
    if (isNotFound(e)) return null;
    if (isForbidden(e)) return undefined;
    throw e;
  }
}

/**
 * The claim backups are written to exists, is Pending or Bound (Pending: waiting for its first consumer or a
 * provisioner), is not being deleted and can be written.
 */
export async function checkClaim(
  client: KubeClient,
  namespace: string,
  claimName: string,
  field: string,
): Promise<Problem | undefined> {
  const claim = await getOptional(client, 'persistentvolumeclaims', namespace, claimName);
  if (claim === undefined) return undefined;
  if (claim === null)
    return {
      reason: 'ClaimNotFound',
      message: `PersistentVolumeClaim "${claimName}" (${field}) not found in namespace ${namespace}; create it or use storage.persistentVolumeClaim.create`,
    };
  const phase: string | undefined = claim.status?.phase;
  const modes: string[] = claim.spec?.accessModes ?? [];
  let why: string | undefined;
  if (claim.metadata.deletionTimestamp) why = 'is being deleted';
  else if (phase === 'Lost') why = 'is Lost (its PersistentVolume is gone)';
  else if (modes.length > 0 && modes.every((m) => m === 'ReadOnlyMany'))
    why = 'is ReadOnlyMany, and backups must be written to it';
  if (!why) return undefined;
  return {
    reason: 'ClaimNotUsable',
    message: `PersistentVolumeClaim "${claimName}" (${field}) ${why}`,
  };
}

/** The runner pods' ServiceAccount exists (the ServiceAccount admission plugin refuses pods without it). */
export async function checkServiceAccount(
  client: KubeClient,
  namespace: string,
  spec: EffectiveBackupScheduleSpec,
): Promise<Problem | undefined> {
  const name = runnerServiceAccount(spec);
  const sa = await getOptional(client, 'serviceaccounts', namespace, name);
  if (sa !== null) return undefined;
  const field = spec.podTemplate?.serviceAccountName
    ? 'spec.podTemplate.serviceAccountName'
    : "the namespace's default ServiceAccount, used when spec.podTemplate.serviceAccountName is not set";
  return {
    reason: 'ServiceAccountNotFound',
    message: `ServiceAccount "${name}" (${field}) not found in namespace ${namespace}: the backup pods could not start`,
  };
}
