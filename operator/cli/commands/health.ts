// nxt-rollback health: the rollback targets, the backups against their RPO, the plans and the operator's
// leader in one screen, with a verdict (exit 0 healthy, 1 unhealthy) that names what is wrong.
import type { Command } from 'commander';
import { action } from '../command.js';
import { plansRef, schedulesRef, type CliContext } from '../context.js';
import { ExitCode, fromApiError } from '../errors.js';
import {
  actingTargets,
  deploymentHealth,
  healthVerdict,
  leaseHealth,
  plansHealth,
  scheduleHealth,
  type BackupHealth,
  type HealthState,
  type LeaseLike,
  type OperatorHealth,
  type PlansHealth,
  type TargetHealth,
} from '../health-report.js';
import { checkNamespace, objectName, objectNameList } from '../flags.js';
import { age, formatDuration, paint, table, type Out } from '../output.js';
import { isForbidden, isNotFound } from '../../kube/errors.js';
import type { KubeObject } from '../../kube/rest.js';

export const DEFAULT_OPERATOR_NAMESPACE = 'nxt-rollback-system';
export const DEFAULT_LEASE_NAME = 'nxt-rollback-operator-leader';

export interface OperatorFlags {
  operatorNamespace: string;
  lease: string;
}

export const addOperatorFlags = (cmd: Command) =>
  cmd
    .option(
      '--operator-namespace <namespace>',
      "namespace of the operator's leader Lease",
      (v: string) => checkNamespace('--operator-namespace', v),
      DEFAULT_OPERATOR_NAMESPACE,
    )
    .option(
      '--lease <name>',
      "name of the operator's leader Lease",
      objectName('--lease'),
      DEFAULT_LEASE_NAME,
    );

/** The Deployments the namespace's RollbackPlans name, plus the ones given, sorted and unique. */
export function targetNames(plans: KubeObject[], extra: string[]): string[] {
  const names = new Set(extra);
  for (const p of plans)
    for (const d of (p as { spec?: { targets?: { deployments?: { name: string }[] } } }).spec?.targets
      ?.deployments ?? [])
      names.add(d.name);
  return [...names].sort();
}

export const deploymentRef = (namespace: string, name?: string) => ({
  group: 'apps',
  version: 'v1',
  plural: 'deployments',
  namespace,
  ...(name ? { name } : {}),
});

export async function readDeployment(ctx: CliContext, name: string): Promise<KubeObject | undefined> {
  try {
    return await ctx.client.get(deploymentRef(ctx.namespace, name));
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw fromApiError(e, `get deployment ${ctx.namespace}/${name}`);
  }
}

/** The operator's leader: a Lease that cannot be read (another namespace, no permission) is "unknown". */
export async function readOperatorHealth(ctx: CliContext, flags: OperatorFlags): Promise<OperatorHealth> {
  const where = { namespace: flags.operatorNamespace, name: flags.lease };
  let lease: LeaseLike | undefined | { unreadable: string };
  try {
    lease = await ctx.client.get<LeaseLike>({
      group: 'coordination.k8s.io',
      version: 'v1',
      plural: 'leases',
      ...where,
    });
  } catch (e) {
    if (isNotFound(e)) lease = undefined;
    else if (isForbidden(e)) lease = { unreadable: fromApiError(e, 'get lease').message };
    else throw fromApiError(e, `get lease ${where.namespace}/${where.name}`);
  }
  return leaseHealth(where, lease, Date.now());
}

export async function listOrExit(ctx: CliContext, ref: ReturnType<typeof plansRef>, what: string) {
  try {
    return (await ctx.client.list(ref)).items;
  } catch (e) {
    throw fromApiError(e, `list ${what} in ${ctx.namespace}`);
  }
}

export interface HealthReport {
  namespace: string;
  healthy: boolean;
  unhealthy: string[];
  warnings: string[];
  targets: TargetHealth[];
  backups: BackupHealth[];
  plans: PlansHealth;
  operator: OperatorHealth;
}

