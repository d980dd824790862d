import type { AddressPolicy } from '../rollback/address-policy.js';
import type { ConditionProbe } from './types.js';

export interface PrometheusCondition {
  address: string;
  query: string;
  above?: number;
  below?: number;
}

export interface PrometheusProbeOptions {
  /** Bound of one query, connection included. */
  timeoutMs: number;
  /** The HTTP checks' address policy, applied at connect time. */
  policy: AddressPolicy;
}

/** One instant query per call, classified as a TriggerObservation (see types.ts). Placeholder until implemented. */
export function prometheusProbe(_cond: PrometheusCondition, _opts: PrometheusProbeOptions): ConditionProbe {
  return async () => ({
    kind: 'error',
    at: new Date(),
    reason: 'NotImplemented',
    observed: 'PrometheusQuery is not implemented yet',
  });
}
