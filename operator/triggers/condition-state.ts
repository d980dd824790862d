import { parseDuration } from '../api/v1alpha1/common.js';
import type {
  RollbackPlanStatus,
  TriggerCondition,
  TriggerConditionType,
} from '../api/v1alpha1/rollbackplan.js';
import { boundText } from '../kube/bounded.js';
import type { TriggerObservation } from './types.js';

/** One entry of status.triggerConditions. */
export type ConditionRecord = NonNullable<RollbackPlanStatus['triggerConditions']>[number];

/** The condition's name in status and events: its own, else `<type lower-case>-<index>`. */
export const conditionName = (c: TriggerCondition, index: number) =>
  c.name ?? `${c.type.toLowerCase()}-${index}`;

/** How long a condition must hold before it fires (`for`); DeploymentUnavailable waits 30s by default. */
export function holdFor(c: TriggerCondition): number {
  if (c.for !== undefined) return parseDuration(c.for);
  return c.type === 'DeploymentUnavailable' ? 30_000 : 0;
}

export interface ConditionStep {
  /** The record to keep: the previous one itself when the state did not change (no status write). */
  record: ConditionRecord;
  /** Set when the condition fires now: when it began to hold (status.trigger.conditionSince). */
  fired?: { heldSince: Date; observed: string };
  /** Pending: when it fires if it keeps holding (the requeue time). */
  firesAt?: Date;
}

const MAX_OBSERVED = 1024;
const bounded = (s: string) => boundText(s, MAX_OBSERVED);
// Millisecond precision: detection and the "within 2 s" promise are measured from these.
const iso = (d: Date) => d.toISOString();

/**
 * The per-condition state machine, pure: the previous record (from status, so a restart keeps the clock), the
 * latest observation and the hold time give the next record.
 * - bad: Pending from the moment it began to hold (the source's `since`, else the observation), Firing once
 *   it held for `forMs`; a hold already running keeps its start;
 * - good, noData: Healthy (noData resets a hold, like an alerting rule whose expression returns nothing);
 * - error, or no observation: a hold running stays as it is (it never fires on an error, the next bad
 *   observation does; no fire time is returned, so nothing requeues on a time that may have passed); no
 *   observation leaves any other state as it is too; an error (or nothing ever observed) is Unknown;
 * - Firing is final.
 * The record changes only when the state does, so status is written on changes, not on every probe.
 */
export function nextConditionState(
  prev: ConditionRecord | undefined,
  name: string,
  type: TriggerConditionType,
  obs: TriggerObservation | undefined,
  forMs: number,
  now: Date,
): ConditionStep {
  const make = (state: ConditionRecord['state'], since: Date, observed: string): ConditionRecord => ({
    name,
    type,
    state,
    since: iso(since),
    observed: bounded(observed),
  });
  if (prev?.state === 'Firing') return { record: prev };
  const holding = prev?.state === 'Pending' && prev.since !== undefined;
  if (!obs || obs.kind === 'error') {
    // No fire time: an error never fires, and a fire time already past would requeue in a hot loop. The
    // next observation (a monitor's wake-up, a watch event) moves the condition on.
    if (holding) return { record: prev };
    if (prev?.state === 'Unknown') return { record: prev };
    // Not observed (yet, or not knowable now: a Deployment whose status lags its spec): no news, no change.
    if (!obs && prev) return { record: prev };
    return { record: make('Unknown', now, obs?.observed ?? 'not observed yet') };
  }
  if (obs.kind === 'good' || obs.kind === 'noData') {
    if (prev?.state === 'Healthy') return { record: prev };
    return { record: make('Healthy', obs.at, obs.observed) };
  }
  const heldSince = holding ? new Date(Date.parse(prev.since!)) : (obs.since ?? obs.at);
  const firesAt = new Date(heldSince.getTime() + forMs);
  if (now.getTime() >= firesAt.getTime()) {
    return {
      record: make('Firing', now, obs.observed),
      fired: { heldSince, observed: bounded(obs.observed) },
    };
  }
  if (holding) return { record: prev, firesAt };
  return { record: make('Pending', heldSince, obs.observed), firesAt };
}
