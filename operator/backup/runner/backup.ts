import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { startArchivePass, tocProblem, type TocListing } from './archive-stream.js';
import { validateBackupId } from './backup-id.js';
import { describeConnection, toolEnv, type ConnectionSettings } from './connection.js';
import { connectDatabase, countRows, databaseSize } from './database.js';
import { pgFailure, reasonOfToolStderr, RunnerFailure, storageFailure } from './failure.js';
import type { RunnerLog } from './log.js';
import type { ArchiveIdentity, BackupManifest } from './manifest.js';
import { decideExistingBackup, describeOrigin, type BackupOrigin } from './origin.js';
import { pgToolVersion, runTool } from './pg-tool.js';
import { pruneAfterBackup } from './prune.js';
import { createRedactor, type Redact } from './redact.js';
import type { BackupResult, FailureReason } from './result.js';
import { OBJECT_LOCK_ERROR_MAX, timing } from './termination-message.js';
import type { RetentionPolicy } from './retention.js';
import { ManifestInvalidError, type BackupStorage } from './storage.js';
import { withoutDatabaseUrl } from './verify.js';

export interface BackupOptions {
  storage: BackupStorage;
  id: string;
  database: ConnectionSettings;
  pgDumpPath: string;
  /** Defaults to pg_restore beside pg_dump. */
  pgRestorePath?: string;
  log: RunnerLog;
  /** Base environment of the child processes (PATH, PGSSLROOTCERT, ...). */
  env?: NodeJS.ProcessEnv;
  redact?: Redact;
  now?: () => Date;
  /**
   * Applied to the storage after a successful, verified backup, as `prune` does, never deleting this backup.
   * Undefined: nothing is pruned.
   */
  retention?: RetentionPolicy;
  /**
   * Who is writing (from the pod's environment): stored in the manifest, and the only writer whose
   * existing backup under this id is reused. Undefined (a run by hand): an existing backup is never reused.
   */
  origin?: BackupOrigin;
}

function siblingTool(path: string, name: string): string {
  return basename(path) === path ? name : join(dirname(path), name);
}

/** What the dump's snapshot transaction learned, in the one round trip before pg_dump starts. */
interface DumpSnapshot {
  /** For pg_dump --snapshot; undefined where snapshots cannot be exported (e.g. behind a transaction-mode pooler). */
  name: string | undefined;
  serverVersion: string;
  /** server_version_num, e.g. 150018. */
  serverVersionNum: number;
}

// This session idles while pg_dump runs (possibly for hours); a server-side idle timeout must not end it
// before we count rows in its snapshot. SET LOCAL, after the BEGIN: the settings end with the snapshot's
// transaction, so behind a transaction-mode pooler they never reach a server session another client gets.
const TRANSACTION_SETTINGS =
  'set local idle_in_transaction_session_timeout = 0; set local statement_timeout = 0';
const BEGIN_SNAPSHOT = 'begin isolation level repeatable read, read only';
const VERSION_COLUMNS = `current_setting('server_version') as v, current_setting('server_version_num') as n`;

/** The last statement's rows of a simple query of several statements (node-postgres returns one result each). */
function lastRow<T>(r: pg.QueryResult | pg.QueryResult[]): T | undefined {
  const last = Array.isArray(r) ? r[r.length - 1] : r;
  return last?.rows[0] as T | undefined;
}

/**
 * Opens a read-only repeatable-read transaction and exports its snapshot for pg_dump, so the row counts we
 * read in it afterwards describe exactly what the dump contains, even while the application writes. One
 * round trip (a simple query of several statements; the BEGIN inside it keeps the transaction open after it),
 * which also reads the server's version for the manifest: pg_dump starts as soon as it returns.
 */
