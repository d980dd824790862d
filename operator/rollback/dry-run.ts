// The dry-run report for a Deployment rollback: what would change, in terms a reviewer checks before
// approving (images, the full pod template diff), built from a plan without touching the cluster.
import { stringify } from 'yaml';
import {
  withoutHashLabel,
  type Container,
  type DeploymentRollbackPlan,
  type PodTemplate,
  type RawDeployment,
} from './deployment-undo.js';
import { unifiedDiff } from './unified-diff.js';
import { describeOwner, gitOpsOwner, weakOwnerNote, type GitOpsOwner } from '../gitops/ownership.js';
import { boundText } from '../kube/bounded.js';

export interface ImageChange {
  container: string;
  /** null when the container only exists in the target revision. */
  from: string | null;
  /** null when the container does not exist in the target revision. */
  to: string | null;
}

export interface DeploymentDryRun {
  name: string;
  action: DeploymentRollbackPlan['action'];
  /** Why a skip or refusal happened; null for a rollback. */
  reason: string | null;
  fromRevision: number | null;
  toRevision: number | null;
  imageChanges: ImageChange[];
  /** Unified diff of the current pod template against the restored one; '' when nothing would change. */
  templateDiff: string;
  message: string;
  /** The GitOps tool that applies this Deployment from Git, when its metadata says so. */
  gitops?: GitOpsNote;
}

/**
 * Strong evidence (Flux labels, a self-referencing tracking id): `owner` and `warning`. Weak evidence (the
 * instance label alone, which Helm sets too): `weak: true` and a neutral `note`, never a warning.
 */
export type GitOpsNote = GitOpsOwner & { owner?: string; warning?: string; note?: string };

/** status.dryRunReport...gitops texts: a status message's limit (reasonText, 1024). */
export const GITOPS_TEXT_MAX = 1024;

/**
 * The GitOps owner of a Deployment with what it means for a rollback: the operator does not pause GitOps tools
 * yet (spec.gitops is not acted on), so a self-healing sync puts the template from Git back.
 */
export function gitOpsNote(deployment: RawDeployment): GitOpsNote | undefined {
  const owner = gitOpsOwner(deployment.metadata as Parameters<typeof gitOpsOwner>[0]);
  if (!owner) return undefined;
  if (owner.weak) return { ...owner, note: boundText(weakOwnerNote(owner), GITOPS_TEXT_MAX) };
  const who = boundText(describeOwner(owner), GITOPS_TEXT_MAX);
  return {
    ...owner,
    owner: who,
    warning: boundText(
      `${who} applies this Deployment from Git and may put the current template back on its next sync: revert the change in Git, or suspend ${owner.tool === 'flux' ? 'the ' + owner.kind : 'automated sync of the Application'}, before rolling back`,
      GITOPS_TEXT_MAX,
    ),
  };
}

// JSON null means "absent" to the API server; dropping it keeps `creationTimestamp: null` out of the diff.
function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => [k, withoutNulls(v)]),
  );
}

/** A pod template as YAML with sorted keys and no `pod-template-hash`, so equal templates render equally. */
export function renderTemplateYaml(template: PodTemplate): string {
  return stringify(withoutNulls(withoutHashLabel(template)), { sortMapEntries: true, lineWidth: 0 });
}

const allContainers = (t: PodTemplate): Container[] => [
  ...(t.spec?.initContainers ?? []),
  ...(t.spec?.containers ?? []),
];

/** Image changes per container name (names are unique across init and app containers in a pod). */
export function imageChanges(current: PodTemplate, target: PodTemplate): ImageChange[] {
  const before = new Map(allContainers(current).map((c) => [c.name, c.image ?? null]));
  const after = new Map(allContainers(target).map((c) => [c.name, c.image ?? null]));
  const names = [...new Set([...before.keys(), ...after.keys()])];
  return names
    .map((container) => ({
      container,
      from: before.get(container) ?? null,
      to: after.get(container) ?? null,
    }))
    .filter((c) => c.from !== c.to);
}

const revisionLabel = (r: number | null) => (r === null ? 'the current template' : `revision ${r}`);

export function buildDeploymentDryRun(
  deployment: RawDeployment,
  plan: DeploymentRollbackPlan,
): DeploymentDryRun {
  const name = deployment.metadata.name ?? '';
  const gitops = gitOpsNote(deployment);
  const common = {
    name,
    action: plan.action,
    fromRevision: plan.fromRevision,
    toRevision: plan.toRevision,
    ...(gitops ? { gitops } : {}),
  };
  if (plan.action !== 'rollback') {
    return { ...common, reason: plan.reason, imageChanges: [], templateDiff: '', message: plan.message };
  }
  const from = `deployment/${name} (${revisionLabel(plan.fromRevision)})`;
  const to = `replicaset/${plan.replicaSet} (revision ${plan.toRevision})`;
  const images = imageChanges(deployment.spec.template, plan.template);
  const imageText =
    images.length === 0
      ? 'no image changes'
      : images.map((c) => `${c.container}: ${c.from} -> ${c.to}`).join(', ');
  return {
    ...common,
    reason: null,
    imageChanges: images,
    templateDiff: unifiedDiff(
      renderTemplateYaml(deployment.spec.template),
      renderTemplateYaml(plan.template),
      from,
      to,
    ),
    message: `would roll back deployment "${name}" from ${revisionLabel(plan.fromRevision)} to revision ${plan.toRevision} (${imageText})`,
  };
}
