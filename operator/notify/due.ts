import { findCondition } from '../kube/conditions.js';
import { boundIdentity } from '../kube/bounded.js';
import { ConditionType, parseDuration } from '../api/v1alpha1/common.js';
import type { BackupScheduleStatus } from '../api/v1alpha1/backupschedule.js';
import type { RollbackPlanEvent, RollbackPlanStatus } from '../api/v1alpha1/rollbackplan.js';

// Which notifications are due, as pure functions of an object's status: the reconciler that writes the status
// asks after every change, and each (target, event[, run]) gets one delivery record, so a notification is sent
// once however often this is asked, restarts included.

export interface NotifyTarget {
  name: string;
  type: 'webhook' | 'slack' | 'msteams';
  urlSecretRef: { name: string; key: string };
  events?: readonly string[];
  after?: string;
}

export interface NotificationRecord {
  id: string;
  target: string;
  event: string;
  state: 'Pending' | 'Delivered' | 'Failed';
  attempts?: number;
  firstAttemptAt?: string;
  lastAttemptAt?: string;
  nextAttemptAt?: string;
  deliveredAt?: string;
  message?: string;
}

/** One notification that should have a delivery record. `key` tells runs of a recurring event apart. */
export interface DueNotification {
  id: string;
  target: string;
  event: string;
  key?: string;
}

export interface DueResult {
  due: DueNotification[];
  /** Epoch ms when a notification not due yet (an escalation) becomes due. */
  nextAt?: number;
}

/** status.notifications[].id allows 192 characters: target (63) + event (17) + two slashes leave 110. */
const KEY_MAX = 110;

/** `<target>/<event>[/<key>]`: the record's id, and with the object's uid the idempotency id receivers see. */
export function notificationId(target: string, event: string, key?: string): string {
  return key === undefined ? `${target}/${event}` : `${target}/${event}/${boundIdentity(key, KEY_MAX)}`;
}

/** The key of a record id (what follows `<target>/<event>/`), if any. */
export function keyOfId(id: string): string | undefined {
  const parts = id.split('/');
  return parts.length > 2 ? parts.slice(2).join('/') : undefined;
}

// --- RollbackPlan ----------------------------------------------------------------------------------------

/** Phases after which a plan never changes again: no escalation for them. */
export const FINISHED_PLAN_PHASES = new Set(['Succeeded', 'Failed', 'Expired', 'Vetoed', 'DryRunComplete']);

interface PlanView {
  metadata: { creationTimestamp?: string };
  spec?: { dryRun?: boolean; validateOnly?: string; trigger?: { mode?: string } };
  status?: RollbackPlanStatus;
}

/** The plan events its status shows have happened, oldest first. */
export function planEventsHappened(status: RollbackPlanStatus): RollbackPlanEvent[] {
  const out: RollbackPlanEvent[] = [];
  const t = status.trigger;
  if (t && t.type !== 'Manual' && t.condition !== 'Manual') out.push('Triggered');
  if (status.phase === 'AwaitingApproval') out.push('AwaitingApproval');
  if (status.approval?.approvedBy) out.push('Approved');
  if (status.veto || status.phase === 'Vetoed') out.push('Vetoed');
  if (status.startedAt) out.push('Started');
  if (status.phase === 'Succeeded' || status.phase === 'Failed' || status.phase === 'Expired')
    out.push(status.phase);
  return out;
}

/**
 * The episode a plan's events belong to: none until the plan is re-armed, then the time of the last rearm. A
 * re-armed plan can expire, fire, be vetoed ... again: those are new notifications (a new id), while asking
 * again within one episode (every status write, a restart) finds the same ids.
 */
export function planEpisode(status: RollbackPlanStatus): string | undefined {
  const r = status.lastRearm;
  return r ? `rearm-${r.rearmedAt}` : undefined;
}

/**
 * A plan's due notifications. A target with `events` gets those; one without gets every event but Escalated;
 * an escalation target (`after`) gets Escalated only, once per episode, when the plan is still not finished
 * `after` past the moment it fired (or started; a manual plan: its creation). A dry run or a validateOnly plan notifies nothing.
 */
export function planNotificationsDue(plan: PlanView, targets: readonly NotifyTarget[], now: Date): DueResult {
  if (plan.spec?.dryRun || plan.spec?.validateOnly) return { due: [] };
  const status = plan.status ?? {};
  const happened = planEventsHappened(status);
  const key = planEpisode(status);
  const of = (target: string, event: string): DueNotification => ({
    id: notificationId(target, event, key),
    target,
    event,
    ...(key === undefined ? {} : { key }),
  });
  const due: DueNotification[] = [];
  let nextAt: number | undefined;
  for (const t of targets) {
    if (t.after !== undefined) {
      const at = escalationAt(plan, status, t.after);
      if (at === undefined) continue;
      if (now.getTime() >= at) due.push(of(t.name, 'Escalated'));
      else nextAt = Math.min(nextAt ?? Infinity, at);
      continue;
    }
    for (const e of happened) if (!t.events || t.events.includes(e)) due.push(of(t.name, e));
  }
  return nextAt === undefined ? { due } : { due, nextAt };
}

