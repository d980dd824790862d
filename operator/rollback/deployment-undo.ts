// Decides what `kubectl rollout undo deployment/X [--to-revision=N]` would do, as a pure function of the
// Deployment and its ReplicaSets. Ported from kubectl's polymorphichelpers/rollback.go
// (DeploymentRollbacker.Rollback) and util/deployment/deployment.go; the order of checks and the user-facing
// messages are kubectl's so operators and kubectl users see the same behaviour.
import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';

export const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision';
export const POD_TEMPLATE_HASH_LABEL = 'pod-template-hash';
export const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';

/** Annotations kept from the Deployment, never copied from the ReplicaSet (kubectl's annotationsToSkip). */
export const ANNOTATIONS_TO_SKIP: ReadonlySet<string> = new Set([
  LAST_APPLIED_ANNOTATION,
  REVISION_ANNOTATION,
  'deployment.kubernetes.io/revision-history',
  'deployment.kubernetes.io/desired-replicas',
  'deployment.kubernetes.io/max-replicas',
  'deprecated.deployment.rollback.to',
]);

// Raw wire JSON (read through CustomObjectsApi), typed only as far as this module looks into it.
export interface OwnerReference {
  uid?: string;
  controller?: boolean;
  [field: string]: unknown;
}
export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string | null;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  [field: string]: unknown;
}
export interface Container {
  name: string;
  image?: string;
  [field: string]: unknown;
}
export interface PodTemplate {
  metadata?: ObjectMeta;
  spec?: { containers?: Container[]; initContainers?: Container[]; [field: string]: unknown };
  [field: string]: unknown;
}
export interface LabelSelectorRequirement {
  key: string;
  operator: string;
  values?: string[];
}
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}
export interface RawDeployment {
  metadata: ObjectMeta;
  spec: { selector?: LabelSelector; paused?: boolean; template: PodTemplate; [field: string]: unknown };
  [field: string]: unknown;
}
export interface RawReplicaSet {
  metadata: ObjectMeta;
  spec?: { template?: PodTemplate; [field: string]: unknown };
  [field: string]: unknown;
}

export interface JsonPatchOp {
  op: 'replace' | 'add';
  path: string;
  value: unknown;
}

export type RefuseReason = 'RevisionNotFound' | 'NoRolloutHistory' | 'DeploymentPaused' | 'InvalidRevision';

/** Fields every plan carries so a report can say where the Deployment is and what was asked. */
interface PlanBase {
  /** Revision the Deployment runs now; null when no ReplicaSet matches its template yet. */
  fromRevision: number | null;
  /** Revision that was asked for; 0 means "the previous one", as in kubectl. */
  requestedRevision: number;
  /** What kubectl prints as `Warning: ...` before acting (e.g. about kubectl apply's annotation). */
  warnings: string[];
}
export interface RollbackPlan extends PlanBase {
  action: 'rollback';
  /** Revision of the ReplicaSet whose template is restored. */
  toRevision: number;
  replicaSet: string;
  template: PodTemplate;
  annotations: Record<string, string>;
  patch: JsonPatchOp[];
}
export interface SkipPlan extends PlanBase {
  action: 'skip';
  reason: 'AlreadyAtRevision';
  toRevision: number;
  message: string;
}
export interface RefusePlan extends PlanBase {
  action: 'refuse';
  reason: RefuseReason;
  /** Resolved target revision; null when the lookup itself failed. */
  toRevision: number | null;
  message: string;
}
export type DeploymentRollbackPlan = RollbackPlan | SkipPlan | RefusePlan;

/**
 * kubectl's deploymentutil.Revision: a missing annotation is revision 0; an unparsable one is undefined and
 * the ReplicaSet is skipped. Go's strconv.ParseInt accepts an optional sign and decimal digits only.
 */
