import type { AlertMatcher } from '../api/v1alpha1/rollbackplan.js';

/**
 * One observation of a trigger condition:
 * - bad: the condition holds (a probe failed, the query crossed its threshold, a matching alert fires);
 * - good: it does not;
 * - noData: PrometheusQuery returned no value (empty vector, NaN): not bad, and it resets the hold, like a
 *   Prometheus alerting rule whose expression returns nothing (write `... or vector(1)` to count it as bad);
 * - error: it cannot be evaluated (Prometheus unreachable, a query error, a result that is not one number):
 *   never a reason to roll back; it leaves the hold as it was and shows on the TriggerHealthy condition.
 * `observed` is for people (status, events): bounded, no credentials.
 */
export interface TriggerObservation {
  kind: 'bad' | 'good' | 'noData' | 'error';
  at: Date;
  observed: string;
  /** For kind error: PrometheusUnreachable | PrometheusQueryFailed | PrometheusResultInvalid | ... */
  reason?: string;
  /** For kind bad: when the bad state began, if the source knows (an alert's startsAt). */
  since?: Date;
}

/** A periodic probe of one condition; bounded by its own timeout and by `signal`. Never throws. */
export type ConditionProbe = (signal: AbortSignal) => Promise<TriggerObservation>;

/** A firing alert as the Alertmanager webhook receiver keeps it. */
export interface StoredAlert {
  fingerprint: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: Date;
  receivedAt: Date;
}

/** What the plan controller needs from the alert receiver. */
export interface AlertSource {
  /** The earliest-starting firing alert whose labels match all matchers and that started at or after notBefore. */
  firingMatching(matchers: readonly AlertMatcher[], notBefore: Date): StoredAlert | undefined;
  /**
   * Called whenever a payload was applied, with the alerts it stored, refreshed or resolved (so a listener
   * wakes only the plans whose matchers match one); returns an unsubscribe function.
   */
  onChange(listener: (changed: readonly { labels: Readonly<Record<string, string>> }[]) => void): () => void;
}
