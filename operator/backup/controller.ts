import { Annotation, GROUP, Label, MANAGED_BY, VERSION } from '../api/v1alpha1/common.js';
import { boundIdentity } from '../kube/bounded.js';
import {
  BACKUP_SCHEDULE_KIND,
  parseBackupSchedule,
  SCHEDULE_RESOURCE,
  withBackupScheduleDefaults,
} from '../api/v1alpha1/backupschedule.js';
import { Controller, type ReconcileContext, type ReconcileResult, type Request } from '../kube/controller.js';
import { ChildRejectedError, isAlreadyExists, isNotFound, userFixableRejection } from '../kube/errors.js';
import type { MultiInformer } from '../kube/informer.js';
import { RejectedWrites } from '../kube/rejected-writes.js';
import type { KubeObject } from '../kube/rest.js';
import type { ManagerContext } from '../manager.js';
import { forgetSchedule, setBackupLocation } from '../metrics.js';
import { CronClock, cronProblem, isKnownTimeZone } from './cron.js';
import {
  backupCronJobName,
  buildBackupCronJob,
  buildCreatedClaim,
  buildVerifyCronJob,
  createdClaimName,
  verifyCronJobName,
} from './cronjob.js';
import { missingSecretKeys } from './pod-builders.js';
import { evaluateRpo } from './rpo.js';
import { checkClaim, checkS3Secrets, checkServiceAccount, type Problem } from './prerequisites.js';
import { backupNowGate, checkingStorage, notReady, ready, rpoMet } from './schedule-conditions.js';
import { refuseRunnerOverrides, runnerPolicyOf } from './runner-policy.js';
import { HANDLED_VALUE_MAX, ScheduleJobPhases } from './schedule-jobs.js';
import { withoutStaleImmutability } from './record.js';
import { ScheduleRun } from './schedule-run.js';
import { describeStorage } from './storage-location.js';
import {
  STORAGE_READY_CONDITION,
  StorageProbePhase,
  storageReadiness,
  storageReady,
} from './storage-probe.js';
import { schedulesToRecheck, sharedClaimReport } from './shared-claim.js';
import { SCHEDULE_NOTIFICATIONS } from '../notify/kinds.js';
import { Notifier } from '../notify/notifier.js';

export { SCHEDULE_RESOURCE };
const FIELD_MANAGER = 'nxt-rollback-operator';
/** How soon a problem the operator cannot watch (Secrets, claims, ServiceAccounts) is looked at again. */
const RECHECK_MS = 30_000;
/** How soon a write refused with 403 (RBAC, quota, admission policy: fixed outside the spec) is retried. */
const FORBIDDEN_RETRY_MS = 300_000;
const MANAGED = `${Label.ManagedBy}=${MANAGED_BY}`;

