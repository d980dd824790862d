import * as z from 'zod';
import {
  API_VERSION,
  GROUP,
  VERSION,
  BackupId,
  ConditionType,
  Conditions,
  Duration,
  LocalObjectReference,
  ObjectMeta,
  Quantity,
  Timestamp,
  conditionPath,
  cronSchedule,
  mapList,
  nameRule,
  notifyTargets,
  objectName,
  parseWith,
  sqlAssertions,
  withCelRules,
  type KindInfo,
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
        size: Quantity.meta({ description: 'Requested size, e.g. 20Gi.' }),
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

// One optional field per backend and a rule that exactly one is set, so an `objectStore` sibling can be
// added later without changing what existing objects mean.
const Storage = withCelRules(z.object({ persistentVolumeClaim: PersistentVolumeClaimStorage.optional() }), [
  {
    rule: '[has(self.persistentVolumeClaim)].filter(x, x).size() == 1',
    message: 'spec.storage must set exactly one backend: persistentVolumeClaim',
    reason: 'FieldValueRequired',
    check: (s) => [s.persistentVolumeClaim].filter((x) => x !== undefined).length === 1,
  },
]);

const Toleration = z.looseObject({
  key: z.string().max(316).optional(),
  operator: z.enum(['Exists', 'Equal']).optional(),
  value: z.string().max(63).optional(),
  effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
  tolerationSeconds: z.int().optional(),
});

const resourceList = () => z.record(z.string().max(253), Quantity).meta({ maxProperties: 16 });

/** Where and how backup/restore pods run; the operator builds the rest of the pod. */
const PodTemplate = z.object({
  nodeSelector: z.record(z.string().max(316), z.string().max(63)).optional().meta({ maxProperties: 32 }),
  tolerations: z.array(Toleration).max(32).optional().meta({ 'x-kubernetes-list-type': 'atomic' }),
  resources: z.object({ limits: resourceList().optional(), requests: resourceList().optional() }).optional(),
  serviceAccountName: objectName().optional(),
  image: z.string().min(1).max(512).optional().meta({ description: 'Overrides the backup tools image.' }),
});

const positiveCount = () => z.int().min(1).max(500);

const Retention = z.object({
  keepLast: positiveCount().optional(),
  keepDaily: positiveCount().optional(),
  keepWeekly: positiveCount().optional(),
});

export const BackupScheduleSpec = z.object({
  schedule: cronSchedule('spec.schedule').optional(),
  timeZone: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9_+-]+(\/[A-Za-z0-9_+-]+)*$/, 'must be an IANA time zone such as Europe/Berlin')
    .optional(),
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
  verify: z
    .object({
      testRestoreSchedule: cronSchedule('spec.verify.testRestoreSchedule').optional(),
      sql: sqlAssertions().optional(),
    })
    .optional(),
  objectives: z.object({ rpo: Duration.optional() }).optional(),
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

export const BackupScheduleStatus = z.object({
  observedGeneration: z.int().min(0).optional(),
  conditions: Conditions.optional(),
  schedule: z.string().max(128).optional().meta({ description: 'The schedule in effect (spec or default).' }),
  timeZone: z.string().max(64).optional(),
  cronJobName: objectName().optional(),
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
    })
    .optional(),
  rpoSeconds: z.int().min(0).optional().meta({ description: 'Age of the newest good backup.' }),
  lastBackupNow: z
    .object({ annotationValue: z.string().max(253), jobName: objectName().optional() })
    .optional()
    .meta({ description: 'The last backup-now annotation handled, so a value acts once.' }),
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
