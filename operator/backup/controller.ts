import { createHash } from 'node:crypto';
import { Annotation, Label, MANAGED_BY } from '../api/v1alpha1/common.js';
import {
  BACKUP_SCHEDULE_KIND,
  parseBackupSchedule,
  SCHEDULE_RESOURCE,
  withBackupScheduleDefaults,
} from '../api/v1alpha1/backupschedule.js';
import { Controller, type ReconcileContext, type ReconcileResult, type Request } from '../kube/controller.js';
import { isAlreadyExists, isNotFound } from '../kube/errors.js';
import type { MultiInformer } from '../kube/informer.js';
import { childName } from '../kube/objects.js';
import type { KubeObject } from '../kube/rest.js';
import type { ManagerContext } from '../manager.js';
import { forgetSchedule, type Metrics } from '../metrics.js';
import { nextRun, parseCron } from './cron.js';
import {
  backupCronJobName,
  buildBackupCronJob,
  buildCreatedClaim,
  buildJobFromCronJob,
  buildVerifyCronJob,
  createdClaimName,
  verifyCronJobName,
} from './cronjob.js';
import { readJobOutcome } from './job-results.js';
import { JOB_NAME_LABEL, missingSecretKeys } from './pod-builders.js';
import { recordBackupJob, recordTestRestoreJob, RECORDED_ANNOTATION } from './record.js';
import { evaluateRpo } from './rpo.js';
import { notReady, ready, rpoMet } from './schedule-conditions.js';
import { refuseRunnerOverrides, runnerPolicyOf } from './runner-policy.js';
import { ScheduleRun } from './schedule-run.js';
import { schedulesToRecheck, sharedClaimReport } from './shared-claim.js';

export { SCHEDULE_RESOURCE };
const FIELD_MANAGER = 'nxt-rollback-operator';
const MANAGED = `${Label.ManagedBy}=${MANAGED_BY}`;

export function setupBackupScheduleController(ctx: ManagerContext): Controller {
  const schedules = ctx.informers.for<KubeObject>(SCHEDULE_RESOURCE);
  const cronJobs = ctx.informers.for<KubeObject>(
    { group: 'batch', version: 'v1', plural: 'cronjobs' },
    MANAGED,
  );
  const jobs = ctx.informers.for<KubeObject>({ group: 'batch', version: 'v1', plural: 'jobs' }, MANAGED);
  const pods = ctx.informers.for<KubeObject>({ group: '', version: 'v1', plural: 'pods' }, MANAGED);
  const bySchedule = (o: KubeObject) => {
    const s = o.metadata.labels?.[Label.BackupSchedule];
    return s && o.metadata.namespace ? [`${o.metadata.namespace}/${s}`] : [];
  };
  // A schedule that starts or stops sharing a claim changes what the other schedules on it report.
  const sharers = (o: KubeObject) => {
    const ns = o.metadata.namespace;
    return ns ? schedulesToRecheck(o, schedules.list(ns)).map((n) => `${ns}/${n}`) : [];
  };
  return new Controller('backupschedule', new BackupScheduleReconciler(ctx, schedules, jobs, pods), {
    log: ctx.log,
    metrics: ctx.metrics,
    workers: ctx.config.MAX_CONCURRENT_RECONCILES,
  })
    .watches(schedules)
    .watchesMapped(schedules, sharers)
    .owns(cronJobs, BACKUP_SCHEDULE_KIND)
    .watchesMapped(jobs, bySchedule)
    .watchesMapped(pods, bySchedule);
}

/** A step of the reconcile: a result ends the reconcile there (status written), undefined goes on. */
type Phase = (run: ScheduleRun) => Promise<ReconcileResult | undefined>;

/**
 * Reconciles a BackupSchedule into the CronJob(s) it owns, runs emergency backups on request, records what
 * finished Jobs produced (from the runner's termination message) and keeps RPOMet honest. Each concern is
 * one phase; a phase that finds a problem reports it (through schedule-conditions) and ends the reconcile.
 */
export class BackupScheduleReconciler {
  constructor(
    private readonly ctx: ManagerContext,
    private readonly schedules: MultiInformer<KubeObject>,
    private readonly jobs: MultiInformer<KubeObject>,
    private readonly pods: MultiInformer<KubeObject>,
  ) {}

  private readonly phases: Phase[] = [
    (run) => this.parseSpec(run),
    (run) => this.checkCredentials(run),
    (run) => this.ensureStorage(run),
    (run) => this.reportSharedClaim(run),
    (run) => this.applyCronJobs(run),
    (run) => this.startEmergencyBackup(run),
    (run) => this.recordFinishedJobs(run),
  ];

  async reconcile(req: Request, rc: ReconcileContext): Promise<ReconcileResult | void> {
    const obj = this.schedules.get(`${req.namespace}/${req.name}`);
    if (!obj) return forgetSchedule(this.ctx.metrics, req.namespace, req.name); // gone: so are its series
    if (obj.metadata.deletionTimestamp) return;
    const run = new ScheduleRun(this.ctx, obj, rc.log);
    for (const phase of this.phases) {
      const result = await phase(run);
      if (result) return result;
    }
    return this.reportReadiness(run);
  }

