import { API_VERSION, GROUP, Label, MANAGED_BY } from '../api/v1alpha1/common.js';
import {
  parseBackupSchedule,
  withBackupScheduleDefaults,
  type EffectiveBackupScheduleSpec,
} from '../api/v1alpha1/backupschedule.js';
import { ROLLBACK_PLAN_KIND } from '../api/v1alpha1/rollbackplan.js';
import { createdClaimName } from '../backup/cronjob.js';
import { readJobOutcome, type JobOutcome } from '../backup/job-results.js';
import {
  buildRunnerJobTemplate,
  runnerPodFailurePolicy,
  JOB_NAME_LABEL,
  missingSecretKeys,
  type SecretShape,
} from '../backup/pod-builders.js';
import { refuseRunnerOverrides } from '../backup/runner-policy.js';
import { isAlreadyExists, isConflict, isNotFound } from '../kube/errors.js';
import { childName, controllerRef } from '../kube/objects.js';
import type { KubeObject } from '../kube/rest.js';
import { findStep } from './journal.js';
import { foreignJobOutcome, judgePlanJob, lostJobOutcome, type PlanJobPurpose } from './plan-job-identity.js';
import type { PlanRun, StepOutcome } from './plan-run.js';

/** Everything a runner Job of a plan needs from the BackupSchedule the database target names. */
export interface ScheduleContext {
  schedule: KubeObject;
  spec: EffectiveBackupScheduleSpec;
  secret: SecretShape;
  /** Undefined for an S3 location. */
  claimName?: string;
}