export async function openDumpSnapshot(c: pg.Client, log: RunnerLog): Promise<DumpSnapshot> {
  type Row = { s?: string; v: string; n: string };
  const of = (row: Row | undefined): DumpSnapshot => ({
    name: row?.s,
    serverVersion: row?.v ?? 'unknown',
    serverVersionNum: Number(row?.n) || 0,
  });
  try {
    const r = await c.query(
      `${BEGIN_SNAPSHOT}; ${TRANSACTION_SETTINGS}; select pg_export_snapshot() as s, ${VERSION_COLUMNS}`,
    );
    return of(lastRow<Row>(r));
  } catch (e) {
    // Not from a savepoint: PostgreSQL cannot export a snapshot from a subtransaction. Start over instead
    // (the failed transaction took its settings with it).
    await c.query('rollback');
    const r = await c.query(`${BEGIN_SNAPSHOT}; ${TRANSACTION_SETTINGS}; select ${VERSION_COLUMNS}`);
    log('warn', 'backup.snapshot-unavailable', { error: (e as Error).message });
    return of(lastRow<Row>(r));
  }
}

/**
 * The round trips before pg_dump can start: the database's size when the storage sizes its writes from it
 * (object storage's upload parts; in its own transaction bounded by a statement_timeout, before the snapshot,
 * and not fatal), then the snapshot.
 */
export async function prepareDump(
  c: pg.Client,
  storage: Pick<BackupStorage, 'usesDatabaseSize'>,
  id: string,
  log: RunnerLog,
  redact: Redact,
): Promise<{ databaseBytes?: number; snapshot: DumpSnapshot }> {
  let databaseBytes: number | undefined;
  if (storage.usesDatabaseSize) {
    databaseBytes = await databaseSize(c).catch((e: Error) => {
      log('warn', 'backup.size-unknown', { id, error: redact(e.message) });
      return undefined;
    });
  }
  try {
    const snapshot = await openDumpSnapshot(c, log);
    return { snapshot, ...(databaseBytes !== undefined ? { databaseBytes } : {}) };
  } catch (e) {
    throw pgFailure(e, 'opening the dump snapshot', 'DumpFailed');
  }
}

/**
 * Exact row counts in the dump's snapshot, while pg_dump copies the same tables. Without parallel workers: a
 * parallel seq scan of a large table would take cores from pg_dump's compression and its COPY backend
 * (issue 13: measured in docs/benchmarks.md); one backend scanning beside them finishes well before the dump.
 */
export async function countRowsInSnapshot(
  c: pg.Client,
  serverVersionNum: number,
): Promise<Record<string, number>> {
  // max_parallel_workers_per_gather exists from 9.6; SET LOCAL ends with the snapshot's transaction.
  if (serverVersionNum >= 90600) await c.query('set local max_parallel_workers_per_gather = 0');
  return countRows(c);
}

interface Dumped {
  bytes: number;
  sha256: string;
  /** Whether pg_restore could read the table of contents of what was streamed, and the storage holds it all. */
  check: { valid: boolean; reason?: FailureReason; message: string };
  /** The stored object the upload created (object storage), recorded in the manifest. */
  archive?: ArchiveIdentity;
  /** Where the dump phase went, for the log: pg_dump's start to its first byte, to its last, the commit. */
  ms: { firstByte?: number; stream: number; commit: number };
}

/**
 * Streams pg_dump's stdout through one pass (SHA-256, byte count and `pg_restore --list` on the TOC at its
 * start) into the storage sink, with backpressure, and commits it. The archive is read once, as it is
 * written: no second pass over the stored file.
 */
