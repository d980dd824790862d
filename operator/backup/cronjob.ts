import { API_VERSION, GROUP } from '../api/v1alpha1/common.js';
import { BACKUP_SCHEDULE_KIND, type EffectiveBackupScheduleSpec } from '../api/v1alpha1/backupschedule.js';
import { childName, controllerRef } from '../kube/objects.js';
import type { KubeObject } from '../kube/rest.js';
import { buildRunnerJobTemplate, childLabels, STORAGE_MOUNT, type SecretShape } from './pod-builders.js';
import { OriginEnv } from './runner/origin.js';
import { storageArgs } from './storage-location.js';

/** On a test-restore Job started on request: the backup id it test-restores. */
export const TEST_RESTORE_BACKUP_ANNOTATION = `${GROUP}/backup-id`;

/** The CronJob controller appends an 11-character suffix to Job names, which must stay within 63 characters. */
export const CRONJOB_NAME_MAX = 52;
export const backupCronJobName = (schedule: string) => childName(schedule, 'backup', CRONJOB_NAME_MAX);
export const verifyCronJobName = (schedule: string) => childName(schedule, 'verify', CRONJOB_NAME_MAX);
export const createdClaimName = (schedule: string) => childName(schedule, 'backups', 253);

export interface BackupCronJobInput {
  owner: KubeObject;
  spec: EffectiveBackupScheduleSpec;
  secret: SecretShape;
  /** Undefined for an S3 location (spec.storage.s3). */
  claimName?: string;
  image: string;
  /** ALLOW_SUPERUSER_ASSERTIONS of the operator configuration, for the verify CronJob's assertions. */
  allowSuperuserAssertions?: boolean;
  /** The cluster's id, passed to the runner as NXT_CLUSTER_ID (S3 prefix ownership); unset when unknown. */
  clusterId?: string;
}

const retentionArgs = (spec: EffectiveBackupScheduleSpec) => [
  ...(spec.retention.keepLast ? ['--keep-last', String(spec.retention.keepLast)] : []),
  ...(spec.retention.keepDaily ? ['--keep-daily', String(spec.retention.keepDaily)] : []),
  ...(spec.retention.keepWeekly ? ['--keep-weekly', String(spec.retention.keepWeekly)] : []),
];

/** The runner arguments of a backup pod: dump, verify, then apply the retention policy to the files. */
export const backupArgs = (spec: EffectiveBackupScheduleSpec) => [
  'backup',
  '--storage-dir',
  STORAGE_MOUNT,
  '--id',
  '$(BACKUP_ID)',
  ...retentionArgs(spec),
];

function cronJob(
  input: BackupCronJobInput,
  name: string,
  schedule: string,
  component: 'backup' | 'test-restore',
  args: string[],
) {
  const { owner, spec } = input;
  const labels = childLabels(owner.metadata.name, component);
  return {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: {
      name,
      namespace: owner.metadata.namespace,
      labels,
      ownerReferences: [
        controllerRef({
          ...owner,
          apiVersion: owner.apiVersion ?? API_VERSION,
          kind: owner.kind ?? BACKUP_SCHEDULE_KIND,
        }),
      ],
    },
    spec: {
      schedule,
      timeZone: spec.timeZone,
      suspend: spec.suspend,
      // Forbid: a slow dump is never overlapped by the next one. The deadline turns the runs missed during an
      // outage into one skipped run instead of a burst of catch-up runs.
      concurrencyPolicy: 'Forbid',
      startingDeadlineSeconds: spec.startingDeadlineSeconds,
      successfulJobsHistoryLimit: 3,
      failedJobsHistoryLimit: 3,
      jobTemplate: buildRunnerJobTemplate({
        scheduleName: owner.metadata.name,
        spec,
        secret: input.secret,
        ...(input.claimName ? { claimName: input.claimName } : {}),
        image: input.image,
        args,
        component,
        allowSuperuserAssertions: input.allowSuperuserAssertions,
        ...(input.clusterId ? { clusterId: input.clusterId } : {}),
        origin: {
          ...(component === 'backup' ? { purpose: 'scheduled' as const } : {}),
          schedule: { name: owner.metadata.name, uid: owner.metadata.uid },
        },
      }),
    },
  };
}

/** The CronJob that takes the scheduled backups (every four hours unless the spec says otherwise). */
export function buildBackupCronJob(input: BackupCronJobInput) {
  return cronJob(
    input,
    backupCronJobName(input.owner.metadata.name),
    input.spec.schedule,
    'backup',
    backupArgs(input.spec),
  );
}

