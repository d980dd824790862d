// `nxt-rollback emergency`: create a critical RollbackPlan and follow it to the end (a watch on the plan), with
// a live step display on a terminal and one plain line per change otherwise.
import { randomBytes } from 'node:crypto';
import { Option, type Command } from 'commander';
import { Scopes } from '../../api/v1alpha1/rollbackplan.js';
import { isNotFound, KubeApiError } from '../../kube/errors.js';
import type { KubeClient } from '../../kube/rest.js';
import { action } from '../command.js';
import { plansRef, type CliContext } from '../context.js';
import { buildEmergencyPlan, type EmergencyFlags, type PlanManifest } from '../emergency-plan.js';
import { CliError, ExitCode, fromApiError, isNetworkError } from '../errors.js';
import { objectName, objectNames, parseDurationFlag, repeatable } from '../flags.js';
import { LiveView, terminalSize } from '../live-view.js';
import { paint } from '../output.js';
import {
  changeLines,
  dryRunReportText,
  isTerminal,
  outcomeLine,
  planSummary,
  progressFrame,
  type PlanObject,
} from '../plan-view.js';
import { watchObject, WatchTimeoutError } from '../watch.js';

interface Flags extends Omit<EmergencyFlags, 'deployments'> {
  timeout: string;
  wait: boolean;
}

export function register(program: Command) {
  program
    .command('emergency')
    .description('create a critical RollbackPlan and follow it to the end')
    .argument('[deployments...]', 'Deployments to roll back (scope app and full)', objectNames('Deployment'))
    .addOption(new Option('--scope <scope>', 'what to roll back').choices(Scopes).makeOptionMandatory())
    .option('--reason <text>', 'why (recorded in spec.reason, events and notifications)')
    .option(
      '--name <name>',
      'plan name (default emergency-<scope>-<yyyymmdd-hhmmss>-<4 hex>)',
      objectName('--name'),
    )
    .option('--to-revision <n>', 'revision to go back to (default: the previous one)')
    .option(
      '--schedule <BackupSchedule>',
      'database: the BackupSchedule whose backup to restore',
      objectName('--schedule'),
    )
    .option('--backup <which>', 'database: latest (default), a backup id, or before=<RFC3339 time>')
    .addOption(new Option('--mode <mode>', 'database: restore mode').choices(['inPlace', 'newDatabaseSwap']))
    .option('--no-safety-backup', 'database: skip the backup of the current state before restoring')
    .option('--flags <object>', 'feature: the ConfigMap (or featureflag/<name>) holding the flags')
    .option('--disable <flags>', 'feature: comma-separated flags to switch off')
    .option('--http <url>', 'post-validation: GET <url> must answer 200 (repeatable)', repeatable, [])
    .option(
      '--validation-timeout <duration>',
      'post-validation deadline (spec.validation.timeout, default 5m)',
    )
    .option('--timeout <duration>', 'how long to follow the plan (exit 5 after)', '30m')
    .option('--no-wait', 'create the plan, print its name and return')
    .option('--dry-run', 'create a dry-run plan, show its report; changes nothing')
    .action(
      action(
        (ctx, deployments: string[], flags: Flags) => emergency(ctx, deployments, flags),
        checkEmergency,
      ),
    );
}

/** The flags on their own: --timeout, and the plan they make (every combination buildEmergencyPlan refuses). */
export function checkEmergency(deployments: string[], flags: Flags): PlanManifest {
  parseDurationFlag('--timeout', flags.timeout);
  return buildEmergencyPlan({ ...flags, deployments }, new Date(), '0000');
}

