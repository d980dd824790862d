import { Annotation, ConditionType, parseDuration } from '../api/v1alpha1/common.js';
import type { BackupScheduleStatus } from '../api/v1alpha1/backupschedule.js';
import {
  ROLLBACK_PLAN_DEFAULTS,
  SEVERITY_RTO,
  type RollbackPlanStatus,
  type Severity,
} from '../api/v1alpha1/rollbackplan.js';
import { boundText } from '../kube/bounded.js';
import { findCondition } from '../kube/conditions.js';
import { rpoBreach } from './due.js';
import { touchedSummary } from '../rollback/controller.js';

// The seed's communication templates (rollback initiated, completed, failed, approval needed, escalation;
// backup failed, RPO breached) as messages built from an object's status. Everything here ends up in a chat
// channel or a third party's webhook: only what status already shows, bounded, never a URL or a credential.

export interface Fact {
  title: string;
  value: string;
}

export interface NotificationMessage {
  title: string;
  text: string;
  facts: Fact[];
}

const TITLE_MAX = 150; // Slack's header limit, the tightest of the three
const TEXT_MAX = 2000;
const FACT_MAX = 500;
const FACTS_MAX = 10; // Slack's section fields limit

function message(title: string, text: string, facts: (Fact | undefined | false)[]): NotificationMessage {
  return {
    title: boundText(title, TITLE_MAX),
    text: boundText(text, TEXT_MAX),
    facts: facts
      .filter((f): f is Fact => !!f && f.value !== '')
      .slice(0, FACTS_MAX)
      .map((f) => ({ title: f.title, value: boundText(f.value, FACT_MAX) })),
  };
}

const fact = (title: string, value: string | number | undefined): Fact | undefined =>
  value === undefined ? undefined : { title, value: String(value) };

