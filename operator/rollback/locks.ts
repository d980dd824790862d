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

/** A plan holds its Deployments once its pre-validation passed, until it finishes. */
const holdsLock = (p: KubeObject) =>
  (p.status?.steps ?? []).some(
    (s: { name: string; result: string }) => s.name === 'PreValidation' && s.result === 'Succeeded',
  );

/**
 * The per-Deployment lock, derived from durable state (the plans and their status) so it survives operator
 * restarts without a separate lock object. A plan may not start while another plan of the same namespace that
 * targets one of its Deployments and has not finished either holds the lock (passed pre-validation) or was
 * created earlier (ties broken by name): of two plans applied at once exactly one proceeds. Dry runs touch
 * nothing and hold no lock.
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
    if (!holdsLock(p) && !isOlder(p, self)) continue;
    for (const t of (p.spec?.targets?.deployments ?? []) as { name: string }[]) {
      if (wanted.has(t.name))
        out.push({
          deployment: t.name,
          plan: p.metadata.name,
          phase: holdsLock(p) ? phase : `${phase}, created earlier`,
        });
    }
  }
  return out;
}
