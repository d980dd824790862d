import { createHash } from 'node:crypto';
import { API_VERSION, GROUP, Label } from '../api/v1alpha1/common.js';
import {
  BACKUP_SCHEDULE_KIND,
  type BackupScheduleStatus,
  type EffectiveBackupScheduleSpec,
  type S3Storage,
} from '../api/v1alpha1/backupschedule.js';
import { boundText } from '../kube/bounded.js';
import { findCondition, type ConditionStatus } from '../kube/conditions.js';
import { isAlreadyExists, isConflict, isNotFound, userFixableRejection } from '../kube/errors.js';
import type { MultiInformer } from '../kube/informer.js';
import { childName, controllerOf, controllerRef } from '../kube/objects.js';
import type { KubeObject } from '../kube/rest.js';
import type { ManagerContext } from '../manager.js';
import { outcomeUnknown, readJobOutcome, resultOverdue, type FinishedOutcome } from './job-results.js';
import { buildRunnerJobTemplate, JOB_NAME_LABEL, STORAGE_MOUNT } from './pod-builders.js';
import { NOT_RETRYABLE_REASONS } from './runner/failure.js';
import { jobStartedAt, NO_POD_AFTER_MS, runnerJobProblem } from './runner-pods.js';
import type { ScheduleCondition } from './schedule-conditions.js';
import type { ScheduleRun } from './schedule-run.js';
import { describeStorage } from './storage-location.js';

// The storage probe of an S3 location: a short Job running `probe-storage` (runner/probe-storage.ts) whenever
// the location, the runner that would use it or the Secrets it names change, so a missing bucket, a wrong key
// or an untrusted certificate shows on the schedule (StorageReady, then Ready) within a minute of the change
// instead of at the first backup hours later. Level-based: status.storageCheck records the hash that was
// probed, and a probe Job's name is derived from that hash and the attempt, so a retried reconcile finds the
// Job it created.

export const STORAGE_READY_CONDITION = 'StorageReady';
export const STORAGE_PROBE_COMPONENT = 'storage-probe';
/** On a probe Job: the storage hash it probes (status.storageCheck.hash). */
export const PROBE_HASH_ANNOTATION = `${GROUP}/storage-hash`;
/** A probe's calls are bounded (15 s each); its Job gets two minutes at most. */
export const PROBE_DEADLINE_SECONDS = 120;
/** Finished probe Jobs are removed by the TTL controller after an hour (status keeps the result). */
export const PROBE_TTL_SECONDS = 3600;
/** A retryable failure (network, throttling, a lost Job) is probed again after 30 s, doubling up to 15 min. */
export const PROBE_RETRY_BASE_MS = 30_000;
export const PROBE_RETRY_MAX_MS = 15 * 60_000;
/**
 * A schedule whose probe failed for good re-reads its Secrets this often (they are not watched: the operator
 * may only get them); a changed resourceVersion is a new hash and a new probe.
 */
export const SECRET_RECHECK_MS = 60_000;
/** How often a finished probe Job whose runner result has not arrived yet is looked at again. */
const RESULT_RECHECK_MS = 5_000;

/** Reasons of a probe that no retry can fix without a change; the runner's NOT_RETRYABLE_REASONS plus these. */
const STALLED_REASONS = new Set<string>([
  ...NOT_RETRYABLE_REASONS,
  'InvalidArguments',
  'StorageCheckNameConflict',
  'StorageCheckRejected',
]);

/** Whether a failed probe is tried again on its own (a bounded backoff); otherwise only after a change. */
export const probeRetryable = (reason: string) => !STALLED_REASONS.has(reason);

/** The delay before retry number `attempt + 1` after `attempt` failed probes of the same hash. */
export const probeRetryDelayMs = (attempt: number) =>
  Math.min(PROBE_RETRY_BASE_MS * 2 ** Math.max(0, Math.min(attempt - 1, 20)), PROBE_RETRY_MAX_MS);

