import { createHash } from 'node:crypto';
import { Annotation, ConditionType, GROUP, Label } from '../api/v1alpha1/common.js';
import { ROLLBACK_PLAN_KIND } from '../api/v1alpha1/rollbackplan.js';
import { boundIdentity, boundText } from '../kube/bounded.js';
import { isAlreadyExists, isConflict, isNotFound, userFixableRejection } from '../kube/errors.js';
import type { MultiInformer } from '../kube/informer.js';
import { childName, controllerOf } from '../kube/objects.js';
import type { KubeObject } from '../kube/rest.js';
import type { ManagerContext } from '../manager.js';
import {
  buildJobFromCronJob,
  buildTestRestoreJob,
  TEST_RESTORE_BACKUP_ANNOTATION,
  testRestoreArgs,
} from './cronjob.js';
import { outcomeUnknown, readJobOutcome, resultOverdue, type JobOutcome } from './job-results.js';
import { JOB_NAME_LABEL } from './pod-builders.js';
import { recordBackupJob, recordTestRestoreJob, RECORDED_ANNOTATION, validBackupId } from './record.js';
import { jobStartedAt, NO_POD_AFTER_MS, runnerJobProblem } from './runner-pods.js';
import { lastBackupFailed } from './schedule-conditions.js';
import type { ScheduleRun } from './schedule-run.js';
import { STORAGE_PROBE_COMPONENT } from './storage-probe.js';
import { chooseTestRestoreBackup } from './test-restore-request.js';

/** How often a finished Job whose runner result has not arrived yet is looked at again. */
const RESULT_RECHECK_MS = 5_000;

/**
 * On an on-request Job: the request value it was created for, bounded as in status.last*Now.annotationValue.
 * A retry after a lost status write finds a finished Job of the current value that it made itself.
 */
export const REQUEST_VALUE_ANNOTATION = `${GROUP}/request-value`;

/** `body` with the request value it is created for (REQUEST_VALUE_ANNOTATION). */
const withRequestValue = (body: KubeObject, handled: string): KubeObject => ({
  ...body,
  metadata: {
    ...body.metadata,
    annotations: { ...body.metadata.annotations, [REQUEST_VALUE_ANNOTATION]: handled },
  },
});

/**
 * A finished Job of the current request value that is not recorded yet is this request's own Job, whose
 * status write was lost (it finished before the retry): adopted, never a reused value. A value used before
 * (A, B, A) finds its Job recorded, or made before the annotation existed.
 * Known limit: a crash between the status write that records a Job and the patch that marks it recorded leaves
 * it unmarked; if the same value is then used again (A, B, A) while that Job is still kept, the old outcome is
 * read as the new request's. Nothing runs twice; only that request's reported result is stale.
 */
const ownUnrecordedJob = (job: KubeObject, handled: string) =>
  job.metadata.annotations?.[REQUEST_VALUE_ANNOTATION] === handled &&
  !job.metadata.annotations?.[RECORDED_ANNOTATION];

/** status.lastBackupNow.annotationValue's maxLength. */
export const HANDLED_VALUE_MAX = 253;

/** Finished on-request Jobs kept per schedule and purpose once recorded (the CronJobs keep 3 of theirs too). */
export const RECORDED_REQUEST_JOBS_KEPT = 3;

/**
 * The Job of a test-restore-now value: from the schedule's UID and the value, so a schedule re-created under
 * the same name never meets the old one's Jobs, and childName keeps long schedule names apart.
 */
export const testRestoreJobName = (schedule: string, uid: string | undefined, value: string) =>
  childName(
    schedule,
    `restore-now-${createHash('sha256')
      .update(`${uid ?? ''}/${value}`)
      .digest('hex')
      .slice(0, 8)}`,
    63,
  );

