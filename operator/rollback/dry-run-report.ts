import type { EffectiveRollbackPlanSpec } from '../api/v1alpha1/rollbackplan.js';
import { isNotFound } from '../kube/errors.js';
import type { KubeClient } from '../kube/rest.js';
import { readDeploymentHistory } from './deployment-io.js';
import { planDeploymentRollback } from './deployment-undo.js';
import { buildDeploymentDryRun, type DeploymentDryRun } from './dry-run.js';
import type { StepDefinition } from './plan-run.js';

export interface DryRunReport {
  summary: string;
  /** Whether a real run would pass pre-validation as things stand now. */
  wouldSucceed: boolean;
  deployments: (DeploymentDryRun | { name: string; action: 'refuse'; reason: string; message: string })[];
  steps: string[];
  checks: string[];
  [k: string]: unknown;
}

/** What a real run would do, read-only: per Deployment from/to revision, image changes and template diff. */
export async function buildDryRunReport(
  client: KubeClient,
  namespace: string,
  spec: EffectiveRollbackPlanSpec,
  steps: StepDefinition[],
): Promise<DryRunReport> {
  const deployments: DryRunReport['deployments'] = [];
  for (const t of spec.targets.deployments ?? []) {
    try {
      const h = await readDeploymentHistory(client, namespace, t.name);
      deployments.push(
        buildDeploymentDryRun(
          h.deployment,
          planDeploymentRollback(h.deployment, h.replicaSets, t.toRevision ?? 0),
        ),
      );
    } catch (e) {
      if (!isNotFound(e)) throw e;
      deployments.push({
        name: t.name,
        action: 'refuse',
        reason: 'TargetNotFound',
        message: `Deployment "${t.name}" not found in namespace ${namespace}`,
      });
    }
  }
  const checks = [
    'targets exist',
    'the wanted revisions exist',
    'no target is paused',
    'no other active RollbackPlan holds a target',
    'the operator may patch deployments and list replicasets',
    `rollouts complete within ${spec.validation.timeout}`,
    ...(spec.validation.http ?? []).map(
      (h) => `GET ${h.url} returns ${h.expectStatus}${h.bodyMatch ? ` and matches /${h.bodyMatch}/` : ''}`,
    ),
  ];
  const refused = deployments.filter((d) => d.action === 'refuse');
  const rollbacks = deployments.filter((d) => d.action === 'rollback');
  const summary = refused.length
    ? `dry run: a real run would fail pre-validation: ${refused.map((d) => d.message).join('; ')}`
    : `dry run: would roll back ${rollbacks.length} of ${deployments.length} Deployment(s)` +
      (rollbacks.length
        ? `: ${rollbacks.map((d) => d.message.replace(/^would roll back /, '')).join('; ')}`
        : '');
  return {
    summary,
    wouldSucceed: refused.length === 0,
    deployments,
    steps: steps.map((s) => s.name),
    checks,
  };
}