/** JSON with object keys sorted at every level: the same value always gives the same text. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object')
    return `{${Object.keys(value)
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(value);
}

export interface ProbeHashInput {
  /** The schedule's UID: a schedule re-created under the same name probes again. */
  uid?: string;
  s3: S3Storage;
  /** The runner image (podTemplate.image or the operator's). */
  image: string;
  /** podTemplate.serviceAccountName: the default credential chain (IRSA, Pod Identity) depends on it. */
  serviceAccountName?: string;
  /** resourceVersion per Secret the location names ('?' when the operator may not read it). */
  secretVersions: Record<string, string>;
}

/** What a probe checked, as 32 hex characters: a new value means a new probe. Pure. */
export function storageProbeHash(input: ProbeHashInput): string {
  return createHash('sha256')
    .update(
      canonical({
        v: 1,
        uid: input.uid ?? '',
        s3: input.s3,
        image: input.image,
        sa: input.serviceAccountName ?? '',
        secrets: input.secretVersions,
      }),
    )
    .digest('hex')
    .slice(0, 32);
}

/** The probe Job of `attempt` for `hash`: deterministic, so a retried reconcile finds the Job it made. */
export const probeJobName = (schedule: string, hash: string, attempt: number) =>
  childName(schedule, `probe-${hash.slice(0, 8)}-${attempt}`, 63);

export type StorageCheck = NonNullable<BackupScheduleStatus['storageCheck']>;

export type ProbeDecision =
  /** Start (or find) the probe Job of this attempt. */
  | { action: 'create'; attempt: number }
  /** A probe of the current hash runs: read its Job. */
  | { action: 'wait'; jobName: string }
  /** The current hash has a result; `recheckInMs` when a retry or a Secret re-read is due later. */
  | { action: 'done'; recheckInMs?: number };

/**
 * What to do about the probe of `hash` given what status recorded: a new hash starts attempt 1; a running
 * probe is read; a retryable failure is probed again once its nextAttemptAt has passed. Pure.
 */
export function decideProbe(hash: string, check: StorageCheck | undefined, now: Date): ProbeDecision {
  if (!check || check.hash !== hash) return { action: 'create', attempt: 1 };
  if (!check.result) {
    return check.jobName
      ? { action: 'wait', jobName: check.jobName }
      : { action: 'create', attempt: check.attempt };
  }
  if (check.result === 'Succeeded') return { action: 'done' };
  if (check.nextAttemptAt) {
    const due = Date.parse(check.nextAttemptAt) - now.getTime();
    if (!(due > 0)) return { action: 'create', attempt: check.attempt + 1 };
    return { action: 'done', recheckInMs: due };
  }
  // Failed for good: only a change helps; the Secrets are re-read now and then to notice one.
  return { action: 'done', recheckInMs: SECRET_RECHECK_MS };
}

/** The status.storageCheck of a finished probe: a retryable failure gets its next attempt's time. Pure. */
export function recordProbe(
  hash: string,
  attempt: number,
  jobName: string | undefined,
  outcome: { success: boolean; reason?: string },
  now: Date,
): StorageCheck {
  const base = {
    hash,
    attempt,
    ...(jobName ? { jobName } : {}),
    checkedAt: now.toISOString().replace(/\.\d+Z$/, 'Z'),
  };
  if (outcome.success) return { ...base, result: 'Succeeded' };
  const reason = validReason(outcome.reason) ?? 'StorageFailed';
  return {
    ...base,
    result: 'Failed',
    reason,
    ...(probeRetryable(reason)
      ? {
          nextAttemptAt: new Date(now.getTime() + probeRetryDelayMs(attempt))
            .toISOString()
            .replace(/\.\d+Z$/, 'Z'),
        }
      : {}),
  };
}

const validReason = (r: string | undefined) =>
  r && r.length <= 128 && /^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/.test(r) ? r : undefined;

export const storageReady = (
  status: ConditionStatus,
  reason: string,
  message: string,
): ScheduleCondition => ({
  type: STORAGE_READY_CONDITION,
  status,
  reason,
  message: boundText(message, 1024),
});

