// The invariant, per object: "every accepted object reaches a terminal phase or a condition that names its
// problem within 60 s" (issue 9). Pure functions of what the API server shows; the batch runner calls them.
import { BACKUP_NOW } from './invariant-arbitraries.js';
import { HANDLED_VALUE_MAX } from '../../operator/backup/schedule-jobs.js';
import { boundIdentity } from '../../operator/kube/bounded.js';

export const TERMINAL_PHASES = new Set(['Succeeded', 'Failed', 'DryRunComplete', 'Expired', 'Vetoed']);
/** Reasons that say "busy" without saying with what: not a condition that names a problem. */
export const GENERIC_REASONS = new Set([
  'Running',
  'Reconciling',
  'Reconciled',
  'Progressing',
  'InProgress',
  'Pending',
  'Started',
  'Unknown',
]);
const RECORDED = 'rollback.nxtnewday.io/recorded';

export interface Verdict {
  ok: boolean;
  /** What satisfied the invariant, or what the object showed instead. */
  detail: string;
  /** Groups violations that look alike (for the report and for choosing what to shrink). */
  signature?: string;
}

type Cond = { type: string; status: string; reason?: string; message?: string };
const cond = (o: any, type: string): Cond | undefined =>
  (o?.status?.conditions ?? []).find((c: Cond) => c.type === type);
const short = (s: string | undefined, n = 160) => (s && s.length > n ? `${s.slice(0, n)}…` : (s ?? ''));

/** A condition that names a problem: Stalled=True, or Ready=False with a specific reason, both with a message. */
function namedProblem(o: any): string | undefined {
  const stalled = cond(o, 'Stalled');
  if (stalled?.status === 'True' && stalled.reason && stalled.message)
    return `Stalled=True/${stalled.reason}: ${short(stalled.message)}`;
  const ready = cond(o, 'Ready');
  if (ready?.status === 'False' && ready.reason && !GENERIC_REASONS.has(ready.reason) && ready.message)
    return `Ready=False/${ready.reason}: ${short(ready.message)}`;
  return undefined;
}

/** phase, Ready and the running step, for a violation report. */
export function describeStatus(o: any): string {
  if (!o?.status || Object.keys(o.status).length === 0) return 'no status at all';
  const parts: string[] = [];
  if (o.status.phase) parts.push(`phase=${o.status.phase}`);
  for (const t of ['Ready', 'Stalled', 'Reconciling']) {
    const c = cond(o, t);
    if (c) parts.push(`${t}=${c.status}/${c.reason ?? ''}${c.message ? ` "${short(c.message, 120)}"` : ''}`);
  }
  const running = (o.status.steps ?? []).filter((s: any) => s.result === 'Running');
  for (const s of running)
    parts.push(`step ${s.name} Running${s.message ? ` "${short(s.message, 120)}"` : ''}`);
  return parts.join('; ') || 'status without phase or conditions';
}

const shape = (o: any) => {
  if (!o?.status || Object.keys(o.status).length === 0) return 'no status';
  const ready = cond(o, 'Ready');
  const running = (o.status.steps ?? []).find((s: any) => s.result === 'Running');
  return [
    o.status.phase && `phase=${o.status.phase}`,
    ready ? `Ready=${ready.status}/${ready.reason}` : 'no Ready',
    running && `step ${running.name}`,
  ]
    .filter(Boolean)
    .join(', ');
};

/** The state of an object's Jobs and their pods: `restore Job p3-restore active, pod Running`. */
function jobStates(jobs: any[], pods: any[]): string {
  return jobs
    .map((j) => {
      const ps = pods.filter((p) => p.metadata?.labels?.['job-name'] === j.metadata?.name);
      const s = j.status ?? {};
      const state = s.succeeded ? 'succeeded' : s.failed ? 'failed' : s.active ? 'active' : 'not started';
      const podText = ps.map((p) => {
        const sched = (p.status?.conditions ?? []).find((c: any) => c.type === 'PodScheduled');
        return `pod ${p.status?.phase ?? '?'}${sched?.status === 'False' ? ` (${sched.reason}: ${short(sched.message, 100)})` : ''}`;
      });
      return `Job ${j.metadata?.name} ${state}${podText.length ? `, ${podText.join(', ')}` : ', no pod'}`;
    })
    .join('; ');
}

