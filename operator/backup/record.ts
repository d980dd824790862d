import { BackupId, GROUP, ConditionType, Label } from '../api/v1alpha1/common.js';
import type { BackupScheduleStatus, EffectiveBackupScheduleSpec } from '../api/v1alpha1/backupschedule.js';
import type { ConditionInput } from '../kube/conditions.js';
import type { Request } from '../kube/controller.js';
import type { KubeObject } from '../kube/rest.js';
import type { Metrics } from '../metrics.js';
import { TEST_RESTORE_BACKUP_ANNOTATION } from './cronjob.js';
import type { FinishedOutcome } from './job-results.js';
import { selectBackupsToDelete } from './runner/retention.js';

/** Set on a runner Job once its outcome is in the BackupSchedule's status, so it is recorded once. */
export const RECORDED_ANNOTATION = `${GROUP}/recorded`;
const MAX_LISTED = 500;

type Cond = (c: Omit<ConditionInput, 'observedGeneration'>) => void;
type Ev = ['Normal' | 'Warning', string, string];
type Finished = FinishedOutcome;

type Purpose = NonNullable<NonNullable<BackupScheduleStatus['backups']>[number]['purpose']>;

/**
 * Why a backup Job ran: a plan's safety backup carries the plan label; a Job instantiated by hand from the
 * CronJob (backup-now, or `kubectl create job --from`) is an emergency backup; the rest are the CronJob's.
 */
export function backupPurpose(job: KubeObject): Purpose {
  if (job.metadata.labels?.[Label.Plan]) return 'safety';
  if (job.metadata.annotations?.['cronjob.kubernetes.io/instantiate'] === 'manual') return 'emergency';
  return 'scheduled';
}

/** `v` if it is a valid backup id (status.*.backupId's schema), so a bad value never makes the status write fail. */
export const validBackupId = (v: unknown): string | undefined =>
  typeof v === 'string' && BackupId.safeParse(v).success ? v : undefined;

/** What started a test-restore Job: its CronJob, or a test-restore-now request (which names its backup). */
export type TestRestoreTrigger = 'scheduled' | 'request';
export const testRestoreTrigger = (job: KubeObject): TestRestoreTrigger =>
  job.metadata.annotations?.[TEST_RESTORE_BACKUP_ANNOTATION] !== undefined ? 'request' : 'scheduled';

/**
 * A runner-reported duration as status's integer seconds: a result only requires >= 0, and 1e300 would be
 * written as 1e+300, which the CRD's integer type rejects (the status write would then fail on every retry).
 */
export const wholeSeconds = (s: number) => Math.min(Math.max(0, Math.round(s)), MAX_DURATION_SECONDS);

/** About 115 days: longer than any backup, test restore or activeDeadlineSeconds allows. */
export const MAX_DURATION_SECONDS = 10_000_000;

const ts = (s: string) => new Date(s).toISOString().replace(/\.\d+Z$/, 'Z');

/**
 * Records a finished backup Job in status (bounded by the retention policy) and conditions. The metrics are
 * returned as `observe`, for the caller to apply once the Job is marked recorded: a reconcile whose status
 * write then loses to a newer version (409) must not have counted the Job already.
 */
