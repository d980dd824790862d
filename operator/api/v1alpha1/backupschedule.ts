import * as z from 'zod';
import {
  API_VERSION,
  Annotation,
  GROUP,
  VERSION,
  BackupId,
  ConditionType,
  Conditions,
  LocalObjectReference,
  nonNegativeQuantity,
  ObjectMeta,
  positiveDuration,
  positiveQuantity,
  quantityValue,
  requestsWithinLimitsRule,
  timeZone,
  Timestamp,
  conditionPath,
  dataKey,
  httpUrl,
  cronSchedule,
  defaultsAt,
  mapList,
  nameRule,
  notificationStatus,
  notifyTargets,
  objectName,
  parseWith,
  sqlAssertions,
  withCelRules,
  type CelRule,
  type KindInfo,
  type KindReference,
  type ParseResult,
} from './common.js';

// BackupSchedule: scheduled, verified PostgreSQL backups that a RollbackPlan can restore.

export const BACKUP_SCHEDULE_KIND = 'BackupSchedule';
/** The resource, for the REST client and informers. */
export const SCHEDULE_RESOURCE = { group: GROUP, version: VERSION, plural: 'backupschedules' } as const;
export const BackupScheduleEvents = [
  'BackupSucceeded',
  'BackupFailed',
  'RPOBreached',
  'TestRestoreFailed',
] as const;

const PersistentVolumeClaimStorage = withCelRules(
  z.object({
    claimName: objectName().optional().meta({ description: 'An existing claim in the namespace.' }),
    create: z
      .object({
        size: positiveQuantity('spec.storage.persistentVolumeClaim.create.size').meta({
          description: 'Requested size, e.g. 20Gi.',
        }),
        storageClassName: objectName().optional(),
      })
      .optional()
      .meta({ description: 'Create and own a claim named after the schedule.' }),
  }),
  [
    {
      rule: 'has(self.claimName) != has(self.create)',
      message: 'spec.storage.persistentVolumeClaim must set exactly one of claimName or create',
      check: (p) => (p.claimName === undefined) !== (p.create === undefined),
    },
  ],
);

/**
 * S3's bucket naming rules (general purpose buckets): 3-63 characters of lower-case letters, digits, `.` and
 * `-`, starting and ending with a letter or digit; the CEL rules below add what one linear pattern cannot say.
 */
