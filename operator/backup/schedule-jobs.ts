import { createHash } from 'node:crypto';
import { Annotation, ConditionType, Label } from '../api/v1alpha1/common.js';
import { boundIdentity, boundText } from '../kube/bounded.js';
import { isAlreadyExists, isNotFound, userFixableRejection } from '../kube/errors.js';
import type { MultiInformer } from '../kube/informer.js';
import { childName } from '../kube/objects.js';
import type { KubeObject } from '../kube/rest.js';
import type { ManagerContext } from '../manager.js';
import { buildJobFromCronJob, buildTestRestoreJob, testRestoreArgs } from './cronjob.js';
import { outcomeUnknown, readJobOutcome, resultOverdue, type JobOutcome } from './job-results.js';
import { JOB_NAME_LABEL } from './pod-builders.js';
import { recordBackupJob, recordTestRestoreJob, RECORDED_ANNOTATION } from './record.js';
import { jobStartedAt, NO_POD_AFTER_MS, runnerJobProblem } from './runner-pods.js';
import { lastBackupFailed } from './schedule-conditions.js';
import type { ScheduleRun } from './schedule-run.js';
import { chooseTestRestoreBackup } from './test-restore-request.js';

/** How often a finished Job whose runner result has not arrived yet is looked at again. */
const RESULT_RECHECK_MS = 5_000;

/** status.lastBackupNow.annotationValue's maxLength. */
export const HANDLED_VALUE_MAX = 253;

/**
 * The record of a handled request (lastBackupNow, lastTestRestoreNow) as a whole: status is written with a
 * merge patch, which keeps the keys it does not mention, so the previous request's jobName, backupId or message
 * are sent as null (removed) instead of staying beside the new value.
 */
function handledRequest<T extends { annotationValue: string }>(record: T): T {
  return { jobName: null, backupId: null, message: null, ...record } as T;
}

/**
 * The phases of a BackupSchedule reconcile that deal with its Jobs: emergency backups on request, recording
 * what finished Jobs produced, and reporting running Jobs whose pods cannot start.
 */
export class ScheduleJobPhases {
  constructor(
    private readonly ctx: ManagerContext,
    private readonly jobs: MultiInformer<KubeObject>,
    private readonly pods: MultiInformer<KubeObject>,
  ) {}