/** Loads and checks the BackupSchedule and its Secret; a failure outcome names what is wrong. */
export async function loadSchedule(
  run: PlanRun,
  name: string,
): Promise<ScheduleContext | Extract<StepOutcome, { kind: 'failed' }>> {
  const schedule = run.cache.schedule(name);
  if (!schedule) {
    return {
      kind: 'failed',
      reason: 'BackupScheduleNotFound',
      message: `BackupSchedule "${name}" (spec.targets.database.backupScheduleRef) not found in namespace ${run.namespace}`,
    };
  }
  const parsed = parseBackupSchedule({
    ...schedule,
    apiVersion: schedule.apiVersion ?? API_VERSION,
    kind: schedule.kind ?? 'BackupSchedule',
  });
  if (!parsed.ok) {
    return {
      kind: 'failed',
      reason: 'BackupScheduleInvalid',
      message: `BackupSchedule "${name}" is invalid: ${parsed.problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
    };
  }
  const spec = withBackupScheduleDefaults(parsed.value.spec);
  const refused = refuseRunnerOverrides(spec.podTemplate, run.runnerPolicy);
  if (refused) return { kind: 'failed', ...refused, message: `BackupSchedule "${name}": ${refused.message}` };
  const secretName = spec.database.secretRef.name;
  let keys: Set<string>;
  try {
    const s = await run.client.get<KubeObject>({
      group: '',
      version: 'v1',
      plural: 'secrets',
      namespace: run.namespace,
      name: secretName,
    });
    keys = new Set(Object.keys(s.data ?? {}));
  } catch (e) {
    if (!isNotFound(e)) throw e;
    return {
      kind: 'failed',
      reason: 'SecretNotFound',
      message: `Secret "${secretName}" of BackupSchedule "${name}" not found`,
    };
  }
  const missing = missingSecretKeys(keys);
  if (missing.length)
    return {
      kind: 'failed',
      reason: 'SecretKeysMissing',
      message: `Secret "${secretName}" lacks key(s) ${missing.join(', ')}`,
    };
  const pvc = spec.storage.persistentVolumeClaim;
  return {
    schedule,
    spec,
    secret: { name: secretName, keys },
    ...(pvc ? { claimName: pvc.claimName ?? createdClaimName(name) } : {}),
  };
}

export const planJobName = (run: PlanRun, purpose: PlanJobPurpose) =>
  childName(run.plan.metadata.name, purpose, 63);

/** The backup a verify or restore Job reads, or the id a safety backup writes: what the Job is bound to. */
export const BACKUP_ID_ANNOTATION = `${GROUP}/backup-id`;

/**
 * A plan's safety backup id: unique per plan UID, so a plan re-created under the same name never finds (and
 * never restores) an earlier plan's safety backup. At most 55 + 8 + 9 characters, far below BackupId's 253.
 */
export const safetyBackupId = (run: PlanRun) =>
  `${run.plan.metadata.name}-safety-${(run.plan.metadata.uid ?? '').replace(/-/g, '').slice(0, 8)}`;

export interface PlanJobOptions {
  /** Binds the Job to a backup id (BACKUP_ID_ANNOTATION). */
  backupId?: string;
  /** Created suspended: no pod runs until the plan has recorded the Job's UID and releases it. */
  suspend?: boolean;
  /** Purpose recorded in the manifest of a backup the Job writes. */
  purpose?: 'safety';
}

/**
 * A runner Job owned by the plan (so it is never orphaned), named after the plan and its purpose: a retried
 * or resumed reconcile finds the Job it already created instead of starting a second one.
 */
export function buildPlanJob(
  run: PlanRun,
  sc: ScheduleContext,
  name: string,
  component: 'backup' | 'restore' | 'test-restore',
  args: string[],
  opts: PlanJobOptions = {},
) {
  const plan = { name: run.plan.metadata.name, uid: run.plan.metadata.uid };
  const tpl = buildRunnerJobTemplate({
    scheduleName: sc.schedule.metadata.name,
    spec: sc.spec,
    secret: sc.secret,
    claimName: sc.claimName,
    image: run.runnerImage,
    args,
    component,
    allowSuperuserAssertions: run.runnerPolicy.allowSuperuserAssertions,
    ...(run.runnerPolicy.clusterId ? { clusterId: run.runnerPolicy.clusterId } : {}),
    origin: {
      ...(opts.purpose ? { purpose: opts.purpose } : {}),
      schedule: { name: sc.schedule.metadata.name, uid: sc.schedule.metadata.uid },
      plan,
    },
  });
  // Only a safety backup keeps the schedule label: the BackupSchedule then records it like any backup.
  const labels: Record<string, string> = {
    ...tpl.metadata.labels,
    [Label.ManagedBy]: MANAGED_BY,
    [Label.Plan]: run.plan.metadata.name,
  };
  if (component !== 'backup') delete labels[Label.BackupSchedule];
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name,
      namespace: run.namespace,
      labels,
      ...(opts.backupId ? { annotations: { [BACKUP_ID_ANNOTATION]: opts.backupId } } : {}),
      ownerReferences: [
        controllerRef({
          ...run.plan,
          apiVersion: run.plan.apiVersion ?? API_VERSION,
          kind: run.plan.kind ?? ROLLBACK_PLAN_KIND,
        }),
      ],
    },
    spec: {
      ...tpl.spec,
      // A restore must never run twice for one plan; a failed pod is a failed step, not a retry, and so is
      // a pod the cluster evicted (no Ignore rule for DisruptionTarget, unlike a schedule's Jobs).
      backoffLimit: 0,
      podFailurePolicy: runnerPodFailurePolicy('once'),
      ...(opts.suspend ? { suspend: true } : {}),
      template: { ...tpl.spec.template, metadata: { labels } },
    },
  };
}

const jobsRef = (namespace: string, name?: string) => ({
  group: 'batch',
  version: 'v1',
  plural: 'jobs',
  namespace,
  ...(name ? { name } : {}),
});

/** The Job as the API server has it now (the cache may lag behind a create or a delete). */
async function readJobLive(run: PlanRun, name: string): Promise<KubeObject | undefined> {
  try {
    return await run.client.get<KubeObject>(jobsRef(run.namespace, name));
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

export type EnsuredJob =
  { kind: 'ready'; job: KubeObject; created: boolean } | Extract<StepOutcome, { kind: 'wait' | 'failed' }>;

/**
 * The plan's Job for `purpose`: the one it recorded (`recordedUid`), or, before one is recorded, the one it
 * controls, created when there is none. Someone else's Job under the name is never read (wait, bounded, then
 * JobNameConflict); a recorded Job that is gone is never re-created (<Purpose>JobLost). Anything but "ours
 * from the cache" is confirmed with a live read first.
 */
export async function ensurePlanJob(
  run: PlanRun,
  purpose: PlanJobPurpose,
  job: ReturnType<typeof buildPlanJob>,
  opts: { recordedUid: string | undefined; step: string },
): Promise<EnsuredJob> {
  const name = job.metadata.name;
  const plan = { name: run.plan.metadata.name, uid: run.plan.metadata.uid ?? '' };
  const create = async (): Promise<KubeObject | undefined> => {
    try {
      return await run.client.create<KubeObject>(jobsRef(run.namespace), job);
    } catch (e) {
      if (isAlreadyExists(e)) return undefined;
      throw e;
    }
  };
  const cached = judgePlanJob(run.cache.job(name), plan, opts.recordedUid);
  if (cached.kind === 'ours') return { kind: 'ready', job: cached.job, created: false };
  if (cached.kind === 'absent' && !opts.recordedUid) {
    const created = await create();
    if (created) return { kind: 'ready', job: created, created: true };
  }
  const live = judgePlanJob(await readJobLive(run, name), plan, opts.recordedUid);
  switch (live.kind) {
    case 'ours':
      return { kind: 'ready', job: live.job, created: false };
    case 'foreign': {
      const since = findStep(run.status.steps, opts.step)?.startedAt;
      return foreignJobOutcome(live, since, run.now(), run.jobConflictTimeoutMs);
    }
    case 'replaced':
      return lostJobOutcome(purpose, name, opts.recordedUid!, live.message);
    case 'absent': {
      if (opts.recordedUid) return lostJobOutcome(purpose, name, opts.recordedUid);
      // The cache showed a Job (someone else's) that is gone now, or one came and went: create ours.
      const created = await create();
      if (created) return { kind: 'ready', job: created, created: true };
      return {
        kind: 'wait',
        message: `Job "${name}" appeared meanwhile; looking again`,
        requeueAfterMs: 1_000,
      };
    }
  }
}

/**
 * Lets a suspended Job run. The `test` on the UID makes the API server refuse (422) if the name now belongs to
 * another Job, so only the Job whose UID is in status is ever released.
 */
export async function releaseJob(run: PlanRun, job: KubeObject): Promise<void> {
  await run.client.patch(jobsRef(run.namespace, job.metadata.name), 'json', [
    { op: 'test', path: '/metadata/uid', value: job.metadata.uid },
    { op: 'replace', path: '/spec/suspend', value: false },
  ]);
}

/**
 * Deletes one of the plan's Jobs that is no longer needed (a safety backup a failed plan will not use): only
 * that very Job (preconditions uid: a Job re-created under the name is left alone), its pods after it
 * (background propagation), so its runner is stopped. Undefined when it is gone (or was already); otherwise
 * why it could not be deleted, bounded. Never throws.
 */
export async function deletePlanJob(run: PlanRun, job: KubeObject): Promise<string | undefined> {
  try {
    await run.client.delete(jobsRef(run.namespace, job.metadata.name), {
      propagationPolicy: 'Background',
      preconditionsUid: job.metadata.uid,
    });
    return undefined;
  } catch (e) {
    if (isNotFound(e)) return undefined;
    if (isConflict(e))
      return `the Job "${job.metadata.name}" is no longer the one with uid ${job.metadata.uid}`;
    return `deleting Job "${job.metadata.name}" failed: ${String((e as Error)?.message ?? e).slice(0, 200)}`;
  }
}

export const ownPods = (job: KubeObject, pods: KubeObject[]) =>
  pods.filter((p) => (p.metadata.ownerReferences ?? []).some((r) => r.uid === job.metadata.uid));

/**
 * Stops a released Job whose pod never started, so it cannot start later after the plan has failed. The UID
 * test makes it a no-op (422) for any other Job of the name.
 */
export async function suspendJob(run: PlanRun, job: KubeObject): Promise<void> {
  await run.client.patch(jobsRef(run.namespace, job.metadata.name), 'json', [
    { op: 'test', path: '/metadata/uid', value: job.metadata.uid },
    { op: 'replace', path: '/spec/suspend', value: true },
  ]);
}

/**
 * The outcome of one of the plan's Jobs, from its own pods only (a same-named older Job's pods may linger).
 * A finished Job whose result the pod cache does not show yet is re-read with a live LIST of its pods: the
 * Job and pod watches are not ordered, and a Complete Job with a pod still "running" is no verdict.
 */
export async function planJobOutcome(run: PlanRun, job: KubeObject): Promise<JobOutcome> {
  const cached = readJobOutcome(job, ownPods(job, run.cache.podsOfJob(job.metadata.name)));
  if (cached.state !== 'unread') return cached;
  const live = await run.client.list<KubeObject>(
    { group: '', version: 'v1', plural: 'pods', namespace: run.namespace },
    { labelSelector: `${JOB_NAME_LABEL}=${job.metadata.name}` },
  );
  return readJobOutcome(job, ownPods(job, live.items));
}

/** How often a step looks again for the result of a Job that finished without one in the pod cache. */
export const RESULT_POLL_MS = 5_000;

/** Runner Jobs report back through Job and pod watches; this only bounds how long a lost event can delay us. */
export const JOB_POLL_MS = 15_000;
