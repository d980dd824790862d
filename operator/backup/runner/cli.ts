import { stat } from 'node:fs/promises';
import { LATEST_BACKUP_ID } from './backup-id.js';
import { runBackup } from './backup.js';
import {
  findTerminationLog,
  parseRunnerArgs,
  UsageError,
  USAGE,
  type RunnerArgs,
  type RunnerCommand,
} from './cli-args.js';
import {
  ConnectionConfigError,
  connectionFromEnv,
  parseDatabaseUrl,
  type ConnectionSettings,
} from './connection.js';
import { exitCodeOf, RunnerFailure, storageFailure } from './failure.js';
import { findLatestVerifiedBackup } from './latest.js';
import { createJsonLog, type RunnerLog } from './log.js';
import { OriginEnv, originFromEnv } from './origin.js';
import { pgToolPath } from './pg-tool.js';
import { readPinFromEnv } from './pins.js';
import { pruneAfterBackup, runPrune } from './prune.js';
import { createRedactor, type Redact } from './redact.js';
import type { FailureReason, RunnerResult } from './result.js';
import { timing, writeTerminationMessage } from './termination-message.js';
import { scheduleIdentityFromEnv } from './retention.js';
import {
  CLUSTER_ID_ENV,
  foreignBackup,
  foreignClusterFromEnv,
  type OwnerAccess,
  ownerIdentityFromEnv,
} from './storage-owner.js';
import type { S3BackupStorage as S3Storage } from './s3-storage.js';
import { FilesystemBackupStorage, type BackupStorage } from './storage.js';
import { verifyBackup } from './verify.js';

export interface RunnerIo {
  /** Receives each JSON log line; default stderr. */
  writeLog?: (line: string) => void;
  now?: () => Date;
}

/** Every spelling of the password we can know of, including the one inside DATABASE_URL. */
function secretsOf(env: NodeJS.ProcessEnv): string[] {
  const secrets = [env.PGPASSWORD, env.DATABASE_URL, env.AWS_SECRET_ACCESS_KEY, env.AWS_SESSION_TOKEN];
  try {
    if (env.DATABASE_URL) secrets.push(parseDatabaseUrl(env.DATABASE_URL).settings.password);
  } catch {
    // An unparsable URL is reported by connectionFromEnv; the whole URL is already a secret above.
  }
  return secrets.filter((s): s is string => Boolean(s));
}

/** Applies `redact` to every string in a result, so no field can carry the password out. */
function redactDeep<T>(value: T, redact: Redact): T {
  if (typeof value === 'string') return redact(value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => redactDeep(v, redact)) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactDeep(v, redact)])) as T;
  }
  return value;
}

function connection(env: NodeJS.ProcessEnv, log: RunnerLog): ConnectionSettings {
  try {
    const { settings, ignoredParams } = connectionFromEnv(env);
    if (ignoredParams.length) log('warn', 'connection.ignored-url-params', { params: ignoredParams });
    return settings;
  } catch (e) {
    if (e instanceof ConnectionConfigError) throw new RunnerFailure('InvalidArguments', e.message);
    throw e;
  }
}

/**
 * Runs `use` with the backup pinned, so a concurrent prune never deletes it mid-read: for the plan this Job
 * belongs to (NXT_PLAN_UID), else for this Job or process (readPinFromEnv). The pin is written before the
 * backup is read; a plan's pin is dropped afterwards when `release` says so (a restore is the plan's last use;
 * a verify that passed keeps it for the restore), any other pin always.
 */
async function withReadPin<T>(
  storage: BackupStorage,
  id: string,
  env: NodeJS.ProcessEnv,
  log: RunnerLog,
  now: () => Date,
  use: () => Promise<T>,
  release: (result: T) => boolean,
): Promise<T> {
  const { pin, plan } = readPinFromEnv(env, id, now());
  try {
    await storage.pin(pin);
  } catch (e) {
    throw storageFailure(e, `pinning backup ${id} for plan ${pin.plan?.name ?? pin.holder}`);
  }
  log('info', 'pin.written', { id, holder: pin.holder, expiresAt: pin.expiresAt });
  let result: T | undefined;
  try {
    result = await use();
    return result;
  } finally {
    if (!plan || result === undefined || release(result)) {
      await storage.unpin(id, pin.holder).then(
        () => log('info', 'pin.removed', { id, holder: pin.holder }),
        (e: Error) => log('warn', 'pin.remove-failed', { id, holder: pin.holder, error: e.message }),
      );
    }
  }
}

