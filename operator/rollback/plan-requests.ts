import { Annotation, ConditionType } from '../api/v1alpha1/common.js';
import type { RollbackPlanStatus } from '../api/v1alpha1/rollbackplan.js';
import { boundIdentity, boundText } from '../kube/bounded.js';
import type { KubeObject } from '../kube/rest.js';
import { armedWindow } from '../triggers/watch-window.js';

// Requests people make of a plan that already ended, by annotation: arm it again (it expired or was vetoed,
// nothing ran), or mark a finished rollback as unnecessary (a false positive, for the trigger's record).

/** Phases in which nothing ran, so a rearm may arm the plan again. */
const REARMABLE = new Set(['Expired', 'Vetoed']);
const MAX_VALUE = 253;

/** The rearm annotation's value when it asks for something not yet done (a value acts once). */
export function rearmRequest(plan: KubeObject, status: RollbackPlanStatus): string | undefined {
  const value = plan.metadata.annotations?.[Annotation.Rearm];
  if (!value || !REARMABLE.has(status.phase ?? '') || plan.spec?.trigger?.mode !== 'auto') return undefined;
  const v = boundIdentity(value, MAX_VALUE);
  return status.lastRearm?.annotationValue === v || status.lastRearmRefused?.annotationValue === v
    ? undefined
    : value;
}

/** The unnecessary annotation's reason when a finished rollback is marked and not yet reviewed. */
export function reviewRequest(plan: KubeObject, status: RollbackPlanStatus): string | undefined {
  const value = plan.metadata.annotations?.[Annotation.Unnecessary];
  if (value === undefined || status.review || !status.startedAt) return undefined;
  return status.phase === 'Succeeded' || status.phase === 'Failed' ? value : undefined;
}

/**
 * Applies a rearm to the working status: the plan's trigger history is cleared and it is armed again from
 * now. A plan still carrying a veto would be vetoed again the moment it fires, and one still carrying an
 * approval would run on an approval given for an earlier firing: such a rearm is refused (the annotation
 * in the way is returned), recorded as handled so the same value does not ask again. undefined: rearmed.
 */
export function applyRearm(
  plan: KubeObject,
  status: RollbackPlanStatus,
  value: string,
  now: Date,
  watchWindowMs: number | undefined,
): typeof Annotation.VetoedBy | typeof Annotation.ApprovedBy | undefined {
  const annotationValue = boundIdentity(value, MAX_VALUE);
  // A refusal is recorded apart from lastRearm: lastRearm keys the notifications of an episode, and a refused
  // rearm starts none (it must not re-send the last episode's Triggered and Vetoed under a new key).
  for (const blocking of [Annotation.VetoedBy, Annotation.ApprovedBy] as const)
    if (plan.metadata.annotations?.[blocking]?.trim()) {
      status.lastRearmRefused = { refusedAt: now.toISOString(), annotationValue };
      return blocking;
    }
  status.lastRearm = { rearmedAt: now.toISOString(), annotationValue };
  delete status.trigger;
  delete status.triggerConditions;
  delete status.veto;
  delete status.approval;
  // The window starts afresh at the rearm (its old start lies in the past: it would expire at once).
  status.armed = armedWindow({
    prev: undefined,
    current: status.armed?.revisions ?? [],
    planCreated: now,
    watchWindowMs,
    now,
    rearm: true,
  });
  status.conditions = (status.conditions ?? []).filter(
    (c) => c.type !== ConditionType.Triggered && c.type !== ConditionType.AwaitingApproval,
  );
  status.phase = 'Armed';
  return undefined;
}

/** status.review for an `unnecessary` annotation; the value (bounded) is the reason. */
export function reviewOf(value: string, now: Date): NonNullable<RollbackPlanStatus['review']> {
  const reason = boundText(value.trim(), 1024);
  return { unnecessary: true, markedAt: now.toISOString(), ...(reason ? { reason } : {}) };
}