  /**
   * A new backup-now annotation value means one new Job, created at once. The value is remembered in
   * status, bounded (a long value keeps its start and a hash), so each value acts once.
   */
  async startEmergencyBackup(run: ScheduleRun) {
    const wanted = run.obj.metadata.annotations?.[Annotation.BackupNow];
    if (!wanted) return undefined;
    const handled = boundIdentity(wanted, HANDLED_VALUE_MAX);
    if (handled === run.status.lastBackupNow?.annotationValue) return undefined;
    const jobName = childName(
      run.cronJob.metadata.name,
      `now-${createHash('sha256').update(wanted).digest('hex').slice(0, 8)}`,
      63,
    );
    const request = `backup-now=${boundText(wanted, 64)}`;
    let existed = false;
    try {
      await this.ctx.client.create(
        { group: 'batch', version: 'v1', plural: 'jobs', namespace: run.req.namespace },
        buildJobFromCronJob(run.cronJob as any, jobName),
      );
    } catch (e) {
      // AlreadyExists: created before a restart, the same request, not a second backup
      existed = isAlreadyExists(e);
      if (!existed) {
        const rejection = userFixableRejection(e);
        if (!rejection) throw e;
        // Handled all the same: a new value asks again.
        const message = `${request}: the API server rejected Job ${jobName} (${rejection.code} ${rejection.reason}): ${rejection.message}`;
        run.status.lastBackupNow = handledRequest({ annotationValue: handled });
        run.set(lastBackupFailed('EmergencyBackupRejected', message));
        run.event('Warning', 'EmergencyBackupRejected', message);
        return undefined;
      }
    }
    run.status.lastBackupNow = handledRequest({ annotationValue: handled, jobName });
    const earlier = existed ? this.jobs.get(`${run.req.namespace}/${jobName}`) : undefined;
    const finished = (earlier?.status?.conditions ?? []).some(
      (c: { type: string; status: string }) =>
        (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True',
    );
    if (finished) {
      // The value was used before (A, B, A) and its Job is still there: no second backup under the same id.
      const message = `${request}: this value was already used and Job ${jobName} has finished; set a new value to take another backup`;
      run.event('Warning', 'EmergencyBackupValueReused', message);
      return undefined;
    }
    run.event('Normal', 'EmergencyBackupStarted', `${request}: started Job ${jobName}`);
    run.log.info('emergency backup started', { job: jobName });
    return undefined;
  }

  /**
   * A new test-restore-now value means one test-restore Job of the backup it names (`latest` or an id), built
   * from the backup CronJob's pod so it works without spec.verify.testRestoreSchedule. Its outcome is recorded
   * like a scheduled test restore (recordFinishedJobs → status.lastTestRestore). An unknown backup is refused
   * in status.lastTestRestoreNow and on LastTestRestoreSucceeded; each value acts once.
   */
  async startTestRestore(run: ScheduleRun) {
    const wanted = run.obj.metadata.annotations?.[Annotation.TestRestoreNow];
    if (!wanted) return undefined;
    const handled = boundIdentity(wanted, HANDLED_VALUE_MAX);
    if (handled === run.status.lastTestRestoreNow?.annotationValue) return undefined;
    const request = `test-restore-now=${boundText(wanted, 64)}`;
    const chosen = chooseTestRestoreBackup(run.status, wanted);
    if (!('backup' in chosen)) {
      const message = boundText(`${request}: ${chosen.message}; nothing was started`, 1024);
      run.status.lastTestRestoreNow = handledRequest({ annotationValue: handled, message });
      run.set({
        type: ConditionType.LastTestRestoreSucceeded,
        status: 'False',
        reason: chosen.reason,
        message,
      });
      run.event('Warning', chosen.reason, message);
      return undefined;
    }
    const backupId = chosen.backup.id;
    const jobName = childName(
      run.req.name,
      `restore-now-${createHash('sha256').update(wanted).digest('hex').slice(0, 8)}`,
      63,
    );
    let existed = false;
    try {
      await this.ctx.client.create(
        { group: 'batch', version: 'v1', plural: 'jobs', namespace: run.req.namespace },
        buildTestRestoreJob(run.cronJob as any, jobName, backupId, testRestoreArgs(run.spec, backupId)),
      );
    } catch (e) {
      // AlreadyExists: created before a restart (or a lost status write), the same request, not a second run
      existed = isAlreadyExists(e);
      if (!existed) {
        const rejection = userFixableRejection(e);
        if (!rejection) throw e;
        const message = boundText(
          `${request}: the API server rejected Job ${jobName} (${rejection.code} ${rejection.reason}): ${rejection.message}`,
          1024,
        );
        run.status.lastTestRestoreNow = handledRequest({ annotationValue: handled, backupId, message });
        run.set({
          type: ConditionType.LastTestRestoreSucceeded,
          status: 'False',
          reason: 'TestRestoreRejected',
          message,
        });
        run.event('Warning', 'TestRestoreRejected', message);
        return undefined;
      }
    }
    run.status.lastTestRestoreNow = handledRequest({ annotationValue: handled, backupId, jobName });
    if (!existed)
      run.event('Normal', 'TestRestoreStarted', `${request}: started Job ${jobName} for backup ${backupId}`);
    run.log.info('test restore started', { job: jobName, backup: backupId, existed });
    return undefined;
  }

  /** The schedule's Jobs not yet recorded in status, with their pods. */
  private unrecordedJobs(run: ScheduleRun): { job: KubeObject; pods: KubeObject[] }[] {
    const { namespace, name } = run.req;
    return this.jobs
      .list(namespace)
      .filter(
        (job) =>
          job.metadata.labels?.[Label.BackupSchedule] === name &&
          !job.metadata.annotations?.[RECORDED_ANNOTATION],
      )
      .map((job) => ({
        job,
        pods: this.pods
          .list(namespace)
          .filter(
            (p) =>
              p.metadata.labels?.[JOB_NAME_LABEL] === job.metadata.name ||
              p.metadata.labels?.['job-name'] === job.metadata.name,
          ),
      }));
  }

  /**
   * A finished Job's outcome. Job and pod watches are not ordered: a Complete Job whose pod the cache still
   * shows running (or has lost) is re-read with a live LIST of its pods, then waited for (RESULT_WAIT_MS from
   * its completion) before it is recorded, for good, as a failure whose outcome is unknown.
   */
  private async settledOutcome(run: ScheduleRun, job: KubeObject, pods: KubeObject[]) {
    let outcome: JobOutcome = readJobOutcome(job, pods);
    if (outcome.state !== 'unread') return outcome;
    const live = await this.ctx.client.list<KubeObject>(
      { group: '', version: 'v1', plural: 'pods', namespace: run.req.namespace },
      { labelSelector: `${JOB_NAME_LABEL}=${job.metadata.name}` },
    );
    const own = live.items.filter((p) =>
      (p.metadata.ownerReferences ?? []).some((r) => r.uid === job.metadata.uid),
    );
    outcome = readJobOutcome(job, own);
    if (outcome.state !== 'unread') return outcome;
    if (resultOverdue(outcome, run.now)) return outcomeUnknown(outcome);
    run.recheckWithin(RESULT_RECHECK_MS);
    return undefined;
  }

  /** Records the first finished, unrecorded Job of the schedule, then comes back for the next one. */
  async recordFinishedJobs(run: ScheduleRun) {
    for (const { job, pods } of this.unrecordedJobs(run)) {
      const outcome = await this.settledOutcome(run, job, pods);
      if (!outcome || outcome.state === 'running') continue;
      const jobRef = {
        group: 'batch',
        version: 'v1',
        plural: 'jobs',
        namespace: run.req.namespace,
        name: job.metadata.name,
      };
      // The Job cache lags behind our own marker patch for a moment, and the requeue below comes 50 ms
      // after it: ask the API server whether the Job is still unrecorded, or it would be recorded (and
      // counted in the metrics) a second time.
      const fresh = await this.ctx.client.get<KubeObject>(jobRef).catch((e: unknown) => {
        if (isNotFound(e)) return undefined;
        throw e;
      });
      if (!fresh || fresh.metadata.annotations?.[RECORDED_ANNOTATION]) continue;
      const component = job.metadata.labels?.['app.kubernetes.io/component'];
      const cond = (c: Parameters<ScheduleRun['set']>[0]) => run.set(c);
      const recorded =
        component === 'test-restore'
          ? recordTestRestoreJob(run.status, job, outcome, cond, run.req)
          : recordBackupJob(run.status, job, outcome, run.spec, cond, run.req);
      for (const [t, r, m] of recorded.events) run.event(t, r, m);
      // Status first, then the marker: a crash in between records the same Job again, idempotently.
      await run.writeStatus();
      await this.ctx.client.patch(jobRef, 'merge', {
        metadata: { annotations: { [RECORDED_ANNOTATION]: outcome.state } },
      });
      // Counted only now: a reconcile that lost the status write (409) never gets here.
      recorded.observe(this.ctx.metrics);
      return { requeueAfterMs: 50 }; // re-read with the new resourceVersion before recording the next Job
    }
    return undefined;
  }

  /**
   * A running backup or test-restore Job whose pod cannot start (no node fits, the image cannot be pulled,
   * or no pod at all: a quota refused it) would only fail at its one-hour deadline: report it now on LastBackupSucceeded/LastTestRestoreSucceeded.
   * Ready stays as it is: the schedule is set up, this run is stuck. Pods are watched, so a fix is seen.
   */
  async reportStuckJobs(run: ScheduleRun) {
    for (const { job, pods } of this.unrecordedJobs(run)) {
      const component = job.metadata.labels?.['app.kubernetes.io/component'];
      if (job.metadata.labels?.[Label.Plan] || (component !== 'backup' && component !== 'test-restore'))
        continue; // a plan's Job: the plan reports it
      if (readJobOutcome(job, pods).state !== 'running') continue;
      const problem = runnerJobProblem(job, pods, run.now);
      if (!problem) {
        // A Job without a pod yet: come back when it would count as refused (no pod event will come).
        const left = NO_POD_AFTER_MS - (run.now.getTime() - jobStartedAt(job));
        if (!pods.length && !job.status?.active && left > 0) run.recheckWithin(left + 1_000);
        continue;
      }
      const testRestore = component === 'test-restore';
      const condition = {
        type: testRestore ? ConditionType.LastTestRestoreSucceeded : ConditionType.LastBackupSucceeded,
        status: 'False' as const,
        reason: problem.reason,
        message: `${testRestore ? 'test restore' : 'backup'} Job ${job.metadata.name}: ${problem.message}`,
      };
      const previous = run.previous(condition.type);
      if (previous?.reason !== condition.reason || previous.message !== condition.message)
        run.event('Warning', condition.reason, condition.message);
      run.set(condition);
    }
    return undefined;
  }
}