export function planVerdict(plan: any, jobs: any[] = [], pods: any[] = []): Verdict {
  const phase = plan?.status?.phase;
  if (TERMINAL_PHASES.has(phase)) {
    const ready = cond(plan, 'Ready');
    return { ok: true, detail: `phase ${phase}${ready?.reason ? ` (${ready.reason})` : ''}` };
  }
  // An automatic plan that is armed is where it should be: kstatus Current, watching its conditions.
  const ready = cond(plan, 'Ready');
  if (phase === 'Armed' && ready?.status === 'True' && ready.reason === 'Armed')
    return { ok: true, detail: `phase Armed: ${short(ready.message)}` };
  const problem = namedProblem(plan);
  if (problem) return { ok: true, detail: problem };
  const own = jobs.filter((j) => j.metadata?.labels?.['rollback.nxtnewday.io/plan'] === plan?.metadata?.name);
  const jobText = own.length ? `; ${jobStates(own, pods)}` : '';
  return { ok: false, detail: describeStatus(plan) + jobText, signature: `RollbackPlan: ${shape(plan)}` };
}

/**
 * A schedule is fine when Ready=True or a condition names its problem. A backup-now request on a Ready
 * schedule must also be acknowledged and its Job's outcome recorded: an emergency backup that silently
 * never runs is the "nothing until the 1 h Job deadline" case of the issue.
 */
export function scheduleVerdict(schedule: any, jobs: any[], pods: any[]): Verdict {
  const problem = namedProblem(schedule);
  if (problem) return { ok: true, detail: problem };
  const ready = cond(schedule, 'Ready');
  if (ready?.status !== 'True')
    return { ok: false, detail: describeStatus(schedule), signature: `BackupSchedule: ${shape(schedule)}` };
  const wanted = schedule.metadata?.annotations?.[BACKUP_NOW];
  if (!wanted) return { ok: true, detail: `Ready=True/${ready.reason}` };
  const handled = schedule.status?.lastBackupNow;
  // Status keeps a long value bounded (its start plus a hash), as the operator compares it.
  if (handled?.annotationValue !== boundIdentity(wanted, HANDLED_VALUE_MAX))
    return {
      ok: false,
      detail: `Ready=True/${ready.reason} but backup-now=${short(wanted, 40)} not acknowledged (status.lastBackupNow: ${JSON.stringify(handled ?? null)})`,
      signature: 'BackupSchedule: Ready=True, backup-now not acknowledged',
    };
  const job = jobs.find((j) => j.metadata?.name === handled.jobName);
  if (job?.metadata?.annotations?.[RECORDED])
    return { ok: true, detail: `Ready=True; emergency backup ${handled.jobName} recorded` };
  // A backup Job that cannot run is reported on LastBackupSucceeded (Ready stays True: the schedule itself
  // is fine); a condition that names the Job and its problem satisfies the invariant.
  const last = cond(schedule, 'LastBackupSucceeded');
  if (last?.status === 'False' && last.reason && last.message?.includes(handled.jobName))
    return { ok: true, detail: `LastBackupSucceeded=False/${last.reason}: ${short(last.message)}` };
  const jobPods = pods.filter((p) => p.metadata?.labels?.['job-name'] === handled.jobName);
  return {
    ok: false,
    detail: `Ready=True/${ready.reason} but the emergency backup is not recorded: ${job ? jobStates([job], pods) : `Job ${handled.jobName} does not exist`}`,
    signature: `BackupSchedule: Ready=True, emergency backup ${job ? (jobPods.length ? 'pod ' + (jobPods[0].status?.phase ?? '?') : 'without pod') : 'Job missing'}`,
  };
}
