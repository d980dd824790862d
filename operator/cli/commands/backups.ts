// backup now, backups list, backups verify: requests to the BackupSchedule controller through its annotations
// (backup-now, test-restore-now), and the backups its status records. The operator takes and test-restores the
// backups; the CLI only asks and reads.
import { Command, Option } from 'commander';
import { Annotation } from '../../api/v1alpha1/common.js';
import type { KubeObject } from '../../kube/rest.js';
import { backupNowState, listBackups, testRestoreState } from '../backup-requests.js';
import { action } from '../command.js';
import { schedulesRef, type CliContext } from '../context.js';
import { CliError, ExitCode, fromApiError } from '../errors.js';
import { objectName, parseDurationFlag } from '../flags.js';
import { age, formatDuration, paint, table } from '../output.js';
import { formatBytes, uniqueRequestValue } from '../requests.js';
import { watchObject } from '../watch.js';

const DEFAULT_TIMEOUT = '10m';

/** backup now, backups list, backups verify. */
export function register(program: Command) {
  const backup = program.command('backup').description('take a backup now');
  backup
    .command('now')
    .description(
      'take an emergency backup now (sets the backup-now annotation); without a schedule name: the only BackupSchedule in the namespace',
    )
    .argument('[schedule]', 'BackupSchedule name', objectName('BackupSchedule name'))
    .option('--wait', 'wait until the backup is recorded (or failed)')
    .addOption(new Option('--timeout <duration>', 'how long --wait waits').default(DEFAULT_TIMEOUT))
    .action(action(backupNow, (_schedule, opts) => checkTimeout(opts)));

  const backups = program.command('backups').description('list or verify backups');
  backups
    .command('list')
    .description('the backups recorded by one BackupSchedule, or by all in the namespace; newest first')
    .argument('[schedule]', 'BackupSchedule name', objectName('BackupSchedule name'))
    .action(action(list));
  backups
    .command('verify')
    .description(
      'test-restore one backup now (sets the test-restore-now annotation): verify the file, restore it into a scratch database, run spec.verify.sql, drop it',
    )
    .argument('<id>', 'backup id (see backups list), or latest')
    .option(
      '--schedule <name>',
      'the BackupSchedule (default: the one that recorded the id)',
      objectName('--schedule'),
    )
    .option('--wait', 'wait for the result')
    .addOption(new Option('--timeout <duration>', 'how long --wait waits').default(DEFAULT_TIMEOUT))
    .action(action(verify, (_id, opts) => checkTimeout(opts)));
}

const checkTimeout = (opts: { timeout: string }) => void parseDurationFlag('--timeout', opts.timeout);

/** The named schedule, or the only one in the namespace. */
async function resolveSchedule(ctx: CliContext, name: string | undefined): Promise<KubeObject> {
  if (name) {
    try {
      return await ctx.client.get<KubeObject>(schedulesRef(ctx.namespace, name));
    } catch (e) {
      const err = fromApiError(e, `get BackupSchedule "${name}"`);
      if (err.exitCode === ExitCode.NotFound)
        throw new CliError(
          ExitCode.NotFound,
          `BackupSchedule "${name}" not found in namespace ${ctx.namespace}`,
        );
      throw err;
    }
  }
  const all = await listSchedules(ctx);
  if (all.length === 1) return all[0]!;
  if (!all.length) throw new CliError(ExitCode.NotFound, `no BackupSchedule in namespace ${ctx.namespace}`);
  throw new CliError(
    ExitCode.Usage,
    `namespace ${ctx.namespace} has ${all.length} BackupSchedules (${all.map((s) => s.metadata.name).join(', ')}): name one`,
  );
}

async function listSchedules(ctx: CliContext): Promise<KubeObject[]> {
  try {
    return (await ctx.client.list<KubeObject>(schedulesRef(ctx.namespace))).items;
  } catch (e) {
    throw fromApiError(e, 'list backupschedules');
  }
}

async function annotate(ctx: CliContext, name: string, key: string, value: string) {
  try {
    await ctx.client.patch(schedulesRef(ctx.namespace, name), 'merge', {
      metadata: { annotations: { [key]: value } },
    });
  } catch (e) {
    throw fromApiError(e, `patch BackupSchedule "${name}"`);
  }
}

