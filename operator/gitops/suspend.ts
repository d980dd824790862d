// spec.gitops.policy of a RollbackPlan (docs/gitops.md): what the plan does to the Flux / Argo CD owners of its
// target Deployments. Pre-validation decides (refuse fails, ignore warns, suspend checks that it can); the app
// rollback pauses each owner first; a finished plan resumes them (new source revision, annotation, resumeAfter).
// Crash safety: the original value is in status (state Suspending, written) before the pause is sent, so an
// operator killed in between finds it on restart; an owner someone else had paused is never resumed by us.
import { Annotation, ConditionType, parseDuration } from '../api/v1alpha1/common.js';
import type { EffectiveRollbackPlanSpec, RollbackPlanStatus } from '../api/v1alpha1/rollbackplan.js';
import { failpoint } from '../failpoints.js';
import { setCondition } from '../kube/conditions.js';
import { isNotFound, userFixableRejection } from '../kube/errors.js';
import type { EventType } from '../kube/events.js';
import type { KubeClient, KubeObject } from '../kube/rest.js';
import { timestamp, finishStep } from '../rollback/journal.js';
import type { PlanRun, StepOutcome } from '../rollback/plan-run.js';
import { parseSourceId } from './source-watch.js';
import { describeOwner, gitOpsOwner, weakOwnerNote, type GitOpsOwner } from './ownership.js';
import {
  decideResume,
  FLUX_SOURCE_RESOURCE,
  fluxSourceOf,
  holdsOriginal,
  isPaused,
  OWNER_RESOURCE,
  ownerAppliesProblem,
  pausedField,
  pausePatch,
  restorePatch,
  revisionOf,
  SUSPENDED_BY as SUSPENDED_BY_TEXT,
  suspendedBy,
  type ResumeReason,
} from './owner-pause.js';

export type GitOpsStatus = NonNullable<RollbackPlanStatus['gitops']>;
export type OwnerEntry = GitOpsStatus['owners'][number];
const FIELD_MANAGER = 'nxt-rollback-operator';
const MESSAGE_MAX = 1024;
const bounded = (s: string) => (s.length > MESSAGE_MAX ? s.slice(0, MESSAGE_MAX - 3) + '...' : s);

/** Operator settings for GitOps owners (operator/config.ts). */
export interface GitOpsSettings {
  /** Namespaces besides the plan's own where owners may be patched (GITOPS_OWNER_NAMESPACES). */
  ownerNamespaces: string[];
  /** Where an Application named by a plain tracking id lives (ARGOCD_NAMESPACE). */
  argocdNamespace: string;
  /** How often a suspended owner's source is re-read for a new revision (GITOPS_RESUME_CHECK_INTERVAL). */
  resumeCheckMs: number;
}

const ownerRef = (o: Pick<OwnerEntry, 'kind' | 'name' | 'namespace'>) => ({
  ...OWNER_RESOURCE[o.kind],
  namespace: o.namespace,
  name: o.name,
});
const ownerText = (o: OwnerEntry) => describeOwner({ ...o, evidence: '' } as GitOpsOwner);
/** Owners this plan paused and has not resumed yet. */
export const suspendedOwners = (s: RollbackPlanStatus) =>
  (s.gitops?.owners ?? []).filter((o) => o.state === 'Suspended' || o.state === 'Suspending');

/**
 * The strongly identified owners of the targets, grouped (one Kustomization may apply several), and the
 * targets with weak evidence only (the instance label, also Helm's): those are never paused or refused, since
 * the Application it names may not exist or may be another one.
 */
export function ownersOfTargets(
  targets: { name: string; metadata: Parameters<typeof gitOpsOwner>[0] }[],
  planNamespace: string,
  argocdNamespace: string,
): { owners: OwnerEntry[]; weak: { deployment: string; note: string }[] } {
  const owners = new Map<string, OwnerEntry>();
  const weak: { deployment: string; note: string }[] = [];
  for (const t of targets) {
    const o = gitOpsOwner(t.metadata);
    if (!o) continue;
    if (o.weak) {
      weak.push({ deployment: t.name, note: weakOwnerNote(o) });
      continue;
    }
    const namespace = o.namespace ?? (o.tool === 'argocd' ? argocdNamespace : planNamespace);
    const key = `${o.kind}/${namespace}/${o.name}`;
    const entry = owners.get(key) ?? {
      tool: o.tool,
      kind: o.kind,
      name: o.name,
      namespace,
      deployments: [],
      state: 'Pending' as const,
    };
    entry.deployments.push(t.name);
    owners.set(key, entry);
  }
  return { owners: [...owners.values()], weak };
}

