// Reads a Deployment's rollout history and applies a rollback plan. Everything is raw JSON through KubeClient:
// typed client models drop fields the client does not know, and a pod template restored from such a read
// would silently lose them. KubeApiErrors propagate; callers classify them (404, 409, ...).
import type { KubeClient, KubeObject } from '../kube/rest.js';
import {
  selectorString,
  type LabelSelector,
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

/**
 * The Deployment and its ReplicaSets, read fresh from the API server (kubectl reads; it trusts no cache).
 *
 * kubectl sends the GET and then the LIST (its selector comes from the GET). With `cached`, the Deployment as
 * the watch cache holds it, both go at once, the LIST with the cached selector: one round trip instead of two
 * on a worker's path. A Deployment's selector is immutable (apps/v1), so the two agree unless the Deployment
 * was deleted and recreated with another one since the cache saw it: then the LIST is sent again with the
 * selector just read. The decision never uses the cached object, only its selector. A failed GET (404: the
 * target does not exist) is the error reported, whatever the LIST answered.
 */
export async function readDeploymentHistory(
  client: KubeClient,
  namespace: string,
  name: string,
  cached?: KubeObject,
): Promise<DeploymentHistory> {
  // KubeClient.list follows continue tokens like kubectl (resource.FollowContinue): histories are never cut short.
  const listBy = async (labelSelector: string) =>
    (await client.list<RawReplicaSet>(apps('replicasets', namespace), { labelSelector })).items;
  const hint = cachedSelector(cached);
  if (hint === undefined) {
    const deployment = await client.get<RawDeployment>(apps('deployments', namespace, name));
    return { deployment, replicaSets: await listBy(selectorString(deployment.spec.selector)) };
  }
  const [got, listed] = await Promise.allSettled([
    client.get<RawDeployment>(apps('deployments', namespace, name)),
    listBy(hint),
  ]);
  if (got.status === 'rejected') throw got.reason;
  const deployment = got.value;
  const selector = selectorString(deployment.spec.selector);
  if (selector !== hint) return { deployment, replicaSets: await listBy(selector) };
  if (listed.status === 'rejected') throw listed.reason;
  return { deployment, replicaSets: listed.value };
}

/** The selector string of a cached Deployment; undefined without one (or one the API server would refuse). */
function cachedSelector(cached: KubeObject | undefined): string | undefined {
  const selector = (cached?.spec as { selector?: LabelSelector } | undefined)?.selector;
  if (!selector) return undefined;
  try {
    return selectorString(selector);
  } catch {
    return undefined;
  }
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
