// status, history, approve, veto: reading RollbackPlans, and the two annotations people decide with. The
// approvals ValidatingAdmissionPolicy (docs/approvals.md) judges approve/veto: the CLI only writes the
// current user's own name, as one merge patch.
import type { Command } from 'commander';
import { Annotation } from '../../api/v1alpha1/common.js';
import { isConflict } from '../../kube/errors.js';
import { action } from '../command.js';
import { plansRef, type CliContext } from '../context.js';
import { CliError, ExitCode, fromApiError } from '../errors.js';
import { objectName, parseDurationFlag } from '../flags.js';
import {
  activeTable,
  historyEntry,
  historyTable,
  isActive,
  isTerminal,
  outcomeLine,
  planDetail,
  planSummary,
  recentPlans,
  type PlanObject,
} from '../plan-view.js';
import { watchObject, WatchTimeoutError } from '../watch.js';

/** status, history, approve, veto. */
export function register(program: Command) {
  program
    .command('status')
    .description('show a RollbackPlan in detail, or the plans that have not ended')
    .argument(
      '[plan]',
      'plan name (default: list Pending, Armed, AwaitingApproval and Running plans)',
      objectName('plan name'),
    )
    .option('-A, --all-namespaces', 'without a plan name: every namespace')
    .action(
      action(
        (ctx, plan: string | undefined, o: { allNamespaces?: boolean }) => status(ctx, plan, o),
        checkStatus,
      ),
    );
  program
    .command('history')
    .description('recent RollbackPlans, newest first: trigger, result, duration, RTO met')
    .option('--limit <n>', 'how many plans', '20')
    .option('-A, --all-namespaces', 'every namespace')
    .action(action((ctx, o: { limit: string; allNamespaces?: boolean }) => history(ctx, o), checkHistory));
  for (const verb of ['approve', 'veto'] as const)
    program
      .command(verb)
      .description(
        verb === 'approve'
          ? 'approve a RollbackPlan waiting for approval (annotation approved-by = you)'
          : 'veto a RollbackPlan before it runs (annotation vetoed-by = you)',
      )
      .argument('<plan>', 'plan name', objectName('plan name'))
      .option(
        '--reason <text>',
        `why (recorded in status.${verb === 'approve' ? 'approval' : 'veto'}.reason)`,
      )
      .option(
        '--overwrite',
        `replace ${verb === 'approve' ? 'an approval' : 'a veto'} someone else already wrote`,
      )
      .option(
        '--wait',
        verb === 'approve'
          ? 'wait until the plan runs (exit 1 if it ends any other way)'
          : 'wait until the plan is Vetoed (exit 1 if it runs anyway)',
      )
      .option('--timeout <duration>', 'how long --wait waits (exit 5 after)', '5m')
      .action(action((ctx, plan: string, o: DecideFlags) => decide(ctx, verb, plan, o), checkDecide));
}

export function checkStatus(name: string | undefined, o: { allNamespaces?: boolean }): void {
  if (name && o.allNamespaces)
    throw new CliError(ExitCode.Usage, 'status <plan> reads one namespace: drop -A');
}

export function checkHistory(o: { limit: string }): void {
  if (!/^\d+$/.test(o.limit) || Number(o.limit) < 1)
    throw new CliError(ExitCode.Usage, `--limit "${o.limit}" must be a positive whole number`);
}

/** --timeout is checked with or without --wait: a bad value is wrong either way. */
export function checkDecide(_plan: string, o: DecideFlags): void {
  parseDurationFlag('--timeout', o.timeout);
}

async function getPlan(ctx: CliContext, name: string): Promise<PlanObject> {
  try {
    return await ctx.client.get<PlanObject>(plansRef(ctx.namespace, name));
  } catch (e) {
    throw fromApiError(e, `get RollbackPlan ${ctx.namespace}/${name}`);
  }
}

async function listPlans(ctx: CliContext, allNamespaces: boolean): Promise<PlanObject[]> {
  try {
    return (await ctx.client.list<PlanObject>(plansRef(allNamespaces ? '' : ctx.namespace))).items;
  } catch (e) {
    throw fromApiError(e, `list RollbackPlans${allNamespaces ? '' : ` in ${ctx.namespace}`}`);
  }
}

async function status(ctx: CliContext, name: string | undefined, o: { allNamespaces?: boolean }) {
  if (name) {
    checkStatus(name, o);
    const plan = await getPlan(ctx, name);
    ctx.out.result(planSummary(plan), () => ctx.out.line(planDetail(plan)));
    return;
  }
  const active = recentPlans((await listPlans(ctx, !!o.allNamespaces)).filter(isActive), Infinity);
  ctx.out.result(active.map(planSummary), () => {
    if (!active.length)
      ctx.out.line(`No active RollbackPlans${o.allNamespaces ? '' : ` in namespace ${ctx.namespace}`}.`);
    else ctx.out.line(activeTable(active, !!o.allNamespaces));
  });
}

async function history(ctx: CliContext, o: { limit: string; allNamespaces?: boolean }) {
  checkHistory(o);
  const entries = recentPlans(await listPlans(ctx, !!o.allNamespaces), Number(o.limit)).map(historyEntry);
  ctx.out.result(entries, () => {
    if (!entries.length)
      ctx.out.line(`No RollbackPlans${o.allNamespaces ? '' : ` in namespace ${ctx.namespace}`}.`);
    else ctx.out.line(historyTable(entries, !!o.allNamespaces));
  });
}

interface DecideFlags {
  reason?: string;
  wait?: boolean;
  overwrite?: boolean;
  timeout: string;
}

