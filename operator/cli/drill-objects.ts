// What `nxt-rollback drill` creates and how it judges the result: pure builders (the scratch namespace, the
// copy of the Deployment, the drill's RollbackPlan) and the verdict, so each is unit-tested.
import { randomBytes } from 'node:crypto';
import { API_VERSION, parseDuration } from '../api/v1alpha1/common.js';
import { withoutHashLabel, type PodTemplate, type RawDeployment } from '../rollback/deployment-undo.js';
import { conditionOf } from './conditions.js';
import { formatDuration } from './output.js';

export const DRILL_NAMESPACE_PREFIX = 'nxt-drill-';
export const DRILL_SOURCE_LABEL = 'rollback.nxtnewday.io/drill-of';
export const CLI_MANAGED_BY = 'nxt-rollback-cli';

export const drillId = () => randomBytes(4).toString('hex');

/** A scratch namespace under Pod Security `restricted`, labelled so a leftover is easy to find. */
export function drillNamespace(id: string, source: { namespace: string; deployment: string }) {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name: `${DRILL_NAMESPACE_PREFIX}${id}`,
      labels: {
        'app.kubernetes.io/managed-by': CLI_MANAGED_BY,
        'pod-security.kubernetes.io/enforce': 'restricted',
        'pod-security.kubernetes.io/enforce-version': 'latest',
      },
      annotations: { [DRILL_SOURCE_LABEL]: `${source.namespace}/${source.deployment}` },
    },
  };
}

/** On the copy and its pods: which scratch namespace (drill) they belong to. */
export const DRILL_LABEL = 'rollback.nxtnewday.io/drill';

/**
 * The copy of `source` in the scratch namespace, created with `template` (the previous revision's, without
 * the ReplicaSet's pod-template-hash label). Only what a rollout needs is copied: one replica (a drill
 * measures a rollout, not capacity, and must not double production's footprint), the selector's labels and
 * a drill label (no argocd, app.kubernetes.io/instance or other labels that would make GitOps tools, Services
 * or monitoring take the copy for production), no annotations (the revision history starts anew), no status,
 * no owner. The pods get no ServiceAccount token (automountServiceAccountToken false): they run the real
 * images with the real env, and must not act on the cluster with the application's permissions.
 */
export function drillDeployment(source: RawDeployment, template: PodTemplate, namespace: string) {
  const spec = source.spec as RawDeployment['spec'] & Record<string, unknown>;
  const copied: Record<string, unknown> = { replicas: 1 };
  for (const k of ['selector', 'strategy', 'minReadySeconds', 'progressDeadlineSeconds'])
    if (spec[k] !== undefined) copied[k] = structuredClone(spec[k]);
  const keep = selectorKeys(spec.selector as Selector | undefined);
  const onlySelector = (labels: Record<string, string> | undefined) => ({
    ...Object.fromEntries(Object.entries(labels ?? {}).filter(([k]) => keep.has(k))),
    [DRILL_LABEL]: namespace,
  });
  const t = withoutHashLabel(template);
  const podTemplate = {
    ...t,
    metadata: { ...(t.metadata ?? {}), labels: onlySelector(t.metadata?.labels as Record<string, string>) },
    spec: { ...(t.spec ?? {}), automountServiceAccountToken: false },
  };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: source.metadata.name,
      namespace,
      labels: onlySelector(source.metadata.labels as Record<string, string> | undefined),
    },
    spec: { ...copied, revisionHistoryLimit: 10, paused: false, template: podTemplate },
  };
}

interface Selector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string }[];
}
/** The label keys a selector looks at: the pods need these, and nothing else. */
const selectorKeys = (s: Selector | undefined) =>
  new Set([...Object.keys(s?.matchLabels ?? {}), ...(s?.matchExpressions ?? []).map((e) => e.key)]);

/** ServiceAccounts the templates run as (other than `default`): the scratch namespace needs them to exist. */
export function serviceAccountsOf(...templates: PodTemplate[]): string[] {
  const names = new Set<string>();
  for (const t of templates) {
    const sa = (t.spec?.serviceAccountName ?? t.spec?.serviceAccount) as string | undefined;
    if (sa && sa !== 'default') names.add(sa);
  }
  return [...names].sort();
}

