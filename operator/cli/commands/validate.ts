// validate: a plan's pre- or post-validation checks on their own. Creates one RollbackPlan per stage with
// spec.validateOnly (the operator runs the checks, changing nothing), follows it with a watch until
// DryRunComplete and prints its status.dryRunReport.validation. The plans are deleted once their report is read
// (also when the wait fails), unless --keep.
import { Command, Option } from 'commander';
import type { RollbackPlanSpec, ValidationReport } from '../../api/v1alpha1/rollbackplan.js';
import type { KubeObject } from '../../kube/rest.js';
import { action } from '../command.js';
import { plansRef, type CliContext } from '../context.js';
import { conditionOf } from '../conditions.js';
import { CliError, ExitCode, fromApiError } from '../errors.js';
import {
  commaList,
  objectName,
  objectNames,
  parseDurationFlag,
  repeatable,
  specDurationFlag,
} from '../flags.js';
import { paint, table } from '../output.js';
import { uniqueRequestValue } from '../requests.js';
import { checkValidationTargets, validationPlan, validationSpec, type Stage } from '../validation-plan.js';
import { watchObject } from '../watch.js';

interface ValidateOptions {
  pre?: boolean;
  post?: boolean;
  http: string[];
  schedule?: string;
  flags?: string;
  disable?: string;
  plan?: string;
  validationTimeout?: string;
  timeout: string;
  keep?: boolean;
}

export function register(program: Command) {
  program
    .command('validate')
    .description(
      "run a plan's pre- or post-validation checks on their own (neither --pre nor --post: both, pre first); nothing is changed",
    )
    .argument('[deployments...]', 'target Deployments', objectNames('Deployment'))
    .option(
      '--pre',
      'pre-validation: targets exist, revisions exist, not paused, no other plan holds them, permissions, backup, flags',
    )
    .option('--post', 'post-validation: every Deployment rolled out and available, the HTTP checks pass')
    .option('--http <url>', 'an HTTP check that must return 200 (repeatable)', repeatable, [])
    .option(
      '--schedule <name>',
      'a database target: the BackupSchedule whose newest verified backup is checked',
      objectName('--schedule'),
    )
    .option('--flags <name>', 'a flag target: ConfigMap <name>, or featureflag/<name> (OpenFeature)')
    .option('--disable <keys>', 'the flag keys of --flags, comma-separated')
    .option('--plan <name>', "copy an existing RollbackPlan's targets and validation", objectName('--plan'))
    .option(
      '--validation-timeout <duration>',
      'spec.validation.timeout: how long rollouts and HTTP checks may take',
    )
    .addOption(new Option('--timeout <duration>', 'how long to wait for the results').default('10m'))
    .option('--keep', 'keep the validateOnly RollbackPlans (deleted after their report is read by default)')
    .action(action(validate, checkValidate));
}

/**
 * The command line on its own: durations, and targets unless --plan brings them (read from the cluster).
 * Without --plan, returns the first stage's plan (the others differ only in validateOnly).
 */
export function checkValidate(deployments: string[], opts: ValidateOptions): object | void {
  parseDurationFlag('--timeout', opts.timeout);
  if (opts.validationTimeout) specDurationFlag('--validation-timeout', opts.validationTimeout);
  const input = {
    deployments,
    http: opts.http,
    schedule: opts.schedule,
    flags: opts.flags,
    disable: commaList(opts.disable ?? ''),
    validationTimeout: opts.validationTimeout,
  };
  checkValidationTargets({ ...input, fromPlan: opts.plan !== undefined });
  if (opts.plan !== undefined) return;
  const stage: Stage = opts.post && !opts.pre ? 'post' : 'pre';
  return validationPlan(uniqueRequestValue(`validate-${stage}`), stage, validationSpec(input));
}

async function validate(ctx: CliContext, deployments: string[], opts: ValidateOptions) {
  const timeoutMs = parseDurationFlag('--timeout', opts.timeout);
  const stages: Stage[] = opts.pre === opts.post ? ['pre', 'post'] : opts.pre ? ['pre'] : ['post'];
  const from = opts.plan ? await readPlanSpec(ctx, opts.plan) : undefined;
  const spec = validationSpec({
    deployments,
    http: opts.http,
    schedule: opts.schedule,
    flags: opts.flags,
    disable: commaList(opts.disable ?? ''),
    validationTimeout: opts.validationTimeout,
    from,
  });
  const deadline = Date.now() + timeoutMs;
  const results: (ValidationReport & { plan: string })[] = [];
  for (const stage of stages) {
    const report = await runStage(ctx, stage, spec, deadline - Date.now(), opts.keep === true);
    results.push(report);
    if (ctx.out.format === 'table') printStage(ctx, report, stages.length > 1);
  }
  const passed = results.every((r) => r.passed);
  if (ctx.out.format !== 'table')
    ctx.out.result(results.length === 1 ? results[0] : { passed, stages: results }, () => {});
  return passed ? ExitCode.Ok : ExitCode.Failed;
}

