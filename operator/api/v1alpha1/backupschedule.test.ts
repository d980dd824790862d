import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  parseBackupSchedule,
  withBackupScheduleDefaults,
  type BackupScheduleSpec,
} from './backupschedule.js';

// The BackupSchedule sample from API-SKETCH.md, plus the podTemplate for placing backup pods.
const SKETCH = parseYaml(`
apiVersion: rollback.nxtnewday.io/v1alpha1
kind: BackupSchedule
metadata: {name: shop-db, namespace: shop}
spec:
  schedule: "0 */4 * * *"
  timeZone: Etc/UTC
  suspend: false
  startingDeadlineSeconds: 600
  database:
    secretRef: {name: shop-db-credentials}
    sslMode: require
  storage:
    persistentVolumeClaim: {claimName: shop-db-backups}
  retention: {keepLast: 12, keepDaily: 7, keepWeekly: 4}
  verify:
    testRestoreSchedule: "30 2 * * *"
    sql: [{name: orders-present, query: "select count(*) > 0 from orders", expect: "t"}]
  objectives: {rpo: 1h}
  notify: []
  podTemplate:
    nodeSelector: {kubernetes.io/os: linux}
    tolerations: [{key: dedicated, operator: Equal, value: backups, effect: NoSchedule}]
    resources: {requests: {cpu: 100m, memory: 256Mi}, limits: {memory: 1Gi, cpu: 1}}
    serviceAccountName: shop-db-backup
    image: ghcr.io/nxtnewday/backup-tools:1.0.0
`);

const schedule = (spec: Record<string, unknown>) => ({ ...SKETCH, spec: { ...SKETCH.spec, ...spec } });
const minimal: BackupScheduleSpec = {
  database: { secretRef: { name: 'db' } },
  storage: { persistentVolumeClaim: { create: { size: '20Gi' } } },
};