/** How StorageReady bears on Ready: a failed check blocks Ready (stalled unless it is retried), a running one holds it. */
export type StorageReadiness =
  | { state: 'ready' }
  | { state: 'checking'; message: string }
  | { state: 'failed'; reason: string; message: string; stalled: boolean };

/** Ready's view of StorageReady (absent: nothing to check, e.g. before this version). Pure. */
export function storageReadiness(conditions: BackupScheduleStatus['conditions']): StorageReadiness {
  const c = findCondition(conditions, STORAGE_READY_CONDITION);
  if (!c || c.status === 'True') return { state: 'ready' };
  if (c.status === 'Unknown') return { state: 'checking', message: c.message };
  return { state: 'failed', reason: c.reason, message: c.message, stalled: !probeRetryable(c.reason) };
}

export interface ProbeJobInput {
  owner: KubeObject;
  spec: EffectiveBackupScheduleSpec;
  image: string;
  name: string;
  hash: string;
}

/**
 * The probe Job: the runner pod of the schedule's other Jobs (restricted Pod Security, the S3 env and CA
 * bundle, placement and ServiceAccount from podTemplate) without the database credentials, running
 * `probe-storage`. One pod (backoffLimit 0: the schedule retries with a backoff of its own), a two-minute
 * deadline, removed an hour after it finished. Owned by the schedule.
 */
export function buildProbeJob(input: ProbeJobInput) {
  const { owner } = input;
  const tpl = buildRunnerJobTemplate({
    scheduleName: owner.metadata.name,
    spec: input.spec,
    image: input.image,
    args: ['probe-storage', '--storage-dir', STORAGE_MOUNT],
    component: STORAGE_PROBE_COMPONENT,
    origin: { schedule: { name: owner.metadata.name, uid: owner.metadata.uid } },
  });
  // No podFailurePolicy: with backoffLimit 0 every failure is final.
  const { podFailurePolicy: _policy, ...jobSpec } = tpl.spec;
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: input.name,
      namespace: owner.metadata.namespace,
      labels: { ...tpl.metadata.labels },
      annotations: { [PROBE_HASH_ANNOTATION]: input.hash },
      ownerReferences: [
        controllerRef({
          ...owner,
          apiVersion: owner.apiVersion ?? API_VERSION,
          kind: owner.kind ?? BACKUP_SCHEDULE_KIND,
        }),
      ],
    },
    spec: {
      ...jobSpec,
      backoffLimit: 0,
      activeDeadlineSeconds: PROBE_DEADLINE_SECONDS,
      ttlSecondsAfterFinished: PROBE_TTL_SECONDS,
    },
  };
}

const JOBS = { group: 'batch', version: 'v1', plural: 'jobs' } as const;

/**
 * The phase of a BackupSchedule reconcile that keeps StorageReady: for an S3 location, starts, reads and
 * records probe Jobs (never ends the reconcile; Ready reads StorageReady in reportReadiness). Claims are
 * checked by checkClaim and need no Job.
 */
export class StorageProbePhase {
  constructor(
    private readonly ctx: ManagerContext,
    private readonly jobs: MultiInformer<KubeObject>,
    private readonly pods: MultiInformer<KubeObject>,
  ) {}

  async reconcile(run: ScheduleRun): Promise<undefined> {
    const s3 = run.spec.storage.s3;
    if (!s3) {
      delete run.status.storageCheck;
      await this.deleteProbeJobs(run, undefined);
      return undefined;
    }
    const image = run.spec.podTemplate?.image ?? this.ctx.config.OPERATOR_IMAGE;
    const hash = storageProbeHash({
      uid: run.obj.metadata.uid,
      s3,
      image,
      serviceAccountName: run.spec.podTemplate?.serviceAccountName,
      secretVersions: run.storageSecretVersions ?? {},
    });
    const decision = decideProbe(hash, run.status.storageCheck, run.now);
    if (decision.action === 'create') await this.start(run, hash, image, decision.attempt);
    else if (decision.action === 'wait') await this.read(run, hash, decision.jobName);
    else {
      // Unchanged: the same condition, at this generation.
      const c = findCondition(run.status.conditions, STORAGE_READY_CONDITION);
      if (c) run.set(storageReady(c.status, c.reason, c.message));
      if (decision.recheckInMs !== undefined) run.recheckWithin(decision.recheckInMs);
    }
    await this.deleteProbeJobs(run, run.status.storageCheck?.jobName);
    return undefined;
  }

