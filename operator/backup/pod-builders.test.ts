import { describe, expect, it } from 'vitest';
import { withBackupScheduleDefaults } from '../api/v1alpha1/backupschedule.js';
import { buildBackupCronJob, buildJobFromCronJob, buildVerifyCronJob } from './cronjob.js';
import { runnerPodFailurePolicy } from './pod-builders.js';
import { STALE_LEFTOVER_MS } from './runner/prune.js';

const owner = {
  apiVersion: 'rollback.nxtnewday.io/v1alpha1',
  kind: 'BackupSchedule',
  metadata: { name: 'shop-db', namespace: 'shop', uid: 'schedule-uid' },
};
const spec = withBackupScheduleDefaults({
  database: { secretRef: { name: 'db' } },
  storage: { persistentVolumeClaim: { claimName: 'backups' } },
  verify: { testRestoreSchedule: '0 5 * * *' },
} as Parameters<typeof withBackupScheduleDefaults>[0]);
const input = {
  owner,
  spec,
  secret: { name: 'db', keys: new Set(['uri']) },
  claimName: 'backups',
  image: 'i',
};
type Env = { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } };
const envOf = (jobSpec: { template: { spec: { containers: { env: unknown[] }[] } } }) =>
  Object.fromEntries(
    (jobSpec.template.spec.containers[0]!.env as Env[])
      .filter((e) => e.name.startsWith('NXT_'))
      .map((e) => [e.name, e.value ?? e.valueFrom?.fieldRef?.fieldPath]),
  );

describe('runner provenance variables (the manifest origin)', () => {
  it('scheduled backups: purpose, schedule name and UID, the Job name and UID from the downward API', () => {
    expect(envOf(buildBackupCronJob(input).spec.jobTemplate.spec)).toEqual({
      NXT_BACKUP_PURPOSE: 'scheduled',
      NXT_SCHEDULE_NAME: 'shop-db',
      NXT_SCHEDULE_UID: 'schedule-uid',
      NXT_NAMESPACE: 'metadata.namespace',
      NXT_JOB_NAME: "metadata.labels['batch.kubernetes.io/job-name']",
      NXT_JOB_UID: "metadata.labels['batch.kubernetes.io/controller-uid']",
    });
  });
  it('an emergency (backup-now) Job says emergency', () => {
    const cron = {
      ...buildBackupCronJob(input),
      metadata: { ...buildBackupCronJob(input).metadata, uid: 'c' },
    };
    expect(envOf(buildJobFromCronJob(cron, owner as any, 'shop-db-backup-now-1').spec)).toMatchObject({
      NXT_BACKUP_PURPOSE: 'emergency',
      NXT_SCHEDULE_UID: 'schedule-uid',
    });
    expect(envOf(cron.spec.jobTemplate.spec).NXT_BACKUP_PURPOSE, 'the CronJob itself is unchanged').toBe(
      'scheduled',
    );
  });
  it('every runner Job carries the cluster id when the operator knows it (S3 prefix ownership)', () => {
    const withId = { ...input, clusterId: 'uid-of-kube-system' };
    expect(envOf(buildBackupCronJob(withId).spec.jobTemplate.spec).NXT_CLUSTER_ID).toBe('uid-of-kube-system');
    expect(envOf(buildVerifyCronJob(withId)!.spec.jobTemplate.spec).NXT_CLUSTER_ID).toBe(
      'uid-of-kube-system',
    );
    expect(envOf(buildBackupCronJob(input).spec.jobTemplate.spec).NXT_CLUSTER_ID).toBeUndefined();
  });
  it('test-restore Jobs write no backup, so they carry no purpose', () => {
    expect(envOf(buildVerifyCronJob(input)!.spec.jobTemplate.spec).NXT_BACKUP_PURPOSE).toBeUndefined();
  });
});

describe('retries of a schedule Job', () => {
  it('retries once, fails the Job at once on a usage error or a storage failure a retry would repeat, and replaces an evicted pod uncounted', () => {
    for (const job of [buildBackupCronJob(input), buildVerifyCronJob(input)!]) {
      const jobSpec = job.spec.jobTemplate.spec;
      expect(jobSpec.backoffLimit).toBe(1);
      expect(jobSpec.template.spec.restartPolicy).toBe('Never');
      expect(jobSpec.podFailurePolicy).toEqual({
        rules: [
          {
            action: 'FailJob',
            onExitCodes: { containerName: 'runner', operator: 'In', values: [2, 3] },
          },
          // A node drain or preemption is not the backup failing: a new pod, not counted.
          { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
        ],
      });
    }
  });

  it('a Job that must run once (a plan restore) fails on a disrupted pod instead of starting another', () => {
    expect(runnerPodFailurePolicy('once').rules).toEqual([
      { action: 'FailJob', onExitCodes: { containerName: 'runner', operator: 'In', values: [2, 3] } },
      { action: 'FailJob', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
    ]);
  });
});

describe('runner Job deadlines and the leftover age', () => {
  it('every runner Job ends well before a dump it left counts as a leftover (prune deletes manifest-less dumps older than STALE_LEFTOVER_MS)', () => {
    for (const job of [buildBackupCronJob(input), buildVerifyCronJob(input)!]) {
      const deadline = job.spec.jobTemplate.spec.activeDeadlineSeconds;
      expect(deadline).toBeGreaterThan(0);
      expect(deadline * 1000 * 2).toBeLessThanOrEqual(STALE_LEFTOVER_MS);
    }
  });
});
