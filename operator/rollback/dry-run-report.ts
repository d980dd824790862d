import type { BackupScheduleSpec } from '../api/v1alpha1/backupschedule.js';
import type { EffectiveRollbackPlanSpec } from '../api/v1alpha1/rollbackplan.js';
import { isNotFound } from '../kube/errors.js';
import type { KubeClient, KubeObject } from '../kube/rest.js';
import { boundText } from '../kube/bounded.js';
import { selectBackup } from './backup-selection.js';
import { flagSummary, readFlagDryRun, type FlagDryRun } from './dry-run-flags.js';
import { scopeTargets } from './scope.js';
import { readDeploymentHistory } from './deployment-io.js';
import { planDeploymentRollback } from './deployment-undo.js';
import { buildDeploymentDryRun, type DeploymentDryRun } from './dry-run.js';
import type { StepDefinition } from './plan-run.js';
import { claimOf } from '../backup/shared-claim.js';

/**
 * The summary becomes the Ready condition's message (metav1.Condition: at most 32768 characters) and an
 * Event's note (cut to 1024 by the recorder); dryRunReport itself is free-form, so this is its only bound.
 */
export const DRY_RUN_SUMMARY_MAX = 32768;

export interface DryRunReport {
  summary: string;
  /** Whether a real run would pass pre-validation as things stand now. */
  wouldSucceed: boolean;
  deployments: (DeploymentDryRun | { name: string; action: 'refuse'; reason: string; message: string })[];
  steps: string[];
  checks: string[];
  [k: string]: unknown;
}

/** Where a schedule keeps its backups (`s3://bucket/prefix` or `claim <name>`), from its raw object. */
function storageLocationOf(schedule: KubeObject): string | undefined {
  const where = claimOf(schedule);
  if (!where) return undefined;
  return where.startsWith('s3://') ? where : `claim ${where}`;
}

/** What a real run would do, read-only: per Deployment from/to revision, image changes and template diff. */
export async function buildDryRunReport(
  client: KubeClient,
  namespace: string,
  spec: EffectiveRollbackPlanSpec,
  steps: StepDefinition[],
  schedule: (name: string) => KubeObject | undefined = () => undefined,
  /** The operator's cluster id (config.clusterId): a foreignCluster naming it reads no prefix (selectBackup). */
  ownClusterId?: string,
): Promise<DryRunReport> {
  const on = scopeTargets(spec);
  const deployments: DryRunReport['deployments'] = [];
  for (const t of on.deployments ? (spec.targets.deployments ?? []) : []) {
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
  const problems: string[] = [];
  let database: Record<string, unknown> | undefined;
  if (on.database) {
    const t = spec.targets.database!;
    const sched = schedule(t.backupScheduleRef.name);
    if (!sched) problems.push(`BackupSchedule "${t.backupScheduleRef.name}" not found`);
    else {
      const storage = (sched.spec as { storage?: BackupScheduleSpec['storage'] } | undefined)?.storage;
      const chosen = selectBackup(sched.status, t.backup, storage, ownClusterId);
      if (chosen.fromPrefix) {
        // No finish time known before the verify Job reads the manifest, so no data-loss window.
        database = {
          backupId: chosen.fromPrefix.id,
          location: chosen.fromPrefix.location,
          source: 'prefix',
          mode: t.mode,
          safetyBackup: t.safetyBackup,
          message: `would restore backup ${chosen.fromPrefix.id} from the prefix ${chosen.fromPrefix.location} (${t.mode}), not from the schedule's recorded backups: ${chosen.fromPrefix.message}`,
        };
      } else if (chosen.backup) {
        const lossSeconds = Math.max(
          0,
          Math.round((Date.now() - Date.parse(chosen.backup.finishedAt)) / 1000),
        );
        const location = storageLocationOf(sched);
        database = {
          backupId: chosen.backup.id,
          ...(location ? { location } : {}),
          source: 'schedule',
          backupFinishedAt: chosen.backup.finishedAt,
          mode: t.mode,
          safetyBackup: t.safetyBackup,
          // Writes since the backup are lost by a restore unless the safety backup is used to recover them;
          // those after the safety backup's snapshot (taken alongside the verify Job) are in neither.
          dataLossWindowSeconds: lossSeconds,
          message: `would restore backup ${chosen.backup.id}${location ? ` from ${location}` : ''} (${t.mode}); data written in the last ${lossSeconds}s would be rolled back${t.safetyBackup ? ', kept in a safety backup except the writes made after it starts (with the verify Job) and before the restore' : ''}`,
        };
      } else problems.push(chosen.message);
    }
    checks.push(
      'the backup is re-verified (sha256, pg_restore --list) before use',
      'row counts match the backup manifest after the restore',
    );
  }
  let featureFlags: FlagDryRun[] | undefined;
  if (on.flags) {
    const flags = await readFlagDryRun(client, namespace, spec.targets.featureFlags!);
    featureFlags = flags.flags;
    problems.push(...flags.problems);
    checks.push('the flag objects exist and the operator may patch them');
  }
  const refused = deployments.filter((d) => d.action === 'refuse');
  const rollbacks = deployments.filter((d) => d.action === 'rollback');
  const failures = [...refused.map((d) => d.message), ...problems];
  const summary = failures.length
    ? `dry run: a real run would fail pre-validation: ${failures.join('; ')}`
    : `dry run: would roll back ${rollbacks.length} of ${deployments.length} Deployment(s)` +
      (rollbacks.length
        ? `: ${rollbacks.map((d) => d.message.replace(/^would roll back /, '')).join('; ')}`
        : '');
  // Strong evidence only (the only evidence spec.gitops.policy acts on): the instance label alone (weak) is on every Helm-installed Deployment.
  const owned = deployments.flatMap((d) =>
    'gitops' in d && d.gitops?.owner && !d.gitops.weak
      ? [`${d.name} is applied from Git by ${d.gitops.owner}`]
      : [],
  );
  const parts = [
    summary,
    owned.length ? `GitOps: ${owned.join(', ')} (${GITOPS_POLICY_EFFECT[spec.gitops.policy]})` : undefined,
    database && String(database.message),
    featureFlags?.length ? flagSummary(featureFlags) : undefined,
  ];
  return {
    summary: boundText(parts.filter(Boolean).join('; '), DRY_RUN_SUMMARY_MAX),
    wouldSucceed: failures.length === 0,
    deployments,
    ...(database ? { database } : {}),
    ...(featureFlags ? { featureFlags } : {}),
    steps: steps.map((s) => s.name),
    checks,
  };
}

/** What spec.gitops.policy would do about a strong GitOps owner, for the dry-run summary (docs/gitops.md). */
const GITOPS_POLICY_EFFECT = {
  suspend: 'policy suspend: paused before the rollback, resumed when Git moves on',
  refuse: 'policy refuse: a real run would fail pre-validation; revert in Git instead',
  ignore: 'policy ignore: its next sync may undo the rollback',
} as const;
