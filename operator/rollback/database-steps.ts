import {
  outcomeUnknown,
  resultOverdue,
  type FinishedOutcome,
  type JobOutcome,
} from '../backup/job-results.js';
import { STORAGE_MOUNT } from '../backup/pod-builders.js';
import { jobStartedAt, runnerEverStarted, runnerJobProblem } from '../backup/runner-pods.js';
import type { KubeObject } from '../kube/rest.js';
import { describeAccess } from '../kube/access.js';
import { failpoint } from '../failpoints.js';
import { selectBackup } from './backup-selection.js';
import { findStep, finishStep, isFinished, startStep } from './journal.js';
import { concurrentPlanFailure } from './locks.js';
import { safetyGapNote } from './outcome-messages.js';
import { judgePlanJob } from './plan-job-identity.js';
import type { PlanRun, StepOutcome } from './plan-run.js';
import { describeStorage } from '../backup/storage-location.js';
import {
  BACKUP_ID_ANNOTATION,
  buildPlanJob,
  ensurePlanJob,
  type EnsuredJob,
  deletePlanJob,
  JOB_POLL_MS,
  loadSchedule,
  ownPods,
  planJobName,
  planJobOutcome,
  releaseJob,
  RESULT_POLL_MS,
  safetyBackupId,
  suspendJob,
  type ScheduleContext,
} from './runner-jobs.js';

const wait = (message: string): StepOutcome => ({ kind: 'wait', message, requeueAfterMs: JOB_POLL_MS });

/**
 * Failure reasons of DatabaseRestore after which the database may hold the restored data: the plan says
 * "unknown, check it" (touchedSummary), never "unchanged".
 */
export const RESTORE_OUTCOME_UNKNOWN_REASONS: readonly string[] = [
  'RestoreJobLost',
  'RestoreOutcomeUnknown',
  'RestoreAlreadyStarted',
  'RestoreJobNotFenced',
  'RestoreJobSuspended',
];

type Finished = FinishedOutcome;

/**
 * A finished Job's outcome, or a wait while its runner result may still arrive (RESULT_WAIT_MS from the
 * Job's completion). After that an unread result is a failure that says the outcome is unknown.
 */
async function finishedOutcome(
  run: PlanRun,
  job: KubeObject,
  what: string,
  restore = false,
): Promise<Finished | StepOutcome> {
  const outcome: JobOutcome = await planJobOutcome(run, job);
  if (outcome.state === 'running') return stuckOrWait(run, job, what, restore);
  if (outcome.state !== 'unread') return outcome;
  if (!resultOverdue(outcome, run.now()))
    return {
      kind: 'wait',
      message: `${what}: the Job finished, waiting for its runner result`,
      requeueAfterMs: RESULT_POLL_MS,
    };
  return outcomeUnknown(outcome);
}
const isStep = (o: Finished | StepOutcome): o is StepOutcome => 'kind' in o;

/** How long a plan waits for a runner pod that cannot start (or a Job without a pod) before it fails. */
export const STUCK_JOB_FAIL_MS = 5 * 60_000;

/**
 * A running Job of the plan whose pod cannot start is named at once on the Reconciling condition (the wait's
 * reason), and fails the step after STUCK_JOB_FAIL_MS instead of the Job's one-hour deadline. A restore Job
 * fails only if no runner container ever started (nothing ran), and is suspended first so it never starts
 * after the plan has reported "nothing restored".
 */
async function stuckOrWait(
  run: PlanRun,
  job: KubeObject,
  what: string,
  restore: boolean,
): Promise<StepOutcome> {
  const pods = ownPods(job, run.cache.podsOfJob(job.metadata.name));
  const problem = runnerJobProblem(job, pods, run.now());
  if (!problem) return wait(what);
  const message = `${what}: ${problem.message}`;
  const stuckFor = run.now().getTime() - jobStartedAt(job);
  if (!(stuckFor >= STUCK_JOB_FAIL_MS) || (restore && runnerEverStarted(pods)))
    return { kind: 'wait', message, reason: problem.reason, requeueAfterMs: JOB_POLL_MS };
  if (restore) await suspendJob(run, job);
  const limit = `${STUCK_JOB_FAIL_MS / 60_000} min`;
  return {
    kind: 'failed',
    reason: problem.reason,
    message: restore
      ? `${message}; gave up after ${limit}: the restore pod never started and the Job is now suspended, so nothing was restored`
      : `${message}; gave up after ${limit}`,
  };
}