/** The drill's RollbackPlan: app scope, no severity (a manual plan runs at once), the source plan's RTO. */
export function drillPlan(name: string, namespace: string, deployment: string, rto: string, source: string) {
  return {
    apiVersion: API_VERSION,
    kind: 'RollbackPlan',
    metadata: { name, namespace, labels: { 'app.kubernetes.io/managed-by': CLI_MANAGED_BY } },
    spec: {
      scope: 'app',
      reason: `nxt-rollback drill of ${source}`,
      targets: { deployments: [{ name: deployment }] },
      objectives: { rto },
    },
  };
}

// --- figures and verdict -------------------------------------------------------------------------------

export interface AppFigures {
  plan: string;
  phase: string;
  fromRevision?: number;
  toRevision?: number;
  /** status.durationSeconds: the measured recovery time. */
  durationSeconds?: number;
  rto: string;
  rtoSeconds: number;
  rtoMet: boolean;
  message?: string;
}

export type DatabaseFigures =
  | { skipped: string }
  | {
      schedule: string;
      request: string;
      backupId?: string;
      result: 'Succeeded' | 'Failed' | 'NotStarted';
      /** status.lastTestRestore.durationSeconds: the measured restore time. */
      durationSeconds?: number;
      message?: string;
      /** Age of the newest verified backup when the drill ran (null: none). */
      backupAgeSeconds: number | null;
      rpo: string;
      rpoSeconds: number;
      rpoMet: boolean;
      /** The restore fits the plan's RTO objective too (a database rollback has the same deadline). */
      restoreWithinRto: boolean;
    };

export interface DrillVerdict {
  met: boolean;
  problems: string[];
}

export function appFigures(
  plan: { metadata: { name: string }; status?: Record<string, any> },
  rto: string,
): AppFigures {
  const st = plan.status ?? {};
  const rtoSeconds = parseDuration(rto) / 1000;
  const dep = (st.deployments ?? [])[0] as { fromRevision?: number; toRevision?: number } | undefined;
  const duration = typeof st.durationSeconds === 'number' ? st.durationSeconds : undefined;
  const succeeded = conditionOf(plan, 'Succeeded');
  const failed = succeeded?.status === 'False' ? succeeded : undefined;
  return {
    plan: plan.metadata.name,
    phase: st.phase ?? 'Pending',
    ...(dep?.fromRevision !== undefined ? { fromRevision: dep.fromRevision } : {}),
    ...(dep?.toRevision !== undefined ? { toRevision: dep.toRevision } : {}),
    ...(duration !== undefined ? { durationSeconds: duration } : {}),
    rto,
    rtoSeconds,
    rtoMet: st.phase === 'Succeeded' && duration !== undefined && duration <= rtoSeconds,
    ...(failed?.message ? { message: failed.message } : {}),
  };
}

export function drillVerdict(app: AppFigures, db: DatabaseFigures): DrillVerdict {
  const problems: string[] = [];
  if (app.phase !== 'Succeeded')
    problems.push(`the rollback plan ended ${app.phase}${app.message ? `: ${app.message}` : ''}`);
  else if (!app.rtoMet)
    problems.push(`the rollback took ${formatDuration(app.durationSeconds)}, over the RTO ${app.rto}`);
  if (!('skipped' in db)) {
    if (db.result !== 'Succeeded')
      problems.push(
        `the test restore ${db.result === 'NotStarted' ? 'did not start' : 'failed'}${db.message ? `: ${db.message}` : ''}`,
      );
    else if (!db.restoreWithinRto)
      problems.push(`the test restore took ${formatDuration(db.durationSeconds)}, over the RTO ${app.rto}`);
    if (!db.rpoMet)
      problems.push(
        db.backupAgeSeconds === null
          ? `no verified backup of ${db.schedule}`
          : `the newest backup of ${db.schedule} is ${formatDuration(db.backupAgeSeconds)} old, over the RPO ${db.rpo}`,
      );
  }
  return { met: problems.length === 0, problems };
}
