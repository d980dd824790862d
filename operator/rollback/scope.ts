import type { EffectiveRollbackPlanSpec } from '../api/v1alpha1/rollbackplan.js';

/** Which target kinds a scope acts on: full acts on every target the spec lists. */
export function scopeTargets(spec: EffectiveRollbackPlanSpec) {
  const t = spec.targets;
  const full = spec.scope === 'full';
  return {
    database: (spec.scope === 'database' || full) && !!t.database,
    deployments: (spec.scope === 'app' || full) && (t.deployments?.length ?? 0) > 0,
    flags: (spec.scope === 'feature' || full) && !!t.featureFlags,
  };
}