const S3_BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const IPV4_LIKE = /^[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+$/;
const BUCKET_RESERVED_PREFIXES = ['xn--', 'sthree-', 'amzn-s3-demo-'];
const BUCKET_RESERVED_SUFFIXES = ['-s3alias', '--ol-s3', '.mrap', '--x-s3', '--table-s3'];
const BUCKET_RULES: CelRule<string>[] = [
  {
    rule: "!self.contains('..')",
    message: 'spec.storage.s3.bucket must not contain ".."',
    check: (b) => !b.includes('..'),
  },
  {
    rule: "!self.matches('^[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+$')",
    message: 'spec.storage.s3.bucket must not be formatted as an IP address',
    check: (b) => !IPV4_LIKE.test(b),
  },
  {
    rule: BUCKET_RESERVED_PREFIXES.map((p) => `!self.startsWith('${p}')`).join(' && '),
    message: `spec.storage.s3.bucket must not start with ${BUCKET_RESERVED_PREFIXES.join(', ')} (reserved by S3)`,
    check: (b) => !BUCKET_RESERVED_PREFIXES.some((p) => b.startsWith(p)),
  },
  {
    rule: BUCKET_RESERVED_SUFFIXES.map((x) => `!self.endsWith('${x}')`).join(' && '),
    message: `spec.storage.s3.bucket must not end with ${BUCKET_RESERVED_SUFFIXES.join(', ')} (reserved by S3)`,
    check: (b) => !BUCKET_RESERVED_SUFFIXES.some((x) => b.endsWith(x)),
  },
];
/** Key prefix: path segments of letters, digits and `._-`, no leading `/` (and a CEL rule: no segment starting with `.`,
 * which would collide with the runner's `.pins/`, `.restores/` and owner object). */
const S3_PREFIX = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*\/?$/;
const DOT_SEGMENT = /(^|\/)[.]/;
const secretKeyName = (field: string, description: string) => dataKey(field).optional().meta({ description });

/**
 * An S3-compatible bucket (AWS S3, GCS through its S3 interoperability, MinIO, Ceph, SeaweedFS). Credentials
 * reach the runner pods only as env references to the Secret; without a Secret the AWS SDK's default chain
 * is used (web identity / IRSA, EKS Pod Identity, instance profile).
 */
const S3Storage = withCelRules(
  z.object({
    endpoint: withCelRules(httpUrl().max(512), [
      {
        // The endpoint reaches the runner pods as a plain env value: keys in it would leak (pod spec, logs).
        rule: "!self.matches('^https?://[^/]*@')",
        message:
          'spec.storage.s3.endpoint must not contain user:password@: credentials belong in credentialsSecretRef',
        check: (e) => !/^https?:\/\/[^/]*@/.test(e),
      },
      {
        rule: "!self.contains('?') && !self.contains('#')",
        message: 'spec.storage.s3.endpoint must not contain a query (?) or fragment (#)',
        check: (e) => !e.includes('?') && !e.includes('#'),
      },
    ])
      .optional()
      .meta({
        description:
          'The S3 API endpoint, e.g. https://storage.googleapis.com or http://minio.minio:9000 (no user:password@, no query). Unset: AWS S3 of the region.',
      }),
    bucket: withCelRules(
      z
        .string()
        .min(3)
        .max(63)
        .regex(
          S3_BUCKET,
          'must be an S3 bucket name: 3-63 lower-case letters, digits, "." and "-", starting and ending with a letter or digit',
        ),
      BUCKET_RULES,
    ).meta({ description: 'The bucket; it must exist (the operator never creates one).' }),
    prefix: withCelRules(
      z
        .string()
        .max(256)
        .regex(
          S3_PREFIX,
          'must be a key prefix such as backups/orders (letters, digits, ., _, - and /; no leading /)',
        ),
      [
        {
          rule: "!self.matches('(^|/)[.]')",
          message:
            'spec.storage.s3.prefix must not have a segment starting with "." (such as ., .. or .pins)',
          check: (p) => !DOT_SEGMENT.test(p),
        },
      ],
    )
      .optional()
      .meta({
        description: 'Key prefix under which this schedule writes, e.g. prod/orders. Unset: the bucket root.',
      }),
    region: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[a-z0-9-]+$/, 'must be a region name such as eu-west-1 or auto')
      .optional()
      .meta({ description: 'Signing region; default us-east-1 (MinIO, SeaweedFS and GCS accept it).' }),
    forcePathStyle: z.boolean().optional().meta({
      description:
        'Address the bucket as <endpoint>/<bucket> instead of <bucket>.<endpoint> (MinIO, SeaweedFS).',
    }),
    credentialsSecretRef: z
      .object({
        name: objectName(),
        accessKeyIdKey: secretKeyName(
          'credentialsSecretRef.accessKeyIdKey',
          'Key of the access key id; default AWS_ACCESS_KEY_ID.',
        ),
        secretAccessKeyKey: secretKeyName(
          'credentialsSecretRef.secretAccessKeyKey',
          'Key of the secret access key; default AWS_SECRET_ACCESS_KEY.',
        ),
        sessionTokenKey: secretKeyName(
          'credentialsSecretRef.sessionTokenKey',
          'Key of a session token (temporary credentials); none unless set.',
        ),
      })
      .optional()
      .meta({
        description:
          'A Secret in the namespace with the access keys (GCS: HMAC keys). Unset: the SDK default chain (web identity/IRSA, Pod Identity, instance role).',
      }),
    serverSideEncryption: withCelRules(
      z.object({
        algorithm: z.enum(['AES256', 'aws:kms']),
        kmsKeyId: z
          .string()
          .min(1)
          .max(2048)
          .regex(
            /^[A-Za-z0-9:/_+=.,@-]+$/,
            'must be a KMS key id, alias or ARN (letters, digits and : / _ + = . , @ -)',
          )
          .optional(),
      }),
      [
        {
          rule: "!has(self.kmsKeyId) || self.algorithm == 'aws:kms'",
          message: "spec.storage.s3.serverSideEncryption.kmsKeyId needs algorithm 'aws:kms'",
          fieldPath: '.kmsKeyId',
          check: (e) => e.kmsKeyId === undefined || e.algorithm === 'aws:kms',
        },
      ],
    ).optional(),
    caBundleSecretRef: z
      .object({
        name: objectName(),
        key: secretKeyName('caBundleSecretRef.key', 'Key of the PEM bundle; default ca.crt.'),
      })
      .optional()
      .meta({
        description: 'CA certificates (PEM) to trust for a private endpoint, from a Secret in the namespace.',
      }),
    objectLock: z
      .object({
        mode: z.enum(['GOVERNANCE', 'COMPLIANCE']),
        retentionDays: z.int().min(1).max(36_500),
      })
      .optional()
      .meta({
        description:
          'Write every backup immutable for retentionDays (S3 Object Lock; the bucket must have it enabled). Retention then only hides older backups until their lock ends.',
      }),
    foreignCluster: z
      .object({
        clusterId: z
          .string()
          .min(1)
          .max(128)
          .regex(
            /^[A-Za-z0-9][A-Za-z0-9._:-]*$/,
            "must be a cluster id: the UID of that cluster's kube-system Namespace, or its operator's CLUSTER_ID",
          )
          .meta({
            description:
              "The cluster that owns the prefix: the clusterId in its owner object .nxt-owner.json (the UID of that cluster's kube-system Namespace, or its operator's CLUSTER_ID), as the StorageOwnedByOtherCluster message names it.",
          }),
        allow: z.enum(['Restore', 'TakeOver']).meta({
          description:
            "Restore: verify, test-restore and restore that cluster's backups, never back up or prune there. TakeOver: also back up and prune, recording this cluster as the prefix's owner (that cluster's schedules are refused from then on).",
        }),
      })
      .optional()
      .meta({
        description:
          "Disaster recovery: what this schedule may do in a prefix that a schedule of the same namespace and name in another cluster owns. Unset: every command there is refused (StorageOwnedByOtherCluster). Has no effect in the owner's own cluster.",
      }),
  }),
  [
    {
      rule: "!has(self.endpoint) || !self.endpoint.startsWith('http://') || !has(self.serverSideEncryption) || self.serverSideEncryption.algorithm != 'aws:kms'",
      message: 'spec.storage.s3: aws:kms encryption needs an https:// endpoint',
      fieldPath: '.serverSideEncryption',
      check: (s) => !s.endpoint?.startsWith('http://') || s.serverSideEncryption?.algorithm !== 'aws:kms',
    },
    {
      rule: "!has(self.caBundleSecretRef) || (has(self.endpoint) && self.endpoint.startsWith('https://'))",
      message: 'spec.storage.s3.caBundleSecretRef needs an https:// endpoint',
      fieldPath: '.caBundleSecretRef',
      check: (s) => s.caBundleSecretRef === undefined || (s.endpoint?.startsWith('https://') ?? false),
    },
  ],
);
export type S3Storage = z.infer<typeof S3Storage>;