async function emergency(ctx: CliContext, deployments: string[], flags: Flags) {
  const timeoutMs = parseDurationFlag('--timeout', flags.timeout);
  const manifest = buildEmergencyPlan({ ...flags, deployments }, new Date(), randomBytes(2).toString('hex'));
  const started = Date.now();
  const created = await createPlan(ctx.client, ctx.namespace, manifest);
  const name = created.metadata.name;
  const what = `RollbackPlan ${ctx.namespace}/${name}`;
  if (!flags.wait) {
    ctx.out.result(planSummary(created), () => ctx.out.line(name));
    return ExitCode.Ok;
  }

  const human = ctx.out.format === 'table';
  // -o json/yaml keeps stdout for the result: progress goes to stderr as plain lines.
  const say = human ? (s: string) => ctx.out.line(s) : (s: string) => ctx.out.warn(s);
  const live = human && ctx.out.tty ? new LiveView((s) => ctx.out.write(s)) : undefined;
  let current: PlanObject = created;
  const draw = () => {
    if (!live) return;
    const { width, height } = terminalSize();
    live.render(progressFrame(current, (Date.now() - started) / 1000, Date.now(), width, height));
  };
  if (!live)
    say(
      `created ${what} (scope ${manifest.spec.scope}, severity critical${manifest.spec.dryRun ? ', dry run' : ''})`,
    );
  // The elapsed time moves on a terminal even when the plan does not.
  const ticker = live ? setInterval(draw, 1000) : undefined;
  let prev: PlanObject | undefined;
  // Ctrl-C leaves the plan running: say how to find it again.
  const onInterrupt = () => {
    if (ticker) clearInterval(ticker);
    ctx.out.warn(`\nstopped following; the plan goes on: nxt-rollback -n ${ctx.namespace} status ${name}`);
    process.exit(130);
  };
  process.once('SIGINT', onInterrupt);
  let timedOut = false;
  try {
    current = await watchObject<PlanObject, PlanObject>(
      ctx.client,
      plansRef(ctx.namespace, name),
      (p) => (isTerminal(p) ? p : undefined),
      {
        timeoutMs,
        what,
        onChange: (p) => {
          current = p;
          if (live) draw();
          else for (const l of changeLines(prev, p, Date.now())) say(l);
          prev = p;
        },
      },
    );
  } catch (e) {
    // At the deadline the plan goes on: show the last state seen, then exit 5.
    if (!(e instanceof WatchTimeoutError)) throw followFailure(e, ctx.namespace, name);
    timedOut = true;
  } finally {
    if (ticker) clearInterval(ticker);
    process.removeListener('SIGINT', onInterrupt);
  }
  draw();

  if (timedOut) {
    ctx.out.result(planSummary(current), () => undefined);
    throw new CliError(
      ExitCode.Timeout,
      `${what} did not finish within --timeout ${flags.timeout} (phase ${current.status?.phase ?? 'Pending'}); ` +
        `the plan ${name} was created and goes on: nxt-rollback -n ${ctx.namespace} status ${name}`,
    );
  }
  const phase = current.status?.phase;
  if (manifest.spec.dryRun) {
    const report = current.status?.dryRunReport;
    const ok = phase === 'DryRunComplete' && report?.wouldSucceed === true;
    ctx.out.result(planSummary(current), () => {
      ctx.out.line();
      if (report) ctx.out.line(dryRunReportText(report));
      else ctx.out.line(outcomeLine(current));
    });
    return ok ? ExitCode.Ok : ExitCode.Failed;
  }
  const ok = phase === 'Succeeded';
  ctx.out.result(planSummary(current), () =>
    ctx.out.line(paint(ctx.out, ok ? 'green' : 'red', outcomeLine(current))),
  );
  if (!ok && !human) ctx.out.warn(outcomeLine(current));
  return ok ? ExitCode.Ok : ExitCode.Failed;
}

/**
 * Following failed after the plan was created (watch forbidden, unavailable, ...): the same error and exit code,
 * plus where the plan is, since it runs whether or not anyone follows it.
 */
export function followFailure(e: unknown, namespace: string, name: string): CliError {
  const c = fromApiError(e, `follow RollbackPlan ${namespace}/${name}`);
  return new CliError(
    c.exitCode,
    `${c.message}; the plan ${name} was created and goes on: nxt-rollback -n ${namespace} status ${name}`,
  );
}

type PlanClient = Pick<KubeClient, 'create' | 'get'>;

/**
 * A random id written on the plan this process POSTs: after a lost answer, the plan found under the name is ours
 * exactly when it carries the id (comparing specs would depend on key order, which the API server changes, and
 * would take someone else's identical plan for ours).
 */
export const REQUEST_ID_ANNOTATION = 'rollback.nxtnewday.io/cli-request-id';

/**
 * POST the plan; a refusal of the spec (422, CEL) is the user's to fix: exit 2 with the server's words. The
 * name is chosen here, so after a network error or a 5xx (the POST may have reached etcd, its answer lost) a
 * GET of that name tells whether it exists: the plan we sent is followed instead of creating a second one.
 */
export async function createPlan(
  client: PlanClient,
  namespace: string,
  manifest: PlanManifest,
): Promise<PlanObject> {
  const name = manifest.metadata.name;
  const requestId = randomBytes(8).toString('hex');
  const body = {
    ...manifest,
    metadata: {
      ...manifest.metadata,
      annotations: { ...manifest.metadata.annotations, [REQUEST_ID_ANNOTATION]: requestId },
    },
  };
  try {
    return await client.create<PlanObject>(plansRef(namespace), body);
  } catch (e) {
    if (e instanceof KubeApiError && e.code === 422)
      throw new CliError(ExitCode.Usage, `the API server refused the RollbackPlan: ${e.statusMessage}`);
    if (e instanceof KubeApiError && e.code === 409)
      throw new CliError(
        ExitCode.Usage,
        `RollbackPlan ${namespace}/${name} already exists (a plan runs once): choose another --name`,
      );
    const failed = fromApiError(e, `create RollbackPlan ${namespace}/${name}`);
    const unknownOutcome = isNetworkError(e) || (e instanceof KubeApiError && e.code >= 500);
    if (!unknownOutcome) throw failed;
    let existing: PlanObject | undefined;
    try {
      existing = await client.get<PlanObject>(plansRef(namespace, name));
    } catch (getError) {
      if (!isNotFound(getError))
        throw new CliError(
          failed.exitCode,
          `${failed.message}; the plan may have been created: nxt-rollback -n ${namespace} status ${name}`,
        );
    }
    if (!existing)
      throw new CliError(
        failed.exitCode,
        `${failed.message}; the plan was not found right after (it may still appear: nxt-rollback -n ${namespace} status ${name})`,
      );
    if (existing.metadata.annotations?.[REQUEST_ID_ANNOTATION] !== requestId)
      throw new CliError(
        ExitCode.Usage,
        `RollbackPlan ${namespace}/${name} exists but is not the plan sent (${failed.message}): choose another --name`,
      );
    return existing;
  }
}