/** When an escalation target is due, or undefined when the plan is finished or still only watching. */
function escalationAt(plan: PlanView, status: RollbackPlanStatus, after: string): number | undefined {
  if (FINISHED_PLAN_PHASES.has(status.phase ?? '')) return undefined;
  // An armed plan that has not fired is watching, not an incident: nothing to escalate yet.
  const mode = plan.spec?.trigger?.mode ?? 'manual';
  if (status.phase === 'Armed' || (mode !== 'manual' && !status.trigger && !status.startedAt))
    return undefined;
  const since = status.trigger?.firedAt ?? status.startedAt ?? plan.metadata.creationTimestamp;
  if (!since || Number.isNaN(Date.parse(since))) return undefined;
  let afterMs: number;
  try {
    afterMs = parseDuration(after);
  } catch {
    return undefined; // the schema refuses it; an object from an older CRD just gets no escalation
  }
  return Date.parse(since) + afterMs;
}

// --- BackupSchedule --------------------------------------------------------------------------------------

/**
 * The backup run a LastBackupSucceeded=False condition is about: its Job or backup id, from the messages
 * record.ts and schedule-jobs.ts write (`backup Job <name> failed: ...`, `backup <id>: ... NOT verified`,
 * `backup Job <name>: <pod problem>`); otherwise the time the condition turned False.
 */
export function failedBackupRun(cond: { message: string; lastTransitionTime: string }): string {
  const m = /^backup (?:Job )?([A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)(?: failed)?:/.exec(cond.message);
  if (m) return m[1]!;
  // A backup-now request the API server refused (schedule-jobs.ts): the Job it would have been, like a run.
  // Without this the key was the condition's transition time, which does not move when the condition was
  // already False: the refusal went unreported (or a later failure took its key).
  const rejected =
    /^backup-now=.*?: the API server rejected Job ([A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?) \(/s.exec(
      cond.message,
    );
  return rejected ? rejected[1]! : cond.lastTransitionTime;
}

/**
 * The RPO breach going on, if any: its key and when it began. A breach counts once a backup existed (a new
 * schedule with no backup yet is not an incident). It began when the newest good backup became older than the
 * objective, and is keyed by that backup: RPOMet's lastTransitionTime does not say when (a False NoBackupYet
 * turning False ObjectiveBreached keeps its time, which would make an `after` escalation due at once).
 */
export function rpoBreach(
  status: BackupScheduleStatus,
  rpo: string,
): { key: string; since: number } | undefined {
  const c = findCondition(status.conditions, ConditionType.RPOMet);
  if (!c || c.status !== 'False' || c.reason === 'NoBackupYet') return undefined;
  const good = status.lastSuccessfulBackup;
  let objectiveMs: number | undefined;
  try {
    objectiveMs = parseDuration(rpo);
  } catch {
    objectiveMs = undefined;
  }
  const finished = good ? Date.parse(good.finishedAt) : NaN;
  if (good && objectiveMs !== undefined && !Number.isNaN(finished))
    return { key: good.id, since: finished + objectiveMs };
  const at = Date.parse(c.lastTransitionTime);
  return Number.isNaN(at) ? undefined : { key: c.lastTransitionTime, since: at };
}

/** The backup-schedule events its status shows, each with the run it is about. */
export function scheduleEventsHappened(
  status: BackupScheduleStatus,
  rpo: string,
): { event: string; key: string }[] {
  const out: { event: string; key: string }[] = [];
  const last = findCondition(status.conditions, ConditionType.LastBackupSucceeded);
  if (last?.status === 'True') {
    // The newest backup the schedule made (a plan's safety backup is the plan's to report).
    const newest = (status.backups ?? [])
      .filter((b) => b.purpose !== 'safety' && b.verified)
      .sort((a, b) => b.finishedAt.localeCompare(a.finishedAt))[0];
    if (newest) out.push({ event: 'BackupSucceeded', key: newest.id });
  }
  if (last?.status === 'False') out.push({ event: 'BackupFailed', key: failedBackupRun(last) });
  const breach = rpoBreach(status, rpo);
  if (breach) out.push({ event: 'RPOBreached', key: breach.key });
  if (status.lastTestRestore?.result === 'Failed')
    out.push({ event: 'TestRestoreFailed', key: status.lastTestRestore.finishedAt });
  return out;
}

/**
 * A BackupSchedule's due notifications: each backup run, RPO breach and failed test restore once. An
 * escalation target (`after`) gets RPOBreached only, once the breach has lasted that long.
 */
export function scheduleNotificationsDue(
  status: BackupScheduleStatus,
  targets: readonly NotifyTarget[],
  now: Date,
  /** spec.objectives.rpo with its default. */
  rpo: string,
): DueResult {
  const happened = scheduleEventsHappened(status, rpo);
  const due: DueNotification[] = [];
  let nextAt: number | undefined;
  for (const t of targets) {
    if (t.after !== undefined) {
      const breach = rpoBreach(status, rpo);
      if (!breach) continue;
      let at: number;
      try {
        at = breach.since + parseDuration(t.after);
      } catch {
        continue;
      }
      const key = breach.key;
      if (now.getTime() >= at)
        due.push({
          id: notificationId(t.name, 'RPOBreached', key),
          target: t.name,
          event: 'RPOBreached',
          key,
        });
      else nextAt = Math.min(nextAt ?? Infinity, at);
      continue;
    }
    for (const { event, key } of happened)
      if (!t.events || t.events.includes(event))
        due.push({ id: notificationId(t.name, event, key), target: t.name, event, key });
  }
  return nextAt === undefined ? { due } : { due, nextAt };
}
