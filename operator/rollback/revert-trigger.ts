import { ConditionType } from '../api/v1alpha1/common.js';
import type { RollbackPlanStatus } from '../api/v1alpha1/rollbackplan.js';
import { boundText } from '../kube/bounded.js';
import type { KubeObject } from '../kube/rest.js';
import type { TriggerContext, ArmedOutcome } from './auto-trigger.js';
import { readDeploymentHistory } from './deployment-io.js';
import type { RawDeployment, RawReplicaSet } from './deployment-undo.js';
import { planPhaseConditions } from './plan-conditions.js';
import { failpoint } from '../failpoints.js';
import { isNotFound } from '../kube/errors.js';

const REVISION = 'deployment.kubernetes.io/revision';
const REVISION_HISTORY = 'deployment.kubernetes.io/revision-history';
/** status.trigger.condition of an onRevert plan (also the metrics' trigger label). */
export const REVERT_CONDITION = 'onRevert';

const revisionOf = (o: { metadata: { annotations?: Record<string, string> } }): number | undefined => {
  const v = o.metadata.annotations?.[REVISION];
  if (v === undefined) return 0;
  const n = Number(v);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
};

/** What a target's ReplicaSets say about a revert after `baseline` (the revision armed on). */
export type RevertObservation =
  | { kind: 'none'; revision: number }
  | {
      kind: 'reverted';
      /** The revision the Deployment was on before the revert (the bad one): the highest other revision. */
      fromRevision?: number;
      /** The earlier revision whose template came back (the ReplicaSet's number before it was re-used). */
      reusedRevision: number;
      /** The revision it carries now. */
      revision: number;
      replicaSet: string;
    };

/**
 * Pure: did the Deployment re-use an earlier ReplicaSet after `baseline`? The deployment controller, when a
 * template equal to an old ReplicaSet's comes back (a Git revert, `argocd app rollback`, `kubectl rollout
 * undo`), re-uses that ReplicaSet, raises its revision to max+1 and appends the old number to its
 * `deployment.kubernetes.io/revision-history`. So a ReplicaSet controlled by the Deployment whose revision is
 * above the baseline and which has a revision history was re-used after the plan was armed; a new template gets
 * a new ReplicaSet without history (not a revert), and a revert before arming has a revision at or below the
 * baseline. Only the Deployment's current ReplicaSet counts (its revision equals the Deployment's revision
 * annotation): a revert that a new rollout already replaced is over, and an older re-used ReplicaSet must not
 * fire the plan again after a rearm. (A re-used ReplicaSet that was garbage-collected in between comes back as a
 * new one without history: not detected.)
 */
export function detectRevert(
  deployment: RawDeployment,
  replicaSets: readonly RawReplicaSet[],
  baseline: number,
): RevertObservation {
  const uid = deployment.metadata.uid;
  const owned = replicaSets.filter((rs) =>
    (rs.metadata.ownerReferences ?? []).some((o) => o.controller === true && o.uid === uid),
  );
  const current = revisionOf(deployment) ?? 0;
  let best: { rs: RawReplicaSet; revision: number; reused: number } | undefined;
  for (const rs of owned) {
    const revision = revisionOf(rs);
    if (revision === undefined || revision <= baseline || revision !== current) continue;
    const history = (rs.metadata.annotations?.[REVISION_HISTORY] ?? '').split(',').filter((s) => s !== '');
    const reused = Number(history[history.length - 1]);
    if (!history.length || !Number.isSafeInteger(reused) || reused < 0) continue;
    if (!best || revision > best.revision) best = { rs, revision, reused };
  }
  if (!best) return { kind: 'none', revision: current };
  const others = owned
    .filter((rs) => rs !== best.rs)
    .map(revisionOf)
    .filter((r): r is number => r !== undefined && r < best.revision);
  return {
    kind: 'reverted',
    ...(others.length ? { fromRevision: Math.max(...others) } : {}),
    reusedRevision: best.reused,
    revision: best.revision,
    replicaSet: best.rs.metadata.name ?? '',
  };
}

/**
 * Whether another RollbackPlan put this ReplicaSet back (an operator-driven rollback looks like a revert on the
 * cluster): a plan whose status.deployments entry for the Deployment names this ReplicaSet and is Pending (or
 * has no result yet: the rollback is in progress, its patch may already have landed), or RolledBack after this
 * plan was armed, or RolledBack at the Deployment's current generation (a plan that started before arming).
 */
export function rolledBackByPlan(
  plans: readonly KubeObject[],
  self: string | undefined,
  deployment: string,
  replicaSet: string,
  armedSince: string,
  generation?: number,
): string | undefined {
  for (const p of plans) {
    if (p.metadata.uid === self) continue;
    const s = p.status as RollbackPlanStatus | undefined;
    const after = !!s?.startedAt && Date.parse(s.startedAt) >= Date.parse(armedSince);
    const ours = (s?.deployments ?? []).some(
      (d) =>
        d.name === deployment &&
        d.replicaSet === replicaSet &&
        // In flight only while that plan runs: a plan that failed before patching keeps Pending entries
        // forever, and a later Git revert to the same template (same ReplicaSet name) is not its doing.
        (((d.result === undefined || d.result === 'Pending') &&
          s?.phase === 'Running' &&
          !p.metadata.deletionTimestamp) ||
          (d.result === 'RolledBack' &&
            (after || (generation !== undefined && d.generation === generation)))),
    );
    if (ours) return p.metadata.name;
  }
  return undefined;
}

