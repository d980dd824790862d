// The deployment readiness checklist (`nxt-rollback readiness`): each check is a pure function of what was
// read, so the table a CI gate relies on is unit-tested; readiness.ts does the reading and the dry runs.
import type { BackupScheduleStatus } from '../api/v1alpha1/backupschedule.js';
import { parseDuration } from '../api/v1alpha1/common.js';
import type { KubeObject } from '../kube/rest.js';
import { newestGoodBackup, rpoObjectiveOf, type OperatorHealth } from './health-report.js';
import { conditionOf } from './conditions.js';
import { formatDuration } from './output.js';

/**
 * Pass and Fail decide; Unknown (the CLI could not ask) fails the gate too unless --allow-unknown (a gate that
 * passes on what it could not check says "ready" without knowing); Skip (not applicable, or the user said
 * so) never fails it.
 */
export type CheckResult = 'Pass' | 'Fail' | 'Unknown' | 'Skip';

export interface Check {
  name: string;
  result: CheckResult;
  detail: string;
}

export interface Readiness {
  ready: boolean;
  /** Names of the checks that failed. */
  failed: string[];
  /** Names of the checks the CLI could not make (they fail the gate unless allowUnknown). */
  unknown: string[];
  allowUnknown: boolean;
  checks: Check[];
}

export function readinessOf(checks: Check[], opts: { allowUnknown?: boolean } = {}): Readiness {
  const allowUnknown = opts.allowUnknown === true;
  const failed = checks.filter((c) => c.result === 'Fail').map((c) => c.name);
  const unknown = checks.filter((c) => c.result === 'Unknown').map((c) => c.name);
  return {
    ready: failed.length === 0 && (allowUnknown || unknown.length === 0),
    failed,
    unknown,
    allowUnknown,
    checks,
  };
}

/** The verdict line (the table's last line): what failed and what could not be checked, by name. */
export function readinessLine(r: Readiness): string {
  const unknown = r.unknown.length ? `could not check ${r.unknown.join(', ')}` : '';
  if (r.ready) return unknown ? `ready (--allow-unknown: ${unknown})` : 'ready';
  const parts = [
    ...(r.failed.length ? [`failed ${r.failed.join(', ')}`] : []),
    ...(unknown ? [`${unknown} (--allow-unknown accepts that)`] : []),
  ];
  return `not ready: ${parts.join('; ')}`;
}

/**
 * No BackupSchedule in the namespace: a failure when a plan that may act restores a database (it has nothing to
 * restore from), otherwise not applicable.
 */
export function noScheduleCheck(namespace: string, databasePlans: string[]): Check {
  const none = `no BackupSchedule in namespace ${namespace}`;
  return databasePlans.length
    ? {
        name: 'backups',
        result: 'Fail',
        detail: `${none}, but RollbackPlan ${databasePlans.join(', ')} has a database target`,
      }
    : {
        name: 'backups',
        result: 'Skip',
        detail: `${none}, and no RollbackPlan that may act has a database target (--no-database says so explicitly)`,
      };
}

interface ScheduleLike extends KubeObject {
  spec?: { objectives?: { rpo?: string } };
  status?: BackupScheduleStatus;
}

const ago = (seconds: number) => `${formatDuration(seconds)} ago`;

/** The newest verified backup is younger than `maxAgeMs` (default: the schedule's RPO objective). */
export function backupFreshCheck(s: ScheduleLike, maxAgeMs: number | undefined, now: number): Check {
  const name = `fresh backup (${s.metadata.name})`;
  const limit =
    maxAgeMs !== undefined
      ? `--max-backup-age ${formatDuration(maxAgeMs / 1000)}`
      : `RPO ${rpoObjectiveOf(s)}`;
  const maxSeconds = (maxAgeMs ?? parseDuration(rpoObjectiveOf(s))) / 1000;
  const newest = newestGoodBackup(s.status);
  if (!newest) return { name, result: 'Fail', detail: `no verified backup yet (limit ${limit})` };
  const age = Math.max(0, Math.round((now - Date.parse(newest.finishedAt)) / 1000));
  return {
    name,
    result: age <= maxSeconds ? 'Pass' : 'Fail',
    detail: `newest verified backup ${newest.id} finished ${ago(age)} (limit ${limit})`,
  };
}

/** The last test restore succeeded, and not longer ago than `maxAgeMs`. */
export function testRestoreCheck(s: ScheduleLike, maxAgeMs: number, now: number): Check {
  const name = `test restore (${s.metadata.name})`;
  const t = s.status?.lastTestRestore;
  if (!t)
    return {
      name,
      result: 'Fail',
      detail: 'never test-restored (set spec.verify.testRestoreSchedule or run a drill)',
    };
  const age = Math.max(0, Math.round((now - Date.parse(t.finishedAt)) / 1000));
  const what = `test restore of ${t.backupId} ${t.result} ${ago(age)}`;
  if (t.result !== 'Succeeded')
    return { name, result: 'Fail', detail: `${what}${t.message ? `: ${t.message}` : ''}` };
  if (age * 1000 > maxAgeMs)
    return { name, result: 'Fail', detail: `${what}, older than ${formatDuration(maxAgeMs / 1000)}` };
  return {
    name,
    result: 'Pass',
    detail: `${what}${t.durationSeconds !== undefined ? ` in ${formatDuration(t.durationSeconds)}` : ''}`,
  };
}

interface DryRunPlanLike extends KubeObject {
  status?: {
    phase?: string;
    dryRunReport?: {
      summary?: string;
      wouldSucceed?: boolean;
      deployments?: {
        name: string;
        action?: string;
        message?: string;
        fromRevision?: number | null;
        toRevision?: number | null;
      }[];
    };
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
}

/** A dry-run plan for one Deployment finished and says a real run would succeed (a previous revision exists). */
export function dryRunCheck(deployment: string, plan: DryRunPlanLike): Check {
  const name = `rollback dry run (${deployment})`;
  const st = plan.status ?? {};
  const report = st.dryRunReport;
  if (st.phase !== 'DryRunComplete' || !report) {
    const ready = conditionOf(plan, 'Ready');
    return {
      name,
      result: 'Fail',
      detail: `plan ${plan.metadata.name} ended ${st.phase ?? 'without a phase'}${ready?.message ? `: ${ready.message}` : ''}`,
    };
  }
  const d = report.deployments?.find((x) => x.name === deployment);
  const detail = d?.message ?? report.summary ?? '';
  return { name, result: report.wouldSucceed === true ? 'Pass' : 'Fail', detail };
}

export function leaderCheck(op: OperatorHealth): Check {
  return {
    name: 'operator leader',
    result: op.state === 'ok' ? 'Pass' : op.state === 'unknown' ? 'Unknown' : 'Fail',
    detail: op.message,
  };
}

/** An access review's answer (SelfSubjectAccessReview or SubjectAccessReview). */
export function accessCheck(
  name: string,
  asked: string,
  review: { allowed?: boolean; denied?: boolean; reason?: string } | { unreadable: string },
): Check {
  if ('unreadable' in review) return { name, result: 'Unknown', detail: `${asked}: ${review.unreadable}` };
  return {
    name,
    result: review.allowed ? 'Pass' : 'Fail',
    // The authorizer's reason matters when denied; when allowed it only names the binding.
    detail: review.allowed
      ? `${asked}: allowed`
      : `${asked}: denied${review.reason ? ` (${review.reason})` : ''}`,
  };
}
