import { failpoint } from '../failpoints.js';
import { describeAccess, type AccessCheck } from '../kube/access.js';
import { isNotFound } from '../kube/errors.js';
import { applyDeploymentRollback, readDeploymentHistory } from './deployment-io.js';
import { planDeploymentRollback } from './deployment-undo.js';
import { finishStep } from './journal.js';
import type { PlanRun, StepOutcome } from './plan-run.js';
import { activePlanConflicts, runningPlan } from './locks.js';
import { decidePendingRollback, observedState } from './pending-rollback.js';

const REVISION = 'deployment.kubernetes.io/revision';
/** Target Deployments read at once by pre-validation (a plan has at most 50). */
const READ_PARALLEL = 8;

/** Promise.allSettled of fn over items, at most `n` in flight; results in the order of items. */
async function settleInBatches<T, R>(
  items: readonly T[],
  n: number,
  fn: (item: T) => Promise<R>,
): Promise<PromiseSettledResult<R>[]> {
  const out: PromiseSettledResult<R>[] = [];
  for (let i = 0; i < items.length; i += n)
    out.push(...(await Promise.allSettled(items.slice(i, i + n).map(fn))));
  return out;
}

/**
 * Pre-validation of the app targets. Each check is a journal entry; a failure stops the plan before anything
 * is touched. The chosen ReplicaSet of every Deployment is pinned in status, so the rollback step (and a
 * resumed operator) restores exactly that template instead of recomputing "the previous revision" — which
 * after a first rollback would be the bad one again.
 */
export async function preValidateApp(run: PlanRun): Promise<StepOutcome> {
  const ns = run.namespace;
  const targets = run.spec.targets.deployments ?? [];
  const record = (name: string, ok: boolean, message: string) => {
    run.status.steps = finishStep(run.status.steps, name, ok ? 'Succeeded' : 'Failed', message, run.now());
  };

  // 1. the targets exist (read fresh, READ_PARALLEL at a time; each read's GET and LIST go at once, the LIST
  // with the selector of the cached Deployment)
  const histories = run.histories;
  const missing: string[] = [];
  const reads = await settleInBatches(targets, READ_PARALLEL, (t) =>
    readDeploymentHistory(run.client, ns, t.name, run.cache.deployment(t.name)),
  );
  for (const [i, t] of targets.entries()) {
    const r = reads[i]!;
    if (r.status === 'fulfilled') histories.set(t.name, r.value);
    else if (isNotFound(r.reason)) missing.push(t.name);
    else throw r.reason;
  }
  if (missing.length) {
    const msg = `Deployment ${missing.map((m) => `"${m}"`).join(', ')} not found in namespace ${ns}`;
    record('CheckTargetsExist', false, msg);
    return { kind: 'failed', reason: 'TargetNotFound', message: msg };
  }
  record(
    'CheckTargetsExist',
    true,
    `${targets.length} Deployment(s) found: ${targets.map((t) => t.name).join(', ')}`,
  );

  // 1b. an automatic plan undoes the revision its trigger fired on: a target that rolled out another revision
  // since (a fix-forward while the plan waited for an approval) is not "previous of current" any more.
  const movedOn = targetsMovedOn(run, histories);
  if (movedOn.length) {
    const msg = `${movedOn.join('; ')}; the trigger fired on the earlier revision, so nothing was changed (to roll back the new one, apply a new plan)`;
    record('CheckTargetNotMovedOn', false, msg);
    return { kind: 'failed', reason: 'TargetMovedOn', message: msg };
  }

  // 2. the revisions exist, 3. nothing is paused
  const deployments: NonNullable<typeof run.status.deployments> = [];
  for (const t of targets) {
    const h = histories.get(t.name)!;
    const plan = planDeploymentRollback(h.deployment, h.replicaSets, t.toRevision ?? 0);
    if (plan.action === 'refuse') {
      const check = plan.reason === 'DeploymentPaused' ? 'CheckNotPaused' : 'CheckRevisionsExist';
      record(check, false, plan.message);
      return { kind: 'failed', reason: plan.reason, message: plan.message };
    }
    deployments.push({
      name: t.name,
      ...(plan.fromRevision !== null ? { fromRevision: plan.fromRevision } : {}),
      toRevision: plan.toRevision,
      // What the decision was based on: the rollback patches only a Deployment still in this state.
      ...(plan.action === 'rollback' ? { replicaSet: plan.replicaSet, ...observedState(h.deployment) } : {}),
      result: plan.action === 'skip' ? 'Skipped' : 'Pending',
      message:
        plan.action === 'skip'
          ? plan.message
          : `will restore the template of replicaset "${plan.replicaSet}"`,
    });
  }
  record(
    'CheckRevisionsExist',
    true,
    deployments.map((d) => `${d.name}: ${d.fromRevision ?? '?'} -> ${d.toRevision}`).join('; '),
  );
  record('CheckNotPaused', true, 'no target Deployment is paused');

  // 4. no other active plan holds one of these Deployments
  const conflicts = activePlanConflicts(
    runningPlan(run),
    run.allPlans(),
    targets.map((t) => t.name),
  );
  if (conflicts.length) {
    const msg = conflicts
      .map((c) => `Deployment "${c.deployment}" is held by RollbackPlan "${c.plan}" (${c.phase})`)
      .join('; ');
    record('CheckNoConcurrentPlan', false, msg);
    return { kind: 'failed', reason: 'ConcurrentPlan', message: msg };
  }
  record('CheckNoConcurrentPlan', true, 'no other active RollbackPlan targets these Deployments');

  // 5. the operator may do what the plan needs
  const needed: AccessCheck[] = [
    { group: 'apps', resource: 'deployments', verb: 'patch', namespace: ns },
    { group: 'apps', resource: 'replicasets', verb: 'list', namespace: ns },
  ];
  // Both at once (remembered for a minute; a burst of plans pays them once).
  const answers = await Promise.all(needed.map((c) => run.access.check(c)));
  const denied = needed.filter((_c, i) => !answers[i]!.allowed).map(describeAccess);
  if (denied.length) {
    const msg = `the operator's ServiceAccount may not ${denied.join(', ')}`;
    record('CheckPermissions', false, msg);
    return { kind: 'failed', reason: 'Forbidden', message: msg };
  }
  record('CheckPermissions', true, needed.map(describeAccess).join(', ') + ': allowed');

  run.status.deployments = deployments;
  const todo = deployments.filter((d) => d.result === 'Pending').length;
  return {
    kind: 'done',
    message: `all checks passed; ${todo} of ${deployments.length} Deployment(s) to roll back`,
  };
}

