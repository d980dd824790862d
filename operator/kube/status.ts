import type { KubeClient, KubeObject, ResourceRef } from './rest.js';

/**
 * Writes `status` through the /status subresource with a JSON merge patch that carries the resourceVersion
 * the caller decided on: if the object changed since (a stale cache, a second writer), the API server answers
 * 409 and the controller requeues and decides again, so a journal entry is never overwritten by an older view.
 * Merge patch replaces lists wholesale, so callers always send whole lists (conditions, steps).
 */
export function patchStatus<T extends KubeObject>(
  client: KubeClient,
  ref: Omit<ResourceRef, 'subresource'>,
  resourceVersion: string | undefined,
  status: unknown,
): Promise<T> {
  return client.patch<T>({ ...ref, subresource: 'status' }, 'merge', {
    metadata: resourceVersion ? { resourceVersion } : {},
    status,
  });
}
