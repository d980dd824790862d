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
 * Proves a backup restores: restores it into `<db>_verify_<shortid>`, compares row counts with the
 * manifest, records how long the restore took (the RTO a user can expect), and drops the scratch database
 * whatever happened.
 */
export async function runTestRestore(o: TestRestoreOptions): Promise<TestRestoreResult> {
  const now = o.now ?? (() => new Date());
  const started = now();
  const redact = o.redact ?? createRedactor([o.database.password]);
  const env = o.env ?? process.env;
  const scratch = derivedDatabaseName(o.database.database, 'verify', o.shortId ?? newShortId());
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