async function dumpToStorage(
  o: BackupOptions,
  redact: Redact,
  snapshot: string | undefined,
  pgRestorePath: string,
  databaseBytes: number | undefined,
): Promise<Dumped> {
  let writer;
  try {
    writer = await o.storage.createWriter(o.id, databaseBytes === undefined ? {} : { databaseBytes });
  } catch (e) {
    throw storageFailure(e, `opening ${o.id} in ${o.storage.location}`);
  }
  const env = o.env ?? process.env;
  const t0 = performance.now();
  const pass = startArchivePass({ pgRestorePath, env: withoutDatabaseUrl(env), redact });
  let streamed;
  try {
    const run = await runTool({
      path: o.pgDumpPath,
      args: ['--format=custom', '--no-password', ...(snapshot ? [`--snapshot=${snapshot}`] : [])],
      env: toolEnv(o.database, env),
      redact,
      onStdout: (stdout) => pipeline(stdout, pass.tap, writer.stream),
    });
    streamed = await pass.result();
    if (run.stdoutError) throw storageFailure(run.stdoutError, `writing ${o.id} to ${o.storage.location}`);
    if (run.code !== 0) {
      const reason = reasonOfToolStderr(run.stderrTail, 'DumpFailed');
      const how = run.code === null ? `was killed by ${run.signal}` : `exited with code ${run.code}`;
      throw new RunnerFailure(reason, `pg_dump ${how}: ${run.stderrTail || '(no output)'}`);
    }
  } catch (e) {
    pass.tap.destroy();
    await writer.abort().catch(() => {});
    if (e instanceof RunnerFailure) throw e;
    throw new RunnerFailure('DumpFailed', (e as Error).message);
  }
  const tStreamed = performance.now();
  let committed;
  try {
    committed = await writer.commit();
  } catch (e) {
    await writer.abort().catch(() => {});
    throw storageFailure(e, `committing ${o.id} in ${o.storage.location}`);
  }
  const { sha256, bytes, toc, firstByteAt } = streamed;
  return {
    sha256,
    bytes,
    check: archiveCheck(o.id, bytes, committed.bytes, toc),
    ...(committed.archive ? { archive: committed.archive } : {}),
    ms: {
      ...(firstByteAt !== undefined ? { firstByte: Math.round(firstByteAt - t0) } : {}),
      stream: Math.round(tStreamed - t0),
      commit: Math.round(performance.now() - tStreamed),
    },
  };
}

/**
 * The backup's verification from its one pass: the storage holds every byte that was hashed, and
 * pg_restore read the archive's TOC. A verify Job and every restore re-read the stored dump against the
 * manifest's checksum before using it.
 */
export function archiveCheck(
  id: string,
  streamedBytes: number,
  committedBytes: number,
  toc: TocListing,
): { valid: boolean; reason?: FailureReason; message: string } {
  if (committedBytes !== streamedBytes) {
    return {
      valid: false,
      reason: 'ChecksumMismatch',
      message: `backup ${id} is damaged: the storage holds ${committedBytes} bytes, ${streamedBytes} were written`,
    };
  }
  if (toc.error) return { valid: false, reason: 'Internal', message: tocProblem(toc)! };
  const problem = tocProblem(toc);
  if (problem) return { valid: false, reason: 'ArchiveUnreadable', message: `backup ${id}: ${problem}` };
  return {
    valid: true,
    message: `sha256 taken while streaming over ${streamedBytes} bytes, all committed; pg_restore lists ${toc.entries} archive entries`,
  };
}

/**
 * Takes one backup: dump, count rows in the dump's snapshot, commit, verify, then write the manifest; then,
 * with a retention policy and only if all that succeeded, prunes older backups (see pruneAfterBackup).
 * On failure nothing under the id looks like a finished backup (no dump without a manifest is left).
 */
export async function runBackup(o: BackupOptions): Promise<BackupResult> {
  const result = await takeBackup(o);
  return pruneAfterBackup(result, {
    storage: o.storage,
    policy: o.retention,
    log: o.log,
    redact: o.redact ?? createRedactor([o.database.password]),
    ...(o.now ? { now: o.now } : {}),
  });
}