export function recordBackupJob(
  status: BackupScheduleStatus,
  job: KubeObject,
  outcome: Finished,
  spec: EffectiveBackupScheduleSpec,
  cond: Cond,
  req: Request,
): { events: Ev[]; observe: (metrics: Metrics) => void } {
  const labels = { namespace: req.namespace, schedule: req.name };
  const r = outcome.result?.operation === 'backup' ? outcome.result : undefined;
  if (outcome.state === 'succeeded' && r) {
    const id = validBackupId(r.id) ?? job.metadata.name;
    const entry = {
      id,
      startedAt: ts(r.startedAt),
      finishedAt: ts(r.finishedAt),
      ...(r.bytes !== undefined ? { bytes: r.bytes } : {}),
      ...(r.sha256 ? { sha256: r.sha256 } : {}),
      verified: r.verified === true,
      purpose: backupPurpose(job),
    };
    const known = (status.backups ?? []).some((b) => b.id === id);
    let backups = [entry, ...(status.backups ?? []).filter((b) => b.id !== id)].sort((a, b) =>
      b.finishedAt.localeCompare(a.finishedAt),
    );
    const drop = new Set(
      selectBackupsToDelete(
        backups.map((b) => ({
          id: b.id,
          finishedAt: b.finishedAt,
          verified: b.verified === true,
          ...(b.purpose ? { purpose: b.purpose } : {}),
        })),
        spec.retention,
        new Date(),
      ),
    );
    backups = backups.filter((b) => !drop.has(b.id)).slice(0, MAX_LISTED);
    status.backups = backups;
    const newestGood = backups.find((b) => b.verified);
    if (newestGood) status.lastSuccessfulBackup = newestGood;
    const msg = `backup ${id}: ${r.bytes ?? '?'} bytes, ${r.tableCount ?? '?'} tables, sha256 ${r.sha256?.slice(0, 12) ?? '?'}…, ${entry.verified ? 'verified' : 'NOT verified'} in ${r.durationSeconds.toFixed(1)}s`;
    recordRequestOutcome(status, 'lastBackupNow', job, {
      result: entry.verified ? 'Succeeded' : 'Failed',
      finishedAt: entry.finishedAt,
      durationSeconds: wholeSeconds(r.durationSeconds),
      message: msg,
    });
    cond({
      type: ConditionType.LastBackupSucceeded,
      status: entry.verified ? 'True' : 'False',
      reason: entry.verified ? 'BackupVerified' : 'BackupNotVerified',
      message: msg,
    });
    const immutable = immutabilityCondition(spec, r);
    if (immutable) cond(immutable);
    const observe = (metrics: Metrics) => {
      if (known) return;
      metrics.backupTotal.inc({ ...labels, result: 'succeeded' });
      metrics.backupDuration.observe(labels, r.durationSeconds);
      if (r.bytes !== undefined) metrics.backupSize.set(labels, r.bytes);
      if (newestGood) metrics.backupLastSuccess.set(labels, Date.parse(newestGood.finishedAt) / 1000);
    };
    return {
      observe,
      events: [
        [
          entry.verified ? 'Normal' : 'Warning',
          entry.verified ? 'BackupSucceeded' : 'BackupNotVerified',
          msg,
        ],
      ],
    };
  }
  const msg = `backup Job ${job.metadata.name} failed: ${outcome.reason}: ${outcome.message}`;
  recordRequestOutcome(status, 'lastBackupNow', job, {
    result: 'Failed',
    finishedAt: ts(outcome.finishedAt),
    message: msg,
  });
  cond({
    type: ConditionType.LastBackupSucceeded,
    status: 'False',
    reason: safeReason(outcome.reason),
    message: msg,
  });
  return {
    events: [['Warning', 'BackupFailed', msg]],
    observe: (metrics) => metrics.backupTotal.inc({ ...labels, result: 'failed' }),
  };
}

/**
 * Records a finished test-restore Job: lastTestRestore (with the Job's name, so a request can find its result)
 * and LastTestRestoreSucceeded, unless a newer result is already there (Jobs are recorded one at a time, not
 * in the order they finished). The backup id comes from the runner's result, else the Job's backup-id
 * annotation, each only if it is a valid id ('unknown' otherwise). Its metric is returned as `observe`,
 * applied by the caller once the Job is marked recorded (as for backups).
 */
export function recordTestRestoreJob(
  status: BackupScheduleStatus,
  job: KubeObject,
  outcome: Finished,
  cond: Cond,
  req: Request,
): { events: Ev[]; observe: (metrics: Metrics) => void } {
  const r = outcome.result;
  const ok = outcome.state === 'succeeded';
  const backupId =
    (r?.id !== 'latest' ? validBackupId(r?.id) : undefined) ??
    validBackupId(job.metadata.annotations?.[TEST_RESTORE_BACKUP_ANNOTATION]) ??
    validBackupId(status.lastSuccessfulBackup?.id) ??
    'unknown';
  const seconds =
    r && 'restoreSeconds' in r && typeof r.restoreSeconds === 'number'
      ? r.restoreSeconds
      : (r?.durationSeconds ?? 0);
  const message = ok
    ? `test restore of ${backupId} passed in ${seconds.toFixed(1)}s: ${outcome.message}`
    : `test restore Job ${job.metadata.name} failed: ${outcome.reason}: ${outcome.message}`;
  const finishedAt = ts(outcome.finishedAt);
  recordRequestOutcome(status, 'lastTestRestoreNow', job, {
    result: ok ? 'Succeeded' : 'Failed',
    finishedAt,
    durationSeconds: wholeSeconds(seconds),
    message,
  });
  const current = status.lastTestRestore;
  if (!current || Date.parse(current.finishedAt) <= Date.parse(finishedAt)) {
    status.lastTestRestore = {
      backupId,
      finishedAt,
      durationSeconds: wholeSeconds(seconds),
      result: ok ? 'Succeeded' : 'Failed',
      message: message.slice(0, 1024),
      jobName: job.metadata.name,
    };
    cond({
      type: ConditionType.LastTestRestoreSucceeded,
      status: ok ? 'True' : 'False',
      reason: ok ? 'RestoreVerified' : safeReason(outcome.reason),
      message,
    });
  }
  const trigger = testRestoreTrigger(job);
  return {
    events: [[ok ? 'Normal' : 'Warning', ok ? 'TestRestoreSucceeded' : 'TestRestoreFailed', message]],
    observe: (metrics) =>
      // trigger first: the series still ends in schedule="…",result="…" as before the label was added
      metrics.testRestoreTotal.inc({
        trigger,
        namespace: req.namespace,
        schedule: req.name,
        result: ok ? 'succeeded' : 'failed',
      }),
  };
}

