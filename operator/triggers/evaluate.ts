import type { AlertMatcher, TriggerCondition, TriggerConditionType } from '../api/v1alpha1/rollbackplan.js';
import type { KubeObject } from '../kube/rest.js';
import { conditionName, holdFor, nextConditionState, type ConditionRecord } from './condition-state.js';
import { deploymentAvailability } from './deployment-availability.js';
import { matcherProblem } from './matchers.js';
import type { StoredAlert, TriggerObservation } from './types.js';

/** Where observations come from; injected so the evaluation stays testable without a cluster. */
export interface ConditionSources {
  /** A Deployment as the watch last delivered it. */
  deployment(name: string): KubeObject | undefined;
  /** The latest observation of a probing condition (HTTPCheck, PrometheusQuery); starts its monitor. */
  monitor(name: string, cond: TriggerCondition): TriggerObservation | undefined;
  alert(matchers: readonly AlertMatcher[], notBefore: Date): StoredAlert | undefined;
}

export interface Fired {
  name: string;
  type: TriggerConditionType;
  observed: string;
  heldSince: Date;
}

export interface Evaluation {
  records: ConditionRecord[];
  /** The first condition (in spec order) that fires now. */
  fired?: Fired;
  /** The earliest time a Pending condition fires if it keeps holding. */
  nextFireAt?: Date;
  /** Conditions that cannot be evaluated now, with why (TriggerHealthy=False). */
  unevaluable: { name: string; reason: string; observed: string }[];
}

function observe(
  cond: TriggerCondition,
  name: string,
  sources: ConditionSources,
  armedSince: Date,
  now: Date,
): TriggerObservation | undefined {
  switch (cond.type) {
    case 'DeploymentUnavailable':
      return deploymentAvailability(
        cond.deployment!,
        sources.deployment(cond.deployment!),
        cond.minAvailable,
        now,
      );
    case 'Alert': {
      // A pattern RE2 rejects matches nothing: the condition could never fire, so say so (TriggerHealthy).
      const problem = cond.matchers!.map(matcherProblem).find((p) => p !== undefined);
      if (problem) return { kind: 'error', at: now, reason: 'InvalidMatcher', observed: problem };
      // Only an alert that started in the watch window: one firing since before the release is not about it.
      const a = sources.alert(cond.matchers!, armedSince);
      if (!a) return { kind: 'good', at: now, observed: 'no matching alert firing' };
      const alertname = a.labels.alertname ?? a.fingerprint;
      return { kind: 'bad', at: now, since: a.startsAt, observed: `alert ${alertname} firing` };
    }
    default:
      return sources.monitor(name, cond);
  }
}

/**
 * Every trigger condition of an armed plan, observed and stepped through its state machine. Pure apart from
 * the sources it is given.
 */
export function evaluateConditions(
  conditions: readonly TriggerCondition[],
  previous: readonly ConditionRecord[] | undefined,
  sources: ConditionSources,
  armedSince: Date,
  now: Date,
): Evaluation {
  const out: Evaluation = { records: [], unevaluable: [] };
  conditions.forEach((cond, i) => {
    const name = conditionName(cond, i);
    const prev = previous?.find((r) => r.name === name && r.type === cond.type);
    const obs = observe(cond, name, sources, armedSince, now);
    if (obs?.kind === 'error')
      out.unevaluable.push({ name, reason: obs.reason ?? 'Unknown', observed: obs.observed });
    const step = nextConditionState(prev, name, cond.type, obs, holdFor(cond), now);
    out.records.push(step.record);
    if (step.fired && !out.fired)
      out.fired = { name, type: cond.type, observed: step.fired.observed, heldSince: step.fired.heldSince };
    if (step.firesAt && (!out.nextFireAt || step.firesAt < out.nextFireAt)) out.nextFireAt = step.firesAt;
  });
  return out;
}