async function readPlanSpec(ctx: CliContext, name: string): Promise<Partial<RollbackPlanSpec>> {
  try {
    const plan = await ctx.client.get<KubeObject>(plansRef(ctx.namespace, name));
    return plan.spec ?? {};
  } catch (e) {
    const err = fromApiError(e, `get RollbackPlan "${name}"`);
    if (err.exitCode === ExitCode.NotFound)
      throw new CliError(ExitCode.NotFound, `RollbackPlan "${name}" not found in namespace ${ctx.namespace}`);
    throw err;
  }
}

/** Creates the stage's plan and waits for its report. */
async function runStage(
  ctx: CliContext,
  stage: Stage,
  spec: ReturnType<typeof validationSpec>,
  timeoutMs: number,
  keep: boolean,
): Promise<ValidationReport & { plan: string }> {
  const name = uniqueRequestValue(`validate-${stage}`);
  try {
    await ctx.client.create(plansRef(ctx.namespace), validationPlan(name, stage, spec));
  } catch (e) {
    throw fromApiError(e, `create RollbackPlan "${name}"`);
  }
  try {
    return await followStage(ctx, stage, name, timeoutMs);
  } finally {
    if (!keep)
      await ctx.client.delete(plansRef(ctx.namespace, name)).catch((e: unknown) => {
        const err = fromApiError(e, `delete RollbackPlan "${name}"`);
        if (err.exitCode !== ExitCode.NotFound) ctx.out.warn(`warning: ${err.message}`);
      });
  }
}

async function followStage(
  ctx: CliContext,
  stage: Stage,
  name: string,
  timeoutMs: number,
): Promise<ValidationReport & { plan: string }> {
  if (ctx.out.format === 'table') ctx.out.warn(`${stage}-validation: RollbackPlan ${name} created; waiting…`);
  let lastNote = '';
  const report = await watchObject<KubeObject, ValidationReport>(
    ctx.client,
    plansRef(ctx.namespace, name),
    (p) => {
      const phase = p.status?.phase;
      if (phase === 'DryRunComplete') {
        const v = p.status?.dryRunReport?.validation as ValidationReport | undefined;
        if (!v)
          throw new CliError(ExitCode.Failed, `RollbackPlan ${name} finished without a validation report`);
        return v;
      }
      if (phase === 'Failed') {
        const ready = conditionOf(p, 'Ready');
        throw new CliError(
          ExitCode.Failed,
          `RollbackPlan ${name} failed: ${ready?.reason ?? ''}: ${ready?.message ?? 'see kubectl describe'}`,
        );
      }
      const progress = conditionOf(p, 'Reconciling');
      if (ctx.out.format === 'table' && progress?.message && progress.message !== lastNote)
        ctx.out.warn((lastNote = progress.message));
      return undefined;
    },
    {
      what: `RollbackPlan "${name}"`,
      waitingFor: `the ${stage}-validation of RollbackPlan "${name}"`,
      timeoutMs: Math.max(1, timeoutMs),
    },
  );
  return { plan: name, ...report };
}

function printStage(ctx: CliContext, r: ValidationReport & { plan: string }, heading: boolean) {
  const color = { Passed: 'green', Failed: 'red', Skipped: 'gray' } as const;
  if (heading) ctx.out.line(`${r.stage.toUpperCase()}-VALIDATION (${r.plan})`);
  ctx.out.line(
    table(
      ['check', 'result', 'message'],
      r.checks.map((c) => [c.name, paint(ctx.out, color[c.result], c.result), c.message]),
    ),
  );
  ctx.out.line(
    `${r.stage}-validation ${r.passed ? paint(ctx.out, 'green', 'passed') : paint(ctx.out, 'red', 'FAILED')}`,
  );
  if (heading) ctx.out.line();
}
