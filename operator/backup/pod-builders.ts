import { Label, MANAGED_BY } from '../api/v1alpha1/common.js';
import type { EffectiveBackupScheduleSpec } from '../api/v1alpha1/backupschedule.js';
import { ALLOW_SUPERUSER_ASSERTIONS_ENV } from './runner/restore-validation.js';
import { OriginEnv, type BackupPurpose } from './runner/origin.js';
import { ExitCode } from './runner/failure.js';
import { RUNNER_JOB_DEADLINE_SECONDS } from './runner/prune.js';
import { RUNNER_CONTAINER } from './job-results.js';
import { CLUSTER_ID_ENV } from './runner/storage-owner.js';
import { s3Env, storageArgs, storageVolumes } from './storage-location.js';

export const STORAGE_MOUNT = '/backups';
export const JOB_NAME_LABEL = 'batch.kubernetes.io/job-name';
/** Set by the Job controller on every pod of a Job: the Job's UID. */
export const JOB_UID_LABEL = 'batch.kubernetes.io/controller-uid';

/** Which keys of the credentials Secret exist; decides URI or discrete settings. Values are never read. */
export interface SecretShape {
  name: string;
  keys: Set<string>;
}

export interface RunnerPodInput {
  scheduleName: string;
  spec: EffectiveBackupScheduleSpec;
  /** The database credentials Secret; undefined for a pod that needs no database (storage-probe). */
  secret?: SecretShape;
  /** The claim of a persistentVolumeClaim location; unused for S3 (spec.storage.s3). */
  claimName?: string;
  image: string;
  /** e.g. ['backup', '--id', '$(BACKUP_ID)'] — the runner subcommand and its flags. */
  args: string[];
  component: 'backup' | 'test-restore' | 'restore' | 'storage-probe';
  /** Lets the runner run SQL assertions as a superuser (operator configuration ALLOW_SUPERUSER_ASSERTIONS). */
  allowSuperuserAssertions?: boolean;
  /** Provenance a backup runner writes into its manifest (see runner/origin.ts). */
  origin?: RunnerOrigin;
  /** The cluster's id (kube-system Namespace UID or CLUSTER_ID): S3 prefix ownership; unset when unknown. */
  clusterId?: string;
}

export interface RunnerOrigin {
  purpose?: BackupPurpose;
  schedule?: { name: string; uid?: string };
  plan?: { name: string; uid?: string };
}

/**
 * The runner's provenance variables: what the operator knows as values, the Job's own name and UID from the
 * downward API (the Job controller labels every pod with both), so they are right even for Jobs a CronJob
 * creates.
 */
export function originEnv(origin: RunnerOrigin | undefined) {
  const value = (name: string, v: string | undefined) => (v ? [{ name, value: v }] : []);
  const label = (name: string, key: string) => ({
    name,
    valueFrom: { fieldRef: { fieldPath: `metadata.labels['${key}']` } },
  });
  return [
    ...value(OriginEnv.purpose, origin?.purpose),
    ...value(OriginEnv.scheduleName, origin?.schedule?.name),
    ...value(OriginEnv.scheduleUid, origin?.schedule?.uid),
    ...value(OriginEnv.planName, origin?.plan?.name),
    ...value(OriginEnv.planUid, origin?.plan?.uid),
    { name: OriginEnv.namespace, valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
    label(OriginEnv.jobName, JOB_NAME_LABEL),
    label(OriginEnv.jobUid, JOB_UID_LABEL),
  ];
}

export { ALLOW_SUPERUSER_ASSERTIONS_ENV };

export const childLabels = (scheduleName: string, component: string) => ({
  [Label.ManagedBy]: MANAGED_BY,
  [Label.BackupSchedule]: scheduleName,
  'app.kubernetes.io/name': 'nxt-rollback-operator',
  'app.kubernetes.io/component': component,
});

/**
 * Credentials reach the pod only as Secret references: the operator never reads the values, and nothing
 * secret appears in args, status or events. A `uri` key wins over discrete keys.
 */
export function databaseEnv(spec: EffectiveBackupScheduleSpec, secret: SecretShape) {
  const ref = (key: string, optional = false) => ({
    valueFrom: { secretKeyRef: { name: secret.name, key, ...(optional ? { optional: true } : {}) } },
  });
  const env: Record<string, unknown>[] = [];
  if (secret.keys.has('uri')) env.push({ name: 'DATABASE_URL', ...ref('uri') });
  else {
    env.push({ name: 'PGHOST', ...ref('host') });
    if (secret.keys.has('port')) env.push({ name: 'PGPORT', ...ref('port') });
    env.push({ name: 'PGDATABASE', ...ref(secret.keys.has('database') ? 'database' : 'dbname') });
    env.push({ name: 'PGUSER', ...ref(secret.keys.has('username') ? 'username' : 'user') });
    env.push({ name: 'PGPASSWORD', ...ref('password') });
  }
  if (spec.database.sslMode) env.push({ name: 'PGSSLMODE', value: spec.database.sslMode });
  return env;
}

/** The missing keys of a credentials Secret, or [] when it can be used. */
export function missingSecretKeys(keys: Set<string>): string[] {
  if (keys.has('uri')) return [];
  const missing: string[] = [];
  if (!keys.has('host')) missing.push('host');
  if (!keys.has('database') && !keys.has('dbname')) missing.push('database');
  if (!keys.has('username') && !keys.has('user')) missing.push('username');
  if (!keys.has('password')) missing.push('password');
  return missing;
}

/**
 * What the Job controller does with a failed runner pod. Always: FailJob on a usage error or a failure a
 * retry would repeat (the runner's exit codes 2 and 3). `retry-disrupted` (a schedule's backup, verify and
 * test-restore Jobs, which can simply run again): a pod the cluster evicted (node drain, preemption,
 * node-pressure eviction: the DisruptionTarget condition) is replaced without counting against backoffLimit,
 * so a drain does not fail the backup. `once` (a plan's Jobs: its restore must never run twice): a disrupted
 * pod fails the Job like any other failure, and says so (FailJob), instead of a second pod being started.
 */
export function runnerPodFailurePolicy(disrupted: 'retry-disrupted' | 'once') {
  return {
    rules: [
      {
        action: 'FailJob',
        onExitCodes: {
          containerName: RUNNER_CONTAINER,
          operator: 'In',
          values: [ExitCode.Usage, ExitCode.NotRetryable],
        },
      },
      {
        action: disrupted === 'once' ? 'FailJob' : 'Ignore',
        onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }],
      },
    ],
  };
}