async function backupNow(
  ctx: CliContext,
  scheduleName: string | undefined,
  opts: { wait?: boolean; timeout: string },
) {
  const timeoutMs = parseDurationFlag('--timeout', opts.timeout);
  const schedule = await resolveSchedule(ctx, scheduleName);
  const name = schedule.metadata.name;
  const request = uniqueRequestValue();
  await annotate(ctx, name, Annotation.BackupNow, request);
  if (!opts.wait) {
    ctx.out.result({ schedule: name, request, state: 'Requested' }, () =>
      ctx.out.line(`backup requested on BackupSchedule ${name} (${Annotation.BackupNow}=${request})`),
    );
    return ExitCode.Ok;
  }
  if (ctx.out.format === 'table') ctx.out.warn(`backup requested on BackupSchedule ${name}; waiting…`);
  let lastNote = '';
  let announced = false;
  const done = await watchObject(
    ctx.client,
    schedulesRef(ctx.namespace, name),
    (s: KubeObject) => {
      const st = backupNowState(s, request);
      if (st.state === 'waiting') {
        if (st.jobName && !announced) {
          announced = true;
          if (ctx.out.format === 'table') ctx.out.warn(`Job ${st.jobName} started`);
        }
        if (st.note && st.note !== lastNote) ctx.out.warn((lastNote = st.note));
        return undefined;
      }
      return st;
    },
    { what: `BackupSchedule "${name}"`, waitingFor: `the backup of BackupSchedule "${name}"`, timeoutMs },
  );
  if (done.state === 'superseded')
    throw new CliError(
      ExitCode.Failed,
      `backup-now request ${request} was superseded by ${done.by} (another backup now) before the operator handled it: the backup follows that request; see backups list`,
    );
  if (done.state === 'failed') {
    ctx.out.result(
      {
        schedule: name,
        request,
        jobName: done.jobName,
        state: 'Failed',
        reason: done.reason,
        message: done.message,
      },
      () => ctx.out.line(`${paint(ctx.out, 'red', 'backup failed')}: ${done.reason}: ${done.message}`),
    );
    return ExitCode.Failed;
  }
  const b = done.backup;
  const durationSeconds = b.startedAt
    ? Math.max(0, (Date.parse(b.finishedAt) - Date.parse(b.startedAt)) / 1000)
    : undefined;
  const verified = b.verified === true;
  ctx.out.result(
    {
      schedule: name,
      request,
      jobName: done.jobName,
      state: verified ? 'Succeeded' : 'NotVerified',
      backup: { ...b, durationSeconds },
    },
    () =>
      ctx.out.line(
        table(
          ['id', 'size', 'sha256', 'verified', 'duration'],
          [
            [
              b.id,
              formatBytes(b.bytes),
              b.sha256 ? `${b.sha256.slice(0, 12)}…` : '',
              verified ? paint(ctx.out, 'green', 'yes') : paint(ctx.out, 'red', 'NO'),
              formatDuration(durationSeconds),
            ],
          ],
        ),
      ),
  );
  return verified ? ExitCode.Ok : ExitCode.Failed;
}

async function list(ctx: CliContext, scheduleName: string | undefined) {
  const schedules = scheduleName ? [await resolveSchedule(ctx, scheduleName)] : await listSchedules(ctx);
  const rows = listBackups(schedules);
  ctx.out.result({ backups: rows }, () => {
    if (!rows.length) {
      ctx.out.warn(
        schedules.length
          ? `no backups recorded yet in namespace ${ctx.namespace}`
          : `no BackupSchedule in namespace ${ctx.namespace}`,
      );
      return;
    }
    ctx.out.line(
      table(
        ['id', 'schedule', 'purpose', 'finished', 'age', 'size', 'verified'],
        rows.map((b) => [
          b.id,
          b.schedule,
          b.purpose ?? '',
          b.finishedAt,
          age(b.finishedAt),
          formatBytes(b.bytes),
          b.verified ? 'yes' : paint(ctx.out, 'red', 'no'),
        ]),
      ),
    );
  });
  return ExitCode.Ok;
}