describe('parseBackupSchedule', () => {
  it('accepts the API-SKETCH.md sample and keeps every field', () => {
    const r = parseBackupSchedule(SKETCH);
    expect(r.ok ? r.value.spec : r.problems).toEqual(SKETCH.spec);
  });

  it('accepts an S3 location with every field', () => {
    const s3 = {
      endpoint: 'https://minio.example.com:9000',
      bucket: 'db-backups',
      prefix: 'prod/shop-db/',
      region: 'eu-west-1',
      forcePathStyle: true,
      credentialsSecretRef: {
        name: 's3-keys',
        accessKeyIdKey: 'id',
        secretAccessKeyKey: 'secret',
        sessionTokenKey: 'token',
      },
      serverSideEncryption: { algorithm: 'aws:kms', kmsKeyId: 'alias/backups' },
      caBundleSecretRef: { name: 'minio-ca', key: 'ca.pem' },
      objectLock: { mode: 'COMPLIANCE', retentionDays: 30 },
    };
    const r = parseBackupSchedule(schedule({ storage: { s3 } }));
    expect(r.ok ? r.value.spec.storage : r.problems).toEqual({ s3 });
  });

  it('keeps toleration fields it does not know (newer Kubernetes)', () => {
    const tolerations = [{ key: 'k', operator: 'Exists', futureField: 'x' }];
    const r = parseBackupSchedule(schedule({ podTemplate: { tolerations } }));
    expect(r.ok ? r.value.spec.podTemplate?.tolerations : r.problems).toEqual(tolerations);
  });

  it('accepts a typed status', () => {
    const backup = {
      id: 'shop-db-1',
      finishedAt: '2026-11-28T10:00:00Z',
      bytes: 10,
      sha256: 'a'.repeat(64),
      verified: true,
    };
    const status = {
      observedGeneration: 2,
      schedule: '0 */4 * * *',
      cronJobName: 'shop-db-backup',
      lastSuccessfulBackup: backup,
      backups: [backup],
      lastTestRestore: {
        backupId: 'shop-db-1',
        finishedAt: '2026-11-28T10:05:00Z',
        durationSeconds: 30,
        result: 'Succeeded',
      },
      rpoSeconds: 120,
    };
    const r = parseBackupSchedule({ ...SKETCH, status });
    expect(r.ok ? r.value.status : r.problems).toEqual(status);
  });

  it.each([
    ['an underscore', 'my_bucket', 'S3 bucket name'],
    ['upper case', 'MyBucket', 'S3 bucket name'],
    ['2 characters', 'ab', '>=3'],
    ['64 characters', 'a'.repeat(64), '<=63'],
    ['a leading hyphen', '-bucket', 'S3 bucket name'],
    ['a trailing dot', 'bucket.', 'S3 bucket name'],
    ['two adjacent dots', 'my..bucket', '".."'],
    ['an IPv4 address', '192.168.5.4', 'IP address'],
    ['the xn-- prefix', 'xn--bucket', 'xn--'],
    ['the sthree- prefix', 'sthree-bucket', 'sthree-'],
    ['the -s3alias suffix', 'bucket-s3alias', '-s3alias'],
    ['the --ol-s3 suffix', 'bucket--ol-s3', '--ol-s3'],
  ])('refuses a bucket name with %s', (_what, bucket, message) => {
    const r = parseBackupSchedule(schedule({ storage: { s3: { bucket } } }));
    const problems = r.ok ? [] : r.problems;
    expect(problems, JSON.stringify(problems)).toContainEqual({
      path: 'spec.storage.s3.bucket',
      message: expect.stringContaining(message),
    });
  });

  it.each(['abc', 'db-backups', 'db.backups.example.com', 'a'.repeat(63), '1.2.3', '10.0.0.1a', 'x-n--b'])(
    'accepts the bucket name %s',
    (bucket) => {
      const r = parseBackupSchedule(schedule({ storage: { s3: { bucket } } }));
      expect(r.ok ? [] : r.problems).toEqual([]);
    },
  );

  it.each([
    [
      'a schedule in words',
      schedule({ schedule: 'hourly' }),
      'spec.schedule',
      'spec.schedule must be a 5-field cron',
    ],
    [
      'claimName and create',
      schedule({ storage: { persistentVolumeClaim: { claimName: 'c', create: { size: '1Gi' } } } }),
      'spec.storage.persistentVolumeClaim',
      'exactly one of claimName or create',
    ],
    ['no storage backend', schedule({ storage: {} }), 'spec.storage', 'exactly one backend'],
    [
      'both a claim and s3',
      schedule({ storage: { persistentVolumeClaim: { claimName: 'c' }, s3: { bucket: 'backups' } } }),
      'spec.storage',
      'exactly one backend: persistentVolumeClaim or s3',
    ],
    [
      'a bad bucket',
      schedule({ storage: { s3: { bucket: 'My Bucket' } } }),
      'spec.storage.s3.bucket',
      'bucket name',
    ],
    [
      'a prefix with ..',
      schedule({ storage: { s3: { bucket: 'b-1', prefix: 'a/../b' } } }),
      'spec.storage.s3.prefix',
      '"."',
    ],
    [
      'a prefix segment starting with . (would collide with the runner .pins/ keys)',
      schedule({ storage: { s3: { bucket: 'b-1', prefix: 'db/.pins/x' } } }),
      'spec.storage.s3.prefix',
      'starting with "."',
    ],
    [
      'a leading / in the prefix',
      schedule({ storage: { s3: { bucket: 'b-1', prefix: '/a' } } }),
      'spec.storage.s3.prefix',
      'no leading /',
    ],
    [
      'an endpoint that is no URL',
      schedule({ storage: { s3: { bucket: 'b-1', endpoint: 'minio:9000' } } }),
      'spec.storage.s3.endpoint',
      'URL',
    ],
    [
      'access keys in the endpoint (user:password@)',
      schedule({ storage: { s3: { bucket: 'b-1', endpoint: 'https://AKIAEXAMPLE:s3cr3t@minio:9000' } } }),
      'spec.storage.s3.endpoint',
      'credentials belong in credentialsSecretRef',
    ],
    [
      'a user name in the endpoint (user@)',
      schedule({ storage: { s3: { bucket: 'b-1', endpoint: 'http://AKIAEXAMPLE@minio:9000/' } } }),
      'spec.storage.s3.endpoint',
      'credentials belong in credentialsSecretRef',
    ],
    [
      'a query in the endpoint',
      schedule({ storage: { s3: { bucket: 'b-1', endpoint: 'https://minio:9000/?X-Amz-Credential=k' } } }),
      'spec.storage.s3.endpoint',
      'query',
    ],
    [
      'a fragment in the endpoint',
      schedule({ storage: { s3: { bucket: 'b-1', endpoint: 'https://minio:9000#x' } } }),
      'spec.storage.s3.endpoint',
      'fragment',
    ],
    [
      'a KMS key without aws:kms',
      schedule({
        storage: { s3: { bucket: 'b-1', serverSideEncryption: { algorithm: 'AES256', kmsKeyId: 'k' } } },
      }),
      'spec.storage.s3.serverSideEncryption.kmsKeyId',
      "needs algorithm 'aws:kms'",
    ],
    [
      'a KMS key id with characters no key id, alias or ARN has',
      schedule({
        storage: {
          s3: { bucket: 'b-1', serverSideEncryption: { algorithm: 'aws:kms', kmsKeyId: 'alias/k"$(x)' } },
        },
      }),
      'spec.storage.s3.serverSideEncryption.kmsKeyId',
      'KMS key id',
    ],
    [
      'a CA bundle for an http endpoint',
      schedule({
        storage: { s3: { bucket: 'b-1', endpoint: 'http://minio:9000', caBundleSecretRef: { name: 'ca' } } },
      }),
      'spec.storage.s3.caBundleSecretRef',
      'https://',
    ],
    [
      'an object lock of 0 days',
      schedule({ storage: { s3: { bucket: 'b-1', objectLock: { mode: 'COMPLIANCE', retentionDays: 0 } } } }),
      'spec.storage.s3.objectLock.retentionDays',
      '>=1',
    ],
    [
      'a foreignCluster that allows everything',
      schedule({
        storage: { s3: { bucket: 'b-1', foreignCluster: { clusterId: 'uid-a', allow: 'Write' } } },
      }),
      'spec.storage.s3.foreignCluster.allow',
      'Restore',
    ],
    [
      'a foreignCluster without a cluster id',
      schedule({ storage: { s3: { bucket: 'b-1', foreignCluster: { allow: 'Restore' } } } }),
      'spec.storage.s3.foreignCluster.clusterId',
      'expected string',
    ],
    ['keepWeekly 0', schedule({ retention: { keepWeekly: 0 } }), 'spec.retention.keepWeekly', '>=1'],
    [
      'an unknown sslMode',
      schedule({ database: { secretRef: { name: 'db' }, sslMode: 'yes' } }),
      'spec.database.sslMode',
      'require',
    ],
    [
      'a bad size',
      schedule({ storage: { persistentVolumeClaim: { create: { size: 'big' } } } }),
      'spec.storage.persistentVolumeClaim.create.size',
      'quantity',
    ],
    ['a time zone with spaces', schedule({ timeZone: 'Central European' }), 'spec.timeZone', 'IANA'],
    [
      'an unknown notification event',
      schedule({
        notify: [{ name: 'n', type: 'webhook', urlSecretRef: { name: 's', key: 'u' }, events: ['Started'] }],
      }),
      'spec.notify[0].events[0]',
      'BackupFailed',
    ],
  ])('reports %s at its path', (_what, obj, path, message) => {
    const r = parseBackupSchedule(obj);
    const problems = r.ok ? [] : r.problems;
    expect(problems, JSON.stringify(problems)).toContainEqual({
      path,
      message: expect.stringContaining(message),
    });
  });
});

describe('withBackupScheduleDefaults', () => {
  it('fills in every runtime default', () => {
    expect(withBackupScheduleDefaults(minimal)).toEqual({
      ...minimal,
      schedule: '0 */4 * * *',
      timeZone: 'Etc/UTC',
      suspend: false,
      startingDeadlineSeconds: 600,
      objectives: { rpo: '1h' },
      retention: { keepLast: 12 },
    });
  });

  it('keeps what the user set and does not modify its input', () => {
    const spec: BackupScheduleSpec = {
      ...minimal,
      schedule: '@daily',
      timeZone: 'Europe/Berlin',
      suspend: true,
      startingDeadlineSeconds: 60,
      objectives: { rpo: '30m' },
      retention: { keepLast: 3 },
    };
    const before = structuredClone(spec);
    expect(withBackupScheduleDefaults(spec)).toEqual(spec);
    expect(spec).toEqual(before);
  });

  it('adds no keepLast to a retention that has another rule', () => {
    expect(withBackupScheduleDefaults({ ...minimal, retention: { keepDaily: 7 } }).retention).toEqual({
      keepDaily: 7,
    });
    expect(withBackupScheduleDefaults({ ...minimal, retention: {} }).retention).toEqual({ keepLast: 12 });
  });
});
