// nxt-rollback drill: a rollback rehearsal that touches nothing the application runs on. It copies a
// Deployment with two revisions into a scratch namespace, lets the operator roll it back (a RollbackPlan) and
// test-restore the newest backup (the test-restore-now annotation), reports the measured RTO and RPO against
// the objectives, and deletes the scratch namespace (also on failure and Ctrl-C, unless --keep).
import type { Command } from 'commander';
import { Annotation, GROUP } from '../../api/v1alpha1/common.js';
import type { BackupScheduleStatus } from '../../api/v1alpha1/backupschedule.js';
import { isAlreadyExists, isNotFound } from '../../kube/errors.js';
import type { KubeObject } from '../../kube/rest.js';
import { readDeploymentHistory } from '../../rollback/deployment-io.js';
import { findRevisionReplicaSet, type RawDeployment } from '../../rollback/deployment-undo.js';
import { ownTestRestoreResult, supersededBy } from '../backup-requests.js';
import { action } from '../command.js';
import { plansRef, schedulesRef, type CliContext } from '../context.js';
import { CliError, ExitCode, fromApiError } from '../errors.js';
import {
  appFigures,
  drillDeployment,
  drillId,
  drillNamespace,
  drillPlan,
  drillVerdict,
  serviceAccountsOf,
  type AppFigures,
  type DatabaseFigures,
} from '../drill-objects.js';
import { durationOption, objectName } from '../flags.js';
import { deploymentHealth, newestGoodBackup, planRto, rpoObjectiveOf } from '../health-report.js';
import { formatDuration, paint, table } from '../output.js';
import { isTerminalPhase } from '../plan-view.js';
import { waitGone, watchMaybe } from '../watch.js';
import { deploymentRef, listOrExit, targetNames } from './health.js';
import { parseDuration } from '../../api/v1alpha1/common.js';

interface DrillFlags {
  deployment?: string;
  schedule?: string;
  database: boolean;
  keep?: boolean;
  rto?: number;
  timeout: number;
}

const namespaceRef = (name: string) => ({ group: '', version: 'v1', plural: 'namespaces', name });

export interface DrillReport {
  source: { namespace: string; deployment: string; revision?: string; previousRevision?: string };
  scratchNamespace: string;
  /**
   * deleted, deleting (deleted, but the CLI may not watch namespaces to see it go), kept (--keep), or left
   * (the deletion failed: delete it by hand).
   */
  cleanup: 'deleted' | 'deleting' | 'kept' | 'left';
  app: AppFigures;
  database: DatabaseFigures;
  met: boolean;
  problems: string[];
}

export function register(program: Command) {
  program
    .command('drill')
    .description('a rollback drill in a scratch namespace: measured RTO and RPO against the objectives')
    .option(
      '--deployment <name>',
      "the Deployment to drill (default: the plans' only target)",
      objectName('--deployment'),
    )
    .option(
      '--schedule <name>',
      'the BackupSchedule to test-restore (default: the only one in the namespace)',
      objectName('--schedule'),
    )
    .option('--no-database', 'skip the test restore')
    .option('--keep', 'keep the scratch namespace for inspection')
    .addOption(durationOption('--rto <duration>', "RTO objective (default: the target's RollbackPlan's)"))
    .addOption(durationOption('--timeout <duration>', 'how long each stage may take', '10m'))
    .action(action(async (ctx, opts: DrillFlags) => runDrill(ctx, opts), checkDrill));
}

/** The flag combinations drill refuses before it connects (as readiness does). */
export function checkDrill(opts: Pick<DrillFlags, 'database' | 'schedule'>): void {
  if (!opts.database && opts.schedule)
    throw new CliError(ExitCode.Usage, '--schedule and --no-database exclude each other');
}

