import { createHash } from 'node:crypto';
import type { FailureReason } from './result.js';
import { runTool, ToolNotRunnableError } from './pg-tool.js';
import { createRedactor, type Redact } from './redact.js';
import { BackupNotFoundError, ManifestInvalidError, type BackupStorage } from './storage.js';
import type { BackupManifest } from './manifest.js';

export interface VerifyOutcome {
  valid: boolean;
  /** Set when not valid. */
  reason?: FailureReason;
  message: string;
  bytes?: number;
  sha256?: string;
}

export interface VerifyOptions {
  /** Environment for pg_restore (it needs no connection for --list). */
  env?: NodeJS.ProcessEnv;
  redact?: Redact;
}

// --list reads no database; no reason to hand the child the URL with its password.
function withoutDatabaseUrl(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { DATABASE_URL: _url, ...rest } = env;
  return rest;
}

/** Reads the committed dump end to end: what is on the volume now, not what we meant to write. */
export async function hashStoredDump(
  storage: BackupStorage,
  id: string,
): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of await storage.read(id)) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

/**
 * Checks a committed dump against the checksum taken while it was written, then asks pg_restore to read
 * its table of contents. A truncated or flipped byte fails the checksum; a file that was never a
 * custom-format archive fails pg_restore.
 */
export async function verifyArchive(
  storage: BackupStorage,
  id: string,
  expected: { sha256: string; bytes?: number },
  pgRestorePath: string,
  o: VerifyOptions = {},
): Promise<VerifyOutcome> {
  const redact = o.redact ?? createRedactor([]);
  let actual: { sha256: string; bytes: number };
  try {
    actual = await hashStoredDump(storage, id);
  } catch (e) {
    if (e instanceof BackupNotFoundError)
      return { valid: false, reason: 'BackupNotFound', message: e.message };
    return {
      valid: false,
      reason: 'StorageFailed',
      message: `reading backup ${id}: ${(e as Error).message}`,
    };
  }
  if (
    actual.sha256 !== expected.sha256 ||
    (expected.bytes !== undefined && actual.bytes !== expected.bytes)
  ) {
    return {
      valid: false,
      reason: 'ChecksumMismatch',
      message:
        `backup ${id} is damaged: sha256 ${actual.sha256} over ${actual.bytes} bytes, ` +
        `expected ${expected.sha256}${expected.bytes !== undefined ? ` over ${expected.bytes} bytes` : ''}`,
      ...actual,
    };
  }
  let run;
  try {
    run = await runTool({
      path: pgRestorePath,
      args: ['--list'],
      env: withoutDatabaseUrl(o.env ?? process.env),
      redact,
      stdin: await storage.read(id),
    });
  } catch (e) {
    if (e instanceof ToolNotRunnableError)
      return { valid: false, reason: 'Internal', message: e.message, ...actual };
    return {
      valid: false,
      reason: 'StorageFailed',
      message: `reading backup ${id}: ${(e as Error).message}`,
    };
  }
  const entries = run.stdout.split('\n').filter((l) => /^\d+;/.test(l)).length;
  if (run.code !== 0 || entries === 0) {
    return {
      valid: false,
      reason: 'ArchiveUnreadable',
      message: `pg_restore --list cannot read backup ${id} (exit ${run.code ?? run.signal}): ${run.stderrTail || 'no entries'}`,
      ...actual,
    };
  }
  return {
    valid: true,
    message: `sha256 matches over ${actual.bytes} bytes; pg_restore lists ${entries} archive entries`,
    ...actual,
  };
}

/** Verifies a committed backup against its manifest. */
export async function verifyBackup(
  storage: BackupStorage,
  id: string,
  pgRestorePath: string,
  o: VerifyOptions = {},
): Promise<VerifyOutcome & { manifest?: BackupManifest }> {
  let manifest: BackupManifest | undefined;
  try {
    manifest = await storage.readManifest(id);
  } catch (e) {
    if (e instanceof ManifestInvalidError)
      return { valid: false, reason: 'ManifestInvalid', message: e.message };
    return {
      valid: false,
      reason: 'StorageFailed',
      message: `reading the manifest of ${id}: ${(e as Error).message}`,
    };
  }
  if (!manifest) {
    const hasDump = await storage.hasDump(id).catch(() => false);
    return {
      valid: false,
      reason: 'BackupNotFound',
      message: hasDump
        ? `backup ${id} has a dump but no manifest: it did not finish; take a new backup`
        : `backup ${id} does not exist in ${storage.location}`,
    };
  }
  const outcome = await verifyArchive(storage, id, manifest, pgRestorePath, o);
  return { ...outcome, manifest };
}
