// What `nxt-rollback health` says about each thing it looks at: pure functions of the objects read, so the
// verdicts are unit-tested without a cluster (health.ts reads, these decide, health.ts prints).
import {
  BACKUP_SCHEDULE_DEFAULTS,
  type Backup,
  type BackupScheduleStatus,
} from '../api/v1alpha1/backupschedule.js';
import { ConditionType, parseDuration } from '../api/v1alpha1/common.js';
import { SEVERITY_RTO, ROLLBACK_PLAN_DEFAULTS, type Severity } from '../api/v1alpha1/rollbackplan.js';
import { findCondition, type Condition } from '../kube/conditions.js';
import type { KubeObject } from '../kube/rest.js';
import { conditionOf } from './conditions.js';
import { formatDuration } from './output.js';

/** ok: fine; warning: worth a look, still healthy; unhealthy: the verdict fails; unknown: cannot tell (fails). */
export type HealthState = 'ok' | 'warning' | 'unhealthy' | 'unknown';

export const isFailing = (s: HealthState) => s === 'unhealthy' || s === 'unknown';

// --- targets -------------------------------------------------------------------------------------------

interface DeploymentLike extends KubeObject {
  spec?: {
    replicas?: number;
    paused?: boolean;
    template?: { spec?: { containers?: { name: string; image?: string }[] } };
  };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
    readyReplicas?: number;
    availableReplicas?: number;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
}

export interface TargetHealth {
  name: string;
  found: boolean;
  ready: number;
  desired: number;
  revision?: string;
  images: string[];
  /** complete, progressing, paused, failed (ProgressDeadlineExceeded), or not found. */
  rollout: 'complete' | 'progressing' | 'paused' | 'failed' | 'not found';
  state: HealthState;
  message: string;
}

/** kubectl rollout status's reading of a Deployment, plus ready/desired. */
export function deploymentHealth(name: string, d: DeploymentLike | undefined): TargetHealth {
  if (!d)
    return {
      name,
      found: false,
      ready: 0,
      desired: 0,
      images: [],
      rollout: 'not found',
      state: 'unhealthy',
      message: `Deployment ${name} not found`,
    };
  const desired = d.spec?.replicas ?? 1;
  const s = d.status ?? {};
  const ready = s.readyReplicas ?? 0;
  const base = {
    name,
    found: true,
    ready,
    desired,
    revision: d.metadata.annotations?.['deployment.kubernetes.io/revision'],
    images: (d.spec?.template?.spec?.containers ?? []).map((c) => c.image ?? ''),
  };
  const progressing = conditionOf(d, 'Progressing');
  let rollout: TargetHealth['rollout'];
  let message: string;
  if (d.spec?.paused) {
    rollout = 'paused';
    message = 'rollout paused';
  } else if (progressing?.reason === 'ProgressDeadlineExceeded') {
    rollout = 'failed';
    message = `rollout failed: ${progressing.message ?? 'progress deadline exceeded'}`;
  } else if (
    (s.observedGeneration ?? 0) < (d.metadata.generation ?? 0) ||
    (s.updatedReplicas ?? 0) < desired ||
    (s.replicas ?? 0) > (s.updatedReplicas ?? 0) ||
    (s.availableReplicas ?? 0) < (s.updatedReplicas ?? 0)
  ) {
    rollout = 'progressing';
    message = `rollout in progress: ${s.updatedReplicas ?? 0} of ${desired} updated`;
  } else {
    rollout = 'complete';
    message = '';
  }
  let state: HealthState = 'ok';
  if (rollout === 'failed' || (desired > 0 && ready === 0)) state = 'unhealthy';
  else if (rollout !== 'complete' || ready < desired) state = 'warning';
  if (ready < desired) message = [`${ready}/${desired} ready`, message].filter(Boolean).join('; ');
  return { ...base, rollout, state, message };
}

// --- backups -------------------------------------------------------------------------------------------