/**
 * What a command does to an S3 prefix (its owner decision): backups and prunes write, verify / test restore /
 * restore only read. Exhaustive: a new command must say which it is.
 */
export function ownerAccessOf(command: RunnerArgs['command']): OwnerAccess {
  switch (command) {
    case 'backup':
    case 'prune':
      return 'write';
    case 'verify':
    case 'restore':
    case 'test-restore':
    case 'probe-storage':
      return 'read';
    default: {
      const never: never = command;
      throw new Error(`no owner access for runner command ${String(never)}`);
    }
  }
}

/**
 * Checks the prefix's owner again right before a prune deletes anything: the check at start-up may be an hour
 * old (a backup's prune runs after its dump), and another cluster may have taken the prefix over since
 * (spec.storage.s3.foreignCluster TakeOver); its backups are then never this runner's to delete. A volume has
 * no owner object: nothing to check.
 */
function ownerRecheck(storage: BackupStorage, env: NodeJS.ProcessEnv): (() => Promise<unknown>) | undefined {
  const self = ownerIdentityFromEnv(env);
  const s = storage as BackupStorage & { ensureOwner?: S3Storage['ensureOwner'] };
  if (!self || typeof s.ensureOwner !== 'function') return undefined;
  return () => s.ensureOwner!(self, 'write', foreignClusterFromEnv(env));
}

/** The volume of --storage-dir, or the bucket of --storage-url (the AWS SDK is loaded only then). */
async function openStorage(
  args: RunnerArgs,
  env: NodeJS.ProcessEnv,
  now: () => Date,
  log: RunnerLog,
): Promise<BackupStorage> {
  if (args.storageUrl !== undefined) {
    const [{ s3ConfigFromEnv }, { createS3Client, S3BackupStorage }] = await Promise.all([
      import('./s3-config.js'),
      import('./s3-storage.js'),
    ]);
    const config = s3ConfigFromEnv(args.storageUrl, env);
    let client;
    try {
      client = await createS3Client(config);
    } catch (e) {
      throw new RunnerFailure(
        'InvalidArguments',
        `S3 client for ${args.storageUrl}: ${(e as Error).message}`,
      );
    }
    const storage = new S3BackupStorage(client, config, now, undefined, log);
    const self = ownerIdentityFromEnv(env);
    if (self) {
      if (!self.clusterId)
        log('warn', 'storage.owner-no-cluster-id', {
          message: `${CLUSTER_ID_ENV} is unset: the prefix owner object is matched by namespace and name only`,
        });
      // Backups and prunes write into the prefix; verify, test restores and restores only read its backups.
      const note = await storage.ensureOwner(self, ownerAccessOf(args.command), foreignClusterFromEnv(env));
      if (note) log('warn', 'storage.owner', { message: note });
    }
    return storage;
  }
  const dir = args.storageDir!;
  const dirOk = await stat(dir).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!dirOk) {
    throw new RunnerFailure(
      'StorageFailed',
      `--storage-dir ${dir} is not a directory (is the volume mounted?)`,
    );
  }
  return new FilesystemBackupStorage(dir);
}

