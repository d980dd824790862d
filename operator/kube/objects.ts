import { createHash } from 'node:crypto';
import type { KubeObject, OwnerReference } from './rest.js';

/** The controller owner reference (controllerutil.SetControllerReference): garbage collection follows it. */
export function controllerRef(owner: KubeObject): OwnerReference {
  if (!owner.apiVersion || !owner.kind || !owner.metadata.uid) {
    throw new Error(`owner ${owner.metadata.name} lacks apiVersion, kind or uid`);
  }
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: owner.metadata.name,
    uid: owner.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** True when `obj` is controlled by `owner` (metav1.IsControlledBy). */
export function isControlledBy(obj: KubeObject, owner: { metadata: { uid?: string } }): boolean {
  return (obj.metadata.ownerReferences ?? []).some(
    (r) => r.controller === true && r.uid === owner.metadata.uid,
  );
}

/** The controller owner reference of `obj`, if any. */
export function controllerOf(obj: KubeObject): OwnerReference | undefined {
  return (obj.metadata.ownerReferences ?? []).find((r) => r.controller === true);
}

export function hasFinalizer(obj: KubeObject, finalizer: string): boolean {
  return (obj.metadata.finalizers ?? []).includes(finalizer);
}

/**
 * `<parent>-<suffix>`, deterministic. Kubernetes object names are at most 253 characters, label values 63: a
 * name that would be longer keeps the start of the parent plus 8 hex of its full name, so two parents that
 * differ only in what is cut off never get the same child (names that fit are unchanged).
 */
export function childName(parent: string, suffix: string, max = 63): string {
  const full = `${parent}-${suffix}`;
  if (full.length <= max) return full;
  const hash = createHash('sha256').update(parent).digest('hex').slice(0, 8);
  const head = parent.slice(0, Math.max(0, max - suffix.length - hash.length - 2)).replace(/-+$/, '');
  return `${head ? `${head}-` : ''}${hash}-${suffix}`;
}