/**
 * A Job that has finished: its Complete or Failed condition, or the recorded annotation, since a Job is
 * recorded as soon as its runner's result is final (the pod's termination message, readJobOutcome), about a
 * second before the Job controller sets the condition. A value reused within that second (A, B, A) is refused
 * all the same.
 */
const jobFinished = (job: KubeObject) =>
  !!job.metadata.annotations?.[RECORDED_ANNOTATION] ||
  (job.status?.conditions ?? []).some(
    (c: { type: string; status: string }) =>
      (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True',
  );

/**
 * The phases of a BackupSchedule reconcile that deal with its Jobs: emergency backups on request, recording
 * what finished Jobs produced, and reporting running Jobs whose pods cannot start.
 */
export class ScheduleJobPhases {
  constructor(
    private readonly ctx: ManagerContext,
    private readonly jobs: MultiInformer<KubeObject>,
    private readonly pods: MultiInformer<KubeObject>,
    /** RollbackPlans, to trust a plan's safety backup Job (isScheduleJob); without it, none is recorded. */
    private readonly plans?: MultiInformer<KubeObject>,
  ) {}

  /**
   * A new backup-now annotation value means one new Job, created at once. The value is remembered in
   * status, bounded (a long value keeps its start and a hash), so each value acts once.
   */
  async startEmergencyBackup(run: ScheduleRun) {
    const wanted = run.obj.metadata.annotations?.[Annotation.BackupNow];
    if (!wanted) return undefined;
    const handled = boundIdentity(wanted, HANDLED_VALUE_MAX);
    const last = run.status.lastBackupNow;
    if (handled === last?.annotationValue) {
      if (last.jobName && !last.result) {
        // Recorded by a version that did not keep the result (an upgrade): the Job says, or, once the Job is
        // gone, the backup list (a backup's id is its Job's name). The usual case is a Job just created, which
        // the jobs cache may not hold yet: "gone" is decided only by a live GET (404), never by the cache.
        const job = this.jobs.get(`${run.req.namespace}/${last.jobName}`);
        const recordedAs = job?.metadata.annotations?.[RECORDED_ANNOTATION];
        if (recordedAs) last.result = recordedAs === 'succeeded' ? 'Succeeded' : 'Failed';
        else if (!job && !(await this.getJob(run, last.jobName))) {
          if ((run.status.backups ?? []).some((b) => b.id === last.jobName)) last.result = 'Succeeded';
          else {
            // Neither the Job nor its backup is left to ask: decided, so the gate does not stay in progress.
            last.result = 'Failed';
            last.message = `the outcome of Job ${last.jobName} is unknown: it is gone and no backup of it is recorded`;
          }
        }
      }
      return undefined;
    }
    const jobName = childName(
      run.cronJob.metadata.name,
      `now-${createHash('sha256').update(wanted).digest('hex').slice(0, 8)}`,
      63,
    );
    const request = `backup-now=${boundText(wanted, 64)}`;
    const created = await this.createRequestJob(
      run,
      withRequestValue(buildJobFromCronJob(run.cronJob as any, run.owner, jobName), handled),
      'backup',
    );
    if (created.state === 'rejected' || created.state === 'conflict') {
      // Handled all the same: a new value asks again.
      const message = `${request}: ${created.message}`;
      const reason = created.state === 'rejected' ? 'EmergencyBackupRejected' : 'EmergencyBackupNameConflict';
      // result Failed: the backup-now gate (Reconciling while a value's backup runs) is decided.
      run.status.lastBackupNow = {
        annotationValue: handled,
        result: 'Failed',
        reason,
        message: boundText(message, 1024),
      };
      run.set(lastBackupFailed(reason, message));
      run.event('Warning', reason, message);
      return undefined;
    }
    if (created.state === 'gone') return run.finish(1_000); // deleted after our create: create again
    if (created.state === 'finished' && !ownUnrecordedJob(created.job, handled)) {
      // The value was used before (A, B, A) and its Job is still there: no second backup under the same id.
      // No jobName: that Job's backup is not this request's (the CLI must not report it as taken now).
      const reason = 'EmergencyBackupValueReused';
      const message = boundText(
        `${request}: this value was already used and Job ${jobName} has finished; set a new value to take another backup`,
        1024,
      );
      // result Failed: no backup is taken for this value, so a deployment gated on it must not go ahead.
      run.status.lastBackupNow = { annotationValue: handled, result: 'Failed', reason, message };
      run.event('Warning', reason, message);
      return undefined;
    }
    run.status.lastBackupNow = { annotationValue: handled, jobName };
    run.event('Normal', 'EmergencyBackupStarted', `${request}: started Job ${jobName}`);
    run.log.info('emergency backup started', { job: jobName, existed: created.state === 'running' });
    return undefined;
  }

  /**
   * A new test-restore-now value means one test-restore Job of the backup it names (`latest` or an id), built
   * from the backup CronJob's pod so it works without spec.verify.testRestoreSchedule. Its outcome is recorded
   * like a scheduled test restore (recordFinishedJobs → status.lastTestRestore, with the Job's name). A request
   * that starts nothing (an unknown backup, a value used before) is reported in status.lastTestRestoreNow and
   * a Warning Event only: LastTestRestoreSucceeded reports the last real test restore. Each value acts once.
   */
  async startTestRestore(run: ScheduleRun) {
    const wanted = run.obj.metadata.annotations?.[Annotation.TestRestoreNow];
    if (!wanted) return undefined;
    const handled = boundIdentity(wanted, HANDLED_VALUE_MAX);
    if (handled === run.status.lastTestRestoreNow?.annotationValue) return undefined;
    const request = `test-restore-now=${boundText(wanted, 64)}`;
    const refuse = (reason: string, why: string, more: { backupId?: string } = {}) => {
      const message = boundText(`${request}: ${why}`, 1024);
      run.status.lastTestRestoreNow = { annotationValue: handled, ...more, reason, message };
      run.event('Warning', reason, message);
      return undefined;
    };
    const jobName = testRestoreJobName(run.req.name, run.obj.metadata.uid, wanted);
    const chosen = chooseTestRestoreBackup(run.status, wanted);
    if (!('backup' in chosen)) {
      // A retry after a lost status write: the request's Job may already run a backup that retention has
      // since dropped from status. That Job is the request's; refusing now would hide its result.
      const job = await this.getJob(run, jobName);
      const backupId = validBackupId(job?.metadata.annotations?.[TEST_RESTORE_BACKUP_ANNOTATION]);
      if (
        !job ||
        !backupId ||
        !this.isOwnRequestJob(run, job, 'test-restore') ||
        !ownUnrecordedJob(job, handled)
      )
        return refuse(chosen.reason, `${chosen.message}; nothing was started`);
      run.status.lastTestRestoreNow = { annotationValue: handled, backupId, jobName };
      run.log.info('test restore adopted', { job: jobName, backup: backupId });
      return undefined;
    }
    const created = await this.createRequestJob(
      run,
      withRequestValue(
        buildTestRestoreJob(
          run.cronJob as any,
          run.owner,
          jobName,
          chosen.backup.id,
          testRestoreArgs(run.spec, chosen.backup.id),
        ),
        handled,
      ),
      'test-restore',
    );
    if (created.state === 'gone') return run.finish(1_000); // deleted after our create: create again
    if (created.state === 'rejected' || created.state === 'conflict') {
      // The request could not run for a reason outside it: that is the state of test restores, so the
      // condition says it too.
      const reason = created.state === 'rejected' ? 'TestRestoreRejected' : 'TestRestoreNameConflict';
      const message = boundText(`${request}: ${created.message}`, 1024);
      run.status.lastTestRestoreNow = { annotationValue: handled, reason, message };
      run.set({ type: ConditionType.LastTestRestoreSucceeded, status: 'False', reason, message });
      run.event('Warning', reason, message);
      return undefined;
    }
    // The Job's own backup: a retry after a lost status write must not re-resolve `latest` to a newer one.
    const backupId =
      'job' in created
        ? validBackupId(created.job.metadata.annotations?.[TEST_RESTORE_BACKUP_ANNOTATION])
        : chosen.backup.id;
    if (created.state === 'finished' && !ownUnrecordedJob(created.job, handled))
      return refuse(
        'TestRestoreValueReused',
        `this value was already used and Job ${jobName} has finished; set a new value to test-restore again`,
        backupId ? { backupId } : {},
      );
    run.status.lastTestRestoreNow = { annotationValue: handled, ...(backupId ? { backupId } : {}), jobName };
    if (created.state === 'created')
      run.event('Normal', 'TestRestoreStarted', `${request}: started Job ${jobName} for backup ${backupId}`);
    run.log.info('test restore started', {
      job: jobName,
      backup: backupId,
      existed: created.state !== 'created',
    });
    return undefined;
  }

  /**
   * Creates an on-request Job. A Job of that name that already exists is this request's only if this
   * schedule (or, from before on-request Jobs were owned by the schedule, its CronJob) controls it and it is
   * labelled for this schedule and purpose: a Job of another schedule, of a deleted schedule of the same name
   * (still being garbage-collected) or made by hand is a name conflict, never adopted.
   */
  private async createRequestJob(
    run: ScheduleRun,
    body: KubeObject,
    component: 'backup' | 'test-restore',
  ): Promise<
    | { state: 'created' }
    | { state: 'running' | 'finished'; job: KubeObject }
    | { state: 'rejected' | 'conflict'; message: string }
    | { state: 'gone' }
  > {
    const ref = { group: 'batch', version: 'v1', plural: 'jobs', namespace: run.req.namespace };
    const name = body.metadata.name;
    try {
      await this.ctx.client.create(ref, body);
      return { state: 'created' };
    } catch (e) {
      if (!isAlreadyExists(e)) {
        const rejection = userFixableRejection(e);
        if (!rejection) throw e;
        return {
          state: 'rejected',
          message: `the API server rejected Job ${name} (${rejection.code} ${rejection.reason}): ${rejection.message}`,
        };
      }
    }
    const job = await this.getJob(run, name);
    if (!job) return { state: 'gone' }; // deleted in between: create it again on the requeue
    const owner = controllerOf(job);
    if (!this.isOwnRequestJob(run, job, component)) {
      const by = owner ? `${owner.kind} ${owner.name} (uid ${owner.uid})` : 'no controller';
      return {
        state: 'conflict',
        message: `Job ${name} already exists and is not this BackupSchedule's ${component} Job (controlled by ${by}); nothing was started: delete that Job or set a new value`,
      };
    }
    return { state: jobFinished(job) ? 'finished' : 'running', job };
  }

  private async getJob(run: ScheduleRun, name: string): Promise<KubeObject | undefined> {
    const ref = { group: 'batch', version: 'v1', plural: 'jobs', namespace: run.req.namespace, name };
    return this.ctx.client.get<KubeObject>(ref).catch((e: unknown) => {
      if (isNotFound(e)) return undefined;
      throw e;
    });
  }

  /**
   * An on-request Job of this schedule: controlled by it (or, from before on-request Jobs were owned by the
   * schedule, by its CronJob) by UID, and labelled for this schedule and purpose.
   */
  private isOwnRequestJob(run: ScheduleRun, job: KubeObject, component: 'backup' | 'test-restore') {
    const owner = controllerOf(job);
    return (
      !!owner?.uid &&
      (owner.uid === run.obj.metadata.uid || owner.uid === run.cronJob?.metadata.uid) &&
      job.metadata.labels?.[Label.BackupSchedule] === run.req.name &&
      job.metadata.labels?.['app.kubernetes.io/component'] === component
    );
  }

  /**
   * Whether a Job carrying this schedule's label really is one of its runs: controlled by the schedule (an
   * on-request Job) or one of its CronJobs (by UID: a label anyone can set, an owner UID only the owner's
   * creator knows), or a safety backup of a RollbackPlan that exists with that UID and uses this schedule.
   */
  private isScheduleJob(run: ScheduleRun, job: KubeObject): boolean {
    const owner = controllerOf(job);
    if (!owner?.uid) return false;
    const owners = [run.obj.metadata.uid, run.cronJob?.metadata.uid, run.verifyCronJob?.metadata.uid];
    if (owners.includes(owner.uid)) return true;
    if (owner.kind !== ROLLBACK_PLAN_KIND || job.metadata.labels?.[Label.Plan] !== owner.name) return false;
    const plan = this.plans?.get(`${run.req.namespace}/${owner.name}`);
    return (
      plan?.metadata.uid === owner.uid &&
      plan.spec?.targets?.database?.backupScheduleRef?.name === run.req.name
    );
  }

  /** The schedule's Jobs not yet recorded in status, with their pods. */
  private unrecordedJobs(run: ScheduleRun): { job: KubeObject; pods: KubeObject[] }[] {
    const { namespace, name } = run.req;
    return this.jobs
      .list(namespace)
      .filter(
        (job) =>
          job.metadata.labels?.[Label.BackupSchedule] === name &&
          !job.metadata.annotations?.[RECORDED_ANNOTATION] &&
          // A storage probe is no backup: StorageProbePhase reads it.
          job.metadata.labels?.['app.kubernetes.io/component'] !== STORAGE_PROBE_COMPONENT &&
          this.isScheduleJob(run, job),
      )
      .map((job) => ({
        job,
        pods: this.pods.list(namespace).filter(
          (p) =>
            (p.metadata.labels?.[JOB_NAME_LABEL] === job.metadata.name ||
              p.metadata.labels?.['job-name'] === job.metadata.name) &&
            // Only this Job's own pods: a same-named older Job's pod may linger with the same labels.
            (p.metadata.ownerReferences ?? []).some((r) => r.uid === job.metadata.uid),
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
      // The backup of a backup-now value is recorded: the pre-deployment gate (Ready) opens or fails on it.
      if (run.status.lastBackupNow?.jobName === job.metadata.name)
        run.status.lastBackupNow.result = outcome.state === 'succeeded' ? 'Succeeded' : 'Failed';
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
   * Deletes this schedule's recorded on-request Jobs (backup-now, test-restore-now: owned by the schedule,
   * which the CronJob controller's history limits do not cover) beyond the newest RECORDED_REQUEST_JOBS_KEPT
   * per purpose. Only recorded ones: an unrecorded Job still has an outcome to give.
   */
  async pruneRecordedRequestJobs(run: ScheduleRun) {
    const { namespace, name } = run.req;
    const recorded = this.jobs
      .list(namespace)
      .filter(
        (job) =>
          job.metadata.labels?.[Label.BackupSchedule] === name &&
          controllerOf(job)?.uid === run.obj.metadata.uid &&
          !!job.metadata.annotations?.[RECORDED_ANNOTATION] &&
          !job.metadata.deletionTimestamp,
      )
      .sort((a, b) => (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? ''));
    for (const component of ['backup', 'test-restore']) {
      const surplus = recorded
        .filter((job) => job.metadata.labels?.['app.kubernetes.io/component'] === component)
        .slice(RECORDED_REQUEST_JOBS_KEPT);
      for (const job of surplus) {
        await this.ctx.client
          .delete(
            { group: 'batch', version: 'v1', plural: 'jobs', namespace, name: job.metadata.name },
            { propagationPolicy: 'Background', preconditionsUid: job.metadata.uid },
          )
          .catch((e: unknown) => {
            if (!isNotFound(e) && !isConflict(e)) throw e;
          });
      }
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
