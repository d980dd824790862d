import type pg from 'pg';
import { validateBackupId } from './backup-id.js';
import { describeConnection, type ConnectionSettings } from './connection.js';
import {
  createDatabaseLike,
  existingDatabases,
  derivedDatabaseName,
  dropDatabase,
  dropOldPreviousDatabases,
  newShortId,
  swapDatabases,
} from './database-admin.js';
import { connectDatabase } from './database.js';
import { RunnerFailure } from './failure.js';
import type { RunnerLog } from './log.js';
import { createRedactor, type Redact } from './redact.js';
import { restoreArchive } from './restore-archive.js';
import {
  preflightAssertionRole,
  validateRestoredDatabase,
  ValidationFailure,
  type SqlAssertion,
  type Validation,
} from './restore-validation.js';
import type { RestoreResult } from './result.js';
import { timing } from './termination-message.js';
import type { BackupStorage } from './storage.js';
import { verifyBackup } from './verify.js';

export type RestoreMode = 'inPlace' | 'newDatabaseSwap';

export interface RestoreOptions {
  storage: BackupStorage;
  id: string;
  /** The target: its `database` is the one restored (inPlace) or replaced (newDatabaseSwap). */
  database: ConnectionSettings;
  mode: RestoreMode;
  pgRestorePath: string;
  /** Row counts to find after the restore; defaults to the manifest's. */
  expectTables?: Record<string, number>;
  sqlAssertions?: SqlAssertion[];
  /** Operator configuration ALLOW_SUPERUSER_ASSERTIONS: assertions may run as a superuser-like role. */
  allowSuperuserAssertions?: boolean;
  log: RunnerLog;
  /** Database to connect to for CREATE/ALTER DATABASE (newDatabaseSwap); default `postgres`. */
  maintenanceDatabase?: string;
  /** Suffix of the databases newDatabaseSwap creates; random unless given (tests, deterministic retries). */
  shortId?: string;
  /**
   * newDatabaseSwap: how many `<db>_pre_<id>` databases to keep after the swap, the one just made
   * included (default DEFAULT_KEEP_PREVIOUS_DATABASES); older ones are dropped. 0 drops the one just made.
   */
  keepPreviousDatabases?: number;
  env?: NodeJS.ProcessEnv;
  redact?: Redact;
  now?: () => Date;
  /**
   * The plan this restore is for (NXT_PLAN_UID): the restore claims `.restores/<planUid>` in storage before
   * touching the database and refuses (RestoreAlreadyStarted) if another run claimed it, so a plan restores
   * at most once whatever happens to its Jobs.
   */
  planUid?: string;
  /** Recorded in the marker, for whoever finds it. */
  jobName?: string;
  /**
   * newDatabaseSwap: pg_restore --jobs into the replacement database (see podRestoreJobs); inPlace always
   * restores in one transaction with one job.
   */
  jobs?: number;
  /**
   * Restore a backup whose manifest says `verified: false` (its backup's own verification failed). Nothing
   * sets it today: a plan's restore, its safety backups and emergency plans all restore verified backups only.
   */
  allowUnverified?: boolean;
}

export const DEFAULT_KEEP_PREVIOUS_DATABASES = 1;

const seconds = (t0: number) => (Date.now() - t0) / 1000;

/**
 * Restores a verified backup into the target database and checks the result against the manifest.
 * Refuses a backup that fails verification: restoring a damaged archive is how good data gets replaced.
 */
