// nxt-rollback readiness: the seed's deployment readiness checklist computed from live state, for a CI gate
// (exit 0 ready, 1 not ready). The rollback check creates dry-run RollbackPlans and deletes them afterwards
// (also on SIGINT/SIGTERM); they carry the label rollback.nxtnewday.io/created-by=nxt-rollback-readiness, so a
// leftover (a killed job) can be swept with a selector.
import type { Command } from 'commander';
import { GROUP } from '../../api/v1alpha1/common.js';
import { isNotFound } from '../../kube/errors.js';
import type { KubeObject } from '../../kube/rest.js';
import { action } from '../command.js';
import { plansRef, schedulesRef, type CliContext } from '../context.js';
import { CliError, ExitCode, fromApiError } from '../errors.js';
import { CLI_MANAGED_BY } from '../drill-objects.js';
import { durationOption, objectName, objectNameList } from '../flags.js';
import { paint, table } from '../output.js';
import { actingTargets, CREATED_BY_LABEL } from '../health-report.js';
import {
  accessCheck,
  backupFreshCheck,
  dryRunCheck,
  leaderCheck,
  noScheduleCheck,
  readinessLine,
  readinessOf,
  testRestoreCheck,
  type Check,
} from '../readiness-checks.js';
import { isTerminalPhase } from '../plan-view.js';
import { watchMaybe } from '../watch.js';
import { addOperatorFlags, listOrExit, readOperatorHealth, type OperatorFlags } from './health.js';

const DEFAULT_OPERATOR_SA = 'nxt-rollback-operator';
/** The value of CREATED_BY_LABEL on readiness' dry-run plans. */
export const READINESS_CREATED_BY = 'nxt-rollback-readiness';

interface ReadinessFlags extends OperatorFlags {
  deployments: string[];
  schedule?: string;
  maxBackupAge?: number;
  maxTestRestoreAge: number;
  timeout: number;
  operatorServiceAccount: string;
  allowUnknown?: boolean;
  database: boolean;
}

export function register(program: Command) {
  addOperatorFlags(
    program
      .command('readiness')
      .description('the deployment readiness checklist, from live state (exit 0 ready, 1 not ready)')
      .option(
        '--deployments <names>',
        "Deployments to check besides the plans' targets, comma-separated",
        objectNameList('--deployments'),
        [],
      )
      .option(
        '--schedule <name>',
        'the BackupSchedule to check (default: every one in the namespace)',
        objectName('--schedule'),
      )
      .option('--no-database', 'skip the backup checks (an application without a database)')
      .option(
        '--allow-unknown',
        'a check the CLI could not make (Unknown: a Lease or access review it may not read) does not fail the gate',
      )
      .addOption(
        durationOption(
          '--max-backup-age <duration>',
          "newest verified backup at most this old (default: the schedule's RPO objective)",
        ),
      )
      .addOption(
        durationOption(
          '--max-test-restore-age <duration>',
          'last successful test restore at most this old',
          '7d',
        ),
      )
      .addOption(durationOption('--timeout <duration>', 'how long to wait for the dry runs', '2m'))
      .option(
        '--operator-service-account <name>',
        "the operator's ServiceAccount (in --operator-namespace), for the RBAC check",
        DEFAULT_OPERATOR_SA,
      ),
  ).action(
    action(async (ctx, opts: ReadinessFlags) => {
      const now = Date.now();
      const plans = await listOrExit(ctx, plansRef(ctx.namespace), `rollbackplans.${GROUP}`);
      const targets = actingTargets(plans, opts.deployments);
      const checks: Check[] = [];
      if (!opts.database)
        checks.push({ name: 'backups', result: 'Skip', detail: 'not checked (--no-database)' });
      else {
        const schedules = opts.schedule
          ? [await getSchedule(ctx, opts.schedule)]
          : await listOrExit(ctx, schedulesRef(ctx.namespace), `backupschedules.${GROUP}`);
        if (!schedules.length) checks.push(noScheduleCheck(ctx.namespace, targets.database));
        for (const s of schedules) {
          checks.push(backupFreshCheck(s, opts.maxBackupAge, now));
          checks.push(testRestoreCheck(s, opts.maxTestRestoreAge, now));
        }
      }
      // Access first: without delete on rollbackplans the dry-run plans would be left behind.
      const access = await accessChecks(ctx, opts);
      const [mayCreate, mayDelete] = [access[0]!, access[1]!];
      if (!targets.deployments.length)
        checks.push({
          name: 'rollback dry run',
          result: 'Fail',
          detail:
            'no target Deployments: no RollbackPlan that may still act names one; name them with --deployments',
        });
      else if (mayCreate.result === 'Pass' && mayDelete.result === 'Fail')
        checks.push({
          name: 'rollback dry run',
          result: 'Fail',
          detail: `not run: you may not delete rollbackplans.${GROUP} in ${ctx.namespace}, so the dry-run plans would be left behind`,
        });
      else checks.push(...(await dryRuns(ctx, targets.deployments, opts.timeout)));
      checks.push(leaderCheck(await readOperatorHealth(ctx, opts)));
      checks.push(...access);
      const result = readinessOf(checks, { allowUnknown: opts.allowUnknown });
      ctx.out.result(result, () => {
        const color = { Pass: 'green', Fail: 'red', Unknown: 'yellow', Skip: 'gray' } as const;
        ctx.out.line(
          table(
            ['check', 'result', 'detail'],
            result.checks.map((c) => [c.name, paint(ctx.out, color[c.result], c.result), c.detail]),
          ),
        );
        ctx.out.line();
        const line = readinessLine(result);
        ctx.out.line(
          result.ready
            ? line.replace(/^ready/, paint(ctx.out, 'green', 'ready'))
            : line.replace(/^not ready/, paint(ctx.out, 'red', 'not ready')),
        );
      });
      return result.ready ? ExitCode.Ok : ExitCode.Failed;
    }, checkReadiness),
  );
}

