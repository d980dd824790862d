import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import {
  Annotation,
  API_VERSION,
  ConditionType,
  GROUP,
  Label,
  MANAGED_BY,
  VERSION,
} from '../api/v1alpha1/common.js';
import {
  BACKUP_SCHEDULE_KIND,
  parseBackupSchedule,
  withBackupScheduleDefaults,
  type BackupScheduleStatus,
  type EffectiveBackupScheduleSpec,
} from '../api/v1alpha1/backupschedule.js';
import { setCondition, type ConditionInput } from '../kube/conditions.js';
import { Controller, type ReconcileContext, type ReconcileResult, type Request } from '../kube/controller.js';
import { isAlreadyExists, isNotFound } from '../kube/errors.js';
import type { MultiInformer } from '../kube/informer.js';
import { childName } from '../kube/objects.js';
import type { KubeObject } from '../kube/rest.js';
import { patchStatus } from '../kube/status.js';
import type { ManagerContext } from '../manager.js';
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
import { JOB_NAME_LABEL, missingSecretKeys, type SecretShape } from './pod-builders.js';
import { recordBackupJob, recordTestRestoreJob, RECORDED_ANNOTATION } from './record.js';
import { evaluateRpo } from './rpo.js';
import { schedulesToRecheck, sharedClaimReport } from './shared-claim.js';

export const SCHEDULE_RESOURCE = { group: GROUP, version: VERSION, plural: 'backupschedules' } as const;
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

type Cond = Omit<ConditionInput, 'observedGeneration'>;

/**
 * Reconciles a BackupSchedule into the CronJob(s) it owns, runs emergency backups on request, records what
 * finished Jobs produced (from the runner's termination message) and keeps RPOMet honest.
 */
export class BackupScheduleReconciler {
  constructor(
    private readonly ctx: ManagerContext,
    private readonly schedules: MultiInformer<KubeObject>,
    private readonly jobs: MultiInformer<KubeObject>,
    private readonly pods: MultiInformer<KubeObject>,
  ) {}