export async function runRestore(o: RestoreOptions): Promise<RestoreResult> {
  const now = o.now ?? (() => new Date());
  const started = now();
  const redact = o.redact ?? createRedactor([o.database.password]);
  const env = o.env ?? process.env;
  const target = o.database.database;
  const detail: Partial<RestoreResult> = { mode: o.mode, database: target };
  let dropFailures: string[] = [];
  const base = { resultVersion: 1 as const, operation: 'restore' as const, id: o.id };
  // Connections opened beside the archive check (each connect is a round trip and a backend fork): nothing
  // here can change the target or storage, and they are only used once the check has passed. With SQL
  // assertions the role check and the maintenance connection connect one after the other, never at once: a
  // role limited to one connection must not fail every attempt. None is held open while pg_restore runs for
  // validation (it would compete with pg_restore for a connection slot and could be reaped while it idles).
  let admin: Promise<pg.Client> | undefined;
  // The maintenance connection in use (a reconnect replaces it): the finally below ends whichever it is.
  let adminClient: pg.Client | undefined;
  /** newDatabaseSwap: this run's replacement database when dropping it failed, named in the failure message. */
  let leftover: { database: string; error: string } | undefined;
  const connectAdmin = () => connectDatabase(o.database, env, o.maintenanceDatabase ?? 'postgres');
  try {
    validateBackupId(o.id);
    const assertions = o.sqlAssertions ?? [];
    const assertionOptions = { allowSuperuser: o.allowSuperuserAssertions ?? false };
    const verifying = verifyBackup(o.storage, o.id, o.pgRestorePath, { env, redact });
    const preflight = settled(
      preflightAssertionRole(() => connectDatabase(o.database, env, target), assertions, assertionOptions),
    );
    if (o.mode === 'newDatabaseSwap') {
      admin = opened(
        assertions.length
          ? preflight.then((failure) => (failure ? Promise.reject(failure) : connectAdmin()))
          : connectAdmin(),
      );
    }
    const check = await verifying;
    if (!check.valid || !check.manifest) {
      throw new RunnerFailure(check.reason ?? 'ArchiveUnreadable', `refusing to restore: ${check.message}`);
    }
    if (check.manifest.verified !== true && !o.allowUnverified) {
      // The backup's own verification failed when it was taken (a foreign cluster's prefix, an id named by
      // hand): that its bytes match its manifest now does not make it a backup worth restoring.
      throw new RunnerFailure(
        'BackupUnverified',
        `refusing to restore: backup ${o.id}'s manifest says it did not pass verification when it was taken` +
          ` (verified: false: ${check.manifest.verifyMessage}); take or name a verified backup`,
      );
    }
    const expectTables = o.expectTables ?? check.manifest.tables;
    const { archive } = check.manifest;
    await preflight.then((failure) => {
      if (failure) throw failure;
    });
    o.log('info', 'restore.start', { id: o.id, mode: o.mode, target: describeConnection(o.database) });
    const restore = (database: string, clean: boolean, jobs = o.jobs ?? 1) =>
      restoreArchive({
        storage: o.storage,
        id: o.id,
        pgRestorePath: o.pgRestorePath,
        connection: o.database,
        database,
        clean,
        env,
        redact,
        ...(archive ? { archive } : {}),
        // The replacement is new and dropped on failure, so it needs no single transaction; inPlace does.
        ...(clean ? {} : { jobs }),
      });
    /** Validates `database` on a connection of its own, opened once the restore is done. */
    const validate = async (database: string): Promise<Validation> => {
      const t0 = Date.now();
      const c = await connectDatabase(o.database, env, database);
      try {
        return await validateRestoredDatabase(c, expectTables, assertions, assertionOptions);
      } finally {
        detail.validateSeconds = seconds(t0);
        await c.end().catch(() => {});
      }
    };
    // Before the claim: a server we cannot reach fails this run with nothing claimed, so a retry may still run.
    if (admin) adminClient = await admin;
    const shortId = o.shortId ?? newShortId();
    const replacement = derivedDatabaseName(target, 'restore', shortId);
    const previous = derivedDatabaseName(target, 'pre', shortId);
    // Read-only, so before the claim too: a name already taken is refused with nothing claimed, and the first
    // round trip on the maintenance connection (open since before the archive check) proves it still works.
    if (adminClient) await refuseExisting(adminClient, [replacement, previous]);

    if (o.planUid) {
      const claimed = await o.storage.claimRestore(o.planUid, {
        planUid: o.planUid,
        id: o.id,
        mode: o.mode,
        database: target,
        job: o.jobName,
        startedAt: started.toISOString(),
      });
      if (!claimed) {
        throw new RunnerFailure(
          'RestoreAlreadyStarted',
          `a restore for plan ${o.planUid} already started (marker ${o.storage.location}/.restores/${o.planUid}); refusing to restore a second time, nothing was changed by this run`,
        );
      }
      o.log('info', 'restore.claimed', { planUid: o.planUid });
    }
    let t0 = Date.now();
    if (o.mode === 'inPlace') {
      await restore(target, true);
      detail.restoreSeconds = seconds(t0);
      o.log('info', 'restore.restored', { id: o.id, database: target, seconds: detail.restoreSeconds });
      Object.assign(detail, await validate(target));
    } else {
      if (!adminClient) throw new Error('newDatabaseSwap without its maintenance connection');
      let maintenance: pg.Client = adminClient;
      /** Ends the maintenance connection and opens a new one with the same settings, used from then on. */
      const reconnect = async (why: unknown) => {
        o.log('warn', 'restore.maintenance-reconnect', { error: redact((why as Error).message) });
        await maintenance.end().catch(() => {});
        maintenance = adminClient = await connectAdmin();
        return maintenance;
      };
      /**
       * The maintenance connection, proven alive by a round trip. It idles through all of pg_restore, and no
       * TCP keepalive stops a server's idle_session_timeout, a pooler's idle limit or a terminated backend:
       * a session ended meanwhile is replaced, once (this run holds the plan's claim, so that is safe).
       */
      const liveMaintenance = async (): Promise<pg.Client> => {
        try {
          await maintenance.query(probe());
          return maintenance;
        } catch (e) {
          if (!isConnectionError(e)) throw e;
          return reconnect(e);
        }
      };
      // Whether `replacement` may exist, made by this run: only then is it dropped. CREATE DATABASE is atomic,
      // so one the server refused made nothing (and a name taken since refuseExisting is someone else's);
      // only a lost reply (DatabaseUnreachable) may hide one that committed.
      let mayExist = true;
      try {
        await createDatabaseLike(maintenance, replacement, target).catch((e: unknown) => {
          if (!(e instanceof RunnerFailure && e.reason === 'DatabaseUnreachable')) mayExist = false;
          throw e;
        });
        await withSerialFallback(
          o.jobs ?? 1,
          (jobs) => restore(replacement, false, jobs),
          async (e) => {
            // A parallel restore opens a connection per job: a role or server connection limit, or a pooler
            // that moves sessions, can fail it where one job in one transaction works. The target is
            // untouched and this run holds the plan's restore claim: start the replacement over, once.
            o.log('warn', 'restore.parallel-failed', { jobs: o.jobs, error: e.message });
            const m = await liveMaintenance();
            await dropDatabase(m, replacement);
            await createDatabaseLike(m, replacement, target);
          },
        );
        detail.restoreSeconds = seconds(t0);
        o.log('info', 'restore.restored', {
          id: o.id,
          database: replacement,
          seconds: detail.restoreSeconds,
        });
        Object.assign(detail, await validate(replacement));
        t0 = Date.now();
        await swapDatabases(
          await liveMaintenance(),
          { target, replacement, previous },
          o.log,
          `swapped out by the restore of backup ${o.id} at ${now().toISOString()}`,
        );
        detail.swapSeconds = seconds(t0);
        detail.previousDatabase = previous;
        o.log('info', 'restore.swapped', {
          id: o.id,
          database: target,
          previous,
          seconds: detail.swapSeconds,
        });
      } catch (e) {
        // The target is untouched; the replacement is a full copy of the database. Dropped on a fresh
        // connection when the maintenance one is gone; if that fails too, the failure names it.
        if (mayExist) {
          const drop = async () => {
            try {
              await dropDatabase(await liveMaintenance(), replacement);
            } catch (err) {
              if (!isConnectionError(err)) throw err;
              await dropDatabase(await reconnect(err), replacement);
            }
          };
          await drop().catch((err: Error) => {
            leftover = { database: replacement, error: err.message };
            o.log('warn', 'restore.cleanup-failed', { database: replacement, error: redact(err.message) });
          });
        }
        throw e;
      }
      const keep = o.keepPreviousDatabases ?? DEFAULT_KEEP_PREVIOUS_DATABASES;
      const pre = await dropOldPreviousDatabases(maintenance, target, previous, keep, o.log).catch(
        (e: Error) => {
          o.log('warn', 'restore.previous-list-failed', { error: e.message });
          return undefined;
        },
      );
      if (pre) {
        detail.previousDatabasesKept = [...pre.kept, ...pre.failed];
        detail.previousDatabasesDropped = pre.dropped;
        if (pre.failed.length) dropFailures = pre.failed;
        if (!detail.previousDatabasesKept.includes(previous)) delete detail.previousDatabase;
      }
    }
    const dropped = detail.previousDatabasesDropped ?? [];
    const message =
      `restored ${o.id} into ${target} (${o.mode}); ${detail.tablesVerified} table(s) match the manifest` +
      (assertions.length ? `, ${assertions.length} assertion(s) passed` : '') +
      (detail.previousDatabase ? `; the previous database is kept as ${detail.previousDatabase}` : '') +
      (dropped.length
        ? `; dropped ${dropped.length} older previous database(s): ${dropped.join(', ')}`
        : '') +
      (dropFailures.length ? `; dropping ${dropFailures.join(', ')} failed, drop by hand` : '');
    o.log('info', 'restore.done', { id: o.id, message });
    return { ...base, ...detail, ...timing(started, now()), success: true, message };
  } catch (e) {
    const failure = e instanceof RunnerFailure ? e : new RunnerFailure('Internal', (e as Error).message);
    if (failure instanceof ValidationFailure) Object.assign(detail, failure.validation);
    const message = redact(
      failure.message +
        (leftover
          ? `; dropping this run's replacement database ${leftover.database} failed (${leftover.error}): it is` +
            ' left behind, drop it by hand'
          : ''),
    );
    o.log('error', 'restore.failed', { id: o.id, reason: failure.reason, message });
    return { ...base, ...detail, ...timing(started, now()), success: false, reason: failure.reason, message };
  } finally {
    // A connect still pending after a failed check is not waited for: it is closed once it connects.
    if (adminClient) await adminClient.end().catch(() => {});
    else void admin?.then((c) => c.end()).catch(() => {});
  }
}

