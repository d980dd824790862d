import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { startArchivePass, tocProblem } from './archive-stream.js';
import { storageFailure } from './failure.js';
import type { FailureReason } from './result.js';
import { createRedactor, type Redact } from './redact.js';
import { BackupNotFoundError, ManifestInvalidError, type BackupStorage } from './storage.js';
import type { ArchiveIdentity, BackupManifest } from './manifest.js';

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
export function withoutDatabaseUrl(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { DATABASE_URL: _url, ...rest } = env;
  return rest;
}

const discard = () => new Writable({ write: (_chunk, _enc, done) => done() });

/**
 * Checks a committed dump against the checksum taken while it was written, and has pg_restore read its
 * table of contents, in one read of the stored file (what is on the volume now, not what we meant to write).
 * A truncated or flipped byte fails the checksum; a file that was never a custom-format archive fails
 * pg_restore.
 */
export async function verifyArchive(
  storage: BackupStorage,
  id: string,
  expected: { sha256: string; bytes?: number; archive?: ArchiveIdentity },
  pgRestorePath: string,
  o: VerifyOptions = {},
): Promise<VerifyOutcome> {
  const redact = o.redact ?? createRedactor([]);
  const pass = startArchivePass({ pgRestorePath, env: withoutDatabaseUrl(o.env ?? process.env), redact });
  let readError: Error | undefined;
  try {
    await pipeline(await storage.read(id, expected.archive), pass.tap, discard());
  } catch (e) {
    readError = e as Error;
    // Also when the dump could not be opened: pg_restore must not wait for a TOC that never comes.
    pass.tap.destroy();
  }
  const { toc, ...actual } = await pass.result();
  if (readError instanceof BackupNotFoundError)
    return { valid: false, reason: 'BackupNotFound', message: readError.message };
  if (readError) {
    const f = storageFailure(readError, `reading backup ${id}`);
    return { valid: false, reason: f.reason, message: f.message };
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
  if (toc.error) return { valid: false, reason: 'Internal', message: tocProblem(toc)!, ...actual };
  const problem = tocProblem(toc);
  if (problem)
    return { valid: false, reason: 'ArchiveUnreadable', message: `backup ${id}: ${problem}`, ...actual };
  return {
    valid: true,
    message: `sha256 matches over ${actual.bytes} bytes; pg_restore lists ${toc.entries} archive entries`,
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
    const f = storageFailure(e, `reading the manifest of ${id}`);
    return { valid: false, reason: f.reason, message: f.message };
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
