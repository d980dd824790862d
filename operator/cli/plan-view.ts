// How the CLI shows a RollbackPlan: the JSON summary scripts read, the history row, the detail view of
// `status`, the live progress frame of `emergency` and its plain-line equivalent. Pure functions of the plan
// (and the clock), so the unit tests pin every column.
import { conditionOf as conditionOfAny } from './conditions.js';
import { ConditionType } from '../api/v1alpha1/common.js';
import type { RollbackPlanSpec, RollbackPlanStatus } from '../api/v1alpha1/rollbackplan.js';
import { age, formatDuration, table } from './output.js';

/** A RollbackPlan as the API server returns it (status may be absent or partly written). */
export interface PlanObject {
  metadata: {
    name: string;
    namespace?: string;
    creationTimestamp?: string;
    resourceVersion?: string;
    annotations?: Record<string, string>;
  };
  spec: RollbackPlanSpec;
  status?: RollbackPlanStatus;
}
type Step = NonNullable<RollbackPlanStatus['steps']>[number];
type Condition = NonNullable<RollbackPlanStatus['conditions']>[number];

/** Phases after which the plan never changes by itself. */
export const TERMINAL_PHASES = ['Succeeded', 'Failed', 'Expired', 'Vetoed', 'DryRunComplete'] as const;
/** Phases `status` lists when asked for no plan in particular. */
export const ACTIVE_PHASES = ['Pending', 'Armed', 'AwaitingApproval', 'Running'] as const;

export const isTerminalPhase = (phase: string | undefined) =>
  (TERMINAL_PHASES as readonly string[]).includes(phase ?? '');
export const isTerminal = (p: PlanObject) => isTerminalPhase(p.status?.phase);
/** Not ended: a plan the operator has not seen yet (no phase) counts as Pending. */
export const isActive = (p: PlanObject) =>
  (ACTIVE_PHASES as readonly string[]).includes(p.status?.phase ?? 'Pending');

export const conditionOf = (p: PlanObject, type: string): Condition | undefined => conditionOfAny(p, type);

/** RTOMet as a boolean; null while the plan has not succeeded (the condition is set on success only). */
export function rtoMet(p: PlanObject): boolean | null {
  const c = conditionOf(p, ConditionType.RTOMet);
  return c ? c.status === 'True' : null;
}

/**
 * What started the plan: DryRun, Validate (spec.validateOnly), Manual, the fired condition's type, or Auto for
 * an armed plan not fired.
 */
export function triggerOf(p: PlanObject): string {
  if (p.spec.dryRun) return 'DryRun';
  if (p.spec.validateOnly) return 'Validate';
  if (p.status?.trigger?.type) return p.status.trigger.type;
  return p.spec.trigger?.mode === 'auto' ? 'Auto' : 'Manual';
}

const ms = (iso: string | undefined) => (iso ? Date.parse(iso) : NaN);

/** Seconds a step took, or has been running so far (never negative when clocks disagree). */
export function stepSeconds(s: Step, now: number): number | undefined {
  const start = ms(s.startedAt);
  const end = s.finishedAt ? ms(s.finishedAt) : s.result === 'Running' ? now : NaN;
  if (!Number.isFinite(start) || !Number.isFinite(end)) return undefined;
  return Math.max(0, (end - start) / 1000);
}