type Verb = 'approve' | 'veto';
const annotationsOf = (verb: Verb) =>
  verb === 'approve'
    ? ([Annotation.ApprovedBy, Annotation.ApprovalReason] as const)
    : ([Annotation.VetoedBy, Annotation.VetoReason] as const);

/**
 * The merge patch of approve/veto: the user's own name, the reason (or its removal), and the resourceVersion
 * the decision was made on, so a concurrent change (someone else deciding) fails with 409 instead of being
 * overwritten.
 */
export function decisionPatch(
  verb: Verb,
  username: string,
  reason: string | undefined,
  resourceVersion?: string,
) {
  const [by, why] = annotationsOf(verb);
  return {
    metadata: {
      ...(resourceVersion ? { resourceVersion } : {}),
      // Without --reason the reason is removed (null): an earlier decider's reason must not be recorded as
      // this user's (approve --overwrite).
      annotations: { [by]: username, [why]: reason ?? null },
    },
  };
}

/** Who else already approved (vetoed) the plan; undefined when no one, or the user themself. */
export function decidedByOther(verb: Verb, plan: PlanObject, username: string): string | undefined {
  const by = plan.metadata.annotations?.[annotationsOf(verb)[0]];
  return by && by !== username ? by : undefined;
}

/** Phases in which the decision has not shown its effect yet: --wait goes on waiting. */
export function decisionPending(verb: Verb, phase: string | undefined): boolean {
  const p = phase ?? 'Pending';
  return p === 'Pending' || p === 'AwaitingApproval' || (verb === 'veto' && p === 'Armed');
}

/** The outcome asked for: an approved plan runs (Running, Succeeded); a vetoed one ends Vetoed. */
export function decisionHeld(verb: Verb, phase: string | undefined): boolean {
  return verb === 'approve' ? phase === 'Running' || phase === 'Succeeded' : phase === 'Vetoed';
}

/** Tries of approve/veto when the plan changed between reading it and writing the decision (409). */
export const DECISION_ATTEMPTS = 4;

export async function decide(ctx: CliContext, verb: 'approve' | 'veto', name: string, o: DecideFlags) {
  const timeoutMs = o.wait ? parseDurationFlag('--timeout', o.timeout) : 0;
  const what = `RollbackPlan ${ctx.namespace}/${name}`;
  const user = await ctx.username();
  let after: PlanObject | undefined;
  // The resourceVersion also moves when the operator writes the plan's status (it does while the plan waits):
  // a 409 is re-read, and the decision is made again on what is there now, a few times at most.
  for (let attempt = 1; !after; attempt++) {
    const before = await getPlan(ctx, name);
    const phase = before.status?.phase;
    // An annotation on a plan that already ran (or is running) would change nothing: say so instead.
    if (isTerminal(before) || phase === 'Running')
      throw new CliError(
        ExitCode.Failed,
        `${what} is ${phase}: ${verb === 'approve' ? 'an approval' : 'a veto'} changes nothing any more`,
      );
    const other = decidedByOther(verb, before, user);
    if (other && !o.overwrite)
      throw new CliError(
        ExitCode.Failed,
        `${what} was already ${verb === 'approve' ? 'approved' : 'vetoed'} by ${other}: ` +
          `add --overwrite to put your name instead`,
      );
    try {
      after = await ctx.client.patch<PlanObject>(
        plansRef(ctx.namespace, name),
        'merge',
        decisionPatch(verb, user, o.reason, before.metadata.resourceVersion),
      );
    } catch (e) {
      if (isConflict(e) && attempt < DECISION_ATTEMPTS) continue;
      if (isConflict(e))
        throw new CliError(
          ExitCode.Failed,
          `${what} kept changing while you decided (${DECISION_ATTEMPTS} attempts): ` +
            `look at nxt-rollback -n ${ctx.namespace} status ${name} and run ${verb} again`,
        );
      // A refusal by the approvals policy is a 403 whose message names the verb and severity it needs.
      throw fromApiError(e, `${verb} ${what}`);
    }
  }
  if (o.wait && decisionPending(verb, after.status?.phase)) {
    try {
      after = await watchObject<PlanObject, PlanObject>(
        ctx.client,
        plansRef(ctx.namespace, name),
        (p) => (decisionPending(verb, p.status?.phase) ? undefined : p),
        { timeoutMs, what },
      );
    } catch (e) {
      if (!(e instanceof WatchTimeoutError)) throw e;
      throw new CliError(
        ExitCode.Timeout,
        `${verb === 'approve' ? 'approved' : 'vetoed'} as ${user}, but ${what} was still ${after.status?.phase ?? 'Pending'} after --timeout ${o.timeout}`,
      );
    }
  }
  const result = {
    name,
    namespace: ctx.namespace,
    action: verb,
    user,
    reason: o.reason ?? null,
    severity: after.spec.severity ?? null,
    phase: after.status?.phase ?? 'Pending',
  };
  ctx.out.result(result, () => {
    ctx.out.line(
      `${verb === 'approve' ? 'approved' : 'vetoed'} ${what} (severity ${result.severity ?? 'none'}) as ${user}` +
        (o.reason ? `: ${o.reason}` : ''),
    );
    ctx.out.line(`phase: ${result.phase}`);
  });
  if (o.wait && !decisionHeld(verb, after.status?.phase)) {
    ctx.out.warn(
      `${what} is ${result.phase}, not ${verb === 'approve' ? 'Running or Succeeded' : 'Vetoed'}: ${outcomeLine(after)}`,
    );
    return ExitCode.Failed;
  }
  return ExitCode.Ok;
}
