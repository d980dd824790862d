import { toolEnv, type ConnectionSettings } from './connection.js';
import { reasonOfToolStderr, RunnerFailure, storageFailure } from './failure.js';
import { runTool, ToolNotRunnableError } from './pg-tool.js';
import type { Redact } from './redact.js';
import type { ArchiveIdentity } from './manifest.js';
import type { BackupStorage } from './storage.js';

export interface RestoreArchiveOptions {
  storage: BackupStorage;
  id: string;
  pgRestorePath: string;
  connection: ConnectionSettings;
  /** The database to restore into (may differ from connection.database). */
  database: string;
  /** Drop the archive's objects before recreating them (restoring over existing data). */
  clean: boolean;
  env: NodeJS.ProcessEnv;
  redact: Redact;
  /**
   * Parallel jobs (pg_restore --jobs), for a database this run created and drops if the restore fails
   * (never with `clean`): --jobs cannot run in one transaction. Needs a storage with a local file; 1 or
   * undefined restores in a single transaction from a stream.
   */
  jobs?: number;
  /** The manifest's archive identity: the streamed read is pinned to it (object storage). */
  archive?: ArchiveIdentity;
}

/** `dbname='...'`: pg_restore -d treats a value containing `=` as a conninfo string, so always use one. */
export function conninfoDbname(database: string): string {
  return `dbname='${database.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/**
 * Runs pg_restore so that it stops at the first error. With one job it restores in a single transaction:
 * either the whole archive is restored or the database is left as it was. With `jobs` > 1 it restores the
 * stored file in parallel, one transaction per object; the caller restores into a database it created and
 * drops that database when this fails.
 */
export async function restoreArchive(o: RestoreArchiveOptions): Promise<void> {
  if (o.clean && (o.jobs ?? 1) > 1)
    throw new Error('a parallel restore cannot --clean (no single transaction)');
  let file: string | undefined;
  try {
    file = (o.jobs ?? 1) > 1 ? await o.storage.localFile(o.id) : undefined;
  } catch (e) {
    throw storageFailure(e, `reading backup ${o.id}`);
  }
  const args = [
    ...(o.clean ? ['--clean', '--if-exists'] : []),
    ...(file ? [`--jobs=${o.jobs}`] : ['--single-transaction']),
    '--no-owner',
    '--exit-on-error',
    '--no-password',
    '-d',
    conninfoDbname(o.database),
    ...(file ? [file] : []),
  ];
  let run;
  try {
    run = await runTool({
      path: o.pgRestorePath,
      args,
      env: toolEnv(o.connection, o.env, o.database),
      redact: o.redact,
      ...(file ? {} : { stdin: await o.storage.read(o.id, o.archive) }),
    });
  } catch (e) {
    if (e instanceof ToolNotRunnableError) throw new RunnerFailure('RestoreFailed', e.message);
    throw storageFailure(e, `reading backup ${o.id}`);
  }
  if (run.stdinError) {
    throw storageFailure(run.stdinError, `reading backup ${o.id}`);
  }
  if (run.code !== 0) {
    const how = run.code === null ? `was killed by ${run.signal}` : `exited with code ${run.code}`;
    throw new RunnerFailure(
      reasonOfToolStderr(run.stderrTail, 'RestoreFailed'),
      file
        ? `pg_restore (${o.jobs} jobs) into ${o.database} ${how}; that database is dropped, the target is untouched: ${run.stderrTail || '(no output)'}`
        : `pg_restore into ${o.database} ${how}; nothing was changed: ${run.stderrTail || '(no output)'}`,
    );
  }
}
