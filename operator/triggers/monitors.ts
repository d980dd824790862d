import { parseDuration } from '../api/v1alpha1/common.js';
import type { TriggerCondition } from '../api/v1alpha1/rollbackplan.js';
import type { BackgroundTasks } from '../kube/background-tasks.js';
import { sleep } from '../kube/timers.js';
import { probeOnce, type HttpProbeOptions } from '../rollback/http-check.js';
import { prometheusProbe } from './prometheus.js';
import type { ConditionProbe, TriggerObservation } from './types.js';

/** Default time between probes: HTTPCheck 10s, PrometheusQuery 30s. */
export const DEFAULT_PERIOD_MS = { HTTPCheck: 10_000, PrometheusQuery: 30_000 } as const;
export const DEFAULT_FAILURE_THRESHOLD = 3;

/**
 * HTTPCheck as a trigger: one probe per call, with the post-validation probe's address policy and bounds.
 * Bad once `failureThreshold` consecutive probes failed, held since the first of them; a denied or unparsable
 * URL can never be evaluated (error), which never fires a rollback.
 */
export function httpConditionProbe(cond: TriggerCondition, opts: HttpProbeOptions): ConditionProbe {
  const threshold = cond.failureThreshold ?? DEFAULT_FAILURE_THRESHOLD;
  const check = { url: cond.url!, ...(cond.expectStatus ? { expectStatus: cond.expectStatus } : {}) };
  let failures = 0;
  let firstFailure: Date | undefined;
  return async (signal) => {
    const at = new Date();
    const r = await probeOnce(check, opts, signal);
    if (r.ok) {
      failures = 0;
      firstFailure = undefined;
      return { kind: 'good', at, observed: `${cond.url}: ${r.message}` };
    }
    if (r.denied || r.invalidUrl)
      return {
        kind: 'error',
        at,
        reason: r.denied ? 'HTTPCheckDenied' : 'InvalidURL',
        observed: `${cond.url}: ${r.message}`,
      };
    failures++;
    firstFailure ??= at;
    const observed = `${cond.url}: ${r.message} (${failures} consecutive failed probe(s), threshold ${threshold})`;
    if (failures >= threshold) return { kind: 'bad', at, since: firstFailure, observed };
    return { kind: 'good', at, observed };
  };
}

/**
 * The probing trigger conditions (HTTPCheck, PrometheusQuery) of armed plans: one long-running background
 * task per plan and condition, probing every period off the reconcile workers. The reconcile reads the latest
 * observation; the task wakes the plan when the observation's kind (or error reason) changes, which is when
 * the condition's state may change. Tasks end when the plan fires, expires or is deleted (forget), or the
 * manager stops.
 */
export class TriggerMonitors {
  private readonly latest = new Map<string, TriggerObservation>();

  constructor(
    private readonly tasks: BackgroundTasks,
    private readonly opts: HttpProbeOptions,
    private readonly probeTimeoutMs = 10_000,
  ) {}

  /** The owner key of a plan's monitors (distinct from its post-validation checks). */
  static owner(planUid: string): string {
    return `${planUid}/triggers`;
  }

  /** The latest observation of the condition; starts its monitor if none runs. */
  observe(
    planUid: string,
    name: string,
    cond: TriggerCondition,
    wake: () => void,
  ): TriggerObservation | undefined {
    const owner = TriggerMonitors.owner(planUid);
    const key = `${owner}\u0000${name}`;
    const state = this.tasks.ensure(owner, name, (task) => this.run(key, cond, task.signal, wake), wake);
    if (state.state === 'crashed')
      return { kind: 'error', at: new Date(), reason: 'MonitorFailed', observed: state.error };
    return this.latest.get(key);
  }

  /** Stops and forgets the plan's monitors. */
  forget(planUid: string): void {
    const owner = TriggerMonitors.owner(planUid);
    this.tasks.forget(owner);
    for (const k of this.latest.keys()) if (k.startsWith(`${owner}\u0000`)) this.latest.delete(k);
  }

  private probeFor(cond: TriggerCondition): { probe: ConditionProbe; periodMs: number } {
    const period = (fallback: number) => (cond.period ? parseDuration(cond.period) : fallback);
    if (cond.type === 'HTTPCheck')
      return { probe: httpConditionProbe(cond, this.opts), periodMs: period(DEFAULT_PERIOD_MS.HTTPCheck) };
    return {
      probe: prometheusProbe(
        { address: cond.address!, query: cond.query!, above: cond.above, below: cond.below },
        { timeoutMs: this.probeTimeoutMs, policy: this.opts.policy },
      ),
      periodMs: period(DEFAULT_PERIOD_MS.PrometheusQuery),
    };
  }

  private async run(key: string, cond: TriggerCondition, signal: AbortSignal, wake: () => void) {
    const { probe, periodMs } = this.probeFor(cond);
    while (!signal.aborted) {
      const started = Date.now();
      const obs = await probe(signal);
      if (signal.aborted) break;
      const prev = this.latest.get(key);
      this.latest.set(key, obs);
      if (!prev || prev.kind !== obs.kind || prev.reason !== obs.reason) wake();
      // Probes start `period` apart, however long one took.
      await sleep(Math.max(0, periodMs - (Date.now() - started)), signal);
    }
  }
}
