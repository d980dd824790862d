// Pausing and resuming a GitOps owner, as pure functions of the owner object: what "paused" means per kind, the
// patch that pauses it, the patch that puts back exactly what was there, and when to resume.
// Sources: ../shared/research/gitops-and-triggers.md §2.1 (Flux spec.suspend, as `flux suspend` merge-patches
// it), §2.3 (Argo CD: IsAutomatedSyncEnabled = automated != nil && enabled != false).
import { isDeepStrictEqual } from 'node:util';

export type OwnerKind = 'Kustomization' | 'HelmRelease' | 'Application';

/** The API resource of each owner kind, and of the Flux sources a Kustomization or HelmRelease reads. */
export const OWNER_RESOURCE = {
  Kustomization: { group: 'kustomize.toolkit.fluxcd.io', version: 'v1', plural: 'kustomizations' },
  HelmRelease: { group: 'helm.toolkit.fluxcd.io', version: 'v2', plural: 'helmreleases' },
  Application: { group: 'argoproj.io', version: 'v1alpha1', plural: 'applications' },
} as const;
export const FLUX_SOURCE_RESOURCE: Record<string, { group: string; version: string; plural: string }> = {
  GitRepository: { group: 'source.toolkit.fluxcd.io', version: 'v1', plural: 'gitrepositories' },
  OCIRepository: { group: 'source.toolkit.fluxcd.io', version: 'v1', plural: 'ocirepositories' },
  Bucket: { group: 'source.toolkit.fluxcd.io', version: 'v1', plural: 'buckets' },
  HelmChart: { group: 'source.toolkit.fluxcd.io', version: 'v1', plural: 'helmcharts' },
};

