// How the RollbackPlan controller's queue orders and finds plans at scale: which plans only wait for their
// rollout (low priority, behind plans that have work to do), and which plans a Deployment event concerns
// (an index, so 1,000 plans in a namespace are not scanned on every Deployment status update).
import { Annotation } from '../api/v1alpha1/common.js';
import type { KubeObject } from '../kube/rest.js';
import type { Priority } from '../kube/workqueue.js';
import { findStep, isFinished } from './journal.js';

const TERMINAL = new Set(['Succeeded', 'Failed', 'DryRunComplete', 'Expired', 'Vetoed']);

/**
 * Low: the plan is finished, or it is in PostValidation (rolled back; the Deployment watch wakes it as the
 * rollout goes on). Everything else is high: a plan not yet started, mid-step, armed (a firing is urgent),
 * or gone from the cache (its reconcile cleans up).
 */
export function planPriority(plan: KubeObject | undefined): Priority {
  if (!plan) return 'high';
  const status = plan.status as { phase?: string; steps?: { name: string; result?: string }[] } | undefined;
  const generation = plan.metadata.generation;
  const observed = (plan.status as { observedGeneration?: number } | undefined)?.observedGeneration;
  // A changed spec is new work, whatever the phase says.
  if (generation !== undefined && observed !== undefined && observed !== generation) return 'high';
  if (TERMINAL.has(status?.phase ?? '')) return finishedWithWork(plan) ? 'high' : 'low';
  if (status?.phase !== 'Running') return 'high';
  const post = findStep(status.steps as Parameters<typeof findStep>[0], 'PostValidation');
  return post && !isFinished(post) ? 'low' : 'high';
}

/**
 * A finished plan that still has something to do soon: being deleted (finalizer clean-up), a GitOps owner it
 * holds suspended (a resume is due when its source moves), or a GitOps resume request it has not handled
 * yet. (A rearm request of an expired or vetoed plan waits its turn with the finished plans.) Those must not wait behind a burst of new plans.
 */
function finishedWithWork(plan: KubeObject): boolean {
  if (plan.metadata.deletionTimestamp) return true;
  const owners = (plan.status as { gitops?: { owners?: { state?: string }[] } } | undefined)?.gitops?.owners;
  if (owners?.some((o) => o.state === 'Suspended' || o.state === 'Suspending')) return true;
  // A resume request not acted on yet (status.gitops.lastResumeRequest keeps the last value handled); an
  // annotation that was handled long ago must not keep the plan ahead of new ones forever.
  const resume = plan.metadata.annotations?.[Annotation.GitOpsResume];
  const handled = (plan.status as { gitops?: { lastResumeRequest?: string } } | undefined)?.gitops
    ?.lastResumeRequest;
  return resume !== undefined && resume !== handled;
}

/** The Deployments a plan concerns: its targets and the ones its trigger conditions watch. */
export function deploymentsOf(plan: KubeObject): string[] {
  const out = new Set<string>();
  const targets = plan.spec?.targets?.deployments;
  if (Array.isArray(targets)) for (const t of targets) if (typeof t?.name === 'string') out.add(t.name);
  const conditions = plan.spec?.trigger?.conditions;
  if (Array.isArray(conditions))
    for (const c of conditions) if (typeof c?.deployment === 'string') out.add(c.deployment);
  return [...out];
}

/**
 * namespace/deployment -> keys of the non-terminal plans that concern it, kept up to date from the plans
 * informer's events. Answers what `plans.list(ns).filter(...)` answered, in O(plans of that Deployment).
 */
export class PlansByDeployment {
  private readonly index = new Map<string, Set<string>>();
  /** plan key -> the index entries it is in. */
  private readonly entries = new Map<string, string[]>();

  upsert(plan: KubeObject): void {
    const ns = plan.metadata.namespace ?? '';
    const key = `${ns}/${plan.metadata.name}`;
    this.remove(key);
    if (TERMINAL.has(plan.status?.phase ?? '')) return;
    const at = deploymentsOf(plan).map((d) => `${ns}/${d}`);
    for (const d of at) {
      let set = this.index.get(d);
      if (!set) this.index.set(d, (set = new Set()));
      set.add(key);
    }
    this.entries.set(key, at);
  }

  delete(plan: KubeObject): void {
    this.remove(`${plan.metadata.namespace ?? ''}/${plan.metadata.name}`);
  }

  /** Keys of the non-terminal plans that target or watch `namespace/name`. */
  plansFor(namespace: string, name: string): string[] {
    return [...(this.index.get(`${namespace}/${name}`) ?? [])];
  }

  private remove(key: string): void {
    for (const d of this.entries.get(key) ?? []) {
      const set = this.index.get(d);
      set?.delete(key);
      if (set?.size === 0) this.index.delete(d);
    }
    this.entries.delete(key);
  }
}
