// nxt-rollback readiness: the seed's deployment readiness checklist computed from live state, for a CI gate
// (exit 0 ready, 1 not ready). The rollback check creates dry-run RollbackPlans and deletes them afterwards.
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
import {
  accessCheck,
  backupFreshCheck,
  dryRunCheck,
  leaderCheck,
  readinessOf,
  testRestoreCheck,
  type Check,
} from '../readiness-checks.js';
import { isTerminalPhase } from '../plan-view.js';
import { watchMaybe } from '../watch.js';
import {
  addOperatorFlags,
  listOrExit,
  readOperatorHealth,
  targetNames,
  type OperatorFlags,
} from './health.js';

const DEFAULT_OPERATOR_SA = 'nxt-rollback-operator';

interface ReadinessFlags extends OperatorFlags {
  deployments: string[];
  schedule?: string;
  maxBackupAge?: number;
  maxTestRestoreAge: number;
  timeout: number;
  operatorServiceAccount: string;
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
      const schedules = opts.schedule
        ? [await getSchedule(ctx, opts.schedule)]
        : await listOrExit(ctx, schedulesRef(ctx.namespace), `backupschedules.${GROUP}`);
      const checks: Check[] = [];
      if (!schedules.length)
        checks.push({
          name: 'fresh backup',
          result: 'Fail',
          detail: `no BackupSchedule in namespace ${ctx.namespace}`,
        });
      for (const s of schedules) {
        checks.push(backupFreshCheck(s, opts.maxBackupAge, now));
        checks.push(testRestoreCheck(s, opts.maxTestRestoreAge, now));
      }
      const targets = targetNames(
        plans.filter((p) => p.metadata.labels?.['app.kubernetes.io/managed-by'] !== CLI_MANAGED_BY),
        opts.deployments,
      );
      if (!targets.length)
        checks.push({
          name: 'rollback dry run',
          result: 'Fail',
          detail: 'no target Deployments: no RollbackPlan names one; name them with --deployments',
        });
      checks.push(...(await dryRuns(ctx, targets, opts.timeout)));
      checks.push(leaderCheck(await readOperatorHealth(ctx, opts)));
      checks.push(...(await accessChecks(ctx, opts)));
      const result = readinessOf(checks);
      ctx.out.result(result, () => {
        const color = { Pass: 'green', Fail: 'red', Unknown: 'yellow' } as const;
        ctx.out.line(
          table(
            ['check', 'result', 'detail'],
            result.checks.map((c) => [c.name, paint(ctx.out, color[c.result], c.result), c.detail]),
          ),
        );
        ctx.out.line();
        const failed = result.checks.filter((c) => c.result === 'Fail').map((c) => c.name);
        ctx.out.line(
          result.ready
            ? paint(ctx.out, 'green', 'ready')
            : `${paint(ctx.out, 'red', 'not ready')}: ${failed.join(', ')}`,
        );
      });
      return result.ready ? ExitCode.Ok : ExitCode.Failed;
    }),
  );
}

async function getSchedule(ctx: CliContext, name: string): Promise<KubeObject> {
  try {
    return await ctx.client.get(schedulesRef(ctx.namespace, name));
  } catch (e) {
    throw fromApiError(e, `get backupschedule ${ctx.namespace}/${name}`);
  }
}

/** One dry-run RollbackPlan per Deployment, followed by a WATCH to its end, then deleted. */
async function dryRuns(ctx: CliContext, deployments: string[], timeoutMs: number): Promise<Check[]> {
  const created: string[] = [];
  try {
    const results = await Promise.allSettled(
      deployments.map(async (d) => {
        let plan: KubeObject;
        try {
          plan = await ctx.client.create(plansRef(ctx.namespace), {
            apiVersion: `${GROUP}/v1alpha1`,
            kind: 'RollbackPlan',
            metadata: {
              generateName: 'readiness-dry-run-',
              labels: { 'app.kubernetes.io/managed-by': CLI_MANAGED_BY },
            },
            spec: {
              scope: 'app',
              dryRun: true,
              reason: `nxt-rollback readiness: can ${d} be rolled back?`,
              targets: { deployments: [{ name: d }] },
            },
          });
        } catch (e) {
          throw fromApiError(e, `create rollbackplans.${GROUP} in ${ctx.namespace}`);
        }
        created.push(plan.metadata.name);
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
    for (const name of created)
      await ctx.client.delete(plansRef(ctx.namespace, name)).catch((e: unknown) => {
        if (!isNotFound(e)) ctx.out.warn(`warning: could not delete dry-run plan ${name}: ${String(e)}`);
      });
  }
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
  const [create, patch, operator] = await Promise.all([
    review(ctx, 'selfsubjectaccessreviews', {
      resourceAttributes: { namespace: ns, verb: 'create', ...PLAN_RESOURCE },
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
    accessCheck('rbac: you approve plans', `patch rollbackplans.${GROUP} in ${ns}`, patch),
    accessCheck('rbac: operator rolls back', `${sa} patch deployments.apps in ${ns}`, operator),
  ];
}