// One optional field per backend and a rule that exactly one is set, so another backend can be added
// without changing what existing objects mean.
const Storage = withCelRules(
  z.object({
    persistentVolumeClaim: PersistentVolumeClaimStorage.optional(),
    s3: S3Storage.optional().meta({ description: 'An S3-compatible bucket off the cluster.' }),
  }),
  [
    {
      rule: '[has(self.persistentVolumeClaim), has(self.s3)].filter(x, x).size() == 1',
      message: 'spec.storage must set exactly one backend: persistentVolumeClaim or s3',
      reason: 'FieldValueRequired',
      check: (s) => [s.persistentVolumeClaim, s.s3].filter((x) => x !== undefined).length === 1,
    },
  ],
);

/** A label key, as nodeSelector keys and toleration keys must be: `[prefix/]name`. */
const isQualifiedNameCel = (self: string) => `!format.qualifiedName().validate(${self}).hasValue()`;
const QUALIFIED_NAME =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const isQualifiedName = (k: string) => {
  const [prefix, name] = k.includes('/')
    ? [k.slice(0, k.lastIndexOf('/')), k.slice(k.lastIndexOf('/') + 1)]
    : ['', k];
  return QUALIFIED_NAME.test(k) && prefix.length <= 253 && name.length <= 63;
};
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