  /** Ends the reconcile with Ready=False; a problem that is not stalled is looked at again in a while. */
  private notReady(run: ScheduleRun, reason: string, message: string, stalled = false) {
    run.set(...notReady(reason, message, stalled));
    if (run.previous('Ready')?.reason !== reason) run.event('Warning', reason, message);
    // Secrets are not watched (least privilege: get only), so look again in a while.
    return run.finish(stalled ? undefined : 30_000);
  }

  private async parseSpec(run: ScheduleRun) {
    const parsed = parseBackupSchedule(run.owner);
    if (!parsed.ok) {
      const problems = parsed.problems.map((p) => `${p.path}: ${p.message}`).join('; ');
      return this.notReady(run, 'InvalidSpec', problems, true);
    }
    run.spec = withBackupScheduleDefaults(parsed.value.spec);
    run.status.schedule = run.spec.schedule;
    run.status.timeZone = run.spec.timeZone;
    const refused = refuseRunnerOverrides(run.spec.podTemplate, runnerPolicyOf(this.ctx.config));
    if (refused) return this.notReady(run, refused.reason, refused.message, true);
    return undefined;
  }

  /** The credentials Secret and its keys: only the key names are looked at, never the values. */
  private async checkCredentials(run: ScheduleRun) {
    const { namespace } = run.req;
    const secretName = run.spec.database.secretRef.name;
    let s: KubeObject;
    try {
      s = await this.ctx.client.get<KubeObject>({
        group: '',
        version: 'v1',
        plural: 'secrets',
        namespace,
        name: secretName,
      });
    } catch (e) {
      if (!isNotFound(e)) throw e;
      return this.notReady(
        run,
        'SecretNotFound',
        `Secret "${secretName}" (spec.database.secretRef) not found in namespace ${namespace}`,
      );
    }
    run.secret = {
      name: secretName,
      keys: new Set(Object.keys({ ...(s.data ?? {}), ...(s.stringData ?? {}) })),
    };
    const missing = missingSecretKeys(run.secret.keys);
    if (missing.length) {
      return this.notReady(
        run,
        'SecretKeysMissing',
        `Secret "${secretName}" lacks key(s) ${missing.join(', ')}; provide host, database, username, password (port optional) or uri`,
      );
    }
    return undefined;
  }

  /** The claim backups go to: the user's, or one the operator creates (and never deletes). */
  private async ensureStorage(run: ScheduleRun) {
    const pvc = run.spec.storage.persistentVolumeClaim!;
    if (pvc.claimName) {
      run.claimName = pvc.claimName;
      return undefined;
    }
    const name = createdClaimName(run.req.name);
    try {
      await this.ctx.client.create(
        { group: '', version: 'v1', plural: 'persistentvolumeclaims', namespace: run.req.namespace },
        buildCreatedClaim(run.owner, name, pvc.create!.size, pvc.create!.storageClassName),
      );
      void this.ctx.events.record(
        run.owner,
        'Normal',
        'StorageCreated',
        `created PersistentVolumeClaim ${name} (${pvc.create!.size}); it is kept when the BackupSchedule is deleted`,
      );
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
    }
    run.claimName = name;
    return undefined;
  }

  /** Other schedules writing to the same claim: each prunes only its own backups, but the user should know. */
  private async reportSharedClaim(run: ScheduleRun) {
    const shared = sharedClaimReport(
      run.req.name,
      run.claimName,
      this.schedules.list(run.req.namespace),
      run.before.conditions,
    );
    run.set(shared.condition);
    if (shared.event) run.event(...shared.event);
    return undefined;
  }

  /** The CronJobs, converged with server-side apply (a no-op when nothing changed). */
  private async applyCronJobs(run: ScheduleRun) {
    const input = {
      owner: run.owner,
      spec: run.spec,
      secret: run.secret,
      claimName: run.claimName,
      image: this.ctx.config.OPERATOR_IMAGE,
      allowSuperuserAssertions: this.ctx.config.ALLOW_SUPERUSER_ASSERTIONS,
    };
    run.cronJob = await this.apply(buildBackupCronJob(input));
    run.status.cronJobName = run.cronJob.metadata.name;
    const verify = buildVerifyCronJob(input);
    if (verify) await this.apply(verify);
    else await this.deleteCronJobIfExists(run.req.namespace, verifyCronJobName(run.req.name));
    return undefined;
  }

  /** A new backup-now annotation value means one new Job, created at once. */
  private async startEmergencyBackup(run: ScheduleRun) {
    const wanted = run.obj.metadata.annotations?.[Annotation.BackupNow];
    if (!wanted || wanted === run.status.lastBackupNow?.annotationValue) return undefined;
    const jobName = childName(
      run.cronJob.metadata.name,
      `now-${createHash('sha256').update(wanted).digest('hex').slice(0, 8)}`,
      63,
    );
    try {
      await this.ctx.client.create(
        { group: 'batch', version: 'v1', plural: 'jobs', namespace: run.req.namespace },
        buildJobFromCronJob(run.cronJob as any, jobName),
      );
    } catch (e) {
      if (!isAlreadyExists(e)) throw e; // created before a restart: the same request, not a second backup
    }
    run.status.lastBackupNow = { annotationValue: wanted, jobName };
    run.event('Normal', 'EmergencyBackupStarted', `backup-now=${wanted}: started Job ${jobName}`);
    run.log.info('emergency backup started', { job: jobName });
    return undefined;
  }

