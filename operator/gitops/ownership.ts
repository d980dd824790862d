// Who applies a Deployment from Git: Flux (kustomize-controller or helm-controller labels) or Argo CD (the
// tracking-id annotation, or the weaker instance label). Pure: reads only the object's own metadata.
// Sources: ../shared/research/gitops-and-triggers.md §1 (fluxcd/pkg/ssa SetOwnerLabels, helm-controller
// origin labels, Argo CD util/argo/resource_tracking.go).
// Every value copied from a label or annotation is bounded: label values are at most 63 characters, but the
// tracking-id annotation may be ~256 KiB, and what this returns ends up in status, conditions and Events.
import { boundText } from '../kube/bounded.js';

export const FLUX_KUSTOMIZE_NAME = 'kustomize.toolkit.fluxcd.io/name';
export const FLUX_KUSTOMIZE_NAMESPACE = 'kustomize.toolkit.fluxcd.io/namespace';
export const FLUX_HELM_NAME = 'helm.toolkit.fluxcd.io/name';
export const FLUX_HELM_NAMESPACE = 'helm.toolkit.fluxcd.io/namespace';
export const ARGOCD_TRACKING_ID = 'argocd.argoproj.io/tracking-id';
export const ARGOCD_INSTANCE_LABEL = 'app.kubernetes.io/instance';

export interface GitOpsOwner {
  tool: 'flux' | 'argocd';
  /** Flux: Kustomization or HelmRelease; Argo CD: Application. */
  kind: 'Kustomization' | 'HelmRelease' | 'Application';
  name: string;
  /** Absent for an Argo CD Application in the Argo CD control-plane namespace (not known from the object). */
  namespace?: string;
  /** What the answer rests on: the labels or annotation named, and how strong that is. */
  evidence: string;
  /** True when the evidence alone may be wrong (the instance label is also Helm's standard label). */
  weak?: boolean;
}

interface Meta {
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** Longest object name (DNS subdomain) and namespace (DNS label) kept from a label or annotation value. */
export const OWNER_NAME_MAX = 253;
export const OWNER_NAMESPACE_MAX = 63;
const ownerName = (s: string) => boundText(s, OWNER_NAME_MAX);
const ownerNamespace = (s: string) => boundText(s, OWNER_NAMESPACE_MAX);

export interface ObjectIdentity {
  group: string;
  kind: string;
}

/**
 * Parses an Argo CD tracking id `<app>:<group>/<kind>:<namespace>/<name>` (ParseAppInstanceValue: split on the
 * first two colons, each part into exactly two pieces on `/`); `<app>` is `<appNamespace>_<appName>` for apps in
 * any namespace. Returns undefined for a malformed value.
 */
export function parseTrackingId(
  value: string,
):
  | { app: string; appNamespace?: string; group: string; kind: string; namespace: string; name: string }
  | undefined {
  const parts = value.split(':');
  if (parts.length < 3) return undefined;
  const [appPart, gk] = parts;
  const nn = parts.slice(2).join(':');
  const gkPieces = gk!.split('/');
  const nnPieces = nn.split('/');
  if (gkPieces.length !== 2 || nnPieces.length !== 2 || !appPart) return undefined;
  const us = appPart.indexOf('_');
  const [appNamespace, app] = us >= 0 ? [appPart.slice(0, us), appPart.slice(us + 1)] : [undefined, appPart];
  if (!app) return undefined;
  return {
    app,
    ...(appNamespace ? { appNamespace } : {}),
    group: gkPieces[0]!,
    kind: gkPieces[1]!,
    namespace: nnPieces[0]!,
    name: nnPieces[1]!,
  };
}

/**
 * The GitOps owner of an object from its metadata, strongest evidence first: Flux kustomize labels, Flux helm
 * labels, an Argo CD tracking id that points at this very object (a copied annotation does not count, as in
 * Argo CD), then the instance label (weak). Undefined when nothing says the object comes from Git.
 */
export function gitOpsOwner(meta: Meta, id: ObjectIdentity = { group: 'apps', kind: 'Deployment' }) {
  const labels = meta.labels ?? {};
  const annotations = meta.annotations ?? {};
  const ks = labels[FLUX_KUSTOMIZE_NAME];
  if (ks) {
    const owner: GitOpsOwner = {
      tool: 'flux',
      kind: 'Kustomization',
      name: ownerName(ks),
      evidence: `labels ${FLUX_KUSTOMIZE_NAME}, ${FLUX_KUSTOMIZE_NAMESPACE}`,
    };
    if (labels[FLUX_KUSTOMIZE_NAMESPACE]) owner.namespace = ownerNamespace(labels[FLUX_KUSTOMIZE_NAMESPACE]);
    return owner;
  }
  const hr = labels[FLUX_HELM_NAME];
  if (hr) {
    const owner: GitOpsOwner = {
      tool: 'flux',
      kind: 'HelmRelease',
      name: ownerName(hr),
      evidence: `labels ${FLUX_HELM_NAME}, ${FLUX_HELM_NAMESPACE}`,
    };
    if (labels[FLUX_HELM_NAMESPACE]) owner.namespace = ownerNamespace(labels[FLUX_HELM_NAMESPACE]);
    return owner;
  }
  const tracking = annotations[ARGOCD_TRACKING_ID];
  if (tracking) {
    const t = parseTrackingId(tracking);
    const self =
      t &&
      t.group === id.group &&
      t.kind === id.kind &&
      t.name === meta.name &&
      (meta.namespace === undefined || t.namespace === meta.namespace);
    if (t && self) {
      const owner: GitOpsOwner = {
        tool: 'argocd',
        kind: 'Application',
        name: ownerName(t.app),
        evidence: `annotation ${ARGOCD_TRACKING_ID}`,
      };
      if (t.appNamespace) owner.namespace = ownerNamespace(t.appNamespace);
      return owner;
    }
  }
  const instance = labels[ARGOCD_INSTANCE_LABEL];
  if (instance) {
    const us = instance.indexOf('_');
    const owner: GitOpsOwner = {
      tool: 'argocd',
      kind: 'Application',
      name: ownerName(us >= 0 ? instance.slice(us + 1) : instance),
      evidence: `label ${ARGOCD_INSTANCE_LABEL} (also Helm's standard label: weak evidence)`,
      weak: true,
    };
    if (us >= 0) owner.namespace = ownerNamespace(instance.slice(0, us));
    return owner;
  }
  return undefined;
}

/**
 * What weak evidence allows saying, neutrally: the instance label is also Helm's standard label, so most
 * Helm-installed Deployments carry it without any Argo CD in sight. Not for summaries or warnings.
 */
export function weakOwnerNote(o: GitOpsOwner): string {
  const ref = o.namespace ? `${o.namespace}/${o.name}` : o.name;
  return `may be managed by Argo CD Application ${ref} (label ${ARGOCD_INSTANCE_LABEL}, also set by Helm)`;
}

/** "Flux Kustomization flux-system/app" for messages. */
export function describeOwner(o: GitOpsOwner): string {
  const tool = o.tool === 'flux' ? 'Flux' : 'Argo CD';
  const ref = o.namespace ? `${o.namespace}/${o.name}` : o.name;
  return `${tool} ${o.kind} ${ref}${o.weak ? ' (probably)' : ''}`;
}
