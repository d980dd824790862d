// Reads a Deployment's rollout history and applies a rollback plan. Everything is raw JSON through KubeClient:
// typed client models drop fields the client does not know, and a pod template restored from such a read
// would silently lose them. KubeApiErrors propagate; callers classify them (404, 409, ...).
import type { KubeClient, KubeObject } from '../kube/rest.js';
import { Semaphore } from '../notify/semaphore.js';
import {
  equalIgnoreHash,
  isControlledBy,
  REVISION_ANNOTATION,
  revisionOf,
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
 * API requests of Deployment history reads in flight at once in this process, over all plans and workers:
 * 16 plan workers x 8 targets x 2 requests would otherwise be 256 against one API server flow (the leader
 * Lease renewal uses the same client and is not counted here). A 16-plan burst of one target each (32) fits.
 */
export const HISTORY_REQUESTS_IN_FLIGHT = 32;
const historyRequests = new Semaphore(HISTORY_REQUESTS_IN_FLIGHT);

/** Runs `fn` holding one of `slots`; the slot is given back however `fn` ends. */
export async function withSlot<T>(slots: Semaphore, fn: () => Promise<T>): Promise<T> {
  const release = await slots.acquire();
  try {
    return await fn();
  } finally {
    release();
  }
}

/**
 * The Deployment and its ReplicaSets, read fresh from the API server (kubectl reads; it trusts no cache).
 *
 * kubectl sends the GET and then the LIST (its selector comes from the GET), so the LIST holds every
 * ReplicaSet the deployment controller wrote before the GET was served. With `cached`, the Deployment as the
 * watch cache holds it, both go at once, the LIST with the cached selector: one round trip instead of two on
 * a worker's path. Two requests sent at once may be served in either order, so the parallel LIST is used only
 * when it shows what the GET implies (listIsFresh): a ReplicaSet controlled by the Deployment with its
 * template and its revision. Otherwise (a rollout or an undo in between; the Deployment recreated with another
 * selector) the LIST is sent again after the GET, as kubectl does. The decision never uses the cached object,
 * only its selector. A failed GET (404: the target does not exist) is the error reported, whatever the LIST
 * answered. Every request holds one of `slots` (process-wide by default) while in flight.
 */
export async function readDeploymentHistory(
  client: KubeClient,
  namespace: string,
  name: string,
  cached?: KubeObject,
  slots: Semaphore = historyRequests,
): Promise<DeploymentHistory> {
  // KubeClient.list follows continue tokens like kubectl (resource.FollowContinue): histories are never cut short.
  const listBy = async (labelSelector: string) =>
    (
      await withSlot(slots, () =>
        client.list<RawReplicaSet>(apps('replicasets', namespace), { labelSelector }),
      )
    ).items;
  const getDeployment = () =>
    withSlot(slots, () => client.get<RawDeployment>(apps('deployments', namespace, name)));
  const hint = cachedSelector(cached);
  if (hint === undefined) {
    const deployment = await getDeployment();
    return { deployment, replicaSets: await listBy(selectorString(deployment.spec.selector)) };
  }
  const [got, listed] = await Promise.allSettled([getDeployment(), listBy(hint)]);
  if (got.status === 'rejected') throw got.reason;
  const deployment = got.value;
  const selector = selectorString(deployment.spec.selector);
  if (selector !== hint) return { deployment, replicaSets: await listBy(selector) };
  if (listed.status === 'rejected') throw listed.reason;
  if (!listIsFresh(deployment, listed.value)) return { deployment, replicaSets: await listBy(selector) };
  return { deployment, replicaSets: listed.value };
}

/**
 * Whether a LIST sent together with the GET is at least as new as the GET for what the decision needs: it
 * holds a ReplicaSet controlled by the Deployment (its UID) whose template is the Deployment's and whose
 * revision is the Deployment's revision annotation. The deployment controller creates (or re-numbers) that
 * ReplicaSet before it writes the annotation, so a LIST served before that write fails the check. A
 * Deployment without the annotation, or whose template the controller has not acted on yet, fails it too:
 * then the caller lists again, which costs one LIST and decides as kubectl would.
 */
function listIsFresh(deployment: RawDeployment, replicaSets: RawReplicaSet[]): boolean {
  if (deployment.metadata.annotations?.[REVISION_ANNOTATION] === undefined) return false;
  const revision = revisionOf(deployment);
  if (revision === undefined) return false;
  return replicaSets.some(
    (rs) =>
      isControlledBy(rs, deployment) &&
      revisionOf(rs) === revision &&
      equalIgnoreHash(rs.spec?.template, deployment.spec.template),
  );
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
