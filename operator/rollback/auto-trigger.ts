import { ConditionType, parseDuration } from '../api/v1alpha1/common.js';
import type { EffectiveRollbackPlanSpec, RollbackPlanStatus } from '../api/v1alpha1/rollbackplan.js';
import { boundText } from '../kube/bounded.js';
import type { ReconcileResult } from '../kube/controller.js';
import type { EventType } from '../kube/events.js';
import type { KubeClient, KubeObject } from '../kube/rest.js';
import type { Metrics } from '../metrics.js';
import { evaluateConditions, type Evaluation } from '../triggers/evaluate.js';
import type { TriggerMonitors } from '../triggers/monitors.js';
import type { AlertSource } from '../triggers/types.js';
import {
  armedWindow,
  sameRevisions,
  windowMoved,
  windowPassed,
  type Armed,
  type CurrentRevision,
} from '../triggers/watch-window.js';
import { selectorString, type RawReplicaSet } from './deployment-undo.js';
import { planPhaseConditions, type SetCondition } from './plan-conditions.js';

const REVISION = 'deployment.kubernetes.io/revision';
const iso = (d: Date) => d.toISOString();

/** What the armed phase of one reconcile needs. */
export interface TriggerContext {
  plan: KubeObject;
  namespace: string;
  spec: EffectiveRollbackPlanSpec;
  status: RollbackPlanStatus;
  now(): Date;
  cond: SetCondition;
  event(type: EventType, reason: string, message: string): void;
  /** The controller's status write (resourceVersion precondition, events after it). */
  write(): Promise<void>;
  deployment(name: string): KubeObject | undefined;
  client: KubeClient;
  monitors: TriggerMonitors;
  alerts: AlertSource;
  metrics: Metrics;
  /** Enqueues this plan (a monitor saw a change). */
  wake(): void;
}

export type ArmedOutcome = { kind: 'fired' } | { kind: 'stop'; result?: ReconcileResult };

/**
 * An automatic plan before it fired: keep the watch window current, expire it when it passed, evaluate every
 * condition, and fire at most once. status.trigger is written (and waited for) before anything acts on it;
 * once it exists the conditions are never evaluated again.
 */
export async function reconcileArmed(t: TriggerContext): Promise<ArmedOutcome> {
  const { status, spec, plan } = t;
  if (status.trigger) return { kind: 'fired' };
  const uid = plan.metadata.uid ?? `${t.namespace}/${plan.metadata.name}`;
  const prev = status.armed;
  const current = await currentRevisions(t, prev);
  const now = t.now();
  const armed = armedWindow({
    prev,
    current,
    planCreated: new Date(plan.metadata.creationTimestamp ?? now),
    watchWindowMs: spec.trigger.watchWindow ? parseDuration(spec.trigger.watchWindow) : undefined,
    now,
  });
  if (windowMoved(prev, armed)) {
    t.event('Normal', 'WatchWindowMoved', `a target rolled out a new revision: ${describeWindow(armed)}`);
    // A hold of the old revision is not about the new one (a fix-forward rolled out during a hold must not be
    // undone by it): holds and unknowns start over, and so do the probes (an HTTP failure count, too).
    status.triggerConditions = status.triggerConditions?.filter(
      (r) => r.state !== 'Pending' && r.state !== 'Unknown',
    );
    if (!status.triggerConditions?.length) delete status.triggerConditions;
    t.monitors.forget(uid);
  }
  status.armed = armed;

  // Conditions first: one that began to hold inside the window fires even when it is evaluated just after
  // the window ended (a requeue is never exactly on time); one that began after it does not.
  const evaluation = evaluateConditions(
    spec.trigger.conditions ?? [],
    status.triggerConditions,
    {
      deployment: t.deployment,
      monitor: (name, c) => t.monitors.observe(uid, name, c, t.wake),
      alert: (matchers, notBefore) => t.alerts.firingMatching(matchers, notBefore),
    },
    new Date(armed.since),
    now,
  );
  const passed = windowPassed(armed, now);
  const fired =
    evaluation.fired && (!passed || evaluation.fired.heldSince.getTime() < Date.parse(armed.until!))
      ? evaluation.fired
      : undefined;

  if (passed && !fired) {
    t.monitors.forget(uid);
    const msg = `no trigger condition fired within the watch window (${spec.trigger.watchWindow}, ${armed.since} to ${armed.until}); nothing was changed`;
    status.phase = 'Expired';
    planPhaseConditions.expired(t.cond, msg);
    t.event('Normal', 'Expired', msg);
    await t.write();
    return { kind: 'stop' };
  }

  status.triggerConditions = evaluation.records;
  setTriggerHealthy(t.cond, evaluation);

  if (fired) {
    const f = fired;
    status.trigger = {
      firedAt: iso(now),
      condition: f.name,
      type: f.type,
      observed: f.observed,
      conditionSince: iso(f.heldSince),
    };
    const held = Math.max(0, (now.getTime() - f.heldSince.getTime()) / 1000);
    const msg = boundText(
      `condition ${f.name} (${f.type}) fired after holding ${held.toFixed(1)}s: ${f.observed}`,
      1024,
    );
    t.cond({ type: ConditionType.Triggered, status: 'True', reason: f.type, message: msg });
    t.event('Normal', 'Triggered', msg);
    await t.write(); // durable before any decision or step: a plan fires at most once
    // Only now: a write that failed (a 409) is retried with the monitors' state (an HTTP failure count) intact.
    t.monitors.forget(uid);
    t.metrics.rollbackDetection.observe({ trigger: f.type }, held);
    return { kind: 'fired' };
  }

  const firstArm = status.phase !== 'Armed';
  status.phase = 'Armed';
  planPhaseConditions.armed(t.cond, armedMessage(armed, evaluation, spec.trigger.conditions?.length ?? 0));
  if (firstArm) t.event('Normal', 'Armed', `armed: ${describeWindow(armed)}`);
  await t.write();
  // Timers, not polling: the next moment something can change without an event is a hold passing its `for`
  // or the window ending. Computed after the write, so the wake-up is not early by the write's duration.
  const wakes = [evaluation.nextFireAt?.getTime(), armed.until ? Date.parse(armed.until) : undefined].filter(
    (x): x is number => x !== undefined,
  );
  if (!wakes.length) return { kind: 'stop' };
  return { kind: 'stop', result: { requeueAfterMs: requeueDelay(Math.min(...wakes), Date.now()) } };
}

