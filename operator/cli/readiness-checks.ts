// The deployment readiness checklist (`nxt-rollback readiness`): each check is a pure function of what was
// read, so the table a CI gate relies on is unit-tested; readiness.ts does the reading and the dry runs.
import type { BackupScheduleStatus } from '../api/v1alpha1/backupschedule.js';
import { parseDuration } from '../api/v1alpha1/common.js';
import type { KubeObject } from '../kube/rest.js';
import { newestGoodBackup, rpoObjectiveOf, type OperatorHealth } from './health-report.js';
import { conditionOf } from './conditions.js';
import { formatDuration } from './output.js';

/** Pass and Fail decide; Unknown (the CLI could not ask) is shown but does not fail the gate. */
export type CheckResult = 'Pass' | 'Fail' | 'Unknown';

export interface Check {
  name: string;
  result: CheckResult;
  detail: string;
}

export interface Readiness {
  ready: boolean;
  checks: Check[];
}

export const readinessOf = (checks: Check[]): Readiness => ({
  ready: checks.every((c) => c.result !== 'Fail'),
  checks,
});

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