function record(run: PlanRun, name: string, ok: boolean, message: string) {
  run.status.steps = finishStep(run.status.steps, name, ok ? 'Succeeded' : 'Failed', message, run.now());
}

/**
 * Whether pre-validation starts the safety backup together with the verify Job. Both only read (the verify
 * Job the stored backup file, the safety backup the current database), so the safety backup runs while the
 * backup to restore is checked instead of after it: one Job start-up and one pg_dump off the way to the
 * restore. Only when the plan takes a safety backup and its SafetyBackup step has not finished; DatabaseRestore
 * still starts only after both steps succeeded (the steps run in order).
 */
export function safetyBackupAlongsideVerify(run: Pick<PlanRun, 'spec' | 'status'>): boolean {
  return !!run.spec.targets.database?.safetyBackup && !isFinished(findStep(run.status.steps, 'SafetyBackup'));
}

/**
 * Database pre-validation: the BackupSchedule and its Secret exist, the chosen backup is recorded and
 * verified, the operator may create Jobs, and the backup file is re-checked (sha256 + pg_restore --list) by a
 * verify Job before anything is touched. The chosen backup is pinned in status, so a newer backup arriving
 * while the plan runs never changes what is restored. The safety backup Job starts together with the verify
 * Job (safetyBackupAlongsideVerify); its SafetyBackup step starts here, and its result is the SafetyBackup
 * step's to read.
 */
/** How often a plan waiting for the operator's cluster id (S3 storage) looks again. */
export const CLUSTER_ID_WAIT_MS = 10_000;

