import { createHash } from 'node:crypto';
import type { EffectiveBackupScheduleSpec, S3Storage } from '../api/v1alpha1/backupschedule.js';
import { isForbidden, isNotFound } from '../kube/errors.js';
import type { KubeClient, KubeObject } from '../kube/rest.js';
import { S3_CA_DEFAULT_KEY, s3CredentialKeys } from './storage-location.js';

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
  /** Set to whether the claim could be read at all (a Forbidden get checks nothing). */
  seen?: { read: boolean },
): Promise<Problem | undefined> {
  const claim = await getOptional(client, 'persistentvolumeclaims', namespace, claimName);
  if (seen) seen.read = claim !== undefined;
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

/**
 * What the storage probe's hash takes of a Secret: a sha256 of the values of the keys the location uses
 * (truncated to 16 hex characters), so a Secret rewritten with the same values (an annotation, a re-apply by
 * a GitOps tool or External Secrets) probes nothing. Only ever an input of the hash: the values go nowhere else.
 */
export function secretDigest(secret: KubeObject, keys: readonly string[]): string {
  const data = (secret.data ?? {}) as Record<string, string>;
  const stringData = (secret.stringData ?? {}) as Record<string, string>;
  const h = createHash('sha256');
  for (const k of [...keys].sort()) {
    const v =
      k in data ? Buffer.from(data[k]!, 'base64') : k in stringData ? Buffer.from(stringData[k]!) : undefined;
    h.update(`${k}\0${v === undefined ? '-' : `${v.length}\0`}`);
    if (v) h.update(v);
    h.update('\0');
  }
  return h.digest('hex').slice(0, 16);
}

/**
 * The Secrets of an S3 location exist and hold the keys the pods read (credentials, CA bundle): a missing
 * one would leave the pod in CreateContainerConfigError until the Job's deadline. Key names are checked; the
 * values of the keys used go only into `versions` as a digest (secretDigest), the storage probe's hash input.
 * `versions`, when given, receives each Secret's digest ('?' when it may not be read): a change means a new
 * storage probe.
 */
export async function checkS3Secrets(
  client: KubeClient,
  namespace: string,
  s3: S3Storage,
  versions?: Record<string, string>,
): Promise<Problem | undefined> {
  const wanted = [
    ...(s3.credentialsSecretRef
      ? [
          {
            name: s3.credentialsSecretRef.name,
            keys: s3CredentialKeys(s3),
            field: 'spec.storage.s3.credentialsSecretRef',
          },
        ]
      : []),
    ...(s3.caBundleSecretRef
      ? [
          {
            name: s3.caBundleSecretRef.name,
            keys: [s3.caBundleSecretRef.key ?? S3_CA_DEFAULT_KEY],
            field: 'spec.storage.s3.caBundleSecretRef',
          },
        ]
      : []),
  ];
  for (const w of wanted) {
    const secret = await getOptional(client, 'secrets', namespace, w.name);
    if (versions) versions[w.name] = secret ? secretDigest(secret, w.keys) : '?';
    if (secret === undefined) continue;
    if (secret === null)
      return {
        reason: 'SecretNotFound',
        message: `Secret "${w.name}" (${w.field}) not found in namespace ${namespace}`,
      };
    const have = new Set(Object.keys({ ...(secret.data ?? {}), ...(secret.stringData ?? {}) }));
    const missing = w.keys.filter((k) => !have.has(k));
    if (missing.length)
      return {
        reason: 'SecretKeysMissing',
        message: `Secret "${w.name}" (${w.field}) lacks key(s) ${missing.join(', ')}`,
      };
  }
  return undefined;
}