  private async start(run: ScheduleRun, hash: string, image: string, attempt: number) {
    const name = probeJobName(run.req.name, hash, attempt);
    const body = buildProbeJob({ owner: run.owner, spec: run.spec, image, name, hash });
    const location = describeStorage(run.spec);
    try {
      await this.ctx.client.create({ ...JOBS, namespace: run.req.namespace }, body);
    } catch (e) {
      if (!isAlreadyExists(e)) {
        const rejection = userFixableRejection(e);
        if (!rejection) throw e;
        // A quota or policy refusing the Job: retried with the backoff when a 403 (fixed outside the spec).
        const reason = rejection.permanent ? 'StorageCheckRejected' : 'StorageCheckForbidden';
        const message = `the API server rejected probe Job ${name} (${rejection.code} ${rejection.reason}): ${rejection.message}`;
        this.finished(run, hash, attempt, undefined, { success: false, reason, message });
        return;
      }
      const existing = await this.getJob(run, name);
      if (!existing) {
        run.recheckWithin(1_000); // deleted in between: create it again
        return;
      }
      if (!this.isOwnProbe(run, existing)) {
        const by = controllerOf(existing);
        const message = `Job ${name} already exists and is not this BackupSchedule's storage probe (controlled by ${by ? `${by.kind} ${by.name}` : 'nothing'}); delete it`;
        this.finished(run, hash, attempt, undefined, {
          success: false,
          reason: 'StorageCheckNameConflict',
          message,
        });
        return;
      }
    }
    run.status.storageCheck = { hash, attempt, jobName: name };
    run.set(storageReady('Unknown', 'StorageCheckInProgress', `probing ${location} (Job ${name})`));
    if (run.previous(STORAGE_READY_CONDITION)?.reason !== 'StorageCheckInProgress')
      run.event('Normal', 'StorageCheckStarted', `probing ${location} with Job ${name}`);
    // Job and pod events wake the schedule; a Job that never gets a pod does not.
    run.recheckWithin(NO_POD_AFTER_MS + 1_000);
  }

  private async read(run: ScheduleRun, hash: string, jobName: string) {
    const check = run.status.storageCheck!;
    const job = this.jobs.get(`${run.req.namespace}/${jobName}`) ?? (await this.getJob(run, jobName));
    if (!job || job.metadata.deletionTimestamp) {
      this.finished(run, hash, check.attempt, jobName, {
        success: false,
        reason: 'OutcomeUnknown',
        message: `probe Job ${jobName} is gone and left no result`,
      });
      return;
    }
    if (!this.isOwnProbe(run, job)) {
      this.finished(run, hash, check.attempt, jobName, {
        success: false,
        reason: 'StorageCheckNameConflict',
        message: `Job ${jobName} is not this BackupSchedule's storage probe (another owner); delete it`,
      });
      return;
    }
    const pods = this.pods
      .list(run.req.namespace)
      .filter(
        (p) =>
          (p.metadata.labels?.[JOB_NAME_LABEL] === jobName || p.metadata.labels?.['job-name'] === jobName) &&
          (p.metadata.ownerReferences ?? []).some((r) => r.uid === job.metadata.uid),
      );
    let outcome = readJobOutcome(job, pods);
    if (outcome.state === 'unread') {
      if (!resultOverdue(outcome, run.now)) {
        run.recheckWithin(RESULT_RECHECK_MS);
        return this.keep(run);
      }
      outcome = outcomeUnknown(outcome);
    }
    if (outcome.state === 'running') {
      const problem = runnerJobProblem(job, pods, run.now);
      if (problem) {
        run.set(storageReady('False', problem.reason, `probe Job ${jobName}: ${problem.message}`));
        return;
      }
      const left = NO_POD_AFTER_MS - (run.now.getTime() - jobStartedAt(job));
      if (!pods.length && left > 0) run.recheckWithin(left + 1_000);
      return this.keep(run);
    }
    this.finished(run, hash, check.attempt, jobName, fromOutcome(outcome));
  }