interface OwnerObject {
  metadata?: {
    name?: string;
    namespace?: string;
    annotations?: Record<string, string>;
    resourceVersion?: string;
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}
export type JsonPatchOp =
  | { op: 'add' | 'replace'; path: string; value: unknown }
  | { op: 'remove'; path: string }
  | { op: 'test'; path: string; value: unknown };

/** The field a pause changes, as it is now (undefined: not set). */
export function pausedField(kind: OwnerKind, obj: OwnerObject): unknown {
  return kind === 'Application' ? obj.spec?.syncPolicy : obj.spec?.suspend;
}

/** Whether the owner applies Git by itself now: Flux not suspended, Argo CD automated sync on. */
export function isPaused(kind: OwnerKind, obj: OwnerObject): boolean {
  if (kind !== 'Application') return obj.spec?.suspend === true;
  const automated = (obj.spec?.syncPolicy as { automated?: { enabled?: boolean } } | undefined)?.automated;
  return !automated || automated.enabled === false;
}

/**
 * The patch that pauses the owner. Flux: spec.suspend true (what `flux suspend` sets). Argo CD:
 * automated.enabled false, which keeps prune/selfHeal for the resume (a removed `automated` would lose them).
 * A test op on the field's current value makes a concurrent change fail the patch instead of being overwritten.
 */
export function pausePatch(kind: OwnerKind, obj: OwnerObject, planUid?: string): JsonPatchOp[] {
  const marker: JsonPatchOp[] =
    planUid === undefined
      ? []
      : obj.metadata?.annotations
        ? [{ op: 'add', path: `/metadata/annotations/${MARKER_POINTER}`, value: planUid }]
        : [{ op: 'add', path: '/metadata/annotations', value: { [SUSPENDED_BY]: planUid } }];
  // The whole patch applies only to the object as read: a concurrent change (an annotation map added, a
  // person's own pause of a Kustomization that had no spec.suspend) fails it, and the retry reads it again.
  const unchanged: JsonPatchOp[] = obj.metadata?.resourceVersion
    ? [{ op: 'test', path: '/metadata/resourceVersion', value: obj.metadata.resourceVersion }]
    : [];
  if (kind === 'Application') {
    return [
      ...unchanged,
      { op: 'test', path: '/spec/syncPolicy', value: obj.spec?.syncPolicy },
      { op: 'add', path: '/spec/syncPolicy/automated/enabled', value: false },
      ...marker,
    ];
  }
  const now = obj.spec?.suspend;
  return [
    ...unchanged,
    ...(now === undefined ? [] : [{ op: 'test' as const, path: '/spec/suspend', value: now }]),
    { op: 'add', path: '/spec/suspend', value: true },
    ...marker,
  ];
}

/**
 * The annotation our pause sets on the owner: the uid of the plan that paused it. An owner paused without it
 * was paused by someone else (never resumed by us); the resume patch removes it.
 */
export const SUSPENDED_BY = 'rollback.nxtnewday.io/suspended-by';
const MARKER_POINTER = SUSPENDED_BY.replace('~', '~0').replace('/', '~1');
/** The plan uid in the owner's suspended-by annotation, if any. */
export const suspendedBy = (obj: OwnerObject): string | undefined =>
  obj.metadata?.annotations?.[SUSPENDED_BY];

/** What the paused field looks like once our pause landed (to tell it from a change made by someone else). */
export function pausedValue(kind: OwnerKind, previous: unknown): unknown {
  if (kind !== 'Application') return true;
  const p = (previous ?? {}) as { automated?: Record<string, unknown> };
  return { ...p, automated: { ...p.automated, enabled: false } };
}

/** `previous` as recorded in status (JSON), back to a value; undefined = the field was not set. */
export const recordedValue = (previous: string | undefined): unknown =>
  previous === undefined ? undefined : JSON.parse(previous);

/**
 * Whether the owner holds exactly the recorded original again and is not paused: what our resume leaves (also
 * when its status write was lost before the operator stopped) or what a human restored by hand.
 */
export function holdsOriginal(kind: OwnerKind, obj: OwnerObject, previous: string | undefined): boolean {
  let before: unknown;
  try {
    before = recordedValue(previous);
  } catch {
    return false;
  }
  return !isPaused(kind, obj) && isDeepStrictEqual(pausedField(kind, obj), before);
}

/**
 * The patch that restores exactly what was there before the pause, or `changed` when the field is no longer
 * what our pause left (someone resumed or edited it since): then it is left alone.
 */
export function restorePatch(
  kind: OwnerKind,
  obj: OwnerObject,
  previous: string | undefined,
): JsonPatchOp[] | 'changed' {
  const before = recordedValue(previous);
  const now = pausedField(kind, obj);
  if (!isDeepStrictEqual(now, pausedValue(kind, before))) return 'changed';
  const path = kind === 'Application' ? '/spec/syncPolicy' : '/spec/suspend';
  const test: JsonPatchOp = { op: 'test', path, value: now };
  const marker = suspendedBy(obj);
  const unmark: JsonPatchOp[] =
    marker === undefined
      ? []
      : [
          { op: 'test', path: `/metadata/annotations/${MARKER_POINTER}`, value: marker },
          { op: 'remove', path: `/metadata/annotations/${MARKER_POINTER}` },
        ];
  return before === undefined
    ? [test, { op: 'remove', path }, ...unmark]
    : [test, { op: 'replace', path, value: before }, ...unmark];
}

/** The target Deployment as the owner check needs it. */
export interface TargetDeployment {
  name: string;
  namespace: string;
  annotations?: Record<string, string>;
}

/**
 * Whether the owner object itself says it applies the Deployment (the Deployment's labels alone are the
 * tenant's to write, so they prove nothing): a Flux Kustomization lists it in status.inventory, an Argo CD
 * Application in status.resources, a Flux HelmRelease installs its release into the Deployment's namespace
 * and the Deployment carries Helm's release annotations naming that release. Undefined: verified; else why not.
 */
export function ownerAppliesProblem(
  kind: OwnerKind,
  obj: OwnerObject,
  d: TargetDeployment,
): string | undefined {
  const status = (obj.status ?? {}) as Record<string, unknown>;
  if (kind === 'Kustomization') {
    const id = `${d.namespace}_${d.name}_apps_Deployment`;
    const entries = (status.inventory as { entries?: { id?: string }[] } | undefined)?.entries ?? [];
    // An owner that lists nothing yet (first reconcile, status reset) is trusted: skipping it would leave the
    // rollback to be undone by its next sync. Only an owner that lists other objects but not this one is not.
    if (!entries.length) return undefined;
    return entries.some((e) => e?.id === id) ? undefined : `its status.inventory does not list ${id}`;
  }
  if (kind === 'Application') {
    const resources = (status.resources as Record<string, unknown>[] | undefined) ?? [];
    if (!resources.length) return undefined; // lists nothing yet: trusted, as for a Kustomization
    const listed = resources.some(
      (r) =>
        r?.group === 'apps' && r.kind === 'Deployment' && r.namespace === d.namespace && r.name === d.name,
    );
    return listed ? undefined : `its status.resources does not list Deployment ${d.namespace}/${d.name}`;
  }
  const spec = obj.spec ?? {};
  const name = obj.metadata?.name ?? '';
  const target = (spec.targetNamespace as string | undefined) || obj.metadata?.namespace;
  if (target !== d.namespace) return `it installs into namespace ${target ?? '?'}, not ${d.namespace}`;
  const history = (status.history as { name?: string; namespace?: string }[] | undefined) ?? [];
  const releaseNames = new Set(
    [
      spec.releaseName as string | undefined,
      spec.targetNamespace ? `${spec.targetNamespace as string}-${name}` : name,
      history[0]?.name,
    ].filter((x): x is string => !!x),
  );
  const a = d.annotations ?? {};
  const rn = a['meta.helm.sh/release-name'];
  const rns = a['meta.helm.sh/release-namespace'];
  if (!rn || !releaseNames.has(rn) || rns !== d.namespace)
    return `the Deployment's meta.helm.sh/release-name / release-namespace annotations (${rn ?? 'none'} / ${rns ?? 'none'}) do not name its release`;
  return undefined;
}

/** The Flux source a Kustomization or HelmRelease reads (kind, name, namespace), when it names one. */
export function fluxSourceOf(
  kind: OwnerKind,
  obj: OwnerObject,
): { kind: string; name: string; namespace: string } | undefined {
  type Ref = { kind?: string; name?: string; namespace?: string } | undefined;
  const spec = obj.spec ?? {};
  const ref: Ref =
    kind === 'Kustomization'
      ? (spec.sourceRef as Ref)
      : kind === 'HelmRelease'
        ? ((spec.chartRef as Ref) ??
          ((spec.chart as { spec?: { sourceRef?: Ref } } | undefined)?.spec?.sourceRef as Ref))
        : undefined;
  if (!ref?.kind || !ref.name) return undefined;
  return { kind: ref.kind, name: ref.name, namespace: ref.namespace ?? obj.metadata?.namespace ?? '' };
}

/** The revision a source object holds now: Flux status.artifact.revision; Argo CD status.sync.revision(s). */
export function revisionOf(obj: OwnerObject | undefined, argocd = false): string | undefined {
  if (!obj) return undefined;
  if (argocd) {
    const sync = obj.status?.sync as { revision?: string; revisions?: string[] } | undefined;
    return sync?.revision || (sync?.revisions?.length ? sync.revisions.join(',') : undefined);
  }
  return (obj.status?.artifact as { revision?: string } | undefined)?.revision || undefined;
}

export type ResumeReason = 'newRevision' | 'annotation' | 'resumeAfter';
export type ResumeDecision = { resume: ResumeReason } | { wait: true; dueInMs?: number };

/**
 * When a suspended owner is resumed: on a new gitops-resume annotation value, once resumeAfter has passed since
 * the suspension, or (resume onNewRevision) once its source moved past the revision recorded at the suspension.
 * `dueInMs` is the time left until resumeAfter.
 */
export function decideResume(i: {
  resume: 'onNewRevision' | 'manual';
  resumeAfterMs?: number;
  suspendedAt?: string;
  revisionAtSuspend?: string;
  currentRevision?: string;
  annotation?: string;
  lastResumeRequest?: string;
  now: Date;
}): ResumeDecision {
  if (i.annotation && i.annotation !== i.lastResumeRequest) return { resume: 'annotation' };
  let dueInMs: number | undefined;
  if (i.resumeAfterMs !== undefined && i.suspendedAt) {
    dueInMs = Date.parse(i.suspendedAt) + i.resumeAfterMs - i.now.getTime();
    if (dueInMs <= 0) return { resume: 'resumeAfter' };
  }
  if (
    i.resume === 'onNewRevision' &&
    i.revisionAtSuspend &&
    i.currentRevision &&
    i.currentRevision !== i.revisionAtSuspend
  )
    return { resume: 'newRevision' };
  return dueInMs === undefined ? { wait: true } : { wait: true, dueInMs };
}