async function runDrill(ctx: CliContext, opts: DrillFlags) {
  const ns = ctx.namespace;
  const progress = (s: string) => (ctx.out.format === 'table' ? ctx.out.line(s) : ctx.out.warn(s));
  const plans = await listOrExit(ctx, plansRef(ns), `rollbackplans.${GROUP}`);
  const name =
    opts.deployment ?? onlyOne(targetNames(plans, []), 'Deployment', '--deployment', 'RollbackPlan targets');
  const schedule = opts.database ? await pickSchedule(ctx, opts.schedule) : undefined;

  let history;
  try {
    history = await readDeploymentHistory(ctx.client, ns, name);
  } catch (e) {
    throw fromApiError(e, `read deployment ${ns}/${name} and its replicasets`);
  }
  const source = history.deployment;
  const previous = findRevisionReplicaSet(source, history.replicaSets, 0);
  if (!previous?.spec?.template)
    throw new CliError(
      ExitCode.Failed,
      `Deployment ${ns}/${name} has no previous revision: there is nothing to roll back to`,
    );
  const sourcePlan = plans
    // A dry-run plan counts too: it carries the severity and objectives the team intends.
    .filter((p) => targetNames([p], []).includes(name))
    .sort((a, b) =>
      (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? ''),
    )[0];
  const rto = opts.rto
    ? `${Math.round(opts.rto / 1000)}s`
    : sourcePlan
      ? planRto(sourcePlan)
      : planRto({ metadata: { name } });

  const id = drillId();
  const scratch = drillNamespace(id, { namespace: ns, deployment: name }).metadata.name;
  let cleanup: DrillReport['cleanup'] = opts.keep ? 'kept' : 'left';
  let cleaning: Promise<void> | undefined;
  /** Whether the namespace may exist: set before the create request, so Ctrl-C during it cleans up too. */
  let mayExist = false;
  const removeScratch = () =>
    (cleaning ??= (async () => {
      if (opts.keep || !mayExist) return;
      try {
        await ctx.client.delete(namespaceRef(scratch), { propagationPolicy: 'Background' });
      } catch (e) {
        if (!isNotFound(e)) {
          ctx.out.warn(
            `warning: could not delete namespace ${scratch}: ${fromApiError(e, 'delete namespace').message}`,
          );
          return;
        }
      }
      try {
        await waitGone(ctx.client, namespaceRef(scratch), 120_000);
        cleanup = 'deleted';
      } catch (e) {
        // The delete went through; only following it was refused (no list/watch on namespaces).
        if (e instanceof CliError && e.exitCode === ExitCode.Forbidden) cleanup = 'deleting';
        else ctx.out.warn(`warning: namespace ${scratch} is still there: ${(e as Error).message}`);
      }
    })());
  const onSignal = (signal: NodeJS.Signals) => {
    ctx.out.warn(`${signal}: stopping the drill${opts.keep ? '' : `, deleting namespace ${scratch}`}`);
    void removeScratch().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    mayExist = true;
    try {
      await ctx.client.create(namespaceRef(scratch), drillNamespace(id, { namespace: ns, deployment: name }));
    } catch (e) {
      mayExist = false;
      throw fromApiError(e, 'create namespaces');
    }
    progress(`drill of ${ns}/${name} in namespace ${scratch}`);
    for (const sa of serviceAccountsOf(previous.spec.template, source.spec.template))
      await ctx.client
        .create(
          { group: '', version: 'v1', plural: 'serviceaccounts', namespace: scratch },
          { metadata: { name: sa } },
        )
        .catch((e: unknown) => {
          if (!isAlreadyExists(e)) throw fromApiError(e, `create serviceaccount ${scratch}/${sa}`);
        });
    await createOrFail(
      ctx,
      deploymentRef(scratch),
      drillDeployment(source, previous.spec.template, scratch),
      'deployments.apps',
    );
    await waitRolledOut(ctx, scratch, name, '1', opts.timeout);
    progress(`  revision 1 (previous template) rolled out`);
    try {
      await ctx.client.patch(deploymentRef(scratch, name), 'json', [
        {
          op: 'replace',
          path: '/spec/template',
          value: drillDeployment(source, source.spec.template, scratch).spec.template,
        },
      ]);
    } catch (e) {
      throw fromApiError(e, `patch deployment ${scratch}/${name}`);
    }
    await waitRolledOut(ctx, scratch, name, '2', opts.timeout);
    progress(`  revision 2 (current template) rolled out`);

    const planBody = drillPlan('drill', scratch, name, rto, `${ns}/${name}`);
    await createOrFail(ctx, plansRef(scratch), planBody, `rollbackplans.${GROUP}`);
    progress(`  RollbackPlan ${scratch}/drill created (RTO ${rto})`);
    const seen = new Set<string>();
    const plan = await watchMaybe<KubeObject & { status?: Record<string, any> }, KubeObject>(
      ctx.client,
      plansRef(scratch, 'drill'),
      (p) => {
        if (!p) throw new CliError(ExitCode.Failed, `plan ${scratch}/drill was deleted`);
        return isTerminalPhase(p.status?.phase) ? p : undefined;
      },
      {
        timeoutMs: opts.timeout,
        waitingFor: `the drill's rollback (plan ${scratch}/drill)`,
        hint: (p) =>
          p?.status?.phase
            ? `phase ${p.status.phase}`
            : `the operator wrote no status: does it watch all namespaces (the drill runs in ${scratch})?`,
        onChange: (p) => {
          for (const s of (p?.status?.steps ?? []) as { name: string; result: string; message?: string }[]) {
            const key = `${s.name}:${s.result}`;
            if (seen.has(key)) continue;
            seen.add(key);
            progress(`  ${s.name} ${s.result}${s.message ? `: ${s.message}` : ''}`);
          }
        },
      },
    );
    const app = appFigures(plan as { metadata: { name: string } }, rto);
    progress(`  rollback ${app.phase} in ${formatDuration(app.durationSeconds)} (RTO ${rto})`);

    const database: DatabaseFigures = schedule
      ? await testRestore(ctx, schedule, id, app, opts.timeout, progress)
      : { skipped: opts.database ? `no BackupSchedule in namespace ${ns}` : '--no-database' };

    await removeScratch();
    const verdict = drillVerdict(app, database);
    const report: DrillReport = {
      source: {
        namespace: ns,
        deployment: name,
        ...(source.metadata.annotations?.['deployment.kubernetes.io/revision']
          ? { revision: source.metadata.annotations['deployment.kubernetes.io/revision'] }
          : {}),
        ...(previous.metadata.annotations?.['deployment.kubernetes.io/revision']
          ? { previousRevision: previous.metadata.annotations['deployment.kubernetes.io/revision'] }
          : {}),
      },
      scratchNamespace: scratch,
      cleanup,
      app,
      database,
      ...verdict,
    };
    ctx.out.result(report, () => printDrill(ctx, report));
    return verdict.met ? ExitCode.Ok : ExitCode.Failed;
  } finally {
    await removeScratch();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function onlyOne(names: string[], kind: string, flag: string, from: string): string {
  if (names.length === 1) return names[0]!;
  throw new CliError(
    ExitCode.Usage,
    names.length
      ? `several ${kind}s (${names.join(', ')}): name one with ${flag}`
      : `no ${kind} among the ${from}: name one with ${flag}`,
  );
}

async function pickSchedule(ctx: CliContext, name: string | undefined): Promise<KubeObject | undefined> {
  if (name) {
    try {
      return await ctx.client.get(schedulesRef(ctx.namespace, name));
    } catch (e) {
      throw fromApiError(e, `get backupschedule ${ctx.namespace}/${name}`);
    }
  }
  const all = await listOrExit(ctx, schedulesRef(ctx.namespace), `backupschedules.${GROUP}`);
  if (all.length <= 1) return all[0];
  return ctx.client.get(
    schedulesRef(
      ctx.namespace,
      onlyOne(
        all.map((s) => s.metadata.name),
        'BackupSchedule',
        '--schedule',
        'schedules',
      ),
    ),
  );
}

async function createOrFail(
  ctx: CliContext,
  ref: Parameters<CliContext['client']['create']>[0],
  body: unknown,
  what: string,
) {
  try {
    return await ctx.client.create(ref, body);
  } catch (e) {
    throw fromApiError(e, `create ${what} in ${ref.namespace}`);
  }
}

function waitRolledOut(
  ctx: CliContext,
  namespace: string,
  name: string,
  revision: string,
  timeoutMs: number,
) {
  return watchMaybe<RawDeployment & KubeObject, true>(
    ctx.client,
    deploymentRef(namespace, name),
    (d) => {
      if (!d) throw new CliError(ExitCode.Failed, `Deployment ${namespace}/${name} was deleted`);
      const h = deploymentHealth(name, d);
      if (h.rollout === 'failed')
        throw new CliError(ExitCode.Failed, `Deployment ${namespace}/${name}: ${h.message}`);
      return h.rollout === 'complete' && h.ready >= h.desired && h.revision === revision ? true : undefined;
    },
    {
      timeoutMs,
      waitingFor: `Deployment ${namespace}/${name} to roll out revision ${revision}`,
      hint: (d) => (d ? deploymentHealth(name, d).message || undefined : undefined),
    },
  );
}

type ScheduleObject = KubeObject & {
  spec?: { objectives?: { rpo?: string } };
  status?: BackupScheduleStatus;
};

type TestRestoreResult = NonNullable<NonNullable<ScheduleObject['status']>['lastTestRestore']>;

/**
 * Whether `t` is the result of the handled request: the request's own Job (lastTestRestore.jobName), or, from
 * an operator that does not record jobName yet, a new result for the request's backup.
 */
export function isResultOf(
  t: TestRestoreResult | undefined,
  handled: { jobName?: string; backupId?: string },
  before: TestRestoreResult | undefined,
): boolean {
  if (!t) return false;
  if (t.jobName !== undefined) return t.jobName === handled.jobName;
  const fresh = t.finishedAt !== before?.finishedAt || t.backupId !== before?.backupId;
  return fresh && (!handled.backupId || t.backupId === handled.backupId);
}

/**
 * Asks the operator to test-restore the newest backup (annotation test-restore-now = latest@<drill id>) and
 * follows the schedule until status.lastTestRestoreNow shows the request was handled and a new
 * status.lastTestRestore was recorded for it.
 */
async function testRestore(
  ctx: CliContext,
  schedule: KubeObject,
  id: string,
  app: AppFigures,
  timeoutMs: number,
  progress: (s: string) => void,
): Promise<DatabaseFigures> {
  const name = schedule.metadata.name;
  const ns = ctx.namespace;
  const request = `latest@drill-${id}`;
  const before = (schedule as ScheduleObject).status?.lastTestRestore;
  try {
    await ctx.client.patch(schedulesRef(ns, name), 'merge', {
      metadata: { annotations: { [Annotation.TestRestoreNow]: request } },
    });
  } catch (e) {
    throw fromApiError(e, `patch backupschedule ${ns}/${name} (annotation ${Annotation.TestRestoreNow})`);
  }
  progress(`  test restore of ${name} requested (${Annotation.TestRestoreNow}=${request})`);
  const final = await watchMaybe<ScheduleObject, { s: ScheduleObject; result?: TestRestoreResult }>(
    ctx.client,
    schedulesRef(ns, name),
    (s) => {
      if (!s) throw new CliError(ExitCode.NotFound, `BackupSchedule ${ns}/${name} was deleted`);
      const handled = s.status?.lastTestRestoreNow;
      const superseded = supersededBy(s, Annotation.TestRestoreNow, request, handled?.annotationValue);
      if (superseded)
        throw new CliError(
          ExitCode.Failed,
          `the drill's test-restore-now request ${request} was superseded by ${superseded.by} before the operator handled it`,
        );
      if (handled?.annotationValue !== request) return undefined;
      if (handled.message && !handled.jobName) return { s };
      // The request's own outcome (an operator that records it there), else the newest result if it is ours.
      const own = ownTestRestoreResult(handled);
      if (own) return { s, result: own };
      const last = s.status?.lastTestRestore;
      return last && isResultOf(last, handled, before) ? { s, result: last } : undefined;
    },
    {
      timeoutMs,
      waitingFor: `the test restore of ${ns}/${name}`,
      hint: (s) =>
        s?.status?.lastTestRestoreNow?.annotationValue === request
          ? `running as Job ${s.status.lastTestRestoreNow.jobName ?? '?'}`
          : `the operator has not acted on ${Annotation.TestRestoreNow}: is it running, and does it support it?`,
    },
  );
  const st = final.s.status ?? {};
  const newest = newestGoodBackup(st);
  const backupAgeSeconds = newest
    ? Math.max(0, Math.round((Date.now() - Date.parse(newest.finishedAt)) / 1000))
    : null;
  const rpo = rpoObjectiveOf(final.s);
  const rpoSeconds = parseDuration(rpo) / 1000;
  const t = final.result;
  const figures: DatabaseFigures = {
    schedule: name,
    request,
    ...((t?.backupId ?? st.lastTestRestoreNow?.backupId)
      ? { backupId: t?.backupId ?? st.lastTestRestoreNow?.backupId }
      : {}),
    result: t ? t.result : 'NotStarted',
    ...(t?.durationSeconds !== undefined ? { durationSeconds: t.durationSeconds } : {}),
    ...((t?.message ?? st.lastTestRestoreNow?.message)
      ? { message: t?.message ?? st.lastTestRestoreNow?.message }
      : {}),
    backupAgeSeconds,
    rpo,
    rpoSeconds,
    rpoMet: backupAgeSeconds !== null && backupAgeSeconds <= rpoSeconds,
    restoreWithinRto: t?.durationSeconds !== undefined && t.durationSeconds <= app.rtoSeconds,
  };
  progress(
    `  test restore ${figures.result}${t?.durationSeconds !== undefined ? ` in ${formatDuration(t.durationSeconds)}` : ''}`,
  );
  return figures;
}

function printDrill(ctx: CliContext, r: DrillReport) {
  const out = ctx.out;
  const verdict = (ok: boolean) => (ok ? paint(out, 'green', 'met') : paint(out, 'red', 'missed'));
  const rows: (string | undefined)[][] = [
    [
      'rollback (RTO)',
      `plan ${r.app.plan} ${r.app.phase}` +
        (r.app.fromRevision !== undefined ? `, revision ${r.app.fromRevision} -> ${r.app.toRevision}` : ''),
      formatDuration(r.app.durationSeconds) || '-',
      r.app.rto,
      verdict(r.app.rtoMet),
    ],
  ];
  if ('skipped' in r.database) rows.push(['database', `skipped: ${r.database.skipped}`, '-', '-', '-']);
  else {
    const db = r.database;
    rows.push([
      'test restore (RTO)',
      `${db.schedule} ${db.backupId ?? ''} ${db.result}`.replace(/\s+/g, ' '),
      formatDuration(db.durationSeconds) || '-',
      r.app.rto,
      verdict(db.result === 'Succeeded' && db.restoreWithinRto),
    ]);
    rows.push([
      'newest backup (RPO)',
      db.schedule,
      db.backupAgeSeconds === null ? 'none' : formatDuration(db.backupAgeSeconds),
      db.rpo,
      verdict(db.rpoMet),
    ]);
  }
  out.line();
  out.line(table(['check', 'what', 'measured', 'objective', 'result'], rows));
  out.line();
  out.line(
    `scratch namespace ${r.scratchNamespace}: ${r.cleanup === 'deleting' ? 'deleted (could not watch it go)' : r.cleanup}`,
  );
  out.line(
    r.met
      ? paint(out, 'green', 'drill met its objectives')
      : `${paint(out, 'red', 'drill missed its objectives')}: ${r.problems.join('; ')}`,
  );
}
