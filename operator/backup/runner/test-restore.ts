import { createHash } from 'node:crypto';
import { validateBackupId } from './backup-id.js';
import { describeConnection, type ConnectionSettings } from './connection.js';
import { createDatabaseLike, derivedDatabaseName, dropDatabase, newShortId } from './database-admin.js';
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
} from './restore-validation.js';
import type { TestRestoreResult } from './result.js';
import { timing } from './termination-message.js';
import type { BackupStorage } from './storage.js';
import { verifyBackup } from './verify.js';

export interface TestRestoreOptions {
  storage: BackupStorage;
  id: string;
  /** The server to restore on; the scratch database is named after (and made like) `database`. */
  database: ConnectionSettings;
  pgRestorePath: string;
  sqlAssertions?: SqlAssertion[];
  /** Operator configuration ALLOW_SUPERUSER_ASSERTIONS: assertions may run as a superuser-like role. */
  allowSuperuserAssertions?: boolean;
  log: RunnerLog;
  maintenanceDatabase?: string;
  shortId?: string;
  env?: NodeJS.ProcessEnv;
  redact?: Redact;
  now?: () => Date;
}

/**
 * The scratch database's short id when the runner runs in a Job: from the Job's UID (NXT_JOB_UID), so a pod
 * that replaces an evicted one (schedule Jobs replace disrupted pods) uses the same scratch name and drops the
 * copy the evicted pod left behind. Undefined outside a Job.
 */
export function jobScratchShortId(env: NodeJS.ProcessEnv): string | undefined {
  const uid = env.NXT_JOB_UID?.trim().toLowerCase();
  if (!uid || !/^[0-9a-f-]{1,64}$/.test(uid)) return undefined;
  return createHash('sha256').update(`test-restore/${uid}`).digest('hex').slice(0, 6);
}

/**
 * Proves a backup restores: restores it into `<db>_verify_<shortid>` (shortid from --short-id, the Job's UID:
 * jobScratchShortId, or random), compares row counts with the
 * manifest, records how long the restore took (the RTO a user can expect), and drops the scratch database
 * whatever happened.
 */
export async function runTestRestore(o: TestRestoreOptions): Promise<TestRestoreResult> {
  const now = o.now ?? (() => new Date());
  const started = now();
  const redact = o.redact ?? createRedactor([o.database.password]);
  const env = o.env ?? process.env;
  const jobShortId = o.shortId ? undefined : jobScratchShortId(env);
  const scratch = derivedDatabaseName(o.database.database, 'verify', o.shortId ?? jobShortId ?? newShortId());
  const base = { resultVersion: 1 as const, operation: 'test-restore' as const, id: o.id };
  const detail: Partial<TestRestoreResult> = { scratchDatabase: scratch };
  try {
    validateBackupId(o.id);
    const check = await verifyBackup(o.storage, o.id, o.pgRestorePath, { env, redact });
    if (!check.valid || !check.manifest) {
      throw new RunnerFailure(
        check.reason ?? 'ArchiveUnreadable',
        `refusing to test-restore: ${check.message}`,
      );
    }
    const assertionOptions = { allowSuperuser: o.allowSuperuserAssertions ?? false };
    await preflightAssertionRole(
      () => connectDatabase(o.database, env, o.database.database),
      o.sqlAssertions ?? [],
      assertionOptions,
    );
    o.log('info', 'test-restore.start', { id: o.id, scratch, server: describeConnection(o.database) });
    const admin = await connectDatabase(o.database, env, o.maintenanceDatabase ?? 'postgres');
    try {
      // A name of this Job: a previous pod of it, evicted mid-restore, may have left the database behind.
      if (jobShortId) {
        const left = await admin.query('select 1 from pg_database where datname = $1', [scratch]);
        if (left.rowCount) {
          o.log('warn', 'test-restore.leftover-dropped', { scratch });
          await dropDatabase(admin, scratch);
        }
      }
      await createDatabaseLike(admin, scratch, o.database.database);
      try {
        let t0 = Date.now();
        await restoreArchive({
          storage: o.storage,
          id: o.id,
          pgRestorePath: o.pgRestorePath,
          connection: o.database,
          database: scratch,
          clean: false,
          env,
          redact,
          ...(check.manifest.archive ? { archive: check.manifest.archive } : {}),
        });
        detail.restoreSeconds = (Date.now() - t0) / 1000;
        o.log('info', 'test-restore.restored', { id: o.id, scratch, seconds: detail.restoreSeconds });
        t0 = Date.now();
        const c = await connectDatabase(o.database, env, scratch);
        try {
          Object.assign(
            detail,
            await validateRestoredDatabase(c, check.manifest.tables, o.sqlAssertions ?? [], assertionOptions),
          );
        } finally {
          detail.validateSeconds = (Date.now() - t0) / 1000;
          await c.end().catch(() => {});
        }
      } finally {
        detail.scratchDropped = await dropDatabase(admin, scratch).then(
          () => true,
          (e: Error) => {
            o.log('error', 'test-restore.drop-failed', { scratch, error: e.message });
            return false;
          },
        );
      }
    } finally {
      await admin.end().catch(() => {});
    }
    const message =
      `backup ${o.id} restores in ${detail.restoreSeconds}s; ${detail.tablesVerified} table(s) match the manifest` +
      (detail.scratchDropped ? '' : `; dropping ${scratch} failed, drop it by hand`);
    o.log('info', 'test-restore.done', { id: o.id, message });
    return { ...base, ...detail, ...timing(started, now()), success: true, message };
  } catch (e) {
    const failure = e instanceof RunnerFailure ? e : new RunnerFailure('Internal', (e as Error).message);
    if (failure instanceof ValidationFailure) Object.assign(detail, failure.validation);
    const message = redact(failure.message);
    o.log('error', 'test-restore.failed', { id: o.id, reason: failure.reason, message });
    return { ...base, ...detail, ...timing(started, now()), success: false, reason: failure.reason, message };
  }
}