/** `probe-storage`: the S3 location's checks (probe-storage.ts); the AWS SDK is loaded only here. */
async function probe(url: string, env: NodeJS.ProcessEnv, log: RunnerLog, now: () => Date) {
  const [{ s3ConfigFromEnv }, { createS3Client }, { probeStorage }] = await Promise.all([
    import('./s3-config.js'),
    import('./s3-storage.js'),
    import('./probe-storage.js'),
  ]);
  const config = s3ConfigFromEnv(url, env);
  let client;
  try {
    client = await createS3Client(config);
  } catch (e) {
    throw new RunnerFailure('InvalidArguments', `S3 client for ${url}: ${(e as Error).message}`);
  }
  try {
    const self = ownerIdentityFromEnv(env);
    const foreign = foreignClusterFromEnv(env);
    return await probeStorage({
      client,
      config,
      log,
      now,
      ...(self ? { self } : {}),
      ...(foreign ? { foreign } : {}),
    });
  } finally {
    client.destroy();
  }
}

async function run(
  args: RunnerArgs,
  env: NodeJS.ProcessEnv,
  log: RunnerLog,
  redact: Redact,
  now: () => Date,
): Promise<RunnerResult> {
  // Before openStorage: a probe claims nothing (openStorage writes the prefix's owner object) and needs no database.
  if (args.command === 'probe-storage') return probe(args.storageUrl!, env, log, now);
  const storage = await openStorage(args, env, now, log);
  const pgRestorePath = pgToolPath(env, 'pg_restore');
  const common = { storage, log, env, redact, now };
  /** The backup `--id` names: `latest` becomes the id of the newest verified backup retention keeps. */
  const owner = scheduleIdentityFromEnv(env);
  const self = ownerIdentityFromEnv(env);
  const backupId = async (id: string) => {
    if (id !== LATEST_BACKUP_ID) {
      // A backup another schedule wrote (its manifest's origin) is never verified or restored for this one.
      const m = self ? await storage.readManifest(id).catch(() => undefined) : undefined;
      const foreign = m ? foreignBackup(m, self) : undefined;
      if (foreign) throw new RunnerFailure('StorageOwnedByOther', foreign);
      return id;
    }
    const latest = await findLatestVerifiedBackup(storage, log, owner);
    log('info', 'runner.latest-resolved', { id: latest.id, finishedAt: latest.finishedAt });
    return latest.id;
  };
  switch (args.command) {
    case 'backup': {
      const origin = originFromEnv(env);
      const result = await runBackup({
        ...common,
        id: args.id,
        ...(origin ? { origin } : {}),
        database: connection(env, log),
        pgDumpPath: pgToolPath(env, 'pg_dump'),
        pgRestorePath,
      });
      // Pruned here rather than inside runBackup, so it knows which schedule it works for.
      const recheckOwner = ownerRecheck(storage, env);
      return pruneAfterBackup(result, {
        storage,
        policy: args.policy,
        log,
        redact,
        now,
        owner,
        ...(recheckOwner ? { recheckOwner } : {}),
      });
    }
    case 'verify': {
      const started = now();
      const id = await backupId(args.id);
      const v = await withReadPin(
        storage,
        id,
        env,
        log,
        now,
        () => verifyBackup(storage, id, pgRestorePath, { env, redact }),
        (outcome) => !outcome.valid,
      );
      log(v.valid ? 'info' : 'error', 'verify.done', {
        id,
        valid: v.valid,
        reason: v.reason,
        message: v.message,
      });
      return {
        resultVersion: 1,
        operation: 'verify',
        id,
        ...timing(started, now()),
        success: v.valid,
        ...(v.reason ? { reason: v.reason } : {}),
        message: v.message,
        valid: v.valid,
        ...(v.bytes !== undefined ? { bytes: v.bytes } : {}),
        ...(v.sha256 ? { sha256: v.sha256 } : {}),
      };
    }
    case 'restore': {
      // Loaded per command: restore and test-restore need zod (assertions, manifests), a backup does not.
      const [{ runRestore }, { ALLOW_SUPERUSER_ASSERTIONS_ENV }, { podRestoreJobs }] = await Promise.all([
        import('./restore.js'),
        import('./restore-validation.js'),
        import('./restore-jobs.js'),
      ]);
      const id = await backupId(args.id);
      const database = connection(env, log);
      return withReadPin(
        storage,
        id,
        env,
        log,
        now,
        () =>
          runRestore({
            ...common,
            id,
            database,
            mode: args.mode,
            pgRestorePath,
            sqlAssertions: args.sqlAssertions,
            allowSuperuserAssertions: env[ALLOW_SUPERUSER_ASSERTIONS_ENV] === 'true',
            jobs: podRestoreJobs(env),
            ...(env[OriginEnv.planUid] ? { planUid: env[OriginEnv.planUid] } : {}),
            ...(env[OriginEnv.jobName] ? { jobName: env[OriginEnv.jobName] } : {}),
            ...(args.maintenanceDb ? { maintenanceDatabase: args.maintenanceDb } : {}),
            ...(args.shortId ? { shortId: args.shortId } : {}),
            ...(args.keepPreviousDatabases !== undefined
              ? { keepPreviousDatabases: args.keepPreviousDatabases }
              : {}),
          }),
        () => true,
      );
    }
    case 'test-restore': {
      const [{ runTestRestore }, { ALLOW_SUPERUSER_ASSERTIONS_ENV }] = await Promise.all([
        import('./test-restore.js'),
        import('./restore-validation.js'),
      ]);
      const id = await backupId(args.id);
      const database = connection(env, log);
      return withReadPin(
        storage,
        id,
        env,
        log,
        now,
        () =>
          runTestRestore({
            ...common,
            id,
            database,
            pgRestorePath,
            sqlAssertions: args.sqlAssertions,
            allowSuperuserAssertions: env[ALLOW_SUPERUSER_ASSERTIONS_ENV] === 'true',
            ...(args.maintenanceDb ? { maintenanceDatabase: args.maintenanceDb } : {}),
            ...(args.shortId ? { shortId: args.shortId } : {}),
          }),
        () => true,
      );
    }
    case 'prune': {
      const recheckOwner = ownerRecheck(storage, env);
      return runPrune({
        storage,
        policy: args.policy,
        dryRun: args.dryRun,
        ...(args.leftoversOlderThanSeconds !== undefined
          ? { staleAfterMs: args.leftoversOlderThanSeconds * 1000 }
          : {}),
        log,
        now,
        ...(owner ? { owner } : {}),
        ...(recheckOwner ? { recheckOwner } : {}),
      });
    }
  }
}

