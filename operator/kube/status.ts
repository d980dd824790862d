import { isDeepStrictEqual } from 'node:util';
import { setCondition, type Condition } from './conditions.js';
import { isInvalid, TerminalError, userFixableRejection } from './errors.js';
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

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The JSON merge patch (RFC 7386) that turns `before` into `after`: changed keys with their new values, keys
 * `after` lacks as null (removed), nested objects as their own patch, lists whole. Sent with the
 * resourceVersion `before` was read at, so the object the API server merges it into is `before`, and a
 * replaced object (a new lastSuccessfulBackup without sha256) keeps none of the old one's keys. Pure.
 */
export function mergePatchFor(before: unknown, after: unknown): unknown {
  if (!isPlainObject(before) || !isPlainObject(after)) return after;
  const patch: Record<string, unknown> = {};
  for (const key of Object.keys(before)) if (!(key in after) || after[key] === undefined) patch[key] = null;
  for (const [key, value] of Object.entries(after)) {
    if (value === undefined) continue;
    if (isDeepStrictEqual(before[key], value)) continue;
    patch[key] =
      isPlainObject(before[key]) && isPlainObject(value) ? mergePatchFor(before[key], value) : value;
  }
  return patch;
}

/**
 * patchStatus for a status the API server may refuse with 422 (a value its schema does not allow: the
 * operator bounds what it writes, so an older CRD or a bug). Retrying would fail the same way forever and
 * leave the object silent, so `fallback(message)` (a small status that says so) is written instead, and
 * TerminalError ends the reconcile without a retry.
 */
export async function patchStatusOrReport<T extends KubeObject>(
  client: KubeClient,
  ref: Omit<ResourceRef, 'subresource'>,
  resourceVersion: string | undefined,
  status: unknown,
  fallback: (message: string) => unknown,
): Promise<T> {
  try {
    return await patchStatus<T>(client, ref, resourceVersion, status);
  } catch (e) {
    if (!isInvalid(e)) throw e;
    const message = `the API server rejected the status update, so this object cannot report its state (is the installed CRD older than the operator? otherwise, please report a bug): ${userFixableRejection(e)?.message ?? ''}`;
    await patchStatus(client, ref, resourceVersion, fallback(message));
    throw new TerminalError('StatusRejected', message);
  }
}

/** `conditions` with Ready=False, Stalled=True and Reconciling=False, reason StatusRejected. */
export function statusRejectedConditions(
  conditions: readonly Condition[] | undefined,
  message: string,
  observedGeneration: number,
  now: Date,
): Condition[] {
  let list = [...(conditions ?? [])];
  const reason = 'StatusRejected';
  for (const c of [
    { type: 'Ready', status: 'False' as const, reason, message },
    { type: 'Stalled', status: 'True' as const, reason, message },
    { type: 'Reconciling', status: 'False' as const, reason, message: '' },
  ])
    list = setCondition(list, { ...c, observedGeneration }, now);
  return list;
}
