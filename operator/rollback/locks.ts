import type { KubeObject } from '../kube/rest.js';
import { finishStep } from './journal.js';
import type { PlanRun, StepOutcome } from './plan-run.js';

/**
 * Something a plan changes, that two plans must never change at the same time: a Deployment, the database
 * behind a BackupSchedule (restored in place or swapped), a key of a flag ConfigMap, or a whole OpenFeature
 * FeatureFlag object (its flags are one merge patch of one spec, and a plan records and restores them together).
 */
export type LockTarget =
  | { kind: 'Deployment'; name: string }
  | { kind: 'Database'; backupSchedule: string }
  | { kind: 'ConfigMapKey'; configMap: string; key: string }
  | { kind: 'FeatureFlag'; name: string };

export interface PlanConflict {
  target: LockTarget;
  /** The other plan, which holds the target. */
  plan: string;
  phase: string;
}

const TERMINAL = new Set(['Succeeded', 'Failed', 'DryRunComplete', 'Expired', 'Vetoed']);
/**
 * A plan that only watches (Armed) or waits for a person (AwaitingApproval) changes nothing yet: it must not
 * keep an emergency plan off its targets. A plan leaving these phases to execute writes phase Running and
 * startedAt durably before its pre-validation (the controller), so these phases here are durable ones.
 */
const NOT_EXECUTING = new Set(['Armed', 'AwaitingApproval']);

/**
 * "Older wins" between two plans that want the same target and neither holds it yet: does `a` go before `b`?
 * - Two plans that never waited and never fired want their targets from their creation: the earlier
 *   creationTimestamp goes first (ties by name), as always.
 * - Otherwise (one of them fired or waited for a decision: status.trigger) a plan wants its targets from the
 *   moment it started executing (status.startedAt, set and made visible to the operator's other reconciles
 *   before its pre-validation): the earlier start goes first; a plan that has not started yet starts after
 *   one that has (it will see it when it starts). An automatic plan created last week that fires now is not
 *   older than an emergency plan applied a minute ago, and of two plans that start at about the same time the
 *   one that starts second always sees the first.
 */
export function goesFirst(a: KubeObject, b: KubeObject): boolean {
  const byName = a.metadata.name < b.metadata.name;
  if (!a.status?.trigger && !b.status?.trigger) {
    const ta = Date.parse(a.metadata.creationTimestamp ?? '') || 0;
    const tb = Date.parse(b.metadata.creationTimestamp ?? '') || 0;
    return ta === tb ? byName : ta < tb;
  }
  const sa = Date.parse(a.status?.startedAt ?? '');
  const sb = Date.parse(b.status?.startedAt ?? '');
  if (Number.isNaN(sa) && Number.isNaN(sb)) return byName;
  if (Number.isNaN(sa)) return false;
  if (Number.isNaN(sb)) return true;
  return sa === sb ? byName : sa < sb;
}

/** Not executing: armed or awaiting a decision, or an automatic plan that never started (not fired yet). */
const notExecuting = (p: KubeObject) =>
  NOT_EXECUTING.has(p.status?.phase ?? '') ||
  ((p.spec?.trigger?.mode === 'auto' || p.spec?.trigger?.mode === 'onRevert') && !p.status?.startedAt);

/** A plan holds its targets once its pre-validation passed, until it finishes. */
const holdsLock = (p: KubeObject) =>
  (p.status?.steps ?? []).some(
    (s: { name: string; result: string }) => s.name === 'PreValidation' && s.result === 'Succeeded',
  );

const lockKey = (t: LockTarget) => {
  switch (t.kind) {
    case 'Deployment':
      return `deployment/${t.name}`;
    case 'Database':
      return `database/${t.backupSchedule}`;
    case 'ConfigMapKey':
      return `configmap/${t.configMap}/${t.key}`;
    case 'FeatureFlag':
      return `featureflag/${t.name}`;
  }
};

/** How a conflict reads in a message: `Deployment "web"`, `the database of BackupSchedule "shop-db"`. */
export function describeLockTarget(t: LockTarget): string {
  switch (t.kind) {
    case 'Deployment':
      return `Deployment "${t.name}"`;
    case 'Database':
      return `the database of BackupSchedule "${t.backupSchedule}"`;
    case 'ConfigMapKey':
      return `key "${t.key}" of ConfigMap "${t.configMap}"`;
    case 'FeatureFlag':
      return `FeatureFlag "${t.name}"`;
  }
}

interface RawSpec {
  scope?: string;
  targets?: {
    deployments?: { name: string }[];
    database?: { backupScheduleRef?: { name?: string } };
    featureFlags?: {
      configMapRef?: { name?: string };
      featureFlagRef?: { name?: string };
      disable?: string[];
    };
  };
}