/** Most owners status.gitops.owners holds (its schema limit). */
export const MAX_OWNERS = 10;

/** The ClusterRole that must be bound (RoleBinding) where GitOps owners live (operator/rbac.ts). */
export const OWNERS_ROLE = 'nxt-rollback-operator-gitops-owners';
const rbacFix = (namespace: string) =>
  `bind the ClusterRole ${OWNERS_ROLE} to the operator's ServiceAccount with a RoleBinding in namespace ${namespace}`;

/**
 * A 403 / 404 / 422 from the API server on an owner or source, as a sentence naming verb, resource and
 * namespace (and the RBAC fix for a 403); undefined for a transient error (5xx, timeout: retried).
 */
/**
 * The API server's message for a failed JSON-patch test op (json-patch: "testing value /spec/suspend failed:
 * test failed", "Testing value ... failed" in older versions, "test operation does not apply: is missing path").
 */
export const isPatchTestFailure = (message: string) =>
  /testing value \S+ failed|test operation does not apply/i.test(message);

export function ownerCallProblem(
  e: unknown,
  verb: string,
  what: string,
  namespace: string,
): { reason: 'GitOpsForbidden' | 'GitOpsOwnerUnavailable'; message: string } | undefined {
  if (isNotFound(e))
    return {
      reason: 'GitOpsOwnerUnavailable',
      message: `${verb} ${what} in namespace ${namespace}: not found (or its CRD is not installed)`,
    };
  const r = userFixableRejection(e);
  if (!r) return undefined;
  // A JSON-patch test op that failed: the owner changed between our GET and PATCH (a person or another
  // controller). Not a problem to report: thrown, the reconcile is retried with backoff and reads it again.
  if (r.code === 422 && isPatchTestFailure(r.message)) return undefined;
  if (r.code === 403)
    return {
      reason: 'GitOpsForbidden',
      message: `${verb} ${what} in namespace ${namespace} is forbidden (${r.message}): ${rbacFix(namespace)}`,
    };
  return {
    reason: 'GitOpsOwnerUnavailable',
    message: `${verb} ${what} in namespace ${namespace} was rejected (${r.code} ${r.reason}: ${r.message})`,
  };
}

/** What still has to happen in Git for the rollback to last: the revert of the release, per Deployment. */
export function revertNeeded(run: Pick<PlanRun, 'status' | 'histories'>, owner: OwnerEntry): string {
  const parts = owner.deployments.map((name) => {
    const d = run.status.deployments?.find((x) => x.name === name);
    const rs = run.histories.get(name)?.replicaSets.find((r) => r.metadata.name === d?.replicaSet);
    const images = (rs?.spec?.template?.spec?.containers ?? []).map((c) => c.image).filter(Boolean);
    return `Deployment ${name} back to the template of revision ${d?.toRevision ?? '?'}${images.length ? ` (image ${images.join(', ')})` : ''}`;
  });
  return `revert the release in Git (${parts.join('; ')})`;
}

/**
 * Pre-validation of the GitOps owners (after the app checks, which read the Deployments). refuse: fail,
 * touching nothing; ignore: go on with a Warning; suspend: the owner exists, may be patched here, and by us.
 */
