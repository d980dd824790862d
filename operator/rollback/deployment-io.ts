// Reads a Deployment's rollout history and applies a rollback plan. Everything is raw JSON through KubeClient:
// typed client models drop fields the client does not know, and a pod template restored from such a read
// would silently lose them. KubeApiErrors propagate; callers classify them (404, 409, ...).
import type { KubeClient } from '../kube/rest.js';
import {
  selectorString,
  type RawDeployment,
  type RawReplicaSet,
  type RollbackPlan,
} from './deployment-undo.js';

const apps = (plural: 'deployments' | 'replicasets', namespace: string, name?: string) => ({
  group: 'apps',
  version: 'v1',
  plural,
  namespace,
  ...(name ? { name } : {}),
});

export interface DeploymentHistory {
  deployment: RawDeployment;
  /** ReplicaSets matching the Deployment's selector; planDeploymentRollback keeps only the controlled ones. */
  replicaSets: RawReplicaSet[];
}

/** The Deployment and its ReplicaSets, read fresh from the API server (kubectl reads; it trusts no cache). */
export async function readDeploymentHistory(
  client: KubeClient,
  namespace: string,
  name: string,
): Promise<DeploymentHistory> {
  const deployment = await client.get<RawDeployment>(apps('deployments', namespace, name));
  // KubeClient.list follows continue tokens like kubectl (resource.FollowContinue): histories are never cut short.
  const list = await client.list<RawReplicaSet>(apps('replicasets', namespace), {
    labelSelector: selectorString(deployment.spec.selector),
  });
  return { deployment, replicaSets: list.items };
}

/**
 * Sends the plan's JSON patch. Its leading resourceVersion replace makes the API server answer 409 if the
 * Deployment changed after it was read. Returns the patched Deployment.
 */
export function applyDeploymentRollback(
  client: KubeClient,
  namespace: string,
  name: string,
  plan: RollbackPlan,
): Promise<RawDeployment> {
  return client.patch<RawDeployment>(apps('deployments', namespace, name), 'json', plan.patch);
}