// The rules the API server applies to a pod's tolerations (ValidateTolerations), at admission instead of
// as a CronJob the API server refuses later.
const Toleration = withCelRules(
  z.looseObject({
    key: z.string().max(316).optional(),
    operator: z.enum(['Exists', 'Equal']).optional(),
    value: z.string().max(63).optional(),
    effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
    tolerationSeconds: z.int().optional(),
  }),
  [
    {
      rule: `!has(self.key) || self.key == '' || ${isQualifiedNameCel('self.key')}`,
      message: 'spec.podTemplate.tolerations[].key must be a label key such as example.com/dedicated',
      fieldPath: '.key',
      check: (t) => !t.key || isQualifiedName(t.key),
    },
    {
      rule: "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
      message: "spec.podTemplate.tolerations[].value must be empty when operator is 'Exists'",
      fieldPath: '.value',
      check: (t) => t.operator !== 'Exists' || !t.value,
    },
    {
      rule: "(has(self.key) && self.key != '') || (has(self.operator) && self.operator == 'Exists')",
      message:
        "spec.podTemplate.tolerations[].operator must be 'Exists' when key is empty (it tolerates every taint)",
      fieldPath: '.operator',
      check: (t) => !!t.key || t.operator === 'Exists',
    },
    {
      rule: '!has(self.value) || !format.labelValue().validate(self.value).hasValue()',
      message: 'spec.podTemplate.tolerations[].value must be a label value (letters, digits, -, _, .)',
      fieldPath: '.value',
      check: (t) => !t.value || LABEL_VALUE.test(t.value),
    },
    {
      rule: "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
      message: "spec.podTemplate.tolerations[].effect must be 'NoExecute' when tolerationSeconds is set",
      fieldPath: '.effect',
      check: (t) => t.tolerationSeconds === undefined || t.effect === 'NoExecute',
    },
  ],
);

const STANDARD_RESOURCES = ['cpu', 'memory', 'ephemeral-storage'];
const isContainerResourceName = (k: string) =>
  STANDARD_RESOURCES.includes(k) || k.startsWith('hugepages-') || (k.includes('/') && isQualifiedName(k));
const resourceList = (field: string) =>
  withCelRules(
    z.record(z.string().max(253), nonNegativeQuantity(`${field} values`)).meta({ maxProperties: 16 }),
    [
      {
        rule:
          "self.all(k, k in ['cpu', 'memory', 'ephemeral-storage'] || k.startsWith('hugepages-') || " +
          `(k.contains('/') && ${isQualifiedNameCel('k')}))`,
        message: `${field} keys must be cpu, memory, ephemeral-storage, hugepages-<size> or a domain-prefixed extended resource`,
        messageExpression:
          `'${field} key "' + self.filter(k, !(k in ['cpu', 'memory', 'ephemeral-storage'] || ` +
          `k.startsWith('hugepages-') || (k.contains('/') && ${isQualifiedNameCel('k')})))[0] + '" must be cpu, ` +
          "memory, ephemeral-storage, hugepages-<size> or a domain-prefixed extended resource'",
        check: (r) => Object.keys(r).every(isContainerResourceName),
      },
      {
        rule: `self.all(k, !k.contains('/') || !isQuantity(string(self[k])) || quantity(string(self[k])).isInteger())`,
        message: `${field}: extended resources (example.com/gpu) must be whole numbers`,
        check: (r) => Object.entries(r).every(([k, v]) => !k.includes('/') || !(quantityValue(v) % 1 !== 0)),
      },
    ],
  );