/**
 * The outcome of the current request's own Job (status.last*Now.jobName), kept on the request: the newest
 * result (lastTestRestore, LastBackupSucceeded) may be another Job's, as Jobs are recorded in informer order,
 * not in the order they finished.
 */
function recordRequestOutcome(
  status: BackupScheduleStatus,
  key: 'lastBackupNow' | 'lastTestRestoreNow',
  job: KubeObject,
  o: { result: 'Succeeded' | 'Failed'; finishedAt: string; durationSeconds?: number; message: string },
) {
  const request = status[key];
  if (!request?.jobName || request.jobName !== job.metadata.name) return;
  status[key] = {
    ...request,
    result: o.result,
    finishedAt: o.finishedAt,
    ...(o.durationSeconds !== undefined ? { durationSeconds: wholeSeconds(o.durationSeconds) } : {}),
    message: o.message.slice(0, 1024),
  };
}

/** Condition reasons must match ^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$. */
const safeReason = (r: string) => (/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/.test(r) ? r : 'Failed');

/** Set when spec.storage.s3.objectLock asks for immutable backups: whether the newest one really is. */
export const BACKUP_IMMUTABLE_CONDITION = 'BackupImmutable';

/**
 * The conditions without BackupImmutable when the spec no longer asks for Object Lock (objectLock removed, or
 * the location is a claim now): a reading of an older location must not stay in status. Pure; the same array
 * when there is nothing to remove.
 */
export function withoutStaleImmutability<C extends { type: string }>(
  spec: Pick<EffectiveBackupScheduleSpec, 'storage'>,
  conditions: C[] | undefined,
): C[] | undefined {
  if (spec.storage.s3?.objectLock || !conditions?.some((c) => c.type === BACKUP_IMMUTABLE_CONDITION))
    return conditions;
  return conditions.filter((c) => c.type !== BACKUP_IMMUTABLE_CONDITION);
}

/**
 * Whether the server put the newest backup under the Object Lock retention the schedule asks for (mode equal,
 * retain-until at least retentionDays after the backup started); undefined when it asks for none. A reused
 * backup (a retried Job) carries no lock reading: Unknown, never False. Pure.
 */
export function immutabilityCondition(
  spec: Pick<EffectiveBackupScheduleSpec, 'storage'>,
  r: {
    id?: string;
    startedAt?: string;
    reused?: boolean;
    objectLock?: { mode: string; retainUntil: string };
    objectLockUnknown?: string;
  },
) {
  const wanted = spec.storage.s3?.objectLock;
  if (!wanted) return undefined;
  const lock = r.objectLock;
  const type = BACKUP_IMMUTABLE_CONDITION;
  const asked = `${wanted.mode} ${wanted.retentionDays}d`;
  if (!lock && r.objectLockUnknown !== undefined) {
    return {
      type,
      status: 'Unknown' as const,
      reason: 'ObjectLockUnreadable',
      message:
        `backup ${r.id ?? ''} was written, but reading its Object Lock retention failed: ${r.objectLockUnknown}`.slice(
          0,
          1024,
        ),
    };
  }
  if (!lock && r.reused) {
    return {
      type,
      status: 'Unknown' as const,
      reason: 'ObjectLockNotRead',
      message: `backup ${r.id ?? ''} was reused (already committed); its Object Lock retention was not read again`,
    };
  }
  if (!lock) {
    return {
      type,
      status: 'False' as const,
      reason: 'ObjectLockNotInForce',
      message:
        `backup ${r.id ?? ''} has no Object Lock retention although spec.storage.s3.objectLock asks for ${asked}: ` +
        'enable Object Lock on the bucket (it can only be set when the bucket is created on most servers)',
    };
  }
  // S3 keeps retain-until in whole seconds (a runner asking for started + N days gets it truncated): compare
  // against the start truncated to its second.
  const started = r.startedAt ? Math.floor(Date.parse(r.startedAt) / 1000) * 1000 : NaN;
  const until = Date.parse(lock.retainUntil);
  const longEnough = !Number.isNaN(started) && until >= started + wanted.retentionDays * 86_400_000;
  if (lock.mode !== wanted.mode || !longEnough) {
    return {
      type,
      status: 'False' as const,
      reason: 'ObjectLockWeaker',
      message:
        `backup ${r.id ?? ''} is locked (${lock.mode}) until ${lock.retainUntil}, less than spec.storage.s3.objectLock asks for (${asked} from ${r.startedAt ?? '?'})`.slice(
          0,
          1024,
        ),
    };
  }
  return {
    type,
    status: 'True' as const,
    reason: 'ObjectLockInForce',
    message: `backup ${r.id ?? ''} is locked (${lock.mode}) until ${lock.retainUntil}`.slice(0, 1024),
  };
}