/**
 * The shortest requeue of an armed plan. A wake-up time in the past must not become a hot loop (a hold whose
 * condition cannot be observed keeps its old fire time; monitors and the watch wake the plan when that changes).
 */
export const MIN_ARMED_REQUEUE_MS = 500;
export const requeueDelay = (at: number, now: number) => Math.max(MIN_ARMED_REQUEUE_MS, Math.ceil(at - now));

function setTriggerHealthy(cond: SetCondition, e: Evaluation) {
  if (!e.unevaluable.length) {
    cond({
      type: ConditionType.TriggerHealthy,
      status: 'True',
      reason: 'Evaluating',
      message: 'every trigger condition can be evaluated',
    });
    return;
  }
  const list = e.unevaluable.map((u) => `${u.name}: ${u.observed}`).join('; ');
  cond({
    type: ConditionType.TriggerHealthy,
    status: 'False',
    reason: e.unevaluable[0]!.reason,
    message: boundText(`cannot evaluate ${list}`, 4096),
  });
}

const describeWindow = (a: Armed) =>
  `watching since ${a.since}${a.until ? ` until ${a.until}` : ' (no watch window)'}${
    a.revisions?.length
      ? ` (${a.revisions.map((r) => `${r.deployment} revision ${r.revision}`).join(', ')})`
      : ''
  }`;

function armedMessage(a: Armed, e: Evaluation, n: number): string {
  const parts = [`armed: ${n} trigger condition(s), ${describeWindow(a)}`];
  const pending = e.records.filter((r) => r.state === 'Pending').map((r) => r.name);
  if (pending.length) parts.push(`holding: ${pending.join(', ')}`);
  if (e.unevaluable.length)
    parts.push(`cannot evaluate: ${e.unevaluable.map((u) => `${u.name} (${u.reason})`).join(', ')}`);
  return boundText(parts.join('; '), 4096);
}

/**
 * The targets' current revisions from the watch cache; when they differ from the ones armed on, the creation
 * time of each current ReplicaSet (one LIST per target, only then): the window starts when it appeared.
 */
async function currentRevisions(t: TriggerContext, prev: Armed | undefined): Promise<CurrentRevision[]> {
  const out: CurrentRevision[] = [];
  const deps: (KubeObject | undefined)[] = [];
  for (const target of t.spec.targets.deployments ?? []) {
    const dep = t.deployment(target.name);
    if (!dep) {
      // A deleted (or not yet created) target is no new revision: it keeps the one armed on, so the window
      // does not move (its DeploymentUnavailable condition reports DeploymentNotFound).
      const before = prev?.revisions?.find((r) => r.deployment === target.name);
      if (before) {
        out.push({ ...before });
        deps.push(undefined);
      }
      continue;
    }
    const revision = Number.parseInt(dep.metadata.annotations?.[REVISION] ?? '0', 10);
    out.push({
      deployment: target.name,
      revision: Number.isFinite(revision) && revision >= 0 ? revision : 0,
    });
    deps.push(dep);
  }
  if (prev && sameRevisions(prev.revisions, out)) return out;
  await Promise.all(
    deps.map(async (dep, i) => {
      if (dep) out[i]!.createdAt = await replicaSetCreated(t, dep, out[i]!.revision);
    }),
  );
  return out;
}

async function replicaSetCreated(
  t: TriggerContext,
  dep: KubeObject,
  revision: number,
): Promise<Date | undefined> {
  let selector: string;
  try {
    selector = selectorString(dep.spec?.selector);
  } catch {
    return undefined; // a selector the API server would not accept either: no revision to watch
  }
  const list = await t.client.list<RawReplicaSet>(
    { group: 'apps', version: 'v1', plural: 'replicasets', namespace: t.namespace },
    { labelSelector: selector },
  );
  const rs = list.items.find(
    (r) =>
      r.metadata.ownerReferences?.some((o) => o.uid === dep.metadata.uid) &&
      r.metadata.annotations?.[REVISION] === String(revision),
  );
  return rs?.metadata.creationTimestamp ? new Date(rs.metadata.creationTimestamp) : undefined;
}
