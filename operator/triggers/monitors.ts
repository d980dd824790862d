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
/** Trigger probes in flight at once over all plans. */
export const MAX_CONCURRENT_PROBES = 128; // I/O-bound; high enough that hung targets (10 s each) do not slow other plans' probes
/** The longest random delay of a monitor's first probe. */
export const FIRST_PROBE_JITTER_MS = 1_000;

/** A counting semaphore whose waiters give up when their signal aborts. */
export class Semaphore {
  private used = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(private readonly size: number) {}

  get inUse(): number {
    return this.used;
  }

  /** Resolves true with a slot taken, or false when `signal` aborted first. */
  acquire(signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(false);
    if (this.used < this.size) {
      this.used++;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const grant = () => {
        signal.removeEventListener('abort', abort);
        this.used++;
        resolve(true);
      };
      const abort = () => {
        const i = this.waiters.indexOf(grant);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve(false);
      };
      this.waiters.push(grant);
      signal.addEventListener('abort', abort, { once: true });
    });
  }

  release(): void {
    this.used--;
    this.waiters.shift()?.();
  }
}

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
  private readonly slots: Semaphore;

  constructor(
    private readonly tasks: BackgroundTasks,
    private readonly opts: HttpProbeOptions,
    private readonly probeTimeoutMs = 10_000,
    /** Probes in flight at once, over all plans: many armed plans must not become a burst of requests. */
    maxConcurrentProbes = MAX_CONCURRENT_PROBES,
  ) {
    this.slots = new Semaphore(maxConcurrentProbes);
  }

  /** Probes running now (for tests and metrics). */
  get probesInFlight(): number {
    return this.slots.inUse;
  }

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
    // Plans applied (or an operator started) together do not probe in lockstep: the first probe waits a
    // random part of the period (at most FIRST_PROBE_JITTER_MS).
    await sleep(Math.floor(Math.random() * Math.min(periodMs / 2, FIRST_PROBE_JITTER_MS)), signal);
    while (!signal.aborted) {
      const started = Date.now();
      if (!(await this.slots.acquire(signal))) break;
      let obs: TriggerObservation;
      try {
        obs = await probe(signal);
      } finally {
        this.slots.release();
      }
      if (signal.aborted) break;
      const prev = this.latest.get(key);
      this.latest.set(key, obs);
      if (!prev || prev.kind !== obs.kind || prev.reason !== obs.reason) wake();
      // Probes start `period` apart, however long one took.
      await sleep(Math.max(0, periodMs - (Date.now() - started)), signal);
    }
  }
}