export function checkReadiness(opts: Pick<ReadinessFlags, 'database' | 'schedule'>): void {
  if (!opts.database && opts.schedule)
    throw new CliError(ExitCode.Usage, '--schedule and --no-database exclude each other');
}

async function getSchedule(ctx: CliContext, name: string): Promise<KubeObject> {
  try {
    return await ctx.client.get(schedulesRef(ctx.namespace, name));
  } catch (e) {
    throw fromApiError(e, `get backupschedule ${ctx.namespace}/${name}`);
  }
}

/**
 * One dry-run RollbackPlan per Deployment, followed by a WATCH to its end, then deleted: also on SIGINT/SIGTERM
 * (Ctrl-C, a cancelled CI job), after the creates still in flight have answered.
 */
async function dryRuns(ctx: CliContext, deployments: string[], timeoutMs: number): Promise<Check[]> {
  const created = new Set<string>();
  const creating: Promise<unknown>[] = [];
  let deleting: Promise<void> | undefined;
  const deleteAll = () =>
    (deleting ??= (async () => {
      await Promise.allSettled(creating);
      for (const name of created)
        await ctx.client.delete(plansRef(ctx.namespace, name)).catch((e: unknown) => {
          if (!isNotFound(e))
            ctx.out.warn(
              `warning: could not delete dry-run plan ${name}: ${fromApiError(e, `delete rollbackplans.${GROUP}`).message}` +
                ` (sweep leftovers: kubectl delete rollbackplans -l ${CREATED_BY_LABEL}=${READINESS_CREATED_BY})`,
            );
        });
    })());
  const onSignal = (signal: NodeJS.Signals) => {
    ctx.out.warn(`${signal}: stopping readiness, deleting its dry-run plans`);
    void deleteAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const results = await Promise.allSettled(
      deployments.map(async (d) => {
        let plan: KubeObject;
        try {
          const request = ctx.client.create<KubeObject>(plansRef(ctx.namespace), readinessDryRunPlan(d));
          creating.push(request);
          plan = await request;
        } catch (e) {
          throw fromApiError(e, `create rollbackplans.${GROUP} in ${ctx.namespace}`);
        }
        created.add(plan.metadata.name);
        const done = await watchMaybe<KubeObject & { status?: { phase?: string } }, KubeObject>(
          ctx.client,
          plansRef(ctx.namespace, plan.metadata.name),
          (p) => {
            if (!p) throw new CliError(ExitCode.Failed, `dry-run plan ${plan.metadata.name} was deleted`);
            return isTerminalPhase(p.status?.phase) ? p : undefined;
          },
          {
            timeoutMs,
            waitingFor: `the dry run of ${d} (plan ${plan.metadata.name})`,
            hint: (p) =>
              p?.status?.phase
                ? undefined
                : `the operator wrote no status: is it running and watching namespace ${ctx.namespace}?`,
          },
        );
        return dryRunCheck(d, done);
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return results.map((r) => (r as PromiseFulfilledResult<Check>).value);
  } finally {
    await deleteAll();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** The dry-run plan of one Deployment, labelled so a leftover can be found and swept. */
export function readinessDryRunPlan(deployment: string) {
  return {
    apiVersion: `${GROUP}/v1alpha1`,
    kind: 'RollbackPlan',
    metadata: {
      generateName: 'readiness-dry-run-',
      labels: {
        'app.kubernetes.io/managed-by': CLI_MANAGED_BY,
        [CREATED_BY_LABEL]: READINESS_CREATED_BY,
      },
    },
    spec: {
      scope: 'app',
      dryRun: true,
      reason: `nxt-rollback readiness: can ${deployment} be rolled back?`,
      targets: { deployments: [{ name: deployment }] },
    },
  };
}

const PLAN_RESOURCE = { group: GROUP, resource: 'rollbackplans' };

async function review(
  ctx: CliContext,
  kind: 'selfsubjectaccessreviews' | 'subjectaccessreviews',
  spec: Record<string, unknown>,
): Promise<{ allowed?: boolean; reason?: string } | { unreadable: string }> {
  try {
    const r = await ctx.client.create<{ status?: { allowed?: boolean; reason?: string } }>(
      { group: 'authorization.k8s.io', version: 'v1', plural: kind },
      {
        apiVersion: 'authorization.k8s.io/v1',
        kind: kind === 'subjectaccessreviews' ? 'SubjectAccessReview' : 'SelfSubjectAccessReview',
        spec,
      },
    );
    return r.status ?? {};
  } catch (e) {
    return { unreadable: fromApiError(e, `create ${kind}.authorization.k8s.io`).message };
  }
}

async function accessChecks(ctx: CliContext, opts: ReadinessFlags): Promise<Check[]> {
  const ns = ctx.namespace;
  const sa = `system:serviceaccount:${opts.operatorNamespace}:${opts.operatorServiceAccount}`;
  const [create, del, patch, operator] = await Promise.all([
    review(ctx, 'selfsubjectaccessreviews', {
      resourceAttributes: { namespace: ns, verb: 'create', ...PLAN_RESOURCE },
    }),
    review(ctx, 'selfsubjectaccessreviews', {
      resourceAttributes: { namespace: ns, verb: 'delete', ...PLAN_RESOURCE },
    }),
    review(ctx, 'selfsubjectaccessreviews', {
      resourceAttributes: { namespace: ns, verb: 'patch', ...PLAN_RESOURCE },
    }),
    review(ctx, 'subjectaccessreviews', {
      user: sa,
      groups: [
        'system:serviceaccounts',
        `system:serviceaccounts:${opts.operatorNamespace}`,
        'system:authenticated',
      ],
      resourceAttributes: { namespace: ns, verb: 'patch', group: 'apps', resource: 'deployments' },
    }),
  ]);
  return [
    accessCheck('rbac: you create plans', `create rollbackplans.${GROUP} in ${ns}`, create),
    accessCheck('rbac: you delete plans', `delete rollbackplans.${GROUP} in ${ns}`, del),
    accessCheck('rbac: you approve plans', `patch rollbackplans.${GROUP} in ${ns}`, patch),
    accessCheck('rbac: operator rolls back', `${sa} patch deployments.apps in ${ns}`, operator),
  ];
}