export function setupBackupScheduleController(ctx: ManagerContext): Controller {
  const schedules = ctx.informers.for<KubeObject>(SCHEDULE_RESOURCE);
  const cronJobs = ctx.informers.for<KubeObject>(
    { group: 'batch', version: 'v1', plural: 'cronjobs' },
    MANAGED,
  );
  const jobs = ctx.informers.for<KubeObject>({ group: 'batch', version: 'v1', plural: 'jobs' }, MANAGED);
  const pods = ctx.informers.for<KubeObject>({ group: '', version: 'v1', plural: 'pods' }, MANAGED);
  // The rollback controller's informer (shared): a plan's safety backup Job is recorded only if its plan is real.
  const plans = ctx.informers.for<KubeObject>({ group: GROUP, version: VERSION, plural: 'rollbackplans' });
  const bySchedule = (o: KubeObject) => {
    const s = o.metadata.labels?.[Label.BackupSchedule];
    return s && o.metadata.namespace ? [`${o.metadata.namespace}/${s}`] : [];
  };
  // A schedule that starts or stops sharing a claim changes what the other schedules on it report.
  const sharers = (o: KubeObject) => {
    const ns = o.metadata.namespace;
    return ns ? schedulesToRecheck(o, schedules.list(ns)).map((n) => `${ns}/${n}`) : [];
  };
  // Deliveries run in the background; a finished one or a due escalation wakes the schedule.
  const notifier = new Notifier(ctx, schedules, SCHEDULE_NOTIFICATIONS, (key, ms) =>
    controller.queue.addAfter(key, ms),
  );
  const controller = new Controller(
    'backupschedule',
    new BackupScheduleReconciler(ctx, schedules, jobs, pods, cronJobs, notifier, plans),
    {
      log: ctx.log,
      metrics: ctx.metrics,
      workers: ctx.config.MAX_CONCURRENT_RECONCILES,
    },
  )
    .watches(schedules)
    .watchesMapped(schedules, sharers)
    .owns(cronJobs, BACKUP_SCHEDULE_KIND)
    .watchesMapped(jobs, bySchedule)
    .watchesMapped(pods, bySchedule);
  return controller;
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
    jobs: MultiInformer<KubeObject>,
    pods: MultiInformer<KubeObject>,
    private readonly cronJobs?: MultiInformer<KubeObject>,
    private readonly notifier?: Notifier,
    plans?: MultiInformer<KubeObject>,
  ) {
    this.jobPhases = new ScheduleJobPhases(ctx, jobs, pods, plans);
    this.storageProbe = new StorageProbePhase(ctx, jobs, pods);
  }

  private readonly clock = new CronClock();
  private readonly jobPhases: ScheduleJobPhases;
  private readonly storageProbe: StorageProbePhase;
  private readonly rejectedWrites = new RejectedWrites();

  private readonly phases: Phase[] = [
    (run) => this.parseSpec(run),
    (run) => this.checkSchedules(run),
    (run) => this.checkCredentials(run),
    (run) => this.ensureStorage(run),
    (run) => this.checkStorage(run),
    (run) => this.reportProblem(run, checkServiceAccount(this.ctx.client, run.req.namespace, run.spec)),
    (run) => this.storageProbe.reconcile(run),
    (run) => this.reportSharedClaim(run),
    (run) => this.applyCronJobs(run),
    async (run) => (this.clusterIdPending(run) ? undefined : this.jobPhases.startEmergencyBackup(run)),
    async (run) => (this.clusterIdPending(run) ? undefined : this.jobPhases.startTestRestore(run)),
    (run) => this.jobPhases.recordFinishedJobs(run),
    (run) => this.jobPhases.pruneRecordedRequestJobs(run),
    (run) => this.jobPhases.reportStuckJobs(run),
  ];

  async reconcile(req: Request, rc: ReconcileContext): Promise<ReconcileResult | void> {
    const obj = this.schedules.get(`${req.namespace}/${req.name}`);
    if (!obj) return forgetSchedule(this.ctx.metrics, req.namespace, req.name); // gone: so are its series
    if (obj.metadata.deletionTimestamp) return;
    const run = new ScheduleRun(this.ctx, obj, rc.log);
    run.beforeWrite = (r) => this.notifier?.sync(r.obj, r.status, r.now, (t, why, m) => r.event(t, why, m));
    try {
      for (const phase of this.phases) {
        const result = await phase(run);
        if (result) return result;
      }
      return (await this.waitForClusterId(run)) ?? (await this.reportReadiness(run));
    } catch (e) {
      if (!(e instanceof ChildRejectedError)) throw e;
      const { permanent } = e.rejection;
      const reason = `${e.kind === 'PersistentVolumeClaim' ? 'Claim' : e.kind}Rejected`;
      const fix = permanent
        ? 'fix the BackupSchedule spec'
        : 'grant the permission or lift the policy; the operator tries again every 5 minutes';
      return this.notReady(run, reason, `${e.message}; ${fix}`, {
        stalled: permanent,
        requeueAfterMs: permanent ? undefined : FORBIDDEN_RETRY_MS,
      });
    }
  }

  /**
   * Ends the reconcile with Ready=False. Stalled: nothing changes until the spec does (a new generation
   * is a new event). Otherwise the operator looks again in a while: Secrets, claims and ServiceAccounts
   * are not watched (least privilege: get only).
   */
  private notReady(
    run: ScheduleRun,
    reason: string,
    message: string,
    { stalled = false, requeueAfterMs = RECHECK_MS }: { stalled?: boolean; requeueAfterMs?: number } = {},
  ) {
    run.set(...notReady(reason, message, stalled));
    if (run.previous('Ready')?.reason !== reason) run.event('Warning', reason, message);
    return run.finish(stalled ? undefined : requeueAfterMs);
  }

  private async reportProblem(run: ScheduleRun, check: Promise<Problem | undefined>) {
    const problem = await check;
    return problem ? this.notReady(run, problem.reason, problem.message) : undefined;
  }

  /**
   * A write of a child object. A rejection the user must fix ends the reconcile (ChildRejectedError, turned
   * into a condition by reconcile); a permanent one is remembered, so the same write is not sent again
   * until what goes into it changes.
   */
  private async writeChild<T>(
    run: ScheduleRun,
    kind: string,
    name: string,
    body: unknown,
    send: () => Promise<T>,
  ): Promise<T> {
    const key = `${run.req.namespace}/${run.req.name}/${kind}/${name}`;
    const known = this.rejectedWrites.find(key, body);
    if (known) throw new ChildRejectedError(kind, name, known);
    try {
      const result = await send();
      this.rejectedWrites.forget(key);
      return result;
    } catch (e) {
      const rejection = userFixableRejection(e);
      if (!rejection) throw e;
      if (rejection.permanent) this.rejectedWrites.remember(key, body, rejection);
      throw new ChildRejectedError(kind, name, rejection);
    }
  }

  private async parseSpec(run: ScheduleRun) {
    const parsed = parseBackupSchedule(run.owner);
    if (!parsed.ok) {
      const problems = parsed.problems.map((p) => `${p.path}: ${p.message}`).join('; ');
      return this.notReady(run, 'InvalidSpec', problems, { stalled: true });
    }
    run.spec = withBackupScheduleDefaults(parsed.value.spec);
    run.status.conditions = withoutStaleImmutability(run.spec, run.status.conditions);
    run.status.schedule = run.spec.schedule;
    run.status.timeZone = run.spec.timeZone;
    const refused = refuseRunnerOverrides(run.spec.podTemplate, runnerPolicyOf(this.ctx.config));
    if (refused) {
      // A CronJob made while the override was allowed (or by a version without allow-lists) must not keep
      // running the refused image or ServiceAccount with the database Secret on every tick.
      const { existing, suspendedNow } = await this.suspendCronJobs(run);
      if (suspendedNow.length)
        run.event('Warning', 'CronJobSuspended', `suspended ${suspendedNow.join(', ')}: ${refused.message}`);
      const message = existing.length
        ? `${refused.message}; CronJob(s) ${existing.join(', ')} suspended until this is fixed`
        : refused.message;
      return this.notReady(run, refused.reason, message, { stalled: true });
    }
    return undefined;
  }

  /** Suspends this schedule's CronJobs that are not suspended yet: the ones that exist, and the ones it suspended now. */
  private async suspendCronJobs(run: ScheduleRun): Promise<{ existing: string[]; suspendedNow: string[] }> {
    const existing: string[] = [];
    const suspendedNow: string[] = [];
    for (const name of [backupCronJobName(run.req.name), verifyCronJobName(run.req.name)]) {
      const ref = { group: 'batch', version: 'v1', plural: 'cronjobs', namespace: run.req.namespace, name };
      // From the cache (the operator may only list/watch CronJobs); a stale copy costs one no-op patch.
      const cron = this.cronJobs?.get(`${run.req.namespace}/${name}`);
      if (!cron) continue;
      existing.push(name);
      if (cron.spec?.suspend === true) continue;
      try {
        await this.ctx.client.patch(ref, 'merge', { spec: { suspend: true } });
        suspendedNow.push(name);
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
    return { existing, suspendedNow };
  }

  /**
   * What the schema cannot check: cron ranges (5-1), schedules that never run (30 February), and time
   * zones the operator's tz database does not know (the API server's may differ: CronJobRejected then).
   */
  private async checkSchedules(run: ScheduleRun) {
    const { spec } = run;
    if (!isKnownTimeZone(spec.timeZone)) {
      return this.notReady(
        run,
        'UnknownTimeZone',
        `spec.timeZone "${spec.timeZone}" is not a known IANA time zone (such as Europe/Berlin or Etc/UTC)`,
        { stalled: true },
      );
    }
    const schedules: [string, string | undefined][] = [
      ['spec.schedule', spec.schedule],
      ['spec.verify.testRestoreSchedule', spec.verify?.testRestoreSchedule],
    ];
    for (const [field, expression] of schedules) {
      const problem = expression === undefined ? undefined : cronProblem(expression);
      if (problem)
        return this.notReady(run, 'InvalidSchedule', `${field} "${expression}": ${problem}`, {
          stalled: true,
        });
    }
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
    const pvc = run.spec.storage.persistentVolumeClaim;
    if (!pvc) return undefined; // an S3 bucket: nothing to create in the cluster
    if (pvc.claimName) {
      run.claimName = pvc.claimName;
      return undefined;
    }
    const name = createdClaimName(run.req.name);
    const claim = buildCreatedClaim(run.owner, name, pvc.create!.size, pvc.create!.storageClassName);
    try {
      await this.writeChild(run, 'PersistentVolumeClaim', name, claim, () =>
        this.ctx.client.create(
          { group: '', version: 'v1', plural: 'persistentvolumeclaims', namespace: run.req.namespace },
          claim,
        ),
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
      run.claimName ?? describeStorage(run.spec),
      this.schedules.list(run.req.namespace),
      run.before.conditions,
    );
    run.set(shared.condition);
    if (shared.event) run.event(...shared.event);
    return undefined;
  }

  /**
   * The claim exists and can take backups (one the operator created is not checked again), or the Secrets of
   * an S3 location exist (their resourceVersions go into the storage probe's hash). StorageReady: a claim
   * needs no probe Job, so it is True once the claim is found usable; a problem sets it False too.
   */
  private async checkStorage(run: ScheduleRun) {
    const { namespace } = run.req;
    let problem: Problem | undefined;
    if (run.spec.storage.s3) {
      const versions: Record<string, string> = {};
      problem = await checkS3Secrets(this.ctx.client, namespace, run.spec.storage.s3, versions);
      run.storageSecretVersions = versions;
    } else if (run.spec.storage.persistentVolumeClaim?.claimName) {
      const field = 'spec.storage.persistentVolumeClaim.claimName';
      const seen = { read: false };
      problem = await checkClaim(this.ctx.client, namespace, run.claimName!, field, seen);
      if (!problem && seen.read)
        run.set(
          storageReady(
            'True',
            'ClaimUsable',
            `PersistentVolumeClaim "${run.claimName}" exists and can take backups (claims are not probed)`,
          ),
        );
      else if (!problem)
        // Nothing was checked (the operator may not read claims here): not a claim that works, not one that fails.
        run.set(
          storageReady(
            'Unknown',
            'ClaimNotChecked',
            `PersistentVolumeClaim "${run.claimName}" could not be read (get persistentvolumeclaims is forbidden), so it was not checked`,
          ),
        );
    } else {
      run.set(
        storageReady(
          'True',
          'ClaimCreated',
          `PersistentVolumeClaim "${run.claimName}" was created by the operator (claims are not probed)`,
        ),
      );
    }
    if (!problem) return undefined;
    run.set(storageReady('False', problem.reason, problem.message));
    return this.notReady(run, problem.reason, problem.message);
  }

  /** Whether this S3 schedule waits for the operator's cluster id (config.clusterIdPending). */
  private clusterIdPending(run: ScheduleRun): boolean {
    return !!run.spec.storage.s3 && !!this.ctx.config.clusterIdPending;
  }

  /**
   * While the operator is still retrying to learn its cluster's id (config.clusterIdPending), an S3 schedule
   * waits: applying its CronJobs now would strip NXT_CLUSTER_ID from them, and their runners would be refused
   * by prefixes that record this cluster's id. The CronJobs already there are left as they are (applyCronJobs
   * skips them), and so are emergency backups and test restores (their Jobs would lack the id too: the request
   * waits); what finished Jobs produced is still recorded, and stuck Jobs still reported, before this ends
   * the reconcile with Ready=False ClusterIdUnknown.
   */
  private async waitForClusterId(run: ScheduleRun) {
    if (!this.clusterIdPending(run)) return undefined;
    return this.notReady(
      run,
      'ClusterIdUnknown',
      "the operator has not learned its cluster's id yet (reading the kube-system Namespace failed; it keeps " +
        'retrying, see its log and nxt_cluster_id_known): S3 prefix owner objects need it, so the CronJobs are ' +
        'left as they are until then. Set CLUSTER_ID in the operator configuration to skip the read',
    );
  }

  /** The CronJobs, converged with server-side apply (a no-op when nothing changed). */
  private async applyCronJobs(run: ScheduleRun) {
    if (this.clusterIdPending(run)) {
      // Not applied (waitForClusterId): the ones already there, from the cache, so their Jobs are still known.
      const cron = this.cronJobs?.get(`${run.req.namespace}/${backupCronJobName(run.req.name)}`);
      if (cron) run.cronJob = cron;
      const verify = this.cronJobs?.get(`${run.req.namespace}/${verifyCronJobName(run.req.name)}`);
      if (verify) run.verifyCronJob = verify;
      return undefined;
    }
    const input = {
      owner: run.owner,
      spec: run.spec,
      secret: run.secret,
      claimName: run.claimName,
      image: this.ctx.config.OPERATOR_IMAGE,
      allowSuperuserAssertions: this.ctx.config.ALLOW_SUPERUSER_ASSERTIONS,
      ...(this.ctx.config.clusterId ? { clusterId: this.ctx.config.clusterId } : {}),
    };
    run.cronJob = await this.apply(run, buildBackupCronJob(input));
    run.status.cronJobName = run.cronJob.metadata.name;
    run.status.storageLocation = describeStorage(run.spec, run.claimName);
    await setBackupLocation(this.ctx.metrics, run.req.namespace, run.req.name, run.status.storageLocation);
    const verify = buildVerifyCronJob(input);
    if (verify) run.verifyCronJob = await this.apply(run, verify);
    else await this.deleteCronJobIfExists(run.req.namespace, verifyCronJobName(run.req.name));
    return undefined;
  }

  /** RPOMet, the RPO metrics and Ready: the schedule is in place. */
  private async reportReadiness(run: ScheduleRun) {
    const { spec, status, before } = run;
    const rpo = evaluateRpo({
      lastSuccess: status.lastSuccessfulBackup?.finishedAt,
      objective: spec.objectives.rpo,
      schedule: spec.schedule,
      scheduleGapMs: await this.clock.longestGap(spec.schedule, spec.timeZone, run.now),
      now: run.now,
    });
    if (rpo.rpoSeconds !== undefined) status.rpoSeconds = rpo.rpoSeconds;
    run.set(rpoMet(rpo));
    if (rpo.status === 'False' && run.previous('RPOMet')?.status === 'True')
      run.event('Warning', 'RPOBreached', rpo.message);
    const series = { namespace: run.req.namespace, schedule: run.req.name };
    if (rpo.rpoSeconds !== undefined) this.ctx.metrics.rpoSeconds.set(series, rpo.rpoSeconds);
    // The objective per schedule, so an alert compares each schedule's age with its own objective.
    this.ctx.metrics.rpoObjectiveSeconds.set(series, rpo.objectiveSeconds);
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
    const next = spec.suspend
      ? 'suspended'
      : `next backup at ${this.clock.next(spec.schedule, spec.timeZone, run.now)?.toISOString() ?? 'never'} (${spec.schedule}, ${spec.timeZone})`;
    // The CronJobs are in place either way (a backup may still succeed, and says why if not); Ready waits for
    // the storage probe and names its failure (StorageReady).
    this.storageProbe.afterBackups(run);
    const storage = storageReadiness(status.conditions);
    if (storage.state === 'failed') {
      run.set(...notReady(storage.reason, `${STORAGE_READY_CONDITION}: ${storage.message}`, storage.stalled));
    } else if (storage.state === 'checking') {
      run.set(...checkingStorage(storage.message));
    } else run.set(...ready(spec.suspend, `CronJob ${run.cronJob.metadata.name}: ${next}`));
    const wanted = run.obj.metadata.annotations?.[Annotation.BackupNow];
    const gate = backupNowGate(
      wanted ? boundIdentity(wanted, HANDLED_VALUE_MAX) : undefined,
      status.lastBackupNow,
    );
    if (gate) {
      run.set(...gate);
      const [first] = gate;
      const before = run.previous(first!.type);
      if (before?.reason !== first!.reason)
        run.event(first!.reason === 'BackupNowFailed' ? 'Warning' : 'Normal', first!.reason, first!.message);
    }
    if (
      storage.state === 'ready' &&
      run.previous('Ready')?.status !== 'True' &&
      !gate?.some((c) => c.type === 'Ready')
    ) {
      run.event(
        'Normal',
        'Scheduled',
        `backups scheduled "${spec.schedule}" (${spec.timeZone}) into ${describeStorage(spec, run.claimName)}`,
      );
    }
    return run.finish(rpo.breachInMs);
  }

  private apply(
    run: ScheduleRun,
    obj: { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } },
  ) {
    return this.writeChild(run, 'CronJob', obj.metadata.name, obj, () =>
      this.ctx.client.patch<KubeObject>(
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
      ),
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