/** A Job template for a runner pod that passes the `restricted` Pod Security level. */
export function buildRunnerJobTemplate(input: RunnerPodInput) {
  const { spec, scheduleName } = input;
  const labels = childLabels(scheduleName, input.component);
  const pt = spec.podTemplate ?? {};
  const storage = storageVolumes(spec, input.claimName, STORAGE_MOUNT);
  const resources: { requests?: Record<string, string | number>; limits?: Record<string, string | number> } =
    pt.resources ?? {
      requests: { cpu: '100m', memory: '128Mi' },
      limits: { memory: '1Gi' },
    };
  return {
    metadata: { labels },
    spec: {
      // One retry for failures a new pod may not repeat (a dropped connection); none for a usage error or
      // storage that refuses us (the runner exits ExitCode.NotRetryable): the Job fails at once.
      backoffLimit: 1,
      podFailurePolicy: runnerPodFailurePolicy('retry-disrupted'),
      activeDeadlineSeconds: RUNNER_JOB_DEADLINE_SECONDS,
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          ...(pt.serviceAccountName ? { serviceAccountName: pt.serviceAccountName } : {}),
          ...(pt.nodeSelector ? { nodeSelector: pt.nodeSelector } : {}),
          ...(pt.tolerations ? { tolerations: pt.tolerations } : {}),
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 65532,
            runAsGroup: 65532,
            fsGroup: 65532,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          containers: [
            {
              name: RUNNER_CONTAINER,
              image: pt.image ?? input.image,
              imagePullPolicy: 'IfNotPresent',
              args: storageArgs(input.args, spec),
              env: [
                // The Job's name is the backup id: deterministic, so a retried pod finds the backup it made.
                {
                  name: 'BACKUP_ID',
                  valueFrom: { fieldRef: { fieldPath: `metadata.labels['${JOB_NAME_LABEL}']` } },
                },
                ...(spec.storage.s3
                  ? s3Env(spec.storage.s3, Boolean(resources.limits?.memory))
                  : [{ name: 'STORAGE_DIR', value: STORAGE_MOUNT }]),
                ...(input.allowSuperuserAssertions
                  ? [{ name: ALLOW_SUPERUSER_ASSERTIONS_ENV, value: 'true' }]
                  : []),
                ...originEnv(input.origin),
                ...(input.clusterId ? [{ name: CLUSTER_ID_ENV, value: input.clusterId }] : []),
                ...(input.secret ? databaseEnv(spec, input.secret) : []),
              ],
              resources,
              terminationMessagePolicy: 'FallbackToLogsOnError',
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                runAsNonRoot: true,
                capabilities: { drop: ['ALL'] },
                seccompProfile: { type: 'RuntimeDefault' },
              },
              volumeMounts: [...storage.volumeMounts, { name: 'tmp', mountPath: '/tmp' }],
            },
          ],
          volumes: [...storage.volumes, { name: 'tmp', emptyDir: {} }],
        },
      },
    },
  };
}