interface ScheduleLike extends KubeObject {
  spec?: { objectives?: { rpo?: string }; suspend?: boolean };
  status?: BackupScheduleStatus;
}

export interface ConditionSummary {
  status: string;
  reason: string;
  message: string;
}

export interface BackupHealth {
  name: string;
  newestBackup?: { id: string; finishedAt: string; verified: boolean };
  /** Age of the newest good backup now (null: there is none). */
  ageSeconds: number | null;
  rpoObjective: string;
  rpoObjectiveSeconds: number;
  /** status.rpoSeconds as the operator last wrote it. */
  statusRpoSeconds?: number;
  lastTestRestore?: BackupScheduleStatus['lastTestRestore'];
  conditions: Record<string, ConditionSummary | undefined>;
  state: HealthState;
  problems: string[];
}

const SCHEDULE_CONDITIONS = [
  ConditionType.Ready,
  ConditionType.LastBackupSucceeded,
  ConditionType.RPOMet,
  ConditionType.LastTestRestoreSucceeded,
] as const;

/** The newest backup a restore would use: verified, not a plan's safety backup. */
export function newestGoodBackup(status: BackupScheduleStatus | undefined): Backup | undefined {
  const candidates = [
    ...(status?.backups ?? []),
    ...(status?.lastSuccessfulBackup ? [status.lastSuccessfulBackup] : []),
  ]
    .filter((b) => b.verified === true && b.purpose !== 'safety')
    .sort((a, b) => Date.parse(b.finishedAt) - Date.parse(a.finishedAt));
  return candidates[0];
}

export const rpoObjectiveOf = (s: ScheduleLike) => s.spec?.objectives?.rpo ?? BACKUP_SCHEDULE_DEFAULTS.rpo;

const summary = (c: Condition | undefined): ConditionSummary | undefined =>
  c ? { status: c.status, reason: c.reason, message: c.message } : undefined;

export function scheduleHealth(s: ScheduleLike, now: number): BackupHealth {
  const name = s.metadata.name;
  const rpoObjective = rpoObjectiveOf(s);
  const rpoObjectiveSeconds = parseDuration(rpoObjective) / 1000;
  const newest = newestGoodBackup(s.status);
  const ageSeconds = newest ? Math.max(0, Math.round((now - Date.parse(newest.finishedAt)) / 1000)) : null;
  const conds = (s.status?.conditions ?? []) as Condition[];
  const conditions = Object.fromEntries(
    SCHEDULE_CONDITIONS.map((t) => [t, summary(findCondition(conds, t))]),
  );
  const problems: string[] = [];
  const warnings: string[] = [];
  if (ageSeconds === null) problems.push(`backup ${name}: no verified backup yet`);
  else if (ageSeconds > rpoObjectiveSeconds)
    problems.push(
      `backup ${name}: newest verified backup is ${formatDuration(ageSeconds)} old, RPO objective ${rpoObjective}`,
    );
  const ready = conditions[ConditionType.Ready];
  if (ready?.status === 'False')
    problems.push(`backup ${name}: not Ready (${ready.reason}: ${ready.message})`);
  const last = conditions[ConditionType.LastBackupSucceeded];
  if (last?.status === 'False')
    problems.push(`backup ${name}: last backup failed (${last.reason}: ${last.message})`);
  const restore = conditions[ConditionType.LastTestRestoreSucceeded];
  if (restore?.status === 'False')
    problems.push(`backup ${name}: last test restore failed (${restore.reason}: ${restore.message})`);
  if (!s.status?.lastTestRestore) warnings.push('never test-restored');
  if (s.spec?.suspend) warnings.push('suspended');
  return {
    name,
    ...(newest
      ? { newestBackup: { id: newest.id, finishedAt: newest.finishedAt, verified: newest.verified === true } }
      : {}),
    ageSeconds,
    rpoObjective,
    rpoObjectiveSeconds,
    ...(s.status?.rpoSeconds !== undefined ? { statusRpoSeconds: s.status.rpoSeconds } : {}),
    ...(s.status?.lastTestRestore ? { lastTestRestore: s.status.lastTestRestore } : {}),
    conditions,
    state: problems.length ? 'unhealthy' : warnings.length ? 'warning' : 'ok',
    problems: problems.length ? problems : warnings.map((w) => `backup ${name}: ${w}`),
  };
}