const nodeSelector = () =>
  withCelRules(z.record(z.string().max(316), z.string().max(63)).meta({ maxProperties: 32 }), [
    {
      rule: `self.all(k, ${isQualifiedNameCel('k')})`,
      message: 'spec.podTemplate.nodeSelector keys must be label keys such as kubernetes.io/os',
      messageExpression:
        `'spec.podTemplate.nodeSelector key "' + self.filter(k, !${isQualifiedNameCel('k')})[0] + ` +
        `'" is not a label key (such as kubernetes.io/os)'`,
      check: (m) => Object.keys(m).every(isQualifiedName),
    },
    {
      rule: 'self.all(k, !format.labelValue().validate(self[k]).hasValue())',
      message: 'spec.podTemplate.nodeSelector values must be label values (letters, digits, -, _, .)',
      check: (m) => Object.values(m).every((v) => LABEL_VALUE.test(v)),
    },
  ]);

/** Where and how backup/restore pods run; the operator builds the rest of the pod. */
const PodTemplate = z.object({
  nodeSelector: nodeSelector().optional(),
  tolerations: z.array(Toleration).max(32).optional().meta({ 'x-kubernetes-list-type': 'atomic' }),
  resources: withCelRules(
    z.object({
      limits: resourceList('spec.podTemplate.resources.limits').optional(),
      requests: resourceList('spec.podTemplate.resources.requests').optional(),
    }),
    [requestsWithinLimitsRule('spec.podTemplate.resources')],
  ).optional(),
  serviceAccountName: objectName().optional(),
  image: z
    .string()
    .min(1)
    .max(512)
    .regex(/^\S+$/, 'must be an image reference without spaces')
    .optional()
    .meta({ description: 'Overrides the backup tools image.' }),
});

const positiveCount = () => z.int().min(1).max(500);

const Retention = z.object({
  keepLast: positiveCount().optional(),
  keepDaily: positiveCount().optional(),
  keepWeekly: positiveCount().optional(),
});

export const BackupScheduleSpec = z.object({
  schedule: cronSchedule('spec.schedule').optional(),
  timeZone: timeZone('spec.timeZone').optional(),
  suspend: z.boolean().optional(),
  startingDeadlineSeconds: z
    .int()
    .min(1)
    .max(86_400)
    .optional()
    .meta({ description: 'Skip a run that could not start within this many seconds (no catch-up burst).' }),
  database: z.object({
    secretRef: LocalObjectReference.meta({
      description: 'Secret with host, port, database, username, password, or uri.',
    }),
    sslMode: z.enum(['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']).optional(),
  }),
  storage: Storage,
  retention: Retention.optional(),
  verify: withCelRules(
    z.object({
      testRestoreSchedule: cronSchedule('spec.verify.testRestoreSchedule').optional(),
      sql: sqlAssertions().optional(),
    }),
    [
      {
        // The assertions run only in test restores: without a schedule they would be ignored, silently.
        rule: '!has(self.sql) || size(self.sql) == 0 || has(self.testRestoreSchedule)',
        message: 'spec.verify.sql runs only in test restores: set spec.verify.testRestoreSchedule too',
        fieldPath: '.sql',
        reason: 'FieldValueRequired',
        check: (v) => !v.sql?.length || v.testRestoreSchedule !== undefined,
      },
    ],
  ).optional(),
  objectives: z.object({ rpo: positiveDuration('spec.objectives.rpo').optional() }).optional(),
  notify: notifyTargets(BackupScheduleEvents).optional(),
  podTemplate: PodTemplate.optional(),
});
export type BackupScheduleSpec = z.infer<typeof BackupScheduleSpec>;

// --- status --------------------------------------------------------------------------------------------

const Backup = z.object({
  id: BackupId,
  startedAt: Timestamp.optional(),
  finishedAt: Timestamp,
  bytes: z.int().min(0).optional(),
  sha256: z
    .string()
    .max(64)
    .regex(/^[a-f0-9]{64}$/)
    .optional(),
  verified: z.boolean().optional(),
  purpose: z
    .enum(['scheduled', 'emergency', 'safety'])
    .optional()
    .meta({
      description:
        "scheduled (the CronJob), emergency (backup-now or a Job made by hand) or safety (a RollbackPlan's " +
        'backup of the pre-restore state, never picked by latestVerified or before).',
    }),
});
export type Backup = z.infer<typeof Backup>;