export function revisionOf(obj: { metadata?: ObjectMeta }): number | undefined {
  const value = obj.metadata?.annotations?.[REVISION_ANNOTATION];
  if (value === undefined) return 0;
  if (!/^[+-]?\d+$/.test(value)) return undefined;
  const n = Number(value);
  // Outside int64 ParseInt fails; beyond 2^53 we would lose precision, which no real revision reaches.
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Deep copy of a pod template without the `pod-template-hash` label the ReplicaSet controller adds. */
export function withoutHashLabel(template: PodTemplate): PodTemplate {
  const copy = structuredClone(template);
  const labels = copy.metadata?.labels;
  if (labels && POD_TEMPLATE_HASH_LABEL in labels) {
    delete labels[POD_TEMPLATE_HASH_LABEL];
    // Go's omitempty drops the emptied map when kubectl serialises the template; do the same.
    if (Object.keys(labels).length === 0) delete copy.metadata!.labels;
  }
  return copy;
}

// Map-typed fields inside a PodTemplateSpec. Semantic.DeepEqual treats a nil map like an empty one, but a nil
// struct pointer differs from an empty struct (`emptyDir: {}`, `securityContext: {}`); JSON cannot tell
// them apart, so the map fields are named here.
const MAP_FIELDS = new Set([
  'labels',
  'annotations',
  'nodeSelector',
  'overhead',
  'limits',
  'requests',
  'matchLabels',
  'volumeAttributes',
  'options',
]);

// Rewrites wire JSON so that values Go decodes identically compare equal: null and [] mean "absent"
// (nil == empty slice), and so does {} for map fields. Quantities are already canonical: the API server
// serialises them in canonical form.
function semantic(value: unknown, key = ''): unknown {
  if (value === null) return undefined;
  if (Array.isArray(value)) return value.length === 0 ? undefined : value.map((v) => semantic(v));
  if (typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const n = semantic(v, k);
    if (n !== undefined) out[k] = n;
  }
  return MAP_FIELDS.has(key) && Object.keys(out).length === 0 ? undefined : out;
}

/** kubectl's equalIgnoreHash: pod templates equal under Semantic.DeepEqual, ignoring `pod-template-hash`. */
export function equalIgnoreHash(a: PodTemplate | undefined, b: PodTemplate | undefined): boolean {
  return isDeepStrictEqual(semantic(withoutHashLabel(a ?? {})), semantic(withoutHashLabel(b ?? {})));
}

/**
 * sha256 of a pod template as equalIgnoreHash sees it (no pod-template-hash, null/[]/{} as absent, keys
 * sorted): two templates equal under equalIgnoreHash have the same digest. Not kubectl's; the rollback
 * records it to notice a Deployment that changed after the decision to roll it back.
 */
export function templateDigest(template: PodTemplate | undefined): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canonical)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.keys(v)
              .sort()
              .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
          )
        : v;
  const json = JSON.stringify(canonical(semantic(withoutHashLabel(template ?? {}))) ?? null);
  return createHash('sha256').update(json).digest('hex');
}

/**
 * The label selector string kubectl lists ReplicaSets with (metav1.LabelSelectorAsSelector(...).String()):
 * requirements sorted by key, set values sorted. Throws on what the API server would reject anyway.
 */
export function selectorString(selector: LabelSelector | undefined): string {
  const reqs: { key: string; text: string }[] = [];
  for (const [key, value] of Object.entries(selector?.matchLabels ?? {}))
    reqs.push({ key, text: `${key}=${value}` });
  for (const { key, operator, values = [] } of selector?.matchExpressions ?? []) {
    const set = () => {
      if (values.length === 0)
        throw new Error(`label selector: operator ${operator} on "${key}" needs values`);
      return `(${[...values].sort().join(',')})`;
    };
    const text =
      operator === 'In'
        ? `${key} in ${set()}`
        : operator === 'NotIn'
          ? `${key} notin ${set()}`
          : operator === 'Exists'
            ? key
            : operator === 'DoesNotExist'
              ? `!${key}`
              : undefined;
    if (text === undefined)
      throw new Error(`label selector: "${operator}" is not a valid operator for "${key}"`);
    reqs.push({ key, text });
  }
  return reqs
    .sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0))
    .map((r) => r.text)
    .join(',');
}

/** metav1.IsControlledBy: the controller owner reference points at this Deployment's UID. */
export function isControlledBy(rs: RawReplicaSet, deployment: RawDeployment): boolean {
  const uid = deployment.metadata.uid;
  return (rs.metadata.ownerReferences ?? []).some((o) => o.controller === true && o.uid === uid);
}

const creationTime = (rs: RawReplicaSet) => {
  const t = rs.metadata.creationTimestamp;
  return t ? Date.parse(t) : Number.NEGATIVE_INFINITY; // Go's zero time sorts first
};

/**
 * The ReplicaSets kubectl considers, in kubectl's order: controlled ones sorted by creation time then name,
 * with the "new" ReplicaSet (the oldest one matching the Deployment's template) moved to the end. The order
 * decides ties between equal revisions, so it is kept.
 */
function history(deployment: RawDeployment, replicaSets: RawReplicaSet[]) {
  const owned = replicaSets
    .filter((rs) => isControlledBy(rs, deployment))
    .sort(
      (x, y) =>
        creationTime(x) - creationTime(y) ||
        ((x.metadata.name ?? '') < (y.metadata.name ?? '')
          ? -1
          : (x.metadata.name ?? '') > (y.metadata.name ?? '')
            ? 1
            : 0),
    );
  const current = owned.find((rs) => equalIgnoreHash(rs.spec?.template, deployment.spec.template));
  const ordered = current ? [...owned.filter((rs) => rs !== current), current] : owned;
  return { current, ordered };
}

/**
 * kubectl's deploymentRevision: the controlled ReplicaSet with revision `toRevision`, or for 0 the one with
 * the second-highest revision. Undefined when there is none (or `toRevision` is negative).
 */
export function findRevisionReplicaSet(
  deployment: RawDeployment,
  replicaSets: RawReplicaSet[],
  toRevision: number,
): RawReplicaSet | undefined {
  if (!Number.isInteger(toRevision) || toRevision < 0) return undefined;
  let latest = -1;
  let previous = -1;
  let latestRS: RawReplicaSet | undefined;
  let previousRS: RawReplicaSet | undefined;
  for (const rs of history(deployment, replicaSets).ordered) {
    const v = revisionOf(rs);
    if (v === undefined) continue;
    if (toRevision > 0) {
      if (v === toRevision) return rs;
    } else if (latest < v) {
      [previous, previousRS, latest, latestRS] = [latest, latestRS, v, rs];
    } else if (previous < v) {
      [previous, previousRS] = [v, rs];
    }
  }
  return toRevision > 0 ? undefined : previousRS;
}

