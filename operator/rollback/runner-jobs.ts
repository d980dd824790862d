import { API_VERSION, Label, MANAGED_BY } from '../api/v1alpha1/common.js';
import {
  parseBackupSchedule,
  withBackupScheduleDefaults,
  type EffectiveBackupScheduleSpec,
} from '../api/v1alpha1/backupschedule.js';
import { ROLLBACK_PLAN_KIND } from '../api/v1alpha1/rollbackplan.js';
import { createdClaimName } from '../backup/cronjob.js';
import { readJobOutcome, type JobOutcome } from '../backup/job-results.js';
import { buildRunnerJobTemplate, missingSecretKeys, type SecretShape } from '../backup/pod-builders.js';
import { refuseRunnerOverrides } from '../backup/runner-policy.js';
import { isAlreadyExists, isNotFound } from '../kube/errors.js';
import { childName, controllerRef } from '../kube/objects.js';
import type { KubeObject } from '../kube/rest.js';
import type { PlanRun, StepOutcome } from './plan-run.js';

/** Everything a runner Job of a plan needs from the BackupSchedule the database target names. */
export interface ScheduleContext {
  schedule: KubeObject;
  spec: EffectiveBackupScheduleSpec;
  secret: SecretShape;
  claimName: string;
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
  const pvc = spec.storage.persistentVolumeClaim!;
  return {
    schedule,
    spec,
    secret: { name: secretName, keys },
    claimName: pvc.claimName ?? createdClaimName(name),
  };
}

export const planJobName = (run: PlanRun, purpose: 'verify' | 'safety' | 'restore') =>
  childName(run.plan.metadata.name, purpose, 63);

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
  extraLabels: Record<string, string> = {},
) {
  const tpl = buildRunnerJobTemplate({
    scheduleName: sc.schedule.metadata.name,
    spec: sc.spec,
    secret: sc.secret,
    claimName: sc.claimName,
    image: run.runnerImage,
    args,
    component,
    allowSuperuserAssertions: run.runnerPolicy.allowSuperuserAssertions,
  });
  // Only a safety backup keeps the schedule label: the BackupSchedule then records it like any backup.
  const labels: Record<string, string> = {
    ...tpl.metadata.labels,
    [Label.ManagedBy]: MANAGED_BY,
    [Label.Plan]: run.plan.metadata.name,
    ...extraLabels,
  };
  if (component !== 'backup') delete labels[Label.BackupSchedule];
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name,
      namespace: run.namespace,
      labels,
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
      // A restore must never run twice for one plan; a failed pod is a failed step, not a retry.
      backoffLimit: 0,
      template: { ...tpl.spec.template, metadata: { labels } },
    },
  };
}

/** Creates the Job unless it exists (AlreadyExists after a restart means: it is ours, keep going). */
export async function ensureJob(run: PlanRun, job: ReturnType<typeof buildPlanJob>): Promise<boolean> {
  if (run.cache.job(job.metadata.name)) return false;
  try {
    await run.client.create({ group: 'batch', version: 'v1', plural: 'jobs', namespace: run.namespace }, job);
    return true;
  } catch (e) {
    if (isAlreadyExists(e)) return false;
    throw e;
  }
}

/** The outcome of one of the plan's Jobs as far as the caches know; undefined if the Job is not seen yet. */
export function planJobOutcome(run: PlanRun, name: string): JobOutcome | undefined {
  const job = run.cache.job(name);
  return job ? readJobOutcome(job, run.cache.podsOfJob(name)) : undefined;
}

/** Runner Jobs report back through Job and pod watches; this only bounds how long a lost event can delay us. */
export const JOB_POLL_MS = 15_000;