export async function preValidateDatabase(run: PlanRun): Promise<StepOutcome> {
  const target = run.spec.targets.database!;
  const locked = concurrentPlanFailure(run, 'database');
  if (locked) return locked;
  const sc = await loadSchedule(run, target.backupScheduleRef.name);
  if ('kind' in sc) {
    record(run, 'CheckBackupSchedule', false, sc.message);
    return sc;
  }
  record(
    run,
    'CheckBackupSchedule',
    true,
    `BackupSchedule "${sc.schedule.metadata.name}" and Secret "${sc.secret.name}" found; storage ${describeStorage(sc.spec, sc.claimName)}`,
  );

  if (sc.spec.storage.s3 && run.runnerPolicy.clusterIdPending) {
    // Jobs made now would lack NXT_CLUSTER_ID and fail ClusterIdUnknown on a prefix that records the id; and
    // which prefix backups are this cluster's own (selectBackup) is not known yet. Nothing started: wait.
    return {
      kind: 'wait',
      reason: 'ClusterIdUnknown',
      message:
        "waiting for the operator to learn its cluster's id (it keeps retrying, see its log and " +
        'nxt_cluster_id_known): the S3 storage of the BackupSchedule needs it; nothing was started',
      requeueAfterMs: CLUSTER_ID_WAIT_MS,
    };
  }

  // What must be durable before the Jobs exist (one write for all of it).
  let unwritten = false;
  if (!run.status.database?.backupId) {
    const chosen = selectBackup(
      sc.schedule.status,
      target.backup,
      sc.spec.storage,
      run.runnerPolicy.clusterId,
    );
    if (chosen.fromPrefix) {
      // Not recorded by this cluster's schedule (disaster recovery): the verify Job below is the authority.
      run.status.database = {
        ...run.status.database,
        backupScheduleRef: sc.schedule.metadata.name,
        backupId: chosen.fromPrefix.id,
        mode: target.mode,
      };
      record(run, 'CheckBackupSelected', true, chosen.fromPrefix.message);
    } else if (!chosen.backup) {
      record(run, 'CheckBackupSelected', false, chosen.message);
      return { kind: 'failed', reason: chosen.reason, message: chosen.message };
    } else {
      run.status.database = {
        ...run.status.database,
        backupScheduleRef: sc.schedule.metadata.name,
        backupId: chosen.backup.id,
        backupFinishedAt: chosen.backup.finishedAt,
        mode: target.mode,
      };
      record(
        run,
        'CheckBackupSelected',
        true,
        `backup ${chosen.backup.id} (finished ${chosen.backup.finishedAt}, sha256 ${chosen.backup.sha256?.slice(0, 12) ?? '?'}…)`,
      );
    }
    // Durable before the verify Job exists: a reconcile whose write loses (409) never created a Job, and the
    // next one either finds this pin or chooses afresh with no Job of a different backup around.
    unwritten = true;
  }

  const needed = [{ group: 'batch', resource: 'jobs', verb: 'create', namespace: run.namespace }];
  for (const c of needed) {
    if (!(await run.access.check(c)).allowed) {
      const msg = `the operator's ServiceAccount may not ${describeAccess(c)}`;
      record(run, 'CheckPermissions', false, msg);
      return { kind: 'failed', reason: 'Forbidden', message: msg };
    }
  }

  const backupId = run.status.database!.backupId!;
  const name = planJobName(run, 'verify');
  run.status.database = { ...run.status.database, verifyJob: name };
  const alongside = safetyBackupAlongsideVerify(run);
  if (alongside && !findStep(run.status.steps, 'SafetyBackup')) {
    // The SafetyBackup step starts now, and like every step that creates something its start (and the Job's
    // name) is durable before its Job exists: after a crash the journal shows it in flight.
    run.status.steps = startStep(run.status.steps, 'SafetyBackup', run.now());
    run.status.database = { ...run.status.database, safetyBackupJob: planJobName(run, 'safety') };
    unwritten = true;
  }
  if (unwritten) await run.checkpoint();
  const ensured = await ensurePlanJob(
    run,
    'verify',
    buildPlanJob(
      run,
      sc,
      name,
      'test-restore',
      [
        'verify',
        '--storage-dir',
        STORAGE_MOUNT,
        '--id',
        backupId,
        '--termination-log',
        '/dev/termination-log',
      ],
      { backupId },
    ),
    { recordedUid: run.status.database.verifyJobUID, step: 'PreValidation' },
  );
  if (ensured.kind !== 'ready') {
    if (ensured.kind === 'failed') record(run, 'CheckBackupIntegrity', false, ensured.message);
    return ensured;
  }
  const job = ensured.job;
  run.status.database = { ...run.status.database, verifyJobUID: job.metadata.uid };
  if (ensured.created) {
    run.event(
      'Normal',
      'VerifyingBackup',
      `checking backup ${backupId} (sha256, pg_restore --list) in Job ${name}`,
    );
  }
  const checked = job.metadata.annotations?.[BACKUP_ID_ANNOTATION];
  if (checked !== backupId) {
    const msg = `verify Job ${name} checks backup ${checked ?? '(not recorded on the Job)'}, but the plan pinned backup ${backupId}: its result says nothing about the pinned backup, so nothing was changed; create a new plan`;
    record(run, 'CheckBackupIntegrity', false, msg);
    return { kind: 'failed', reason: 'VerifyJobMismatch', message: msg };
  }
  // A safety Job that cannot be had (a name taken, a Job lost) is the SafetyBackup step's failure to report,
  // after the verdict on the backup; here it only means the backup is not running alongside.
  let safety: EnsuredJob | undefined;
  if (alongside) {
    safety = await ensureSafetyJob(run, sc, true);
    if (ensured.created && safety.kind === 'ready' && safety.created)
      failpoint('after-verify-and-safety-jobs-created');
  }
  const outcome = await finishedOutcome(run, job, `verifying backup ${backupId} (Job ${name})`);
  if (isStep(outcome)) {
    if (outcome.kind === 'wait' && safety?.kind === 'ready')
      return {
        ...outcome,
        message: `${outcome.message}; safety backup ${safetyBackupId(run)} running alongside (Job ${safety.job.metadata.name})`,
      };
    return outcome;
  }
  if (outcome.state === 'failed') {
    const msg = `backup ${backupId} failed its integrity check: ${outcome.message}`;
    record(run, 'CheckBackupIntegrity', false, msg);
    return { kind: 'failed', reason: outcome.reason, message: msg };
  }
  record(run, 'CheckBackupIntegrity', true, `backup ${backupId}: ${outcome.message}`);
  return { kind: 'done', message: `backup ${backupId} selected and verified` };
}