/** Revision the Deployment runs now: its current ReplicaSet's, else the controller's annotation on it. */
function currentRevision(deployment: RawDeployment, replicaSets: RawReplicaSet[]): number | null {
  const { current } = history(deployment, replicaSets);
  if (current) return revisionOf(current) ?? null;
  if (deployment.metadata.annotations?.[REVISION_ANNOTATION] === undefined) return null;
  return revisionOf(deployment) ?? null;
}

/** kubectl's annotation rule: bookkeeping keys from the Deployment, everything else from the ReplicaSet. */
function rollbackAnnotations(deployment: RawDeployment, rs: RawReplicaSet): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of ANNOTATIONS_TO_SKIP) {
    const v = deployment.metadata.annotations?.[key];
    if (v !== undefined) out[key] = v;
  }
  for (const [key, v] of Object.entries(rs.metadata.annotations ?? {})) {
    if (!ANNOTATIONS_TO_SKIP.has(key)) out[key] = v;
  }
  return out;
}

/** kubectl rollout undo warns (and goes on) when `kubectl apply` manages the Deployment. */
function undoWarnings(deployment: RawDeployment): string[] {
  if (deployment.metadata.annotations?.[LAST_APPLIED_ANNOTATION] === undefined) return [];
  return [
    `resource deployments/${deployment.metadata.name ?? ''} was previously managed with 'kubectl apply'. ` +
      `Rolling back will not update the ${LAST_APPLIED_ANNOTATION} annotation, which may cause unexpected ` +
      `behavior on future 'kubectl apply' operations. Consider using 'kubectl apply' with your previous ` +
      `configuration file instead.`,
  ];
}

/**
 * What `kubectl rollout undo` would do: refuse (with kubectl's message), skip, or roll back with a JSON patch.
 * The patch starts with a resourceVersion precondition, which kubectl lacks, so a Deployment changed since
 * it was read is rejected with 409 Conflict instead of silently overwritten.
 */
export function planDeploymentRollback(
  deployment: RawDeployment,
  replicaSets: RawReplicaSet[],
  toRevision = 0,
): DeploymentRollbackPlan {
  const name = deployment.metadata.name ?? '';
  const base = {
    fromRevision: currentRevision(deployment, replicaSets),
    requestedRevision: toRevision,
    warnings: undoWarnings(deployment),
  };
  const refuse = (reason: RefuseReason, message: string, resolved: number | null = null): RefusePlan => ({
    ...base,
    action: 'refuse',
    reason,
    toRevision: resolved,
    message,
  });
  if (!Number.isInteger(toRevision) || toRevision < 0) {
    return refuse('InvalidRevision', `unable to find specified revision ${toRevision} in history`);
  }
  const rs = findRevisionReplicaSet(deployment, replicaSets, toRevision);
  if (!rs) {
    return toRevision > 0
      ? refuse('RevisionNotFound', `unable to find specified revision ${toRevision} in history`)
      : refuse('NoRolloutHistory', `no rollout history found for deployment "${name}"`);
  }
  const resolved = revisionOf(rs) ?? 0; // found by its revision, so it parsed
  if (deployment.spec.paused) {
    return refuse(
      'DeploymentPaused',
      // kubectl 1.36's exact text; older releases named the deployment after `resume`.
      "you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume' and try again",
      resolved,
    );
  }
  if (equalIgnoreHash(rs.spec?.template, deployment.spec.template)) {
    return {
      ...base,
      action: 'skip',
      reason: 'AlreadyAtRevision',
      toRevision: resolved,
      // kubectl prints the requested number here, so a plain undo says "revision 0".
      message: `skipped rollback (current template already matches revision ${toRevision})`,
    };
  }
  const resourceVersion = deployment.metadata.resourceVersion;
  if (!resourceVersion) {
    throw new Error(
      `deployment "${name}" has no metadata.resourceVersion; plan from an object read from the API`,
    );
  }
  const template = withoutHashLabel(rs.spec?.template ?? {});
  const annotations = rollbackAnnotations(deployment, rs);
  return {
    ...base,
    action: 'rollback',
    toRevision: resolved,
    replicaSet: rs.metadata.name ?? '',
    template,
    annotations,
    patch: [
      // Precondition: the API server answers 409 Conflict when the stored resourceVersion differs. A JSON
      // patch `test` op would also stop the write, but kube-apiserver (1.36) reports a failed test as a
      // generic 422 Invalid that callers cannot tell apart from a malformed patch.
      { op: 'replace', path: '/metadata/resourceVersion', value: resourceVersion },
      { op: 'replace', path: '/spec/template', value: template },
      // kubectl uses replace; add also creates the map when the Deployment has no annotations at all.
      { op: 'add', path: '/metadata/annotations', value: annotations },
    ],
  };
}
