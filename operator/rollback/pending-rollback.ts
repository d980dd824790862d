// What the AppRollback step does with a Deployment that pre-validation decided to roll back, given the
// Deployment as it is now. The step may run long after the decision (a database restore in between) or again
// after a crash or from a stale plan cache; in that time a user may have rolled forward to a new release.
// Patching then would revert their release, so the patch is conditional on the Deployment still having the
// template pre-validation saw. Pure.
import type { RollbackPlanStatus } from '../api/v1alpha1/rollbackplan.js';
import {
  equalIgnoreHash,
  planDeploymentRollback,
  templateDigest,
  type RawDeployment,
  type RawReplicaSet,
  type RollbackPlan as DeploymentUndoPlan,
} from './deployment-undo.js';

export type DeploymentEntry = NonNullable<RollbackPlanStatus['deployments']>[number];

export type PendingRollbackDecision =
  /** The pinned template is in place already: our own earlier patch, or someone did the same. */
  | { action: 'inPlace' }
  | { action: 'patch'; plan: DeploymentUndoPlan }
  /** Changed since the decision: nothing is patched. */
  | { action: 'historyChanged'; message: string };

/** What pre-validation records about a Deployment it decided to roll back (the state the patch requires). */
export function observedState(deployment: RawDeployment) {
  return {
    ...(deployment.metadata.resourceVersion
      ? { observedResourceVersion: deployment.metadata.resourceVersion }
      : {}),
    observedTemplateHash: templateDigest(deployment.spec.template),
  };
}

export function decidePendingRollback(
  d: DeploymentEntry,
  deployment: RawDeployment,
  replicaSets: RawReplicaSet[],
): PendingRollbackDecision {
  const target = replicaSets.find((rs) => rs.metadata.name === d.replicaSet);
  if (target && equalIgnoreHash(deployment.spec.template, target.spec?.template))
    return { action: 'inPlace' };
  // Entries written before the template hash was recorded fall through to the revision check alone.
  if (
    d.observedTemplateHash !== undefined &&
    templateDigest(deployment.spec.template) !== d.observedTemplateHash
  ) {
    return {
      action: 'historyChanged',
      message: `Deployment "${d.name}" changed after pre-validation decided to roll it back: its pod template is no longer the one seen then (resourceVersion ${d.observedResourceVersion ?? '?'}, now ${deployment.metadata.resourceVersion ?? '?'}), for example a newer release was rolled out; the plan did not patch it, so that release stays`,
    };
  }
  const plan = target ? planDeploymentRollback(deployment, replicaSets, d.toRevision ?? 0) : undefined;
  if (!plan || plan.action !== 'rollback' || plan.replicaSet !== d.replicaSet) {
    return {
      action: 'historyChanged',
      message: `the rollout history of "${d.name}" changed since pre-validation (replicaset "${d.replicaSet}" is no longer revision ${d.toRevision}); nothing was changed`,
    };
  }
  return { action: 'patch', plan };
}