// --- plans ---------------------------------------------------------------------------------------------

interface PlanLike extends KubeObject {
  spec?: {
    scope?: string;
    dryRun?: boolean;
    severity?: Severity;
    objectives?: { rto?: string };
    targets?: { deployments?: { name: string }[] };
  };
  status?: {
    phase?: string;
    conditions?: Condition[];
    startedAt?: string;
    completedAt?: string;
    durationSeconds?: number;
  };
}

export interface PlansHealth {
  total: number;
  byPhase: Record<string, number>;
  /** Plans that may act or are acting: Armed, AwaitingApproval, Running. */
  active: { name: string; phase: string; scope?: string; severity?: string }[];
  /** The newest plan that ran (not a dry run). */
  last?: {
    name: string;
    phase: string;
    completedAt?: string;
    durationSeconds?: number;
    rto: string;
    rtoMet?: ConditionSummary;
  };
  state: HealthState;
  problems: string[];
}

const ACTIVE = new Set(['Armed', 'AwaitingApproval', 'Running']);
const RAN = new Set(['Running', 'Succeeded', 'Failed']);

export const planRto = (p: PlanLike) =>
  p.spec?.objectives?.rto ?? (p.spec?.severity ? SEVERITY_RTO[p.spec.severity] : ROLLBACK_PLAN_DEFAULTS.rto);

export function plansHealth(plans: PlanLike[]): PlansHealth {
  const byPhase: Record<string, number> = {};
  for (const p of plans) {
    const phase = p.status?.phase ?? 'Pending';
    byPhase[phase] = (byPhase[phase] ?? 0) + 1;
  }
  const active = plans
    .filter((p) => ACTIVE.has(p.status?.phase ?? ''))
    .map((p) => ({
      name: p.metadata.name,
      phase: p.status!.phase!,
      ...(p.spec?.scope ? { scope: p.spec.scope } : {}),
      ...(p.spec?.severity ? { severity: p.spec.severity } : {}),
    }));
  const when = (p: PlanLike) =>
    Date.parse(p.status?.completedAt ?? p.status?.startedAt ?? p.metadata.creationTimestamp ?? '') || 0;
  const ran = plans
    .filter((p) => !p.spec?.dryRun && RAN.has(p.status?.phase ?? ''))
    .sort((a, b) => when(b) - when(a));
  const lastPlan = ran[0];
  const problems: string[] = [];
  let state: HealthState = 'ok';
  let last: PlansHealth['last'];
  if (lastPlan) {
    const rtoMet = summary(findCondition(lastPlan.status?.conditions, ConditionType.RTOMet));
    last = {
      name: lastPlan.metadata.name,
      phase: lastPlan.status!.phase!,
      ...(lastPlan.status?.completedAt ? { completedAt: lastPlan.status.completedAt } : {}),
      ...(lastPlan.status?.durationSeconds !== undefined
        ? { durationSeconds: lastPlan.status.durationSeconds }
        : {}),
      rto: planRto(lastPlan),
      ...(rtoMet ? { rtoMet } : {}),
    };
    // A failed last rollback means production may not be back where it should be.
    if (last.phase === 'Failed') {
      state = 'unhealthy';
      problems.push(`plan ${last.name}: the last rollback failed`);
    } else if (rtoMet?.status === 'False') {
      state = 'warning';
      problems.push(`plan ${last.name}: the last rollback missed its RTO ${last.rto} (${rtoMet.message})`);
    }
  }
  const waiting = active.filter((a) => a.phase === 'AwaitingApproval');
  if (waiting.length) {
    if (state === 'ok') state = 'warning';
    problems.push(...waiting.map((a) => `plan ${a.name}: awaiting approval`));
  }
  return { total: plans.length, byPhase, active, ...(last ? { last } : {}), state, problems };
}