/** The plan's safety backup Job, created when there is none yet (see ensurePlanJob). */
async function ensureSafetyJob(run: PlanRun, sc: ScheduleContext, alongside: boolean): Promise<EnsuredJob> {
  const name = planJobName(run, 'safety');
  const id = safetyBackupId(run);
  run.status.database = { ...run.status.database, safetyBackupJob: name };
  const ensured = await ensurePlanJob(
    run,
    'safety',
    buildPlanJob(
      run,
      sc,
      name,
      'backup',
      ['backup', '--storage-dir', STORAGE_MOUNT, '--id', id, '--termination-log', '/dev/termination-log'],
      { backupId: id, purpose: 'safety' },
    ),
    { recordedUid: run.status.database.safetyBackupJobUID, step: 'SafetyBackup' },
  );
  if (ensured.kind !== 'ready') return ensured;
  run.status.database = { ...run.status.database, safetyBackupJobUID: ensured.job.metadata.uid };
  if (ensured.created) {
    run.event(
      'Normal',
      'SafetyBackupStarted',
      `backing up the current database as ${id} before the restore (Job ${name})${alongside ? ', while the backup to restore is verified' : ''}`,
    );
  }
  return ensured;
}

/**
 * A backup of the current database before it is overwritten: the plan's own undo. Its id carries the plan's
 * UID, and the runner reuses an existing backup under it only if this plan wrote it. Usually its Job was
 * started by pre-validation, alongside the verify Job; the step then reads its result, and ends at the
 * runner's own finish time when that came first (the journal shows the overlap as it was).
 */
export async function takeSafetyBackup(run: PlanRun): Promise<StepOutcome> {
  if (!run.spec.targets.database?.safetyBackup)
    return {
      kind: 'done',
      skipped: true,
      message: 'safety backup disabled (spec.targets.database.safetyBackup: false)',
    };
  const sc = await loadSchedule(run, run.status.database!.backupScheduleRef!);
  if ('kind' in sc) return sc;
  const id = safetyBackupId(run);
  const ensured = await ensureSafetyJob(run, sc, false);
  if (ensured.kind !== 'ready') return ensured;
  const name = ensured.job.metadata.name;
  const outcome = await finishedOutcome(run, ensured.job, `taking the safety backup ${id} (Job ${name})`);
  if (isStep(outcome)) return outcome;
  const wrote = outcome.result?.id;
  if (outcome.state === 'failed' || wrote !== id) {
    const why = outcome.state === 'failed' ? outcome.message : `the Job reported backup ${wrote ?? '(none)'}`;
    return {
      kind: 'failed',
      reason: 'SafetyBackupFailed',
      message: `the safety backup ${id} failed, so nothing was restored: ${why}`,
    };
  }
  run.status.database = { ...run.status.database, safetyBackupId: id, ...snapshotTime(outcome) };
  const at = run.status.database.safetyBackupStartedAt;
  return {
    kind: 'done',
    message: `safety backup ${id} taken (${outcome.message}); restore it to undo this plan${at ? ` (it holds the database as of ${at}, when it started)` : ''}`,
    finishedAt: stepEnd(run, 'SafetyBackup', outcome.finishedAt),
  };
}

/**
 * When a step's work ended: the runner's finish time, kept within the step's start and now (a node clock
 * ahead or behind never puts an end before the start or in the future).
 */
export function stepEnd(run: Pick<PlanRun, 'status' | 'now'>, step: string, finishedAt: string): Date {
  const now = run.now().getTime();
  const start = Date.parse(findStep(run.status.steps, step)?.startedAt ?? '');
  const end = Date.parse(finishedAt);
  if (Number.isNaN(end)) return new Date(now);
  return new Date(Math.min(now, Math.max(Number.isNaN(start) ? end : start, end)));
}