export async function preValidateGitOps(run: PlanRun, settings: GitOpsSettings): Promise<StepOutcome> {
  const policy = run.spec.gitops.policy;
  const targets = [...run.histories.entries()].map(([name, h]) => ({
    name,
    metadata: h.deployment.metadata as Parameters<typeof gitOpsOwner>[0],
  }));
  const found = ownersOfTargets(targets, run.namespace, settings.argocdNamespace);
  const weak = found.weak;
  if (found.owners.length > MAX_OWNERS) {
    const msg = bounded(
      `the targets have ${found.owners.length} GitOps owners (${found.owners.map(ownerText).join(', ')}); at most ${MAX_OWNERS} are supported: nothing was changed (split the plan, or set spec.gitops.policy ignore)`,
    );
    run.status.steps = finishStep(run.status.steps, 'CheckGitOpsOwners', 'Failed', msg, run.now());
    return { kind: 'failed', reason: 'GitOpsTooManyOwners', message: msg };
  }
  // The Deployment's labels are the tenant's to write: only an owner that itself lists the Deployment is
  // acted on (paused or refused); the rest is weak evidence. Read where the operator may (policy suspend:
  // a failed read fails the plan below; refuse / ignore: an unreadable owner is only uncertain).
  const owners: OwnerEntry[] = [];
  const problems: { reason: string; text: string }[] = [];
  for (const o of found.owners) {
    if (policy === 'suspend') {
      if (o.namespace !== run.namespace && !settings.ownerNamespaces.includes(o.namespace)) {
        problems.push({
          reason: 'GitOpsSuspendImpossible',
          text: `${ownerText(o)} is in namespace ${o.namespace}, where the operator may not patch GitOps owners (GITOPS_OWNER_NAMESPACES: ${settings.ownerNamespaces.join(',') || 'none'}; the Helm chart sets it from gitops.ownerNamespaces). To roll back anyway, knowing the owner's next sync may undo it: a new plan with spec.gitops.policy ignore`,
        });
        continue;
      }
      const r = OWNER_RESOURCE[o.kind];
      let denied = false;
      for (const verb of ['get', 'patch'] as const) {
        const access = await run.access.check({
          group: r.group,
          resource: r.plural,
          verb,
          namespace: o.namespace,
        });
        if (!access.allowed) {
          denied = true;
          problems.push({
            reason: 'GitOpsForbidden',
            text: `the operator may not ${verb} ${r.plural}.${r.group} in namespace ${o.namespace} (${ownerText(o)}): ${rbacFix(o.namespace)}`,
          });
        }
      }
      if (denied) continue;
    }
    let obj: KubeObject;
    try {
      obj = await run.client.get<KubeObject>(ownerRef(o));
    } catch (e) {
      const p = ownerCallProblem(e, 'get', `${ownerText(o)}`, o.namespace);
      if (!p) throw e;
      // suspend and refuse fail closed: an owner that cannot be read may be real (missing RBAC must not
      // turn refuse into ignore). Only ignore goes ahead, noting it.
      if (policy !== 'ignore') problems.push({ reason: p.reason, text: p.message });
      else
        weak.push(
          ...o.deployments.map((d) => ({
            deployment: d,
            note: `may be applied by ${ownerText(o)}, which could not be read to check (${p.message})`,
          })),
        );
      continue;
    }
    const verified: string[] = [];
    for (const d of o.deployments) {
      const problem = ownerAppliesProblem(o.kind, obj, {
        name: d,
        namespace: run.namespace,
        ...(run.histories.get(d)?.deployment.metadata?.annotations
          ? { annotations: run.histories.get(d)!.deployment.metadata!.annotations! }
          : {}),
      });
      if (problem)
        weak.push({ deployment: d, note: `is labelled as applied by ${ownerText(o)}, but ${problem}` });
      else verified.push(d);
    }
    if (!verified.length) continue;
    const entry = { ...o, deployments: verified };
    owners.push(entry);
  }
  for (const w of weak)
    run.event(
      'Normal',
      'GitOpsOwnerUncertain',
      bounded(
        `Deployment ${w.deployment} ${w.note}: weak evidence, not acted on (spec.gitops.policy ${policy})`,
      ),
    );
  const record = (ok: boolean, message: string) => {
    run.status.steps = finishStep(
      run.status.steps,
      'CheckGitOpsOwners',
      ok ? 'Succeeded' : 'Failed',
      bounded(message),
      run.now(),
    );
  };
  if (problems.length) {
    const msg = bounded(
      `${policy === 'refuse' ? 'cannot check the GitOps owners' : 'cannot suspend'}: ${problems.map((p) => p.text).join('; ')}; nothing was changed (fix it, set spec.gitops.policy ignore, or ${found.owners.map((o) => revertNeeded(run, o)).join('; ')})`,
    );
    record(false, msg);
    return { kind: 'failed', reason: problems[0]!.reason, message: msg };
  }
  const uncertain = weak.length
    ? ` (not acted on, weak evidence: ${weak.map((w) => `Deployment ${w.deployment} ${w.note}`).join('; ')})`
    : '';
  if (!owners.length) {
    if (weak.length) record(true, `no verified GitOps owner${uncertain}`);
    return { kind: 'done', message: bounded(`no GitOps owner${uncertain}`) };
  }
  const list = owners.map((o) => `${ownerText(o)} applies ${o.deployments.join(', ')}`).join('; ');
  if (policy === 'refuse') {
    const msg = bounded(
      `${list} (spec.gitops.policy refuse): nothing was changed; instead ${owners.map((o) => revertNeeded(run, o)).join('; ')}`,
    );
    run.status.gitops = { policy, owners: owners.map((o) => ({ ...o, state: 'Refused' as const })) };
    record(false, msg);
    return { kind: 'failed', reason: 'GitOpsOwned', message: msg };
  }
  if (policy === 'ignore') {
    const msg = bounded(
      `not suspended (spec.gitops.policy ignore): ${list}; its next sync may undo the rollback unless you ${owners.map((o) => revertNeeded(run, o)).join('; ')}`,
    );
    run.status.gitops = { policy, owners: owners.map((o) => ({ ...o, state: 'Ignored' as const })) };
    run.status.conditions = setCondition(
      run.status.conditions,
      {
        type: ConditionType.GitOpsSuspended,
        status: 'False',
        reason: 'PolicyIgnore',
        message: msg,
        observedGeneration: run.plan.metadata.generation ?? 1,
      },
      run.now(),
    );
    run.event('Warning', 'GitOpsIgnored', msg);
    record(true, msg);
    return { kind: 'done', message: `GitOps owners not suspended (policy ignore): ${list}` };
  }
  run.status.gitops = { policy, owners };
  record(true, `will suspend ${list}${uncertain}`);
  return { kind: 'done', message: `will suspend ${owners.map(ownerText).join(', ')}` };
}