/**
 * The outcome of an on-request Job, recorded on the request itself (status.last*Now) when its Job is recorded:
 * lastTestRestore and LastBackupSucceeded show the newest result of any Job, so a request's own Job recorded
 * after a newer scheduled one would never show there.
 */
const requestOutcome = (what: string) => ({
  result: z
    .enum(['Succeeded', 'Failed'])
    .optional()
    .meta({ description: `The outcome of this request's ${what} Job, once it is recorded.` }),
  finishedAt: Timestamp.optional(),
  durationSeconds: z.int().min(0).optional(),
});

export const BackupScheduleStatus = z.object({
  observedGeneration: z.int().min(0).optional(),
  conditions: Conditions.optional(),
  schedule: z.string().max(128).optional().meta({ description: 'The schedule in effect (spec or default).' }),
  timeZone: z.string().max(64).optional(),
  cronJobName: objectName().optional(),
  storageLocation: z
    .string()
    .max(512)
    .optional()
    .meta({ description: 'Where the backups go: `claim <name>` or `s3://<bucket>/<prefix>`.' }),
  lastSuccessfulBackup: Backup.optional(),
  // The storage holds the authoritative list; status shows the newest ones so it stays far below etcd's
  // object size limit.
  backups: mapList(Backup, 'id', 500)
    .optional()
    .meta({ description: 'The newest kept backups, newest first (at most 500).' }),
  lastTestRestore: z
    .object({
      backupId: BackupId,
      finishedAt: Timestamp,
      durationSeconds: z.int().min(0).optional(),
      result: z.enum(['Succeeded', 'Failed']),
      message: z.string().max(1024).optional(),
      jobName: objectName().optional().meta({
        description: 'The test-restore Job this result is from (lastTestRestoreNow.jobName on request).',
      }),
    })
    .optional(),
  rpoSeconds: z.int().min(0).optional().meta({ description: 'Age of the newest good backup.' }),
  notifications: notificationStatus(BackupScheduleEvents).optional(),
  lastBackupNow: z
    .object({
      annotationValue: z.string().max(253),
      jobName: objectName().optional(),
      ...requestOutcome('backup'),
      message: z.string().max(1024).optional().meta({
        description: "Why the request was not started, or its backup Job's outcome once it is recorded.",
      }),
      reason: z
        .string()
        .max(128)
        .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/)
        .optional()
        .meta({
          description: 'Why the request was not started, as a CamelCase reason (also the Event reason).',
        }),
    })
    .optional()
    .meta({ description: 'The last backup-now annotation handled, so a value acts once.' }),
  lastTestRestoreNow: z
    .object({
      annotationValue: z.string().max(253),
      backupId: BackupId.optional().meta({ description: 'The backup being test-restored.' }),
      jobName: objectName().optional(),
      ...requestOutcome('test restore'),
      message: z
        .string()
        .max(1024)
        .optional()
        .meta({ description: "Why the request was not started, or its Job's outcome once it finished." }),
      reason: z
        .string()
        .max(128)
        .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/)
        .optional()
        .meta({
          description: 'Why the request was not started, as a CamelCase reason (also the Event reason).',
        }),
    })
    .optional()
    .meta({ description: 'The last test-restore-now annotation handled, so a value acts once.' }),
  storageCheck: z
    .object({
      hash: z
        .string()
        .regex(/^[a-f0-9]{16,64}$/)
        .max(64)
        .meta({
          description:
            'Hash of what was probed: spec.storage.s3, a pinned runner image, the ServiceAccount, the probe-storage annotation, and a digest of the Secret values the location uses.',
        }),
      jobName: objectName().optional().meta({ description: 'The probe Job of this attempt.' }),
      attempt: z
        .int()
        .min(1)
        .max(100000)
        .meta({ description: 'Probes of this hash so far (retries count).' }),
      result: z.enum(['Succeeded', 'Failed']).optional(),
      reason: z
        .string()
        .max(128)
        .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/)
        .optional()
        .meta({ description: "The probe's failure reason (also StorageReady's)." }),
      checkedAt: Timestamp.optional().meta({ description: 'When the result was recorded.' }),
      nextAttemptAt: Timestamp.optional().meta({
        description:
          'After a failure: when the next probe runs (30 s doubling to 15 min for network and throttling, 5 min doubling to 1 h otherwise).',
      }),
    })
    .optional()
    .meta({
      description:
        'The storage probe of an S3 location (StorageReady): one probe Job per change of the location or its Secrets.',
    }),
});
export type BackupScheduleStatus = z.infer<typeof BackupScheduleStatus>;