async function takeBackup(o: BackupOptions): Promise<BackupResult> {
  const now = o.now ?? (() => new Date());
  const started = now();
  const redact = o.redact ?? createRedactor([o.database.password]);
  const pgRestorePath = o.pgRestorePath ?? siblingTool(o.pgDumpPath, 'pg_restore');
  const base = { resultVersion: 1 as const, operation: 'backup' as const, id: o.id };
  let committed = false;
  try {
    validateBackupId(o.id);
    const reused = await reuseVerifiedBackup(o);
    if (reused) {
      o.log('info', 'backup.reused', { id: o.id, finishedAt: reused.finishedAt });
      return {
        ...base,
        ...timing(started, now()),
        success: true,
        message: `backup ${o.id} was already committed and verified at ${reused.finishedAt}; not dumped again`,
        reused: true,
        ...summary(reused),
      };
    }
    o.log('info', 'backup.start', {
      id: o.id,
      storage: o.storage.location,
      database: describeConnection(o.database),
    });
    const t0 = performance.now();
    const ms = (since = t0) => Math.round(performance.now() - since);
    // Independent start-up steps at once: the connection that exports the dump's snapshot (first: its
    // handshake is under way while pg_dump --version is forked) and the pg_dump version for the manifest.
    const connecting = connectDatabase(o.database, o.env ?? process.env);
    connecting.catch(() => {}); // awaited below
    const versionOf = pgToolVersion(o.pgDumpPath, o.env ?? process.env, redact).catch((e: Error) => {
      throw new RunnerFailure('DumpFailed', e.message);
    });
    versionOf.catch(() => {}); // awaited below; not an unhandled rejection meanwhile
    const client = await connecting;
    const connectMs = ms();
    let dumped: Dumped;
    let tables: Record<string, number>;
    let snapshot: DumpSnapshot;
    try {
      const { databaseBytes, ...prepared } = await prepareDump(client, o.storage, o.id, o.log, redact);
      snapshot = prepared.snapshot;
      o.log('info', 'backup.snapshot', {
        id: o.id,
        exported: snapshot.name !== undefined,
        ms: { connect: connectMs, prepare: ms() - connectMs },
      });
      // The row counts run in the exported snapshot while pg_dump copies it: same data, no waiting after.
      // Settled into a value, so a failing count is reported below, not as an unhandled rejection; if the
      // dump fails first, closing the client ends the counting.
      const tCount = performance.now();
      let countMs = 0;
      const counting = countRowsInSnapshot(client, snapshot.serverVersionNum).then(
        (t) => ((countMs = ms(tCount)), { t }),
        (e: unknown) => ({ e }),
      );
      const tDump = performance.now();
      dumped = await dumpToStorage(o, redact, snapshot.name, pgRestorePath, databaseBytes);
      committed = true;
      o.log('info', 'backup.dumped', {
        id: o.id,
        bytes: dumped.bytes,
        seconds: ms(tDump) / 1000,
        ms: { ...dumped.ms, counts: countMs || undefined },
      });
      try {
        const counted = await counting;
        if ('e' in counted) throw counted.e;
        tables = counted.t;
        await client.query('commit');
      } catch (e) {
        throw pgFailure(e, 'counting rows in the dump snapshot', 'DumpFailed');
      }
    } finally {
      await client.end().catch(() => {});
    }
    const pgDumpVersion = await versionOf;
    const check = dumped.check;
    o.log(check.valid ? 'info' : 'error', 'backup.verified', {
      id: o.id,
      valid: check.valid,
      message: check.message,
    });
    const finished = now();
    const manifest: BackupManifest = {
      manifestVersion: 1,
      id: o.id,
      database: o.database.database,
      host: o.database.host,
      port: o.database.port,
      user: o.database.user,
      serverVersion: snapshot.serverVersion,
      pgDumpVersion,
      ...timing(started, finished),
      bytes: dumped.bytes,
      sha256: dumped.sha256,
      tables,
      rowCountsFromDumpSnapshot: snapshot.name !== undefined,
      format: 'custom',
      verified: check.valid,
      verifyMessage: check.message,
      ...(dumped.archive ? { archive: dumped.archive } : {}),
      ...(o.origin ? { origin: o.origin } : {}),
    };
    await o.storage.writeManifest(manifest).catch((e: Error) => {
      throw storageFailure(e, `writing the manifest of ${o.id}`);
    });
    o.log('info', 'backup.manifest-written', { id: o.id, tables: Object.keys(tables).length });
    const result = { ...base, ...timing(started, finished), ...summary(manifest) };
    if (!check.valid) {
      // The dump and its manifest stay, marked verified: false, for whoever investigates; restore refuses
      // it (BackupUnverified, restore.ts), and a retry of this Job redoes it.
      return {
        ...result,
        success: false,
        reason: check.reason ?? 'ArchiveUnreadable',
        message: check.message,
      };
    }
    const lock = await readObjectLock(o.storage, o.id, redact, dumped.archive);
    if (lock.objectLockUnknown)
      o.log('warn', 'backup.retention-unknown', { id: o.id, error: lock.objectLockUnknown });
    return {
      ...result,
      success: true,
      message:
        `backup ${o.id} committed and verified (${dumped.bytes} bytes)` +
        (lock.objectLock
          ? `; immutable (${lock.objectLock.mode}) until ${lock.objectLock.retainUntil}`
          : '') +
        (lock.objectLockUnknown ? '; its Object Lock retention could not be read' : ''),
      ...lock,
    };
  } catch (e) {
    const failure = e instanceof RunnerFailure ? e : new RunnerFailure('Internal', (e as Error).message);
    // A committed dump without its manifest would look like a crash; remove it so the retry starts clean.
    if (committed) await o.storage.remove(o.id).catch(() => {});
    const message = redact(failure.message);
    o.log('error', 'backup.failed', { id: o.id, reason: failure.reason, message });
    return { ...base, ...timing(started, now()), success: false, reason: failure.reason, message };
  }
}