/** The document `-o json` prints for one plan (emergency's result, `status <plan>`). Stable field names. */
export function planSummary(p: PlanObject) {
  const s = p.status ?? {};
  return {
    name: p.metadata.name,
    namespace: p.metadata.namespace ?? '',
    scope: p.spec.scope,
    severity: p.spec.severity ?? null,
    dryRun: p.spec.dryRun === true,
    reason: p.spec.reason ?? null,
    trigger: triggerOf(p),
    phase: s.phase ?? 'Pending',
    createdAt: p.metadata.creationTimestamp ?? null,
    startedAt: s.startedAt ?? null,
    completedAt: s.completedAt ?? null,
    durationSeconds: s.durationSeconds ?? null,
    recoverySeconds: s.recoverySeconds ?? null,
    rtoMet: rtoMet(p),
    approval: s.approval ?? null,
    veto: s.veto ?? null,
    steps: s.steps ?? [],
    conditions: s.conditions ?? [],
    deployments: s.deployments ?? [],
    database: s.database ?? null,
    featureFlags: s.featureFlags ?? [],
    ...(s.dryRunReport ? { dryRunReport: s.dryRunReport } : {}),
  };
}
export type PlanSummary = ReturnType<typeof planSummary>;

/** One line of `history` (`-o json` prints these objects). */
export function historyEntry(p: PlanObject) {
  return {
    name: p.metadata.name,
    namespace: p.metadata.namespace ?? '',
    scope: p.spec.scope,
    severity: p.spec.severity ?? null,
    trigger: triggerOf(p),
    result: p.status?.phase ?? 'Pending',
    durationSeconds: p.status?.durationSeconds ?? null,
    rtoMet: rtoMet(p),
    createdAt: p.metadata.creationTimestamp ?? null,
  };
}
export type HistoryEntry = ReturnType<typeof historyEntry>;

const newestFirst = (a: PlanObject, b: PlanObject) =>
  (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? '') ||
  a.metadata.name.localeCompare(b.metadata.name);

/** The newest `limit` plans, newest first. */
export const recentPlans = (plans: PlanObject[], limit: number) =>
  [...plans].sort(newestFirst).slice(0, limit);

const yesNo = (b: boolean | null) => (b === null ? '' : b ? 'yes' : 'no');

export function historyTable(entries: HistoryEntry[], allNamespaces: boolean, now = Date.now()): string {
  const headers = ['name', 'scope', 'severity', 'trigger', 'result', 'duration', 'rto met', 'age'];
  const rows = entries.map((e) => [
    e.name,
    e.scope,
    e.severity ?? '',
    e.trigger,
    e.result,
    formatDuration(e.durationSeconds),
    yesNo(e.rtoMet),
    age(e.createdAt ?? undefined, now),
  ]);
  return allNamespaces
    ? table(
        ['namespace', ...headers],
        rows.map((r, i) => [entries[i]!.namespace, ...r]),
      )
    : table(headers, rows);
}

/**
 * The step running now, or the Reconciling reason. The journal's first Running entry: steps start in order,
 * and one that starts early (SafetyBackup, whose Job runs alongside the verify Job) is not the current step
 * while PreValidation still runs.
 */
export function currentStep(p: PlanObject): string {
  const running = (p.status?.steps ?? []).find((s) => s.result === 'Running');
  if (running) return running.name;
  const r = conditionOf(p, ConditionType.Reconciling);
  return r?.status === 'True' ? r.reason : '';
}

/** `status` without a name: the plans that have not ended. */
export function activeTable(plans: PlanObject[], allNamespaces: boolean, now = Date.now()): string {
  const headers = ['name', 'scope', 'severity', 'phase', 'step', 'age', 'message'];
  const rows = plans.map((p) => [
    p.metadata.name,
    p.spec.scope,
    p.spec.severity ?? '',
    p.status?.phase ?? 'Pending',
    currentStep(p),
    age(p.metadata.creationTimestamp, now),
    oneLine(conditionOf(p, ConditionType.Ready)?.message ?? '', 100),
  ]);
  return allNamespaces
    ? table(
        ['namespace', ...headers],
        rows.map((r, i) => [plans[i]!.metadata.namespace, ...r]),
      )
    : table(headers, rows);
}