/**
 * Pauses every Pending owner before the Deployments are patched. For each: read it, record the original value
 * and the source revision (state Suspending) durably, then send the pause and record Suspended. On a restart
 * a Suspending owner is finished from its recorded original, never re-read (the pause may have landed).
 */
export async function suspendOwners(run: PlanRun): Promise<StepOutcome | undefined> {
  const g = run.status.gitops;
  if (!g || g.policy !== 'suspend') return undefined;
  const uid = run.plan.metadata.uid ?? run.plan.metadata.name ?? '';
  // A gitops-resume annotation already on the plan (copied from an older one) is not a request to resume
  // what this plan is about to pause: only a new value is.
  const annotation = resumeAnnotation(run.plan);
  if (annotation && g.lastResumeRequest === undefined) g.lastResumeRequest = annotation;
  const fail = (p: { reason: string; message: string }): StepOutcome => ({
    kind: 'failed',
    reason: p.reason,
    message: bounded(
      `${p.message}; the Deployments were not rolled back${g.owners.some((x) => x.state === 'Suspended') ? ' (owners already paused are resumed as usual)' : ''}`,
    ),
  });
  for (let i = 0; i < g.owners.length; i++) {
    let o = g.owners[i]!;
    if (o.state !== 'Pending' && o.state !== 'Suspending') continue;
    let obj: KubeObject;
    try {
      obj = await run.client.get<KubeObject>(ownerRef(o));
    } catch (e) {
      const p = ownerCallProblem(e, 'get', ownerText(o), o.namespace);
      if (!p) throw e;
      return fail(p);
    }
    const paused = isPaused(o.kind, obj);
    const ours = suspendedBy(obj) === uid;
    if (paused && !(o.state === 'Suspending' && ours)) {
      // Pending: paused before us. Suspending (restart): paused, but not by our pause (no marker of ours).
      o = {
        ...o,
        state: 'AlreadySuspended',
        message: bounded(`already paused by someone else: left as it is, never resumed by this plan`),
      };
      g.owners[i] = o;
      run.event(
        'Normal',
        'GitOpsAlreadySuspended',
        bounded(`${ownerText(o)} was already paused; this plan will not resume it`),
      );
      continue;
    }
    if (!paused) {
      // Record (again, after a restart: our pause did not land) the original value, durably, before pausing.
      const previous = pausedField(o.kind, obj);
      const source = await readSourceRevision(run.client, o, obj);
      const { previous: _old, ...rest } = o;
      o = {
        ...rest,
        state: 'Suspending',
        ...(previous === undefined ? {} : { previous: JSON.stringify(previous) }),
        ...source,
      };
      if ((o.previous?.length ?? 0) > 8192)
        return {
          kind: 'failed',
          reason: 'GitOpsOwnerTooLarge',
          message: `${ownerText(o)}: spec.syncPolicy is over 8192 characters as JSON; it cannot be recorded for the resume`,
        };
      g.owners[i] = o;
      await run.checkpoint(); // the original is durable before the pause is sent
      failpoint('after-gitops-original-recorded');
      try {
        await run.client.patch(ownerRef(o), 'json', pausePatch(o.kind, obj, uid), {
          fieldManager: FIELD_MANAGER,
        });
      } catch (e) {
        const p = ownerCallProblem(e, 'patch', ownerText(o), o.namespace);
        if (!p) throw e;
        return fail(p);
      }
      failpoint('after-gitops-pause');
    }
    const revert = revertNeeded(run, o);
    const note = o.source && !o.revisionAtSuspend ? ` (${NO_REVISION_NOTE})` : '';
    o = {
      ...o,
      state: 'Suspended',
      suspendedAt: o.suspendedAt ?? timestamp(run.now()),
      message: bounded(`suspended so the rollback sticks; still needed: ${revert}${note}`),
    };
    g.owners[i] = o;
    run.event(
      'Normal',
      'GitOpsSuspended',
      bounded(`${ownerText(o)} suspended; still needed: ${revert}${note}`),
    );
  }
  const suspended = g.owners.filter((o) => o.state === 'Suspended');
  if (suspended.length) {
    run.status.conditions = setCondition(
      run.status.conditions,
      {
        type: ConditionType.GitOpsSuspended,
        status: 'True',
        reason: 'Suspended',
        message: bounded(
          `${suspended.map(ownerText).join(', ')} suspended; still needed: ${suspended.map((o) => revertNeeded(run, o)).join('; ')}. ${resumeHint(run.spec)}`,
        ),
        observedGeneration: run.plan.metadata.generation ?? 1,
      },
      run.now(),
    );
    await run.checkpoint();
  }
  return undefined;
}

