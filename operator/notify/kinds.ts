import { notifyTargets } from '../api/v1alpha1/common.js';
import { BACKUP_SCHEDULE_DEFAULTS, BackupScheduleEvents } from '../api/v1alpha1/backupschedule.js';
import { RollbackPlanEvents } from '../api/v1alpha1/rollbackplan.js';
import type { KubeObject } from '../kube/rest.js';
import { keyOfId, planNotificationsDue, scheduleNotificationsDue, type NotifyTarget } from './due.js';
import { planMessage, scheduleMessage } from './messages.js';
import type { NotifyKind } from './notifier.js';

// The two kinds that notify, as the Notifier sees them.

const planTargets = notifyTargets(RollbackPlanEvents);
const scheduleTargets = notifyTargets(BackupScheduleEvents);

const parsed = (
  schema: typeof planTargets | typeof scheduleTargets,
  value: unknown,
): NotifyTarget[] | undefined => {
  if (value === undefined) return [];
  const r = schema.safeParse(value);
  return r.success ? r.data : undefined;
};

export const PLAN_NOTIFICATIONS: NotifyKind = {
  kind: 'RollbackPlan',
  targets: (obj) => parsed(planTargets, obj.spec?.notify),
  due: (obj, status, targets, now) =>
    planNotificationsDue({ metadata: obj.metadata, spec: obj.spec, status: status as never }, targets, now),
  message: (obj, status, record, target) =>
    planMessage(obj as never, status as never, record.event, target.after ? { after: target.after } : {}),
  envelope: (obj: KubeObject, status) => ({
    ...(obj.spec?.severity ? { severity: String(obj.spec.severity) } : {}),
    ...(typeof status.phase === 'string' ? { phase: status.phase } : {}),
  }),
};

export const SCHEDULE_NOTIFICATIONS: NotifyKind = {
  kind: 'BackupSchedule',
  targets: (obj) => parsed(scheduleTargets, obj.spec?.notify),
  due: (obj, status, targets, now) =>
    scheduleNotificationsDue(
      status as never,
      targets,
      now,
      String(obj.spec?.objectives?.rpo ?? BACKUP_SCHEDULE_DEFAULTS.rpo),
    ),
  message: (obj, status, record) =>
    scheduleMessage(obj as never, status as never, record.event, keyOfId(record.id)),
};