// Emergency backup Jobs are `<name>-backup-now-<8 hex>`: 43 + 20 = 63, and the Job name is the backup id.
export const BackupSchedule = withCelRules(
  z.object({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal(BACKUP_SCHEDULE_KIND),
    metadata: ObjectMeta,
    spec: BackupScheduleSpec,
    status: BackupScheduleStatus.optional(),
  }),
  [nameRule(BACKUP_SCHEDULE_KIND, 43)],
);
export type BackupSchedule = z.infer<typeof BackupSchedule>;

/** Validates an object read from the API server; problems name their path (`spec.storage...`). */
export const parseBackupSchedule = (obj: unknown): ParseResult<BackupSchedule> =>
  parseWith(BackupSchedule, obj);

// --- runtime defaults ----------------------------------------------------------------------------------
// Not in the schema: a schema default is written into the stored object and shows up as drift in GitOps.

export const BACKUP_SCHEDULE_DEFAULTS = {
  schedule: '0 */4 * * *',
  timeZone: 'Etc/UTC',
  suspend: false,
  startingDeadlineSeconds: 600,
  rpo: '1h',
  keepLast: 12,
} as const;

/** A spec with every runtime default filled in: what the controller acts on. */
export type EffectiveBackupScheduleSpec = Omit<
  BackupScheduleSpec,
  'schedule' | 'timeZone' | 'suspend' | 'startingDeadlineSeconds' | 'objectives' | 'retention'
> & {
  schedule: string;
  timeZone: string;
  suspend: boolean;
  startingDeadlineSeconds: number;
  objectives: { rpo: string };
  retention: z.infer<typeof Retention>;
};

/**
 * Fills in the runtime defaults; pure. Retention gets keepLast 12 only when it sets no rule at all: a user
 * who wrote `keepDaily: 7` asked for a daily policy, and an extra keepLast would keep more than asked.
 */
export function withBackupScheduleDefaults(spec: BackupScheduleSpec): EffectiveBackupScheduleSpec {
  const d = BACKUP_SCHEDULE_DEFAULTS;
  const r = spec.retention ?? {};
  const noRule = r.keepLast === undefined && r.keepDaily === undefined && r.keepWeekly === undefined;
  return {
    ...spec,
    schedule: spec.schedule ?? d.schedule,
    timeZone: spec.timeZone ?? d.timeZone,
    suspend: spec.suspend ?? d.suspend,
    startingDeadlineSeconds: spec.startingDeadlineSeconds ?? d.startingDeadlineSeconds,
    objectives: { ...spec.objectives, rpo: spec.objectives?.rpo ?? d.rpo },
    retention: noRule ? { ...r, keepLast: d.keepLast } : { ...r },
  };
}

/** Where each BACKUP_SCHEDULE_DEFAULTS value applies: the API reference shows it at that field. */
export const BACKUP_SCHEDULE_DEFAULT_PATHS = {
  schedule: 'spec.schedule',
  timeZone: 'spec.timeZone',
  suspend: 'spec.suspend',
  startingDeadlineSeconds: 'spec.startingDeadlineSeconds',
  rpo: 'spec.objectives.rpo',
  keepLast: 'spec.retention.keepLast',
} as const satisfies Record<keyof typeof BACKUP_SCHEDULE_DEFAULTS, string>;