/**
 * Entry point of the runner subcommands inside a Job pod. Logs one JSON line per event to stderr, writes
 * the result as the termination message, and returns the exit code (exitCodeOf: 0 success, 1 failed, 2 usage error, 3 failed for good).
 */
export async function runnerMain(argv: string[], env: NodeJS.ProcessEnv, io: RunnerIo = {}): Promise<number> {
  const now = io.now ?? (() => new Date());
  const started = now();
  const redact = createRedactor(secretsOf(env));
  const log = createJsonLog(io.writeLog ?? ((line) => process.stderr.write(line)), redact, now);
  let terminationLog = findTerminationLog(argv, env);
  let command: RunnerCommand | undefined;
  let result: RunnerResult;
  try {
    const args = parseRunnerArgs(argv, env);
    command = args.command;
    terminationLog = args.terminationLog;
    result = await run(args, env, log, redact, now);
  } catch (e) {
    let reason: FailureReason = 'Internal';
    let message = (e as Error).message;
    if (e instanceof UsageError) {
      command = e.command;
      reason = 'InvalidArguments';
      message = `${message}\n${USAGE}`;
    } else if (e instanceof RunnerFailure) reason = e.reason;
    else log('error', 'runner.crashed', { error: e as Error, stack: (e as Error).stack });
    result = {
      resultVersion: 1,
      operation: command ?? 'unknown',
      ...timing(started, now()),
      success: false,
      reason,
      message,
    } as RunnerResult;
  }
  result = redactDeep(result, redact);
  log(result.success ? 'info' : 'error', 'runner.result', { result });
  await writeTerminationMessage(result, terminationLog).catch((e: Error) =>
    log('warn', 'runner.termination-log-unwritable', { path: terminationLog, error: e.message }),
  );
  return exitCodeOf(result);
}
