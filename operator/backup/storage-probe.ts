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
/** On a probe Job: its attempt (status.storageCheck.attempt), so only older attempts are deleted. */
export const PROBE_ATTEMPT_ANNOTATION = `${GROUP}/storage-probe-attempt`;
/**
 * On a BackupSchedule: any new value probes the storage again now (its value goes into the hash), e.g. after
 * the bucket was created or access granted outside the cluster.
 */
export const PROBE_STORAGE_ANNOTATION = `${GROUP}/probe-storage`;
/**
 * What the operator's probe does, versioned: it goes into the hash instead of the operator image, so an
 * operator upgrade does not probe every schedule again unless the probe itself changed.
 */
export const PROBE_PROTOCOL = 1;
/** A probe's calls are bounded (15 s each); its Job gets two minutes at most. */
export const PROBE_DEADLINE_SECONDS = 120;
/** Finished probe Jobs are removed by the TTL controller after an hour (status keeps the result). */
export const PROBE_TTL_SECONDS = 3600;
/** A retryable failure (network, throttling, a lost Job) is probed again after 30 s, doubling up to 15 min. */
export const PROBE_RETRY_BASE_MS = 30_000;
export const PROBE_RETRY_MAX_MS = 15 * 60_000;
/**
 * A failure only a change can fix (a missing bucket, denied access) is probed again too, slowly: the fix often
 * happens outside the cluster (Terraform creates the bucket, IAM grants access, IRSA has no Secret to touch).
 * 5 min, doubling, bounded at 1 h.
 */
export const PROBE_SLOW_RETRY_BASE_MS = 5 * 60_000;
export const PROBE_SLOW_RETRY_MAX_MS = 60 * 60_000;
/** Attempts counted per hash; the count stays here once reached (the delay is at its maximum long before). */
export const PROBE_MAX_ATTEMPT = 1000;
/**
 * A re-check of a schedule whose storage was fine (an upgrade, a Secret change) starts within this long,
 * spread by the schedule's UID, so an upgrade does not start every probe at once. A new schedule is not delayed.
 */
export const PROBE_RECHECK_SPREAD_MS = 30_000;
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

/** The same for a failure only a change can fix: slower, so a fix made outside the cluster is still noticed. */
export const probeSlowRetryDelayMs = (attempt: number) =>
  Math.min(PROBE_SLOW_RETRY_BASE_MS * 2 ** Math.max(0, Math.min(attempt - 1, 20)), PROBE_SLOW_RETRY_MAX_MS);

/** The spread of a re-check's start, 0 to PROBE_RECHECK_SPREAD_MS, from the schedule's UID. Pure. */
export const probeSpreadMs = (uid: string | undefined) =>
  uid ? createHash('sha256').update(uid).digest().readUInt32BE(0) % PROBE_RECHECK_SPREAD_MS : 0;

const nextAttempt = (attempt: number) => Math.min(attempt + 1, PROBE_MAX_ATTEMPT);

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
  /**
   * spec.podTemplate.image when the schedule pins the runner image; the operator's own image is left out (an
   * upgrade would probe every schedule at once) and PROBE_PROTOCOL stands for what the probe does.
   */
  pinnedImage?: string;
  /** The schedule's PROBE_STORAGE_ANNOTATION value: a new value is a new probe. */
  request?: string;
  /** podTemplate.serviceAccountName: the default credential chain (IRSA, Pod Identity) depends on it. */
  serviceAccountName?: string;
  /** resourceVersion per Secret the location names ('?' when the operator may not read it). */
  secretVersions: Record<string, string>;
  /**
   * The cluster id the probe Job gets (NXT_CLUSTER_ID), or CLUSTER_ID_PENDING while the operator still
   * retries to learn it: a probe made without the id fails ClusterIdUnknown on a prefix that records one, and
   * learning the id must probe again instead of keeping that verdict. Absent (no id, none coming): left out.
   */
  clusterId?: string;
}

/** ProbeHashInput.clusterId while the operator's cluster id is pending (config.clusterIdPending). */
export const CLUSTER_ID_PENDING = '<pending>';