export function register(program: Command) {
  addOperatorFlags(
    program
      .command('health')
      .description('targets, backups, RPO/RTO and operator state in one screen')
      .option(
        '--deployments <names>',
        'more Deployments to show, comma-separated (by default: the targets of the plans that may still act)',
        objectNameList('--deployments'),
        [],
      ),
  ).action(
    action(async (ctx, opts: { deployments: string[] } & OperatorFlags) => {
      const plans = await listOrExit(ctx, plansRef(ctx.namespace), 'rollbackplans.rollback.nxtnewday.io');
      const schedules = await listOrExit(
        ctx,
        schedulesRef(ctx.namespace),
        'backupschedules.rollback.nxtnewday.io',
      );
      const names = actingTargets(plans, opts.deployments).deployments;
      const [deployments, operator] = await Promise.all([
        Promise.all(names.map((n) => readDeployment(ctx, n))),
        readOperatorHealth(ctx, opts),
      ]);
      const now = Date.now();
      const targets = names.map((n, i) => deploymentHealth(n, deployments[i]));
      const backups = schedules.map((s) => scheduleHealth(s, now));
      const plansSummary = plansHealth(plans);
      const verdict = healthVerdict({ targets, backups, plans: plansSummary, operator });
      const report: HealthReport = {
        namespace: ctx.namespace,
        ...verdict,
        targets,
        backups,
        plans: plansSummary,
        operator,
      };
      ctx.out.result(report, () => printHealth(ctx.out, report));
      return report.healthy ? ExitCode.Ok : ExitCode.Failed;
    }),
  );
}

const STATE_COLOR = { ok: 'green', warning: 'yellow', unhealthy: 'red', unknown: 'red' } as const;
const mark = (out: Out, s: HealthState) => paint(out, STATE_COLOR[s], s);
const cond = (c: { status: string } | undefined) => c?.status ?? '-';

function printHealth(out: Out, r: HealthReport) {
  out.line(paint(out, 'bold', `TARGETS (namespace ${r.namespace})`));
  out.line(
    r.targets.length
      ? table(
          ['name', 'ready', 'revision', 'rollout', 'state', 'images'],
          r.targets.map((t) => [
            t.name,
            t.found ? `${t.ready}/${t.desired}` : '-',
            t.revision ?? '-',
            t.rollout,
            mark(out, t.state),
            t.images.join(',') || '-',
          ]),
        )
      : 'no target Deployments (no RollbackPlan that may still act names one; add --deployments)',
  );
  out.line();
  out.line(paint(out, 'bold', 'BACKUPS'));
  out.line(
    r.backups.length
      ? table(
          ['name', 'newest backup', 'age', 'rpo', 'ready', 'last backup', 'rpo met', 'test restore', 'state'],
          r.backups.map((b) => [
            b.name,
            b.newestBackup?.id ?? '-',
            b.ageSeconds === null ? '-' : formatDuration(b.ageSeconds),
            b.rpoObjective,
            cond(b.conditions.Ready),
            cond(b.conditions.LastBackupSucceeded),
            cond(b.conditions.RPOMet),
            b.lastTestRestore
              ? `${b.lastTestRestore.result} ${age(b.lastTestRestore.finishedAt)} ago`
              : 'never',
            mark(out, b.state),
          ]),
        )
      : 'no BackupSchedule in this namespace',
  );
  out.line();
  out.line(paint(out, 'bold', 'PLANS'));
  const p = r.plans;
  const phases = Object.entries(p.byPhase)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ');
  out.line(`${p.total} plan(s)${phases ? `: ${phases}` : ''}`);
  out.line(`active: ${p.active.length ? p.active.map((a) => `${a.name} (${a.phase})`).join(', ') : 'none'}`);
  if (p.last)
    out.line(
      `last run: ${p.last.name} ${p.last.phase}` +
        (p.last.durationSeconds !== undefined ? ` in ${formatDuration(p.last.durationSeconds)}` : '') +
        `, RTO ${p.last.rto}, RTOMet ${p.last.rtoMet?.status ?? '-'}`,
    );
  else out.line('last run: none');
  out.line();
  out.line(paint(out, 'bold', 'OPERATOR'));
  out.line(
    `Lease ${r.operator.lease.namespace}/${r.operator.lease.name}: ${mark(out, r.operator.state)}: ${r.operator.message}`,
  );
  out.line();
  for (const w of r.warnings) out.line(`${paint(out, 'yellow', 'warning')}: ${w}`);
  out.line(
    r.healthy
      ? paint(out, 'green', 'healthy')
      : `${paint(out, 'red', 'unhealthy')}: ${r.unhealthy.join('; ')}`,
  );
}