  /** StorageReady as it was (a probe still runs), at this generation. */
  private keep(run: ScheduleRun) {
    const c = findCondition(run.status.conditions, STORAGE_READY_CONDITION);
    if (c) run.set(storageReady(c.status, c.reason, c.message));
    else run.set(storageReady('Unknown', 'StorageCheckInProgress', `probing ${describeStorage(run.spec)}`));
  }

  /** Records a probe's result in status and on StorageReady (an Event when it changes). */
  private finished(
    run: ScheduleRun,
    hash: string,
    attempt: number,
    jobName: string | undefined,
    result: { success: boolean; reason?: string; message: string },
  ) {
    const check = recordProbe(hash, attempt, jobName, result, run.now);
    run.status.storageCheck = check;
    const location = describeStorage(run.spec);
    const before = run.previous(STORAGE_READY_CONDITION);
    if (result.success) {
      run.set(storageReady('True', 'StorageReachable', result.message || `${location} is reachable`));
      if (before?.status !== 'True')
        run.event('Normal', 'StorageReady', `${location}: the storage probe passed`);
      return;
    }
    const reason = check.reason!;
    const next = check.nextAttemptAt ? `; probed again at ${check.nextAttemptAt}` : '';
    const message = `${location}: ${result.message}${next}`;
    run.set(storageReady('False', reason, message));
    if (before?.reason !== reason) run.event('Warning', reason, boundText(message, 1024));
    run.recheckWithin(
      check.nextAttemptAt
        ? Math.max(1_000, Date.parse(check.nextAttemptAt) - run.now.getTime())
        : SECRET_RECHECK_MS,
    );
  }

  private async getJob(run: ScheduleRun, name: string): Promise<KubeObject | undefined> {
    return this.ctx.client
      .get<KubeObject>({ ...JOBS, namespace: run.req.namespace, name })
      .catch((e: unknown) => {
        if (isNotFound(e)) return undefined;
        throw e;
      });
  }

  /** A probe Job of this schedule: controlled by it (owner UID, which only its creator knows) and labelled so. */
  private isOwnProbe(run: ScheduleRun, job: KubeObject) {
    const owner = controllerOf(job);
    return (
      !!owner?.uid &&
      owner.uid === run.obj.metadata.uid &&
      job.metadata.labels?.[Label.BackupSchedule] === run.req.name &&
      job.metadata.labels?.['app.kubernetes.io/component'] === STORAGE_PROBE_COMPONENT
    );
  }

  /** Deletes this schedule's probe Jobs other than `keep` (an old hash or attempt, or all for a claim). */
  private async deleteProbeJobs(run: ScheduleRun, keep: string | undefined) {
    const old = this.jobs
      .list(run.req.namespace)
      .filter(
        (job) => job.metadata.name !== keep && !job.metadata.deletionTimestamp && this.isOwnProbe(run, job),
      );
    for (const job of old) {
      await this.ctx.client
        .delete(
          { ...JOBS, namespace: run.req.namespace, name: job.metadata.name },
          { propagationPolicy: 'Background', preconditionsUid: job.metadata.uid },
        )
        .catch((e: unknown) => {
          if (!isNotFound(e) && !isConflict(e)) throw e;
        });
    }
  }
}

/** A finished probe Job's outcome as a result (the runner's, or the Job's own failure). */
function fromOutcome(o: FinishedOutcome): { success: boolean; reason?: string; message: string } {
  if (o.state === 'succeeded') return { success: true, message: o.result?.message ?? o.message };
  return { success: false, reason: o.reason, message: o.message };
}