const resumeHint = (spec: EffectiveRollbackPlanSpec) =>
  `Resumed ${spec.gitops.resume === 'onNewRevision' ? 'when its source moves to a new revision, ' : ''}on the ${Annotation.GitOpsResume} annotation (nxt-rollback gitops resume)${spec.gitops.resumeAfter ? `, or ${spec.gitops.resumeAfter} after the suspension` : ''}.`;

const NO_REVISION_NOTE =
  "its source's revision could not be read, so a new revision will not resume it: resume with the gitops-resume annotation (nxt-rollback gitops resume) or spec.gitops.resumeAfter";

const resumeAnnotation = (plan: KubeObject) =>
  plan.metadata.annotations?.[Annotation.GitOpsResume]?.trim().slice(0, 253) || undefined;

/**
 * The owner's source and its revision now (Argo CD: the Application's own sync revision). Best effort: a
 * source that cannot be read (absent, forbidden, API not served, a transient error) gives no revision, which
 * only means a new revision cannot resume the owner; it never blocks the rollback or the resume pass.
 */
async function readSourceRevision(
  client: KubeClient,
  o: OwnerEntry,
  obj: KubeObject,
): Promise<{ source?: string; revisionAtSuspend?: string }> {
  if (o.kind === 'Application') {
    const revision = revisionOf(obj, true);
    return {
      source: `Application ${o.namespace}/${o.name}`,
      ...(revision ? { revisionAtSuspend: revision.slice(0, 512) } : {}),
    };
  }
  const src = fluxSourceOf(o.kind, obj);
  const res = src && FLUX_SOURCE_RESOURCE[src.kind];
  if (!src || !res) return {};
  const source = `${src.kind} ${src.namespace}/${src.name}`.slice(0, 512);
  try {
    const s = await client.get<KubeObject>({ ...res, namespace: src.namespace, name: src.name });
    const revision = revisionOf(s);
    return { source, ...(revision ? { revisionAtSuspend: revision.slice(0, 512) } : {}) };
  } catch {
    return { source };
  }
}