const human = (seconds: number) => {
  if (seconds < 120) return `${Math.round(seconds * 100) / 100}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  return `${Math.round((seconds / 3600) * 10) / 10}h`;
};

// --- RollbackPlan ----------------------------------------------------------------------------------------

interface PlanObject {
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  spec?: {
    scope?: string;
    severity?: Severity;
    reason?: string;
    objectives?: { rto?: string };
    trigger?: { mode?: string };
  };
}

/** The RTO objective in effect: spec.objectives.rto, else the severity's response time, else the default. */
export function rtoObjective(spec: PlanObject['spec']): string {
  return (
    spec?.objectives?.rto ??
    (spec?.severity ? SEVERITY_RTO[spec.severity] : undefined) ??
    ROLLBACK_PLAN_DEFAULTS.rto
  );
}

/** Seconds to recover: recoverySeconds when the trigger work set it, else the run's duration. */
function recovery(status: RollbackPlanStatus): number | undefined {
  return status.recoverySeconds ?? status.durationSeconds;
}

function triggerFact(status: RollbackPlanStatus): Fact | undefined {
  const t = status.trigger;
  if (!t) return undefined;
  if (t.type === 'Manual' || t.condition === 'Manual') return { title: 'Trigger', value: 'manual' };
  return {
    title: 'Trigger',
    value: `${t.condition}${t.type ? ` (${t.type})` : ''}${t.observed ? `: ${t.observed}` : ''}`,
  };
}

/** The message for one plan event; `after` is the escalation target's delay. */
export function planMessage(
  plan: PlanObject,
  status: RollbackPlanStatus,
  event: string,
  opts: { after?: string } = {},
): NotificationMessage {
  const ns = plan.metadata.namespace ?? '';
  const name = plan.metadata.name;
  const ref = `${ns}/${name}`;
  const spec = plan.spec ?? {};
  const scope = spec.scope ?? 'unknown';
  const severity = spec.severity;
  const sev = severity ? `${severity} ` : '';
  const common = [
    fact('Namespace', ns),
    fact('Plan', name),
    fact('Severity', severity ?? 'not set'),
    fact('Scope', scope),
  ];
  const reason = spec.reason ? ` Reason: ${spec.reason}.` : '';
  const trigger = triggerFact(status);
  const objective = rtoObjective(spec);
  const ready = findCondition(status.conditions, ConditionType.Ready);
  const howToDecide =
    `Approve: kubectl -n ${ns} annotate rbp ${name} ${Annotation.ApprovedBy}=<your user name>; ` +
    `veto: kubectl -n ${ns} annotate rbp ${name} ${Annotation.VetoedBy}=<your user name>.`;
  switch (event) {
    case 'Triggered':
      return message(
        `Rollback triggered: ${ref}`,
        `Trigger condition ${status.trigger?.condition ?? '?'} fired${status.trigger?.observed ? ` (${status.trigger.observed})` : ''}; the ${sev}plan now follows the decision matrix.${reason}`,
        [...common, trigger, fact('Fired at', status.trigger?.firedAt)],
      );
    case 'AwaitingApproval': {
      const a = findCondition(status.conditions, ConditionType.AwaitingApproval);
      return message(
        `Approval needed: rollback ${ref}`,
        `A ${sev}rollback (scope ${scope}) waits for approval${a?.message ? `: ${a.message}` : ''}. ` +
          `${howToDecide}${reason}`,
        [...common, trigger, fact('RTO objective', objective)],
      );
    }
    case 'Approved':
      return message(
        `Rollback approved: ${ref}`,
        `Approved by ${status.approval?.approvedBy ?? '?'}${status.approval?.reason ? ` (${status.approval.reason})` : ''}; the rollback runs now.`,
        [
          ...common,
          fact('Approver', status.approval?.approvedBy),
          fact('Approved at', status.approval?.approvedAt),
          trigger,
        ],
      );
    case 'Vetoed':
      return message(
        `Rollback vetoed: ${ref}`,
        `Vetoed by ${status.veto?.vetoedBy ?? '?'}${status.veto?.reason ? ` (${status.veto.reason})` : ''}; nothing was rolled back.`,
        [
          ...common,
          fact('Vetoed by', status.veto?.vetoedBy),
          fact('Vetoed at', status.veto?.vetoedAt),
          trigger,
        ],
      );
    case 'Started':
      return message(
        `Rollback started: ${ref}`,
        `Rolling back (scope ${scope}); RTO objective ${objective}.${reason}`,
        [
          ...common,
          trigger,
          fact('Approver', status.approval?.approvedBy),
          fact('Started at', status.startedAt),
          fact('RTO objective', objective),
        ],
      );
    case 'Succeeded': {
      const s = recovery(status);
      const met = s === undefined ? undefined : s <= parseDuration(objective) / 1000;
      const changed = touchedSummary(status).replace(/^; /, '');
      return message(
        `Rollback completed: ${ref}`,
        `Recovered${s === undefined ? '' : ` in ${human(s)}`}: RTO objective ${objective} ${met === false ? 'MISSED' : 'met'}. ${capitalise(changed)}.`,
        [
          ...common,
          trigger,
          fact('Recovery time', s === undefined ? undefined : human(s)),
          fact('RTO objective', `${objective} (${met === false ? 'missed' : 'met'})`),
          fact('Changed', changed.replace(/^changed: /, '')),
        ],
      );
    }
    case 'Failed': {
      const failed = findCondition(status.conditions, ConditionType.Succeeded);
      const changed = touchedSummary(status).replace(/^; /, '');
      return message(
        `Rollback FAILED: ${ref}`,
        `${failed?.message ?? ready?.message ?? 'the plan failed'}. ${capitalise(changed)}: see the plan's status and events.`,
        [
          ...common,
          trigger,
          fact('Reason', failed?.reason ?? ready?.reason),
          fact('Duration', status.durationSeconds === undefined ? undefined : human(status.durationSeconds)),
          fact('Changed', changed.replace(/^changed: /, '')),
        ],
      );
    }
    case 'Expired':
      return message(
        `Rollback plan expired: ${ref}`,
        `The watch window passed without a trigger firing; nothing was rolled back.${ready?.message ? ` ${ready.message}` : ''}`,
        [...common, fact('Armed since', status.armed?.since), fact('Armed until', status.armed?.until)],
      );
    case 'Escalated':
      return message(
        `ESCALATION: rollback ${ref} not finished after ${opts.after ?? '?'}`,
        `The ${sev}rollback is still ${status.phase ?? 'pending'}${ready?.message ? `: ${ready.message}` : ''}. It needs attention` +
          `${status.phase === 'AwaitingApproval' ? `: nobody approved or vetoed it. ${howToDecide}` : '.'}${reason}`,
        [
          ...common,
          fact('Phase', status.phase ?? 'Pending'),
          trigger,
          fact('Started at', status.startedAt),
          fact('RTO objective', objective),
        ],
      );
    default:
      return message(`Rollback ${event}: ${ref}`, `Event ${event}.`, common);
  }
}