// --- operator ------------------------------------------------------------------------------------------

export interface LeaseLike extends KubeObject {
  spec?: {
    holderIdentity?: string;
    renewTime?: string;
    acquireTime?: string;
    leaseDurationSeconds?: number;
    leaseTransitions?: number;
  };
}

export interface OperatorHealth {
  lease: { namespace: string; name: string };
  found: boolean;
  holder?: string;
  renewTime?: string;
  renewAgeSeconds?: number;
  leaseDurationSeconds?: number;
  state: HealthState;
  message: string;
}

/**
 * The leader is healthy when someone holds the Lease and renewed it within its duration (a leader that stopped
 * renewing loses it to a standby after exactly that long). `lease` undefined: not found; a string: why it
 * could not be read.
 */
export function leaseHealth(
  where: { namespace: string; name: string },
  lease: LeaseLike | undefined | { unreadable: string },
  now: number,
): OperatorHealth {
  const at = `Lease ${where.namespace}/${where.name}`;
  if (lease && 'unreadable' in lease)
    return {
      lease: where,
      found: false,
      state: 'unknown',
      message: `cannot read ${at}: ${lease.unreadable}`,
    };
  if (!lease)
    return {
      lease: where,
      found: false,
      state: 'unhealthy',
      message: `no leader: ${at} not found (is the operator running, with leader election on?)`,
    };
  const spec = lease.spec ?? {};
  const renew = spec.renewTime ?? spec.acquireTime;
  const renewAgeSeconds = renew ? Math.max(0, (now - Date.parse(renew)) / 1000) : undefined;
  const duration = spec.leaseDurationSeconds ?? 15;
  const base = {
    lease: where,
    found: true,
    ...(spec.holderIdentity ? { holder: spec.holderIdentity } : {}),
    ...(renew ? { renewTime: renew } : {}),
    ...(renewAgeSeconds !== undefined ? { renewAgeSeconds: Math.round(renewAgeSeconds * 10) / 10 } : {}),
    leaseDurationSeconds: duration,
  };
  if (!spec.holderIdentity)
    return { ...base, state: 'unhealthy', message: `no leader: ${at} is not held (released)` };
  if (renewAgeSeconds === undefined || renewAgeSeconds > duration)
    return {
      ...base,
      state: 'unhealthy',
      message: `leader ${spec.holderIdentity} stopped renewing ${at}: last renewed ${formatDuration(renewAgeSeconds)} ago, lease duration ${duration}s`,
    };
  return {
    ...base,
    state: 'ok',
    message: `leader ${spec.holderIdentity}, renewed ${formatDuration(renewAgeSeconds)} ago`,
  };
}

// --- verdict -------------------------------------------------------------------------------------------

export interface HealthVerdict {
  healthy: boolean;
  /** What fails the verdict, one line each. */
  unhealthy: string[];
  /** What is worth a look without failing it. */
  warnings: string[];
}

export function healthVerdict(parts: {
  targets: TargetHealth[];
  backups: BackupHealth[];
  plans: PlansHealth;
  operator: OperatorHealth;
}): HealthVerdict {
  const unhealthy: string[] = [];
  const warnings: string[] = [];
  const add = (state: HealthState, lines: string[]) =>
    (isFailing(state) ? unhealthy : state === 'warning' ? warnings : []).push(...lines);
  for (const t of parts.targets) add(t.state, [`deployment ${t.name}: ${t.message || t.rollout}`]);
  for (const b of parts.backups) add(b.state, b.problems);
  add(parts.plans.state, parts.plans.problems);
  add(parts.operator.state, [`operator: ${parts.operator.message}`]);
  return { healthy: unhealthy.length === 0, unhealthy, warnings };
}