/** What a finished plan's resume pass needs from the controller. */
export interface ResumeContext {
  plan: KubeObject;
  spec: EffectiveRollbackPlanSpec;
  status: RollbackPlanStatus;
  client: KubeClient;
  settings: GitOpsSettings;
  now(): Date;
  event(type: EventType, reason: string, message: string): void;
  /** Watches the objects of `kind` in `namespace` from now on: a read of one just succeeded (source-watch.ts). */
  watch?(kind: string, namespace: string): void;
}

/**
 * Resumes the owners this plan suspended when their time has come; returns when to look again (undefined:
 * nothing is suspended any more). Restores exactly the recorded original, unless someone changed the field
 * since (then it is left as it is, and said so).
 */
export async function resumeOwners(c: ResumeContext): Promise<number | undefined> {
  const g = c.status.gitops;
  if (!g || !suspendedOwners(c.status).length) return undefined;
  const annotation = resumeAnnotation(c.plan);
  const uid = c.plan.metadata.uid ?? c.plan.metadata.name ?? '';
  const blocked: string[] = [];
  const resumeAfterMs = c.spec.gitops.resumeAfter ? parseDuration(c.spec.gitops.resumeAfter) : undefined;
  let next = c.settings.resumeCheckMs;
  let resumedOnRequest = false;
  for (let i = 0; i < g.owners.length; i++) {
    const o = g.owners[i]!;
    if (o.state !== 'Suspended' && o.state !== 'Suspending') continue;
    let obj: KubeObject;
    try {
      obj = await c.client.get<KubeObject>(ownerRef(o));
    } catch (e) {
      if (isNotFound(e)) {
        g.owners[i] = { ...o, state: 'LeftAsIs', message: 'the owner was deleted while suspended' };
        continue;
      }
      const p = ownerCallProblem(e, 'get', ownerText(o), o.namespace);
      if (!p) throw e;
      blocked.push(p.message);
      continue;
    }
    if (o.state === 'Suspending' && !isPaused(o.kind, obj) && suspendedBy(obj) !== uid) {
      // The plan stopped between recording the original and the pause (e.g. the pause was refused): there is
      // no pause of ours to undo, so nothing to wait for.
      g.owners[i] = {
        ...o,
        state: 'LeftAsIs',
        message: 'not paused by this plan (its pause never landed): nothing to resume',
      };
      continue;
    }
    const current =
      o.kind === 'Application'
        ? revisionOf(obj, true)
        : (await readSourceRevision(c.client, o, obj)).revisionAtSuspend;
    const watched = parseSourceId(o.source);
    if (current !== undefined && watched) c.watch?.(watched.kind, watched.namespace);
    const d = decideResume({
      resume: c.spec.gitops.resume,
      ...(resumeAfterMs !== undefined ? { resumeAfterMs } : {}),
      ...(o.suspendedAt ? { suspendedAt: o.suspendedAt } : {}),
      ...(o.revisionAtSuspend ? { revisionAtSuspend: o.revisionAtSuspend } : {}),
      ...(current ? { currentRevision: current } : {}),
      ...(annotation ? { annotation } : {}),
      ...(g.lastResumeRequest ? { lastResumeRequest: g.lastResumeRequest } : {}),
      now: c.now(),
    });
    if ('wait' in d) {
      if (d.dueInMs !== undefined) next = Math.min(next, Math.max(d.dueInMs, 1000));
      continue;
    }
    if (suspendedBy(obj) !== uid && o.state === 'Suspended' && holdsOriginal(o.kind, obj, o.previous)) {
      // Our resume removes the marker and restores the original in one patch: an operator stopped between that
      // patch and the status write finds exactly this. A human who restored it by hand left the same result.
      const message = bounded(
        `the recorded original ${o.previous ?? '(unset)'} is already in place and the owner is not paused ` +
          '(an earlier resume whose status write was lost, or restored by hand)',
      );
      c.event('Normal', 'GitOpsResumed', bounded(`${ownerText(o)} ${message}`));
      g.owners[i] = { ...o, state: 'Resumed', resumedAt: timestamp(c.now()), resumedBy: d.resume, message };
      if (d.resume === 'annotation') resumedOnRequest = true;
      continue;
    }
    if (suspendedBy(obj) !== uid) {
      // Our pause sets the marker; without it the pause is not ours (never landed, or someone else's).
      const message = bounded(
        `not resumed: it does not carry this plan's ${SUSPENDED_BY_TEXT} marker, so its pause (if any) is not this plan's; left as it is`,
      );
      c.event('Warning', 'GitOpsLeftAsIs', bounded(`${ownerText(o)} ${message}`));
      g.owners[i] = { ...o, state: 'LeftAsIs', resumedAt: timestamp(c.now()), resumedBy: d.resume, message };
      continue;
    }
    try {
      g.owners[i] = await resumeOne(c, o, obj, d.resume, current);
    } catch (e) {
      if (isNotFound(e)) {
        g.owners[i] = { ...o, state: 'LeftAsIs', message: 'the owner was deleted while suspended' };
        continue;
      }
      const p = ownerCallProblem(e, 'patch', ownerText(o), o.namespace);
      if (!p) throw e;
      blocked.push(p.message);
      continue;
    }
    if (d.resume === 'annotation') resumedOnRequest = true;
  }
  if (resumedOnRequest && annotation) g.lastResumeRequest = annotation;
  const left = suspendedOwners(c.status);
  if (!left.length) {
    c.status.conditions = setCondition(
      c.status.conditions,
      {
        type: ConditionType.GitOpsSuspended,
        status: 'False',
        reason: 'Resumed',
        message: bounded(
          g.owners.map((o) => `${ownerText(o)}: ${o.state}${o.message ? ` (${o.message})` : ''}`).join('; '),
        ),
        observedGeneration: c.plan.metadata.generation ?? 1,
      },
      c.now(),
    );
    return undefined;
  }
  if (blocked.length) {
    const message = bounded(
      `cannot resume: ${blocked.join('; ')}. Still suspended: ${left.map(ownerText).join(', ')}; retried every ${Math.round(resumeBlockedRetryMs(c.settings) / 1000)}s`,
    );
    c.status.conditions = setCondition(
      c.status.conditions,
      {
        type: ConditionType.GitOpsSuspended,
        status: 'True',
        reason: blocked.some((b) => b.includes('forbidden')) ? 'ResumeForbidden' : 'ResumeFailed',
        message,
        observedGeneration: c.plan.metadata.generation ?? 1,
      },
      c.now(),
    );
    c.event('Warning', 'GitOpsResumeFailed', message);
    return Math.max(next, resumeBlockedRetryMs(c.settings));
  }
  return next;
}