/**
 * An onRevert plan before it fired: armed on each target's current revision (the baseline, in
 * status.armed.revisions); a Deployment event that shows a higher revision is looked at once (one LIST of its
 * ReplicaSets): a revert fires the plan (status.trigger and status.deployments written before anything runs,
 * so it fires at most once and a restarted operator resumes), a new template moves the baseline on.
 */
export async function reconcileRevertArmed(
  t: TriggerContext,
  allPlans: () => KubeObject[],
): Promise<ArmedOutcome> {
  const { status, spec, plan } = t;
  if (status.trigger) return { kind: 'fired' };
  const now = t.now();
  const firstArm = status.phase !== 'Armed';
  const since = status.armed?.since ?? now.toISOString();
  const baseline = new Map((status.armed?.revisions ?? []).map((r) => [r.deployment, r.revision]));
  const reverted: NonNullable<RollbackPlanStatus['deployments']> = [];
  const observed: string[] = [];
  for (const target of spec.targets.deployments ?? []) {
    const cached = t.deployment(target.name) as RawDeployment | undefined;
    if (!cached) continue; // not there (yet): armed on its first revision when it appears
    const current = revisionOf(cached) ?? 0;
    const base = baseline.get(target.name);
    if (base === undefined) {
      // First seen: whatever happened before (a revert included) is history, not a trigger.
      baseline.set(target.name, current);
      continue;
    }
    if (current <= base) continue;
    let history;
    try {
      history = await readDeploymentHistory(t.client, t.namespace, target.name);
    } catch (e) {
      if (isNotFound(e)) continue;
      throw e;
    }
    const seen = detectRevert(history.deployment, history.replicaSets, base);
    if (seen.kind === 'none') {
      t.event(
        'Normal',
        'NewRevision',
        `Deployment ${target.name} rolled out revision ${seen.revision} with a new template: not a revert, still watching`,
      );
      baseline.set(target.name, Math.max(seen.revision, base));
      continue;
    }
    const generation = history.deployment.metadata.generation;
    const by = rolledBackByPlan(
      allPlans(),
      plan.metadata.uid,
      target.name,
      seen.replicaSet,
      since,
      typeof generation === 'number' ? generation : undefined,
    );
    if (by) {
      t.event(
        'Normal',
        'RevertByRollbackPlan',
        `Deployment ${target.name}: revision ${seen.reusedRevision} re-used as ${seen.revision} by RollbackPlan ${by}, not by GitOps: still watching`,
      );
      baseline.set(target.name, seen.revision);
      continue;
    }
    // The baseline moves to the revert: a rearmed plan fires only on a later one, never on this again.
    baseline.set(target.name, seen.revision);
    const text = `Deployment ${target.name}: revision ${seen.reusedRevision} re-used as revision ${seen.revision} (replicaset ${seen.replicaSet}${seen.fromRevision !== undefined ? `, was on revision ${seen.fromRevision}` : ''})`;
    observed.push(text);
    reverted.push({
      name: target.name,
      ...(seen.fromRevision !== undefined ? { fromRevision: seen.fromRevision } : {}),
      toRevision: seen.reusedRevision,
      replicaSet: seen.replicaSet,
      result: 'RolledBack',
      ...(typeof history.deployment.metadata.generation === 'number'
        ? { generation: history.deployment.metadata.generation }
        : {}),
      message: boundText(`rolled back by GitOps: ${text}`, 1024),
    });
  }
  status.armed = {
    since,
    ...(baseline.size
      ? { revisions: [...baseline].map(([deployment, revision]) => ({ deployment, revision })) }
      : {}),
  };

  if (reverted.length) {
    const observedText = boundText(observed.join('; '), 1024);
    status.trigger = { firedAt: now.toISOString(), condition: REVERT_CONDITION, observed: observedText };
    status.deployments = reverted;
    t.cond({ type: ConditionType.Triggered, status: 'True', reason: 'GitOpsRevert', message: observedText });
    t.event('Normal', 'Triggered', `a GitOps revert: ${observedText}`);
    await t.write(); // durable before any step: the plan fires at most once
    failpoint('after-revert-trigger');
    return { kind: 'fired' };
  }

  status.phase = 'Armed';
  const watching = status.armed.revisions?.length
    ? status.armed.revisions.map((r) => `${r.deployment} revision ${r.revision}`).join(', ')
    : 'no target Deployment exists yet';
  planPhaseConditions.armed(
    t.cond,
    boundText(`armed: waiting for a GitOps revert of ${watching} (since ${since})`, 4096),
  );
  if (firstArm) t.event('Normal', 'Armed', `armed on revert: watching ${watching}`);
  await t.write();
  return { kind: 'stop' };
}