  /** Records the first finished, unrecorded Job of the schedule, then comes back for the next one. */
  private async recordFinishedJobs(run: ScheduleRun) {
    const { namespace, name } = run.req;
    for (const job of this.jobs.list(namespace)) {
      if (
        job.metadata.labels?.[Label.BackupSchedule] !== name ||
        job.metadata.annotations?.[RECORDED_ANNOTATION]
      )
        continue;
      const pods = this.pods
        .list(namespace)
        .filter(
          (p) =>
            p.metadata.labels?.[JOB_NAME_LABEL] === job.metadata.name ||
            p.metadata.labels?.['job-name'] === job.metadata.name,
        );
      const outcome = readJobOutcome(job, pods);
      if (outcome.state === 'running') continue;
      const jobRef = { group: 'batch', version: 'v1', plural: 'jobs', namespace, name: job.metadata.name };
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
      const recorded: ReturnType<typeof recordTestRestoreJob> & { observe?: (m: Metrics) => void } =
        component === 'test-restore'
          ? recordTestRestoreJob(run.status, job, outcome, cond)
          : recordBackupJob(run.status, job, outcome, run.spec, cond, run.req);
      for (const [t, r, m] of recorded.events) run.event(t, r, m);
      // Status first, then the marker: a crash in between records the same Job again, idempotently.
      await run.writeStatus();
      await this.ctx.client.patch(jobRef, 'merge', {
        metadata: { annotations: { [RECORDED_ANNOTATION]: outcome.state } },
      });
      // Counted only now: a reconcile that lost the status write (409) never gets here.
      recorded.observe?.(this.ctx.metrics);
      return { requeueAfterMs: 50 }; // re-read with the new resourceVersion before recording the next Job
    }
    return undefined;
  }

  /** RPOMet, the RPO metrics and Ready: the schedule is in place. */
  private reportReadiness(run: ScheduleRun) {
    const { spec, status, before } = run;
    const rpo = evaluateRpo({
      lastSuccess: status.lastSuccessfulBackup?.finishedAt,
      objective: spec.objectives.rpo,
      schedule: spec.schedule,
      now: run.now,
    });
    if (rpo.rpoSeconds !== undefined) status.rpoSeconds = rpo.rpoSeconds;
    run.set(rpoMet(rpo));
    if (rpo.status === 'False' && run.previous('RPOMet')?.status === 'True')
      run.event('Warning', 'RPOBreached', rpo.message);
    const series = { namespace: run.req.namespace, schedule: run.req.name };
    if (rpo.rpoSeconds !== undefined) this.ctx.metrics.rpoSeconds.set(series, rpo.rpoSeconds);
    // From status, not only when a Job is recorded: after a restart or failover the series would otherwise
    // be missing until the next backup, and a "no backup for too long" alert would see nothing.
    if (status.lastSuccessfulBackup)
      this.ctx.metrics.backupLastSuccess.set(
        series,
        Date.parse(status.lastSuccessfulBackup.finishedAt) / 1000,
      );
    // Don't rewrite status for the age alone more than once a minute; RPOMet flips on time via requeueAfter.
    if (
      before.rpoSeconds !== undefined &&
      rpo.rpoSeconds !== undefined &&
      Math.abs(rpo.rpoSeconds - before.rpoSeconds) < 60
    ) {
      status.rpoSeconds = before.rpoSeconds;
    }
    let next = '';
    try {
      next = spec.suspend
        ? 'suspended'
        : `next backup at ${nextRun(parseCron(spec.schedule), run.now)?.toISOString() ?? 'never'} (${spec.schedule}, UTC evaluation)`;
    } catch {
      next = spec.schedule;
    }
    run.set(...ready(spec.suspend, `CronJob ${run.cronJob.metadata.name}: ${next}`));
    if (run.previous('Ready')?.status !== 'True') {
      run.event(
        'Normal',
        'Scheduled',
        `backups scheduled "${spec.schedule}" (${spec.timeZone}) into claim ${run.claimName}`,
      );
    }
    return run.finish(rpo.breachInMs);
  }

  private apply(obj: { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } }) {
    return this.ctx.client.patch<KubeObject>(
      {
        group: 'batch',
        version: 'v1',
        plural: 'cronjobs',
        namespace: obj.metadata.namespace,
        name: obj.metadata.name,
      },
      'apply',
      obj,
      { fieldManager: FIELD_MANAGER, force: true },
    );
  }

  private async deleteCronJobIfExists(namespace: string, name: string) {
    try {
      await this.ctx.client.delete(
        { group: 'batch', version: 'v1', plural: 'cronjobs', namespace, name },
        { propagationPolicy: 'Background' },
      );
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }
}

export { backupCronJobName };