/** The schedule that recorded `id` (or, for latest, the only one). */
async function scheduleOfBackup(ctx: CliContext, id: string, named: string | undefined) {
  if (named || id === 'latest') return resolveSchedule(ctx, named);
  const all = await listSchedules(ctx);
  const holding = all.filter((s) => (s.status?.backups ?? []).some((b: { id: string }) => b.id === id));
  if (holding.length === 1) return holding[0]!;
  if (holding.length > 1)
    throw new CliError(
      ExitCode.Usage,
      `backup "${id}" is recorded by ${holding.map((s) => s.metadata.name).join(', ')}: choose one with --schedule`,
    );
  throw new CliError(
    ExitCode.NotFound,
    all.length
      ? `backup "${id}" is not recorded by any BackupSchedule in namespace ${ctx.namespace} (see backups list)`
      : `no BackupSchedule in namespace ${ctx.namespace}`,
  );
}

async function verify(
  ctx: CliContext,
  id: string,
  opts: { schedule?: string; wait?: boolean; timeout: string },
) {
  const timeoutMs = parseDurationFlag('--timeout', opts.timeout);
  const schedule = await scheduleOfBackup(ctx, id, opts.schedule);
  const name = schedule.metadata.name;
  const backups = listBackups([schedule]);
  const backup =
    id === 'latest'
      ? backups.find((b) => b.verified === true && b.purpose !== 'safety')
      : backups.find((b) => b.id === id);
  if (!backup)
    throw new CliError(
      ExitCode.NotFound,
      id === 'latest'
        ? `BackupSchedule "${name}" has no verified backup yet`
        : `backup "${id}" is not recorded by BackupSchedule "${name}" (newest: ${
            backups
              .slice(0, 5)
              .map((b) => b.id)
              .join(', ') || 'none'
          })`,
    );
  const request = `${backup.id}@${uniqueRequestValue()}`;
  const requestedAt = new Date();
  await annotate(ctx, name, Annotation.TestRestoreNow, request);
  if (!opts.wait) {
    ctx.out.result({ schedule: name, backupId: backup.id, request, state: 'Requested' }, () =>
      ctx.out.line(
        `test restore of ${backup.id} requested on BackupSchedule ${name} (${Annotation.TestRestoreNow}=${request})`,
      ),
    );
    return ExitCode.Ok;
  }
  if (ctx.out.format === 'table') ctx.out.warn(`test restore of ${backup.id} requested; waiting…`);
  let lastNote = '';
  const done = await watchObject(
    ctx.client,
    schedulesRef(ctx.namespace, name),
    (s: KubeObject) => {
      const st = testRestoreState(s, request, backup.id, requestedAt);
      if (st.state !== 'waiting') return st;
      if (st.note && st.note !== lastNote) ctx.out.warn((lastNote = st.note));
      return undefined;
    },
    {
      what: `BackupSchedule "${name}"`,
      waitingFor: `the test restore of ${backup.id} (BackupSchedule "${name}")`,
      timeoutMs,
    },
  );
  if (done.state === 'superseded')
    throw new CliError(
      ExitCode.Failed,
      `test-restore-now request ${request} was superseded by ${done.by} (another backups verify or drill) before the operator handled it: this backup was not test-restored`,
    );
  if (done.state === 'refused') {
    // The backup was pruned between our read and the operator's.
    throw new CliError(
      done.reason === 'BackupNotFound' ? ExitCode.NotFound : ExitCode.Failed,
      `test restore not started: ${done.message}`,
    );
  }
  const r = done.result;
  const ok = r.result === 'Succeeded';
  ctx.out.result(
    {
      schedule: name,
      backupId: r.backupId,
      request,
      result: r.result,
      durationSeconds: r.durationSeconds,
      finishedAt: r.finishedAt,
      message: r.message,
    },
    () =>
      ctx.out.line(
        `test restore of ${r.backupId}: ${ok ? paint(ctx.out, 'green', 'Succeeded') : paint(ctx.out, 'red', 'Failed')} in ${formatDuration(r.durationSeconds)}${r.message ? `: ${r.message}` : ''}`,
      ),
  );
  return ok ? ExitCode.Ok : ExitCode.Failed;
}