/** How often a resume the API server refused (403 / 422) is tried again: slowly, a human must act. */
const resumeBlockedRetryMs = (s: GitOpsSettings) => Math.max(s.resumeCheckMs, 120_000);

async function resumeOne(
  c: ResumeContext,
  o: OwnerEntry,
  obj: KubeObject,
  by: ResumeReason,
  current: string | undefined,
): Promise<OwnerEntry> {
  const why =
    by === 'newRevision'
      ? `its source moved from ${o.revisionAtSuspend} to ${current}`
      : by === 'annotation'
        ? `requested by ${Annotation.GitOpsResume}`
        : `spec.gitops.resumeAfter ${c.spec.gitops.resumeAfter} passed`;
  const patch = restorePatch(o.kind, obj, o.previous);
  const resumedAt = timestamp(c.now());
  if (patch === 'changed') {
    const message = bounded(`not resumed (${why}): changed by someone else while suspended, left as it is`);
    c.event('Warning', 'GitOpsLeftAsIs', bounded(`${ownerText(o)} ${message}`));
    return { ...o, state: 'LeftAsIs', resumedAt, resumedBy: by, message };
  }
  await c.client.patch(ownerRef(o), 'json', patch, { fieldManager: FIELD_MANAGER });
  const message = bounded(`resumed (${why}); restored ${o.previous ?? 'the unset field'}`);
  c.event('Normal', 'GitOpsResumed', bounded(`${ownerText(o)} ${message}`));
  return { ...o, state: 'Resumed', resumedAt, resumedBy: by, message };
}
