import type { KubeObject } from '../kube/rest.js';

export interface PlanConflict {
  deployment: string;
  plan: string;
  phase: string;
}

const TERMINAL = new Set(['Succeeded', 'Failed', 'DryRunComplete']);

const isOlder = (a: KubeObject, b: KubeObject) => {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  return ta === tb ? a.metadata.name < b.metadata.name : ta < tb;
};

/**
 * The per-Deployment lock, derived from durable state (the plans and their status) so it survives operator
 * restarts without a separate lock object: a plan may not start while another plan of the same namespace
 * that targets one of its Deployments is Running, or is still pending and was created earlier (ties broken
 * by name, so two plans applied at once never both proceed). Dry runs touch nothing and hold no lock.
 */
export function activePlanConflicts(
  self: KubeObject,
  plans: readonly KubeObject[],
  deployments: readonly string[],
): PlanConflict[] {
  const wanted = new Set(deployments);
  const out: PlanConflict[] = [];
  for (const p of plans) {
    if (p.metadata.uid === self.metadata.uid || p.metadata.namespace !== self.metadata.namespace) continue;
    if (p.spec?.dryRun === true) continue;
    const phase: string = p.status?.phase ?? 'Pending';
    if (TERMINAL.has(phase)) continue;
    if (phase !== 'Running' && !isOlder(p, self)) continue;
    for (const t of (p.spec?.targets?.deployments ?? []) as { name: string }[]) {
      if (wanted.has(t.name)) out.push({ deployment: t.name, plan: p.metadata.name, phase });
    }
  }
  return out;
}