/** What a probe checked, as 32 hex characters: a new value means a new probe. Pure. */
export function storageProbeHash(input: ProbeHashInput): string {
  return createHash('sha256')
    .update(
      canonical({
        v: 2,
        protocol: PROBE_PROTOCOL,
        uid: input.uid ?? '',
        s3: input.s3,
        image: input.pinnedImage ?? '',
        request: input.request ?? '',
        sa: input.serviceAccountName ?? '',
        secrets: input.secretVersions,
        ...(input.clusterId !== undefined ? { cluster: input.clusterId } : {}),
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
    if (check.jobName) return { action: 'wait', jobName: check.jobName };
    // A spread re-check not started yet.
    const due = check.nextAttemptAt ? Date.parse(check.nextAttemptAt) - now.getTime() : 0;
    return due > 0 ? { action: 'done', recheckInMs: due } : { action: 'create', attempt: check.attempt };
  }
  if (check.result === 'Succeeded') return { action: 'done' };
  if (check.nextAttemptAt) {
    const due = Date.parse(check.nextAttemptAt) - now.getTime();
    if (!(due > 0)) return { action: 'create', attempt: nextAttempt(check.attempt) };
    // The Secrets are re-read meanwhile: a changed one is a new hash, probed at once.
    return { action: 'done', recheckInMs: Math.min(due, SECRET_RECHECK_MS) };
  }
  // A failure recorded by an older operator (no nextAttemptAt): probe again on the slow backoff.
  const due = Date.parse(check.checkedAt ?? '') + probeSlowRetryDelayMs(check.attempt) - now.getTime();
  if (!(due > 0)) return { action: 'create', attempt: nextAttempt(check.attempt) };
  return { action: 'done', recheckInMs: Math.min(due, SECRET_RECHECK_MS) };
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
  const delay = probeRetryable(reason) ? probeRetryDelayMs(attempt) : probeSlowRetryDelayMs(attempt);
  return {
    ...base,
    result: 'Failed',
    reason,
    nextAttemptAt: new Date(now.getTime() + delay).toISOString().replace(/\.\d+Z$/, 'Z'),
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

/**
 * StorageReady Unknown reasons that do not hold Ready: the probe cannot run or cannot be recorded (a pinned
 * runner image without probe-storage, an old CRD, an error of the operator's own), which says nothing about the
 * storage; backups go on and say for themselves whether they work.
 */
export const PROBE_NOT_POSSIBLE_REASONS = new Set([
  'ProbeUnsupportedByImage',
  'CRDOutdated',
  'StorageCheckError',
  'StorageCheckSuspended',
  'ClaimNotChecked',
]);

/**
 * The probe pod's resources: small and fixed (it lists, writes and deletes one small object), not
 * podTemplate.resources, which are sized for pg_dump and would make a quota refuse the probe first.
 */
export const PROBE_RESOURCES = {
  requests: { cpu: '50m', memory: '96Mi' },
  limits: { memory: '256Mi' },
};

/** Ready's view of StorageReady (absent: nothing to check, e.g. before this version). Pure. */
export function storageReadiness(conditions: BackupScheduleStatus['conditions']): StorageReadiness {
  const c = findCondition(conditions, STORAGE_READY_CONDITION);
  if (!c || c.status === 'True') return { state: 'ready' };
  if (c.status === 'Unknown' && PROBE_NOT_POSSIBLE_REASONS.has(c.reason)) return { state: 'ready' };
  if (c.status === 'Unknown') return { state: 'checking', message: c.message };
  return { state: 'failed', reason: c.reason, message: c.message, stalled: !probeRetryable(c.reason) };
}

export interface ProbeJobInput {
  owner: KubeObject;
  spec: EffectiveBackupScheduleSpec;
  image: string;
  name: string;
  hash: string;
  attempt?: number;
  /** The operator's cluster id (NXT_CLUSTER_ID): the probe checks the prefix's owner as a backup would. */
  clusterId?: string;
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
    ...(input.clusterId ? { clusterId: input.clusterId } : {}),
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
      annotations: {
        [PROBE_HASH_ANNOTATION]: input.hash,
        ...(input.attempt ? { [PROBE_ATTEMPT_ANNOTATION]: String(input.attempt) } : {}),
      },
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
      template: {
        ...jobSpec.template,
        spec: {
          ...jobSpec.template.spec,
          containers: jobSpec.template.spec.containers.map((c) => ({
            ...c,
            resources: structuredClone(PROBE_RESOURCES),
          })),
        },
      },
      backoffLimit: 0,
      activeDeadlineSeconds: PROBE_DEADLINE_SECONDS,
      ttlSecondsAfterFinished: PROBE_TTL_SECONDS,
    },
  };
}

const JOBS = { group: 'batch', version: 'v1', plural: 'jobs' } as const;

/** How a failed probe's message says it is being tried again (kept, with the failure, while the retry runs). */
const RETRYING = '; retrying, attempt ';

/**
 * Whether a new probe is a re-check of storage that was fine at this generation (an operator upgrade, a Secret
 * rotation, a re-probe request): then Ready stays as it is while it runs. A new schedule or a changed spec waits
 * for the probe instead. Pure.
 */
export function isRecheck(obj: KubeObject, before: BackupScheduleStatus): boolean {
  const generation = obj.metadata.generation;
  const storage = findCondition(before.conditions, STORAGE_READY_CONDITION);
  if (storage)
    return (
      storage.status === 'True' && (generation === undefined || storage.observedGeneration === generation)
    );
  // Before this version there was no StorageReady: a schedule Ready at this generation was working.
  const ready = findCondition(before.conditions, 'Ready');
  return ready?.status === 'True' && (generation === undefined || ready.observedGeneration === generation);
}

/**
 * What recorded backups say about the storage since the last probe: a backup that succeeded after a failed probe
 * (same hash) proves the storage works; a backup that failed for a storage reason after a passing probe shows it
 * no longer does. Undefined: nothing newer than the probe. Pure.
 */
export function storageFromBackups(
  check: StorageCheck | undefined,
  status: BackupScheduleStatus,
):
  | { success: true; at: string; id: string }
  | { success: false; at: string; reason: string; message: string }
  | undefined {
  if (!check?.result || !check.checkedAt) return undefined;
  const checked = Date.parse(check.checkedAt);
  const good = status.lastSuccessfulBackup;
  const last = findCondition(status.conditions, 'LastBackupSucceeded');
  if (check.result === 'Failed') {
    if (good && Date.parse(good.finishedAt) > checked && last?.status !== 'False')
      return { success: true, at: good.finishedAt, id: good.id };
    return undefined;
  }
  if (
    last?.status === 'False' &&
    /^Storage[A-Za-z]/.test(last.reason) &&
    last.lastTransitionTime &&
    Date.parse(last.lastTransitionTime) > checked
  )
    return { success: false, at: last.lastTransitionTime, reason: last.reason, message: last.message };
  return undefined;
}

const second = (d: Date) => d.toISOString().replace(/\.\d+Z$/, 'Z');

/**
 * The phase of a BackupSchedule reconcile that keeps StorageReady: for an S3 location, starts, reads and
 * records probe Jobs (never ends the reconcile, and an error of its own never stops the rest of it; Ready reads
 * StorageReady in reportReadiness). Claims are checked by checkClaim and need no Job.
 */
export class StorageProbePhase {
  constructor(
    private readonly ctx: ManagerContext,
    private readonly jobs: MultiInformer<KubeObject>,
    private readonly pods: MultiInformer<KubeObject>,
  ) {}

  async reconcile(run: ScheduleRun): Promise<undefined> {
    try {
      await this.converge(run);
    } catch (e) {
      // The rest of the reconcile (recording finished backups, the CronJobs, RPOMet) goes on.
      const message = boundText(`the storage probe could not be run or read: ${(e as Error).message}`, 1024);
      run.log.warn('storage probe failed', { error: (e as Error).message });
      run.set(storageReady('Unknown', 'StorageCheckError', message));
      run.recheckWithin(PROBE_RETRY_BASE_MS);
    }
    return undefined;
  }

  /** The hash of what the probe of this schedule checks now. */
  hashOf(run: ScheduleRun, s3: S3Storage) {
    const pinned = run.spec.podTemplate?.image;
    return storageProbeHash({
      uid: run.obj.metadata.uid,
      s3,
      ...(pinned ? { pinnedImage: pinned } : {}),
      request: run.obj.metadata.annotations?.[PROBE_STORAGE_ANNOTATION],
      serviceAccountName: run.spec.podTemplate?.serviceAccountName,
      secretVersions: run.storageSecretVersions ?? {},
      ...this.clusterIdForHash(),
    });
  }

  /** The hash's cluster id: the one the probe Job gets, or the pending marker (see ProbeHashInput.clusterId). */
  private clusterIdForHash(): { clusterId?: string } {
    const { clusterId, clusterIdPending } = this.ctx.config;
    if (clusterIdPending) return { clusterId: CLUSTER_ID_PENDING };
    return clusterId ? { clusterId } : {};
  }

  private async converge(run: ScheduleRun) {
    const s3 = run.spec.storage.s3;
    if (!s3) {
      delete run.status.storageCheck;
      await this.deleteProbeJobs(run, undefined, 0);
      return;
    }
    const image = run.spec.podTemplate?.image ?? this.ctx.config.OPERATOR_IMAGE;
    const hash = this.hashOf(run, s3);
    const check = run.status.storageCheck;
    let decision = decideProbe(hash, check, run.now);
    if (decision.action === 'create' && check?.hash !== hash && isRecheck(run.obj, run.before)) {
      // A re-check of storage that worked: spread over PROBE_RECHECK_SPREAD_MS, Ready unchanged meanwhile.
      const spread = probeSpreadMs(run.obj.metadata.uid);
      if (spread > 0) {
        run.status.storageCheck = {
          hash,
          attempt: 1,
          nextAttemptAt: second(new Date(run.now.getTime() + spread)),
        };
        decision = decideProbe(hash, run.status.storageCheck, run.now);
      }
    }
    if (decision.action === 'create' && run.spec.suspend) {
      // Suspended: nothing will use the storage until it resumes; its probe runs then.
      const c = findCondition(run.status.conditions, STORAGE_READY_CONDITION);
      if (check?.hash === hash && c && c.status !== 'Unknown')
        run.set(storageReady(c.status, c.reason, c.message));
      else
        run.set(
          storageReady(
            'Unknown',
            'StorageCheckSuspended',
            `${describeStorage(run.spec)}: not probed while the schedule is suspended`,
          ),
        );
    } else if (decision.action === 'create') await this.start(run, hash, image, decision.attempt);
    else if (decision.action === 'wait') await this.read(run, hash, decision.jobName);
    else {
      // Unchanged: the same condition, at this generation.
      const c = findCondition(run.status.conditions, STORAGE_READY_CONDITION);
      if (c) run.set(storageReady(c.status, c.reason, c.message));
      else if (!run.status.storageCheck?.result)
        run.set(
          storageReady(
            'True',
            'StorageRecheckPending',
            `${describeStorage(run.spec)}: a re-check starts shortly`,
          ),
        );
      if (decision.recheckInMs !== undefined) run.recheckWithin(Math.max(1_000, decision.recheckInMs));
    }
    const current = run.status.storageCheck;
    await this.deleteProbeJobs(run, hash, current?.hash === hash ? current.attempt : 0);
  }

  /**
   * After the backups of this reconcile are recorded: a backup newer than the probe's result corrects
   * StorageReady (a success clears a failure, a storage failure shows on a passed probe). Never throws.
   */
  afterBackups(run: ScheduleRun) {
    const check = run.status.storageCheck;
    if (!run.spec.storage.s3 || !check) return;
    const seen = storageFromBackups(check, run.status);
    if (!seen) return;
    const location = describeStorage(run.spec);
    const before = findCondition(run.status.conditions, STORAGE_READY_CONDITION);
    if (seen.success) {
      run.status.storageCheck = {
        hash: check.hash,
        attempt: check.attempt,
        ...(check.jobName ? { jobName: check.jobName } : {}),
        result: 'Succeeded',
        checkedAt: seen.at,
      };
      run.set(
        storageReady(
          'True',
          'BackupSucceeded',
          `${location}: backup ${seen.id} succeeded at ${seen.at}, after the storage probe failed (${check.reason ?? 'failed'})`,
        ),
      );
      if (before?.status !== 'True')
        run.event('Normal', 'StorageReady', `${location}: backup ${seen.id} succeeded; the storage works`);
      return;
    }
    const reason = validReason(seen.reason) ?? 'StorageFailed';
    run.status.storageCheck = {
      hash: check.hash,
      attempt: check.attempt,
      ...(check.jobName ? { jobName: check.jobName } : {}),
      result: 'Failed',
      reason,
      checkedAt: seen.at,
      nextAttemptAt: second(new Date(run.now.getTime() + probeRetryDelayMs(1))),
    };
    const message = `${location}: a backup failed after the storage probe passed: ${seen.message}; probed again at ${run.status.storageCheck.nextAttemptAt}`;
    run.set(storageReady('False', reason, message));
    if (before?.reason !== reason) run.event('Warning', reason, boundText(message, 1024));
    run.recheckWithin(probeRetryDelayMs(1));
  }

  private async start(run: ScheduleRun, hash: string, image: string, attempt: number) {
    const name = probeJobName(run.req.name, hash, attempt);
    const body = buildProbeJob({
      owner: run.owner,
      spec: run.spec,
      image,
      name,
      hash,
      attempt,
      ...(this.ctx.config.clusterId ? { clusterId: this.ctx.config.clusterId } : {}),
    });
    const location = describeStorage(run.spec);
    // The storageCheck this reconcile started from (a status the API server dropped is gone again).
    const lost =
      !run.before.storageCheck && !!run.previous(STORAGE_READY_CONDITION)?.message.includes(`Job ${name}`);
    try {
      await this.ctx.client.create({ ...JOBS, namespace: run.req.namespace }, body);
    } catch (e) {
      if (!isAlreadyExists(e)) {
        const rejection = userFixableRejection(e);
        if (!rejection) throw e;
        // A quota or policy refusing the Job: retried with the backoff (slower for a permanent one).
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
      // Our own Job of this attempt: read it (a lost status write, or a CRD that drops status.storageCheck).
      run.status.storageCheck = { hash, attempt, jobName: name };
      await this.read(run, hash, name);
      if (lost) {
        const c = findCondition(run.status.conditions, STORAGE_READY_CONDITION);
        run.set(
          storageReady(
            'Unknown',
            'CRDOutdated',
            `status.storageCheck is not stored (the BackupSchedule CRD predates the storage probe): apply the CRDs of this operator version; probe Job ${name}: ${c?.reason ?? 'running'}: ${c?.message ?? ''}`,
          ),
        );
        run.recheckWithin(SECRET_RECHECK_MS);
      }
      return;
    }
    run.status.storageCheck = { hash, attempt, jobName: name };
    const prev = run.previous(STORAGE_READY_CONDITION);
    if (prev?.status === 'False' && run.before.storageCheck?.hash === hash) {
      // A retry: the failure stays (no flapping through Unknown), saying a retry runs.
      const base = prev.message.split(RETRYING)[0]!;
      run.set(storageReady('False', prev.reason, `${base}${RETRYING}${attempt} (Job ${name})`));
    } else if (isRecheck(run.obj, run.before)) {
      run.set(
        storageReady(
          'True',
          'StorageRecheckInProgress',
          `re-checking ${location} (Job ${name}); the last check passed`,
        ),
      );
    } else {
      run.set(storageReady('Unknown', 'StorageCheckInProgress', `probing ${location} (Job ${name})`));
      if (prev?.reason !== 'StorageCheckInProgress')
        run.event('Normal', 'StorageCheckStarted', `probing ${location} with Job ${name}`);
    }
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
    // A runner image without probe-storage says nothing about the storage: Unknown, Ready not held.
    run.set(storageReady(reason === 'ProbeUnsupportedByImage' ? 'Unknown' : 'False', reason, message));
    if (before?.reason !== reason) run.event('Warning', reason, boundText(message, 1024));
    run.recheckWithin(
      Math.min(
        SECRET_RECHECK_MS,
        Math.max(1_000, Date.parse(check.nextAttemptAt ?? '') - run.now.getTime() || SECRET_RECHECK_MS),
      ),
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

  /**
   * Deletes this schedule's probe Jobs of another hash than `hash`, or of an attempt before `attempt` (all of
   * them when `hash` is undefined: a claim). A Job of the current hash and attempt, or a newer one the cache
   * shows before status does, is never deleted.
   */
  private async deleteProbeJobs(run: ScheduleRun, hash: string | undefined, attempt: number) {
    const old = this.jobs.list(run.req.namespace).filter((job) => {
      if (job.metadata.deletionTimestamp || !this.isOwnProbe(run, job)) return false;
      if (hash === undefined) return true;
      const a = job.metadata.annotations ?? {};
      if (a[PROBE_HASH_ANNOTATION] !== hash) return true;
      const n = Number(a[PROBE_ATTEMPT_ANNOTATION]);
      return Number.isInteger(n) && n < attempt;
    });
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
  // A runner that does not know probe-storage or its flags (a pinned image older than this operator).
  if (o.reason === 'InvalidArguments' && (o.result?.operation === 'unknown' || o.message.includes('usage (')))
    return {
      success: false,
      reason: 'ProbeUnsupportedByImage',
      message: `the runner image does not support probe-storage (an older spec.podTemplate.image?); use the operator's image or a newer one: ${o.message.split('\n')[0]}`,
    };
  return { success: false, reason: o.reason, message: o.message };
}
