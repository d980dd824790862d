// What the informer caches keep of an object (client-go's cache.TransformFunc, as controller-runtime users
// apply with cache.Options.DefaultTransform = cache.TransformStripManagedFields()). Every cached object lives
// as long as the process; 10,000 Deployments in a watched namespace are most of the operator's memory.
import type { KubeObject, ResourceRef } from './rest.js';

export const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * metadata without managedFields (server-side apply bookkeeping, often larger than the object itself) and
 * without kubectl's last-applied-configuration annotation (a second copy of the whole object as JSON). No
 * controller reads either; anything that must write them back reads the object from the API server.
 */
export function leanMetadata(m: KubeObject['metadata']): KubeObject['metadata'] {
  if (!m) return m;
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const { managedFields, ...rest } = m as KubeObject['metadata'] & { managedFields?: unknown };
  if (rest.annotations && LAST_APPLIED in rest.annotations) {
    const { [LAST_APPLIED]: _lastApplied, ...annotations } = rest.annotations;
    rest.annotations = annotations;
  }
  return rest;
}

/** The default transform: the object with lean metadata, everything else as the API server sent it. */
export function leanObject(o: KubeObject): KubeObject {
  if (!o?.metadata) return o;
  return { ...o, metadata: leanMetadata(o.metadata) };
}

/**
 * A Deployment as the rollback controller's cache needs it: lean metadata, spec without the pod template,
 * status. Read from the cache: metadata (name, generation, uid, annotations such as the revision, labels),
 * spec.replicas / paused / selector / strategy, and status (rollout progress, DeploymentUnavailable
 * triggers). The pod template (the bulk of a real Deployment) is only ever needed to roll back, and that
 * reads the Deployment and its ReplicaSets from the API server (deployment-io.ts), as kubectl does.
 */
export function leanDeployment(d: KubeObject): KubeObject {
  if (!d?.metadata) return d;
  const out: KubeObject = { ...d, metadata: leanMetadata(d.metadata) };
  if (d.spec && typeof d.spec === 'object') {
    // eslint-disable-next-line @typescript-eslint/no-unused-vars
    const { template, ...spec } = d.spec as Record<string, unknown>;
    out.spec = spec;
  }
  return out;
}

/**
 * The transform of a resource's informer: Deployments lose their pod template (leanDeployment), everything
 * else only its managedFields and last-applied annotation (leanObject).
 */
export function cacheTransform(ref: Pick<ResourceRef, 'group' | 'plural'>): (o: KubeObject) => KubeObject {
  if (ref.group === 'apps' && ref.plural === 'deployments') return leanDeployment;
  return leanObject;
}