/** Restores the pinned template of every Deployment still Pending; idempotent across restarts. */
export async function rollBackDeployments(run: PlanRun): Promise<StepOutcome> {
  const ns = run.namespace;
  // The entries as pre-validation left them: which ones are still to patch after the current one.
  const all = run.status.deployments ?? [];
  let patchedNow = 0;
  for (const [i, d] of all.entries()) {
    if (d.result !== 'Pending' || !d.replicaSet) continue;
    const { deployment, replicaSets } =
      run.histories.get(d.name) ??
      (await readDeploymentHistory(run.client, ns, d.name, run.cache.deployment(d.name)));
    run.histories.delete(d.name); // used once: a retry after a 409 reads afresh
    const decision = decidePendingRollback(d, deployment, replicaSets);
    if (decision.action === 'inPlace') {
      // Already there: our own patch landed before a restart, or someone else did the same.
      const generation = (deployment.metadata as { generation?: number }).generation;
      setDeployment(
        run,
        d.name,
        'RolledBack',
        `template of replicaset "${d.replicaSet}" is in place`,
        generation,
      );
      continue;
    }
    if (decision.action === 'historyChanged') {
      setDeployment(run, d.name, 'Failed', decision.message);
      return { kind: 'failed', reason: 'HistoryChanged', message: decision.message };
    }
    const plan = decision.plan;
    const patched = await applyDeploymentRollback(run.client, ns, d.name, plan);
    failpoint('after-deployment-patch');
    setDeployment(
      run,
      d.name,
      'RolledBack',
      `restored the template of replicaset "${d.replicaSet}" (revision ${d.toRevision})`,
      (patched.metadata as { generation?: number }).generation,
    );
    run.patched?.set(d.name, patched);
    patchedNow++;
    run.event(
      'Normal',
      'DeploymentRolledBack',
      `Deployment ${d.name}: revision ${d.fromRevision ?? '?'} -> ${d.toRevision} (replicaset ${d.replicaSet})`,
    );
    // Durable before the next Deployment is patched. After the last one the step's result goes with the next
    // status write of this reconcile (the next step's start or post-validation's first verdict), with nothing
    // changed in between; a crash before that write resumes here, finds the template in place and patches
    // nothing (decidePendingRollback), so the patch stays exactly-once without this extra write.
    if (all.slice(i + 1).some((n) => n.result === 'Pending' && n.replicaSet)) await run.checkpoint();
  }
  const now = run.status.deployments ?? []; // setDeployment replaced the entries of `all`
  const done = now.filter((d) => d.result === 'RolledBack').length;
  const skipped = now.filter((d) => d.result === 'Skipped').length;
  return {
    kind: 'done',
    message: `${done} rolled back, ${skipped} already at the wanted revision`,
    // Each Deployment patched now has its DeploymentRolledBack Event: an AppRollbackSucceeded would repeat it.
    ...(patchedNow > 0 && patchedNow === all.length ? { reported: true } : {}),
  };
}

function setDeployment(
  run: PlanRun,
  name: string,
  result: 'RolledBack' | 'Failed',
  message: string,
  generation?: number,
) {
  run.status.deployments = (run.status.deployments ?? []).map((d) =>
    d.name === name ? { ...d, result, message, ...(generation !== undefined ? { generation } : {}) } : d,
  );
}

/** Targets whose revision differs from the one recorded when the trigger fired (status.armed.revisions). */
function targetsMovedOn(run: PlanRun, histories: PlanRun['histories']): string[] {
  const fired = run.status.trigger;
  if (!fired || fired.type === 'Manual') return [];
  const out: string[] = [];
  for (const r of run.status.armed?.revisions ?? []) {
    const dep = histories.get(r.deployment)?.deployment;
    if (!dep) continue;
    const now = Number.parseInt(dep.metadata?.annotations?.[REVISION] ?? '', 10);
    if (Number.isFinite(now) && now !== r.revision)
      out.push(`Deployment "${r.deployment}" moved on from revision ${r.revision} to ${now}`);
  }
  return out;
}
