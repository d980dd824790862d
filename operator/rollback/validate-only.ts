// spec.validateOnly: a plan's checks on their own, against the current state, changing nothing. `pre` runs the
// real pre-validation steps (app-steps, feature-steps, the HTTP check patterns, and the database checks short
// of the verify Job) on a scratch copy of status; `post` runs the post-validation checks (rollouts complete,
// spec.validation.http through the background HttpChecks) and waits, by requeue, until they decide.
import { parseDuration } from '../api/v1alpha1/common.js';
import type { RollbackPlanStatus, ValidationReport } from '../api/v1alpha1/rollbackplan.js';
import { describeAccess } from '../kube/access.js';
import { boundText } from '../kube/bounded.js';
import { isNotFound, KubeApiError, userFixableRejection } from '../kube/errors.js';
import { preValidateApp } from './app-steps.js';
import { selectBackup } from './backup-selection.js';
import type { RawDeployment } from './deployment-undo.js';
import { preValidateFlags } from './feature-steps.js';
import { FIRST_ATTEMPT, NOT_ATTEMPTED } from './http-check.js';
import { findStep, finishStep, startStep, type Step } from './journal.js';
import { concurrentPlanFailure } from './locks.js';
import type { PlanRun, StepOutcome } from './plan-run.js';
import { preValidateHttpChecks } from './post-validation.js';
import { rolloutProgress } from './rollout.js';
import { loadSchedule } from './runner-jobs.js';
import { scopeTargets } from './scope.js';
import { describeStorage } from '../backup/storage-location.js';

export type ValidationCheck = ValidationReport['checks'][number] & {
  /** Why it failed (condition reason); not part of the report. */
  reason?: string;
};
export type ValidationStage = ValidationReport['stage'];

/**
 * A failed API call as a check message: the request and the API server's answer (KubeApiError carries no
 * headers or bodies), or the error's own message; bounded to a status message.
 */
export function apiErrorMessage(e: unknown): string {
  const text =
    e instanceof KubeApiError ? e.message : e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return boundText(`API error: ${text}`, 1024);
}

/** 5xx, 429, 409, timeouts, network errors: worth another try. 403 and bad requests are not (a human must act). */
const isTransient = (e: unknown) => !isNotFound(e) && userFixableRejection(e) === undefined;

/** The journal name of the step whose durable start times a `post` validation. */
export const POST_STEP = 'PostValidation';
const MAX_CHECKS = 64;

/** The report, its summary and the condition reason: a pure function of the checks. */
export function validationReport(stage: ValidationStage, all: ValidationCheck[]) {
  const checks = all.slice(0, MAX_CHECKS);
  const failed = checks.filter((c) => c.result === 'Failed');
  const passed = failed.length === 0;
  const ran = checks.filter((c) => c.result !== 'Skipped').length;
  const what = stage === 'pre' ? 'pre-validation' : 'post-validation';
  const summary = boundText(
    passed
      ? `${what}: all ${ran} check(s) passed`
      : `${what}: ${failed.length} of ${ran} check(s) failed: ${failed.map((c) => `${c.name}: ${c.message}`).join('; ')}`,
    1024,
  );
  return {
    report: {
      stage,
      passed,
      checks: checks.map((c) => ({
        name: boundText(c.name, 128),
        result: c.result,
        message: boundText(c.message, 1024),
      })),
    } satisfies ValidationReport,
    summary,
    reason: passed ? 'ChecksPassed' : (failed[0]!.reason ?? 'CheckFailed'),
  };
}

const fromJournal = (s: Step): ValidationCheck => ({
  name: s.name,
  result: s.result === 'Failed' ? 'Failed' : s.result === 'Skipped' ? 'Skipped' : 'Passed',
  message: s.message ?? '',
});

/**
 * One pre-validator on a scratch status: its journal entries become the checks, a failure it did not journal
 * becomes a check named after it, and the checks it never reached (it stops at its first failure) are Skipped.
 */