/**
 * The stored dump's Object Lock retention for the result: `objectLock` when the server reports one, nothing
 * when it reports none (or the storage has no such notion), `objectLockUnknown` (the redacted, bounded error)
 * when reading it failed: that is not "no lock".
 */
export async function readObjectLock(
  storage: Pick<BackupStorage, 'retentionOf'>,
  id: string,
  redact: Redact,
  archive?: ArchiveIdentity,
): Promise<Pick<BackupResult, 'objectLock' | 'objectLockUnknown'>> {
  if (!storage.retentionOf) return {};
  try {
    const lock = await storage.retentionOf(id, archive);
    return lock ? { objectLock: lock } : {};
  } catch (e) {
    const message = redact((e as Error)?.message ?? String(e)).slice(0, OBJECT_LOCK_ERROR_MAX);
    return { objectLockUnknown: message || 'unknown error' };
  }
}

function summary(m: BackupManifest) {
  return {
    bytes: m.bytes,
    sha256: m.sha256,
    verified: m.verified,
    tableCount: Object.keys(m.tables).length,
    tables: m.tables,
    serverVersion: m.serverVersion,
    pgDumpVersion: m.pgDumpVersion,
  };
}

/**
 * A retried Job finds the backup its first attempt finished; one that failed verification is redone. A
 * backup under this id that someone else wrote (another Job, another plan of the same name, a run without
 * provenance) is never adopted, overwritten or removed: BackupIdConflict.
 */
async function reuseVerifiedBackup(o: BackupOptions): Promise<BackupManifest | undefined> {
  let existing: BackupManifest | undefined;
  try {
    existing = await o.storage.readManifest(o.id);
  } catch (e) {
    // The storage could not be read (S3 access denied, network): not a verdict on the backup under this id.
    if (!(e instanceof ManifestInvalidError)) throw storageFailure(e, `reading the manifest of ${o.id}`);
    // Manifests are written atomically (rename), so an unreadable one is not a half-written one of ours.
    throw new RunnerFailure(
      'BackupIdConflict',
      `backup id ${o.id} is taken by a backup whose manifest is unreadable (${(e as Error).message}); it is neither reused nor overwritten`,
    );
  }
  if (!existing) return undefined;
  const decision = decideExistingBackup(existing, await o.storage.hasDump(o.id), o.origin);
  if (decision.action === 'conflict') throw new RunnerFailure('BackupIdConflict', decision.message);
  if (decision.action === 'reuse') return existing;
  o.log('warn', 'backup.redo-unverified', { id: o.id, origin: describeOrigin(existing.origin) });
  await o.storage.remove(o.id).catch((e: Error) => {
    throw new RunnerFailure('StorageFailed', `removing the unverified backup ${o.id}: ${e.message}`);
  });
  return undefined;
}