/**
 * What a plan's scope changes (the same rule as scope.ts: `full` acts on every target it lists, the other
 * scopes on theirs only). Works on the raw spec of any plan the cache holds, valid or not.
 */
export function lockTargets(spec: RawSpec | undefined): LockTarget[] {
  const t = spec?.targets ?? {};
  const on = (scope: string) => spec?.scope === scope || spec?.scope === 'full';
  const out: LockTarget[] = [];
  if (on('app')) for (const d of t.deployments ?? []) out.push({ kind: 'Deployment', name: d.name });
  const schedule = t.database?.backupScheduleRef?.name;
  if (on('database') && schedule) out.push({ kind: 'Database', backupSchedule: schedule });
  const flags = t.featureFlags;
  if (on('feature') && flags) {
    const cm = flags.configMapRef?.name;
    if (cm) for (const key of flags.disable ?? []) out.push({ kind: 'ConfigMapKey', configMap: cm, key });
    if (flags.featureFlagRef?.name) out.push({ kind: 'FeatureFlag', name: flags.featureFlagRef.name });
  }
  return out;
}

/**
 * The lock, derived from durable state (the plans and their status) so it survives operator restarts without
 * a separate lock object. A plan may not start while another plan of the same namespace that changes one of
 * `targets` and has not finished either holds the lock (passed pre-validation) or goes first (goesFirst, ties
 * broken by name; goesFirst): of two plans applied, fired or approved at once exactly one proceeds. `self` carries the
 * plan's current (working) status. Dry runs and validateOnly plans touch nothing and hold no lock.
 */
export function planConflicts(
  self: KubeObject,
  plans: readonly KubeObject[],
  targets: readonly LockTarget[],
): PlanConflict[] {
  const wanted = new Set(targets.map(lockKey));
  const out: PlanConflict[] = [];
  for (const p of plans) {
    if (p.metadata.uid === self.metadata.uid || p.metadata.namespace !== self.metadata.namespace) continue;
    if (p.spec?.dryRun === true || p.spec?.validateOnly) continue;
    const phase: string = p.status?.phase ?? 'Pending';
    if (TERMINAL.has(phase)) continue;
    if (!holdsLock(p) && notExecuting(p)) continue;
    if (!holdsLock(p) && !goesFirst(p, self)) continue;
    for (const target of lockTargets(p.spec)) {
      if (wanted.has(lockKey(target)))
        out.push({
          target,
          plan: p.metadata.name,
          phase: holdsLock(p)
            ? phase
            : `${phase}, ${p.status?.trigger || self.status?.trigger ? 'started' : 'created'} earlier`,
        });
    }
  }
  return out;
}

/** The plan as the lock compares it: with its working status (startedAt may not be in the cache yet). */
export const runningPlan = (run: Pick<PlanRun, 'plan' | 'status'>): KubeObject => ({
  ...run.plan,
  status: run.status,
});

/** The Deployment lock, as the app pre-validation asks for it. */
export function activePlanConflicts(
  self: KubeObject,
  plans: readonly KubeObject[],
  deployments: readonly string[],
): (PlanConflict & { deployment: string })[] {
  const targets = deployments.map((name): LockTarget => ({ kind: 'Deployment', name }));
  return planConflicts(self, plans, targets).map((c) => ({
    ...c,
    deployment: (c.target as { name: string }).name,
  }));
}

/** Journal entry of the lock check per kind of target (the app check keeps its historical name). */
const CHECK_STEP = { database: 'CheckNoConcurrentRestore', flags: 'CheckNoConcurrentFlagChange' } as const;

/**
 * The lock check of the database or flag pre-validation: records a journal entry and returns the failure when
 * another plan holds one of this plan's targets of that kind, undefined when the plan may go on.
 */
export function concurrentPlanFailure(run: PlanRun, which: 'database' | 'flags'): StepOutcome | undefined {
  const kinds: LockTarget['kind'][] = which === 'database' ? ['Database'] : ['ConfigMapKey', 'FeatureFlag'];
  const mine = lockTargets(run.spec).filter((t) => kinds.includes(t.kind));
  const conflicts = planConflicts(runningPlan(run), run.allPlans(), mine);
  const step = CHECK_STEP[which];
  if (!conflicts.length) {
    run.status.steps = finishStep(
      run.status.steps,
      step,
      'Succeeded',
      'no other active RollbackPlan changes these targets',
      run.now(),
    );
    return undefined;
  }
  const msg = conflicts
    .map((c) => `${describeLockTarget(c.target)} is held by RollbackPlan "${c.plan}" (${c.phase})`)
    .join('; ');
  run.status.steps = finishStep(run.status.steps, step, 'Failed', msg, run.now());
  return { kind: 'failed', reason: 'ConcurrentPlan', message: msg };
}