/** The CronJob that test-restores the newest verified backup into a scratch database, if asked for. */
export function buildVerifyCronJob(input: BackupCronJobInput) {
  const schedule = input.spec.verify?.testRestoreSchedule;
  if (!schedule) return undefined;
  return cronJob(
    input,
    verifyCronJobName(input.owner.metadata.name),
    schedule,
    'test-restore',
    testRestoreArgs(input.spec, 'latest'),
  );
}

/**
 * The runner arguments of a test restore of backup `id` (or `latest`), with spec.verify.sql's assertions, for
 * the schedule's storage (a Job made on request replaces its template's args with these).
 */
export const testRestoreArgs = (spec: EffectiveBackupScheduleSpec, id: string) =>
  storageArgs(
    [
      'test-restore',
      '--storage-dir',
      STORAGE_MOUNT,
      '--id',
      id,
      ...(spec.verify?.sql?.length ? ['--sql-assertions-json', JSON.stringify(spec.verify.sql)] : []),
    ],
    spec,
  );

/**
 * A Job from the CronJob's template, as `kubectl create job --from=cronjob/...` makes it (annotation
 * cronjob.kubernetes.io/instantiate=manual, which backupPurpose reads as `emergency`), but owned by the
 * BackupSchedule (controller, blockOwnerDeletion): the CronJob controller then neither reports it as an
 * UnexpectedJob nor counts it against (and deletes it for) its history limits before it is recorded; the
 * schedule prunes its recorded on-request Jobs itself. The name is derived from the request, so a retried
 * reconcile finds the Job it already created instead of starting a second backup.
 */
export function buildJobFromCronJob(
  cron: ReturnType<typeof buildBackupCronJob>,
  owner: KubeObject,
  name: string,
) {
  const tpl = cron.spec.jobTemplate;
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name,
      namespace: cron.metadata.namespace,
      labels: { ...tpl.metadata.labels },
      annotations: { 'cronjob.kubernetes.io/instantiate': 'manual' } as Record<string, string>,
      ownerReferences: [
        controllerRef({
          ...owner,
          apiVersion: owner.apiVersion ?? API_VERSION,
          kind: owner.kind ?? BACKUP_SCHEDULE_KIND,
        }),
      ],
    },
    spec: asEmergency(tpl.spec),
  };
}

/**
 * A test restore on request (the test-restore-now annotation): the backup CronJob's pod (image, credentials,
 * claim, placement) with the test-restore arguments and the test-restore labels, so it works whether or not
 * spec.verify.testRestoreSchedule is set, and is recorded like a scheduled test restore. Owned by the
 * BackupSchedule like an emergency backup; the name is derived from the request, so a retried reconcile finds it.
 */
export function buildTestRestoreJob(
  cron: ReturnType<typeof buildBackupCronJob>,
  owner: KubeObject,
  name: string,
  backupId: string,
  args: string[],
) {
  const job = buildJobFromCronJob(cron, owner, name);
  const component = { 'app.kubernetes.io/component': 'test-restore' };
  const spec = structuredClone(cron.spec.jobTemplate.spec) as any;
  spec.template.metadata = {
    ...spec.template.metadata,
    labels: { ...spec.template.metadata?.labels, ...component },
  };
  for (const c of spec.template.spec?.containers ?? []) {
    c.args = args;
    // Only a backup writes provenance into a manifest.
    c.env = (c.env ?? []).filter((e: { name: string }) => e.name !== OriginEnv.purpose);
  }
  return {
    ...job,
    // The backup it was asked for, so the outcome is recorded for it even when the runner wrote no result.
    metadata: {
      ...job.metadata,
      labels: { ...job.metadata.labels, ...component },
      annotations: { [TEST_RESTORE_BACKUP_ANNOTATION]: backupId },
    },
    spec,
  };
}

/** A backup requested through the backup-now annotation records purpose `emergency` in its manifest. */
function asEmergency<T>(jobSpec: T): T {
  const spec = structuredClone(jobSpec) as any;
  for (const c of spec?.template?.spec?.containers ?? []) {
    c.env = (c.env ?? []).map((e: { name: string }) =>
      e.name === OriginEnv.purpose ? { name: OriginEnv.purpose, value: 'emergency' } : e,
    );
  }
  return spec;
}

export function buildCreatedClaim(
  owner: KubeObject,
  name: string,
  size: string | number,
  storageClassName?: string,
) {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name,
      namespace: owner.metadata.namespace,
      // Deliberately no owner reference: deleting a BackupSchedule must never delete the backups it made.
      labels: childLabels(owner.metadata.name, 'storage'),
    },
    spec: {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: String(size) } },
      ...(storageClassName ? { storageClassName } : {}),
    },
  };
}
