import type { KubeObject } from '../kube/rest.js';
import type { TriggerObservation } from './types.js';

/**
 * DeploymentUnavailable, observed from the Deployment as the watch delivered it: bad while fewer than
 * minAvailable (default 1, never more than spec.replicas) replicas are available. A Deployment scaled to zero
 * is not unavailable; one that does not exist cannot be evaluated (a typo must not roll production back), nor
 * can a paused one (a rollback would refuse it: CheckNotPaused). A status that lags its spec
 * (observedGeneration < generation) says nothing yet: undefined, which changes no state.
 */
export function deploymentAvailability(
  name: string,
  dep: KubeObject | undefined,
  minAvailable: number | undefined,
  now: Date,
): TriggerObservation | undefined {
  if (!dep)
    return {
      kind: 'error',
      at: now,
      reason: 'DeploymentNotFound',
      observed: `Deployment "${name}" not found`,
    };
  if (dep.spec?.paused === true)
    return {
      kind: 'error',
      at: now,
      reason: 'DeploymentPaused',
      observed: `Deployment "${name}" is paused: not evaluated (a paused Deployment is not rolled back)`,
    };
  const generation = dep.metadata.generation;
  const seen = dep.status?.observedGeneration;
  if (typeof generation === 'number' && (typeof seen !== 'number' || seen < generation)) return undefined;
  const replicas: number = dep.spec?.replicas ?? 1;
  if (replicas <= 0) return { kind: 'good', at: now, observed: `Deployment "${name}" is scaled to 0` };
  const need = Math.min(minAvailable ?? 1, replicas);
  const available: number = dep.status?.availableReplicas ?? 0;
  const observed = `Deployment "${name}": ${available} of ${replicas} replicas available (fires below ${need})`;
  return { kind: available < need ? 'bad' : 'good', at: now, observed };
}