/** Longest wait for the maintenance connection's `select 1` before it is taken for dead. */
export const PROBE_TIMEOUT_MS = 10_000;

// node-postgres's per-query client-side timeout (a "Query read timeout" error, no SQLSTATE): bounds the probe on
// a connection whose peer vanished without a FIN. @types/pg's QueryConfig does not declare it.
const probe = (): pg.QueryConfig => Object.assign({ text: 'select 1' }, { query_timeout: PROBE_TIMEOUT_MS });

/**
 * Whether `e` says the connection is gone rather than that a statement failed: no SQLSTATE (a socket error,
 * a closed client, a read timeout), class 08 (connection exception), or the server ending the session
 * (57P01 terminated, 57P02 crash, 57P03 cannot connect now, 57P05 idle_session_timeout).
 */
export function isConnectionError(e: unknown): boolean {
  const code = (e as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return true;
  return code.startsWith('08') || ['57P01', '57P02', '57P03', '57P05'].includes(code);
}

async function refuseExisting(admin: pg.Client, names: string[]): Promise<void> {
  const existing = await existingDatabases(admin, names);
  const name = names.find((n) => existing.has(n));
  if (name !== undefined) {
    throw new RunnerFailure('InvalidArguments', `database ${name} already exists; choose another --short-id`);
  }
}

/** Settles with the failure of `p`, undefined on success: awaited later, it is never an unhandled rejection. */
const settled = (p: Promise<void>): Promise<Error | undefined> =>
  p.then(
    () => undefined,
    (e: Error) => e,
  );

/** `p` with its rejection handled until someone awaits it (then it throws there). */
function opened<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

/**
 * Runs `restore` with `jobs`; when a parallel run (jobs > 1) fails, `reset` prepares a clean target and it runs
 * once more with one job (a single transaction). A serial run's failure, or the retry's, is the outcome.
 */
export async function withSerialFallback(
  jobs: number,
  restore: (jobs: number) => Promise<void>,
  reset: (error: Error) => Promise<void>,
): Promise<void> {
  try {
    await restore(jobs);
  } catch (e) {
    // Only pg_restore's own failures: a storage error or a killed run would fail the same way again.
    if (jobs <= 1 || !serialMayHelp(e)) throw e;
    await reset(e as Error);
    await restore(1);
  }
}

/** A parallel pg_restore failure that one job in one transaction may not hit (connections, a pooler). */
function serialMayHelp(e: unknown): boolean {
  return e instanceof RunnerFailure && e.reason !== 'StorageFailed' && !/was killed by/.test(e.message);
}
