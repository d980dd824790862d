import type { BackupScheduleSpec, S3Storage } from '../api/v1alpha1/backupschedule.js';
import { DEFAULT_S3_REGION, S3Env } from './runner/s3-config.js';
import { ForeignClusterEnv } from './runner/storage-owner.js';

/** Where the runner pods mount the CA bundle Secret of a private S3 endpoint. */
export const S3_CA_MOUNT = '/etc/nxt-s3-ca';
export const S3_CA_DEFAULT_KEY = 'ca.crt';
export const S3_ACCESS_KEY_ID_DEFAULT_KEY = 'AWS_ACCESS_KEY_ID';
export const S3_SECRET_ACCESS_KEY_DEFAULT_KEY = 'AWS_SECRET_ACCESS_KEY';

/**
 * Node's young generation grows to 3 x 16 MiB under a stream's allocation rate, garbage the runner does not
 * need: a small semi-space keeps an S3 upload's runner near its loaded size (measured in backup-s3.test.ts).
 */
export const S3_RUNNER_NODE_OPTIONS = '--max-semi-space-size=1';

/** `s3://bucket/prefix` (no trailing slash): the runner's --storage-url and the name status and events show. */
export const s3Url = (s3: Pick<S3Storage, 'bucket' | 'prefix'>) =>
  `s3://${s3.bucket}/${s3.prefix ?? ''}`.replace(/\/+$/, '');

/** The location backups go to, for status, events, metrics and the dry-run report. */
export function describeStorage(spec: Pick<BackupScheduleSpec, 'storage'>, claimName?: string): string {
  if (spec.storage.s3) return s3Url(spec.storage.s3);
  return `claim ${claimName ?? spec.storage.persistentVolumeClaim?.claimName ?? '(created)'}`;
}

/**
 * The runner's arguments for this storage: the builders write `--storage-dir <mount>`; an S3 location
 * replaces that pair with `--storage-url s3://...`. Pure.
 */
export function storageArgs(args: readonly string[], spec: Pick<BackupScheduleSpec, 'storage'>): string[] {
  const s3 = spec.storage.s3;
  if (!s3) return [...args];
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--storage-dir') {
      out.push('--storage-url', s3Url(s3));
      i++;
    } else out.push(args[i]!);
  }
  return out;
}

/**
 * The S3 settings as runner env: values for the settings, Secret references for the credentials (the
 * operator never reads them). Without credentialsSecretRef the SDK's default chain (web identity / IRSA,
 * Pod Identity, instance role) is used.
 */
export function s3Env(s3: S3Storage, memoryLimited = true) {
  const value = (name: string, v: string | undefined) => (v ? [{ name, value: v }] : []);
  const ref = (name: string, key: string) => ({
    name,
    valueFrom: { secretKeyRef: { name: s3.credentialsSecretRef!.name, key } },
  });
  const creds = s3.credentialsSecretRef;
  return [
    { name: 'NODE_OPTIONS', value: S3_RUNNER_NODE_OPTIONS },
    // The upload sizes its parts to fit this (runner/upload-parts.ts); of the container it is set on. Only
    // when the container has a memory limit: without one the downward API gives the node's allocatable
    // memory, which says nothing about what the runner may use.
    ...(memoryLimited
      ? [{ name: S3Env.memoryLimit, valueFrom: { resourceFieldRef: { resource: 'limits.memory' } } }]
      : []),
    { name: S3Env.region, value: s3.region ?? DEFAULT_S3_REGION },
    ...value(S3Env.endpoint, s3.endpoint),
    ...value(S3Env.forcePathStyle, s3.forcePathStyle ? 'true' : undefined),
    ...(creds
      ? [
          ref(S3Env.accessKeyId, creds.accessKeyIdKey ?? S3_ACCESS_KEY_ID_DEFAULT_KEY),
          ref(S3Env.secretAccessKey, creds.secretAccessKeyKey ?? S3_SECRET_ACCESS_KEY_DEFAULT_KEY),
          ...(creds.sessionTokenKey ? [ref(S3Env.sessionToken, creds.sessionTokenKey)] : []),
        ]
      : []),
    ...value(S3Env.sse, s3.serverSideEncryption?.algorithm),
    ...value(S3Env.kmsKeyId, s3.serverSideEncryption?.kmsKeyId),
    ...value(
      S3Env.caFile,
      s3.caBundleSecretRef ? `${S3_CA_MOUNT}/${s3.caBundleSecretRef.key ?? S3_CA_DEFAULT_KEY}` : undefined,
    ),
    ...value(S3Env.objectLockMode, s3.objectLock?.mode),
    ...value(S3Env.objectLockDays, s3.objectLock ? String(s3.objectLock.retentionDays) : undefined),
    ...value(ForeignClusterEnv.clusterId, s3.foreignCluster?.clusterId),
    ...value(ForeignClusterEnv.allow, s3.foreignCluster?.allow),
  ];
}

/** The keys the operator checks in the credentials Secret (missing keys fail a pod late and silently). */
export function s3CredentialKeys(s3: S3Storage): string[] {
  const c = s3.credentialsSecretRef;
  if (!c) return [];
  return [
    c.accessKeyIdKey ?? S3_ACCESS_KEY_ID_DEFAULT_KEY,
    c.secretAccessKeyKey ?? S3_SECRET_ACCESS_KEY_DEFAULT_KEY,
    ...(c.sessionTokenKey ? [c.sessionTokenKey] : []),
  ];
}

/** The volume and mount of the backups: the claim, or, for S3, only the CA bundle if there is one. */
export function storageVolumes(
  spec: Pick<BackupScheduleSpec, 'storage'>,
  claimName: string | undefined,
  mount: string,
) {
  const s3 = spec.storage.s3;
  if (!s3) {
    return {
      volumes: [{ name: 'backups', persistentVolumeClaim: { claimName } }],
      volumeMounts: [{ name: 'backups', mountPath: mount }],
    };
  }
  const ca = s3.caBundleSecretRef;
  if (!ca) return { volumes: [], volumeMounts: [] };
  const key = ca.key ?? S3_CA_DEFAULT_KEY;
  return {
    volumes: [
      { name: 's3-ca', secret: { secretName: ca.name, items: [{ key, path: key }], defaultMode: 0o444 } },
    ],
    volumeMounts: [{ name: 's3-ca', mountPath: S3_CA_MOUNT, readOnly: true }],
  };
}