/**
 * Pre-validation failed after it had started the safety backup alongside the verify Job: the plan ends
 * without restoring and does not wait for the safety backup. The SafetyBackup journal entry says what became
 * of it: taken (its Job had already succeeded; recorded like any safety backup), failed, not started,
 * finished but unread, or stopped. A Job still running is deleted (that very Job: preconditions uid;
 * background propagation, so its pod is stopped too): a failed plan holds no lock, and a pg_dump left running
 * would hold its read locks while the next plan's in-place restore waits behind them. What a stopped runner
 * leaves is never a backup: a partial dump (`<id>.dump.partial`, an unfinished multipart upload) or a dump
 * without its manifest is listed by no selection, the BackupSchedule records backups only from a finished
 * Job's result, and prune removes such leftovers once stale. Never throws: the plan's failure is what
 * matters here.
 */
export async function settleSafetyBackup(run: PlanRun): Promise<void> {
  const entry = findStep(run.status.steps, 'SafetyBackup');
  if (!entry || isFinished(entry)) return;
  const id = safetyBackupId(run);
  const name = run.status.database?.safetyBackupJob ?? planJobName(run, 'safety');
  const plan = { name: run.plan.metadata.name, uid: run.plan.metadata.uid ?? '' };
  const verdict = judgePlanJob(run.cache.job(name), plan, run.status.database?.safetyBackupJobUID);
  let outcome: JobOutcome | undefined;
  if (verdict.kind === 'ours') {
    run.status.database = { ...run.status.database, safetyBackupJobUID: verdict.job.metadata.uid };
    outcome = await planJobOutcome(run, verdict.job).catch(() => undefined);
  }
  const finish = (result: 'Succeeded' | 'Failed' | 'Skipped', message: string, at = run.now()) => {
    run.status.steps = finishStep(run.status.steps, 'SafetyBackup', result, message, at);
  };
  if (outcome?.state === 'succeeded' && outcome.result?.id === id) {
    run.status.database = { ...run.status.database, safetyBackupId: id, ...snapshotTime(outcome) };
    finish(
      'Succeeded',
      `safety backup ${id} taken alongside the verify Job (${outcome.message}); nothing was restored, so it is not needed (harmless)`,
      stepEnd(run, 'SafetyBackup', outcome.finishedAt),
    );
  } else if (outcome?.state === 'failed' || outcome?.state === 'succeeded') {
    finish('Failed', `the safety backup ${id} failed as well (${outcome.message}); nothing was restored`);
  } else if (outcome?.state === 'unread') {
    // Finished: its pod holds no lock any more, and the BackupSchedule records the backup from the Job.
    finish(
      'Skipped',
      `not waited for: pre-validation failed after the safety backup Job ${name} had finished, before its result was read; nothing was restored. That backup is not needed: if it succeeded, the BackupSchedule records it (purpose safety) and its retention prunes it`,
    );
  } else if (verdict.kind === 'ours') {
    const why = await deletePlanJob(run, verdict.job);
    if (!why) {
      run.event(
        'Normal',
        'SafetyBackupStopped',
        `deleted the safety backup Job ${name}: pre-validation failed, nothing is restored, so its backup is not needed`,
      );
      finish(
        'Skipped',
        `stopped: not needed. Pre-validation failed while the safety backup ${id} was running, so nothing was restored, and its Job ${name} was deleted (with its pod); a partial dump it left is never listed as a backup, and the BackupSchedule's prune removes it`,
      );
    } else {
      finish(
        'Skipped',
        `not waited for: pre-validation failed while the safety backup ${id} was running (Job ${name}), so nothing was restored; the Job could not be stopped (${why}) and is left to finish on its own. That backup is not needed and harmless: the BackupSchedule records it like any backup if it completes, and its retention prunes it`,
      );
    }
  } else if (run.status.database?.safetyBackupJobUID) {
    // Created, and gone now: deleted by an earlier attempt of this settle whose status write was lost (or by
    // someone else). Either way it no longer runs.
    finish(
      'Skipped',
      `stopped: not needed. Pre-validation failed after the safety backup ${id} had started, so nothing was restored; its Job ${name} is gone (deleted)`,
    );
  } else {
    finish('Skipped', `not started: pre-validation failed first, so nothing was restored`);
  }
}

/**
 * When the safety backup's snapshot was taken, at the latest: the runner's start (it exports the dump's
 * snapshot right after connecting). Not for a reused backup, whose dump is older than its result.
 */