async function runValidator(
  run: PlanRun,
  name: string,
  expected: readonly string[],
  validate: (r: PlanRun) => Promise<StepOutcome>,
): Promise<ValidationCheck[]> {
  const scratch: PlanRun = {
    ...run,
    status: { ...structuredClone(run.status), steps: [] } as RollbackPlanStatus,
    checkpoint: async () => {}, // nothing of a validation is durable but its report
    histories: new Map(),
  };
  let outcome: StepOutcome;
  try {
    outcome = await validate(scratch);
  } catch (e) {
    // A validator that throws (a 403 or 5xx from a GET or LIST) is a failed check, not a silent plan: the
    // check it was in (journalled Running) fails with the error, else one named after the validator.
    outcome = { kind: 'failed', reason: 'APIError', message: apiErrorMessage(e) };
    const running = (scratch.status.steps ?? []).find((s) => s.result === 'Running');
    if (running)
      scratch.status.steps = finishStep(
        scratch.status.steps,
        running.name,
        'Failed',
        outcome.message,
        run.now(),
      );
  }
  const checks = (scratch.status.steps ?? []).map(fromJournal);
  if (outcome.kind === 'failed') {
    const failed = checks.find((c) => c.result === 'Failed');
    if (failed) failed.reason = outcome.reason;
    else checks.push({ name, result: 'Failed', message: outcome.message, reason: outcome.reason });
  }
  for (const e of expected)
    if (!checks.some((c) => c.name === e))
      checks.push({ name: e, result: 'Skipped', message: 'not checked: an earlier check failed' });
  return checks;
}

/**
 * The database checks of pre-validation that change nothing: the lock, the BackupSchedule and its Secret, the
 * chosen backup recorded and verified, and the operator's permission to create the Jobs a run needs. (A real
 * run also re-checks the file with a verify Job; validation does not start Jobs.)
 */
export async function checkDatabaseTarget(run: PlanRun): Promise<StepOutcome> {
  const target = run.spec.targets.database!;
  const record = (name: string, ok: boolean, message: string) =>
    (run.status.steps = finishStep(run.status.steps, name, ok ? 'Succeeded' : 'Failed', message, run.now()));
  const locked = concurrentPlanFailure(run, 'database');
  if (locked) return locked;
  const sc = await loadSchedule(run, target.backupScheduleRef.name);
  if ('kind' in sc) {
    record('CheckBackupSchedule', false, sc.message);
    return sc;
  }
  record(
    'CheckBackupSchedule',
    true,
    `BackupSchedule "${sc.schedule.metadata.name}" and Secret "${sc.secret.name}" found; storage ${describeStorage(sc.spec, sc.claimName)}`,
  );
  const chosen = selectBackup(sc.schedule.status, target.backup, sc.spec.storage, run.runnerPolicy.clusterId);
  if (chosen.fromPrefix) {
    record('CheckBackupSelected', true, chosen.fromPrefix.message);
  } else if (!chosen.backup) {
    record('CheckBackupSelected', false, chosen.message);
    return { kind: 'failed', reason: chosen.reason, message: chosen.message };
  }
  const b = chosen.backup;
  if (b)
    record(
      'CheckBackupSelected',
      true,
      `backup ${b.id} (finished ${b.finishedAt}, sha256 ${b.sha256?.slice(0, 12) ?? '?'}…, verified)`,
    );
  const c = { group: 'batch', resource: 'jobs', verb: 'create', namespace: run.namespace };
  if (!(await run.access.check(c)).allowed) {
    const msg = `the operator's ServiceAccount may not ${describeAccess(c)}`;
    record('CheckJobPermissions', false, msg);
    return { kind: 'failed', reason: 'Forbidden', message: msg };
  }
  record('CheckJobPermissions', true, `${describeAccess(c)}: allowed`);
  return {
    kind: 'done',
    message: b
      ? `backup ${b.id} would be restored`
      : `backup ${chosen.fromPrefix!.id} would be restored from ${chosen.fromPrefix!.location} once a verify Job has checked it`,
  };
}

/** `pre`: every pre-validator of the plan's scope, each to its end or first failure. */
export async function validatePre(run: PlanRun): Promise<ValidationCheck[]> {
  const on = scopeTargets(run.spec);
  const checks: ValidationCheck[] = [];
  if (run.spec.validation.http?.length)
    checks.push(...(await runValidator(run, 'CheckHTTPChecks', [], preValidateHttpChecks)));
  if (on.database)
    checks.push(
      ...(await runValidator(
        run,
        'CheckDatabase',
        ['CheckNoConcurrentRestore', 'CheckBackupSchedule', 'CheckBackupSelected', 'CheckJobPermissions'],
        checkDatabaseTarget,
      )),
    );
  if (on.deployments)
    checks.push(
      ...(await runValidator(
        run,
        'CheckDeployments',
        [
          'CheckTargetsExist',
          'CheckRevisionsExist',
          'CheckNotPaused',
          'CheckNoConcurrentPlan',
          'CheckPermissions',
        ],
        preValidateApp,
      )),
    );
  if (on.flags)
    checks.push(
      ...(await runValidator(
        run,
        'CheckFlags',
        ['CheckNoConcurrentFlagChange', 'CheckFlagsExist', 'CheckFlagPermissions'],
        preValidateFlags,
      )),
    );
  return checks;
}

