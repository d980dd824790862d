import { describe, expect, it } from 'vitest';
import { withBackupScheduleDefaults, type BackupScheduleSpec } from '../api/v1alpha1/backupschedule.js';
import { buildBackupCronJob, buildVerifyCronJob, testRestoreArgs } from './cronjob.js';
import { immutabilityCondition, withoutStaleImmutability } from './record.js';
import { claimOf } from './shared-claim.js';
import { describeStorage, s3Url, storageArgs } from './storage-location.js';

const owner = {
  apiVersion: 'rollback.nxtnewday.io/v1alpha1',
  kind: 'BackupSchedule',
  metadata: { name: 'shop-db', namespace: 'shop', uid: 'schedule-uid' },
};
const s3Spec = (s3: NonNullable<BackupScheduleSpec['storage']['s3']>) =>
  withBackupScheduleDefaults({
    database: { secretRef: { name: 'db' } },
    storage: { s3 },
    verify: { testRestoreSchedule: '0 5 * * *' },
  });
const podOf = (spec: ReturnType<typeof s3Spec>) =>
  buildBackupCronJob({ owner, spec, secret: { name: 'db', keys: new Set(['uri']) }, image: 'i' }).spec
    .jobTemplate.spec.template.spec;

describe('S3 locations in runner pods', () => {
  const full = s3Spec({
    endpoint: 'https://minio.example:9000',
    bucket: 'db-backups',
    prefix: 'prod/shop/',
    region: 'eu-west-1',
    forcePathStyle: true,
    credentialsSecretRef: { name: 's3-keys', sessionTokenKey: 'token' },
    serverSideEncryption: { algorithm: 'aws:kms', kmsKeyId: 'alias/b' },
    caBundleSecretRef: { name: 'minio-ca' },
    objectLock: { mode: 'GOVERNANCE', retentionDays: 7 },
  });

  it('passes --storage-url instead of --storage-dir, and no claim volume', () => {
    const pod = podOf(full);
    const c = pod.containers[0]!;
    expect(c.args.slice(0, 3)).toEqual(['backup', '--storage-url', 's3://db-backups/prod/shop']);
    expect(c.args).not.toContain('--storage-dir');
    expect(pod.volumes).toEqual([
      {
        name: 's3-ca',
        secret: { secretName: 'minio-ca', items: [{ key: 'ca.crt', path: 'ca.crt' }], defaultMode: 0o444 },
      },
      { name: 'tmp', emptyDir: {} },
    ]);
    expect(c.volumeMounts).toContainEqual({ name: 's3-ca', mountPath: '/etc/nxt-s3-ca', readOnly: true });
    // restricted Pod Security unchanged
    expect(c.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
    });
  });

  it('sets settings as values and credentials only as Secret references', () => {
    const env = podOf(full).containers[0]!.env as { name: string; value?: string; valueFrom?: unknown }[];
    const byName = Object.fromEntries(env.map((e) => [e.name, e.value ?? e.valueFrom]));
    expect(byName).toMatchObject({
      AWS_REGION: 'eu-west-1',
      NXT_S3_ENDPOINT: 'https://minio.example:9000',
      NXT_S3_FORCE_PATH_STYLE: 'true',
      NXT_S3_SSE: 'aws:kms',
      NXT_S3_SSE_KMS_KEY_ID: 'alias/b',
      NXT_S3_CA_FILE: '/etc/nxt-s3-ca/ca.crt',
      NXT_S3_OBJECT_LOCK_MODE: 'GOVERNANCE',
      NXT_S3_OBJECT_LOCK_DAYS: '7',
      AWS_ACCESS_KEY_ID: { secretKeyRef: { name: 's3-keys', key: 'AWS_ACCESS_KEY_ID' } },
      AWS_SECRET_ACCESS_KEY: { secretKeyRef: { name: 's3-keys', key: 'AWS_SECRET_ACCESS_KEY' } },
      AWS_SESSION_TOKEN: { secretKeyRef: { name: 's3-keys', key: 'token' } },
      // the container's own memory limit, for the upload's part sizes
      NXT_RUNNER_MEMORY_LIMIT: { resourceFieldRef: { resource: 'limits.memory' } },
    });
    expect(byName.STORAGE_DIR).toBeUndefined();
  });

  it("passes the memory limit only when the runner container has one (the default 1Gi, or the template's), never the node's allocatable memory", () => {
    const envNames = (spec: ReturnType<typeof s3Spec>) =>
      (podOf(spec).containers[0]!.env as { name: string }[]).map((e) => e.name);
    const s3 = { bucket: 'db-backups' };
    expect(envNames(s3Spec(s3))).toContain('NXT_RUNNER_MEMORY_LIMIT');
    const withResources = (resources: object) =>
      ({ ...s3Spec(s3), podTemplate: { resources } }) as ReturnType<typeof s3Spec>;
    expect(envNames(withResources({ limits: { memory: '2Gi' } }))).toContain('NXT_RUNNER_MEMORY_LIMIT');
    expect(envNames(withResources({ requests: { memory: '256Mi' } }))).not.toContain(
      'NXT_RUNNER_MEMORY_LIMIT',
    );
  });

  it('passes spec.storage.s3.foreignCluster to the runner, and nothing without it', () => {
    const names = (spec: ReturnType<typeof s3Spec>) =>
      Object.fromEntries(
        (podOf(spec).containers[0]!.env as { name: string; value?: string }[]).map((e) => [e.name, e.value]),
      );
    const dr = names(s3Spec({ bucket: 'b-1', foreignCluster: { clusterId: 'uid-a', allow: 'Restore' } }));
    expect(dr).toMatchObject({ NXT_S3_FOREIGN_CLUSTER_ID: 'uid-a', NXT_S3_FOREIGN_CLUSTER_ALLOW: 'Restore' });
    expect(Object.keys(names(full)).filter((n) => n.includes('FOREIGN'))).toEqual([]);
  });

  it('without a credentials Secret leaves the SDK default chain (IRSA) alone', () => {
    const env = podOf(s3Spec({ bucket: 'b-1' })).containers[0]!.env as { name: string }[];
    expect(env.map((e) => e.name)).not.toContain('AWS_ACCESS_KEY_ID');
    expect(env).toContainEqual({ name: 'AWS_REGION', value: 'us-east-1' });
  });

  it('test-restore pods read the same bucket', () => {
    const spec = s3Spec({ bucket: 'b-1' });
    const verify = buildVerifyCronJob({
      owner,
      spec,
      secret: { name: 'db', keys: new Set(['uri']) },
      image: 'i',
    })!;
    expect(verify.spec.jobTemplate.spec.template.spec.containers[0]!.args.slice(0, 3)).toEqual([
      'test-restore',
      '--storage-url',
      's3://b-1',
    ]);
  });

  it('a test restore on request (its own args) reads the bucket too', () => {
    expect(testRestoreArgs(s3Spec({ bucket: 'b-1' }), 'id-1').slice(0, 5)).toEqual([
      'test-restore',
      '--storage-url',
      's3://b-1',
      '--id',
      'id-1',
    ]);
  });

  it('names the location', () => {
    expect(s3Url({ bucket: 'b-1' })).toBe('s3://b-1');
    expect(describeStorage(full)).toBe('s3://db-backups/prod/shop');
    expect(describeStorage({ storage: { persistentVolumeClaim: { claimName: 'c' } } }, 'c')).toBe('claim c');
    expect(storageArgs(['verify', '--storage-dir', '/backups', '--id', 'x'], full)).toEqual([
      'verify',
      '--storage-url',
      's3://db-backups/prod/shop',
      '--id',
      'x',
    ]);
    expect(claimOf({ ...owner, spec: full } as never)).toBe('s3://db-backups/prod/shop');
  });

  it('reports whether Object Lock is in force, only when asked for', () => {
    const locked = s3Spec({ bucket: 'b-1', objectLock: { mode: 'COMPLIANCE', retentionDays: 30 } });
    const lock = { mode: 'COMPLIANCE', retainUntil: '2027-01-01T00:00:00.000Z' };
    const startedAt = '2026-12-01T00:00:00.000Z';
    expect(immutabilityCondition(locked, { id: 'x', startedAt, objectLock: lock })).toMatchObject({
      status: 'True',
      reason: 'ObjectLockInForce',
    });
    expect(immutabilityCondition(locked, { id: 'x' })).toMatchObject({
      status: 'False',
      reason: 'ObjectLockNotInForce',
    });
    expect(immutabilityCondition(s3Spec({ bucket: 'b-1' }), { id: 'x', objectLock: lock })).toBeUndefined();
  });

  it('compares the lock with the spec (mode, retain-until) and says Unknown for a reused backup', () => {
    const locked = s3Spec({ bucket: 'b-1', objectLock: { mode: 'COMPLIANCE', retentionDays: 30 } });
    const startedAt = '2026-12-01T00:00:00.000Z';
    const weaker = (objectLock: { mode: string; retainUntil: string }) =>
      immutabilityCondition(locked, { id: 'x', startedAt, objectLock });
    expect(weaker({ mode: 'GOVERNANCE', retainUntil: '2027-01-01T00:00:00.000Z' })).toMatchObject({
      status: 'False',
      reason: 'ObjectLockWeaker',
    });
    expect(weaker({ mode: 'COMPLIANCE', retainUntil: '2026-12-02T00:00:00.000Z' })).toMatchObject({
      status: 'False',
      reason: 'ObjectLockWeaker',
    });
    expect(weaker({ mode: 'COMPLIANCE', retainUntil: '2026-12-31T00:00:00.000Z' })).toMatchObject({
      status: 'True',
    });
    // The server keeps whole seconds: asked at .259 for 30 days, it reports .000 (seen with SeaweedFS).
    const at = '2026-12-01T10:20:30.259Z';
    expect(
      immutabilityCondition(locked, {
        id: 'x',
        startedAt: at,
        objectLock: { mode: 'COMPLIANCE', retainUntil: '2026-12-31T10:20:30.000Z' },
      }),
    ).toMatchObject({ status: 'True' });
    expect(
      immutabilityCondition(locked, {
        id: 'x',
        startedAt: at,
        objectLock: { mode: 'COMPLIANCE', retainUntil: '2026-12-31T10:20:29.000Z' },
      }),
    ).toMatchObject({ status: 'False', reason: 'ObjectLockWeaker' });
    expect(immutabilityCondition(locked, { id: 'x', startedAt, reused: true })).toMatchObject({
      status: 'Unknown',
      reason: 'ObjectLockNotRead',
    });
  });

  it('says Unknown (ObjectLockUnreadable) when the lock could not be read, with a bounded message', () => {
    const locked = s3Spec({ bucket: 'b-1', objectLock: { mode: 'COMPLIANCE', retentionDays: 30 } });
    const c = immutabilityCondition(locked, {
      id: 'x',
      startedAt: '2026-12-01T00:00:00.000Z',
      objectLockUnknown: `reading x.dump: 503 ${'e'.repeat(3000)}`,
    });
    expect(c).toMatchObject({ status: 'Unknown', reason: 'ObjectLockUnreadable' });
    expect(c!.message).toContain('503');
    expect(c!.message.length).toBeLessThanOrEqual(1024);
  });

  it('drops BackupImmutable once the spec no longer asks for Object Lock', () => {
    const conditions = [
      { type: 'Ready', status: 'True' },
      { type: 'BackupImmutable', status: 'True' },
    ];
    const locked = s3Spec({ bucket: 'b-1', objectLock: { mode: 'COMPLIANCE', retentionDays: 30 } });
    expect(withoutStaleImmutability(locked, conditions)).toBe(conditions);
    expect(withoutStaleImmutability(s3Spec({ bucket: 'b-1' }), conditions)).toEqual([conditions[0]]);
    expect(
      withoutStaleImmutability(
        { storage: { persistentVolumeClaim: { claimName: 'c' } } } as never,
        conditions,
      ),
    ).toEqual([conditions[0]]);
    expect(withoutStaleImmutability(s3Spec({ bucket: 'b-1' }), undefined)).toBeUndefined();
  });
});