const capitalise = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

// --- BackupSchedule --------------------------------------------------------------------------------------

interface ScheduleObject {
  metadata: { name: string; namespace?: string };
  spec?: { objectives?: { rpo?: string } };
}

const breachSince = (status: BackupScheduleStatus, objective: string) => {
  const since = rpoBreach(status, objective)?.since;
  return since === undefined ? undefined : new Date(since).toISOString().replace(/\.\d+Z$/, 'Z');
};

/** The message for one BackupSchedule event about run `key` (a backup id, a Job, or a time). */
export function scheduleMessage(
  schedule: ScheduleObject,
  status: BackupScheduleStatus,
  event: string,
  key: string | undefined,
): NotificationMessage {
  const ns = schedule.metadata.namespace ?? '';
  const ref = `${ns}/${schedule.metadata.name}`;
  const objective = schedule.spec?.objectives?.rpo ?? '1h';
  const common = [fact('Namespace', ns), fact('BackupSchedule', schedule.metadata.name)];
  const last = status.lastSuccessfulBackup;
  const rpo = [
    fact(
      'RPO (newest good backup age)',
      status.rpoSeconds === undefined ? undefined : human(status.rpoSeconds),
    ),
    fact('RPO objective', objective),
    fact('Newest good backup', last ? `${last.id} (${last.finishedAt})` : 'none'),
  ];
  switch (event) {
    case 'BackupSucceeded': {
      const b = (status.backups ?? []).find((x) => x.id === key);
      return message(
        `Backup succeeded: ${ref}`,
        `Backup ${key ?? '?'} finished${b?.bytes !== undefined ? ` (${b.bytes} bytes)` : ''} and was verified.`,
        [
          ...common,
          fact('Backup', key),
          fact('Finished at', b?.finishedAt),
          fact('Purpose', b?.purpose),
          ...rpo,
        ],
      );
    }
    case 'BackupFailed': {
      const c = findCondition(status.conditions, ConditionType.LastBackupSucceeded);
      return message(
        `Backup FAILED: ${ref}`,
        `${c?.message ?? `backup ${key ?? ''} failed`}. The last good backup is still ${last ? last.id : 'none'}.`,
        [...common, fact('Run', key), fact('Reason', c?.reason), ...rpo],
      );
    }
    case 'RPOBreached': {
      const c = findCondition(status.conditions, ConditionType.RPOMet);
      return message(
        `RPO breached: ${ref}`,
        `${c?.message ?? 'the newest good backup is older than the RPO objective'}. Take a backup now: kubectl -n ${ns} annotate bks ${schedule.metadata.name} ${Annotation.BackupNow}=$(date +%s).`,
        [...common, fact('Breached since', breachSince(status, objective) ?? c?.lastTransitionTime), ...rpo],
      );
    }
    case 'TestRestoreFailed': {
      const t = status.lastTestRestore;
      return message(
        `Test restore FAILED: ${ref}`,
        `${t?.message ?? 'the test restore failed'}. Backup ${t?.backupId ?? '?'} may not be restorable.`,
        [...common, fact('Backup', t?.backupId), fact('Finished at', t?.finishedAt), ...rpo],
      );
    }
    default:
      return message(`BackupSchedule ${event}: ${ref}`, `Event ${event}.`, common);
  }
}