  async reconcile(req: Request, rc: ReconcileContext): Promise<ReconcileResult | void> {
    const obj = this.schedules.get(`${req.namespace}/${req.name}`);
    if (!obj || obj.metadata.deletionTimestamp) return;
    const owner = {
      ...obj,
      apiVersion: obj.apiVersion ?? API_VERSION,
      kind: obj.kind ?? BACKUP_SCHEDULE_KIND,
    };
    const generation = obj.metadata.generation ?? 1;
    const before: BackupScheduleStatus = obj.status ?? {};
    const status: BackupScheduleStatus = structuredClone(before);
    const now = new Date();
    const cond = (c: Cond) => {
      status.conditions = setCondition(status.conditions, { ...c, observedGeneration: generation }, now);
    };
    const events: ['Normal' | 'Warning', string, string][] = [];
    const finish = async (requeueAfterMs?: number): Promise<ReconcileResult> => {
      status.observedGeneration = generation;
      if (!isDeepStrictEqual(status, before)) {
        await patchStatus(
          this.ctx.client,
          { ...SCHEDULE_RESOURCE, namespace: req.namespace, name: req.name },
          obj.metadata.resourceVersion,
          status,
        );
      }
      for (const [t, r, m] of events) void this.ctx.events.record(owner, t, r, m);
      return requeueAfterMs ? { requeueAfterMs } : {};
    };
    const notReady = (reason: string, message: string, stalled = false): Promise<ReconcileResult> => {
      cond({ type: ConditionType.Ready, status: 'False', reason, message });
      cond({
        type: ConditionType.Stalled,
        status: stalled ? 'True' : 'False',
        reason,
        message: stalled ? message : '',
      });
      cond({ type: ConditionType.Reconciling, status: 'False', reason, message: '' });
      if (before.conditions?.find((c) => c.type === ConditionType.Ready)?.reason !== reason)
        events.push(['Warning', reason, message]);
      // Secrets are not watched (least privilege: get only), so look again in a while.
      return finish(stalled ? undefined : 30_000);
    };

    const parsed = parseBackupSchedule(owner);
    if (!parsed.ok)
      return notReady('InvalidSpec', parsed.problems.map((p) => `${p.path}: ${p.message}`).join('; '), true);
    const spec = withBackupScheduleDefaults(parsed.value.spec);
    status.schedule = spec.schedule;
    status.timeZone = spec.timeZone;

    // 1. credentials: only the key names are looked at, never the values
    const secretName = spec.database.secretRef.name;
    let secret: SecretShape;
    try {
      const s = await this.ctx.client.get<KubeObject>({
        group: '',
        version: 'v1',
        plural: 'secrets',
        namespace: req.namespace,
        name: secretName,
      });
      secret = {
        name: secretName,
        keys: new Set(Object.keys({ ...(s.data ?? {}), ...(s.stringData ?? {}) })),
      };
    } catch (e) {
      if (!isNotFound(e)) throw e;
      return notReady(
        'SecretNotFound',
        `Secret "${secretName}" (spec.database.secretRef) not found in namespace ${req.namespace}`,
      );
    }
    const missing = missingSecretKeys(secret.keys);
    if (missing.length) {
      return notReady(
        'SecretKeysMissing',
        `Secret "${secretName}" lacks key(s) ${missing.join(', ')}; provide host, database, username, password (port optional) or uri`,
      );
    }

    // 2. storage
    const claimName = await this.ensureStorage(owner, spec);
    const shared = sharedClaimReport(
      req.name,
      claimName,
      this.schedules.list(req.namespace),
      before.conditions,
    );
    cond(shared.condition);
    if (shared.event) events.push(shared.event);

    // 3. the CronJobs, converged with server-side apply (a no-op when nothing changed)
    const input = { owner, spec, secret, claimName, image: this.ctx.config.OPERATOR_IMAGE };
    const cron = await this.apply(buildBackupCronJob(input));
    status.cronJobName = cron.metadata.name;
    const verify = buildVerifyCronJob(input);
    if (verify) await this.apply(verify);
    else
      await this.deleteIfExists({
        group: 'batch',
        version: 'v1',
        plural: 'cronjobs',
        namespace: req.namespace,
        name: verifyCronJobName(req.name),
      });

    // 4. emergency backup: a new annotation value means one new Job, created at once
    const wanted = obj.metadata.annotations?.[Annotation.BackupNow];
    if (wanted && wanted !== status.lastBackupNow?.annotationValue) {
      const jobName = childName(
        cron.metadata.name,
        `now-${createHash('sha256').update(wanted).digest('hex').slice(0, 8)}`,
        63,
      );
      try {
        await this.ctx.client.create(
          { group: 'batch', version: 'v1', plural: 'jobs', namespace: req.namespace },
          buildJobFromCronJob(cron as any, jobName),
        );
      } catch (e) {
        if (!isAlreadyExists(e)) throw e; // created before a restart: the same request, not a second backup
      }
      status.lastBackupNow = { annotationValue: wanted, jobName };
      events.push(['Normal', 'EmergencyBackupStarted', `backup-now=${wanted}: started Job ${jobName}`]);
      rc.log.info('emergency backup started', { job: jobName });
    }

    // 5. results of finished Jobs
    for (const job of this.jobs.list(req.namespace)) {
      if (
        job.metadata.labels?.[Label.BackupSchedule] !== req.name ||
        job.metadata.annotations?.[RECORDED_ANNOTATION]
      )
        continue;
      const pods = this.pods
        .list(req.namespace)
        .filter(
          (p) =>
            p.metadata.labels?.[JOB_NAME_LABEL] === job.metadata.name ||
            p.metadata.labels?.['job-name'] === job.metadata.name,
        );
      const outcome = readJobOutcome(job, pods);
      if (outcome.state === 'running') continue;
      const jobRef = {
        group: 'batch',
        version: 'v1',
        plural: 'jobs',
        namespace: req.namespace,
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
      const recorded: { events: typeof events; observe?: (m: ManagerContext['metrics']) => void } =
        component === 'test-restore'
          ? recordTestRestoreJob(status, job, outcome, cond)
          : recordBackupJob(status, job, outcome, spec, cond, req);
      events.push(...recorded.events);
      // Status first, then the marker: a crash in between records the same Job again, idempotently.
      await finish();
      await this.ctx.client.patch(jobRef, 'merge', {
        metadata: { annotations: { [RECORDED_ANNOTATION]: outcome.state } },
      });
      // Counted only now: a reconcile that lost the status write (409) never gets here.
      recorded.observe?.(this.ctx.metrics);
      return { requeueAfterMs: 50 }; // re-read with the new resourceVersion before recording the next Job
    }

    // 6. RPO and readiness
    const rpo = evaluateRpo({
      lastSuccess: status.lastSuccessfulBackup?.finishedAt,
      objective: spec.objectives.rpo,
      schedule: spec.schedule,
      now,
    });
    if (rpo.rpoSeconds !== undefined) status.rpoSeconds = rpo.rpoSeconds;
    cond({ type: ConditionType.RPOMet, status: rpo.status, reason: rpo.reason, message: rpo.message });
    const prevRpo = before.conditions?.find((c) => c.type === ConditionType.RPOMet);
    if (rpo.status === 'False' && prevRpo?.status === 'True')
      events.push(['Warning', 'RPOBreached', rpo.message]);
    const series = { namespace: req.namespace, schedule: req.name };
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
        : `next backup at ${nextRun(parseCron(spec.schedule), now)?.toISOString() ?? 'never'} (${spec.schedule}, UTC evaluation)`;
    } catch {
      next = spec.schedule;
    }
    cond({
      type: ConditionType.Ready,
      status: 'True',
      reason: spec.suspend ? 'Suspended' : 'Scheduled',
      message: `CronJob ${cron.metadata.name}: ${next}`,
    });
    cond({ type: ConditionType.Reconciling, status: 'False', reason: 'Reconciled', message: '' });
    cond({ type: ConditionType.Stalled, status: 'False', reason: 'Reconciled', message: '' });
    if (before.conditions?.find((c) => c.type === ConditionType.Ready)?.status !== 'True') {
      events.push([
        'Normal',
        'Scheduled',
        `backups scheduled "${spec.schedule}" (${spec.timeZone}) into claim ${claimName}`,
      ]);
    }
    return finish(rpo.breachInMs);
  }

  private async ensureStorage(owner: KubeObject, spec: EffectiveBackupScheduleSpec): Promise<string> {
    const pvc = spec.storage.persistentVolumeClaim!;
    if (pvc.claimName) return pvc.claimName;
    const name = createdClaimName(owner.metadata.name);
    try {
      await this.ctx.client.create(
        { group: '', version: 'v1', plural: 'persistentvolumeclaims', namespace: owner.metadata.namespace },
        buildCreatedClaim(owner, name, pvc.create!.size, pvc.create!.storageClassName),
      );
      void this.ctx.events.record(
        owner,
        'Normal',
        'StorageCreated',
        `created PersistentVolumeClaim ${name} (${pvc.create!.size}); it is kept when the BackupSchedule is deleted`,
      );
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
    }
    return name;
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

  private async deleteIfExists(ref: Parameters<ManagerContext['client']['delete']>[0]) {
    try {
      await this.ctx.client.delete(ref, { propagationPolicy: 'Background' });
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }
}

export { backupCronJobName };