/** The API reference's view of a BackupSchedule beyond the schema (docs/api-reference.md). */
export const BACKUP_SCHEDULE_REFERENCE: KindReference = {
  guide: 'backupschedule.md',
  defaults: {
    ...defaultsAt(BACKUP_SCHEDULE_DEFAULTS, BACKUP_SCHEDULE_DEFAULT_PATHS),
    'spec.retention.keepLast': `\`${BACKUP_SCHEDULE_DEFAULTS.keepLast}\` when retention sets no rule at all`,
  },
  conditions: {
    [ConditionType.Ready]:
      'kstatus: True when the CronJob is in place (Scheduled) or suspended and the storage is ready; False names what blocks it ' +
      '(a failed S3 probe: its reason). It stays True when backups fail: watch LastBackupSucceeded and RPOMet.',
    [ConditionType.Reconciling]:
      'kstatus: True while a backup-now backup runs (BackupInProgress) or the S3 location is being probed (StorageCheckInProgress).',
    [ConditionType.Stalled]:
      'kstatus: True when nothing changes until the spec (or the operator configuration) does.',
    [ConditionType.LastBackupSucceeded]:
      'The last recorded backup Job succeeded and its file was verified; False with the runner or Job reason.',
    [ConditionType.RPOMet]:
      'The newest verified backup is younger than objectives.rpo (False: ObjectiveBreached or NoBackupYet).',
    [ConditionType.LastTestRestoreSucceeded]: 'The last test restore succeeded (RestoreVerified).',
    StorageShared:
      'Whether another BackupSchedule in the namespace writes to the same claim (or bucket and prefix).',
    StorageReady:
      'S3 locations: a probe Job checked the bucket, credentials, listing, a write and delete, the owner object and Object Lock (True, StorageReachable; False with the runner reason; Unknown while it runs). Claims: True (ClaimUsable) once the claim is found usable, True (ClaimCreated) for a claim the operator created, Unknown (ClaimNotChecked) when it may not be read, False with the claim reason.',
    BackupImmutable:
      'Only with spec.storage.s3.objectLock (removed with it): True (ObjectLockInForce) when the newest backup is under the Object Lock retention asked for, False when the server did not lock it (ObjectLockNotInForce) or locked it for less (ObjectLockWeaker), Unknown when the lock could not be read (ObjectLockUnreadable) or the backup was reused (ObjectLockNotRead).',
  },
  annotations: {
    [Annotation.BackupNow]:
      'Takes a backup now (an emergency backup). A new value acts once (status.lastBackupNow).',
    [Annotation.TestRestoreNow]:
      'Test-restores one backup now: `latest` or a backup id, optionally `@<anything>` to ask again. A new value acts once (status.lastTestRestoreNow); the result is status.lastTestRestore.',
  },
  events: {
    BackupSucceeded: 'A backup succeeded and was verified.',
    BackupFailed: 'A backup failed.',
    RPOBreached: 'RPOMet turned False: the newest good backup is older than the objective.',
    TestRestoreFailed: 'A test restore failed.',
  } satisfies Record<(typeof BackupScheduleEvents)[number], string>,
};

// --- CRD -----------------------------------------------------------------------------------------------

export const BACKUP_SCHEDULE_INFO: KindInfo = {
  kind: BACKUP_SCHEDULE_KIND,
  listKind: 'BackupScheduleList',
  plural: 'backupschedules',
  singular: 'backupschedule',
  shortNames: ['bks'],
  categories: ['nxt'],
  schema: BackupSchedule,
  printerColumns: [
    // status, not spec: the default schedule is applied at runtime and never written into the spec
    { name: 'Schedule', type: 'string', jsonPath: '.status.schedule' },
    { name: 'Last Backup', type: 'date', jsonPath: '.status.lastSuccessfulBackup.finishedAt' },
    {
      name: 'RPO',
      type: 'integer',
      jsonPath: '.status.rpoSeconds',
      description: 'Age of the newest good backup (s).',
    },
    { name: 'Ready', type: 'string', jsonPath: conditionPath(ConditionType.Ready, 'status') },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ],
};