function snapshotTime(outcome: FinishedOutcome): { safetyBackupStartedAt?: string } {
  const r = outcome.result?.operation === 'backup' ? outcome.result : undefined;
  if (!r || r.reused || Number.isNaN(Date.parse(r.startedAt))) return {};
  return { safetyBackupStartedAt: new Date(r.startedAt).toISOString() };
}

/**
 * Restores the pinned backup with a Job that runs at most once for the plan. Crash windows (the operator can
 * die anywhere; each line says what the next reconcile finds and does):
 *  1. before `restoreJob` is written: nothing exists; start over.
 *  2. `restoreJob` written, Job not created: no Job (live GET), no UID: create it (suspended).
 *  3. Job created suspended, UID not yet in status: the Job is found by its owner UID and adopted. If it was
 *     deleted meanwhile it never ran (only a Job whose UID is durable is ever released), so it is created again.
 *  4. UID written, Job not yet released: released now. From here on a missing Job is RestoreJobLost: the
 *     release may have reached the API server before the crash.
 *  5. released, running or finished, outcome not yet in status: the recorded Job's outcome is read; if the
 *     Job is gone (live GET), Failed/RestoreJobLost, never a second restore.
 *  6. outcome in status: the step is finished and the Job is never looked at again.
 * A same-named Job of another owner is never read (JobNameConflict); one of ours with another UID is
 * RestoreJobLost. `backoffLimit: 0`: a failed pod is a failed step, never a retry.
 */
export async function restoreDatabase(run: PlanRun): Promise<StepOutcome> {
  const db = run.status.database!;
  if (run.spec.targets.database?.safetyBackup && !db.safetyBackupId && !db.restoreJob) {
    // Defence in depth: the steps run in order, so SafetyBackup succeeded and recorded its id. Without it
    // nothing would undo the restore: refuse before the restore Job exists.
    return {
      kind: 'failed',
      reason: 'SafetyBackupMissing',
      message:
        'spec.targets.database.safetyBackup is true but no safety backup is recorded (status.database.safetyBackupId), so nothing was restored',
    };
  }
  const sc = await loadSchedule(run, db.backupScheduleRef!);
  if ('kind' in sc) return sc;
  const name = planJobName(run, 'restore');
  const sql = run.spec.validation.sql?.length
    ? ['--sql-assertions-json', JSON.stringify(run.spec.validation.sql)]
    : [];
  const args = [
    'restore',
    '--storage-dir',
    STORAGE_MOUNT,
    '--id',
    db.backupId!,
    '--mode',
    db.mode ?? 'inPlace',
    ...(db.mode === 'newDatabaseSwap'
      ? ['--keep-previous-databases', String(run.spec.targets.database!.keepPreviousDatabases)]
      : []),
    ...sql,
    '--termination-log',
    '/dev/termination-log',
  ];
  if (!db.restoreJob) {
    run.status.database = { ...db, restoreJob: name };
    await run.checkpoint();
  }
  const ensured = await ensurePlanJob(
    run,
    'restore',
    buildPlanJob(run, sc, name, 'restore', args, { backupId: db.backupId!, suspend: true }),
    { recordedUid: db.restoreJobUID, step: 'DatabaseRestore' },
  );
  if (ensured.kind !== 'ready') return ensured;
  const job = ensured.job;
  if (ensured.created) failpoint('after-restore-job-created');
  if (!run.status.database!.restoreJobUID) {
    // Only a Job that never ran may be adopted: someone (a user, a queueing controller such as Kueue) may have
    // released it before its UID was durable, and that run is not ours to count or to repeat.
    if (job.spec?.suspend !== true || job.status?.startTime) {
      return {
        kind: 'failed',
        reason: 'RestoreJobNotFenced',
        message: `restore Job ${name} was released by someone else before the plan recorded it (spec.suspend ${job.spec?.suspend}, startTime ${job.status?.startTime ?? 'unset'}); it is not adopted and no second restore is started; the database may hold backup ${db.backupId} (check it)${db.safetyBackupId ? `; safety backup ${db.safetyBackupId} holds the state before` : ''}`,
      };
    }
    run.status.database = { ...run.status.database, restoreJobUID: job.metadata.uid };
    await run.checkpoint();
  }
  if (job.spec?.suspend === true) {
    if (run.status.database!.restoreJobReleased) {
      // Released once already: suspended again (by a user or a crash right before the release), it is never
      // released a second time, since a second pod could restore again over newer writes.
      return {
        kind: 'failed',
        reason: 'RestoreJobSuspended',
        message: `restore Job ${name} is suspended after the plan released it; it is not released again; the restore may have run partly or fully (check the database)${db.safetyBackupId ? `; safety backup ${db.safetyBackupId} holds the state before` : ''}`,
      };
    }
    run.status.database = { ...run.status.database, restoreJobReleased: true };
    await run.checkpoint();
    await releaseJob(run, job);
    failpoint('after-restore-job-released');
    run.event(
      'Normal',
      'RestoreStarted',
      `restoring backup ${db.backupId} (${db.mode ?? 'inPlace'}) in Job ${name}`,
    );
    return wait(`restoring backup ${db.backupId} (Job ${name})`);
  }
  const outcome = await finishedOutcome(run, job, `restoring backup ${db.backupId} (Job ${name})`, true);
  if (isStep(outcome)) return outcome;
  if (outcome.state === 'failed') return restoreFailed(run, outcome);
  const r = outcome.result?.operation === 'restore' ? outcome.result : undefined;
  run.status.database = {
    ...run.status.database,
    ...(r?.tablesVerified !== undefined ? { verifiedTables: r.tablesVerified } : {}),
    ...(r?.previousDatabase ? { previousDatabase: r.previousDatabase } : {}),
    ...(r?.restoreSeconds !== undefined ? { restoreSeconds: Math.round(r.restoreSeconds * 10) / 10 } : {}),
    ...(r?.previousDatabasesKept ? { previousDatabasesKept: r.previousDatabasesKept.slice(0, 16) } : {}),
    ...(r?.previousDatabasesDropped
      ? { previousDatabasesDropped: r.previousDatabasesDropped.slice(0, 16) }
      : {}),
  };
  const gap = safetyGapNote(run.status);
  return {
    kind: 'done',
    message: `restored backup ${db.backupId}: ${outcome.message}${gap ? `; ${gap}` : ''}`,
  };
}