/**
 * `post`: each target Deployment rolled out and available, and the HTTP checks, within spec.validation.timeout
 * counted from the durable start of the PostValidation journal entry. Returns the checks once all decided, or
 * when to look again (a Deployment event or a finished HTTP check wakes the plan sooner).
 */
export async function validatePost(
  run: PlanRun,
): Promise<
  { kind: 'done'; checks: ValidationCheck[] } | { kind: 'wait'; requeueAfterMs: number; message: string }
> {
  run.status.steps = startStep(run.status.steps, POST_STEP, run.now());
  const started = Date.parse(findStep(run.status.steps, POST_STEP)!.startedAt!);
  const timeout = run.spec.validation.timeout;
  const deadline = started + parseDuration(timeout);
  const remaining = deadline - run.now().getTime();
  const checks: ValidationCheck[] = [];
  const pending: string[] = [];
  let apiRetry = false;
  const on = scopeTargets(run.spec);
  for (const t of on.deployments ? (run.spec.targets.deployments ?? []) : []) {
    const name = `CheckRolledOut/${t.name}`;
    let dep = run.cache.deployment(t.name) as RawDeployment | undefined;
    if (!dep) {
      try {
        dep = await run.client.get<RawDeployment>({
          group: 'apps',
          version: 'v1',
          plural: 'deployments',
          namespace: run.namespace,
          name: t.name,
        });
      } catch (e) {
        if (isNotFound(e)) {
          const message = `Deployment "${t.name}" not found in namespace ${run.namespace}`;
          checks.push({ name, result: 'Failed', message, reason: 'TargetNotFound' });
        } else if (isTransient(e) && remaining > 0) {
          // Tried again by requeue until validation.timeout; the wait message names the error meanwhile.
          apiRetry = true;
          pending.push(`cannot read Deployment "${t.name}" (will retry): ${apiErrorMessage(e)}`);
        } else {
          const message = `cannot read Deployment "${t.name}": ${apiErrorMessage(e)}`;
          checks.push({ name, result: 'Failed', message, reason: 'APIError' });
        }
        continue;
      }
    }
    const p = rolloutProgress(dep);
    if (p.state === 'complete') checks.push({ name, result: 'Passed', message: p.message });
    else if (p.state === 'failed')
      checks.push({ name, result: 'Failed', message: p.message, reason: 'ProgressDeadlineExceeded' });
    else if (remaining > 0) pending.push(p.message);
    else
      checks.push({
        name,
        result: 'Failed',
        message: `rollout not complete after ${timeout}: ${p.message}`,
        reason: 'RolloutTimeout',
      });
  }
  (run.spec.validation.http ?? []).forEach((c, i) => {
    const name = `CheckHTTP/${i + 1}`;
    const s = run.checks.http(i, c, { at: deadline, timeout });
    if (s.state === 'crashed')
      checks.push({ name, result: 'Failed', message: `${c.url}: ${s.error}`, reason: 'HTTPCheckFailed' });
    else if (s.state === 'done')
      checks.push(
        s.result.passed
          ? { name, result: 'Passed', message: s.result.message }
          : {
              name,
              result: 'Failed',
              message: s.result.message,
              reason: s.result.reason ?? 'HTTPCheckFailed',
            },
      );
    else if (remaining > 0) pending.push(s.progress ?? `${c.url}: ${FIRST_ATTEMPT}`);
    else
      checks.push({
        name,
        result: 'Failed',
        // No progress yet: the task has not begun an attempt (it was started only now, after downtime).
        message: s.progress
          ? `${c.url}: did not pass within validation.timeout ${timeout}`
          : `${c.url}: ${NOT_ATTEMPTED}`,
        reason: 'HTTPCheckTimeout',
      });
  });
  if (pending.length) {
    const message = boundText(`waiting: ${pending.join('; ')}`, 1024);
    const most = apiRetry ? 5_000 : 30_000;
    return { kind: 'wait', message, requeueAfterMs: Math.max(200, Math.min(remaining + 500, most)) };
  }
  run.checks.settle();
  if (!checks.length)
    checks.push({
      name: 'CheckPostValidation',
      result: 'Skipped',
      message: 'nothing to check: no target Deployments in scope and no spec.validation.http',
    });
  return { kind: 'done', checks };
}