/** A message on one line, cut to `max` characters (tables and live frames must not wrap). */
export function oneLine(s: string, max: number): string {
  const flat = s.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, Math.max(0, max - 1))}…`;
}

export function stepsTable(steps: Step[], now: number, messageWidth = 1000): string {
  return table(
    ['step', 'result', 'duration', 'message'],
    steps.map((s) => [
      s.name,
      s.result,
      formatDuration(stepSeconds(s, now)),
      oneLine(s.message ?? '', messageWidth),
    ]),
  );
}

/** "Failed: TargetNotFound: Deployment "x" not found" from the Ready condition. */
export function outcomeLine(p: PlanObject): string {
  const phase = p.status?.phase ?? 'Pending';
  const ready = conditionOf(p, ConditionType.Ready);
  if (phase === 'Succeeded') {
    const rto = conditionOf(p, ConditionType.RTOMet);
    const took = p.status?.durationSeconds;
    return (
      `Succeeded${took !== undefined ? ` in ${formatDuration(took)}` : ''}` +
      (rto ? `; RTO ${rto.status === 'True' ? 'met' : 'MISSED'} (${rto.message})` : '')
    );
  }
  return ready ? `${phase}: ${ready.reason}: ${ready.message}` : phase;
}

/** The live frame of `emergency` on a terminal: header, phase and elapsed time, the step journal. */
export function progressFrame(
  p: PlanObject,
  elapsedSeconds: number,
  now: number,
  width: number,
  height = Infinity,
): string[] {
  const head = [
    `RollbackPlan ${p.metadata.namespace}/${p.metadata.name}   scope ${p.spec.scope}   severity ${p.spec.severity ?? '-'}${p.spec.dryRun ? '   dry run' : ''}`,
    `phase ${p.status?.phase ?? 'Pending'}   elapsed ${formatDuration(elapsedSeconds)}`,
  ];
  const steps = p.status?.steps ?? [];
  let body = steps.length ? stepsTable(steps, now).split('\n') : ['waiting for the operator...'];
  // Cursor-up cannot reach above the screen's top: a frame taller than the terminal keeps the newest steps.
  const room = height - head.length - 2;
  if (body.length > room && room >= 3) {
    const hidden = body.length - room + 1;
    body = [body[0]!, `... ${hidden} earlier step(s)`, ...body.slice(1 + hidden)];
  }
  return [...head, '', ...body].map((l) => cut(l, width));
}

const cut = (l: string, width: number) => (l.length <= width ? l : `${l.slice(0, Math.max(0, width - 1))}…`);

/** What changed between two versions of a plan, one plain line per change (no terminal: no redraws). */
export function changeLines(prev: PlanObject | undefined, next: PlanObject, now: number): string[] {
  const lines: string[] = [];
  const phase = next.status?.phase;
  const phaseChanged = !!phase && phase !== prev?.status?.phase;
  // A plan that starts says so before its steps; one that ends, after the step that ended it.
  const ends = isTerminal(next);
  if (phaseChanged && !ends) lines.push(`phase ${phase}`);
  const before = new Map((prev?.status?.steps ?? []).map((s) => [s.name, s]));
  for (const s of next.status?.steps ?? []) {
    const old = before.get(s.name);
    if (old && old.result === s.result && old.message === s.message) continue;
    const took = s.result === 'Running' ? '' : ` (${formatDuration(stepSeconds(s, now))})`;
    lines.push(`step ${s.name} ${s.result}${took}${s.message ? `: ${oneLine(s.message, 300)}` : ''}`);
  }
  if (phaseChanged && ends) lines.push(`phase ${phase}`);
  return lines;
}

const field = (label: string, value: string | number | undefined | null) =>
  value === undefined || value === null || value === '' ? [] : [`${`${label}:`.padEnd(14)}${value}`];

/** `status <plan>`: everything a person asks about one plan. */
export function planDetail(p: PlanObject, now = Date.now()): string {
  const s = p.status ?? {};
  const ready = conditionOf(p, ConditionType.Ready);
  const rto = conditionOf(p, ConditionType.RTOMet);
  const t = s.trigger;
  const lines = [
    ...field('Name', p.metadata.name),
    ...field('Namespace', p.metadata.namespace),
    ...field('Scope', p.spec.scope + (p.spec.dryRun ? ' (dry run)' : '')),
    ...field('Severity', p.spec.severity ?? '-'),
    ...field('Reason', p.spec.reason),
    ...field('Phase', s.phase ?? 'Pending'),
    ...field(
      'Ready',
      ready ? `${ready.status} ${ready.reason}${ready.message ? `: ${ready.message}` : ''}` : '',
    ),
    ...field(
      'Trigger',
      `${triggerOf(p)}${t && t.condition !== 'Manual' ? ` (${t.condition})` : ''}${t ? ` fired ${t.firedAt}` : ''}`,
    ),
    ...field(
      'Approval',
      s.approval
        ? s.approval.automatic
          ? `automatic at ${s.approval.approvedAt}`
          : `approved by ${s.approval.approvedBy ?? '?'} at ${s.approval.approvedAt}${s.approval.reason ? ` (${s.approval.reason})` : ''}`
        : undefined,
    ),
    ...field(
      'Veto',
      s.veto
        ? `vetoed by ${s.veto.vetoedBy} at ${s.veto.vetoedAt}${s.veto.reason ? ` (${s.veto.reason})` : ''}`
        : undefined,
    ),
    ...field(
      'Created',
      p.metadata.creationTimestamp &&
        `${p.metadata.creationTimestamp} (${age(p.metadata.creationTimestamp, now)} ago)`,
    ),
    ...field('Started', s.startedAt),
    ...field('Completed', s.completedAt),
    ...field('Duration', formatDuration(s.durationSeconds)),
    ...field('Recovery', formatDuration(s.recoverySeconds)),
    ...field('RTO met', rto ? `${yesNo(rto.status === 'True')} (${rto.message})` : undefined),
  ];
  if (s.conditions?.length)
    lines.push(
      '',
      'Conditions:',
      indent(
        table(
          ['type', 'status', 'reason', 'age', 'message'],
          s.conditions.map((c) => [
            c.type,
            c.status,
            c.reason,
            age(c.lastTransitionTime, now),
            oneLine(c.message, 200),
          ]),
        ),
      ),
    );
  if (s.steps?.length) lines.push('', 'Steps:', indent(stepsTable(s.steps, now, 200)));
  if (s.deployments?.length)
    lines.push(
      '',
      'Deployments:',
      indent(
        table(
          ['name', 'from', 'to', 'result', 'message'],
          s.deployments.map((d) => [
            d.name,
            d.fromRevision,
            d.toRevision,
            d.result,
            oneLine(d.message ?? '', 200),
          ]),
        ),
      ),
    );
  if (s.database) {
    const d = s.database;
    lines.push(
      '',
      'Database:',
      ...[
        ...field('Schedule', d.backupScheduleRef),
        ...field(
          'Backup',
          d.backupId && `${d.backupId}${d.backupFinishedAt ? ` (finished ${d.backupFinishedAt})` : ''}`,
        ),
        ...field('Mode', d.mode),
        ...field('Safety backup', d.safetyBackupId),
        ...field('Restore', formatDuration(d.restoreSeconds)),
        ...field('Tables', d.verifiedTables),
        ...field('Previous db', d.previousDatabase),
      ].map((l) => `  ${l}`),
    );
  }
  if (s.featureFlags?.length)
    lines.push(
      '',
      'Feature flags:',
      indent(
        table(
          ['key', 'previous', 'now'],
          s.featureFlags.map((f) => [f.key, f.previous ?? '(unset)', f.now]),
        ),
      ),
    );
  if (s.gitops?.owners?.length)
    lines.push(
      '',
      `GitOps owners (policy ${s.gitops.policy}):`,
      indent(
        table(
          ['owner', 'state', 'since', 'message'],
          s.gitops.owners.map((o) => [
            `${o.kind} ${o.namespace}/${o.name}`,
            o.state,
            o.resumedAt ?? o.suspendedAt ?? '',
            oneLine(o.message ?? '', 200),
          ]),
        ),
      ),
    );
  if (s.dryRunReport) lines.push('', 'Dry-run report:', indent(dryRunReportText(s.dryRunReport)));
  return lines.join('\n');
}

const indent = (text: string) =>
  text
    .split('\n')
    .map((l) => (l ? `  ${l}` : l))
    .join('\n');

/** status.dryRunReport as people read it (operator/rollback/dry-run-report.ts writes it; free-form). */
export function dryRunReportText(report: Record<string, unknown>): string {
  const r = report as {
    summary?: string;
    wouldSucceed?: boolean;
    deployments?: {
      name: string;
      action?: string;
      reason?: string | null;
      fromRevision?: number | null;
      toRevision?: number | null;
      imageChanges?: { container: string; from: string | null; to: string | null }[];
      templateDiff?: string;
      message?: string;
      gitops?: { owner?: string; warning?: string; note?: string };
    }[];
    database?: Record<string, unknown>;
    featureFlags?: { object: string; key: string; current?: string; wouldBe: string }[];
    checks?: string[];
    steps?: string[];
  };
  const out: string[] = [];
  out.push(`Would succeed: ${r.wouldSucceed === true ? 'yes' : 'no'}`);
  if (r.summary) out.push(`Summary: ${r.summary}`);
  for (const d of r.deployments ?? []) {
    const rev = `${d.fromRevision ?? '?'} -> ${d.toRevision ?? '?'}`;
    out.push(
      '',
      `Deployment ${d.name}: ${d.action ?? ''} (revision ${rev})${d.reason ? ` ${d.reason}` : ''}`,
    );
    if (d.message) out.push(`  ${d.message}`);
    // Who applies it from Git (operator/gitops/ownership.ts), and that its next sync may undo the rollback.
    if (d.gitops?.owner) out.push(`  GitOps owner: ${d.gitops.owner}`);
    if (d.gitops?.warning) out.push(`  warning: ${d.gitops.warning}`);
    // Weak evidence (the instance label, which Helm sets too): a neutral note, no owner or warning.
    if (d.gitops?.note) out.push(`  GitOps: ${d.gitops.note}`);
    for (const c of d.imageChanges ?? [])
      out.push(`  image ${c.container}: ${c.from ?? '(none)'} -> ${c.to ?? '(none)'}`);
    if (d.templateDiff)
      out.push(
        '  template diff:',
        ...d.templateDiff
          .trimEnd()
          .split('\n')
          .map((l) => `    ${l}`),
      );
  }
  if (r.database) {
    const db = r.database;
    out.push('', 'Database:');
    if (db.backupId)
      out.push(`  backup ${String(db.backupId)} finished ${String(db.backupFinishedAt ?? '?')}`);
    if (db.mode)
      out.push(`  mode ${String(db.mode)}, safety backup ${db.safetyBackup === false ? 'no' : 'yes'}`);
    if (typeof db.dataLossWindowSeconds === 'number')
      out.push(
        `  data-loss window ${formatDuration(db.dataLossWindowSeconds)} (writes since the backup are rolled back)`,
      );
  }
  if (r.featureFlags?.length)
    out.push(
      '',
      'Feature flags:',
      indent(
        table(
          ['object', 'key', 'current', 'would be'],
          r.featureFlags.map((f) => [f.object, f.key, f.current ?? '(unset)', f.wouldBe]),
        ),
      ),
    );
  if (r.steps?.length) out.push('', `Steps: ${r.steps.join(', ')}`);
  if (r.checks?.length) out.push('', 'Checks:', ...r.checks.map((c) => `  - ${c}`));
  return out.join('\n');
}