/**
 * A failed restore, told honestly. In place, pg_restore --single-transaction commits and only then are row
 * counts and assertions checked: the runner sets restoreSeconds right after the commit, so a failure with it
 * set (validation, a lost connection) means the data WAS replaced. Without a runner result (crash, pod gone,
 * result never read) nobody knows: "may have been applied", never "unchanged".
 */
function restoreFailed(run: PlanRun, outcome: FinishedOutcome): StepOutcome {
  const db = run.status.database!;
  const mode = db.mode ?? 'inPlace';
  const undo = db.safetyBackupId ? `; safety backup ${db.safetyBackupId} holds the state before` : '';
  const r = outcome.result?.operation === 'restore' ? outcome.result : undefined;
  if (!r || outcome.reason === 'RestoreAlreadyStarted') {
    return {
      kind: 'failed',
      reason: r ? 'RestoreAlreadyStarted' : 'RestoreOutcomeUnknown',
      message: `restore of ${db.backupId}: ${outcome.message}; the restore may have been applied (check the database)${undo}`,
    };
  }
  const applied =
    mode === 'inPlace' &&
    (r.restoreSeconds !== undefined || ['RowCountMismatch', 'AssertionFailed'].includes(outcome.reason));
  if (applied) run.status.database = { ...run.status.database, restoreApplied: true };
  const state = applied
    ? `the restore WAS applied but the step failed after the commit; the database now holds backup ${db.backupId}${db.safetyBackupId ? `, restore safety backup ${db.safetyBackupId} to undo` : ''}`
    : mode === 'inPlace'
      ? 'the database is unchanged (the restore ran in one transaction and did not commit)'
      : 'the database was not swapped';
  return {
    kind: 'failed',
    reason: outcome.reason === 'Succeeded' ? 'RestoreFailed' : outcome.reason,
    message: `restore of ${db.backupId} failed: ${outcome.message}; ${state}`,
  };
}
